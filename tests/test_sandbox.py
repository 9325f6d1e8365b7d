"""The sandbox GHL, tested the way its users meet it: a real loopback server and ``requests``."""

import json
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from catalog.registry import load_catalog
from sandbox import LOCATION_ID, serve_sandbox

TOKEN = "sandbox-token"
V2 = "2021-07-28"
CALENDARS_VERSION = "2021-04-15"
ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
RATE_HEADERS = ("X-RateLimit-Limit-Daily", "X-RateLimit-Daily-Remaining", "X-RateLimit-Interval-Milliseconds",
                "X-RateLimit-Max", "X-RateLimit-Remaining")
SEED_CONTACTS = 5


def headers(version=V2, token=TOKEN):
    found = {"Authorization": f"Bearer {token}"}
    if version:
        found["Version"] = version
    return found


@pytest.fixture
def ghl(sandbox):
    """A session on a freshly reset sandbox; ``ghl.url(path)`` is the full URL."""
    requests.post(sandbox.url + "/_sandbox/reset").raise_for_status()
    session = requests.Session()
    session.headers.update(headers())
    session.url = lambda path: sandbox.url + path
    yield session
    session.close()


def list_contacts(ghl, **params):
    return ghl.get(ghl.url("/contacts/"), params={"locationId": LOCATION_ID, **params})


def create_contact(ghl, **fields):
    response = ghl.post(ghl.url("/contacts/"), json={"locationId": LOCATION_ID, **fields})
    assert response.status_code == 201, response.text
    return response.json()["contact"]


def bulk_contacts(ghl, count, location_id=LOCATION_ID):
    records = [{"firstName": f"Bulk{n}", "email": f"bulk{n}@example.com"} for n in range(count)]
    response = requests.post(ghl.url("/_sandbox/records"),
                             json={"path": "/contacts/", "records": records, "locationId": location_id})
    assert response.status_code == 201
    return response.json()["ids"]


# -- auth and Version ---------------------------------------------------------------------

def test_missing_or_wrong_token_is_401(ghl):
    for auth in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        response = requests.get(ghl.url("/contacts/"), params={"locationId": LOCATION_ID},
                                headers={"Version": V2, **auth})
        assert response.status_code == 401
        assert response.json() == {"statusCode": 401, "message": "Invalid token: access token is invalid",
                                   "error": "Unauthorized"}


@pytest.mark.spec_violations_expected  # sends bad requests on purpose
def test_version_header_must_match_the_operation(ghl):
    missing = ghl.get(ghl.url("/contacts/"), params={"locationId": LOCATION_ID}, headers={"Version": None})
    assert missing.status_code == 400
    assert missing.json() == {"statusCode": 400, "message": "Version header is missing or invalid"}
    # Calendars want 2021-04-15; the contacts version is refused there.
    params = {"locationId": LOCATION_ID}
    assert ghl.get(ghl.url("/calendars/"), params=params).status_code == 400
    assert ghl.get(ghl.url("/calendars/"), params=params, headers={"Version": CALENDARS_VERSION}).status_code == 200


@pytest.mark.spec_violations_expected  # sends bad requests on purpose
def test_unknown_path_answers_like_nestjs(ghl):
    response = ghl.get(ghl.url("/no/such/thing"))
    assert response.status_code == 404
    assert response.json()["message"] == "Cannot GET /no/such/thing"


# -- the resource store -------------------------------------------------------------------

def test_created_contact_is_listed_newest_first_with_id_and_timestamps(ghl):
    first = create_contact(ghl, firstName="First", email="first@example.com")
    second = create_contact(ghl, firstName="Second", email="second@example.com")
    for contact in (first, second):
        assert len(contact["id"]) == 20
        for field in ("dateAdded", "dateUpdated", "createdAt", "updatedAt"):
            assert ISO_MS.match(contact[field])
    assert second["dateAdded"] > first["dateAdded"]

    body = list_contacts(ghl).json()
    assert [c["id"] for c in body["contacts"][:2]] == [second["id"], first["id"]]
    assert body["meta"]["total"] == SEED_CONTACTS + 2
    assert ghl.get(ghl.url(f"/contacts/{first['id']}")).json()["contact"]["firstName"] == "First"


