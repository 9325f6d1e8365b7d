"""One SQLite file, many processes: gunicorn workers and the hook worker all start on a database
that may not exist yet, and every one of them must come up (a worker that fails to boot makes
gunicorn shut the whole service down)."""

import json
import sqlite3
import subprocess
import sys
import time

from tests.conftest import ROOT

OPEN_EVERY_STORE = """
import sys, time
from ghl.rate_budget import RateBudget
from ghl.shared_reads import SharedReads
from triggers.dedupe_store import SqliteDedupeStore
from triggers.hooks_store import SqliteHookStore, TokenCipher
path, start_at = sys.argv[1], float(sys.argv[2])
time.sleep(max(0.0, start_at - time.time()))
SqliteDedupeStore(path)
SqliteHookStore(path, TokenCipher("key"))
RateBudget(path)
SharedReads(path)
"""


def test_processes_starting_together_on_a_new_database_all_come_up(tmp_path):
    failures = []
    for round_number in range(4):
        path = tmp_path / f"round{round_number}.sqlite3"
        start_at = time.time() + 1.5  # after every interpreter has imported, so they collide
        processes = [subprocess.Popen([sys.executable, "-c", OPEN_EVERY_STORE, str(path), str(start_at)],
                                      cwd=ROOT, stderr=subprocess.PIPE)
                     for _ in range(8)]
        for process in processes:
            _, stderr = process.communicate(timeout=60)
            if process.returncode != 0:
                failures.append(stderr.decode()[-400:])
    assert not failures, failures[0]

    with sqlite3.connect(tmp_path / "round0.sqlite3") as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert {"seen", "scopes", "hook_subscriptions", "rate_slots", "shared_reads"} <= tables


GREENLETS_SHARE_A_THREADS_CONNECTION = """
import json, sys
from gevent import monkey
monkey.patch_all()
import gevent
from triggers.dedupe_store import SqliteDedupeStore

get_ident = monkey.get_original("_thread", "get_ident")
store = SqliteDedupeStore(sys.argv[1])
used = []  # (OS thread, connection); the list keeps every connection alive, so ids stay unique

def use(n):
    for _ in range(3):
        conn = store._connections.get()
        store.has_scope(f"scope-{n}")
        used.append((get_ident(), conn))
        gevent.sleep(0.001)  # let the other greenlets of this thread run in between

def in_another_thread(n):
    conn = store._connections.get()
    store.has_scope(f"thread-{n}")
    used.append((get_ident(), conn))
    return get_ident()

gevent.joinall([gevent.spawn(use, n) for n in range(200)])
pool = gevent.get_hub().threadpool
idents = [result.get() for result in [pool.spawn(in_another_thread, n) for n in range(4)]]
print(json.dumps({
    "greenlet_connections": len({id(conn) for ident, conn in used[:600]}),
    "threads": len({ident for ident, conn in used}),
    "connections": len({id(conn) for ident, conn in used}),
    "pairs": len({(ident, id(conn)) for ident, conn in used}),
    "main_thread_in_pool": get_ident() in idents,
}))
"""


def test_under_gevent_greenlets_share_one_connection_per_os_thread(tmp_path):
    """gevent makes ``threading.local`` greenlet-local; the connection map must stay per OS thread."""
    result = subprocess.run([sys.executable, "-c", GREENLETS_SHARE_A_THREADS_CONNECTION,
                             str(tmp_path / "g.sqlite3")], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    counts = json.loads(result.stdout)
    assert counts["greenlet_connections"] == 1, counts  # 200 greenlets, 600 uses, one thread
    assert counts["threads"] >= 2 and not counts["main_thread_in_pool"]
    assert counts["connections"] == counts["threads"] == counts["pairs"], counts
