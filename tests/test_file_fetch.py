"""ghl.file_fetch: fetching a caller's file URL safely, against real local servers.

``FileServer`` serves files on loopback (the fetcher reaches it only with ``allow_loopback``,
the FILE_FETCH_ALLOW_LOOPBACK setting); tests/test_uploads.py uses it too.
"""

import datetime
import gzip
import http.server
import ipaddress
import logging
import socket
import ssl
import threading
import time

import pytest

from ghl import file_fetch
from ghl.file_fetch import (MAX_REDIRECTS, FetchBusy, FileFetcher, FileFetchError, filename_for, is_public_address,
                            safe_filename)

CSV = b"name,email\nAda,ada@example.com\n"


class FileServer:
    """Answers each path from ``routes`` (path without query -> handler(request)); records every
    request's path and Host header in ``seen``. ``tls``: an ssl.SSLContext to serve https."""

    def __init__(self, routes=None, tls=None):
        self.routes = dict(routes or {})
        self.seen = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                server.seen.append({"path": self.path, "host": self.headers.get("Host")})
                route = server.routes.get(self.path.split("?", 1)[0])
                if route is None:
                    self.send_error(404)
                    return
                try:
                    route(self)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the fetcher hung up, as it should on a file too large or too slow

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_port
        self.scheme = "https" if tls else "http"
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def url(self, path, host="127.0.0.1"):
        return f"{self.scheme}://{host}:{self.port}{path}"

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def send(body, content_type="text/csv; charset=utf-8", status=200, headers=()):
    """A route answering ``body`` with a Content-Length."""
    def route(request):
        request.send_response(status)
        if content_type:
            request.send_header("Content-Type", content_type)
        for name, value in headers:
            request.send_header(name, value)
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)
    return route


def redirect(location, status=302):
    def route(request):
        request.send_response(status)
        request.send_header("Location", location)
        request.send_header("Content-Length", "0")
        request.end_headers()
    return route


def chunked(total_bytes, chunk=8192):
    """A route sending ``total_bytes`` with chunked encoding: no Content-Length to trust."""
    def route(request):
        request.send_response(200)
        request.send_header("Content-Type", "application/octet-stream")
        request.send_header("Transfer-Encoding", "chunked")
        request.end_headers()
        left = total_bytes
        while left:
            part = min(chunk, left)
            request.wfile.write(b"%x\r\n%s\r\n" % (part, b"x" * part))
            left -= part
        request.wfile.write(b"0\r\n\r\n")
    return route


def trickle(stop):
    """A route that sends one byte every 20 ms until ``stop`` is set or the client hangs up."""
    def route(request):
        request.send_response(200)
        request.send_header("Content-Length", "1000000")
        request.end_headers()
        while not stop.is_set():
            request.wfile.write(b"x")
            request.wfile.flush()
            time.sleep(0.02)
    return route


def silent(stop):
    """A route that never answers (until ``stop``)."""
    def route(request):
        stop.wait(10)
    return route


@pytest.fixture
def files():
    server = FileServer()
    yield server
    server.stop()


@pytest.fixture
def stop():
    event = threading.Event()
    yield event
    event.set()


LOCAL = FileFetcher(allow_loopback=True)


# ------------------------------------------------------------------------------ addresses

@pytest.mark.parametrize("address", [
    "10.0.0.1", "172.16.5.4", "192.168.1.1", "127.0.0.1", "127.8.8.8", "169.254.169.254", "100.64.0.1",
    "0.0.0.0", "224.0.0.1", "239.255.255.250", "240.0.0.1", "255.255.255.255", "198.18.0.1",
    "::1", "::", "fe80::1", "fc00::1", "fd12:3456::1", "ff02::1", "::ffff:10.0.0.1", "::ffff:127.0.0.1",
    "2002:a00:1::1", "2002:7f00:1::1", "64:ff9b::a00:1", "2001:db8::1",
    "192.0.0.8", "192.88.99.1", "3fff::1", "64:ff9b:1::1",
])
def test_private_local_and_special_addresses_are_not_public(address):
    assert not is_public_address(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "93.184.216.34", "2606:4700:4700::1111",
                                     "2002:808:808::1"])