def test_update_bumps_date_updated_and_delete_removes(ghl):
    contact = create_contact(ghl, firstName="Old")
    updated = ghl.put(ghl.url(f"/contacts/{contact['id']}"), json={"firstName": "New"}).json()["contact"]
    assert updated["firstName"] == "New"
    assert updated["dateAdded"] == contact["dateAdded"]
    assert updated["dateUpdated"] > contact["dateUpdated"]

    deleted = ghl.delete(ghl.url(f"/contacts/{contact['id']}"))
    assert deleted.status_code == 200 and deleted.json()["succeeded"] is True
    missing = ghl.get(ghl.url(f"/contacts/{contact['id']}"))
    assert missing.status_code == 404 and missing.json()["statusCode"] == 404


def test_nested_collections_tags_and_task_completion(ghl):
    contact = create_contact(ghl, tags=["lead"])
    tags = ghl.post(ghl.url(f"/contacts/{contact['id']}/tags"), json={"tags": ["vip", "lead"]})
    assert tags.status_code == 201 and tags.json()["tags"] == ["lead", "vip"]

    task = ghl.post(ghl.url(f"/contacts/{contact['id']}/tasks"),
                    json={"title": "Call", "dueDate": "2030-01-01T00:00:00Z", "completed": False}).json()["task"]
    assert task["contactId"] == contact["id"]
    done = ghl.put(ghl.url(f"/contacts/{contact['id']}/tasks/{task['id']}/completed"), json={"completed": True})
    assert done.json()["task"]["completed"] is True
    tasks = ghl.get(ghl.url(f"/contacts/{contact['id']}/tasks")).json()["tasks"]
    assert [(t["id"], t["completed"]) for t in tasks] == [(task["id"], True)]
    assert ghl.get(ghl.url(f"/contacts/{contact['id']}")).json()["contact"]["tags"] == ["lead", "vip"]
    assert ghl.get(ghl.url("/contacts/nope/tasks")).status_code == 404


def test_a_location_filter_shows_only_that_locations_records(ghl):
    bulk_contacts(ghl, 3, location_id="other-location")
    ours = list_contacts(ghl).json()
    theirs = list_contacts(ghl, locationId="other-location").json()
    assert ours["meta"]["total"] == SEED_CONTACTS
    assert theirs["meta"]["total"] == 3
    assert {c["locationId"] for c in theirs["contacts"]} == {"other-location"}


def test_concurrent_creates_get_unique_ids_and_distinct_timestamps(ghl):
    created = []

    def worker():
        with requests.Session() as session:
            session.headers.update(headers())
            for n in range(10):
                created.append(session.post(ghl.url("/contacts/"), json={"locationId": LOCATION_ID}).json())

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    contacts = [c["contact"] for c in created]
    assert len({c["id"] for c in contacts}) == len({c["dateAdded"] for c in contacts}) == 40


# -- GHL's own behaviours ------------------------------------------------------------------

@pytest.mark.spec_violations_expected  # sends bad requests on purpose
def test_contacts_list_needs_location_id(ghl):
    response = ghl.get(ghl.url("/contacts/"))
    assert response.status_code == 422
    assert response.json() == {"statusCode": 422, "message": ["locationId should not be empty"],
                               "error": "Unprocessable Entity"}


def test_paging_with_both_cursors_visits_every_contact_once(ghl):
    ids = bulk_contacts(ghl, 250)
    seen, params, pages = [], {"limit": 100}, 0
    while True:
        body = list_contacts(ghl, **params).json()
        pages += 1
        seen.extend(c["id"] for c in body["contacts"])
        if not body["meta"]["nextPageUrl"]:
            break
        params = {"limit": 100, "startAfter": body["meta"]["startAfter"], "startAfterId": body["meta"]["startAfterId"]}
    assert pages == 3
    assert len(seen) == len(set(seen)) == 250 + SEED_CONTACTS
    assert set(ids) <= set(seen)
    assert body["meta"]["total"] == 250 + SEED_CONTACTS


def test_paging_with_one_cursor_repeats_page_one(ghl):
    bulk_contacts(ghl, 30)
    first = list_contacts(ghl, limit=10).json()
    meta = first["meta"]
    assert isinstance(meta["startAfter"], int) and meta["startAfterId"] == first["contacts"][-1]["id"]
    for only in ({"startAfter": meta["startAfter"]}, {"startAfterId": meta["startAfterId"]}):
        again = list_contacts(ghl, limit=10, **only).json()
        assert [c["id"] for c in again["contacts"]] == [c["id"] for c in first["contacts"]]
    both = list_contacts(ghl, limit=10, startAfter=meta["startAfter"], startAfterId=meta["startAfterId"]).json()
    assert not {c["id"] for c in both["contacts"]} & {c["id"] for c in first["contacts"]}


