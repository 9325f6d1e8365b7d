"""SQLite connections as every part of the service uses them: one per OS thread, WAL mode.

The dedupe store, hook subscriptions, the rate budget and shared reads all live in the one
file at ``DATABASE_PATH``, written by several gunicorn workers and the hook worker at once.
WAL lets readers run beside a writer; ``BEGIN IMMEDIATE`` takes the write lock up front, so
concurrent writers queue on the busy timeout instead of failing half-way with "database is
locked".

Storage faults heal. A connection that hits a read-only, I/O, "unable to open" or similar
error is marked broken and reopened on its next use: SQLite opens a file it cannot write
read-only and never upgrades that connection, so a cached one would fail long after the fault
cleared. A newly opened connection must also be able to write, or it is closed and the error
raised: one opened during a fault is never kept.

gevent: under ``gevent.monkey.patch_all()`` ``threading.local`` is greenlet-local, and a map
kept in it would open a connection for every request greenlet. The map is kept in the
original, OS-thread ``local`` instead, so all greenlets of a thread share its connection. That
is safe because greenlets switch only where gevent can yield (socket I/O, sleeps, waits on
locks and events), and SQLite calls never yield: a statement runs to completion without a
switch. It stays safe as long as no code yields inside a ``transaction()`` block or between
``execute`` and fetching its rows: no GHL or hook request, no sleep, no waiting on a lock
there (today every transaction is pure database work and callers fetch at once). The price
is that SQLite's busy wait blocks the whole thread, every greenlet of it, until the lock frees.
"""

import logging
import os
import sqlite3
import sys
import threading
import time

log = logging.getLogger(__name__)

BUSY_TIMEOUT_SECONDS = 30
# Primary result codes of a fault in the file or its medium rather than in a statement.
STORAGE_FAULT_CODES = frozenset({
    sqlite3.SQLITE_PERM, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CORRUPT,
    sqlite3.SQLITE_FULL, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PROTOCOL, sqlite3.SQLITE_NOTADB,
})
BUSY_CODES = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})
PROBE_BUSY_TIMEOUT_SECONDS = 2.0


def _primary_code(error):
    code = getattr(error, "sqlite_errorcode", None)
    return None if code is None else code & 0xFF


def is_storage_fault(error):
    """True for errors a fresh connection may not repeat: read-only, I/O, cannot open, full, corrupt."""
    return _primary_code(error) in STORAGE_FAULT_CODES


def is_busy(error):
    return _primary_code(error) in BUSY_CODES


class HealingConnection(sqlite3.Connection):
    """A connection that marks itself ``broken`` when a statement hits a storage fault."""

    broken = False

    def execute(self, *args):
        return self._noting_faults(super().execute, args)

    def executemany(self, *args):
        return self._noting_faults(super().executemany, args)

    def executescript(self, *args):
        return self._noting_faults(super().executescript, args)

    def _noting_faults(self, statement, args):
        try:
            return statement(*args)
        except sqlite3.Error as error:
            if is_storage_fault(error):
                self.broken = True
            raise


class ImmediateTransaction:
    def __init__(self, conn):
        self.conn = conn

    def __enter__(self):
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type, exc, traceback):
        if exc_type is not None:
            self._rollback()
            return False
        try:
            self.conn.execute("COMMIT")
        except sqlite3.Error:
            # A failed COMMIT (busy, I/O) can leave the transaction open; the next BEGIN would fail.
            self._rollback()
            raise
        return False

    def _rollback(self):
        # SQLite may already have rolled back (after I/O errors or a full disk). A failing
        # ROLLBACK must not hide the error that caused it; the connection is reopened instead.
        if not self.conn.in_transaction:
            return
        try:
            self.conn.execute("ROLLBACK")
        except sqlite3.Error:
            self.conn.broken = True


def _os_thread_local():
    """A ``threading.local`` whose slots are per OS thread, even when gevent patched threading."""
    monkey = sys.modules.get("gevent.monkey")  # gevent cannot have patched anything unless imported
    if monkey is not None and monkey.is_module_patched("threading"):
        return monkey.get_original("threading", "local")()
    return threading.local()


# Schema setups a storage fault kept ``migrate``/``prepare`` from applying, per (file, row
# factory); the next connection opened for that key applies them first.
_DEFERRED_MIGRATIONS = {}

# Per thread, one connection per (file, row factory), whichever store asks: the dedupe store,
# the rate budget and shared reads of one thread use the same connection, so a worker holds
# one page cache per thread instead of one per store and thread.
_THREAD_CONNECTIONS = _os_thread_local()


