"""Bounded cost per request (issue 10): bodies are JSON, read strictly and within limits; every
refusal is a small JSON 4xx, made before any GHL request; worker memory stays flat under floods."""

import json
import socket
import time

import pytest
import requests

from bench.abuse import key_flood
from bench.harness import children_of, rss_kb
from server.request_limits import MAX_JSON_DEPTH, MAX_JSON_ITEMS, JsonRefused, json_shape, parse_json
from tests.conftest import LOCATION, SANDBOX_TOKEN, GunicornService

AUTH = {"Authorization": f"Bearer {SANDBOX_TOKEN}", "X-Location-Id": LOCATION}
JSON = {**AUTH, "Content-Type": "application/json"}
MAX_BODY = 1024 * 1024
SMALL_ERROR_BYTES = 8192


def ghl_requests(sandbox):
    return requests.get(f"{sandbox.url}/_sandbox/requests", timeout=5).json()["requests"]


def clear_ghl_requests(sandbox):
    requests.delete(f"{sandbox.url}/_sandbox/requests", timeout=5).raise_for_status()


def nested(depth):
    return "[" * depth + "]" * depth


# -- the parser, alone ----------------------------------------------------------------------------
@pytest.mark.parametrize("text, items, depth", [
    ('{"a": [1, 2, {"b": "x,y[{"}], "c": "q\\"[,"}', 6, 3),
    ("[]", 1, 1),
    ('"just, a [string"', 0, 0),
    (nested(40), 40, 40),
])
def test_the_shape_counts_only_what_is_outside_strings(text, items, depth):
    assert json_shape(text.encode()) == (items, depth)


@pytest.mark.parametrize("text, status, code", [
    ('{"a": NaN}', 400, "invalid_json"),
    ('{"a": Infinity}', 400, "invalid_json"),
    ("[1e400]", 400, "invalid_json"),
    (nested(MAX_JSON_DEPTH + 1), 400, "json_too_deep"),
    (nested(10_000), 400, "json_too_deep"),
    ("[" + ",".join("0" * (MAX_JSON_ITEMS + 1)) + "]", 413, "too_many_items"),
])
def test_the_parser_refuses_what_strict_json_and_the_limits_refuse(text, status, code):
    with pytest.raises(JsonRefused) as refused:
        parse_json(text)
    assert (refused.value.status, refused.value.code) == (status, code)


def test_the_parser_takes_json_at_the_limits():
    assert parse_json(nested(MAX_JSON_DEPTH)) == json.loads(nested(MAX_JSON_DEPTH))
    at_limit = "[" + ",".join("0" * MAX_JSON_ITEMS) + "]"
    assert len(parse_json(at_limit)) == MAX_JSON_ITEMS


def test_escaped_quotes_cannot_make_the_shape_check_slow():
    # Half a megabyte of escaped quotes in an unterminated string: linear, and refused as invalid.
    hostile = b'"' + b'\\"' * 250_000
    started = time.perf_counter()
    with pytest.raises(JsonRefused):
        parse_json(hostile)
    assert time.perf_counter() - started < 5


# -- bodies through the app -----------------------------------------------------------------------
@pytest.mark.parametrize("content_type, body", [
    ("application/x-www-form-urlencoded", "firstName=Ada&email=ada%40example.com"),
    ("text/plain", '{"firstName": "Ada"}'),
    (None, '{"firstName": "Ada"}'),
])
def test_a_body_that_is_not_json_is_415_and_nothing_is_created(client, sandbox_reset, content_type, body):
    clear_ghl_requests(sandbox_reset)
    headers = dict(AUTH, **({"Content-Type": content_type} if content_type else {}))
    response = client.post("/actions/create_contact", data=body, headers=headers)
    assert response.status_code == 415, response.json
    error = response.json["error"]
    assert error["code"] == "unsupported_media_type" and "Content-Type: application/json" in error["message"]
    assert ghl_requests(sandbox_reset) == []


