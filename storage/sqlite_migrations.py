"""The SQLite file's schema, versioned: ``PRAGMA user_version`` says which steps it has.

Every store's constructor calls ``ensure_schema(connections)``; ``SqliteBackend`` calls it first
with the redelivery window. A file already current costs two reads (the version and the names
in ``sqlite_master``) and takes no lock. Otherwise the steps it lacks run, in order, in one
``BEGIN IMMEDIATE`` transaction that re-reads the version once it holds the write lock: the
gunicorn workers and hook workers that start on the same new or old file at once queue on the
lock, and the later ones find the work done. A step that fails leaves the file as it was.

- A new file gets ``CURRENT_SCHEMA`` at once and the latest version.
- Version 0 with the service's tables in it is a file of the release before versions
  (or older): step 1 recognises it (it creates only what is missing, as that release did)
  and the later steps upgrade it in place.
- A current file missing some of its tables or indexes (dropped by hand) gets them back.
- A file of a newer version than this code knows is refused (``SchemaTooNew``): the older code
  would misread it. Downgrading needs the backup taken before the upgrade.

Step 2, lean dedupe rows (``triggers.dedupe_store``): each scope's name is stored once
(``dedupe_scopes``), each identity as 8 bytes (``storage.idents.ident_of``) with the day it was
last seen, and bodies only in ``seen_items`` for the backlog (never answered, a REST hook's
outbox) and for items answered within the redelivery window (at least a day back is kept
here; the store's hourly prune drops what is past the configured window). What it costs:

- Time, under the write lock: about 1 s per 100,000 identities (a file the release wrote,
  100,000 identities in 20 scopes, 81 MB: 1.0 s; hashing every identity, copying the lean
  rows in key order, dropping the old table), during which every other process waits on the
  lock (a migration waits up to ``LOCK_WAIT_SECONDS`` for another's). Gunicorn kills a worker
  that takes more than its ``--timeout`` (60 s) to boot, i.e. beyond about 5 million
  identities: migrate such a file before starting the service,
  ``python -m storage.sqlite_migrations PATH``.
- Space: dropping the old table leaves the file its old size, the rest free pages, so the
  step then runs ``VACUUM`` (outside the transaction) and truncates the WAL: that rewrites the
  whole (now small) database, holds the write lock again (0.2 s for those 100,000 identities:
  81 MB became 4.7 MB) and needs free disk of about twice the new size (a temporary copy and
  the WAL), the upgrade's own WAL about as much. A failed ``VACUUM`` (a full disk) is only
  logged: the file stays correct, just not smaller. The old table's pages are freed without
  being zeroed (``secure_delete = FAST`` for the drop), which the ``VACUUM`` makes moot.
- The upgrade's ``VACUUM`` also makes the file ``auto_vacuum = INCREMENTAL``, as every new file
  is (``storage.sqlite.SqliteConnections``): the dedupe store's prune then gives the pages of
  pruned bodies back to the file system when they are a quarter of the file or more (after a
  burst), instead of keeping the file at its largest size for ever.
- A process of the release before this one must not run on the file after the upgrade (its
  queries name the old tables): stop the old service before starting this one.
"""

import argparse
import logging
import sqlite3
import time
from dataclasses import dataclass

from storage import sqlite as sqlite_storage
from storage.idents import ident_of

log = logging.getLogger(__name__)

DAY_SECONDS = 86400
# How long a migrating process waits for another process's migration (beyond the busy timeout).
LOCK_WAIT_SECONDS = 600
AUTO_VACUUM_INCREMENTAL = 2  # PRAGMA auto_vacuum's value: pages freed by a prune can go back (see below)


class SchemaTooNew(RuntimeError):
    """The file was written by a newer release than this code."""


def _statements(script):
    return [part.strip() for part in script.split(";") if part.strip()]


# --- step 1: the release before versions, exactly as it created its tables ---------------------
# (the stores created their own tables, each only if missing: a file of an older release may
# lack some of them; the hook store backfilled owners' turns.)