def test_public_addresses_are_public(address):
    assert is_public_address(ipaddress.ip_address(address))


def fake_dns(monkeypatch, answers):
    """socket.getaddrinfo answering host name -> list of address lists (one per call, the last
    repeated); IP literals resolve as usual. Returns the list of names asked for."""
    real = socket.getaddrinfo
    asked = []

    def getaddrinfo(host, port, *args, **kwargs):
        if host not in answers:
            return real(host, port, *args, **kwargs)
        asked.append(host)
        calls = answers[host]
        addresses = calls[min(len(asked) - 1, len(calls) - 1)]
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "",
                 (a, port) if ":" not in a else (a, port, 0, 0)) for a in addresses]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return asked


@pytest.mark.parametrize("addresses", [["10.0.0.5"], ["93.184.216.34", "10.0.0.5"], ["93.184.216.34", "::1"],
                                       ["169.254.169.254"]])
def test_a_host_resolving_to_any_private_address_is_refused(monkeypatch, addresses):
    fake_dns(monkeypatch, {"files.example.test": [addresses]})
    with pytest.raises(FileFetchError, match="private or local network address"):
        FileFetcher().fetch("https://files.example.test/report.pdf")


@pytest.mark.parametrize("url", ["https://127.0.0.1/x", "https://[::1]/x", "https://10.1.2.3/x",
                                 "https://169.254.169.254/latest/meta-data"])
def test_ip_literals_of_private_addresses_are_refused(url):
    with pytest.raises(FileFetchError, match="private or local network address"):
        FileFetcher().fetch(url)


def test_loopback_is_refused_without_the_setting(files):
    files.routes["/a.csv"] = send(CSV)
    with pytest.raises(FileFetchError, match="https://"):
        FileFetcher().fetch(files.url("/a.csv"))
    with pytest.raises(FileFetchError, match="private or local"):
        FileFetcher().fetch(files.url("/a.csv").replace("http://", "https://"))
    assert files.seen == []


def test_the_loopback_setting_allows_only_loopback_over_http(monkeypatch):
    fake_dns(monkeypatch, {"files.example.test": [["93.184.216.34"]]})
    with pytest.raises(FileFetchError, match="https://"):
        LOCAL.fetch("http://files.example.test/a.csv")
    with pytest.raises(FileFetchError, match="https://"):
        LOCAL.fetch("http://10.0.0.1/a.csv")
    with pytest.raises(FileFetchError, match="private or local"):
        LOCAL.fetch("https://10.0.0.1/a.csv")


def test_the_connection_goes_to_the_checked_address_not_a_second_dns_answer(monkeypatch, files):
    # A rebinding DNS: the first answer is checked, a later one would point elsewhere (nothing
    # listens on 127.0.0.2 at this port). The fetch only works when the checked address is used.
    files.routes["/a.csv"] = send(CSV)
    asked = fake_dns(monkeypatch, {"localhost": [["127.0.0.1"], ["127.0.0.2"]]})
    fetched = LOCAL.fetch(files.url("/a.csv", host="localhost"))
    assert fetched.content == CSV
    assert asked == ["localhost"]
    assert files.seen[0]["host"] == f"localhost:{files.port}"


@pytest.mark.parametrize("url, problem", [
    ("ftp://example.com/a.csv", "https://"),
    ("file:///etc/passwd", "https://"),
    ("https://user:pw@example.com/a.csv", "user name or password"),
    ("https://example.com/a b.csv", "spaces"),
    ("https://example.com/" + "a" * 3000, "at most 2,048 characters"),
    ("https://example.com:99999/a.csv", "invalid host or port"),
    ("https:///a.csv", "no host"),
])
def test_malformed_urls_are_refused(url, problem):
    with pytest.raises(FileFetchError, match=problem):
        FileFetcher().fetch(url)


