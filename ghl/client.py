"""The one GHL client: a pooled session, timeouts, and classify-then-retry.

Retry rules (``classify``):
- 429: retried for every method, GHL rejected the request so nothing happened. The wait is
  ``Retry-After`` when sent, else the rate-limit window GHL reports in
  ``X-RateLimit-Interval-Milliseconds``, else exponential backoff.
- The connection could not be made (refused, DNS, connect timeout): retried for every method,
  the request never left.
- 5xx, read timeouts and connections dropped mid-request: retried only for idempotent methods
  (GET, PUT, DELETE). A POST that may have reached GHL is never repeated; the error says the
  outcome is unknown.
A call stops after ``max_tries`` attempts or when the next wait would pass ``max_seconds``,
so it ends inside Zapier's 30-second budget.

The caller's token is passed per call and never stored on the client or logged.

Uploads (``multipart``) are encoded once, so every attempt sends the same bytes; the client
also carries the ``ghl.file_fetch.FileFetcher`` that fetched their files (``file_fetcher``),
configured with it from the settings.
"""

import hashlib
import hmac
import logging
import random
import re
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests
from requests.cookies import RequestsCookieJar, merge_cookies
from requests.hooks import default_hooks
from requests.sessions import merge_hooks
from requests.structures import CaseInsensitiveDict
from urllib3 import encode_multipart_formdata

from ghl.errors import GhlError, error_for_status
from ghl.file_fetch import FileFetcher
from ghl.rate_budget import BudgetExhausted
from ghl.shared_reads import read_key
from storage import fast_json

log = logging.getLogger(__name__)

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
LOCATION_PARAMS = ("locationId", "location_id", "altId")
# A path segment that is a word: lowercase, camelCase humps, or kebab/snake parts; never digits.
_PATH_WORD = re.compile(r"[a-z]+(?:[A-Z][a-z]+|[-_][a-z]+)*")
RATE_LIMIT_HEADERS = (
    "X-RateLimit-Limit-Daily", "X-RateLimit-Daily-Remaining", "X-RateLimit-Interval-Milliseconds",
    "X-RateLimit-Max", "X-RateLimit-Remaining",
)


@dataclass
class GhlResponse:
    status: int
    body: object
    headers: dict

# Lookups that only name things in an answer (``quick``) give up after this many seconds.
QUICK_SECONDS = 3.0


class _Retry(Exception):
    """Internal: a failed attempt that may be retried after ``wait`` seconds."""

    def __init__(self, error, retriable, wait):
        super().__init__(error.message)
        self.error = error
        self.retriable = retriable
        self.wait = wait


def _retry_after_seconds(headers):
    value = headers.get("Retry-After")
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            return None
    if headers.get("X-RateLimit-Remaining") == "0" and headers.get("X-RateLimit-Interval-Milliseconds"):
        try:
            return int(headers["X-RateLimit-Interval-Milliseconds"]) / 1000.0
        except ValueError:
            return None
    return None


def _json_body(response):
    if not response.content:
        return None
    try:
        return fast_json.loads(response.content)
    except ValueError:
        return {"message": response.text[:500]}