class SqliteConnections:
    """Per-OS-thread autocommit connections to ``path`` (its folder is created 0700 if missing)."""

    def __init__(self, path, row_factory=None):
        self.path = path
        self.row_factory = row_factory
        os.makedirs(os.path.dirname(os.path.abspath(path)), mode=0o700, exist_ok=True)
        self._key = (os.path.abspath(path), row_factory)

    @staticmethod
    def _thread_connections():
        if not hasattr(_THREAD_CONNECTIONS, "by_key"):
            _THREAD_CONNECTIONS.by_key = {}
        return _THREAD_CONNECTIONS.by_key

    def get(self):
        opened = self._thread_connections()
        conn = opened.get(self._key)
        if conn is None or conn.broken:
            if conn is not None:
                del opened[self._key]
                _close_quietly(conn)
            conn = self._open()
            opened[self._key] = conn
        return conn

    def _open(self):
        create_private_file(self.path)
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None,
                               check_same_thread=False, factory=HealingConnection)
        try:
            if self.row_factory is not None:
                conn.row_factory = self.row_factory
            # Only a new (empty) file takes it, and only before WAL writes its header: a file
            # whose pruned pages go back to the file system (``incremental_vacuum``).
            conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
            _switch_to_wal(conn)
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_SECONDS * 1000}")
            _refuse_read_only(conn)
            self._run_deferred_migrations(conn)
        except BaseException:
            _close_quietly(conn)
            raise
        return conn

    def _run_deferred_migrations(self, conn):
        pending = _DEFERRED_MIGRATIONS.pop(self._key, None)
        if not pending:
            return
        try:
            for setup in pending:
                setup(conn)
        except BaseException:
            _defer(self._key, pending)
            raise

    def transaction(self):
        return ImmediateTransaction(self.get())

    def migrate(self, schema):
        """Create tables and indexes if missing, under ``BEGIN IMMEDIATE``.

        ``schema`` is SQL (statements separated by ``;``) or a callable given the connection.
        Several processes start on a new file at once (gunicorn workers, the hook worker): a bare
        ``CREATE`` reads the schema first and can then lose WAL's snapshot race, which SQLite
        reports as "database is locked" without waiting. Taking the write lock first makes them
        queue on the busy timeout instead.

        The service's own tables are versioned: ``storage.sqlite_migrations.ensure_schema``
        (through ``prepare``). This is for a schema of one's own (tests).
        """
        self.prepare(_SchemaScript(schema))

    def prepare(self, setup):
        """Run ``setup(connection)`` now, which brings the file's schema up to date itself
        (``storage.sqlite_migrations``: it takes the write lock only when there is work).

        When a storage fault stops it (a process started while the file is unwritable), the
        setup waits for the next connection that opens, so the process still comes up, answers
        503 meanwhile, and heals with the storage. Any other error is raised.
        """
        try:
            setup(self.get())
        except sqlite3.Error as error:
            if not is_storage_fault(error):
                raise
            log.warning("database schema deferred until storage recovers (%s)", error.sqlite_errorname)
            _defer(self._key, [setup])

    def close(self):
        """Close this thread's connection (any store of the same file opens a new one when asked)."""
        conn = self._thread_connections().pop(self._key, None)
        if conn is not None:
            conn.close()


def _refuse_read_only(conn):
    """Raise SQLITE_READONLY when SQLite opened the file read-only (it does when it cannot open
    it for writing), so such a connection is never kept. ``BEGIN IMMEDIATE`` alone does not
    tell: on a read-only connection it quietly takes a read transaction. Rewriting the header's
    user_version, rolled back at once, needs a real write transaction."""
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(f"PRAGMA user_version = {version}")
    finally:
        conn.execute("ROLLBACK")


def _defer(key, setups):
    pending = _DEFERRED_MIGRATIONS.setdefault(key, [])
    pending.extend(setup for setup in setups if setup not in pending)


class _SchemaScript:
    """``migrate``'s schema as a setup: applied in one ``BEGIN IMMEDIATE`` transaction."""

    def __init__(self, schema):
        self.schema = schema

    def __eq__(self, other):
        return isinstance(other, _SchemaScript) and other.schema == self.schema

    __hash__ = None

    def __call__(self, conn):
        _apply_schema(conn, schema=self.schema)


def _apply_schema(conn, schema):
    with ImmediateTransaction(conn):
        if callable(schema):
            schema(conn)
        else:
            for statement in filter(None, (part.strip() for part in schema.split(";"))):
                conn.execute(statement)


def create_private_file(path):
    """Create ``path`` empty with mode 0600 unless it exists (an existing file keeps its mode).

    SQLite gives the -wal and -shm files the database file's mode, so they are 0600 too.
    """
    if os.path.exists(path):
        return
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass


def probe_writable(path, now=None):
    """Write one row through a newly opened connection to ``path``, as a new thread's would be.

    Raises the SQLite error when the file cannot be written. A fresh connection is the faithful
    test: connections opened before a fault may still write through their open files.
    """
    create_private_file(path)
    conn = sqlite3.connect(path, timeout=PROBE_BUSY_TIMEOUT_SECONDS, isolation_level=None)
    try:  # closing a connection rolls back what it left open
        conn.execute("PRAGMA auto_vacuum = INCREMENTAL")  # as SqliteConnections makes a new file
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("CREATE TABLE IF NOT EXISTS health_probe"
                     " (id INTEGER PRIMARY KEY CHECK (id = 1), probed_at REAL NOT NULL)")
        conn.execute("INSERT INTO health_probe (id, probed_at) VALUES (1, ?)"
                     " ON CONFLICT(id) DO UPDATE SET probed_at = excluded.probed_at",
                     (time.time() if now is None else now,))
        conn.execute("COMMIT")
    finally:
        conn.close()


def _close_quietly(conn):
    try:
        conn.close()
    except sqlite3.Error:
        pass


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
