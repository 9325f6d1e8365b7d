"""SQLite connections as every part of the service uses them: one per thread, WAL mode.

The dedupe store, hook subscriptions, the rate budget and shared reads all live in the one
file at ``DATABASE_PATH``, written by several gunicorn workers and the hook worker at once.
WAL lets readers run beside a writer; ``BEGIN IMMEDIATE`` takes the write lock up front, so
concurrent writers queue on the busy timeout instead of failing half-way with "database is
locked".
"""

import os
import sqlite3
import threading
import time

BUSY_TIMEOUT_SECONDS = 30


class ImmediateTransaction:
    def __init__(self, conn):
        self.conn = conn

    def __enter__(self):
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type, exc, traceback):
        self.conn.execute("ROLLBACK" if exc_type else "COMMIT")
        return False


class SqliteConnections:
    """Thread-local autocommit connections to ``path`` (its folder is created if missing)."""

    def __init__(self, path, row_factory=None):
        self.path = path
        self.row_factory = row_factory
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self._local = threading.local()

    def get(self):
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None,
                                   check_same_thread=False)
            if self.row_factory is not None:
                conn.row_factory = self.row_factory
            _switch_to_wal(conn)
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_SECONDS * 1000}")
            self._local.conn = conn
        return conn

    def transaction(self):
        return ImmediateTransaction(self.get())

    def migrate(self, schema):
        """Create tables and indexes if missing, under ``BEGIN IMMEDIATE``.

        ``schema`` is SQL (statements separated by ``;``) or a callable given the connection.
        Several processes start on a new file at once (gunicorn workers, the hook worker): a bare
        ``CREATE`` reads the schema first and can then lose WAL's snapshot race, which SQLite
        reports as "database is locked" without waiting. Taking the write lock first makes them
        queue on the busy timeout instead.
        """
        with self.transaction() as conn:
            if callable(schema):
                schema(conn)
            else:
                for statement in filter(None, (part.strip() for part in schema.split(";"))):
                    conn.execute(statement)

    def close(self):
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


def _switch_to_wal(conn, timeout=BUSY_TIMEOUT_SECONDS):
    # Changing the journal mode needs the file to itself for a moment, and SQLite may answer
    # "locked" at once rather than wait while another process opens it: retry until the timeout.
    deadline = time.monotonic() + timeout
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)
