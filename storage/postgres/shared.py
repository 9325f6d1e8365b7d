"""The rate budget's slots and shared reads in PostgreSQL, for every process on every host.

Both tables are UNLOGGED: written on nearly every GHL request, worthless after a few seconds,
so they skip the WAL (a server crash empties them, which forgets rate slots of the last few
seconds and reads in flight: harmless).

- ``PostgresRateSlots``: one round trip per take, the function ``take_rate_slot`` (see
  ``storage.postgres.migrations``): under ``pg_advisory_xact_lock(RATE_BUDGET_LOCK, hash of
  budget)`` it keeps the budget's slots within the window and takes one if there is room.
  A budget is one row holding its slots' times as an array (at most ``max_requests`` of them).
- ``PostgresSharedReadTable``: ``ghl.shared_reads``' table operations, one autocommit
  statement each, as in SQLite (``ON CONFLICT ... DO UPDATE ... WHERE`` claims a lease).
"""

import json

from storage.contract import RateSlots, SharedReadTable


class PostgresRateSlots(RateSlots):
    def __init__(self, connections):
        self._connections = connections

    def try_take(self, budget, now, window_seconds, max_requests):
        with self._connections.connection() as conn:
            wait = conn.execute("SELECT take_rate_slot(%s, %s, %s, %s)",
                                (budget, float(now), float(window_seconds), int(max_requests))).fetchone()[0]
        return float(wait)


class PostgresSharedReadTable(SharedReadTable):
    def __init__(self, connections):
        self._connections = connections

    def _execute(self, sql, params):
        with self._connections.connection() as conn:
            cursor = conn.execute(sql, params)
            return cursor.rowcount, (cursor.fetchone() if cursor.description else None)

    def fresh(self, key, since):
        _, row = self._execute(
            "SELECT status, body, headers FROM shared_reads WHERE key = %s AND fetched_at >= %s", (key, since))
        if row is None:
            return None
        return row[0], json.loads(row[1]), json.loads(row[2])

    def claim(self, key, owner, leader, now, lease_until):
        count, _ = self._execute(
            "INSERT INTO shared_reads AS r (key, owner, lease_until, leader) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (key) DO UPDATE SET lease_until = EXCLUDED.lease_until, owner = EXCLUDED.owner,"
            " leader = EXCLUDED.leader, waiters = 0 WHERE r.lease_until < %s",
            (key, owner, lease_until, leader, now))
        return count == 1

    def leader(self, key):
        _, row = self._execute("SELECT leader FROM shared_reads WHERE key = %s AND lease_until > 0", (key,))
        return None if row is None else row[0]

    def end_lease_of(self, key, leader):
        count, _ = self._execute("UPDATE shared_reads SET lease_until = 0 WHERE key = %s AND leader = %s",
                                 (key, leader))
        return count == 1

    def wait_for_leader(self, key, now):
        count, _ = self._execute(
            "UPDATE shared_reads SET waiters = waiters + 1 WHERE key = %s AND lease_until >= %s", (key, now))
        return count == 1

    def release(self, key):
        self._execute("UPDATE shared_reads SET lease_until = 0, waiters = 0 WHERE key = %s", (key,))

    def publish(self, key, status, body, headers, fetched_at, keep):
        with self._connections.connection() as conn:
            if not keep and conn.execute("DELETE FROM shared_reads WHERE key = %s AND waiters = 0",
                                         (key,)).rowcount == 1:
                return
            # A follower that registers after the check above finds the lease gone and fetches itself.
            conn.execute(
                "UPDATE shared_reads SET status = %s, body = %s, headers = %s, fetched_at = %s, lease_until = 0,"
                " waiters = 0 WHERE key = %s", (status, json.dumps(body), json.dumps(headers), fetched_at, key))

    def forget_owner(self, owner, now):
        self._execute("DELETE FROM shared_reads WHERE owner = %s AND lease_until < %s", (owner, now))

    def prune(self, older_than, now):
        self._execute("DELETE FROM shared_reads WHERE (fetched_at IS NULL OR fetched_at < %s) AND lease_until < %s",
                      (older_than, now))