# ------------------------------------------------------------------------------ redirects

def test_redirects_are_followed_and_each_target_is_checked(files):
    files.routes["/start"] = redirect("/middle")
    files.routes["/middle"] = redirect(files.url("/report.csv?sig=2", host="localhost"), status=307)
    files.routes["/report.csv"] = send(CSV)
    fetched = LOCAL.fetch(files.url("/start?sig=1"))
    assert fetched.content == CSV and fetched.filename == "report.csv"
    assert [s["path"] for s in files.seen] == ["/start?sig=1", "/middle", "/report.csv?sig=2"]


@pytest.mark.parametrize("target", ["http://10.0.0.1/x", "http://169.254.169.254/latest/meta-data",
                                    "https://[fd00::1]/x", "ftp://example.com/x"])
def test_a_redirect_to_a_private_address_or_another_scheme_is_refused(files, target):
    files.routes["/start"] = redirect(target)
    with pytest.raises(FileFetchError, match="private or local|https://"):
        LOCAL.fetch(files.url("/start"))
    assert len(files.seen) == 1


def test_too_many_redirects_are_refused(files):
    files.routes["/loop"] = redirect("/loop")
    with pytest.raises(FileFetchError, match=f"more than {MAX_REDIRECTS} times"):
        LOCAL.fetch(files.url("/loop"))
    assert len(files.seen) == MAX_REDIRECTS + 1


# ------------------------------------------------------------------------------ limits

def test_a_file_at_the_limit_is_fetched_and_one_byte_more_is_refused(files):
    files.routes["/exact"] = chunked(1000)
    files.routes["/over"] = chunked(1001)
    fetcher = FileFetcher(allow_loopback=True, max_bytes=1000)
    assert len(fetcher.fetch(files.url("/exact")).content) == 1000
    with pytest.raises(FileFetchError, match="larger than"):
        fetcher.fetch(files.url("/over"))


def test_the_limit_counts_bytes_read_not_the_declared_length(files):
    # No Content-Length at all: only counting what arrives can stop it.
    files.routes["/big"] = chunked(5 * 1024 * 1024)
    with pytest.raises(FileFetchError, match="larger than"):
        FileFetcher(allow_loopback=True, max_bytes=64 * 1024).fetch(files.url("/big"))


def test_a_declared_length_over_the_limit_is_refused_before_reading(files):
    def huge(request):
        request.send_response(200)
        request.send_header("Content-Length", str(10 ** 12))
        request.end_headers()
        request.wfile.write(b"x" * 10)
    files.routes["/huge"] = huge
    with pytest.raises(FileFetchError, match="larger than"):
        LOCAL.fetch(files.url("/huge"))


def test_the_limit_applies_to_the_decompressed_bytes(files):
    bomb = gzip.compress(b"\0" * (2 * 1024 * 1024))
    files.routes["/bomb"] = send(bomb, "text/plain", headers=[("Content-Encoding", "gzip")])
    files.routes["/small"] = send(gzip.compress(CSV), "text/csv", headers=[("Content-Encoding", "gzip")])
    fetcher = FileFetcher(allow_loopback=True, max_bytes=256 * 1024)
    assert len(bomb) < fetcher.max_bytes
    with pytest.raises(FileFetchError, match="larger than"):
        fetcher.fetch(files.url("/bomb"))
    assert fetcher.fetch(files.url("/small")).content == CSV


def test_a_smaller_limit_per_call_wins(files):
    files.routes["/a"] = chunked(2000)
    with pytest.raises(FileFetchError, match="larger than"):
        LOCAL.fetch(files.url("/a"), max_bytes=1000)


