"""REST hooks end to end: the service under gunicorn, the sandbox GHL, the hook worker as a real
process, and a receiver on loopback standing in for Zapier's hooks.zapier.com.

The invariants: items that appear after subscribing arrive (exactly once while nothing fails);
items present at subscribe time never do; a 410 ends the subscription; failures and crashes
delay items but never lose them (at-least-once, stable ids); two workers never deliver one
batch twice; the token is never stored or logged in plain text; target URLs cannot point anywhere.
"""

import json
import os
import sqlite3
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest
import requests

from bench.harness import Receiver
from server.app import create_app
from tests.conftest import LOCATION, ROOT, SANDBOX_TOKEN, GunicornService, wait_for

TRIGGER = "list_contacts_deprecated"
POLL_SECONDS = 5  # HOOK_POLL_SECONDS's floor
AUTH = {"Authorization": f"Bearer {SANDBOX_TOKEN}", "X-Location-Id": LOCATION}


class Worker:
    """``python -m triggers.hooks_worker`` as its own process (and process group)."""

    def __init__(self, env, log_path):
        self.env = env
        self.log_path = log_path
        self.process = None

    def start(self):
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen([sys.executable, "-m", "triggers.hooks_worker"], cwd=ROOT, env=self.env,
                                        stdout=log, stderr=log, start_new_session=True)
        log.close()
        return self

    def kill9(self):
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(5)

    def stop(self):
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                return self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill9()
        return self.process.returncode


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("hooks")


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def store(request, workdir):
    """The module runs once per store: SQLite, then PostgreSQL (a new database, ``DATABASE_URL``)."""
    env = {"DATABASE_PATH": str(workdir / f"service-{request.param}.sqlite3")}
    if request.param == "postgres":
        env["DATABASE_URL"] = request.getfixturevalue("postgres_server").fresh_database()
    return env


@pytest.fixture(scope="module")
def receiver(store):
    """A hook receiver per store, so what the SQLite run received is not counted in the PostgreSQL run."""
    running = Receiver().start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def hook_env(workdir, sandbox, store):
    return {**os.environ,
            "GHL_BASE_URL": sandbox.url,
            **store,
            "SECRET_KEY": "e2e-secret-key",
            "HOOK_TARGET_HOSTS": "127.0.0.1",
            "HOOK_ALLOW_HTTP": "1",
            "HOOK_POLL_SECONDS": str(POLL_SECONDS),
            "HOOK_TICK_SECONDS": "0.2",
            "HOOK_DELIVERY_TIMEOUT": "1",
            "HOOK_LEASE_SECONDS": "5",
            "LOG_LEVEL": "INFO"}


@pytest.fixture(scope="module")
def service(hook_env, workdir):
    running = GunicornService(hook_env, workers=2, log_path=workdir / "gunicorn.log").start()
    yield running
    running.stop()


@pytest.fixture
def worker(hook_env, workdir):
    running = Worker(hook_env, workdir / "worker.log").start()
    yield running
    assert running.stop() in (0, -signal.SIGKILL), "SIGTERM ends the worker cleanly"


class Hooks:
    """Subscribes through the service, and unsubscribes whatever is left when the test ends."""

    def __init__(self, service, receiver, sandbox):
        self.service, self.receiver, self.sandbox = service, receiver, sandbox
        self.ids = []

    def subscribe(self, path, inputs=None):
        response = requests.post(f"{self.service.url}/hooks", headers=AUTH, timeout=30, json={
            "trigger": TRIGGER, "target_url": self.receiver.url + path, "inputs": inputs or {}})
        assert response.status_code == 201, response.text
        self.ids.append(response.json()["id"])
        return response.json()["id"]

    def state(self, hook_id):
        return requests.get(f"{self.service.url}/hooks/{hook_id}", headers=AUTH, timeout=10)

    def wait_for_state(self, hook_id, condition, timeout, what):
        def matching_state():
            state = self.state(hook_id).json()
            return state if condition(state) else None
        return wait_for(matching_state, timeout, what)

    def create_contacts(self, count, prefix):
        records = [{"firstName": f"{prefix}{n}", "email": f"{prefix}{n}@example.com"} for n in range(count)]
        response = requests.post(f"{self.sandbox.url}/_sandbox/records", timeout=30,
                                 json={"path": "/contacts/", "records": records})
        response.raise_for_status()
        return {r["email"] for r in records}

    def unsubscribe_all(self):
        for hook_id in self.ids:
            requests.delete(f"{self.service.url}/hooks/{hook_id}", headers=AUTH, timeout=10)


