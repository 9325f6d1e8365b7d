"""Polling triggers end to end: the service under gunicorn (4 workers) and the sandbox GHL.

A ``Zap`` stands in for Zapier: it polls, and fires only on ids it has not seen (Zapier's
per-Zap dedupe). The invariants: every item fires exactly once per Zap; nothing is lost
when GHL fails, when the service restarts, or when polls run at once.
"""

import threading

import pytest
import requests

from tests.conftest import LOCATION, SANDBOX_TOKEN

TRIGGER = "list_contacts_deprecated"


class Zap:
    def __init__(self, service_url, trigger, inputs=None, zap_id="zap-1", token=SANDBOX_TOKEN):
        self.url = f"{service_url}/triggers/{trigger}"
        self.inputs = inputs or {}
        self.headers = {"Authorization": f"Bearer {token}", "X-Location-Id": LOCATION,
                        "X-Subscriber-Id": zap_id}
        self.seen = set()
        self.fired = []
        self.lock = threading.Lock()

    def poll(self, expect=200):
        response = requests.post(self.url, json=self.inputs, headers=self.headers, timeout=60)
        assert response.status_code == expect, response.text
        if expect != 200:
            return response
        items = response.json()
        assert isinstance(items, list)
        ids = [item["id"] for item in items]
        assert len(ids) == len(set(ids)), "an answer must not hold an id twice"
        new = []
        with self.lock:
            for item in reversed(items):
                if item["id"] not in self.seen:
                    self.seen.add(item["id"])
                    new.append(item)
            self.fired.extend(new)
        return new


def create_contacts(sandbox, count, prefix):
    records = [{"locationId": LOCATION, "firstName": f"{prefix}{n}", "email": f"{prefix}{n}@example.com"}
               for n in range(count)]
    response = requests.post(f"{sandbox.url}/_sandbox/records", json={"path": "/contacts/", "records": records},
                             timeout=30)
    response.raise_for_status()
    return {c["email"] for c in response.json().get("records", records)}


def emails(items):
    return {item.get("email") for item in items}


def inject(sandbox, faults):
    requests.post(f"{sandbox.url}/_sandbox/faults", json=faults, timeout=5).raise_for_status()


@pytest.fixture(params=["sqlite", "postgres"])
def store_kind(request):
    """Every test here runs on both stores: SQLite, and PostgreSQL (``DATABASE_URL``)."""
    return request.param


def test_new_items_fire_once_per_zap_and_zaps_are_isolated(gunicorn_service, sandbox_reset):
    first, other = Zap(gunicorn_service.url, TRIGGER), Zap(gunicorn_service.url, TRIGGER, zap_id="zap-2")
    seeded = first.poll()
    assert seeded, "the sandbox seeds contacts"
    created = create_contacts(sandbox_reset, 3, "new")
    assert emails(first.poll()) == created
    assert first.poll() == []
    # Another Zap on the same trigger has its own memory: it sees everything once.
    assert len(other.poll()) == len(seeded) + 3


def test_a_burst_of_250_between_polls_is_delivered_completely_in_order_over_successive_polls(
        gunicorn_service, sandbox_reset):
    zap = Zap(gunicorn_service.url, TRIGGER)
    zap.poll()
    created = create_contacts(sandbox_reset, 250, "burst")
    batches = [zap.poll() for _ in range(4)]
    assert [len(b) for b in batches] == [100, 100, 50, 0]
    delivered = [item["email"] for batch in batches for item in batch]
    assert set(delivered) == created and len(delivered) == 250
    # Oldest first across batches: each batch is older than the next.
    assert [item["firstName"] for item in batches[0]][:1] == ["burst0"]


def test_sample_mode_records_nothing(gunicorn_service, sandbox_reset):
    zap = Zap(gunicorn_service.url, TRIGGER)
    sample = requests.post(zap.url, json={}, headers={**zap.headers, "X-Poll-Mode": "sample"}, timeout=30).json()
    assert sample and all("id" in item for item in sample)
    assert {item["id"] for item in zap.poll()} >= {item["id"] for item in sample}


def test_state_survives_a_restart(gunicorn_service, sandbox_reset):
    zap = Zap(gunicorn_service.url, TRIGGER)
    assert zap.poll()
    gunicorn_service.restart()
    assert zap.poll() == []
    create_contacts(sandbox_reset, 1, "after-restart")
    assert emails(zap.poll()) == {"after-restart0@example.com"}


