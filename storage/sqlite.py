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


# Per thread, one connection per (file, row factory), whichever store asks: the dedupe store,
# the rate budget and shared reads of one thread use the same connection, so a worker holds
# one page cache per thread instead of one per store and thread.
_THREAD_CONNECTIONS = threading.local()


class SqliteConnections:
    """Thread-local autocommit connections to ``path`` (its folder is created if missing)."""

    def __init__(self, path, row_factory=None):
        self.path = path
        self.row_factory = row_factory
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self._key = (os.path.abspath(path), row_factory)

    @staticmethod
    def _thread_connections():
        if not hasattr(_THREAD_CONNECTIONS, "by_key"):
            _THREAD_CONNECTIONS.by_key = {}
        return _THREAD_CONNECTIONS.by_key

    def get(self):
        opened = self._thread_connections()
        conn = opened.get(self._key)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None,
                                   check_same_thread=False)
            if self.row_factory is not None:
                conn.row_factory = self.row_factory
            _switch_to_wal(conn)
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_SECONDS * 1000}")
            opened[self._key] = conn
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
        """Close this thread's connection (any store of the same file opens a new one when asked)."""
        conn = self._thread_connections().pop(self._key, None)
        if conn is not None:
            conn.close()


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