class GhlClient:
    def __init__(self, base_url, connect_timeout=3.05, read_timeout=10.0, max_tries=4, max_seconds=20.0,
                 session=None, backoff_base=0.5, backoff_cap=8.0, rate_budget=None, shared_reads=None,
                 secret="", file_fetcher=None):
        self.base_url = base_url.rstrip("/")
        self._origin = urlsplit(self.base_url)
        self.timeout = (connect_timeout, read_timeout)
        self.max_tries = max_tries
        self.max_seconds = max_seconds
        self.session = session or pooled_session(self.base_url)
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.rate_budget = rate_budget
        self.shared_reads = shared_reads
        self._secret = secret.encode("utf-8")
        self.file_fetcher = file_fetcher or FileFetcher()

    def token_owner(self, token):
        """A keyed digest naming the token's holder, for budgets and shared reads; never the token."""
        return hmac.new(self._secret, token.encode("utf-8"), hashlib.sha256).hexdigest()[:32]

    def budget_for(self, token, query, body):
        """The budget a request spends: the location it names (GHL counts per location), kept per
        token, so a caller GHL has not accepted (a bogus token naming someone else's location)
        spends only its own slots and never delays that location's real callers."""
        owner = self.token_owner(token)
        for source in (query or {}, body if isinstance(body, dict) else {}):
            for name in LOCATION_PARAMS:
                if source.get(name):
                    return f"location:{source[name]}:token:{owner}"
        return f"token:{owner}"

    def url_for(self, path):
        """The absolute URL for an already-encoded GHL ``path``; refuses anything off ``base_url``."""
        if not path.startswith("/") or path.startswith("//"):
            raise ValueError("GHL paths are relative to the base URL and start with a single /")
        url = self.base_url + path
        parts = urlsplit(url)
        if (parts.scheme, parts.netloc) != (self._origin.scheme, self._origin.netloc):
            raise ValueError("refusing a URL outside GHL_BASE_URL")
        return url

    def _backoff_wait(self, attempt):
        # Full jitter: a random wait up to the exponential ceiling.
        return random.uniform(0, min(self.backoff_cap, self.backoff_base * (2 ** attempt)))

    def _attempt(self, method, url, token, version, query, body, attempt, scopes, timeout=None, form=None):
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        if version:
            headers["Version"] = version
        if form is not None:
            headers["Content-Type"] = form[1]
        idempotent = method in IDEMPOTENT_METHODS
        try:
            response = send(self.session, method, url, params=query or None, json=body if body is not None else None,
                            data=form[0] if form is not None else None, headers=headers,
                            timeout=timeout or self.timeout)
        except (requests.exceptions.ConnectTimeout, requests.exceptions.InvalidURL) as exc:
            error = GhlError(504 if isinstance(exc, requests.exceptions.ConnectTimeout) else 502,
                             "ghl_unreachable", "GHL could not be reached (connection timed out).")
            raise _Retry(error, True, self._backoff_wait(attempt)) from None
        except requests.exceptions.ReadTimeout:
            if idempotent:
                error = GhlError(504, "ghl_timeout", "GHL did not answer in time.")
            else:
                error = GhlError(504, "outcome_unknown",
                                 "GHL did not answer in time, so whether the change was made is unknown. "
                                 "Check in GHL before replaying this step.")
            raise _Retry(error, idempotent, self._backoff_wait(attempt)) from None
        except requests.exceptions.ConnectionError as exc:
            sent = _may_have_been_sent(exc)
            if sent and not idempotent:
                error = GhlError(502, "outcome_unknown",
                                 "The connection to GHL broke after the request was sent, so whether the "
                                 "change was made is unknown. Check in GHL before replaying this step.")
                raise _Retry(error, False, 0) from None
            error = GhlError(502, "ghl_unreachable", "GHL could not be reached.")
            raise _Retry(error, True, self._backoff_wait(attempt)) from None

        if log.isEnabledFor(logging.INFO):
            log.info("ghl %s %s -> %s (rate remaining %s)", method, loggable_path(urlsplit(url).path),
                     response.status_code, response.headers.get("X-RateLimit-Remaining", "?"))
        if response.status_code < 400:
            return GhlResponse(response.status_code, _json_body(response), dict(response.headers))
        retry_after = _retry_after_seconds(response.headers)
        body_json = _json_body(response)
        if response.status_code == 429:
            wait = retry_after if retry_after is not None else self._backoff_wait(attempt)
            error = error_for_status(429, body_json, retry_after=int(round(wait)) or 1, scopes=scopes)
            raise _Retry(error, True, wait)
        error = error_for_status(response.status_code, body_json, scopes=scopes)
        if response.status_code >= 500:
            if not idempotent:
                error = GhlError(502, "outcome_unknown",
                                 f"GHL failed with {response.status_code} while handling the request, so "
                                 "whether the change was made is unknown. Check in GHL before replaying "
                                 "this step.", ghl_status=response.status_code)
            raise _Retry(error, idempotent, retry_after or self._backoff_wait(attempt))
        raise _Retry(error, False, 0)

    def request(self, method, path, token, version=None, query=None, body=None, scopes=(), quick=False,
                multipart=None, spent_seconds=0.0):
        """Call GHL and return a GhlResponse for a 2xx/3xx answer; raise GhlError otherwise.

        ``multipart``: the parts of a multipart/form-data body (``GhlRequest.multipart``), sent
        instead of ``body``. ``spent_seconds``: time the caller already spent on this call (a
        file fetched for it), taken from the call's budget.

        Reads are shared with identical reads in flight (``shared_reads``); a successful write
        drops the token's shared reads. Every attempt first takes a slot of the location's
        rate budget. ``quick``: one try within ``QUICK_SECONDS``, for lookups that only add to
        an answer (names, links) and must never hold it past Zapier's 30 seconds.
        """
        method = method.upper()
        url = self.url_for(path)
        started = time.monotonic() - spent_seconds
        limit = QUICK_SECONDS if quick else self.max_seconds
        deadline = time.time() + limit - spent_seconds
        form = None
        if multipart is not None:
            form = encode_multipart_formdata(multipart)
            # The rate budget reads the location from the text fields, as from a JSON body.
            body = None
            budget_fields = {name: value for name, value in multipart if isinstance(value, str)}
        else:
            budget_fields = body
        patience = (1, limit, (self.timeout[0], min(self.timeout[1], QUICK_SECONDS))) if quick else None
        if method == "GET" and self.shared_reads is not None:
            owner = self.token_owner(token)

            def fetch():
                response = self._call(method, url, token, version, query, body, scopes, started, deadline,
                                      patience)
                return response.status, response.body, response.headers

            status, answer, headers = self.shared_reads.read(
                owner, read_key(owner, method, path, query, body), fetch, deadline)
            return GhlResponse(status, answer, headers)
        response = self._call(method, url, token, version, query, body, scopes, started, deadline, patience,
                              form=form, budget_fields=budget_fields)
        if method != "GET" and self.shared_reads is not None:
            self.shared_reads.forget_owner(self.token_owner(token))
        return response

    def _call(self, method, url, token, version, query, body, scopes, started, deadline, patience=None,
              form=None, budget_fields=None):
        attempts = {"n": 0}
        budget_fields = body if budget_fields is None else budget_fields
        budget = self.budget_for(token, query, budget_fields) if self.rate_budget is not None else None
        max_tries, max_seconds, timeout = patience or (self.max_tries, self.max_seconds, self.timeout)

        def give_up(exc):
            return (not exc.retriable) or (time.monotonic() - started + exc.wait > max_seconds)

        def attempt():
            n = attempts["n"]
            attempts["n"] += 1
            if budget is not None:
                try:
                    self.rate_budget.take(budget, deadline)
                except BudgetExhausted as exc:
                    wait = int(exc.retry_after + 0.999)
                    raise _Retry(GhlError(429, "rate_budget_exhausted",
                                          f"This location's GHL rate budget is used up; try again in {wait} "
                                          "seconds.", retry_after=wait), False, 0) from None
            return self._attempt(method, url, token, version, query, body, n, scopes, timeout, form)

        # What ``backoff.on_exception(backoff.runtime, _Retry, value=lambda exc: exc.wait,
        # jitter=None, max_tries=max_tries, giveup=give_up)`` did, without building its decorator
        # on every call: up to ``max_tries`` attempts, each failed one waiting ``exc.wait`` unless
        # ``give_up`` says stop.
        tries = 0
        while True:
            tries += 1
            try:
                return attempt()
            except _Retry as exc:
                if give_up(exc) or tries == max_tries:
                    raise exc.error from None
                time.sleep(exc.wait)


