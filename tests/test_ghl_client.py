"""The GHL client's retry policy, with exact call counts and sleeping patched out."""

import logging

import pytest
import requests
import responses

from ghl.client import GhlClient
from ghl.errors import GhlError

BASE = "https://ghl.test"
TOKEN = "pit-secret-token-value"


@pytest.fixture
def sleeps(monkeypatch):
    slept = []
    monkeypatch.setattr("ghl.client.time.sleep", slept.append)
    return slept


@pytest.fixture
def client():
    return GhlClient(BASE, max_tries=4, max_seconds=20)


@responses.activate
def test_sends_token_version_and_json(client, sleeps):
    responses.post(f"{BASE}/contacts/", json={"contact": {"id": "c1"}}, status=201)
    result = client.request("POST", "/contacts/", TOKEN, version="2021-07-28", body={"email": "a@example.com"})
    assert result.status == 201 and result.body == {"contact": {"id": "c1"}}
    sent = responses.calls[0].request
    assert sent.headers["Authorization"] == f"Bearer {TOKEN}"
    assert sent.headers["Version"] == "2021-07-28"
    assert sent.body == b'{"email": "a@example.com"}'
    assert sleeps == []


@responses.activate
def test_429_is_retried_after_retry_after_even_for_post(client, sleeps):
    responses.post(f"{BASE}/contacts/", status=429, headers={"Retry-After": "2"}, json={"message": "slow down"})
    responses.post(f"{BASE}/contacts/", status=201, json={"contact": {"id": "c1"}})
    assert client.request("POST", "/contacts/", TOKEN).status == 201
    assert len(responses.calls) == 2
    assert sleeps == [2.0]


