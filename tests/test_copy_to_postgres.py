"""``python -m storage.copy_to_postgres``: an agency's SQLite state moved into an empty PostgreSQL
database behaves there as it did in SQLite (checked through the public store APIs, the SQLite
store answering the same calls beside it)."""

import io
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from storage import copy_to_postgres
from storage.backend import SqliteBackend
from storage.postgres import PostgresBackend
from triggers.changes import ChangeBatch, watch_of
from triggers.hooks_store import TokenCipher
from triggers.identity import Candidate

ROOT = Path(__file__).resolve().parent.parent
CIPHER = TokenCipher("the same secret key on both sides")
HOUR = 3600
NOW = float(int(time.time()))
POLLED = "a" * 64  # a polling trigger's scope: answered items, a backlog, a redelivery window
MANY = "b" * 64  # many identities, all answered long ago
CHANGES = "c" * 64  # a change trigger's scope: baselines
GONE = "d" * 64  # forgotten before the copy: its id must never be given again
HOOK_ID = "hk_first"


def candidates(prefix, count, start=0, ts=NOW - 1000):
    return [Candidate(f"{prefix}{n}", {"id": f"{prefix}{n}", "n": n}, sort_ts=ts + n) for n in range(start, count)]


def contact(ghl_id, updated, tags=()):
    created = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(NOW - 86400))
    return {"id": ghl_id, "tags": list(tags), "dateAdded": created,
            "dateUpdated": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(updated))}


def tag_watch():
    from catalog.registry import load_catalog
    return watch_of(load_catalog().get("contact_tag_added"), {})


def populate(path):
    """A SQLite file written by the real stores, as a running service leaves it."""
    backend = SqliteBackend(path)
    store = backend.dedupe_store()
    # 10 items: 4 answered 20 minutes ago (still in the redelivery window), 6 wait; then 3 more wait.
    assert len(store.answer(POLLED, candidates("p", 10), NOW - 1200, 4, HOUR, 100)) == 4
    assert store.record(POLLED, candidates("p", 13, start=10), NOW - 600) == 3  # 9 in the backlog now
    assert store.record(MANY, candidates("m", 3000), NOW - 5 * 86400, answered=True) == 3000
    w = tag_watch()
    store.answer(CHANGES, ChangeBatch(w, [contact("c1", NOW - 900, ["vip"]), contact("c2", NOW - 900, ["lead"])]),
                 NOW - 800, 100, HOUR, 100)
    hooks = backend.hook_store(CIPHER)
    hooks.create(HOOK_ID, "contact_created", {"location": "x"}, "token-1", "owner-a", "https://h.example/1",
                 60, NOW - 300)
    hooks.create("hk_second", "contact_created", {}, "token-2", "owner-a", "https://h.example/2", 60, NOW - 290)
    hooks.create("hk_third", "contact_created", {}, "token-3", "owner-b", "https://h.example/3", 60, NOW - 280)
    leased = hooks.lease_next_due("worker-1", NOW - 200, 30)  # owner-a served: its turn advances
    assert leased.id == HOOK_ID
    assert hooks.update_held(HOOK_ID, "worker-1", release=True, next_poll_at=NOW - 100, last_poll_at=NOW - 200)
    store.record("hook:" + HOOK_ID, candidates("h", 3), NOW - 200, answered=True)
    store.record("hook:" + HOOK_ID, candidates("h", 5, start=3), NOW - 150)  # its outbox: 2 to deliver
    store.record(GONE, candidates("g", 2), NOW - 100)
    store.forget_scope(GONE)  # the highest dedupe id, gone: AUTOINCREMENT never gives it again
    hooks.close()
    backend.close()


def highest_sqlite_dedupe_id(path):
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'dedupe_scopes'").fetchone()[0]