@pytest.fixture
def hooks(service, receiver, sandbox_reset):
    made = Hooks(service, receiver, sandbox_reset)
    yield made
    made.unsubscribe_all()


def emails(items):
    return [item["email"] for item in items]


def test_items_created_after_subscribing_arrive_once_and_earlier_ones_never(hooks, receiver, worker, service):
    existing = requests.post(f"{service.url}/triggers/{TRIGGER}", headers={**AUTH, "X-Poll-Mode": "sample"},
                             timeout=30).json()
    assert existing, "the sandbox seeds contacts"
    hook_id = hooks.subscribe("/once")
    created = hooks.create_contacts(3, "once")
    wait_for(lambda: len(receiver.items("/once")) >= 3, POLL_SECONDS + 5, "the three new contacts")
    delivered_at = time.time()
    assert sorted(emails(receiver.items("/once"))) == sorted(created)
    assert not {item["id"] for item in existing} & {item["id"] for item in receiver.items("/once")}

    state = hooks.wait_for_state(
        hook_id, lambda s: datetime.fromisoformat(s["last_poll_at"]).timestamp() > delivered_at + 1,
        POLL_SECONDS + 5, "the next poll")
    assert sorted(emails(receiver.items("/once"))) == sorted(created), "a later poll repeats nothing"
    assert state["trigger"] == TRIGGER and state["pending"] == 0 and state["last_delivery_at"]
    assert state["interval_seconds"] == POLL_SECONDS and SANDBOX_TOKEN not in json.dumps(state)

    # performList: the sample has exactly the shape deliveries have.
    sample = requests.get(f"{service.url}/hooks/sample/{TRIGGER}", headers=AUTH, timeout=30).json()
    by_id = {item["id"]: item for item in sample}
    for item in receiver.items("/once"):
        assert by_id[item["id"]] == item

    # Only the owner's token may unsubscribe; unsubscribing twice is fine.
    other = {"Authorization": "Bearer someone-else"}
    assert requests.delete(f"{service.url}/hooks/{hook_id}", headers=other, timeout=10).status_code == 404
    assert requests.get(f"{service.url}/hooks/{hook_id}", headers=other, timeout=10).status_code == 404
    for _ in range(2):
        assert requests.delete(f"{service.url}/hooks/{hook_id}", headers=AUTH, timeout=10).status_code == 200
    assert hooks.state(hook_id).status_code == 404


def test_a_410_from_the_target_removes_the_subscription(hooks, receiver, worker):
    hook_id = hooks.subscribe("/gone")
    receiver.script("/gone", [(410, {})])
    hooks.create_contacts(1, "gone")
    wait_for(lambda: hooks.state(hook_id).status_code == 404, POLL_SECONDS + 5, "the subscription to go")
    assert receiver.requests_to("/gone") == 1


def test_a_target_that_is_down_then_failing_gets_everything_once_it_is_back(hooks, receiver, worker):
    hook_id = hooks.subscribe("/down")
    receiver.stop()
    try:
        created = hooks.create_contacts(5, "down")
        state = hooks.wait_for_state(hook_id, lambda s: s["delivery_failures"] >= 1, POLL_SECONDS + 5,
                                     "a failed delivery")
        assert state["pending"] == 5 and "could not be reached" in state["last_error"]
    finally:
        receiver.start()
    # Back, but first a 500 and a 429 with Retry-After: both keep the items for later.
    receiver.script("/down", [(500, {}), (429, {"Retry-After": "1"})])
    wait_for(lambda: len(receiver.items("/down")) >= 15, 15, "the 500, the 429, then the delivery")
    assert receiver.requests_to("/down") == 3
    delivered = receiver.items("/down")[10:]
    assert sorted(emails(delivered)) == sorted(created)
    state = hooks.wait_for_state(hook_id, lambda s: s["delivery_failures"] == 0, 5, "the failure count to reset")
    assert state["pending"] == 0 and "429" in state["last_error"]