def test_json_with_a_charset_and_an_empty_body_still_work(client, sandbox_reset):
    created = client.post("/actions/create_contact", data=json.dumps({"firstName": "Ada"}),
                          headers={**AUTH, "Content-Type": "application/json; charset=utf-8"})
    assert created.status_code == 200 and created.json["firstName"] == "Ada"
    polled = client.post("/triggers/list_contacts_deprecated", headers=AUTH)
    assert polled.status_code == 200 and isinstance(polled.json, list)
    queried = client.get("/triggers/get_contact?contactId=sandbox-contact-1", headers=AUTH)
    assert queried.status_code == 200 and queried.json[0]["ghl_id"] == "sandbox-contact-1"


@pytest.mark.parametrize("body, status, code", [
    ('{"method": "POST", "path": "/contacts/", "body": {"a": NaN}}', 400, "invalid_json"),
    ('{"method": "POST", "path": "/contacts/", "body": {"a": -Infinity}}', 400, "invalid_json"),
    ('{"method": "POST", "path": "/contacts/", "body": ' + nested(10_000) + "}", 413, "too_many_items"),
    ('{"method": "POST", "path": "/contacts/", "body": ' + nested(MAX_JSON_DEPTH) + "}", 400, "json_too_deep"),
    ('{"method": "POST", "path": "/contacts/", "body": "{\\"a\\": NaN}"}', 400, "invalid_input"),
    ('{"method": "POST", "path": "/contacts/", "body": "' + nested(100) + '"}', 400, "invalid_input"),
])
def test_bodies_and_json_inputs_beyond_strict_json_are_4xx_before_ghl(client, sandbox_reset, body, status, code):
    clear_ghl_requests(sandbox_reset)
    response = client.post("/actions/api_request", data=body, headers=JSON)
    assert response.status_code == status and response.json["error"]["code"] == code, response.json
    if code == "invalid_input":
        assert set(response.json["error"]["fields"]) == {"body"}
    assert ghl_requests(sandbox_reset) == []


def test_a_flood_of_unknown_keys_answers_a_short_list_and_a_count(client, sandbox_reset):
    clear_ghl_requests(sandbox_reset)
    body = {f"unknown_{n}": 1 for n in range(5_000)}
    body["email"] = "not-an-email-but-text"
    body["dnd"] = "maybe"
    response = client.post("/actions/create_contact", json=body, headers=AUTH)
    assert response.status_code == 400 and len(response.data) < SMALL_ERROR_BYTES
    error = response.json["error"]
    # The declared inputs' problems come first, whatever number of unknown keys follows.
    assert error["fields"]["dnd"] == "must be true or false" and len(error["fields"]) == 25
    assert "and 4,976 more" in error["message"]
    assert ghl_requests(sandbox_reset) == []


def test_the_hook_target_url_with_a_bracketed_name_is_a_400(client, sandbox_reset):
    response = client.post("/hooks", headers=AUTH, json={"trigger": "list_contacts_deprecated",
                                                         "target_url": "https://[hooks.zapier.com]/x"})
    assert response.status_code == 400 and response.json["error"]["code"] == "invalid_target_url"


# -- under the Procfile's gunicorn ----------------------------------------------------------------
def raw_exchange(url, data, read_timeout=10):
    """Send ``data`` on one connection and read until the server closes it (or the timeout)."""
    host, port = url.rsplit("/", 1)[1].split(":")
    with socket.create_connection((host, int(port)), timeout=read_timeout) as sock:
        sock.sendall(data)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except socket.timeout:
            pass
    return b"".join(chunks)


def json_answers(raw):
    """(status, content type, JSON body) of each HTTP/1.1 answer in ``raw``, in order."""
    answers = []
    while raw:
        head, _, rest = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = dict(line.split(": ", 1) for line in lines[1:])
        length = int(headers["Content-Length"])
        answers.append((int(lines[0].split()[1]), headers["Content-Type"], json.loads(rest[:length])))
        raw = rest[length:]
    return answers


@pytest.fixture
def one_worker(tmp_path, sandbox_reset):
    service = GunicornService({"GHL_BASE_URL": sandbox_reset.url, "DATABASE_PATH": str(tmp_path / "s.sqlite3"),
                               "SECRET_KEY": "test-secret", "LOG_LEVEL": "WARNING"},
                              workers=1, log_path=tmp_path / "gunicorn.log").start()
    yield service
    service.stop()