def test_a_trickling_download_stops_at_the_total_deadline(files, stop):
    # Each byte comes well within any per-read timeout; only the total deadline ends it.
    files.routes["/slow"] = trickle(stop)
    with pytest.raises(FileFetchError, match="took longer than 0.5 seconds"):
        FileFetcher(allow_loopback=True, total_seconds=0.5).fetch(files.url("/slow"))


def trickled_headers(stop):
    """A route that sends its status line, then one header line a byte every 50 ms."""
    def route(request):
        request.wfile.write(b"HTTP/1.1 200 OK\r\n")
        while not stop.is_set():
            request.wfile.write(b"X")
            request.wfile.flush()
            time.sleep(0.05)
    return route


def test_headers_trickled_a_byte_at_a_time_stop_at_the_total_deadline(files, stop):
    # Each byte comes within any per-read timeout; only the watchdog ends the header read.
    files.routes["/slow-headers"] = trickled_headers(stop)
    with pytest.raises(FileFetchError, match="took longer than 0.5 seconds"):
        FileFetcher(allow_loopback=True, total_seconds=0.5).fetch(files.url("/slow-headers"))


@pytest.mark.parametrize("headers", [
    [("Content-Length", "\u00b2")],  # a digit to str.isdigit(), not to int()
    [("Location", "https://[bad/x")],
])
def test_a_hostile_answer_is_a_fetch_error_not_a_crash(files, headers):
    def route(request):
        request.send_response(302 if headers[0][0] == "Location" else 200)
        for name, value in headers:
            request.send_header(name, value)
        request.end_headers()
        request.wfile.write(b"x")
    files.routes["/odd"] = route
    try:
        fetched = LOCAL.fetch(files.url("/odd"))
    except FileFetchError:
        return  # refused in words: fine; anything else than a file or FileFetchError fails the test
    assert fetched.content == b"x"


def test_fetches_beyond_the_concurrency_limit_are_refused_as_busy(files):
    files.routes["/a.csv"] = send(CSV)
    taken = [file_fetch._FETCH_SLOTS.acquire(timeout=5) for _ in range(file_fetch.MAX_CONCURRENT_FETCHES)]
    try:
        assert all(taken)
        with pytest.raises(FetchBusy):
            LOCAL.fetch(files.url("/a.csv"))
    finally:
        for _ in taken:
            file_fetch._FETCH_SLOTS.release()
    assert LOCAL.fetch(files.url("/a.csv")).content == CSV  # and a slot freed serves again


def test_an_internationalised_host_is_asked_for_by_its_dns_name(monkeypatch):
    asked = []

    def resolve(host, port, type=0):
        asked.append(host)
        raise socket.gaierror("no network here")
    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    with pytest.raises(FileFetchError, match="could not be found"):
        LOCAL.fetch("https://bücher.example/a.csv")
    assert asked == ["xn--bcher-kva.example"]


def test_a_server_that_never_answers_times_out(files, stop):
    files.routes["/silent"] = silent(stop)
    with pytest.raises(FileFetchError, match="took longer than 0.5 seconds"):
        FileFetcher(allow_loopback=True, total_seconds=0.5).fetch(files.url("/silent"))


def test_an_unreachable_server_is_reported():
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    with pytest.raises(FileFetchError, match="could not be reached"):
        LOCAL.fetch(f"http://127.0.0.1:{port}/a.csv")


@pytest.mark.parametrize("status, words", [(404, "404 (not found)"), (403, "403 (forbidden)"),
                                           (500, "500 (internal server error)"), (204, "204")])
def test_an_error_answer_names_the_status(files, status, words):
    files.routes["/a"] = send(b"", status=status)
    with pytest.raises(FileFetchError, match=words.replace("(", r"\(").replace(")", r"\)")):
        LOCAL.fetch(files.url("/a"))


# ------------------------------------------------------------------------------ names and types