def test_upsert_matches_email_then_phone_within_the_location(ghl):
    by_email = ghl.post(ghl.url("/contacts/upsert"),
                        json={"locationId": LOCATION_ID, "email": "ADA.SAMPLE@example.com", "city": "Testville"}).json()
    assert by_email["new"] is False
    assert by_email["contact"]["id"] == "sandbox-contact-1" and by_email["contact"]["city"] == "Testville"

    by_phone = ghl.post(ghl.url("/contacts/upsert"),
                        json={"locationId": LOCATION_ID, "phone": "+1 555-010-0002", "firstName": "Benny"}).json()
    assert by_phone["new"] is False and by_phone["contact"]["id"] == "sandbox-contact-2"

    fresh = ghl.post(ghl.url("/contacts/upsert"), json={"locationId": LOCATION_ID, "email": "new@example.com"}).json()
    elsewhere = ghl.post(ghl.url("/contacts/upsert"),
                         json={"locationId": "other-location", "email": "ada.sample@example.com"}).json()
    assert fresh["new"] is True and elsewhere["new"] is True
    assert list_contacts(ghl).json()["meta"]["total"] == SEED_CONTACTS + 1


def test_search_duplicate_and_opportunity_search(ghl):
    search = ghl.post(ghl.url("/contacts/search"), json={
        "locationId": LOCATION_ID, "pageLimit": 2, "page": 1,
        "filters": [{"field": "tags", "operator": "eq", "value": "customer"}]}).json()
    assert search["total"] == 2 and len(search["contacts"]) == 2
    assert all("customer" in c["tags"] and c["searchAfter"] for c in search["contacts"])
    assert ghl.post(ghl.url("/contacts/search"), json={"locationId": LOCATION_ID}).status_code == 422

    duplicate = ghl.get(ghl.url("/contacts/search/duplicate"),
                        params={"locationId": LOCATION_ID, "number": "+15550100003"}).json()
    assert duplicate["contact"]["id"] == "sandbox-contact-3"

    opportunities = ghl.get(ghl.url("/opportunities/search"), params={"location_id": LOCATION_ID, "limit": 1}).json()
    assert opportunities["meta"]["total"] == 2
    assert opportunities["opportunities"][0]["id"] == "sandbox-opportunity-2"  # newest first
    rest = ghl.get(ghl.url("/opportunities/search"), params={
        "location_id": LOCATION_ID, "limit": 1, "startAfter": opportunities["meta"]["startAfter"],
        "startAfterId": opportunities["meta"]["startAfterId"]}).json()
    assert [o["id"] for o in rest["opportunities"]] == ["sandbox-opportunity-1"]


@pytest.mark.spec_violations_expected  # sends bad requests on purpose
def test_every_catalog_operation_answers_without_a_server_error(ghl):
    for record in load_catalog():
        path = re.sub(r"{([^}]+)}", lambda m: LOCATION_ID if m.group(1) == "locationId" else "sandbox-x", record["path"])
        response = ghl.request(record["method"], ghl.url(path), headers={"Version": record["version"]},
                               params={"locationId": LOCATION_ID},
                               json=None if record["method"] == "GET" else {"locationId": LOCATION_ID})
        assert response.status_code < 500, (record["key"], response.status_code, response.text)
        assert response.status_code != 400, (record["key"], response.text)  # the Version was accepted


# -- rate limits ---------------------------------------------------------------------------

def test_burst_limit_counts_down_then_answers_429():
    with serve_sandbox(burst_limit=5, burst_window_s=0.5) as sandbox:
        def get(location=LOCATION_ID):
            return requests.get(sandbox.url + "/contacts/", params={"locationId": location}, headers=headers())

        answers = [get() for _ in range(6)]
        assert [a.status_code for a in answers] == [200] * 5 + [429]
        assert [a.headers["X-RateLimit-Remaining"] for a in answers] == ["4", "3", "2", "1", "0", "0"]
        for answer in answers:
            assert all(name in answer.headers for name in RATE_HEADERS)
            assert "Retry-After" not in answer.headers
        assert answers[0].headers["X-RateLimit-Max"] == "5"
        assert answers[0].headers["X-RateLimit-Interval-Milliseconds"] == "500"
        assert answers[0].headers["X-RateLimit-Limit-Daily"] == "200000"
        assert answers[4].headers["X-RateLimit-Daily-Remaining"] == "199995"
        assert answers[5].json() == {"statusCode": 429, "message": "Too many requests"}
        assert get("other-location").status_code == 200  # each location has its own budget
        time.sleep(0.55)
        assert get().status_code == 200


# -- faults, latency, the request log, reset --------------------------------------------------