def test_gunicorns_own_refusals_are_json(one_worker):
    url = one_worker.url
    too_long = requests.get(f"{url}/healthz?x={'a' * 9000}", timeout=10)
    assert too_long.status_code == 414 and too_long.headers["Content-Type"] == "application/json"
    assert too_long.json()["error"]["code"] == "request_line_too_long" and "a" * 100 not in too_long.text
    many = requests.get(f"{url}/healthz", headers={f"X-H{n}": "v" for n in range(120)}, timeout=10)
    assert many.status_code == 431 and many.json()["error"]["code"] == "headers_too_large"
    big = requests.get(f"{url}/healthz", headers={"X-Big": "b" * 9000}, timeout=10)
    assert big.status_code == 431 and big.json()["error"]["code"] == "headers_too_large"
    [(status, content_type, body)] = json_answers(raw_exchange(url, b"GET /healthz HTTP/1.1\r\nBad Header\r\n\r\n"))
    assert (status, content_type, body["error"]["code"]) == (400, "application/json", "malformed_request")
    # A request line just inside the limit is the app's to answer.
    assert requests.get(f"{url}/healthz?x={'a' * 4500}", timeout=10).status_code == 200


def test_oversized_bodies_are_a_fast_413_however_they_are_sent(one_worker, sandbox_reset):
    clear_ghl_requests(sandbox_reset)
    url = f"{one_worker.url}/actions/create_contact"
    oversized = b'{"firstName": "' + b"a" * (3 * MAX_BODY) + b'"}'
    declared = requests.post(url, data=oversized, headers=JSON, timeout=30)
    chunked = requests.post(url, data=iter([oversized[:MAX_BODY], oversized[MAX_BODY:]]), headers=JSON, timeout=30)
    for response in (declared, chunked):
        assert response.status_code == 413 and response.json()["error"]["code"] == "body_too_large"
    # A Content-Length shorter than the body: the body is cut there (invalid JSON), the rest is no request.
    body = b'{"firstName": "Liar", "email": "liar@example.com"}'
    head = (f"POST /actions/create_contact HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {SANDBOX_TOKEN}\r\n"
            f"X-Location-Id: {LOCATION}\r\nContent-Type: application/json\r\nContent-Length: 10\r\n\r\n")
    answers = json_answers(raw_exchange(one_worker.url, head.encode() + body + b"\r\n"))
    assert [(status, body["error"]["code"]) for status, _, body in answers] == [
        (400, "invalid_json"), (400, "malformed_request")]
    assert ghl_requests(sandbox_reset) == []


def test_refusals_are_small_and_fast_and_worker_memory_stays_flat(one_worker, sandbox_reset):
    url = f"{one_worker.url}/actions/create_contact"
    largest = key_flood(MAX_JSON_ITEMS, MAX_BODY)
    over_items = key_flood(MAX_JSON_ITEMS + 1, MAX_BODY)
    oversized = ("{" + ",".join(f'"k{n}":1' for n in range(600_000)) + "}").encode()
    deep = nested(10_000).encode()
    refusals = [(largest, 400, "invalid_input"), (over_items, 413, "too_many_items"),
                (oversized, 413, "body_too_large"), (deep, 400, "json_too_deep"),
                (b'{"firstName": NaN}', 400, "invalid_json")]

    def send(body):
        started = time.monotonic()
        response = requests.post(url, data=body, headers=JSON, timeout=30)
        return response, time.monotonic() - started

    [worker] = children_of(one_worker.process.pid)
    for body, status, code in refusals:
        response, took = send(body)
        assert (response.status_code, response.json()["error"]["code"]) == (status, code)
        assert len(response.content) < SMALL_ERROR_BYTES and took < 2, (code, len(response.content), took)
    for _ in range(10):  # the worker's allocator reaches the level these bodies need
        send(largest)
    before = rss_kb(worker)
    for _ in range(20):
        send(largest)
    for _ in range(3):
        send(oversized)
    grown_mib = (rss_kb(worker) - before) / 1024
    assert grown_mib < 5, f"the worker grew {grown_mib:.1f} MiB over 23 refused floods"
    assert ghl_requests(sandbox_reset) == []
