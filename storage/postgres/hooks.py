"""REST hook subscriptions in PostgreSQL (``storage.contract.HookStore``); the behaviour of
``triggers.hooks_store.SqliteHookStore``, whose ``Subscription``, ``TokenCipher``,
``WORKER_FIELDS`` and ``HookLimitReached`` it shares.

Locking, without SQLite's one write lock:

- Per owner, ``create`` and ``delete`` take ``pg_advisory_xact_lock(HOOK_OWNER_LOCK, hash of
  owner)`` first: the count and the insert are atomic against every other create of that
  owner (the limit holds across hosts), and the owner's turn row is removed only when its
  last subscription is, never beside a create that is adding one.
- ``lease_next_due``: picks the owner served least recently among those with a due, unleased
  subscription, locking its turn row ``FOR UPDATE SKIP LOCKED`` (a worker busy leasing for
  that owner is skipped, not waited for: two workers lease for two owners in parallel), then
  that owner's most overdue such subscription, also ``FOR UPDATE SKIP LOCKED``; it writes the
  lease and gives the owner the next turn (a sequence) in the same transaction. Two workers
  never hold one subscription: the lease is written under the row lock, and a row another
  worker holds or has leased meanwhile is skipped or fails the recheck of its due condition.
- Every write of a worker is conditional on still holding the lease (``lease_owner``).
"""

import json

from psycopg.rows import dict_row

from storage.contract import HookStore
from storage.postgres.migrations import HOOK_OWNER_LOCK
from triggers.hooks_store import HookLimitReached, held_assignments, subscription_of

# Attempts of lease_next_due when the owner it picked has nothing left to lease (another worker
# took that owner's last due subscription between the two reads).
LEASE_ATTEMPTS = 5

DUE = "LEAST(s.next_poll_at, s.next_delivery_at)"

NEXT_OWNER_SQL = f"""
SELECT t.owner FROM hook_owner_turns AS t
WHERE EXISTS (SELECT 1 FROM hook_subscriptions AS s
              WHERE {DUE} <= %(now)s AND s.lease_until < %(now)s)
  AND EXISTS (SELECT 1 FROM hook_subscriptions AS s
              WHERE s.owner = t.owner AND {DUE} <= %(now)s AND s.lease_until < %(now)s)
  AND t.owner <> ALL(%(tried)b::text[])
ORDER BY t.turn, t.owner LIMIT 1
FOR UPDATE OF t SKIP LOCKED
"""

MOST_OVERDUE_SQL = f"""
SELECT s.id FROM hook_subscriptions AS s
WHERE s.owner = %(owner)s AND {DUE} <= %(now)s AND s.lease_until < %(now)s
ORDER BY {DUE}, s.created_at, s.id LIMIT 1
FOR UPDATE SKIP LOCKED
"""

LEASE_SQL = """
WITH turn AS (UPDATE hook_owner_turns SET turn = nextval('hook_owner_turn') WHERE owner = %(owner)s)
UPDATE hook_subscriptions SET lease_owner = %(worker)s, lease_until = %(until)s WHERE id = %(id)s
RETURNING *
"""

OWNER_LOCK_SQL = "SELECT pg_advisory_xact_lock(%s, hashtext(%s))"