def add_faults(ghl, *faults):
    response = requests.post(ghl.url("/_sandbox/faults"), json=list(faults))
    assert response.status_code == 201, response.text


@pytest.mark.parametrize("status", [500, 429, 502, 503])
def test_injected_status_is_answered_once_then_normal(ghl, status):
    add_faults(ghl, {"status": status, "times": 1, "path_prefix": "/contacts", "method": "GET"})
    assert ghl.get(ghl.url("/calendars/"), params={"locationId": LOCATION_ID},
                   headers={"Version": CALENDARS_VERSION}).status_code == 200  # other path: untouched
    failed = list_contacts(ghl)
    assert failed.status_code == status and failed.json()["statusCode"] == status
    assert list_contacts(ghl).status_code == 200


def test_injected_drop_closes_the_connection_once(ghl):
    add_faults(ghl, {"drop": True, "path_prefix": "/contacts"})
    with pytest.raises(requests.ConnectionError):
        list_contacts(ghl)
    assert list_contacts(ghl).status_code == 200
    assert [e["status"] for e in requests.get(ghl.url("/_sandbox/requests")).json()["requests"]] == ["dropped", 200]


def test_injected_delay_and_latency(ghl):
    add_faults(ghl, {"delay_ms": 300, "path_prefix": "/contacts"})
    started = time.monotonic()
    assert list_contacts(ghl).status_code == 200
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    list_contacts(ghl)
    assert time.monotonic() - started < 0.25

    requests.post(ghl.url("/_sandbox/latency"), json={"ms": 200}).raise_for_status()
    started = time.monotonic()
    list_contacts(ghl)
    assert time.monotonic() - started >= 0.2


@pytest.mark.spec_violations_expected  # sends bad requests on purpose
def test_request_log_keeps_what_was_sent_but_never_the_token(ghl):
    ghl.get(ghl.url("/contacts/a%20b/tasks"), params={"tag": ["x", "y"]})
    ghl.post(ghl.url("/contacts/"), json={"locationId": LOCATION_ID, "email": "log@example.com"})
    requests.get(ghl.url("/contacts/"), params={"locationId": LOCATION_ID})
    log = requests.get(ghl.url("/_sandbox/requests")).json()["requests"]
    assert log[0] == {"method": "GET", "path": "/contacts/a%20b/tasks", "query": {"tag": ["x", "y"]},
                      "json": None, "version": V2, "auth": True, "status": 404}
    assert log[1]["json"] == {"locationId": LOCATION_ID, "email": "log@example.com"} and log[1]["status"] == 201
    assert log[2]["auth"] is False and log[2]["version"] is None and log[2]["status"] == 401
    assert TOKEN not in json.dumps(log)
    requests.delete(ghl.url("/_sandbox/requests")).raise_for_status()
    assert requests.get(ghl.url("/_sandbox/requests")).json()["requests"] == []


def test_reset_restores_the_seed_and_clears_faults_and_log(ghl):
    create_contact(ghl, email="gone@example.com")
    ghl.delete(ghl.url("/contacts/sandbox-contact-1"))
    add_faults(ghl, {"status": 500, "times": 5})
    requests.post(ghl.url("/_sandbox/reset")).raise_for_status()
    assert requests.get(ghl.url("/_sandbox/faults")).json()["faults"] == []
    assert requests.get(ghl.url("/_sandbox/requests")).json()["requests"] == []
    ids = [c["id"] for c in list_contacts(ghl).json()["contacts"]]
    assert ids == [f"sandbox-contact-{n}" for n in range(SEED_CONTACTS, 0, -1)]


def test_bad_fault_is_refused(ghl):
    response = requests.post(ghl.url("/_sandbox/faults"), json=[{"status": 200}])
    assert response.status_code == 400


# -- python -m sandbox ---------------------------------------------------------------------------

def test_command_line_serves_and_prints_url_and_token(tmp_path):
    import socket
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-m", "sandbox", "--port", str(port), "--token", "t-1"],
                               cwd=Path(__file__).resolve().parents[1], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True)
    try:
        banner = process.stdout.readline() + process.stdout.readline()
        assert f"http://127.0.0.1:{port}" in banner and "t-1" in banner
        deadline = time.monotonic() + 5
        while True:
            try:
                response = requests.get(f"http://127.0.0.1:{port}/users/", params={"locationId": LOCATION_ID},
                                        headers=headers(token="t-1"), timeout=1)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        assert response.status_code == 200 and response.json()["users"]
    finally:
        process.terminate()
        process.wait(5)
