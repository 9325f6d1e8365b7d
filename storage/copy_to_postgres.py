"""Move an agency's state from its SQLite file into an empty PostgreSQL database.

``.venv/bin/python -m storage.copy_to_postgres SQLITE_PATH`` with the target in ``DATABASE_URL``
(read from the environment, never printed). Stop the service first, or at least every process
that writes the SQLite file (gunicorn and the hook worker): what they write during the copy
would not be in PostgreSQL. The file is read in one read transaction (a consistent snapshot).

1. The SQLite file is upgraded to the current schema (``storage.sqlite_migrations``).
2. The PostgreSQL schema is opened and migrated (``storage.postgres.PostgresBackend``).
3. In one PostgreSQL transaction, with the copied tables locked against other writers: a target
   holding any dedupe scope, change-trigger scope, hook subscription or owner's turn is refused
   (exit code 2, nothing written); otherwise everything is copied and committed at once, or
   nothing is (a failure rolls it all back):

   - ``dedupe_scopes`` and ``watch_scopes`` keep their ids (the target is empty), and their
     identity sequences are advanced past the highest id SQLite ever gave (``sqlite_sequence``:
     AUTOINCREMENT never reuses an id, nor does PostgreSQL after the copy);
   - ``seen`` (identities: the same 64-bit idents, ``storage.idents``), ``seen_items`` (bodies
     of the backlog and the redelivery window) and ``watched`` (baselines; ``mark`` split into
     ``mark_ms``/``mark_text`` as ``storage.postgres.dedupe`` stores it) by ``COPY``;
   - ``hook_subscriptions`` as they are (tokens stay encrypted: the same ``SECRET_KEY`` must
     serve both sides), ``hook_owner_turns`` (an owner without one gets turn 0), and the
     ``hook_owner_turn`` sequence advanced past the highest turn.

   Not copied: rate slots and shared reads, which live for seconds.

Prints the rows copied per table. Exit codes: 0 copied, 2 refused (no such file, no or invalid
``DATABASE_URL``, a non-empty target), 1 a database error (named by class and SQLSTATE only).
"""

import argparse
import os
import sqlite3
import sys
import time

from storage import sqlite as sqlite_storage
from storage import sqlite_migrations

REFUSED = 2
FAILED = 1

# Tables whose rows make a target non-empty (also locked for the copy's transaction).
TARGET_TABLES = ("dedupe_scopes", "seen", "seen_items", "watch_scopes", "watched",
                 "hook_subscriptions", "hook_owner_turns")

HOOK_COLUMNS = ("id", "trigger", "inputs", "token_ciphertext", "owner", "target_url", "interval_seconds",
                "created_at", "next_poll_at", "last_poll_at", "last_delivery_at", "last_error", "last_error_at",
                "delivery_failures", "next_delivery_at", "lease_owner", "lease_until")


class Refused(Exception):
    """The copy cannot start (exit code 2); the message names no secret."""


def upgrade_sqlite(path, keep_bodies_seconds):
    """Bring the SQLite file to the current schema version (as the service would on start)."""
    connections = sqlite_storage.SqliteConnections(path)
    try:
        sqlite_migrations.migrate(connections.get(), keep_bodies_seconds=keep_bodies_seconds)
    finally:
        connections.close()


def _highest_ids(source):
    """{table: the highest id AUTOINCREMENT ever gave} of the two scope tables."""
    highest = {table: 0 for table in ("dedupe_scopes", "watch_scopes")}
    for name, seq in source.execute("SELECT name, seq FROM sqlite_sequence"
                                    " WHERE name IN ('dedupe_scopes', 'watch_scopes')"):
        highest[name] = max(highest[name], int(seq or 0))
    for table in highest:
        row = source.execute(f"SELECT MAX(id) FROM {table}").fetchone()
        highest[table] = max(highest[table], int(row[0] or 0))
    return highest


def _copy(cur, sql, rows, convert=None):
    """COPY ``rows`` (an iterable of tuples) into PostgreSQL; returns how many."""
    count = 0
    with cur.copy(sql) as copy:
        for row in rows:
            copy.write_row(convert(row) if convert else row)
            count += 1
    return count


def _watched_row(row):
    from storage.postgres.dedupe import _mark_columns
    scope_id, ghl_id, vals, mark, changes, last_seen = row
    mark_ms, mark_text = _mark_columns(mark)
    return scope_id, ghl_id, vals, mark_ms, mark_text, changes, int(last_seen)


def _refuse_non_empty(conn):
    found = [table for table in TARGET_TABLES
             if conn.execute(f"SELECT EXISTS (SELECT 1 FROM {table})").fetchone()[0]]
    if found:
        raise Refused("the target database is not empty (rows in " + ", ".join(found) + "): nothing was copied."
                      " Copy into a new, empty database")


