"""Fetching a file the caller handed as a URL (how Zapier hands files), for GHL's uploads.

The URL comes from whoever runs the Zap, so the fetch is an outbound call on their behalf and
must not reach anything but the public internet:
- https only; http only for 127.0.0.1, localhost and ::1 when ``allow_loopback`` is on
  (``FILE_FETCH_ALLOW_LOOPBACK``, local development and tests);
- the host is resolved once, every address it resolves to must be public (no private,
  loopback, link-local, shared, multicast or reserved address, nor one embedded in IPv6), and
  the connection goes to a checked address while TLS still verifies the host name: a second
  DNS answer (rebinding) is never asked for;
- at most MAX_REDIRECTS redirects, each target checked like the first URL;
- the size limit is counted on the bytes read, whatever ``Content-Length`` says; the connect
  timeout and a total deadline bound the whole download, a slow trickle included.

Errors are FileFetchError, whose text never repeats the URL (its query may hold a signed
token) and says what to fix. Nothing here logs more than the host.
"""

import email.message
import ipaddress
import logging
import mimetypes
import re
import socket
import threading
import time
import unicodedata
from dataclasses import dataclass
from http import HTTPStatus
from urllib.parse import unquote, urljoin, urlsplit

import requests.certs
from requests.utils import requote_uri
import urllib3
from urllib3.exceptions import (ConnectTimeoutError, HTTPError, NewConnectionError, ReadTimeoutError,
                                SSLError)

log = logging.getLogger(__name__)

MAX_REDIRECTS = 3
MAX_URL_CHARS = 2048
CHUNK_BYTES = 64 * 1024
MAX_FILENAME_CHARS = 150
DEFAULT_MAX_BYTES = 25 * 1024 * 1024
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
USER_AGENT = "ghl-zapier-files/1"
# Well-known NAT64 prefix: its addresses carry an IPv4 address in their last 32 bits.
NAT64_PREFIX = ipaddress.ip_network("64:ff9b::/96")
UNSAFE_URL_CHARACTERS = re.compile(r"[\x00-\x20\x7f\\]")
_MEDIA_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*$")
_FILENAME_FORBIDDEN = set('"\\/:*?<>|')
_DIGITS = re.compile(r"[0-9]+")  # str.isdigit() also takes "²", which int() refuses


class FileFetchError(ValueError):
    """Why a file could not be fetched, in words for the person who gave the URL (never the URL)."""


class FetchBusy(Exception):
    """MAX_CONCURRENT_FETCHES files are being fetched in this process already: try again later."""


# Each fetch may hold up to twice its size in memory; this bounds what uploads hold at once per
# process, whoever asks (a request is fetched before GHL has judged its token).
MAX_CONCURRENT_FETCHES = 4
BUSY_WAIT_SECONDS = 2
_FETCH_SLOTS = threading.BoundedSemaphore(MAX_CONCURRENT_FETCHES)


class _Watchdog:
    """Shuts down the fetch's sockets when its total time is up. A read timeout bounds each
    receive only, so without it a server trickling its headers (or its TLS handshake) one byte
    at a time could hold the fetch for as long as it liked."""

    def __init__(self, seconds):
        self.expired = False
        self._sockets = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def connection_class(self, base):
        watchdog = self

        class WatchedConnection(base):
            def _new_conn(self):
                sock = super()._new_conn()
                watchdog.watch(sock)
                return sock

        return WatchedConnection

    def watch(self, sock):
        with self._lock:
            self._sockets.append(sock)
            expired = self.expired
        if expired:
            _shut(sock)

    def _expire(self):
        with self._lock:
            self.expired = True
            sockets = list(self._sockets)
        for sock in sockets:
            _shut(sock)

    def cancel(self):
        self._timer.cancel()


def _shut(sock):
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed


@dataclass(frozen=True)
class FetchedFile:
    filename: str
    content_type: str
    content: bytes


@dataclass(frozen=True)
class _Target:
    """A checked URL: where to connect (``addresses``) and what to ask for."""
    scheme: str
    host: str
    port: int
    request_path: str
    addresses: tuple

    @property
    def host_header(self):
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = {"https": 443, "http": 80}[self.scheme]
        return host if self.port == default else f"{host}:{self.port}"