def test_a_worker_killed_mid_delivery_loses_nothing(hooks, receiver, worker, hook_env, workdir):
    hooks.subscribe("/crash")
    held = receiver.hold("/crash")
    created = hooks.create_contacts(4, "crash")
    wait_for(lambda: receiver.requests_to("/crash") == 1, POLL_SECONDS + 5, "the delivery to start")
    worker.kill9()  # the batch was sent, its answer never read
    held.set()
    first = {item["email"]: item["id"] for item in receiver.items("/crash")}
    assert set(first) == created
    replacement = Worker(hook_env, workdir / "worker.log").start()
    try:
        # The dead worker's lease lapses (8 s: the lease floor for a 1 s delivery timeout), then it is redelivered.
        wait_for(lambda: receiver.requests_to("/crash") >= 2, 15, "the redelivery")
    finally:
        assert replacement.stop() == 0
    again = {item["email"]: item["id"] for item in receiver.items("/crash")[4:]}
    assert again == first, "every item arrives again, with the same id"


def test_two_workers_never_deliver_the_same_batch(hooks, receiver, worker, hook_env, workdir):
    second = Worker(hook_env, workdir / "worker.log").start()
    receiver.delay = 0.3  # slow answers widen the window for a second worker to step in
    try:
        paths = [f"/pair{n}" for n in range(4)]
        for path in paths:
            hooks.subscribe(path)
        created = hooks.create_contacts(6, "pair")
        wait_for(lambda: all(len(receiver.items(p)) >= 6 for p in paths), POLL_SECONDS + 8, "every delivery")
        time.sleep(1)  # room for a duplicate to show up, were there one
        for path in paths:
            assert receiver.requests_to(path) == 1, path
            assert sorted(emails(receiver.items(path))) == sorted(created)
    finally:
        receiver.delay = 0.0
        assert second.stop() == 0


def test_the_token_is_in_no_database_and_no_log(hooks, receiver, worker, workdir, store):
    hook_id = hooks.subscribe("/secret")
    hooks.create_contacts(1, "secret")
    wait_for(lambda: receiver.items("/secret"), POLL_SECONDS + 5, "a delivery")
    assert hooks.state(hook_id).json()["pending"] == 0
    logs = sorted(workdir.glob("*.log"))
    assert {f.name for f in logs} >= {"gunicorn.log", "worker.log"}
    for path in logs:
        assert SANDBOX_TOKEN.encode() not in path.read_bytes(), path.name
    assert b"delivered" in (workdir / "worker.log").read_bytes(), "the worker does log"
    if "DATABASE_URL" in store:
        assert SANDBOX_TOKEN not in every_row_as_text(store["DATABASE_URL"])
        return
    database = Path(store["DATABASE_PATH"])
    files = sorted(database.parent.glob(database.name + "*"))
    assert {f.name for f in files} >= {database.name, database.name + "-wal"}
    for path in files:
        assert SANDBOX_TOKEN.encode() not in path.read_bytes(), path.name


def every_row_as_text(database_url):
    """Every row of every table of the service's PostgreSQL database, as text."""
    import psycopg
    with psycopg.connect(database_url) as conn:
        tables = [row[0] for row in conn.execute(
            "SELECT quote_ident(schemaname) || '.' || quote_ident(tablename) FROM pg_tables"
            " WHERE schemaname NOT IN ('pg_catalog', 'information_schema')")]
        assert any(table.endswith("hook_subscriptions") for table in tables), tables
        return "".join(str(row[0]) for table in tables
                       for row in conn.execute(f"SELECT t::text FROM {table} AS t"))


@pytest.mark.parametrize("target_url", [
    "https://evil.example/hook",
    "http://localhost:{port}/hook",
    "https://127.0.0.1@evil.test/",
    "http://127.0.0.1:{port}@evil.test/",
    "http://user:pw@127.0.0.1:{port}/",
    "http://127.0.0.1.evil.test/",
    "file:///etc/passwd",
    "gopher://127.0.0.1:{port}/",
])
def test_target_urls_off_the_allowed_hosts_are_refused(service, receiver, target_url):
    response = requests.post(f"{service.url}/hooks", headers=AUTH, timeout=10, json={
        "trigger": TRIGGER, "target_url": target_url.format(port=receiver.port), "inputs": {}})
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_target_url"