@pytest.mark.parametrize("disposition, expected", [
    ('attachment; filename="report.pdf"', "report.pdf"),
    ("attachment; filename*=UTF-8''r%C3%A9sum%C3%A9%20final.pdf", "résumé final.pdf"),
    ('attachment; filename="../../etc/passwd"', "passwd"),
    ('attachment; filename="..\\\\windows\\\\evil.exe"', "evil.exe"),
    ('attachment; filename=".htaccess"', "htaccess"),
    ('inline; filename="a\tb<c>:d|e?.txt"', "abcde.txt"),
])
def test_the_filename_comes_from_content_disposition_sanitised(files, disposition, expected):
    files.routes["/download"] = send(CSV, headers=[("Content-Disposition", disposition)])
    assert LOCAL.fetch(files.url("/download?id=7")).filename == expected


def test_the_filename_falls_back_to_the_url_path_then_the_content_type(files):
    files.routes["/folder/My%20Report.csv"] = send(CSV)
    files.routes["/"] = send(b"%PDF-1.4", "application/pdf")
    assert LOCAL.fetch(files.url("/folder/My%20Report.csv?sig=x")).filename == "My Report.csv"
    assert LOCAL.fetch(files.url("/")).filename == "file.pdf"


def test_long_filenames_keep_their_extension():
    name = safe_filename("a" * 400 + ".xlsx")
    assert len(name) == 150 and name.endswith(".xlsx")
    assert safe_filename("..") is None and safe_filename("/") is None


def test_the_content_type_comes_from_the_response_else_the_name(files):
    files.routes["/a.csv"] = send(CSV, "Text/CSV; charset=utf-8")
    files.routes["/b.png"] = send(b"\x89PNG", None)
    files.routes["/c"] = send(b"??", "not a type")
    assert LOCAL.fetch(files.url("/a.csv")).content_type == "text/csv"
    assert LOCAL.fetch(files.url("/b.png")).content_type == "image/png"
    assert LOCAL.fetch(files.url("/c")).content_type == "application/octet-stream"


def test_filename_for_never_returns_an_empty_name():
    assert filename_for({}, "/") == "file"
    assert filename_for({"Content-Disposition": 'attachment; filename=".."'}, "/x/..") == "file"


def test_the_url_and_its_signed_query_never_reach_the_log_or_the_error(files, caplog):
    # urllib3's own debug lines carry URLs; the service keeps them at WARNING (server/log_setup.py).
    caplog.set_level(logging.DEBUG, logger="ghl.file_fetch")
    files.routes["/a.csv"] = send(CSV)
    LOCAL.fetch(files.url("/a.csv?X-Amz-Signature=SECRET-SIG-1"))
    with pytest.raises(FileFetchError) as refused:
        LOCAL.fetch(files.url("/missing.csv?X-Amz-Signature=SECRET-SIG-2"))
    assert "SECRET-SIG" not in caplog.text and "SECRET-SIG" not in str(refused.value)
    assert "/a.csv" not in caplog.text and "127.0.0.1" in caplog.text


# ------------------------------------------------------------------------------ https

def self_signed(tmp_path, host):
    """(server context, CA file) for a certificate naming ``host``, made here."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = tmp_path / f"{host}.pem", tmp_path / f"{host}.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    return context, str(cert_file)


def test_https_verifies_the_host_name_while_connecting_to_the_checked_address(tmp_path):
    context, ca_file = self_signed(tmp_path, "localhost")
    server = FileServer({"/a.csv": send(CSV)}, tls=context)
    try:
        trusting = FileFetcher(allow_loopback=True, ca_certs=ca_file)
        assert trusting.fetch(server.url("/a.csv", host="localhost")).content == CSV
        # The certificate names localhost, not 127.0.0.1: the name is what is verified.
        with pytest.raises(FileFetchError, match="certificate"):
            trusting.fetch(server.url("/a.csv", host="127.0.0.1"))
        with pytest.raises(FileFetchError, match="certificate"):
            LOCAL.fetch(server.url("/a.csv", host="localhost"))  # not signed by a public CA
    finally:
        server.stop()
