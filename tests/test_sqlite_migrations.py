"""The SQLite file's versioned schema (``storage.sqlite_migrations``): a file written by the
release before versions upgrades in place and keeps every state; a current file costs reads
only; a newer one is refused; processes starting at once on an old file all come up."""

import json
import os
import sqlite3
import subprocess
import sys
import time

import pytest

from storage import sqlite_migrations
from storage.backend import SqliteBackend
from storage.sqlite import SqliteConnections
from tests.conftest import ROOT
from triggers.changes import Baseline
from triggers.dedupe_store import SqliteDedupeStore
from triggers.hooks_store import SqliteHookStore, TokenCipher
from triggers.identity import Candidate

NOW = float(int(time.time()))  # the upgrade keeps bodies by the wall clock
DAY = 86400
SECRET = "migration-secret"
SCOPE = "a" * 64  # poll.scope_for makes 64-hex scopes
HOOK = "hook:h-1"

# --- a file of the release before versions, written as its code wrote it ---------------------
# The DDL is what that release's stores executed (sqlite-utils' output for seen/scopes, the
# hook store's SCHEMA, the rate budget's and shared reads' statements), copied verbatim.
RELEASE_SCHEMA = [
    'CREATE TABLE "seen" (\n   "scope" TEXT,\n   "identity" TEXT,\n   "item" TEXT,\n   "order_ts" REAL,\n'
    '   "seq" INTEGER,\n   "first_seen" REAL,\n   "last_seen" REAL,\n   "first_answered" REAL,\n'
    '   PRIMARY KEY ("scope", "identity")\n)',
    'CREATE INDEX "seen_by_answer"\n    ON "seen" ("scope", "first_answered", "order_ts")',
    'CREATE INDEX "seen_by_last_seen"\n    ON "seen" ("last_seen")',
    'CREATE TABLE "scopes" (\n   "scope" TEXT PRIMARY KEY,\n   "first_poll" REAL,\n   "last_poll" REAL,\n'
    '   "next_seq" INTEGER\n)',
    "CREATE TABLE IF NOT EXISTS watch_scopes (id INTEGER PRIMARY KEY AUTOINCREMENT, scope TEXT NOT NULL UNIQUE,"
    " first_poll REAL NOT NULL, last_poll REAL NOT NULL, scan_from TEXT, changes INTEGER NOT NULL DEFAULT 0)",
    "CREATE TABLE IF NOT EXISTS watched (scope_id INTEGER NOT NULL, ghl_id TEXT NOT NULL, vals TEXT NOT NULL,"
    " mark, changes INTEGER NOT NULL, last_seen INTEGER NOT NULL, PRIMARY KEY (scope_id, ghl_id)) WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS watched_by_last_seen ON watched (last_seen)",
    """CREATE TABLE IF NOT EXISTS hook_subscriptions (
    id TEXT PRIMARY KEY, trigger TEXT NOT NULL, inputs TEXT NOT NULL, token_ciphertext TEXT NOT NULL,
    owner TEXT NOT NULL, target_url TEXT NOT NULL, interval_seconds INTEGER NOT NULL, created_at REAL NOT NULL,
    next_poll_at REAL NOT NULL, last_poll_at REAL, last_delivery_at REAL, last_error TEXT, last_error_at REAL,
    delivery_failures INTEGER NOT NULL DEFAULT 0, next_delivery_at REAL, lease_owner TEXT,
    lease_until REAL NOT NULL DEFAULT 0)""",
    "CREATE INDEX IF NOT EXISTS hook_subscriptions_by_poll ON hook_subscriptions (next_poll_at)",
    "CREATE INDEX IF NOT EXISTS hook_subscriptions_by_delivery ON hook_subscriptions (next_delivery_at)",
    "CREATE INDEX IF NOT EXISTS hook_subscriptions_by_owner_poll ON hook_subscriptions (owner, next_poll_at)",
    "CREATE INDEX IF NOT EXISTS hook_subscriptions_by_owner_delivery ON hook_subscriptions (owner, next_delivery_at)",
    "CREATE TABLE IF NOT EXISTS hook_owner_turns (owner TEXT PRIMARY KEY, turn INTEGER NOT NULL DEFAULT 0)",
    "CREATE INDEX IF NOT EXISTS hook_owner_turns_by_turn ON hook_owner_turns (turn, owner)",
    "CREATE TABLE IF NOT EXISTS rate_slots (budget TEXT NOT NULL, taken REAL NOT NULL)",
    "CREATE INDEX IF NOT EXISTS rate_slots_by_budget ON rate_slots (budget, taken)",
    "CREATE TABLE IF NOT EXISTS shared_reads (key TEXT PRIMARY KEY, owner TEXT NOT NULL, status INTEGER, body TEXT,"
    " headers TEXT, fetched_at REAL, lease_until REAL NOT NULL, waiters INTEGER NOT NULL DEFAULT 0,"
    " leader_pid INTEGER)",
    "CREATE INDEX IF NOT EXISTS shared_reads_by_owner ON shared_reads (owner)",
]