def run_command(sqlite_path, dsn):
    env = {**os.environ, "DATABASE_URL": dsn}
    return subprocess.run([sys.executable, "-m", "storage.copy_to_postgres", str(sqlite_path)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def copied(tmp_path, postgres_server):
    path = tmp_path / "agency.sqlite3"
    populate(path)
    dsn = postgres_server.fresh_database("copy")
    result = run_command(path, dsn)
    assert result.returncode == 0, result.stderr
    return path, dsn, result


def test_the_copy_behaves_as_the_sqlite_file_did_and_a_second_copy_is_refused(copied):
    path, dsn, result = copied
    assert dsn not in result.stdout + result.stderr
    counts = dict(line.split(": ") for line in result.stdout.splitlines() if ": " in line)
    assert counts["seen"] == str(13 + 3000 + 5) and counts["hook_subscriptions"] == "3"
    assert counts["dedupe_scopes"] == "4" and counts["watch_scopes"] == "1" and counts["watched"] == "2"
    assert counts["hook_owner_turns"] == "2"
    # The SQLite store answers each call beside the PostgreSQL one: both must agree.
    lite = SqliteBackend(path)
    pg = PostgresBackend(dsn)
    try:
        sides = [lite.dedupe_store(), pg.dedupe_store()]
        same = []
        for store in sides:
            known_answer = store.answer(MANY, candidates("m", 3000)[:200], NOW, 100, HOUR, 100)
            same.append((
                store.has_scope(POLLED), store.backlog(POLLED), store.pending(POLLED, 100),
                known_answer, store.known(MANY, ["m0", "m2999", "m3000"]),
                store.pending("hook:" + HOOK_ID, 10), store.watch_scope(CHANGES),
                store.baselines(CHANGES, ["c1", "c2", "c3"]),
            ))
        assert same[0] == same[1]
        backlog, pending, known_answer, known = same[1][1], same[1][2], same[1][3], same[1][4]
        assert backlog == 9 and [item["n"] for item in pending] == [4, 5, 6, 7, 8, 9, 10, 11, 12]
        assert known_answer == [] and known == {"m0", "m2999"}
        assert set(same[1][7]) == {"c1", "c2"}

        # The next poll: known identities are not new, the backlog drains oldest first and the
        # redelivery window still answers what was answered 20 minutes ago.
        answers = [store.answer(POLLED, candidates("p", 14), NOW, 5, HOUR, 100) for store in sides]
        assert answers[0] == answers[1]
        assert sorted(item["n"] for item in answers[1]) == [0, 1, 2, 3, 4, 5, 6, 7, 8]
        answers = [store.answer(POLLED, candidates("p", 14), NOW + 1, 100, HOUR, 100) for store in sides]
        assert answers[0] == answers[1] and len(answers[1]) == 14

        # A change trigger compares with the copied baselines: only the real change fires.
        w = tag_watch()
        batch = [contact("c1", NOW - 10, ["vip", "gold"]), contact("c2", NOW - 900, ["lead"])]
        fired = [store.answer(CHANGES, ChangeBatch(w, batch), NOW, 100, 0, 0) for store in sides]
        assert fired[0] == fired[1] and [item["id"] for item in fired[1]] == ["c1:1:+gold"]

        # A new scope gets an id past every id SQLite ever gave (AUTOINCREMENT: not even a forgotten one).
        assert sides[1].answer("e" * 64, candidates("e", 2), NOW, 10, HOUR, 10)
        with psycopg.connect(dsn) as conn:
            new_id = conn.execute("SELECT id FROM dedupe_scopes WHERE scope = %s", ("e" * 64,)).fetchone()[0]
        assert new_id > highest_sqlite_dedupe_id(path)

        # Hooks: readable with the same token, and leased in the same order (owners' turns copied).
        hook_sides = [lite.hook_store(CIPHER), pg.hook_store(CIPHER)]
        subscriptions = [h.get(HOOK_ID) for h in hook_sides]
        assert subscriptions[0] == subscriptions[1]
        assert hook_sides[1].token(subscriptions[1]) == "token-1"
        assert hook_sides[1].token(hook_sides[1].get("hk_third")) == "token-3"
        # owner-b was never served; then owner-a's most overdue one.
        leases = [[h.lease_next_due(f"w{n}", NOW, 30).id for n in range(3)] for h in hook_sides]
        assert leases[0] == leases[1] == ["hk_third", "hk_second", HOOK_ID]
        assert hook_sides[1].lease_next_due("w9", NOW, 30) is None
        assert hook_sides[1].create("hk_new", "contact_created", {}, "t", "owner-c", "https://h.example/4", 60, NOW)
    finally:
        pg.close()
        lite.close()

    again = run_command(path, dsn)
    assert again.returncode == 2
    assert "not empty" in again.stderr and dsn not in again.stdout + again.stderr


def test_refused_without_a_target_or_a_file(tmp_path, postgres_server):
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    path = tmp_path / "agency.sqlite3"
    populate(path)
    result = subprocess.run([sys.executable, "-m", "storage.copy_to_postgres", str(path)], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "DATABASE_URL is not set" in result.stderr
    dsn = postgres_server.fresh_database("copy")
    result = run_command(tmp_path / "missing.sqlite3", dsn)
    assert result.returncode == 2 and "no SQLite file" in result.stderr and dsn not in result.stderr
    assert not (tmp_path / "missing.sqlite3").exists()


def test_a_hundred_thousand_identities_copy_in_seconds(tmp_path, postgres_server):
    path = tmp_path / "big.sqlite3"
    backend = SqliteBackend(path)
    store = backend.dedupe_store()
    scopes = [f"{n:064x}" for n in range(10)]
    for scope in scopes:
        store.record(scope, candidates("x", 1), NOW - 86400)
    backend.close()
    with sqlite3.connect(path) as conn:  # the bulk written directly: the stores would take minutes
        ids = [row[0] for row in conn.execute("SELECT id FROM dedupe_scopes")]
        conn.executemany("INSERT OR IGNORE INTO seen (scope_id, last_day, ident) VALUES (?, ?, ?)",
                         ((ids[n % 10], int(NOW // 86400), (n * 0x9E3779B97F4A7C15) % 2 ** 63 - 2 ** 62)
                          for n in range(100_000)))
        total = conn.execute("SELECT COUNT(*) FROM seen").fetchone()[0]
    dsn = postgres_server.fresh_database("copy")
    out = io.StringIO()
    started = time.monotonic()
    counts = copy_to_postgres.run(str(path), dsn, out=out)
    elapsed = time.monotonic() - started
    assert counts["seen"] == total and dsn not in out.getvalue()
    assert elapsed < 20, elapsed
    pg = PostgresBackend(dsn)
    try:
        assert pg.dedupe_store().known(scopes[0], ["x0", "x1"]) == {"x0"}
    finally:
        pg.close()
