"""Storage faults heal: a database that was briefly unwritable costs 503s while the fault lasts,
never 500s, and nothing after it clears.

End to end, the fault is the one that was reported: the database file (and its -wal and -shm)
chmod 0444 for a few seconds. Root ignores file modes through two capabilities, so when the
tests run as root the service runs without them (``setpriv`` drops CAP_DAC_OVERRIDE and
CAP_DAC_READ_SEARCH from its bounding set): then SQLite's open for writing fails with EACCES, it
falls back to a read-only connection, and writes fail with "attempt to write a readonly
database", as for the reporter.
"""

import os
import resource
import signal
import sqlite3
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from bench.harness import children_of, procfile_web_command, wait_until_up
from catalog.registry import load_catalog
from ghl.client import client_from_settings
from server.config import Settings
from storage.backend import SqliteBackend
from storage.sqlite import SqliteConnections
from tests.conftest import LOCATION, ROOT, SANDBOX_TOKEN, GunicornService
from triggers.dedupe_store import SqliteDedupeStore
from triggers.hooks_store import SqliteHookStore, TokenCipher, new_hook_id
from triggers.hooks_worker import HookWorker

TRIGGER = "list_contacts_deprecated"
AUTH = {"Authorization": f"Bearer {SANDBOX_TOKEN}", "X-Location-Id": LOCATION}
AS_ROOT = os.geteuid() == 0


def make_read_only(conns):
    conns.get().execute("PRAGMA query_only = ON")  # writes now fail with SQLITE_READONLY


# --- unit: the connection map -------------------------------------------------------------

def test_a_connection_that_hit_a_read_only_error_is_replaced_on_next_get(tmp_path):
    conns = SqliteConnections(str(tmp_path / "db.sqlite3"))
    conns.migrate("CREATE TABLE t (x INTEGER)")
    first = conns.get()
    make_read_only(conns)
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        conns.get().execute("INSERT INTO t VALUES (1)")
    second = conns.get()
    assert second is not first
    with pytest.raises(sqlite3.ProgrammingError):
        first.execute("SELECT 1")  # the broken one was closed, not leaked
    second.execute("INSERT INTO t VALUES (1)")
    assert conns.get() is second
    assert second.execute("SELECT COUNT(*) FROM t").fetchone()[0] == 1


def test_a_fault_inside_a_transaction_heals_and_leaves_no_transaction_open(tmp_path):
    conns = SqliteConnections(str(tmp_path / "db.sqlite3"))
    conns.migrate("CREATE TABLE t (x INTEGER)")
    make_read_only(conns)
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        with conns.transaction() as conn:
            conn.execute("INSERT INTO t VALUES (1)")
    with conns.transaction() as conn:
        conn.execute("INSERT INTO t VALUES (2)")
    assert [r[0] for r in conns.get().execute("SELECT x FROM t")] == [2]


def test_a_statement_error_is_not_a_storage_fault(tmp_path):
    conns = SqliteConnections(str(tmp_path / "db.sqlite3"))
    conns.migrate("CREATE TABLE t (x INTEGER PRIMARY KEY)")
    conn = conns.get()
    conn.execute("INSERT INTO t VALUES (1)")
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute("INSERT INTO t VALUES (1)")
    with pytest.raises(sqlite3.OperationalError):
        conn.execute("SELECT nope FROM t")
    assert conns.get() is conn


def test_the_hook_workers_store_calls_recover(tmp_path, sandbox_reset):
    path = str(tmp_path / "db.sqlite3")
    settings = Settings(ghl_base_url=sandbox_reset.url, using_sandbox=True, database_path=path, secret_key="k",
                        hook_target_hosts=("127.0.0.1",), hook_allow_http=True)
    hooks = SqliteHookStore(path, TokenCipher("k"))
    dedupe = SqliteDedupeStore(path)
    worker = HookWorker(settings, load_catalog(), client_from_settings(settings, SqliteBackend(path), secret="k"),
                        dedupe, hooks, name="test-worker")
    now = time.time()
    hook_id = new_hook_id()
    hooks.create(hook_id, TRIGGER, {"locationId": LOCATION}, SANDBOX_TOKEN, "owner",
                 "http://127.0.0.1:9/hook", 5, now - 10)

    make_read_only(hooks._connections)  # the hook store's connection (rows as sqlite3.Row)
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        worker.tick()  # leasing fails; APScheduler logs it and runs the next tick
    make_read_only(dedupe._connections)  # the dedupe store's connection (plain rows)
    worker.tick()  # leases; recording the poll fails, the tick logs it and goes on
    subscription = hooks.get(hook_id)
    assert subscription.lease_owner == "test-worker" and subscription.last_poll_at is None

    worker.poll(subscription, time.time())
    assert hooks.get(hook_id).last_poll_at is not None
    assert dedupe.has_scope(subscription.scope)