# ``Session.request``'s own methods: a session that overrides none of them is sent through ``send``'s
# shortcut, anything else through its own ``request``.
_SESSION_METHODS = (requests.Session.request, requests.Session.prepare_request,
                    requests.Session.merge_environment_settings)
_SESSION_METHOD_NAMES = frozenset({"request", "prepare_request", "merge_environment_settings"})
# Prepared URLs by (URL, query): ``PreparedRequest.prepare_url`` is a pure function of the two and a
# fifth of ``requests``' own CPU per call. Bounded; emptied when full.
_PREPARED_URLS = {}
MAX_PREPARED_URLS = 2048


def send(session, method, url, params=None, data=None, headers=None, json=None, timeout=None):
    """``session.request(method, url, params=..., data=..., headers=..., json=..., timeout=...)``,
    sent the same, for less CPU.

    For a plain ``requests.Session`` that does not read the environment (``trust_env`` off, as
    ``pooled_session`` makes it) and has no session-wide auth or params, this does what
    ``Session.request`` does (``Request`` -> ``Session.prepare_request`` ->
    ``merge_environment_settings`` -> ``Session.send``) with ``requests``' own preparation steps,
    but merges the session's headers and proxies without ``requests.utils.to_key_val_list`` (whose
    ``isinstance`` checks against typing Protocols cost more than the merge) and reuses the
    prepared URL of an identical (URL, query). The same PreparedRequest reaches the same
    ``Session.send`` (adapters, hooks, cookies, redirects). Any other session, or one whose
    ``request`` (or a step of it) was replaced on the instance: its ``request``.
    """
    cls = type(session)
    if (not isinstance(session, requests.Session)
            or (cls.request, cls.prepare_request, cls.merge_environment_settings) != _SESSION_METHODS
            or not _SESSION_METHOD_NAMES.isdisjoint(vars(session))
            or session.trust_env or session.auth is not None or session.params
            or not isinstance(session.params, Mapping)
            or not isinstance(session.headers, Mapping) or not isinstance(session.proxies, Mapping)
            or not isinstance(params or {}, Mapping) or not isinstance(headers or {}, Mapping)):
        return session.request(method, url, params=params, data=data, headers=headers, json=json,
                               timeout=timeout)
    method = method.upper()
    # Session.request: Request(data=data or {}, params=params or {}, headers=headers or {}, files=[]).
    data = data or {}
    # merge_setting(request params, session params {}): the request's, without None values.
    params = OrderedDict((k, v) for k, v in (params or {}).items() if v is not None)
    # merge_setting(request headers, session headers, CaseInsensitiveDict): the session's, then the
    # request's (a name in both keeps the session's place, the request's spelling and value),
    # without None values.
    merged = CaseInsensitiveDict()
    for name, value in session.headers.items():
        merged[name] = value
    for name, value in (headers or {}).items():
        merged[name] = value
    for name in [name for name, value in merged.items() if value is None]:
        del merged[name]
    prepared = requests.PreparedRequest()
    prepared.prepare_method(method)
    prepared.url = _prepared_url(url, params)
    prepared.prepare_headers(merged)
    prepared.prepare_cookies(merge_cookies(RequestsCookieJar(), session.cookies))
    prepared.prepare_body(data, [], json)
    prepared.prepare_auth(None, url)
    prepared.prepare_hooks(merge_hooks(default_hooks(), session.hooks))
    # merge_environment_settings without the environment: the session's proxies (None values
    # dropped), stream, verify and cert.
    proxies = OrderedDict((k, v) for k, v in session.proxies.items() if v is not None)
    return session.send(prepared, timeout=timeout, allow_redirects=True, proxies=proxies,
                        stream=session.stream, verify=session.verify, cert=session.cert)