@pytest.fixture
def zapier_only_app(tmp_path, sandbox_reset):
    """The default rules: https on hooks.zapier.com only."""
    return create_app({"ghl_base_url": sandbox_reset.url, "using_sandbox": True, "secret_key": "s",
                       "database_path": str(tmp_path / "zapier-only.sqlite3")}, environ={})


@pytest.mark.parametrize("target_url, status", [
    ("https://hooks.zapier.com/hooks/standard/1/abc/", 201),
    ("http://hooks.zapier.com/hooks/standard/1/abc/", 400),
    ("https://hooks.zapier.com@evil.test/", 400),
    ("https://hooks.zapier.com:8443/hooks/", 400),
    ("https://evil.example/", 400),
    ("http://127.0.0.1/", 400),
])
def test_by_default_only_https_on_hooks_zapier_com_is_accepted(zapier_only_app, target_url, status):
    response = zapier_only_app.test_client().post("/hooks", headers=AUTH, json={
        "trigger": TRIGGER, "target_url": target_url})
    assert response.status_code == status, response.json
    assert SANDBOX_TOKEN not in response.get_data(as_text=True)


def test_subscribing_validates_like_a_poll_and_a_failed_seed_creates_nothing(zapier_only_app, sandbox_reset):
    client = zapier_only_app.test_client()
    target = "https://hooks.zapier.com/hooks/x"
    unknown = client.post("/hooks", headers=AUTH, json={"trigger": "nope", "target_url": target})
    assert unknown.status_code == 404 and unknown.json["error"]["code"] == "unknown_operation"
    bad = client.post("/hooks", headers=AUTH, json={"trigger": TRIGGER, "target_url": target,
                                                     "inputs": {"bogus": 1}})
    assert bad.status_code == 400 and bad.json["error"]["fields"] == {"bogus": "unknown input"}
    assert client.post("/hooks", headers=AUTH, data="{oops", content_type="application/json").status_code == 400
    assert client.post("/hooks", json={"trigger": TRIGGER, "target_url": target}).status_code == 401
    rejected = client.post("/hooks", headers={"Authorization": "Bearer wrong-token", "X-Location-Id": LOCATION},
                           json={"trigger": TRIGGER, "target_url": target})
    assert rejected.status_code == 401 and rejected.json["error"]["code"] == "ghl_unauthorized"
    assert "wrong-token" not in rejected.get_data(as_text=True)
    requests.post(f"{sandbox_reset.url}/_sandbox/faults", timeout=5,
                  json=[{"status": 503, "times": 10, "path_prefix": "/contacts"}]).raise_for_status()
    failed = client.post("/hooks", headers=AUTH, json={"trigger": TRIGGER, "target_url": target})
    assert failed.status_code == 502 and failed.json["error"]["code"] == "ghl_unavailable"
    database = zapier_only_app.extensions["ghl_zapier"].settings.database_path
    with sqlite3.connect(database) as conn:
        assert conn.execute("SELECT COUNT(*) FROM hook_subscriptions").fetchone()[0] == 0
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        scopes = "dedupe_scopes" if "dedupe_scopes" in tables else "scopes"
        assert conn.execute(f"SELECT COUNT(*) FROM {scopes} WHERE scope LIKE 'hook:%'").fetchone()[0] == 0


def test_without_a_secret_key_subscribing_is_refused_clearly(tmp_path, sandbox_reset):
    app = create_app({"ghl_base_url": sandbox_reset.url, "using_sandbox": True,
                      "database_path": str(tmp_path / "nokey.sqlite3")}, environ={})
    response = app.test_client().post("/hooks", headers=AUTH, json={
        "trigger": TRIGGER, "target_url": "https://hooks.zapier.com/hooks/x"})
    assert response.status_code == 503 and response.json["error"]["code"] == "secret_key_missing"
    assert not Path(tmp_path / "nokey.sqlite3").exists() or b"hook_subscriptions" not in (
        tmp_path / "nokey.sqlite3").read_bytes()