OPEN_DURING_A_READ_ONLY_FAULT = """
import os, sqlite3, sys, threading
from storage.sqlite import SqliteConnections
path = sys.argv[1]
conns = SqliteConnections(path)
setup = threading.Thread(target=conns.migrate, args=("CREATE TABLE t (x INTEGER)",))
setup.start(); setup.join()  # that thread's connection stays open, as in a running worker
files = [path + suffix for suffix in ("", "-wal", "-shm")]
for name in files:
    os.chmod(name, 0o444)
try:
    conns.get()
    print("kept a connection opened during the fault")
except sqlite3.OperationalError as error:
    print(error.sqlite_errorname)
for name in files:
    os.chmod(name, 0o600)
conns.get().execute("INSERT INTO t VALUES (1)")
print(conns.get().execute("SELECT COUNT(*) FROM t").fetchone()[0])
"""


def without_root_file_access(argv):
    """``argv`` run so that file modes bind it even as root (no CAP_DAC_OVERRIDE/READ_SEARCH)."""
    return ["setpriv", "--bounding-set", "-dac_override,-dac_read_search"] + argv if AS_ROOT else argv


def test_a_connection_opened_while_the_file_is_read_only_is_not_kept(tmp_path):
    result = subprocess.run(
        without_root_file_access([sys.executable, "-c", OPEN_DURING_A_READ_ONLY_FAULT, str(tmp_path / "db.sqlite3")]),
        cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["SQLITE_READONLY", "1"]


def test_a_store_opened_while_the_database_cannot_be_opened_comes_up_and_heals(tmp_path):
    path = tmp_path / "db.sqlite3"
    path.mkdir()  # "unable to open database file", as for a process started during a fault
    store = SqliteDedupeStore(str(path))
    with pytest.raises(sqlite3.OperationalError, match="unable to open"):
        store.has_scope("s")
    path.rmdir()
    assert store.has_scope("s") is False  # the first connection that opens creates the tables
    assert store.pending("s", 10) == []


def test_a_request_that_hits_a_storage_fault_answers_503_then_recovers(app, client, auth):
    assert client.post(f"/triggers/{TRIGGER}", headers=auth).status_code == 200
    make_read_only(app.extensions["ghl_zapier"].store._connections)  # this thread serves the test client
    failed = client.post(f"/triggers/{TRIGGER}", headers=auth)
    assert failed.status_code == 503 and failed.json["error"]["code"] == "storage_unavailable"
    assert int(failed.headers["Retry-After"]) > 0
    assert client.post(f"/triggers/{TRIGGER}", headers=auth).status_code == 200


# --- end to end: chmod 0444 under gunicorn --------------------------------------------------

class UnprivilegedService(GunicornService):
    """The Procfile's gunicorn, bound by file modes even as root, with ``extra_args`` appended
    (a later option overrides the Procfile's)."""

    def __init__(self, env, extra_args=(), **kwargs):
        super().__init__(env, **kwargs)
        self.extra_args = list(extra_args)

    def start(self):
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        argv = procfile_web_command(self.port, workers=self.workers) + ["--graceful-timeout", "5"] + self.extra_args
        argv = without_root_file_access(argv)
        self.process = subprocess.Popen(argv, cwd=ROOT, env=self.env, stdout=log, stderr=log,
                                        start_new_session=True)
        wait_until_up(self.url + "/healthz", self.process)
        return self

    def worker_pids(self):
        return children_of(self.process.pid)


def database_files(path):
    return [Path(f"{path}{suffix}") for suffix in ("", "-wal", "-shm") if Path(f"{path}{suffix}").exists()]


def poll(service, n):
    response = requests.post(f"{service.url}/triggers/{TRIGGER}", headers={**AUTH, "X-Subscriber-Id": f"zap-{n % 5}"},
                             json={}, timeout=30)
    return response.status_code, response


def polls(service, count, concurrency):
    with ThreadPoolExecutor(concurrency) as pool:
        return list(pool.map(lambda n: poll(service, n), range(count)))


def wait_for_health(service, status, timeout=5):
    deadline = time.monotonic() + timeout
    while True:
        response = requests.get(service.url + "/healthz", timeout=10)
        if response.status_code == status or time.monotonic() > deadline:
            return response
        time.sleep(0.1)


def set_file_size_limit(pids, limit=None):
    """The workers' RLIMIT_FSIZE: ``limit`` bytes, or back to the hard limit."""
    for pid in pids:
        _, hard = resource.prlimit(pid, resource.RLIMIT_FSIZE)
        resource.prlimit(pid, resource.RLIMIT_FSIZE, (hard if limit is None else limit, hard))


def replace_a_worker(service):
    """SIGKILL one worker; the master starts another, which boots while the fault lasts."""
    before = set(service.worker_pids())
    os.kill(min(before), signal.SIGKILL)
    deadline = time.monotonic() + 10
    while not set(service.worker_pids()) - before:
        assert time.monotonic() < deadline, "no replacement worker"
        time.sleep(0.05)


# gthread (4 threads per worker): threads that first serve a request during the fault open their
# connection then, read-only, as in the report. The Procfile's gevent workers hold one connection
# per process, opened at boot, which a chmod does not touch. There the fault first also caps the
# workers' file size at 0 (writes fail with an I/O error), so that connection breaks and its
# replacement is opened while the file is read-only; then a worker is killed, and its replacement
# boots while the file is read-only (its schema check waits for storage to recover).
@pytest.mark.parametrize("workers", ["gthread", "procfile"])
def test_a_briefly_unwritable_database_costs_503s_while_it_lasts_and_nothing_after(
        workers, tmp_path, sandbox_reset):
    database = tmp_path / "service.sqlite3"
    extra = ["--worker-class", "gthread", "--threads", "4"] if workers == "gthread" else []
    service = UnprivilegedService({
        "GHL_BASE_URL": sandbox_reset.url, "DATABASE_PATH": str(database), "SECRET_KEY": "test-secret",
        "LOG_LEVEL": "WARNING", "GHL_BURST_MAX": "100000",
    }, extra_args=extra, workers=2, log_path=tmp_path / "gunicorn.log")
    service.start()
    try:
        assert [status for status, _ in polls(service, 2, 1)] == [200, 200]
        modes = {path: path.stat().st_mode & 0o777 for path in database_files(database)}

        for path in modes:
            path.chmod(0o444)
        if workers == "procfile":
            set_file_size_limit(service.worker_pids(), 0)
        unhealthy = wait_for_health(service, 503)
        assert unhealthy.status_code == 503, unhealthy.text
        assert unhealthy.json()["error"]["code"] == "storage_unavailable" and unhealthy.headers["Retry-After"]
        during = polls(service, 16, 16)
        if workers == "procfile":
            set_file_size_limit(service.worker_pids())  # only the chmod is left
            replace_a_worker(service)
        started = time.monotonic()
        while time.monotonic() - started < 3:
            during += polls(service, 16, 16)
        assert service.process.poll() is None, "gunicorn shut down"
        statuses = [status for status, _ in during]
        assert 500 not in statuses, statuses
        assert statuses.count(503) >= 8, statuses
        for status, response in during:
            if status != 200:
                assert status == 503 and response.json()["error"]["code"] == "storage_unavailable"
                assert int(response.headers["Retry-After"]) > 0

        for path, mode in modes.items():
            path.chmod(mode)
        after = [status for status, _ in polls(service, 60, 8)]
        assert after == [200] * 60, after
        assert wait_for_health(service, 200).status_code == 200
    finally:
        service.stop()