# Change baselines and hook tables, unchanged since step 1 (used by V1_SCHEMA and
# CURRENT_SCHEMA; a step that changes one of them gives CURRENT_SCHEMA its own text).
WATCH_AND_HOOK_TABLES = """
CREATE TABLE IF NOT EXISTS watch_scopes (id INTEGER PRIMARY KEY AUTOINCREMENT,
    scope TEXT NOT NULL UNIQUE, first_poll REAL NOT NULL, last_poll REAL NOT NULL, scan_from TEXT,
    changes INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS watched (scope_id INTEGER NOT NULL, ghl_id TEXT NOT NULL,
    vals TEXT NOT NULL, mark, changes INTEGER NOT NULL, last_seen INTEGER NOT NULL,
    PRIMARY KEY (scope_id, ghl_id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS watched_by_last_seen ON watched (last_seen);
CREATE TABLE IF NOT EXISTS hook_subscriptions (
    id TEXT PRIMARY KEY,
    trigger TEXT NOT NULL,
    inputs TEXT NOT NULL,
    token_ciphertext TEXT NOT NULL,
    owner TEXT NOT NULL,
    target_url TEXT NOT NULL,
    interval_seconds INTEGER NOT NULL,
    created_at REAL NOT NULL,
    next_poll_at REAL NOT NULL,
    last_poll_at REAL,
    last_delivery_at REAL,
    last_error TEXT,
    last_error_at REAL,
    delivery_failures INTEGER NOT NULL DEFAULT 0,
    next_delivery_at REAL,
    lease_owner TEXT,
    lease_until REAL NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS hook_subscriptions_by_poll ON hook_subscriptions (next_poll_at);
CREATE INDEX IF NOT EXISTS hook_subscriptions_by_delivery ON hook_subscriptions (next_delivery_at);
CREATE INDEX IF NOT EXISTS hook_subscriptions_by_owner_poll ON hook_subscriptions (owner, next_poll_at);
CREATE INDEX IF NOT EXISTS hook_subscriptions_by_owner_delivery ON hook_subscriptions (owner, next_delivery_at);
CREATE TABLE IF NOT EXISTS hook_owner_turns (
    owner TEXT PRIMARY KEY,
    turn INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS hook_owner_turns_by_turn ON hook_owner_turns (turn, owner);
"""

V1_SCHEMA = """
CREATE TABLE IF NOT EXISTS "seen" (
   "scope" TEXT,
   "identity" TEXT,
   "item" TEXT,
   "order_ts" REAL,
   "seq" INTEGER,
   "first_seen" REAL,
   "last_seen" REAL,
   "first_answered" REAL,
   PRIMARY KEY ("scope", "identity")
);
CREATE INDEX IF NOT EXISTS "seen_by_answer" ON "seen" ("scope", "first_answered", "order_ts");
CREATE INDEX IF NOT EXISTS "seen_by_last_seen" ON "seen" ("last_seen");
CREATE TABLE IF NOT EXISTS "scopes" (
   "scope" TEXT PRIMARY KEY,
   "first_poll" REAL,
   "last_poll" REAL,
   "next_seq" INTEGER
);
""" + WATCH_AND_HOOK_TABLES + """INSERT OR IGNORE INTO hook_owner_turns (owner, turn) SELECT DISTINCT owner, 0 FROM hook_subscriptions;
CREATE TABLE IF NOT EXISTS rate_slots (budget TEXT NOT NULL, taken REAL NOT NULL);
CREATE INDEX IF NOT EXISTS rate_slots_by_budget ON rate_slots (budget, taken)
"""

V1_SHARED_READS_COLUMNS = ("key", "owner", "status", "body", "headers", "fetched_at", "lease_until", "waiters",
                           "leader_pid")
V1_SHARED_READS = """
CREATE TABLE IF NOT EXISTS shared_reads (key TEXT PRIMARY KEY, owner TEXT NOT NULL,
    status INTEGER, body TEXT, headers TEXT, fetched_at REAL, lease_until REAL NOT NULL,
    waiters INTEGER NOT NULL DEFAULT 0, leader_pid INTEGER);
CREATE INDEX IF NOT EXISTS shared_reads_by_owner ON shared_reads (owner)
"""


def _v1_baseline(conn, context):
    for statement in _statements(V1_SCHEMA):
        conn.execute(statement)
    # Shared reads only hold answers for a minute: a table of another shape was dropped, not migrated.
    present = tuple(row[1] for row in conn.execute("PRAGMA table_info(shared_reads)"))
    if present and present != V1_SHARED_READS_COLUMNS:
        conn.execute("DROP TABLE shared_reads")
    for statement in _statements(V1_SHARED_READS):
        conn.execute(statement)


# --- step 2: lean dedupe rows; shared reads led by "host:pid" -----------------------------------