@responses.activate
def test_429_without_retry_after_waits_for_the_reported_rate_limit_window(client, sleeps):
    responses.get(f"{BASE}/users/", status=429,
                  headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Interval-Milliseconds": "1500"})
    responses.get(f"{BASE}/users/", json={"users": []})
    client.request("GET", "/users/", TOKEN)
    assert sleeps == [1.5]


@responses.activate
def test_429_that_would_outlast_the_budget_gives_up_at_once_with_retry_after(client, sleeps):
    responses.get(f"{BASE}/users/", status=429, headers={"Retry-After": "60"})
    with pytest.raises(GhlError) as caught:
        client.request("GET", "/users/", TOKEN)
    assert len(responses.calls) == 1 and sleeps == []
    assert caught.value.status == 429 and caught.value.retry_after == 60


@responses.activate
def test_5xx_on_get_is_retried_up_to_the_cap_then_502(client, sleeps):
    for _ in range(5):
        responses.get(f"{BASE}/contacts/c1", status=503, json={"message": "down"})
    with pytest.raises(GhlError) as caught:
        client.request("GET", "/contacts/c1", TOKEN)
    assert len(responses.calls) == 4 and len(sleeps) == 3
    assert caught.value.status == 502 and caught.value.code == "ghl_unavailable"


@responses.activate
def test_5xx_then_success_on_put_is_retried(client, sleeps):
    responses.put(f"{BASE}/contacts/c1", status=500)
    responses.put(f"{BASE}/contacts/c1", json={"contact": {"id": "c1"}})
    assert client.request("PUT", "/contacts/c1", TOKEN).status == 200
    assert len(responses.calls) == 2


@responses.activate
def test_5xx_on_post_is_not_retried_and_says_the_outcome_is_unknown(client, sleeps):
    responses.post(f"{BASE}/contacts/", status=502)
    with pytest.raises(GhlError) as caught:
        client.request("POST", "/contacts/", TOKEN)
    assert len(responses.calls) == 1 and sleeps == []
    assert caught.value.code == "outcome_unknown" and "Check in GHL" in caught.value.message


@responses.activate
def test_read_timeout_on_post_is_not_retried(client, sleeps):
    responses.post(f"{BASE}/contacts/", body=requests.exceptions.ReadTimeout("read timed out"))
    with pytest.raises(GhlError) as caught:
        client.request("POST", "/contacts/", TOKEN)
    assert len(responses.calls) == 1
    assert caught.value.status == 504 and caught.value.code == "outcome_unknown"


@responses.activate
def test_read_timeout_on_get_is_retried(client, sleeps):
    responses.get(f"{BASE}/contacts/c1", body=requests.exceptions.ReadTimeout("read timed out"))
    responses.get(f"{BASE}/contacts/c1", json={"contact": {}})
    assert client.request("GET", "/contacts/c1", TOKEN).status == 200
    assert len(responses.calls) == 2


@responses.activate
def test_refused_connection_is_retried_even_for_post(client, sleeps):
    refused = requests.exceptions.ConnectionError("Failed to establish a new connection: [Errno 111] Connection refused")
    responses.post(f"{BASE}/contacts/", body=refused)
    responses.post(f"{BASE}/contacts/", status=201, json={"contact": {"id": "c1"}})
    assert client.request("POST", "/contacts/", TOKEN).status == 201
    assert len(responses.calls) == 2


@responses.activate
def test_dropped_connection_after_sending_a_post_is_not_retried(client, sleeps):
    dropped = requests.exceptions.ConnectionError("('Connection aborted.', RemoteDisconnected('closed'))")
    responses.post(f"{BASE}/contacts/", body=dropped)
    with pytest.raises(GhlError) as caught:
        client.request("POST", "/contacts/", TOKEN)
    assert len(responses.calls) == 1 and caught.value.code == "outcome_unknown"


@responses.activate
def test_401_is_final_with_a_reconnect_hint_and_no_token(client, sleeps, caplog):
    caplog.set_level(logging.DEBUG)
    responses.get(f"{BASE}/contacts/c1", status=401,
                  json={"statusCode": 401, "message": "Invalid token: access token is invalid"})
    with pytest.raises(GhlError) as caught:
        client.request("GET", "/contacts/c1", TOKEN)
    assert len(responses.calls) == 1
    assert caught.value.status == 401 and "reconnect" in caught.value.message
    assert TOKEN not in str(caught.value.to_json()) and TOKEN not in caplog.text


@responses.activate
def test_422_message_list_is_joined(client, sleeps):
    responses.post(f"{BASE}/contacts/search", status=422,
                   json={"statusCode": 422, "message": ["locationId should not be empty", "pageLimit missing"]})
    with pytest.raises(GhlError) as caught:
        client.request("POST", "/contacts/search", TOKEN)
    assert caught.value.status == 422
    assert caught.value.message == "locationId should not be empty; pageLimit missing"


def test_url_for_refuses_anything_but_the_base_url(client):
    assert client.url_for("/contacts/abc") == f"{BASE}/contacts/abc"
    for bad in ("//evil.test/x", "https://evil.test/x", "contacts", "@evil.test/x"):
        with pytest.raises(ValueError):
            client.url_for(bad)


# -- the request path: what Session.request would send, for less CPU --------------------------------

def _captured_sends(session):
    """Replace ``session.send`` by a recorder: each call's (PreparedRequest, keyword arguments)."""
    sent = []

    def send(prepared, **kwargs):
        sent.append((prepared, kwargs))
        return "sent"
    session.send = send
    return sent


def _as_sent(prepared, kwargs):
    return (prepared.method, prepared.url, list(prepared.headers.items()), prepared.body,
            prepared._cookies.get_dict(), dict(prepared.hooks), prepared._body_position,
            sorted(kwargs.items(), key=str))


REQUESTS = [
    ("GET", f"{BASE}/contacts/", {"params": {"locationId": "L1", "limit": 20, "skip": None, "tags": ["a", "b c"],
                                             "flag": True, "one": 1, "x": 1.5, "é": "ü/?&"},
                                  "headers": {"Authorization": "Bearer t", "Accept": "application/json",
                                              "Version": "2021-07-28"}, "timeout": (3.05, 10)}),
    ("GET", f"{BASE}/contacts/", {"params": {"locationId": "L1", "limit": "20", "flag": 1, "one": "1"},
                                  "headers": {"Authorization": "Bearer t"}, "timeout": (3.05, 10)}),
    ("GET", f"{BASE}/contacts/c%201", {"headers": {"Authorization": "Bearer t", "accept": "application/json"},
                                       "timeout": (1, 2)}),
    ("POST", f"{BASE}/contacts/", {"json": {"a": 1, "b": [1, "x"]}, "timeout": (3, 4),
                                   "headers": {"Authorization": "Bearer t", "Accept": "application/json"}}),
    ("PUT", f"{BASE}/contacts/x", {"params": {"a": "1"}, "data": b"--b\r\nxx", "timeout": (3, 4),
                                   "headers": {"Authorization": "Bearer t",
                                               "Content-Type": "multipart/form-data; boundary=b"}}),
    ("DELETE", f"{BASE}/contacts/x?keep=1", {"params": {"a": "1"}, "timeout": (3, 4),
                                             "headers": {"Authorization": "Bearer t", "User-Agent": None}}),
    ("post", f"{BASE}/x", {"params": {}, "json": None, "data": None, "headers": {"Authorization": "Bearer t"},
                           "timeout": (3, 4)}),
]


@pytest.mark.parametrize("with_cookie", [False, True])
def test_send_hands_session_send_exactly_what_session_request_would(with_cookie):
    from ghl.client import pooled_session, send
    for method, url, kwargs in REQUESTS:
        theirs, ours = pooled_session(BASE), pooled_session(BASE)
        for session in (theirs, ours):
            session.proxies["https"] = "http://proxy.example:3128"
            if with_cookie:  # a cookie GHL set on an earlier answer goes back with the next request
                session.cookies.set("sid", "v", domain="ghl.test")
        by_request, by_send = _captured_sends(theirs), _captured_sends(ours)
        for _ in range(2):  # the second time, the prepared URL is the remembered one
            assert theirs.request(method, url, **kwargs) == send(ours, method, url, **kwargs) == "sent"
        assert [_as_sent(*s) for s in by_send] == [_as_sent(*s) for s in by_request], (method, url)


def test_send_leaves_a_session_that_reads_the_environment_or_is_its_own_kind_to_its_request():
    from ghl.client import pooled_session, send

    class OwnSession(requests.Session):
        def prepare_request(self, request):
            request.headers["X-Own"] = "1"
            return super().prepare_request(request)

    environment = pooled_session(BASE)
    environment.trust_env = True
    for session in (environment, OwnSession(), pooled_session(BASE)):  # the last: its request replaced below
        calls = []
        session.request = lambda *args, **kwargs: calls.append((args, kwargs)) or "theirs"
        assert send(session, "GET", f"{BASE}/users/", params={"a": "1"}, headers={"Authorization": "Bearer t"},
                    timeout=(1, 2)) == "theirs"
        assert calls == [(("GET", f"{BASE}/users/"), {"params": {"a": "1"}, "data": None,
                                                      "headers": {"Authorization": "Bearer t"}, "json": None,
                                                      "timeout": (1, 2)})]


@responses.activate
def test_cookies_ghl_sets_go_back_and_redirects_are_followed_as_before(client, sleeps):
    responses.get(f"{BASE}/old", status=301, headers={"Location": f"{BASE}/new", "Set-Cookie": "sid=abc; Path=/"})
    responses.get(f"{BASE}/new", json={"users": []})
    assert client.request("GET", "/old", TOKEN).body == {"users": []}
    assert responses.calls[1].request.headers["Cookie"] == "sid=abc"
    assert responses.calls[1].request.headers["Authorization"] == f"Bearer {TOKEN}"
