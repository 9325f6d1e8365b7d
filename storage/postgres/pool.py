"""Connections to PostgreSQL: one pool per process, opened on first use, never held across I/O.

A gunicorn gevent worker serves a thousand requests at once from one OS thread, so the SQLite
model (one connection per thread) would let greenlets interleave their transactions on one
connection. Here every unit of work borrows a connection from the process's pool
(``psycopg_pool.ConnectionPool``) and gives it back at once: ``connection()`` for one or more
autocommit statements, ``transaction()`` for a transaction. Nothing but SQL runs while a
connection is borrowed (no GHL or hook request, no sleep).

- Lazy: the pool opens on the first borrow in the process, i.e. after gunicorn forked its
  workers and gevent patched the standard library (psycopg must be imported after that).
  A process forked from one that had opened the pool (a test's ``multiprocessing`` child)
  opens its own and leaves the inherited one alone: closing it would end the parent's sessions.
- Bounded: at most ``size`` connections; a borrow waits at most ``timeout`` seconds and then
  raises ``psycopg_pool.PoolTimeout`` (an ``OperationalError``: a 503), so a starved pool or
  an unreachable server answers quickly instead of piling up requests.
- Statements run under ``statement_timeout``/``lock_timeout``, and a transaction left open by
  a bug ends after ``idle_in_transaction_session_timeout``.
- ``DATABASE_URL`` holds a password: it is never logged, put in an error or shown by ``repr``.
"""

import atexit
import contextlib
import logging
import os
import threading

import psycopg
from psycopg import conninfo as pg_conninfo
from psycopg_pool import ConnectionPool

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_SECONDS = 5
BORROW_TIMEOUT_SECONDS = 5.0
STATEMENT_TIMEOUT_MS = 30_000
LOCK_TIMEOUT_MS = 10_000
IDLE_IN_TRANSACTION_TIMEOUT_MS = 60_000
APPLICATION_NAME = "ghl-zapier"

# Pools a forked child inherited: kept referenced so that they are never closed (or garbage
# collected, which would close their sockets' sessions) from the child.
_INHERITED = []


class InvalidDatabaseUrl(ValueError):
    """DATABASE_URL cannot be parsed; the message never quotes it (it holds a password)."""


def connection_kwargs(url, statement_timeout_ms=STATEMENT_TIMEOUT_MS, lock_timeout_ms=LOCK_TIMEOUT_MS):
    """libpq parameters added to ``url``'s: server-side timeouts appended to its own ``options``
    (tests select a schema there), a connect timeout unless it sets one, the application name."""
    try:
        params = pg_conninfo.conninfo_to_dict(url)
    except psycopg.Error:
        raise InvalidDatabaseUrl("DATABASE_URL is not a valid PostgreSQL connection URL") from None
    userinfo, at, _ = url.partition("://")[2].partition("/")[0].rpartition("@")
    if at and "@" in userinfo:
        # libpq would read the rest of the password as the host name and log it with every
        # failed connection: refuse it (a password's "@" must be written %40).
        raise InvalidDatabaseUrl("DATABASE_URL has an unescaped '@' before the host: write it as %40")
    settings = []
    if statement_timeout_ms is not None:
        settings.append(f"-c statement_timeout={int(statement_timeout_ms)}")
    if lock_timeout_ms is not None:
        settings.append(f"-c lock_timeout={int(lock_timeout_ms)}")
    settings.append(f"-c idle_in_transaction_session_timeout={IDLE_IN_TRANSACTION_TIMEOUT_MS}")
    kwargs = {"options": " ".join(filter(None, [params.get("options", ""), *settings]))}
    # The server's timeouts cannot end a wait for a server that went silent (a network partition,
    # a frozen host during failover): TCP keepalives and a user timeout end it on this side.
    kwargs.update(keepalives=1, keepalives_idle=10, keepalives_interval=5, keepalives_count=3,
                  tcp_user_timeout=(statement_timeout_ms or STATEMENT_TIMEOUT_MS) + 5_000)
    if "connect_timeout" not in params:
        kwargs["connect_timeout"] = CONNECT_TIMEOUT_SECONDS
    if "application_name" not in params:
        kwargs["application_name"] = APPLICATION_NAME
    return kwargs


def connect(url, **overrides):
    """One connection outside the pool (migrations), autocommit, with the pool's parameters
    unless ``overrides`` says otherwise (``statement_timeout_ms=None`` to run without one)."""
    timeouts = {k: overrides.pop(k) for k in ("statement_timeout_ms", "lock_timeout_ms") if k in overrides}
    kwargs = {**connection_kwargs(url, **timeouts), **overrides}
    return psycopg.connect(url, autocommit=True, **kwargs)


class Connections:
    """The process's pool to ``url``: ``connection()`` and ``transaction()`` borrow from it."""

    def __init__(self, url, size=8, timeout=BORROW_TIMEOUT_SECONDS, on_open=None):
        self._url = url
        self._kwargs = connection_kwargs(url)  # validates the URL now, not on first use
        self.size = max(1, int(size))
        self.timeout = timeout
        self._on_open = on_open  # run with a connection before the first borrow (deferred migrations)
        self._pool = None
        self._pid = None
        self._lock = threading.Lock()

    def __repr__(self):
        return f"<Connections pool size={self.size}>"  # never the URL

    def _opened(self):
        pool = self._pool
        if pool is not None and self._pid == os.getpid():
            return pool
        with self._lock:
            if self._pool is not None and self._pid != os.getpid():
                _INHERITED.append(self._pool)  # the parent's: leave its connections alone
                self._pool = None
            if self._pool is None:
                pool = ConnectionPool(
                    self._url, kwargs={**self._kwargs, "autocommit": True}, min_size=1, max_size=self.size,
                    timeout=self.timeout, open=False, name="ghl-zapier", max_idle=300,
                    reconnect_timeout=60)
                pool.open(wait=False)
                self._pool, self._pid = pool, os.getpid()
                # Closed at exit while the interpreter (and gevent's hub) still runs: a pool
                # left to the garbage collector at shutdown fails noisily in gevent workers.
                atexit.register(self.close)
        return self._pool

    def _ready(self, conn):
        if self._on_open is not None:
            self._on_open(conn)

    @contextlib.contextmanager
    def connection(self, timeout=None):
        """A pooled autocommit connection for the block: each statement commits by itself.
        Waits at most ``timeout`` seconds (default: the pool's) for one to be free."""
        pool = self._opened()
        with pool.connection(timeout=timeout) as conn:
            try:
                self._ready(conn)
                yield conn
            except psycopg.OperationalError:
                if conn.broken:
                    # The server restarted or the network dropped: the pool's idle connections
                    # are probably broken too. Check them now rather than fail the next requests.
                    try:
                        pool.check()
                    except Exception:  # noqa: BLE001 - the original error is the one to report
                        log.debug("checking the pool's idle connections failed", exc_info=False)
                raise

    @contextlib.contextmanager
    def transaction(self):
        """A pooled connection inside one transaction (committed at the end of the block,
        rolled back if it raises)."""
        with self.connection() as conn:
            with conn.transaction():
                yield conn

    def close(self):
        """Close this process's pool (a later borrow opens a new one)."""
        with self._lock:
            pool, self._pool = self._pool, None
            if pool is not None and self._pid == os.getpid():
                pool.close(timeout=5)
            elif pool is not None:
                _INHERITED.append(pool)