# The dedupe tables as of version 2 (also part of CURRENT_SCHEMA).
LEAN_DEDUPE = """
CREATE TABLE IF NOT EXISTS dedupe_scopes (id INTEGER PRIMARY KEY AUTOINCREMENT,
    scope TEXT NOT NULL UNIQUE, first_poll REAL NOT NULL, last_poll REAL NOT NULL,
    next_seq INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS dedupe_scopes_by_last_poll ON dedupe_scopes (last_poll);
CREATE TABLE IF NOT EXISTS seen (scope_id INTEGER NOT NULL, last_day INTEGER NOT NULL,
    ident INTEGER NOT NULL, PRIMARY KEY (scope_id, ident)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS seen_by_last_day ON seen (last_day);
CREATE TABLE IF NOT EXISTS seen_items (scope_id INTEGER NOT NULL, ident INTEGER NOT NULL,
    item TEXT NOT NULL, order_ts REAL NOT NULL, seq INTEGER NOT NULL, first_answered REAL,
    PRIMARY KEY (scope_id, ident));
CREATE INDEX IF NOT EXISTS seen_items_by_answer ON seen_items (scope_id, first_answered, order_ts, seq)
"""

V2_SHARED_READS = """
CREATE TABLE IF NOT EXISTS shared_reads (key TEXT PRIMARY KEY, owner TEXT NOT NULL,
    status INTEGER, body TEXT, headers TEXT, fetched_at REAL, lease_until REAL NOT NULL,
    waiters INTEGER NOT NULL DEFAULT 0, leader TEXT);
CREATE INDEX IF NOT EXISTS shared_reads_by_owner ON shared_reads (owner)
"""
# The row the health check rewrites (storage.sqlite.probe_writable also makes it if missing).
HEALTH_PROBE = ("CREATE TABLE IF NOT EXISTS health_probe"
                " (id INTEGER PRIMARY KEY CHECK (id = 1), probed_at REAL NOT NULL)")

# The identities of the old table, hashed, under the scope's new id. Rows are inserted in key
# order (a sort of 16-byte keys), which is much cheaper than random inserts into the b-tree.
COPY_IDENTITIES_SQL = """
INSERT OR IGNORE INTO seen_v2 (scope_id, last_day, ident)
SELECT d.id, CAST(COALESCE(s.last_seen, s.first_seen, :now) / 86400 AS INTEGER), ghl_ident(s.identity)
FROM seen AS s JOIN dedupe_scopes AS d ON d.scope = s.scope
ORDER BY 1, 3
"""

# Bodies that can still be answered: the backlog, and what was answered within the window
# (never for a REST hook's outbox, which does not redeliver).
COPY_BODIES_SQL = """
INSERT OR IGNORE INTO seen_items (scope_id, ident, item, order_ts, seq, first_answered)
SELECT d.id, ghl_ident(s.identity), COALESCE(s.item, 'null'), COALESCE(s.order_ts, s.first_seen, 0),
       COALESCE(s.seq, 0), s.first_answered
FROM dedupe_scopes AS d JOIN seen AS s ON s.scope = d.scope AND s.first_answered IS NULL
UNION ALL
SELECT d.id, ghl_ident(s.identity), COALESCE(s.item, 'null'), COALESCE(s.order_ts, s.first_seen, 0),
       COALESCE(s.seq, 0), s.first_answered
FROM dedupe_scopes AS d JOIN seen AS s ON s.scope = d.scope AND s.first_answered >= :keep_from
WHERE substr(d.scope, 1, 5) != 'hook:'
"""


