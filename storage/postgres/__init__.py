"""PostgreSQL as the shared store of several hosts (``DATABASE_URL``): ``PostgresBackend``.

Imported only by ``storage.backend.open_backend`` when ``DATABASE_URL`` is set, inside the
process that uses it (after gunicorn forked and gevent patched: psycopg chooses how it waits
for sockets when first imported). Driver: psycopg 3 with psycopg_pool (pinned in
requirements.txt).

Modules: ``pool`` (the process's connection pool), ``migrations`` (the versioned schema),
``dedupe`` (the dedupe store and change baselines), ``hooks`` (REST hook subscriptions, leases,
fairness), ``shared`` (the rate budget's slots, shared reads).

Cost of a steady-state poll (every item known, nothing pending): ``answer`` is one read-only
statement (two for a change trigger), a rate slot one statement, each shared-read step one.
"""

import logging
import threading
import time

import psycopg
from psycopg import errors as pg_errors
from psycopg_pool import PoolTimeout

from storage.contract import Backend
from storage.postgres import migrations
from storage.postgres.dedupe import PostgresDedupeStore
from storage.postgres.hooks import PostgresHookStore
from storage.postgres.pool import BORROW_TIMEOUT_SECONDS, Connections, InvalidDatabaseUrl, connect
from storage.postgres.shared import PostgresRateSlots, PostgresSharedReadTable

log = logging.getLogger(__name__)

PROBE_TIMEOUT_SECONDS = 2.0
# SQLSTATE classes of a server that is down, full, read-only or contended rather than of a
# wrong statement: connection exception, insufficient resources, program limit exceeded (disk),
# operator intervention (shutdown, cancel), system error, transaction rollback (serialization,
# deadlock), lock not available (lock_timeout).
UNAVAILABLE_CLASSES = ("08", "53", "57", "58", "40")
UNAVAILABLE_STATES = frozenset({"55P03", "25006"})
# Errors of one statement that psycopg still raises as OperationalError: program limit exceeded
# (a value too large for an index) is the statement's fault, not the server's.
STATEMENT_STATES = frozenset({"54000", "54001", "54011", "54023"})

__all__ = ["PostgresBackend", "InvalidDatabaseUrl"]


class PostgresBackend(Backend):
    """Every shared table in the PostgreSQL database at ``url``; the schema is migrated on open
    (or, when the server cannot be reached then, before the first statement that reaches it)."""

    name = "postgres"

    def __init__(self, url, keep_bodies_seconds=3600, pool_size=8, pool_timeout=BORROW_TIMEOUT_SECONDS):
        self._url = url
        self._migrated = False
        self._migrate_lock = threading.Lock()
        self._connections = Connections(url, size=pool_size, timeout=pool_timeout, on_open=self._migrate_with)
        self._dedupe = PostgresDedupeStore(self._connections, keep_bodies_seconds=keep_bodies_seconds)
        self._rate_slots = PostgresRateSlots(self._connections)
        self._shared_reads = PostgresSharedReadTable(self._connections)
        self.migrate()

    def __repr__(self):
        return "<PostgresBackend>"  # never the URL: it holds a password

    # -- schema -----------------------------------------------------------------------------

    def migrate(self):
        """Bring the schema up to date through a connection of its own (no statement timeout:
        a migration may wait for another process's). A server that cannot be reached defers it:
        the process starts, answers 503, and migrates once the server answers."""
        try:
            with connect(self._url, statement_timeout_ms=None, lock_timeout_ms=None) as conn:
                self._migrate_with(conn)
        except psycopg.Error as error:
            if not self.is_unavailable(error):
                raise
            log.warning("database schema deferred until PostgreSQL can be reached (%s)", self.describe(error))

    def _migrate_with(self, conn):
        if self._migrated:
            return
        with self._migrate_lock:
            if not self._migrated:
                migrations.migrate(conn)
                self._migrated = True

    # -- stores -----------------------------------------------------------------------------

    def dedupe_store(self):
        return self._dedupe

    def hook_store(self, cipher):
        return PostgresHookStore(self._connections, cipher)

    def rate_slots(self):
        return self._rate_slots

    def shared_read_table(self):
        return self._shared_reads

    # -- errors and health --------------------------------------------------------------------

    @property
    def errors(self):
        return (psycopg.Error,)

    def is_unavailable(self, error):
        if getattr(error, "sqlstate", None) in STATEMENT_STATES:
            return False
        if isinstance(error, (PoolTimeout, psycopg.OperationalError)):
            return True  # includes connection failures, pool timeouts, cancels, deadlocks
        state = getattr(error, "sqlstate", None) or ""
        return state[:2] in UNAVAILABLE_CLASSES or state in UNAVAILABLE_STATES or isinstance(
            error, (pg_errors.DiskFull, pg_errors.ReadOnlySqlTransaction))

    def describe(self, error):
        state = getattr(error, "sqlstate", None)
        return f"{type(error).__name__} ({state})" if state else type(error).__name__

    def writable(self):
        """Write the probe row through the pool, within PROBE_TIMEOUT_SECONDS; never raises."""
        deadline = time.monotonic() + PROBE_TIMEOUT_SECONDS
        try:
            with self._connections.connection(timeout=PROBE_TIMEOUT_SECONDS) as conn:
                with conn.transaction():
                    remaining_ms = max(1, int((deadline - time.monotonic()) * 1000))
                    conn.execute(f"SET LOCAL statement_timeout = {remaining_ms}")
                    conn.execute("INSERT INTO health_probe (id, probed_at) VALUES (1, %s)"
                                 " ON CONFLICT (id) DO UPDATE SET probed_at = EXCLUDED.probed_at", (time.time(),))
        except Exception as error:  # noqa: BLE001 - the probe answers False, whatever went wrong
            log.warning("database write probe failed (%s)", self.describe(error))
            return False
        return True

    def close(self):
        self._connections.close()