def test_changes_to_a_watched_record_fire_once_per_change(gunicorn_service, sandbox_reset):
    headers = {"Authorization": f"Bearer {SANDBOX_TOKEN}", "X-Location-Id": LOCATION}
    created = requests.post(f"{gunicorn_service.url}/actions/create_contact", headers=headers,
                            json={"firstName": "Watch", "email": "watch@example.com"}, timeout=30).json()
    zap = Zap(gunicorn_service.url, "get_contact", inputs={"contactId": created["id"]})
    assert len(zap.poll()) == 1
    assert zap.poll() == []
    for name in ("Watched", "Watched Again"):
        update = requests.post(f"{gunicorn_service.url}/actions/update_contact", headers=headers,
                               json={"contactId": created["id"], "firstName": name}, timeout=30)
        assert update.status_code == 200, update.text
        fired = zap.poll()
        assert [item["firstName"] for item in fired] == [name]
        assert fired[0]["ghl_id"] == created["id"] and fired[0]["id"] != created["id"]
        assert zap.poll() == []


def test_a_poll_that_fails_upstream_records_nothing_and_the_next_delivers(gunicorn_service, sandbox_reset):
    zap = Zap(gunicorn_service.url, TRIGGER)
    zap.poll()
    created = create_contacts(sandbox_reset, 5, "retry")
    inject(sandbox_reset, [{"status": 503, "times": 10, "path_prefix": "/contacts"}])
    failed = zap.poll(expect=502)
    assert failed.json()["error"]["code"] == "ghl_unavailable"
    requests.delete(f"{sandbox_reset.url}/_sandbox/faults", timeout=5)
    assert emails(zap.poll()) == created


def test_concurrent_polls_of_one_scope_lose_nothing(gunicorn_service, sandbox_reset):
    zap = Zap(gunicorn_service.url, TRIGGER)
    zap.poll()
    created = create_contacts(sandbox_reset, 60, "together")
    threads = [threading.Thread(target=zap.poll) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    zap.poll()
    fired = [item["email"] for item in zap.fired if item["email"].startswith("together")]
    assert set(fired) == created and len(fired) == 60


def test_upstream_401_surfaces_as_401_with_a_hint(gunicorn_service, sandbox_reset):
    response = requests.post(f"{gunicorn_service.url}/triggers/{TRIGGER}", json={},
                             headers={"Authorization": "Bearer wrong-token", "X-Location-Id": LOCATION}, timeout=30)
    assert response.status_code == 401
    assert "reconnect" in response.json()["error"]["message"]
    assert "wrong-token" not in response.text


def test_missing_token_is_401_and_unknown_trigger_404(gunicorn_service):
    assert requests.post(f"{gunicorn_service.url}/triggers/{TRIGGER}", json={}, timeout=10).status_code == 401
    response = requests.post(f"{gunicorn_service.url}/triggers/nope", json={},
                             headers={"Authorization": f"Bearer {SANDBOX_TOKEN}"}, timeout=10)
    assert response.status_code == 404 and response.json()["error"]["code"] == "unknown_operation"


def test_a_poll_asks_the_store_what_it_knows_only_of_a_full_page(app, sandbox_reset, monkeypatch):
    """A short page cannot need catch-up: a poll asks the store nothing before its answer. A full
    page is one question (what the store knows of it), and only a page with nothing known asks
    whether the scope was polled before: a scope's first poll reads that page alone, a later
    poll reads on (catch-up)."""
    store = app.extensions["ghl_zapier"].store
    asked, answering = [], []

    def spy(name, real):
        def call(*args, **kwargs):
            if not answering:  # what the poll asks, not what the store asks itself while answering
                asked.append(name)
            answering.append(name == "answer")
            try:
                return real(*args, **kwargs)
            finally:
                answering.pop()
        return call
    for name in ("has_scope", "known", "answer"):
        monkeypatch.setattr(store, name, spy(name, getattr(store, name)))
    http = app.test_client()

    def poll(zap_id):
        asked.clear()
        requests.delete(f"{sandbox_reset.url}/_sandbox/requests", timeout=5).raise_for_status()
        response = http.post(f"/triggers/{TRIGGER}", json={}, headers={
            "Authorization": f"Bearer {SANDBOX_TOKEN}", "X-Location-Id": LOCATION, "X-Subscriber-Id": zap_id})
        assert response.status_code == 200, response.get_data(as_text=True)
        log = requests.get(f"{sandbox_reset.url}/_sandbox/requests", timeout=5).json()["requests"]
        return response.json, len([r for r in log if r["path"].startswith("/contacts")]), list(asked)

    seeded, pages, questions = poll("zap-1")
    assert seeded and len(seeded) < 100 and (pages, questions) == (1, ["answer"])
    assert poll("zap-1")[1:] == (1, ["answer"])
    create_contacts(sandbox_reset, 150, "burst")
    items, pages, questions = poll("zap-1")
    assert (pages, questions) == (2, ["known", "has_scope", "answer"]), "nothing known on a full page: catch up"
    assert len({item["id"] for item in items} - {item["id"] for item in seeded}) == 100
    assert poll("zap-1")[1:] == (1, ["known", "answer"]), "a full page of known items: stop there"
    assert poll("zap-2")[1:] == (1, ["known", "has_scope", "answer"]), "a first poll reads one page"
