"""Identical GHL reads in flight at once share one request, across every process and host.

Fifty Zaps polling the same list with the same token would otherwise spend fifty requests
of the location's rate budget on one answer. The first caller (the leader) takes a lease on
the read's key and fetches; callers that arrive meanwhile wait for the leader's answer. An
answer is also reused for ``ttl_seconds`` (0: only by callers that were already waiting).
A write by the same token drops its shared answers, so a create is visible to the next poll.
Only successful answers are shared; a failure is the leader's alone and followers fetch
for themselves. The leases and answers live in the store's ``SharedReadTable`` (``storage.contract``).
"""

import hashlib
import json
import os
import socket
import time

from storage.contract import SharedReadTable
from storage.sqlite import SqliteConnections
from storage.sqlite_migrations import ensure_schema

LEASE_SECONDS = 30.0  # a backstop: a leader whose process died is noticed at once (see _leader_gone)
WAIT_STEP_SECONDS = 0.02
# Answers are kept this long past their use (at least the TTL), then pruned at most this often.
KEEP_SECONDS = 60.0
PRUNE_EVERY_SECONDS = 60.0
_HOST = socket.gethostname()


def read_key(owner, method, path, query, body):
    canonical = json.dumps([owner, method, path, query or {}, body], sort_keys=True, separators=(",", ":"),
                           default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def leader_id():
    """Who leads a read: ``host:pid``. Only the leader's own host can tell that its process is gone."""
    return f"{_HOST}:{os.getpid()}"


class SharedReads:
    def __init__(self, table, ttl_seconds=0.0, clock=time.time, sleep=time.sleep):
        self.table = table
        self.ttl = ttl_seconds
        self.clock = clock
        self.sleep = sleep
        self._last_prune = 0.0

    def _leader_gone(self, key):
        """End the lease of a leader whose process no longer exists (a gunicorn worker killed
        mid-read), so its followers need not wait out the lease; True if it did. A leader on
        another host cannot be checked from here: its followers wait out the lease instead."""
        leader = self.table.leader(key)
        if leader is None:
            return False
        host, _, pid = leader.rpartition(":")
        if host != _HOST or not pid.isdigit() or int(pid) == os.getpid() or _process_exists(int(pid)):
            return False
        return self.table.end_lease_of(key, leader)

    def read(self, owner, key, fetch, deadline):
        """The answer for ``key``: shared when possible, else ``fetch()`` -> (status, body, headers)."""
        arrived = self.clock()
        if self.ttl > 0:
            shared = self.table.fresh(key, arrived - self.ttl)
            if shared is not None:
                return shared
        waiting = False
        while True:
            now = self.clock()
            if self.table.claim(key, owner, leader_id(), now, now + LEASE_SECONDS):
                try:
                    status, body, headers = fetch()
                except BaseException:
                    self.table.release(key)
                    raise
                # Stored only when it will be read (a TTL, or someone waits); most reads have no
                # follower, and then publishing is one small write.
                self.table.publish(key, status, body, headers, self.clock(), keep=self.ttl > 0)
                self._maybe_prune()
                return status, body, headers
            if self._leader_gone(key):
                continue
            if not waiting:
                waiting = self.table.wait_for_leader(key, now)
            if now >= deadline:
                return fetch()
            self.sleep(WAIT_STEP_SECONDS)
            # Before claiming again: the lease may have ended because the answer is in.
            shared = self.table.fresh(key, arrived)
            if shared is not None:
                return shared

    def forget_owner(self, owner):
        """Drop every shared answer of ``owner`` (after it changed something in GHL)."""
        self.table.forget_owner(owner, self.clock())

    def prune(self, older_than):
        """Drop answers fetched before ``older_than`` (a stored answer is only useful for the TTL)."""
        self.table.prune(older_than, self.clock())

    def _maybe_prune(self):
        now = self.clock()
        if now - self._last_prune >= PRUNE_EVERY_SECONDS:
            self._last_prune = now
            self.prune(now - max(self.ttl, KEEP_SECONDS))


class SqliteSharedReadTable(SharedReadTable):
    def __init__(self, path):
        self.path = path
        self._connections = SqliteConnections(path)
        ensure_schema(self._connections)  # the table: storage.sqlite_migrations

    def _connection(self):
        return self._connections.get()

    def fresh(self, key, since):
        row = self._connection().execute(
            "SELECT status, body, headers, fetched_at FROM shared_reads WHERE key = ? AND fetched_at >= ?",
            (key, since)).fetchone()
        if row is None:
            return None
        return row[0], json.loads(row[1]), json.loads(row[2])

    def claim(self, key, owner, leader, now, lease_until):
        cursor = self._connection().execute(
            "INSERT INTO shared_reads (key, owner, lease_until, leader) VALUES (?, ?, ?, ?)"
            " ON CONFLICT(key) DO UPDATE SET lease_until = excluded.lease_until, owner = excluded.owner,"
            " leader = excluded.leader, waiters = 0 WHERE shared_reads.lease_until < ?",
            (key, owner, lease_until, leader, now))
        return cursor.rowcount == 1

    def leader(self, key):
        row = self._connection().execute(
            "SELECT leader FROM shared_reads WHERE key = ? AND lease_until > 0", (key,)).fetchone()
        return None if row is None else row[0]

    def end_lease_of(self, key, leader):
        cursor = self._connection().execute(
            "UPDATE shared_reads SET lease_until = 0 WHERE key = ? AND leader = ?", (key, leader))
        return cursor.rowcount == 1

    def wait_for_leader(self, key, now):
        cursor = self._connection().execute(
            "UPDATE shared_reads SET waiters = waiters + 1 WHERE key = ? AND lease_until >= ?", (key, now))
        return cursor.rowcount == 1

    def release(self, key):
        self._connection().execute("UPDATE shared_reads SET lease_until = 0, waiters = 0 WHERE key = ?", (key,))

    def publish(self, key, status, body, headers, fetched_at, keep):
        conn = self._connection()
        if not keep:
            released = conn.execute("DELETE FROM shared_reads WHERE key = ? AND waiters = 0", (key,))
            if released.rowcount == 1:
                return
        # A follower that registers after the check above finds the lease gone and fetches itself.
        conn.execute(
            "UPDATE shared_reads SET status = ?, body = ?, headers = ?, fetched_at = ?, lease_until = 0,"
            " waiters = 0 WHERE key = ?", (status, json.dumps(body), json.dumps(headers), fetched_at, key))

    def forget_owner(self, owner, now):
        self._connection().execute("DELETE FROM shared_reads WHERE owner = ? AND lease_until < ?", (owner, now))

    def prune(self, older_than, now):
        self._connection().execute(
            "DELETE FROM shared_reads WHERE (fetched_at IS NULL OR fetched_at < ?) AND lease_until < ?",
            (older_than, now))


def _process_exists(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True