def item(n):
    return {"id": f"c{n:05d}", "firstName": f"First{n}", "dateAdded": f"2025-01-01T00:00:{n % 60:02d}Z"}


def write_release_file(path, old=200, recent=5, backlog=4, hook_backlog=3, hook_delivered=2):
    """A file as the release before versions left it (user_version 0), holding every kind of state.

    Scope SCOPE (as ``SqliteDedupeStore._record`` and ``answer`` wrote it): ``old`` items answered
    two days ago (past any redelivery window), ``recent`` answered ten minutes ago (redelivered
    within the hour), ``backlog`` never answered; in sequence order. HOOK's outbox: items
    waiting and items delivered. A change trigger's baselines, a hook subscription with its
    owner's turn, a rate slot and a shared read of the old shape."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("BEGIN")
    for statement in RELEASE_SCHEMA:
        conn.execute(statement)
    rows, seq = [], 0
    kinds = [("old", NOW - 2 * DAY)] * old + [("recent", NOW - 600)] * recent + [("backlog", None)] * backlog
    for n, (_, answered) in enumerate(kinds):
        first_seen = NOW - 3 * DAY + n
        rows.append((SCOPE, f"c{n:05d}", json.dumps(item(n), separators=(",", ":")), 1_700_000_000.0 + n, seq,
                     first_seen, NOW - DAY, answered))
        seq += 1
    for n in range(hook_backlog + hook_delivered):
        answered = NOW - 60 if n < hook_delivered else None
        rows.append((HOOK, f"c{n:05d}", json.dumps(item(n), separators=(",", ":")), 1_700_000_000.0 + n, n,
                     NOW - 120, NOW - 120, answered))
    conn.executemany(
        "INSERT INTO seen (scope, identity, item, order_ts, seq, first_seen, last_seen, first_answered)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
    conn.executemany("INSERT INTO scopes (scope, first_poll, last_poll, next_seq) VALUES (?, ?, ?, ?)",
                     [(SCOPE, NOW - 3 * DAY, NOW - 600, seq),
                      (HOOK, NOW - 120, NOW - 120, hook_backlog + hook_delivered)])
    watch_id = conn.execute("INSERT INTO watch_scopes (scope, first_poll, last_poll, scan_from, changes)"
                            " VALUES (?, ?, ?, ?, ?)", ("w" * 64, NOW - 3 * DAY, NOW - 600, '{"page":2}', 7)).lastrowid
    conn.executemany("INSERT INTO watched (scope_id, ghl_id, vals, mark, changes, last_seen) VALUES (?, ?, ?, ?, ?, ?)",
                     [(watch_id, "r1", '{"tags":["a"]}', 1_700_000_000_000, 3, int(NOW - 600)),
                      (watch_id, "r2", '{"tags":[]}', "v2", 0, int(NOW - 600))])
    cipher = TokenCipher(SECRET)
    conn.execute("INSERT INTO hook_subscriptions (id, trigger, inputs, token_ciphertext, owner, target_url,"
                 " interval_seconds, created_at, next_poll_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                 ("h-1", "list_contacts", '{"locationId":"loc"}', cipher.encrypt("ghl-token"), "owner-1",
                  "https://hooks.zapier.com/h", 60, NOW - 120, NOW - 60))
    conn.execute("INSERT INTO hook_owner_turns (owner, turn) VALUES ('owner-1', 4)")
    conn.execute("INSERT INTO rate_slots (budget, taken) VALUES ('loc', ?)", (NOW - 1,))
    conn.execute("INSERT INTO shared_reads (key, owner, lease_until, leader_pid) VALUES ('k', 'o', 0, 1)")
    conn.execute("COMMIT")
    conn.close()
    return seq


def candidates(numbers):
    """Newest first, as GHL lists them."""
    return [Candidate(f"c{n:05d}", item(n), 1_700_000_000.0 + n) for n in sorted(numbers, reverse=True)]


def version_of(path):
    with sqlite3.connect(path) as conn:
        return conn.execute("PRAGMA user_version").fetchone()[0]


def names_of(path):
    with sqlite3.connect(path) as conn:
        return {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}


def test_a_file_of_the_release_before_versions_upgrades_in_place_and_keeps_every_state(tmp_path):
    path = str(tmp_path / "service.sqlite3")
    next_seq = write_release_file(path)
    assert version_of(path) == 0

    backend = SqliteBackend(path, keep_bodies_seconds=3600)
    assert version_of(path) == sqlite_migrations.LATEST
    assert not {"scopes", "seen_v2"} & names_of(path)
    store = backend.dedupe_store()
    everything = range(next_seq)

    # Identities: all still known; past the window only the lean row is left, no body.
    assert store.known(SCOPE, [f"c{n:05d}" for n in everything]) == {f"c{n:05d}" for n in everything}
    assert store.has_scope(SCOPE) and store.has_scope(HOOK)
    with sqlite3.connect(path) as conn:
        bodies = conn.execute("SELECT COUNT(*) FROM seen_items JOIN dedupe_scopes ON id = scope_id"
                              " WHERE scope = ?", (SCOPE,)).fetchone()[0]
    assert bodies == 5 + 4  # the window's and the backlog's

    # The backlog is still pending, in order; a poll answers it (oldest first, up to the limit),
    # redelivers what was answered ten minutes ago, and nothing older.
    assert store.backlog(SCOPE) == 4
    assert [i["id"] for i in store.pending(SCOPE, 10)] == [f"c{n:05d}" for n in range(205, 209)]
    answered = store.answer(SCOPE, candidates(everything), NOW, 3, 3600, 100)
    assert [i["id"] for i in answered] == [f"c{n:05d}" for n in range(207, 199, -1)]
    assert answered[0] == item(207)
    assert [i["id"] for i in store.pending(SCOPE, 10)] == ["c00208"]
    # A new item comes after every existing one (the sequence goes on).
    answered = store.answer(SCOPE, candidates([*everything, 500]), NOW + 10, 100, 0, 0)
    assert [i["id"] for i in answered] == ["c00500", "c00208"]

    # The hook's outbox: what waited still waits, oldest first; the delivered stay delivered.
    assert store.backlog(HOOK) == 3
    assert [i["id"] for i in store.pending(HOOK, 10)] == ["c00002", "c00003", "c00004"]
    assert store.record(HOOK, candidates(range(6)), NOW) == 1

    # Change baselines and the scanning position.
    watch = store.watch_scope("w" * 64)
    assert watch.first_poll == NOW - 3 * DAY and watch.scan_from == {"page": 2}
    assert store.baselines("w" * 64, ["r1", "r2", "r3"]) == {
        "r1": Baseline({"tags": ["a"]}, 1_700_000_000_000, 3), "r2": Baseline({"tags": []}, "v2", 0)}

    # Hook subscriptions, their tokens and turns; the rate budget's slot still counts.
    hooks = backend.hook_store(TokenCipher(SECRET))
    subscription = hooks.get("h-1")
    assert subscription.owner == "owner-1" and hooks.token(subscription) == "ghl-token"
    assert hooks.lease_next_due("w", NOW, 30).id == "h-1"
    assert backend.rate_slots().try_take("loc", NOW, 10.0, 1) > 0
    # Shared reads in flight were dropped with the old table's shape (``leader`` replaced ``leader_pid``).
    table = backend.shared_read_table()
    assert table.claim("k", "o", "host:1", NOW, NOW + 30)
    backend.close()


def test_bodies_answered_within_a_longer_redelivery_window_are_kept(tmp_path):
    path = str(tmp_path / "service.sqlite3")
    write_release_file(path, old=10)  # "old" = answered two days ago
    store = SqliteBackend(path, keep_bodies_seconds=3 * DAY).dedupe_store()
    answered = store.answer(SCOPE, [], NOW, 0, 3 * DAY, 100)
    assert len(answered) == 10 + 5


def test_the_upgrade_gives_the_dropped_tables_space_back(tmp_path):
    path = str(tmp_path / "service.sqlite3")
    write_release_file(path, old=20_000)
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    before = os.path.getsize(path)
    SqliteDedupeStore(path).close()
    after = os.path.getsize(path) + os.path.getsize(path + "-wal")
    assert after < before / 5, (before, after)


def test_a_current_file_is_checked_with_reads_only(tmp_path):
    path = str(tmp_path / "service.sqlite3")
    write_release_file(path)
    SqliteBackend(path).close()
    conn = SqliteConnections(path).get()
    statements = []
    conn.set_trace_callback(statements.append)
    try:
        assert sqlite_migrations.migrate(conn) == []
        SqliteBackend(path)
        SqliteHookStore(path, TokenCipher(SECRET))
    finally:
        conn.set_trace_callback(None)
    reads = {"PRAGMA user_version", "SELECT name FROM sqlite_master WHERE type IN ('table', 'index')"}
    assert set(statements) == reads and len(statements) == 2 * 5, statements  # migrate, backend, 3 stores


def test_a_new_file_is_made_current_at_once(tmp_path):
    path = str(tmp_path / "new.sqlite3")
    assert sqlite_migrations.migrate(SqliteConnections(path).get()) == []
    assert version_of(path) == sqlite_migrations.LATEST
    assert sqlite_migrations.CURRENT_OBJECTS <= names_of(path)
    assert not {"scopes", "seen_by_last_seen"} & names_of(path)


def test_a_file_of_a_newer_release_is_refused(tmp_path):
    path = str(tmp_path / "service.sqlite3")
    SqliteDedupeStore(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {sqlite_migrations.LATEST + 1}")
    with pytest.raises(sqlite_migrations.SchemaTooNew, match=r"schema version 3, newer than this code knows \(2\)"):
        SqliteDedupeStore(path)
    with pytest.raises(sqlite_migrations.SchemaTooNew):
        SqliteBackend(path)


def test_a_step_that_fails_leaves_the_file_as_it_was(tmp_path, monkeypatch):
    path = str(tmp_path / "service.sqlite3")
    write_release_file(path)

    def broken(conn, context):
        conn.execute("DROP TABLE scopes")
        raise RuntimeError("step 2 failed half-way")

    steps = list(sqlite_migrations.STEPS)
    steps[1] = (2, "broken", broken)
    monkeypatch.setattr(sqlite_migrations, "STEPS", tuple(steps))
    with pytest.raises(RuntimeError, match="half-way"):
        SqliteDedupeStore(path)
    assert version_of(path) == 0 and {"scopes", "seen"} <= names_of(path)
    monkeypatch.undo()
    store = SqliteDedupeStore(path)
    assert store.backlog(SCOPE) == 4


def test_an_old_file_that_cannot_be_opened_at_start_is_upgraded_when_it_can(tmp_path):
    """A process started during a storage fault comes up, answers 503s, and applies the
    schema (here: the upgrade) on the first connection that opens once storage heals."""
    path = tmp_path / "service.sqlite3"
    write_release_file(str(tmp_path / "old.sqlite3"))
    path.mkdir()  # "unable to open database file"
    store = SqliteDedupeStore(str(path))
    with pytest.raises(sqlite3.OperationalError, match="unable to open"):
        store.has_scope(SCOPE)
    path.rmdir()
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(str(tmp_path / "old.sqlite3") + suffix):
            os.rename(str(tmp_path / "old.sqlite3") + suffix, str(path) + suffix)
    assert store.backlog(SCOPE) == 4
    assert version_of(str(path)) == sqlite_migrations.LATEST


OPEN_THE_BACKEND = """
import sys, time
from storage.backend import SqliteBackend
from triggers.hooks_store import TokenCipher
path, start_at = sys.argv[1], float(sys.argv[2])
time.sleep(max(0.0, start_at - time.time()))
backend = SqliteBackend(path)
backend.hook_store(TokenCipher("key"))
print(backend.dedupe_store().backlog(sys.argv[3]))
"""


def test_processes_starting_together_on_a_file_of_the_previous_release_all_come_up(tmp_path):
    path = str(tmp_path / "service.sqlite3")
    next_seq = write_release_file(path, old=5000)
    start_at = time.time() + 1.5  # after every interpreter has imported, so they collide
    processes = [subprocess.Popen([sys.executable, "-c", OPEN_THE_BACKEND, path, str(start_at), SCOPE],
                                  cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(8)]
    outputs = [process.communicate(timeout=120) for process in processes]
    failures = [err[-600:] for process, (_, err) in zip(processes, outputs) if process.returncode != 0]
    assert not failures, failures[0]
    assert [out.strip() for out, _ in outputs] == ["4"] * 8
    assert version_of(path) == sqlite_migrations.LATEST
    store = SqliteDedupeStore(path)
    assert len(store.known(SCOPE, [f"c{n:05d}" for n in range(next_seq)])) == next_seq