def _v2_lean_rows(conn, context):
    conn.create_function("ghl_ident", 1, ident_of, deterministic=True)
    columns = {row[1] for row in conn.execute("PRAGMA table_info(seen)")}
    if "identity" in columns:
        had_rows = conn.execute("SELECT EXISTS (SELECT 1 FROM seen)").fetchone()[0]
        for statement in _statements(LEAN_DEDUPE):
            if not _object_names(statement) & {"seen", "seen_by_last_day"}:
                conn.execute(statement)  # the lean seen is made beside the old one, then renamed
        conn.execute("CREATE TABLE seen_v2 (scope_id INTEGER NOT NULL, last_day INTEGER NOT NULL,"
                     " ident INTEGER NOT NULL, PRIMARY KEY (scope_id, ident)) WITHOUT ROWID")
        conn.execute(
            "INSERT INTO dedupe_scopes (scope, first_poll, last_poll, next_seq)"
            " SELECT scope, COALESCE(first_poll, last_poll, :now), COALESCE(last_poll, first_poll, :now),"
            " COALESCE(next_seq, 0) FROM scopes WHERE scope IS NOT NULL ORDER BY scope",
            {"now": context.now})
        # Identities of a scope without a row in ``scopes`` (not made by the last release; cheap to cover).
        known = {row[0] for row in conn.execute("SELECT scope FROM dedupe_scopes")}
        orphans = [row[0] for row in conn.execute("SELECT DISTINCT scope FROM seen")
                   if row[0] is not None and row[0] not in known]
        for scope in orphans:
            conn.execute(
                "INSERT INTO dedupe_scopes (scope, first_poll, last_poll, next_seq)"
                " SELECT scope, COALESCE(MIN(first_seen), :now), COALESCE(MAX(last_seen), :now),"
                " COALESCE(MAX(seq), -1) + 1 FROM seen WHERE scope = :scope GROUP BY scope",
                {"now": context.now, "scope": scope})
        conn.execute(COPY_IDENTITIES_SQL, {"now": context.now})
        conn.execute(COPY_BODIES_SQL, {"keep_from": context.keep_bodies_from})
        # Debian's SQLite zeroes every freed page (SECURE_DELETE): dropping the old table would
        # write all of it again, zeros, through the WAL. The VACUUM that follows leaves the
        # freed pages out of the file instead.
        secure_delete = conn.execute("PRAGMA secure_delete").fetchone()[0]
        conn.execute("PRAGMA secure_delete = FAST")
        try:
            conn.execute("DROP TABLE seen")
            conn.execute("DROP TABLE scopes")
        finally:
            conn.execute(f"PRAGMA secure_delete = {int(secure_delete)}")
        conn.execute("ALTER TABLE seen_v2 RENAME TO seen")
        conn.execute("CREATE INDEX seen_by_last_day ON seen (last_day)")
        context.vacuum = bool(had_rows)
    else:
        for statement in _statements(LEAN_DEDUPE):
            conn.execute(statement)
    # The VACUUM also makes the file auto_vacuum = INCREMENTAL, as new files are (quick when small).
    context.vacuum = context.vacuum or conn.execute("PRAGMA auto_vacuum").fetchone()[0] != AUTO_VACUUM_INCREMENTAL
    conn.execute("DROP TABLE IF EXISTS shared_reads")  # answers in flight: a minute's worth, not migrated
    _run(conn, V2_SHARED_READS)
    conn.execute(HEALTH_PROBE)


STEPS = (
    (1, "baseline: the release before versions (dedupe, change baselines, hooks, rate budget, shared reads)",
     _v1_baseline),
    (2, "lean dedupe rows (dedupe_scopes, seen by 64-bit ident, bodies in seen_items); shared_reads.leader",
     _v2_lean_rows),
)
LATEST = STEPS[-1][0]

# The whole schema of version LATEST, for a new file (and to restore objects dropped by hand).
CURRENT_SCHEMA = LEAN_DEDUPE + ";" + """
""" + WATCH_AND_HOOK_TABLES + """CREATE TABLE IF NOT EXISTS rate_slots (budget TEXT NOT NULL, taken REAL NOT NULL);
CREATE INDEX IF NOT EXISTS rate_slots_by_budget ON rate_slots (budget, taken);
""" + V2_SHARED_READS + ";" + HEALTH_PROBE


def _object_names(script):
    names = set()
    for statement in _statements(script):
        words = statement.replace("(", " ").split()
        if words[0].upper() == "CREATE" and words[1].upper() in ("TABLE", "INDEX"):
            names.add(words[5] if words[2:5] == ["IF", "NOT", "EXISTS"] else words[2])
    return frozenset(name.strip('"') for name in names)


CURRENT_OBJECTS = _object_names(CURRENT_SCHEMA)
# Tables some release of the service made: a version-0 file holding any of them is not new.
SERVICE_TABLES = frozenset({"seen", "scopes", "watch_scopes", "watched", "hook_subscriptions",
                            "hook_owner_turns", "rate_slots", "shared_reads"})


@dataclass
class _Context:
    now: float
    keep_bodies_from: float
    vacuum: bool = False


@dataclass(frozen=True)
class SchemaSetup:
    """``ensure_schema``'s work as a ``SqliteConnections.prepare`` setup (equal setups are deferred once)."""

    keep_bodies_seconds: float = DAY_SECONDS

    def __call__(self, conn):
        migrate(conn, keep_bodies_seconds=self.keep_bodies_seconds)


def ensure_schema(connections, keep_bodies_seconds=None):
    """Bring ``connections``' file to the latest version (``storage.sqlite.SqliteConnections``);
    deferred to the next connection opened when a storage fault stops it. ``keep_bodies_seconds``:
    the redelivery window, so that an upgrade keeps the bodies that can still be answered (at
    least a day's are kept in any case)."""
    keep = DAY_SECONDS if keep_bodies_seconds is None else max(DAY_SECONDS, keep_bodies_seconds)
    connections.prepare(SchemaSetup(keep))


