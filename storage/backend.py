"""Which store a process uses, chosen once from its settings: ``open_backend(settings)``.

``DATABASE_URL`` (a ``postgresql://`` URL) selects PostgreSQL, for several hosts sharing one
database; otherwise SQLite at ``DATABASE_PATH``, nothing to install. The PostgreSQL package is
imported only then, and only inside the process that opens it: a gunicorn gevent worker
patches the standard library before it loads the app, and psycopg picks its way of waiting
for sockets when it is first imported.
"""

import logging
import sqlite3

from storage import sqlite as sqlite_storage
from storage import sqlite_migrations
from storage.contract import Backend

log = logging.getLogger(__name__)


def open_backend(settings):
    """The backend ``settings`` configure, its schema migrated."""
    keep_bodies_seconds = settings.redelivery_minutes * 60
    if settings.database_url:
        from storage.postgres import PostgresBackend
        return PostgresBackend(settings.database_url, keep_bodies_seconds=keep_bodies_seconds,
                               pool_size=settings.database_pool_size)
    return SqliteBackend(settings.database_path, keep_bodies_seconds=keep_bodies_seconds)


class SqliteBackend(Backend):
    """Everything in one SQLite file (``storage.sqlite``): every process of one host shares it."""

    name = "sqlite"

    def __init__(self, path, keep_bodies_seconds=3600):
        from ghl.rate_budget import SqliteRateSlots
        from ghl.shared_reads import SqliteSharedReadTable
        from triggers.dedupe_store import SqliteDedupeStore
        self.path = str(path)
        # The schema first, knowing the redelivery window (an upgrade keeps the bodies still
        # answerable); each store then finds the file current (two reads).
        sqlite_migrations.ensure_schema(sqlite_storage.SqliteConnections(self.path), keep_bodies_seconds)
        self._dedupe = SqliteDedupeStore(self.path, keep_bodies_seconds=keep_bodies_seconds)
        self._rate_slots = SqliteRateSlots(self.path)
        self._shared_reads = SqliteSharedReadTable(self.path)

    def dedupe_store(self):
        return self._dedupe

    def hook_store(self, cipher):
        from triggers.hooks_store import SqliteHookStore
        return SqliteHookStore(self.path, cipher)

    def rate_slots(self):
        return self._rate_slots

    def shared_read_table(self):
        return self._shared_reads

    @property
    def errors(self):
        return (sqlite3.Error,)

    def is_unavailable(self, error):
        return sqlite_storage.is_storage_fault(error) or sqlite_storage.is_busy(error)

    def describe(self, error):
        return getattr(error, "sqlite_errorname", None) or type(error).__name__

    def writable(self):
        try:
            sqlite_storage.probe_writable(self.path)
        except sqlite3.Error as error:
            if sqlite_storage.is_busy(error):
                return True  # writable, only contended: a restart would not help
            log.warning("the database cannot be written (%s)", self.describe(error))
            return False
        except OSError as error:  # creating a missing file failed
            log.warning("the database cannot be written (%s)", type(error).__name__)
            return False
        return True

    def close(self):
        self._dedupe.close()  # one connection per thread and file: closes the others' too