def _megabytes(size):
    return f"{size / (1024 * 1024):g} MB"


def _embedded_ipv4(ip):
    """The IPv4 addresses an IPv6 address carries (mapped, 6to4, Teredo, NAT64)."""
    found = [ip.ipv4_mapped, ip.sixtofour, ip.teredo[1] if ip.teredo else None]
    if ip in NAT64_PREFIX:
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return [address for address in found if address is not None]


# Not routable, though some Python versions' ``is_global`` says so (IANA special-purpose registry).
NOT_GLOBAL = tuple(ipaddress.ip_network(n) for n in (
    "192.0.0.0/24", "192.88.99.0/24", "3fff::/20", "64:ff9b:1::/48", "2001:2::/48", "5f00::/16"))


def is_public_address(ip):
    """True when ``ip`` (an ipaddress object) is a globally routable unicast address."""
    if not ip.is_global or ip.is_multicast or ip.is_reserved or ip.is_unspecified:
        return False
    if any(ip.version == network.version and ip in network for network in NOT_GLOBAL):
        return False
    if ip.version == 6:
        return all(is_public_address(embedded) for embedded in _embedded_ipv4(ip))
    return True


@dataclass(frozen=True)
class FileFetcher:
    """Fetches one file URL with the limits above (``fetch``); one instance serves every call."""
    max_bytes: int = DEFAULT_MAX_BYTES
    connect_timeout: float = 3.05
    total_seconds: float = 8.0
    allow_loopback: bool = False
    # The CA bundle https servers are verified against (None: the one requests uses).
    ca_certs: str = None

    @classmethod
    def from_settings(cls, settings):
        return cls(max_bytes=settings.file_fetch_max_bytes, connect_timeout=settings.file_fetch_connect_timeout,
                   total_seconds=settings.file_fetch_total_seconds,
                   allow_loopback=settings.file_fetch_allow_loopback)

    def fetch(self, url, max_bytes=None):
        """The file at ``url``, at most ``max_bytes`` (default ``self.max_bytes``); FileFetchError
        otherwise, FetchBusy when MAX_CONCURRENT_FETCHES are already under way in this process."""
        deadline = time.monotonic() + self.total_seconds
        if not _FETCH_SLOTS.acquire(timeout=min(BUSY_WAIT_SECONDS, self.total_seconds)):
            raise FetchBusy("this service is fetching as many files as it may at once; try again shortly")
        watchdog = _Watchdog(self.total_seconds)
        try:
            return self._fetch(url, max_bytes, deadline, watchdog)
        except FileFetchError:
            raise
        except (ValueError, LookupError):
            # Whatever else a hostile server's answer makes the HTTP stack choke on.
            raise FileFetchError("the file's server answered in a way this service cannot read") from None
        finally:
            watchdog.cancel()
            _FETCH_SLOTS.release()

    def _fetch(self, url, max_bytes, deadline, watchdog):
        limit = self.max_bytes if max_bytes is None else min(max_bytes, self.max_bytes)
        for _ in range(MAX_REDIRECTS + 1):
            self._remaining(deadline)
            target = self._check(url)
            pool, response = self._open(target, deadline, watchdog)
            try:
                if response.status in REDIRECT_STATUSES:
                    location = response.headers.get("Location")
                    if not location:
                        raise FileFetchError(f"the file's server answered {response.status} without saying where")
                    try:
                        url = urljoin(url, location.strip())
                    except ValueError:
                        raise FileFetchError("the file's server redirected to an invalid URL") from None
                    continue
                if response.status != 200:
                    raise FileFetchError(f"the file's server answered {_status_text(response.status)}")
                content = self._read_body(response, limit, deadline, watchdog)
            finally:
                response.release_conn()
                pool.close()
            log.info("file fetched from %s: %s bytes", target.host, len(content))
            name = filename_for(response.headers, urlsplit(url).path)
            return FetchedFile(name, content_type_for(response.headers, name), content)
        raise FileFetchError(f"the file's URL redirected more than {MAX_REDIRECTS} times")

    # -------------------------------------------------------------------------------- checks

    def _check(self, url):
        """The _Target for ``url`` when it may be fetched; FileFetchError otherwise."""
        if not isinstance(url, str) or not url or len(url) > MAX_URL_CHARS:
            raise FileFetchError(f"must be a file URL of at most {MAX_URL_CHARS:,} characters")
        if UNSAFE_URL_CHARACTERS.search(url):
            raise FileFetchError("the file's URL must not contain spaces, control characters or backslashes")
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise FileFetchError("the file's URL has an invalid host or port") from None
        try:
            # An internationalised name as DNS and TLS know it (xn--...).
            host = (parts.hostname or "").lower().encode("idna").decode("ascii")
        except UnicodeError:
            raise FileFetchError("the file's URL has an invalid host name") from None
        loopback = self.allow_loopback and host in LOOPBACK_HOSTS
        if parts.scheme != "https" and not (loopback and parts.scheme == "http"):
            raise FileFetchError("the file's URL must start with https://")
        if not host:
            raise FileFetchError("the file's URL has no host")
        if parts.username is not None or parts.password is not None:
            raise FileFetchError("the file's URL must not contain a user name or password")
        port = port or {"https": 443, "http": 80}[parts.scheme]
        addresses = self._resolve(host, port, loopback)
        request_path = requote_uri((parts.path or "/") + (f"?{parts.query}" if parts.query else ""))
        return _Target(parts.scheme, host, port, request_path, addresses)

    def _resolve(self, host, port, loopback):
        """Every address ``host`` resolves to, once; FileFetchError when any of them is not public."""
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError):
            raise FileFetchError("the file's host could not be found") from None
        addresses = []
        for family, _, _, _, sockaddr in infos:
            if family not in (socket.AF_INET, socket.AF_INET6):
                continue
            ip = ipaddress.ip_address(sockaddr[0].split("%", 1)[0])
            if not (is_public_address(ip) or (loopback and ip.is_loopback)):
                raise FileFetchError("the file's URL points to a private or local network address, "
                                     "which this service does not fetch from")
            if str(ip) not in addresses:
                addresses.append(str(ip))
        if not addresses:
            raise FileFetchError("the file's host could not be found")
        return tuple(addresses)

    # ------------------------------------------------------------------------------ transfer

    def _remaining(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise FileFetchError(f"the file took longer than {self.total_seconds:g} seconds to download")
        return remaining

    def _pool(self, target, address, deadline, watchdog):
        """A one-connection pool to the checked ``address``; TLS verifies ``target.host`` (SNI too).
        Its sockets are ``watchdog``'s, shut when the deadline passes."""
        remaining = self._remaining(deadline)
        timeout = urllib3.Timeout(connect=min(self.connect_timeout, remaining), read=remaining)
        if target.scheme == "http":
            pool = urllib3.HTTPConnectionPool(address, target.port, timeout=timeout, retries=False, maxsize=1)
        else:
            pool = urllib3.HTTPSConnectionPool(
                address, target.port, timeout=timeout, retries=False, maxsize=1, cert_reqs="CERT_REQUIRED",
                ca_certs=self.ca_certs or requests.certs.where(), server_hostname=target.host,
                assert_hostname=target.host)
        pool.ConnectionCls = watchdog.connection_class(pool.ConnectionCls)
        return pool

    def _open(self, target, deadline, watchdog):
        """(pool, response) with the headers read, trying each checked address until one connects."""
        headers = {"Host": target.host_header, "User-Agent": USER_AGENT, "Accept": "*/*",
                   "Accept-Encoding": "identity"}
        for address in target.addresses:
            pool = self._pool(target, address, deadline, watchdog)
            try:
                response = pool.urlopen("GET", target.request_path, headers=headers, redirect=False, retries=False,
                                        preload_content=False, release_conn=False, assert_same_host=False)
                return pool, response
            except (NewConnectionError, ConnectTimeoutError):
                pool.close()
                self._remaining(deadline)
                continue
            except (HTTPError, OSError) as exc:
                pool.close()
                raise _transfer_error(exc, self.total_seconds, watchdog) from None
        self._remaining(deadline)
        raise FileFetchError("the file's server could not be reached")

    def _read_body(self, response, limit, deadline, watchdog):
        too_large = FileFetchError(f"the file is larger than {_megabytes(limit)}, the most this service uploads")
        declared = (response.headers.get("Content-Length") or "").strip()
        if _DIGITS.fullmatch(declared) and int(declared) > limit:
            raise too_large
        chunks, size = [], 0
        while True:
            remaining = self._remaining(deadline)
            # One receive at a time, each bounded by what is left of the deadline: a server that
            # trickles bytes cannot stretch the download past it.
            sock = getattr(response.connection, "sock", None)
            if sock is not None:
                sock.settimeout(remaining)
            try:
                chunk = response.read1(CHUNK_BYTES)
            except (HTTPError, OSError) as exc:
                raise _transfer_error(exc, self.total_seconds, watchdog) from None
            if not chunk:
                return b"".join(chunks)
            size += len(chunk)
            if size > limit:
                raise too_large
            chunks.append(chunk)


def _transfer_error(exc, total_seconds, watchdog):
    """The FileFetchError for a urllib3 or socket failure ``exc``."""
    if watchdog.expired or isinstance(exc, (ReadTimeoutError, TimeoutError)):
        return FileFetchError(f"the file took longer than {total_seconds:g} seconds to download")
    if isinstance(exc, SSLError):
        return FileFetchError("the file's server's https certificate could not be verified")
    return FileFetchError("the connection to the file's server broke off")


def _status_text(status):
    try:
        return f"{status} ({HTTPStatus(status).phrase.lower()})"
    except ValueError:
        return str(status)


# ------------------------------------------------------------------------------- naming


def _disposition_filename(value):
    """The filename a Content-Disposition header gives (``filename*`` in RFC 5987 too), or None."""
    if not value:
        return None
    message = email.message.Message()
    try:
        message["Content-Disposition"] = value
        name = message.get_filename()
    except (ValueError, TypeError, LookupError):
        return None
    if not name:
        return None
    try:
        return name.encode("latin-1").decode("utf-8")  # HTTP headers arrive as latin-1 text
    except (UnicodeEncodeError, UnicodeDecodeError):
        return name


def safe_filename(name):
    """``name`` as a plain file name: no folders, control or reserved characters, no leading dots,
    at most MAX_FILENAME_CHARS characters (the extension kept); None when nothing is left."""
    if not name:
        return None
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    kept = "".join(" " if c.isspace() else c for c in name
                   if c not in _FILENAME_FORBIDDEN and not unicodedata.category(c).startswith("C"))
    name = " ".join(kept.split()).strip(". ")
    if len(name) > MAX_FILENAME_CHARS:
        stem, dot, extension = name.rpartition(".")
        if dot and 0 < len(extension) <= 10:
            name = stem[:MAX_FILENAME_CHARS - len(extension) - 1].rstrip(". ") + "." + extension
        else:
            name = name[:MAX_FILENAME_CHARS].rstrip(". ")
    return name or None


def _media_type(value):
    media_type = (value or "").split(";", 1)[0].strip().lower()
    return media_type if _MEDIA_TYPE.match(media_type) else None


def filename_for(headers, url_path):
    """The file's name: Content-Disposition's, else the URL path's last segment, sanitised; else
    ``file`` with the extension of its content type."""
    name = safe_filename(_disposition_filename(headers.get("Content-Disposition")))
    if name:
        return name
    name = safe_filename(unquote(url_path.rstrip("/").rsplit("/", 1)[-1]))
    if name:
        return name
    media_type = _media_type(headers.get("Content-Type"))
    return "file" + ((mimetypes.guess_extension(media_type) or "") if media_type else "")


def content_type_for(headers, filename):
    """The response's media type (no parameters), else one guessed from ``filename``."""
    return (_media_type(headers.get("Content-Type")) or mimetypes.guess_type(filename)[0]
            or "application/octet-stream")