def read_state(conn):
    """(user_version, names of the file's tables and indexes)."""
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'index')")}
    return version, names


def _refuse_newer(version, conn):
    if version > LATEST:
        path = conn.execute("PRAGMA database_list").fetchone()[2]
        raise SchemaTooNew(
            f"the database {path} has schema version {version}, newer than this code knows ({LATEST}):"
            " it was written by a newer release; run that release, or restore the backup taken before it")


def _needs_work(version, names):
    return version != LATEST or not CURRENT_OBJECTS <= names


def migrate(conn, keep_bodies_seconds=DAY_SECONDS, now=None):
    """Apply what the file at ``conn`` (an autocommit connection) lacks; returns the steps
    applied to an existing file ([] when it was current, or new: it is made current at once)."""
    version, names = read_state(conn)
    _refuse_newer(version, conn)
    if not _needs_work(version, names):
        return []
    now = time.time() if now is None else now
    context = _Context(now=now, keep_bodies_from=now - max(DAY_SECONDS, keep_bodies_seconds))
    applied = []
    started = time.monotonic()
    with _migration_lock(conn):
        version, names = read_state(conn)  # another process may have done it meanwhile
        _refuse_newer(version, conn)
        if version == LATEST:
            if not CURRENT_OBJECTS <= names:
                log.warning("database schema: restoring %s", ", ".join(sorted(CURRENT_OBJECTS - names)))
                _run(conn, CURRENT_SCHEMA)
        elif version == 0 and not names & SERVICE_TABLES:
            _run(conn, CURRENT_SCHEMA)  # a new file
            # Made by another client (the health probe's plain connection, a tool) before it
            # was ours: not yet auto_vacuum = INCREMENTAL, which only VACUUM can change (quick: small).
            context.vacuum = conn.execute("PRAGMA auto_vacuum").fetchone()[0] != AUTO_VACUUM_INCREMENTAL
        else:
            for step, description, apply in STEPS:
                if step > version:
                    log.warning("database schema: applying step %d (%s)", step, description)
                    apply(conn, context)
                    applied.append(step)
        conn.execute(f"PRAGMA user_version = {LATEST}")
    if applied:
        log.warning("database schema: version %d reached in %.1f s", LATEST, time.monotonic() - started)
    if context.vacuum:
        _vacuum(conn)
    return applied


def _run(conn, script):
    for statement in _statements(script):
        conn.execute(statement)


class _migration_lock:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``, waiting up to ``LOCK_WAIT_SECONDS`` for the write lock
    (another process's migration may hold it longer than the busy timeout)."""

    def __init__(self, conn, wait_seconds=None):
        self.transaction = sqlite_storage.ImmediateTransaction(conn)
        self.wait_seconds = LOCK_WAIT_SECONDS if wait_seconds is None else wait_seconds

    def __enter__(self):
        deadline = time.monotonic() + self.wait_seconds
        while True:
            try:
                return self.transaction.__enter__()
            except sqlite3.OperationalError as error:
                if not sqlite_storage.is_busy(error) or time.monotonic() > deadline:
                    raise
                log.warning("database schema: waiting for another process's migration")

    def __exit__(self, *exc_info):
        return self.transaction.__exit__(*exc_info)


def _vacuum(conn):
    """Give the space of the dropped table back to the file system (see the module docstring)."""
    started = time.monotonic()
    try:
        conn.execute("PRAGMA auto_vacuum = INCREMENTAL")  # VACUUM makes it the file's
        conn.execute("VACUUM")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    except sqlite3.Error as error:
        log.warning("database schema: VACUUM after the upgrade failed (%s); the file keeps its free pages",
                    getattr(error, "sqlite_errorname", type(error).__name__))
        if sqlite_storage.is_storage_fault(error):
            raise
        return
    log.warning("database schema: VACUUM took %.1f s", time.monotonic() - started)


def main(argv=None):
    """``python -m storage.sqlite_migrations PATH``: upgrade a file before starting the service."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("path")
    parser.add_argument("--redelivery-minutes", type=int, default=60,
                        help="REDELIVERY_MINUTES of the service (bodies answered within it are kept)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    connections = sqlite_storage.SqliteConnections(args.path)
    conn = connections.get()
    before = read_state(conn)[0]
    started = time.monotonic()
    applied = migrate(conn, keep_bodies_seconds=args.redelivery_minutes * 60)
    print(f"{args.path}: version {before} -> {read_state(conn)[0]} (steps {applied or 'none'})"
          f" in {time.monotonic() - started:.1f} s")
    connections.close()


if __name__ == "__main__":
    main()