class PostgresHookStore(HookStore):
    def __init__(self, connections, cipher):
        self._connections = connections
        self.cipher = cipher

    def create(self, hook_id, trigger, inputs, token, owner, target_url, interval_seconds, now,
               max_per_owner=None):
        canonical_inputs = json.dumps(inputs, sort_keys=True, separators=(",", ":"))
        ciphertext = self.cipher.encrypt(token)
        with self._connections.transaction() as conn:
            conn.execute(OWNER_LOCK_SQL, (HOOK_OWNER_LOCK, owner))
            if max_per_owner is not None and self._count_owned(conn, owner) >= max_per_owner:
                raise HookLimitReached(max_per_owner)
            row = conn.cursor(row_factory=dict_row).execute(
                "WITH turn AS (INSERT INTO hook_owner_turns (owner, turn) VALUES (%(owner)s, 0)"
                " ON CONFLICT (owner) DO NOTHING)"
                " INSERT INTO hook_subscriptions (id, trigger, inputs, token_ciphertext, owner, target_url,"
                " interval_seconds, created_at, next_poll_at) VALUES (%(id)s, %(trigger)s, %(inputs)s,"
                " %(ciphertext)s, %(owner)s, %(target_url)s, %(interval)s, %(now)s, %(next_poll_at)s) RETURNING *",
                {"owner": owner, "id": hook_id, "trigger": trigger, "inputs": canonical_inputs,
                 "ciphertext": ciphertext, "target_url": target_url, "interval": int(interval_seconds),
                 "now": now, "next_poll_at": now + interval_seconds}).fetchone()
        return subscription_of(row)

    @staticmethod
    def _count_owned(conn, owner):
        return conn.execute("SELECT COUNT(*) FROM hook_subscriptions WHERE owner = %s", (owner,)).fetchone()[0]

    def count_owned(self, owner):
        with self._connections.connection() as conn:
            return self._count_owned(conn, owner)

    def get(self, hook_id):
        with self._connections.connection() as conn:
            row = conn.cursor(row_factory=dict_row).execute(
                "SELECT * FROM hook_subscriptions WHERE id = %s", (hook_id,)).fetchone()
        return subscription_of(row)

    def delete(self, hook_id):
        with self._connections.transaction() as conn:
            row = conn.execute("SELECT owner FROM hook_subscriptions WHERE id = %s", (hook_id,)).fetchone()
            if row is None:
                return False
            owner = row[0]
            conn.execute(OWNER_LOCK_SQL, (HOOK_OWNER_LOCK, owner))
            if conn.execute("DELETE FROM hook_subscriptions WHERE id = %s", (hook_id,)).rowcount == 0:
                return False  # deleted meanwhile by another caller
            conn.execute("DELETE FROM hook_owner_turns WHERE owner = %(owner)s AND NOT EXISTS"
                         " (SELECT 1 FROM hook_subscriptions WHERE owner = %(owner)s)", {"owner": owner})
            return True

    def token(self, subscription):
        return self.cipher.decrypt(subscription.token_ciphertext)

    def lease_next_due(self, worker, now, lease_seconds):
        tried = []
        with self._connections.transaction() as conn:
            for _ in range(LEASE_ATTEMPTS):
                row = conn.execute(NEXT_OWNER_SQL, {"now": now, "tried": tried}).fetchone()
                if row is None:
                    return None
                owner = row[0]
                chosen = conn.execute(MOST_OVERDUE_SQL, {"owner": owner, "now": now}).fetchone()
                if chosen is None:
                    tried.append(owner)
                    continue
                leased = conn.cursor(row_factory=dict_row).execute(LEASE_SQL, {
                    "owner": owner, "worker": worker, "until": now + lease_seconds, "id": chosen[0]}).fetchone()
                return subscription_of(leased)
        return None

    def renew_lease(self, hook_id, worker, now, lease_seconds):
        with self._connections.connection() as conn:
            return conn.execute(
                "UPDATE hook_subscriptions SET lease_until = %s WHERE id = %s AND lease_owner = %s",
                (now + lease_seconds, hook_id, worker)).rowcount > 0

    def update_held(self, hook_id, worker, release=False, **changes):
        assignments, values = held_assignments(changes, release, "%s")
        if not assignments:
            return True
        with self._connections.connection() as conn:
            return conn.execute(
                f"UPDATE hook_subscriptions SET {', '.join(assignments)} WHERE id = %s AND lease_owner = %s",
                [*values, hook_id, worker]).rowcount > 0

    def close(self):
        self._connections.close()