def copy_state(source, conn):
    """Copy everything from ``source`` (a sqlite3 connection) into ``conn`` (an autocommit psycopg
    connection) in one transaction; returns {table: rows copied}. Raises Refused on a non-empty target."""
    counts = {}
    with conn.transaction():
        conn.execute("SET LOCAL idle_in_transaction_session_timeout = 0")
        # Other writers (a service started too early, a second copy) wait until the commit.
        conn.execute(f"LOCK TABLE {', '.join(TARGET_TABLES)} IN EXCLUSIVE MODE")
        _refuse_non_empty(conn)
        cur = conn.cursor()
        source.execute("BEGIN")  # one snapshot of the file for every table
        try:
            highest = _highest_ids(source)
            counts["dedupe_scopes"] = _copy(
                cur, "COPY dedupe_scopes (id, scope, first_poll, last_poll, next_seq) FROM STDIN",
                source.execute("SELECT id, scope, first_poll, last_poll, next_seq FROM dedupe_scopes ORDER BY id"))
            counts["seen"] = _copy(
                cur, "COPY seen (scope_id, last_day, ident) FROM STDIN",
                source.execute("SELECT scope_id, last_day, ident FROM seen"))
            counts["seen_items"] = _copy(
                cur, "COPY seen_items (scope_id, ident, seq, order_ts, first_answered, item) FROM STDIN",
                source.execute("SELECT scope_id, ident, seq, order_ts, first_answered, item FROM seen_items"))
            counts["watch_scopes"] = _copy(
                cur, "COPY watch_scopes (id, scope, first_poll, last_poll, scan_from, changes) FROM STDIN",
                source.execute("SELECT id, scope, first_poll, last_poll, scan_from, changes FROM watch_scopes"
                               " ORDER BY id"))
            counts["watched"] = _copy(
                cur, "COPY watched (scope_id, ghl_id, vals, mark_ms, mark_text, changes, last_seen) FROM STDIN",
                source.execute("SELECT scope_id, ghl_id, vals, mark, changes, last_seen FROM watched"),
                _watched_row)
            columns = ", ".join(HOOK_COLUMNS)
            counts["hook_subscriptions"] = _copy(
                cur, f"COPY hook_subscriptions ({columns}) FROM STDIN",
                source.execute(f"SELECT {columns} FROM hook_subscriptions"))
            counts["hook_owner_turns"] = _copy(
                cur, "COPY hook_owner_turns (owner, turn) FROM STDIN",
                source.execute("SELECT owner, turn FROM hook_owner_turns"))
        finally:
            source.execute("COMMIT")
        # Owners without a turn row (the SQLite store gives them turn 0 on open; so does this).
        counts["hook_owner_turns"] += conn.execute(
            "INSERT INTO hook_owner_turns (owner, turn) SELECT DISTINCT owner, 0 FROM hook_subscriptions"
            " ON CONFLICT (owner) DO NOTHING").rowcount
        # COPY wrote the ids as they were: the next id PostgreSQL gives must be past every id SQLite gave.
        for table, top in highest.items():
            if top > 0:
                conn.execute("SELECT setval(pg_get_serial_sequence(%s, 'id'), %s)", (table, top))
        top_turn = conn.execute("SELECT COALESCE(MAX(turn), 0) FROM hook_owner_turns").fetchone()[0]
        if top_turn > 0:
            conn.execute("SELECT setval('hook_owner_turn', %s)", (top_turn,))
    return counts


def run(sqlite_path, database_url, redelivery_minutes=60, out=sys.stdout):
    """The command's work; returns {table: rows copied}. Raises Refused, or a database error."""
    from storage.postgres import InvalidDatabaseUrl, PostgresBackend
    from storage.postgres.pool import connect

    if not database_url:
        raise Refused("DATABASE_URL is not set: set it to the target PostgreSQL database")
    if not os.path.isfile(sqlite_path):
        raise Refused(f"no SQLite file at {sqlite_path}")
    started = time.monotonic()
    upgrade_sqlite(sqlite_path, keep_bodies_seconds=redelivery_minutes * 60)
    try:
        backend = PostgresBackend(database_url, pool_size=1)
    except InvalidDatabaseUrl as error:
        raise Refused(str(error)) from None
    backend.close()
    source = sqlite3.connect(sqlite_path, isolation_level=None)
    try:
        source.execute(f"PRAGMA busy_timeout = {sqlite_storage.BUSY_TIMEOUT_SECONDS * 1000}")
        with connect(database_url, statement_timeout_ms=None, lock_timeout_ms=10_000) as conn:
            counts = copy_state(source, conn)
    finally:
        source.close()
    for table, count in counts.items():
        print(f"{table}: {count}", file=out)
    print(f"copied {sum(counts.values())} rows from {sqlite_path} to PostgreSQL"
          f" in {time.monotonic() - started:.1f} s", file=out)
    return counts


def main(argv=None):
    """``python -m storage.copy_to_postgres SQLITE_PATH``: copy the service's state into the empty
    PostgreSQL database of DATABASE_URL (stop the service first)."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("sqlite_path", help="the service's DATABASE_PATH")
    parser.add_argument("--redelivery-minutes", type=int,
                        default=int(os.environ.get("REDELIVERY_MINUTES", "60") or 60),
                        help="REDELIVERY_MINUTES of the service (for the SQLite upgrade; default 60)")
    args = parser.parse_args(argv)
    import psycopg
    try:
        run(args.sqlite_path, os.environ.get("DATABASE_URL", "").strip(), args.redelivery_minutes)
    except Refused as error:
        print(f"refused: {error}", file=sys.stderr)
        return REFUSED
    except psycopg.Error as error:
        state = getattr(error, "sqlstate", None)  # the class and SQLSTATE: never the text, which may quote the URL
        print(f"failed: PostgreSQL error {type(error).__name__}{f' ({state})' if state else ''};"
              " nothing was copied", file=sys.stderr)
        return FAILED
    except sqlite_migrations.SchemaTooNew as error:
        print(f"refused: {error}", file=sys.stderr)
        return REFUSED
    except sqlite3.Error as error:
        name = getattr(error, "sqlite_errorname", None) or type(error).__name__
        print(f"failed: SQLite error {name} reading {args.sqlite_path}; nothing was copied", file=sys.stderr)
        return FAILED
    return 0


if __name__ == "__main__":
    sys.exit(main())
