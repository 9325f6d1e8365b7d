"""One SQLite file, many processes: gunicorn workers and the hook worker all start on a database
that may not exist yet, and every one of them must come up (a worker that fails to boot makes
gunicorn shut the whole service down)."""

import json
import sqlite3
import subprocess
import sys
import time

from bench import dedupe_cost
from catalog.registry import load_catalog
from ghl.rate_budget import SqliteRateSlots
from server.config import Settings
from storage import sqlite_migrations
from tests.conftest import ROOT
from triggers.changes import ChangeBatch, watch_of
from triggers.dedupe_store import SqliteDedupeStore
from triggers.identity import Candidate

OPEN_EVERY_STORE = """
import sys, time
from storage.backend import SqliteBackend
from triggers.hooks_store import TokenCipher
path, start_at = sys.argv[1], float(sys.argv[2])
time.sleep(max(0.0, start_at - time.time()))
SqliteBackend(path).hook_store(TokenCipher("key"))
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

    for round_number in range(4):
        with sqlite3.connect(tmp_path / f"round{round_number}.sqlite3") as conn:
            names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert conn.execute("PRAGMA user_version").fetchone()[0] == sqlite_migrations.LATEST
        assert sqlite_migrations.CURRENT_OBJECTS <= names


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


# --- what a steady state costs: statements, not write transactions ---------------------------

def traced(conn, action):
    statements = []
    conn.set_trace_callback(lambda statement: statements.append(statement.strip()))
    try:
        result = action()
    finally:
        conn.set_trace_callback(None)
    return result, statements


def test_a_steady_state_answer_reads_only(tmp_path):
    """Every candidate known and seen today, no backlog: one read (two with items to redeliver),
    no write lock; a new item, a backlog or a new day takes the locked path again."""
    store = SqliteDedupeStore(str(tmp_path / "d.sqlite3"))
    now = float(int(time.time() // 86400) * 86400 + 3600)  # an hour into today
    page = [Candidate(f"c{n}", {"id": f"c{n}"}, 1_700_000_000.0 + n) for n in range(19, -1, -1)]
    store.answer("s", page, now, 100, 3600, 100)
    conn = store._connection()

    answered, statements = traced(conn, lambda: store.answer("s", page, now + 60, 100, 3600, 100))
    assert [item["id"] for item in answered] == [f"c{n}" for n in range(19, -1, -1)]
    assert len(statements) == 2 and all(s.startswith("SELECT") for s in statements), statements

    answered, statements = traced(conn, lambda: store.answer("s", page, now + 7200, 100, 3600, 100))
    assert answered == [] and len(statements) == 1 and statements[0].startswith("SELECT"), statements

    newer = [Candidate("c20", {"id": "c20"}, 1_700_000_020.0), *page]
    answered, statements = traced(conn, lambda: store.answer("s", newer, now + 7260, 100, 0, 0))
    assert [item["id"] for item in answered] == ["c20"] and "BEGIN IMMEDIATE" in statements

    store.record("s", [Candidate("c21", {"id": "c21"}, 1_700_000_021.0)], now + 7300)  # a backlog
    answered, statements = traced(conn, lambda: store.answer("s", page, now + 7320, 100, 0, 0))
    assert [item["id"] for item in answered] == ["c21"] and "BEGIN IMMEDIATE" in statements

    # Tomorrow: the first poll refreshes the days seen (and the scope's last poll), the next reads only.
    _, statements = traced(conn, lambda: store.answer("s", page, now + 86400, 100, 0, 0))
    assert "BEGIN IMMEDIATE" in statements
    _, statements = traced(conn, lambda: store.answer("s", page, now + 86460, 100, 0, 0))
    assert len(statements) == 1


def test_a_steady_state_record_and_change_batch_read_only(tmp_path):
    store = SqliteDedupeStore(str(tmp_path / "d.sqlite3"))
    now = float(int(time.time() // 86400) * 86400 + 3600)
    conn = store._connection()
    page = [Candidate(f"c{n}", {"id": f"c{n}"}, 1_700_000_000.0 + n) for n in range(9, -1, -1)]
    assert store.record("hook:h", page, now) == 10
    new, statements = traced(conn, lambda: store.record("hook:h", page, now + 60))
    assert new == 0 and len(statements) == 1, statements

    watch = watch_of(load_catalog().get("contact_tag_added"), {})
    records = [{"id": f"r{n}", "tags": ["a"], "dateAdded": "2020-01-01T00:00:00.000Z",
                "dateUpdated": "2020-01-02T00:00:00.000Z"} for n in range(5)]
    store.answer("w", ChangeBatch(watch, records), now, 100, 0, 0)  # the first poll: baselines
    answered, statements = traced(conn, lambda: store.answer("w", ChangeBatch(watch, records), now + 60, 100, 0, 0))
    assert answered == [] and len(statements) == 2 and all(s.startswith("SELECT") for s in statements), statements
    changed = [{**records[0], "tags": ["a", "b"], "dateUpdated": "2020-01-03T00:00:00.000Z"}, *records[1:]]
    answered, statements = traced(conn, lambda: store.answer("w", ChangeBatch(watch, changed), now + 120, 100, 0, 0))
    assert [item["id"] for item in answered] == ["r0:1:+b"] and "BEGIN IMMEDIATE" in statements


def test_a_rate_slot_is_one_statement_until_the_budget_holds_max_rows(tmp_path):
    slots = SqliteRateSlots(str(tmp_path / "r.sqlite3"))
    conn = slots._connections.get()
    for n in range(3):
        wait, statements = traced(conn, lambda: slots.try_take("loc", 1000.0 + n, 10.0, 3))
        assert wait == 0.0 and len(statements) == 1, statements
    wait, statements = traced(conn, lambda: slots.try_take("loc", 1005.0, 10.0, 3))
    assert wait == 5.0 and "BEGIN IMMEDIATE" in statements  # full: the oldest frees at 1010
    wait, statements = traced(conn, lambda: slots.try_take("loc", 1010.5, 10.0, 3))
    assert wait == 0.0 and any(s.startswith("DELETE") for s in statements)  # expired slots go
    assert conn.execute("SELECT COUNT(*) FROM rate_slots").fetchone()[0] == 3


# --- lean rows on disk ----------------------------------------------------------------------

def test_a_hook_outbox_keeps_no_body_once_delivered(tmp_path):
    store = SqliteDedupeStore(str(tmp_path / "d.sqlite3"))
    page = [Candidate(f"c{n}", {"id": f"c{n}"}, 1_700_000_000.0 + n) for n in range(3)]
    store.record("hook:h", page, 1000.0)
    store.record("hook:seeded", page, 1000.0, answered=True)
    store.mark_answered("hook:h", ["c0", "c1"], 1010.0)
    bodies = store._connection().execute(
        "SELECT scope, COUNT(*) FROM seen_items JOIN dedupe_scopes ON id = scope_id GROUP BY scope").fetchall()
    assert bodies == [("hook:h", 1)]
    assert store.known("hook:h", ["c0", "c1", "c2", "c3"]) == {"c0", "c1", "c2"}
    assert store.known("hook:seeded", ["c0", "c3"]) == {"c0"}


def test_after_the_window_a_remembered_identity_costs_at_most_150_bytes_and_the_file_shrinks(tmp_path):
    """bench.dedupe_cost at 20,000 identities: 100 scopes, contact-sized items, bodies pruned
    once the redelivery window has passed; the file as left (pruned pages given back) and
    after VACUUM."""
    result = dedupe_cost.measure(Settings(database_path=str(tmp_path / "d.sqlite3")), identities=20_000,
                                 sizes=(100,), repeats=2, log=lambda *args: None)
    assert result["rows"] == 20_000 + 200
    assert result["bytes_per_identity"] <= 150, result
    assert result["bytes_per_identity_as_left"] <= 150, result
