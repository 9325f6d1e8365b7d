"""Pushing a batch to a hook's target URL: which URLs are allowed, one POST, what its answer means,
and when to try again.
"""

import email.utils
import json
import random
import re
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests
from urllib3.util import parse_url

BATCH_SIZE = 100
# Zapier accepts webhook payloads up to 10 MB; stay below with room for headers.
MAX_PAYLOAD_BYTES = 9 * 1024 * 1024
MAX_URL_LENGTH = 2048
CONNECT_TIMEOUT = 3.05
RETRY_BASE_SECONDS = 1.0
RETRY_CAP_SECONDS = 900.0
MAX_RETRY_AFTER_SECONDS = 3600.0
USER_AGENT = "ghl-zapier-hooks/1"

DELIVERED, GONE, RATE_LIMITED, FAILED = "delivered", "gone", "rate_limited", "failed"
_UNSAFE_CHARACTERS = re.compile(r"[\x00-\x20\x7f\\]")


class InvalidTargetUrl(ValueError):
    """Why a target URL is refused (the text never repeats the URL)."""


def check_target_url(url, allowed_hosts, allow_http):
    """``url`` when it is https (or http with ``allow_http``) on exactly one of ``allowed_hosts``.

    Refuses userinfo, backslashes, whitespace, fragments and anything the two URL parsers in
    play (ours and the one requests uses) would read differently. Ports other than the default
    are allowed only with ``allow_http``, the local-development switch.
    """
    if not isinstance(url, str) or not url or len(url) > MAX_URL_LENGTH:
        raise InvalidTargetUrl("target_url must be a URL of at most 2048 characters")
    if _UNSAFE_CHARACTERS.search(url):
        raise InvalidTargetUrl("target_url must not contain spaces, control characters or backslashes")
    try:
        parts = urlsplit(url)
    except ValueError:  # such as a bracketed host that is no IP address: https://[hooks.zapier.com]/
        raise InvalidTargetUrl("target_url has an invalid host or port") from None
    schemes = ("https", "http") if allow_http else ("https",)
    if parts.scheme not in schemes:
        raise InvalidTargetUrl("target_url must use https")
    if "@" in parts.netloc:
        raise InvalidTargetUrl("target_url must not contain user information")
    if parts.fragment or url.endswith("#"):
        raise InvalidTargetUrl("target_url must not contain a fragment")
    try:
        port = parts.port
        theirs = parse_url(url)
    except ValueError:
        raise InvalidTargetUrl("target_url has an invalid host or port") from None
    host = (parts.hostname or "").lower()
    if not host or host not in allowed_hosts:
        raise InvalidTargetUrl("target_url's host is not one this service delivers to")
    if port is not None and port != {"https": 443, "http": 80}[parts.scheme] and not allow_http:
        raise InvalidTargetUrl("target_url must use the default port")
    their_host = (theirs.host or "").lower().strip("[]")
    if theirs.scheme != parts.scheme or their_host != host or theirs.port != port or theirs.auth:
        raise InvalidTargetUrl("target_url is ambiguous")
    return url


@dataclass(frozen=True)
class Outcome:
    kind: str
    status: int = None
    retry_after: float = None
    error: str = None


def batch_payload(items, limit=MAX_PAYLOAD_BYTES):
    """The longest prefix of ``items`` (at least one) whose JSON array fits ``limit`` bytes, and its body."""
    while True:
        body = json.dumps(items, separators=(",", ":"), default=str).encode("utf-8")
        if len(body) <= limit or len(items) <= 1:
            return items, body
        items = items[:len(items) // 2]


def retry_after_seconds(value, now=None):
    """Seconds from a Retry-After header (delta seconds or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER_SECONDS)
    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    now = time.time() if now is None else now
    return min(max(0.0, when - now), MAX_RETRY_AFTER_SECONDS)


def retry_delay(failures, rng=random.random):
    """Exponential backoff with jitter after ``failures`` failed deliveries in a row: between half
    and all of min(cap, base * 2^(failures-1)), so retries from many hooks spread out."""
    ceiling = min(RETRY_CAP_SECONDS, RETRY_BASE_SECONDS * 2 ** max(0, failures - 1))
    return ceiling * (0.5 + 0.5 * rng())


def post_batch(session, url, body, read_timeout):
    """POST one JSON array to ``url``. Never follows redirects (a redirect could point anywhere)."""
    try:
        response = session.post(
            url, data=body, timeout=(CONNECT_TIMEOUT, read_timeout), allow_redirects=False,
            headers={"Content-Type": "application/json", "User-Agent": USER_AGENT})
    except requests.exceptions.Timeout:
        return Outcome(FAILED, error="the target did not answer in time")
    except requests.exceptions.ConnectionError:
        return Outcome(FAILED, error="the target could not be reached")
    except requests.exceptions.RequestException as exc:
        return Outcome(FAILED, error=f"the request to the target failed ({type(exc).__name__})")
    status = response.status_code
    response.close()
    if 200 <= status < 300:
        return Outcome(DELIVERED, status)
    if status == 410:
        return Outcome(GONE, status, error="the target answered 410 Gone")
    if status == 429:
        return Outcome(RATE_LIMITED, status, retry_after_seconds(response.headers.get("Retry-After")),
                       error="the target answered 429 Too Many Requests")
    return Outcome(FAILED, status, error=f"the target answered {status}")


def delivery_session():
    """A session that ignores proxy, netrc and CA settings from the environment: a hook's
    target must never receive credentials meant for somewhere else."""
    session = requests.Session()
    session.trust_env = False
    return session
