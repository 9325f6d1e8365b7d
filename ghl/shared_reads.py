"""Identical GHL reads in flight at once share one request, across every process.

Fifty Zaps polling the same list with the same token would otherwise spend fifty requests
of the location's rate budget on one answer. The first caller (the leader) takes a lease on
the read's key and fetches; callers that arrive meanwhile wait for the leader's answer. An
answer is also reused for ``ttl_seconds`` (0: only by callers that were already waiting).
A write by the same token drops its shared answers, so a create is visible to the next poll.
Only successful answers are shared; a failure is the leader's alone and followers fetch
for themselves.
"""

import hashlib
import json
import os
import time

from storage.sqlite import SqliteConnections

LEASE_SECONDS = 30.0  # a backstop: a leader whose process died is noticed at once (see _leader_gone)
WAIT_STEP_SECONDS = 0.02
# Answers are kept this long past their use (at least the TTL), then pruned at most this often.
KEEP_SECONDS = 60.0
PRUNE_EVERY_SECONDS = 60.0


def read_key(owner, method, path, query, body):
    canonical = json.dumps([owner, method, path, query or {}, body], sort_keys=True, separators=(",", ":"),
                           default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class SharedReads:
    def __init__(self, path, ttl_seconds=0.0, clock=time.time, sleep=time.sleep):
        self.path = path
        self.ttl = ttl_seconds
        self.clock = clock
        self.sleep = sleep
        self._connections = SqliteConnections(path)
        self._last_prune = 0.0
        self._connections.migrate(_create_table)

    def _connection(self):
        return self._connections.get()

    def _fresh(self, key, since):
        row = self._connection().execute(
            "SELECT status, body, headers, fetched_at FROM shared_reads WHERE key = ? AND fetched_at >= ?",
            (key, since)).fetchone()
        if row is None:
            return None
        return row[0], json.loads(row[1]), json.loads(row[2])

    def _claim(self, key, owner, now):
        """True when this caller becomes the leader for ``key``."""
        conn = self._connection()
        cursor = conn.execute(
            "INSERT INTO shared_reads (key, owner, lease_until, leader_pid) VALUES (?, ?, ?, ?)"
            " ON CONFLICT(key) DO UPDATE SET lease_until = excluded.lease_until, owner = excluded.owner,"
            " leader_pid = excluded.leader_pid, waiters = 0 WHERE shared_reads.lease_until < ?",
            (key, owner, now + LEASE_SECONDS, os.getpid(), now))
        return cursor.rowcount == 1

    def _leader_gone(self, key):
        """End the lease of a leader whose process no longer exists (a gunicorn worker killed
        mid-read), so its followers need not wait out the lease; True if it did."""
        row = self._connection().execute(
            "SELECT leader_pid FROM shared_reads WHERE key = ? AND lease_until > 0", (key,)).fetchone()
        if row is None or row[0] is None or row[0] == os.getpid() or _process_exists(row[0]):
            return False
        cursor = self._connection().execute(
            "UPDATE shared_reads SET lease_until = 0 WHERE key = ? AND leader_pid = ?", (key, row[0]))
        return cursor.rowcount == 1

    def _wait_for_leader(self, key, now):
        """Tell the leader an answer is awaited (so it stores one); False when there is no leader."""
        cursor = self._connection().execute(
            "UPDATE shared_reads SET waiters = waiters + 1 WHERE key = ? AND lease_until >= ?", (key, now))
        return cursor.rowcount == 1

    def _publish(self, key, status, body, headers):
        """End the lease. The answer is stored only when it will be read: a TTL is set, or someone
        waits; most reads have no follower, and then this is one small write."""
        conn = self._connection()
        if self.ttl <= 0:
            released = conn.execute("DELETE FROM shared_reads WHERE key = ? AND waiters = 0", (key,))
            if released.rowcount == 1:
                return
        # A follower that registers after the check above finds the lease gone and fetches itself.
        conn.execute(
            "UPDATE shared_reads SET status = ?, body = ?, headers = ?, fetched_at = ?, lease_until = 0,"
            " waiters = 0 WHERE key = ?", (status, json.dumps(body), json.dumps(headers), self.clock(), key))

    def read(self, owner, key, fetch, deadline):
        """The answer for ``key``: shared when possible, else ``fetch()`` -> (status, body, headers)."""
        arrived = self.clock()
        if self.ttl > 0:
            shared = self._fresh(key, arrived - self.ttl)
            if shared is not None:
                return shared
        waiting = False
        while True:
            now = self.clock()
            if self._claim(key, owner, now):
                try:
                    status, body, headers = fetch()
                except BaseException:
                    self._connection().execute(
                        "UPDATE shared_reads SET lease_until = 0, waiters = 0 WHERE key = ?", (key,))
                    raise
                self._publish(key, status, body, headers)
                self._maybe_prune()
                return status, body, headers
            if self._leader_gone(key):
                continue
            if not waiting:
                waiting = self._wait_for_leader(key, now)
            if now >= deadline:
                return fetch()
            self.sleep(WAIT_STEP_SECONDS)
            # Before claiming again: the lease may have ended because the answer is in.
            shared = self._fresh(key, arrived)
            if shared is not None:
                return shared

    def forget_owner(self, owner):
        """Drop every shared answer of ``owner`` (after it changed something in GHL)."""
        self._connection().execute("DELETE FROM shared_reads WHERE owner = ? AND lease_until < ?",
                                   (owner, self.clock()))

    def prune(self, older_than):
        """Drop answers fetched before ``older_than`` (a stored answer is only useful for the TTL)."""
        self._connection().execute(
            "DELETE FROM shared_reads WHERE (fetched_at IS NULL OR fetched_at < ?) AND lease_until < ?",
            (older_than, self.clock()))

    def _maybe_prune(self):
        now = self.clock()
        if now - self._last_prune >= PRUNE_EVERY_SECONDS:
            self._last_prune = now
            self.prune(now - max(self.ttl, KEEP_SECONDS))


COLUMNS = ("key", "owner", "status", "body", "headers", "fetched_at", "lease_until", "waiters", "leader_pid")


def _create_table(conn):
    # The table only holds answers for a minute or so: one of another shape is dropped, not migrated.
    present = tuple(row[1] for row in conn.execute("PRAGMA table_info(shared_reads)"))
    if present and present != COLUMNS:
        conn.execute("DROP TABLE shared_reads")
    conn.execute("CREATE TABLE IF NOT EXISTS shared_reads (key TEXT PRIMARY KEY, owner TEXT NOT NULL,"
                 " status INTEGER, body TEXT, headers TEXT, fetched_at REAL, lease_until REAL NOT NULL,"
                 " waiters INTEGER NOT NULL DEFAULT 0, leader_pid INTEGER)")
    conn.execute("CREATE INDEX IF NOT EXISTS shared_reads_by_owner ON shared_reads (owner)")


def _process_exists(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True