def _query_key(params):
    """A hashable key telling ``params`` apart exactly as ``requests`` encodes them (types too:
    ``True`` and ``1`` encode differently); None when a value cannot be a key."""
    key = []
    for name, value in params.items():
        if isinstance(value, (list, tuple)):
            value = (type(value), tuple((type(v), v) for v in value))
        key.append((type(name), name, type(value), value))
    key = tuple(key)
    try:
        hash(key)
    except TypeError:
        return None
    return key


def _prepared_url(url, params):
    """``PreparedRequest.prepare_url(url, params)``'s URL, remembered per (URL, query)."""
    key = _query_key(params)
    if key is not None:
        key = (url, key)
        found = _PREPARED_URLS.get(key)
        if found is not None:
            return found
    prepared = requests.PreparedRequest()
    prepared.prepare_url(url, params)
    if key is not None:
        if len(_PREPARED_URLS) >= MAX_PREPARED_URLS:
            _PREPARED_URLS.clear()
        _PREPARED_URLS[key] = prepared.url
    return prepared.url


def pooled_session(base_url, pool_size=32):
    """A session with a connection pool big enough for a threaded worker.

    Proxy settings are read from the environment once here, not on every call: requests
    otherwise walks the whole environment per request, a fifth of a poll's CPU time.
    """
    session = requests.Session()
    session.proxies.update(requests.utils.get_environ_proxies(base_url))
    session.trust_env = False
    adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=pool_size)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def loggable_path(path):
    """``path`` with every segment that is not a plain word (``contacts``, ``customFields``,
    ``free-slots``) shown as ``*``: ids, emails, phones and other values never reach the log."""
    return "/".join(part if not part or _PATH_WORD.fullmatch(part) else "*" for part in path.split("/"))


def _may_have_been_sent(exc):
    """False only when the connection was never established (refused, name lookup failed)."""
    text = repr(exc)
    never_connected = ("NewConnectionError", "NameResolutionError", "Failed to establish a new connection",
                       "Connection refused")
    return not any(marker in text for marker in never_connected)


def client_from_settings(settings, backend, secret="", session=None):
    """The client as configured: retries, and the per-location rate budget and shared reads
    kept in ``backend`` (``storage.backend.open_backend``), shared by every process using it."""
    from ghl.rate_budget import RateBudget
    from ghl.shared_reads import SharedReads
    budget = None
    if settings.ghl_burst_max > 0:
        budget = RateBudget(backend.rate_slots(), settings.ghl_burst_max, settings.ghl_burst_window_seconds)
    return GhlClient(
        settings.ghl_base_url,
        connect_timeout=settings.ghl_connect_timeout,
        read_timeout=settings.ghl_read_timeout,
        max_tries=settings.ghl_max_tries,
        max_seconds=settings.ghl_max_seconds,
        session=session,
        rate_budget=budget,
        shared_reads=SharedReads(backend.shared_read_table(), settings.poll_share_seconds),
        secret=secret,
        file_fetcher=FileFetcher.from_settings(settings),
    )
