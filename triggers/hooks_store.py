"""REST hook subscriptions, beside the dedupe store (SQLite here; ``storage.postgres`` for PostgreSQL).

A subscription is one Zap's instant trigger: the trigger key, its validated inputs, the GHL
token (encrypted with Fernet under a key derived from ``SECRET_KEY``; never stored in plain
text), who owns it (the token's credential id, ``ghl.credentials``), where to push, and the
worker's schedule. One owner holds at most ``max_per_owner`` subscriptions, counted and
inserted in one write transaction.

Its outbox is the dedupe store's backlog of the scope ``hook:<id>``: polled items wait there,
unanswered, until a delivery succeeds.

Leases: a worker takes a due subscription with one ``UPDATE ... WHERE lease_until < now``
inside ``BEGIN IMMEDIATE``, so two worker processes never hold the same subscription. Every
state change a worker writes is conditional on still holding the lease.

Fairness: leases go round-robin between owners. ``hook_owner_turns`` keeps, per owner, the turn
(a counter) at which it was last served, 0 for never; a lease goes to the due subscription
of the owner served least recently, so one tenant's thousands of subscriptions cannot delay
another's.
"""

import base64
import json
import secrets
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime, timezone

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from storage.contract import HookStore
from storage.sqlite import ImmediateTransaction, SqliteConnections
from storage.sqlite_migrations import ensure_schema

SCOPE_PREFIX = "hook:"
# Separates the encryption key from the HMAC that names token owners, though both come from SECRET_KEY.
KEY_DERIVATION_INFO = b"ghl-zapier/hook-token-encryption/v1"

# Owners of subscriptions without a turn row (inserted by a release before turns, or by hand).
OWNERS_WITHOUT_TURN_SQL = """
SELECT EXISTS (SELECT 1 FROM hook_subscriptions AS s
               WHERE NOT EXISTS (SELECT 1 FROM hook_owner_turns AS t WHERE t.owner = s.owner))
"""


def _give_every_owner_a_turn(conn):
    """On open, as ever: owners without a turn row get one (turn 0, served first). Reads only
    when every owner has one."""
    if conn.execute(OWNERS_WITHOUT_TURN_SQL).fetchone()[0]:
        with ImmediateTransaction(conn):
            conn.execute("INSERT OR IGNORE INTO hook_owner_turns (owner, turn)"
                         " SELECT DISTINCT owner, 0 FROM hook_subscriptions")


# The owner, among those with a due unleased subscription, served least recently.
NEXT_OWNER_SQL = """
SELECT t.owner FROM hook_owner_turns AS t
WHERE EXISTS (SELECT 1 FROM hook_subscriptions AS s
              WHERE s.owner = t.owner AND s.next_poll_at <= :now AND s.lease_until < :now)
   OR EXISTS (SELECT 1 FROM hook_subscriptions AS s
              WHERE s.owner = t.owner AND s.next_delivery_at <= :now AND s.lease_until < :now)
ORDER BY t.turn, t.owner LIMIT 1
"""

# What a worker may change on a subscription it holds.
WORKER_FIELDS = frozenset({
    "next_poll_at", "last_poll_at", "last_delivery_at", "last_error", "last_error_at",
    "delivery_failures", "next_delivery_at",
})


class HookLimitReached(Exception):
    """The owner already holds as many subscriptions as allowed."""

    def __init__(self, limit):
        super().__init__(f"this owner already holds {limit} subscriptions")
        self.limit = limit


class TokenUnreadable(Exception):
    """The stored token cannot be decrypted: SECRET_KEY changed, or the row was tampered with."""


class TokenCipher:
    """Fernet (AES-128-CBC + HMAC-SHA256) with a key derived from ``SECRET_KEY`` by HKDF."""

    def __init__(self, secret_key):
        if not secret_key:
            raise ValueError("a secret key is required to encrypt tokens")
        derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                       info=KEY_DERIVATION_INFO).derive(secret_key.encode("utf-8"))
        self._fernet = Fernet(base64.urlsafe_b64encode(derived))

    def encrypt(self, token):
        return self._fernet.encrypt(token.encode("utf-8")).decode("ascii")

    def decrypt(self, ciphertext):
        try:
            return self._fernet.decrypt(ciphertext.encode("ascii")).decode("utf-8")
        except (InvalidToken, ValueError):
            raise TokenUnreadable("the stored token cannot be decrypted with this SECRET_KEY") from None


@dataclass(frozen=True)
class Subscription:
    id: str
    trigger: str
    inputs: dict
    owner: str
    target_url: str
    interval_seconds: int
    created_at: float
    next_poll_at: float
    last_poll_at: float = None
    last_delivery_at: float = None
    last_error: str = None
    last_error_at: float = None
    delivery_failures: int = 0
    next_delivery_at: float = None
    lease_owner: str = None
    lease_until: float = 0
    token_ciphertext: str = field(default="", repr=False)

    @property
    def scope(self):
        return scope_for_hook(self.id)


def held_assignments(changes, release, placeholder):
    """The SET clauses and values of ``update_held`` (column names only from WORKER_FIELDS)."""
    unknown = set(changes) - WORKER_FIELDS
    if unknown:
        raise ValueError(f"not worker state: {sorted(unknown)}")
    assignments = [f"{name} = {placeholder}" for name in changes]
    if release:
        assignments += ["lease_owner = NULL", "lease_until = 0"]
    return assignments, list(changes.values())


def subscription_of(row):
    """The Subscription of a ``hook_subscriptions`` row (a mapping of its columns); None for None."""
    if row is None:
        return None
    values = dict(row)
    values["inputs"] = json.loads(values["inputs"])
    return Subscription(**values)


def scope_for_hook(hook_id):
    return SCOPE_PREFIX + hook_id


def new_hook_id():
    """Random and unguessable: the id is all a caller needs to read a subscription's state."""
    return "hk_" + secrets.token_urlsafe(18)


def iso_time(epoch):
    return None if epoch is None else datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="seconds")


class SqliteHookStore(HookStore):
    def __init__(self, path, cipher):
        self.path = path
        self.cipher = cipher
        self._connections = SqliteConnections(path, row_factory=sqlite3.Row)
        ensure_schema(self._connections)  # tables: storage.sqlite_migrations
        self._connections.prepare(_give_every_owner_a_turn)

    def _connection(self):
        return self._connections.get()

    def _transaction(self):
        return self._connections.transaction()

    def create(self, hook_id, trigger, inputs, token, owner, target_url, interval_seconds, now,
               max_per_owner=None):
        """Store a new subscription. With ``max_per_owner``, raises ``HookLimitReached`` when
        ``owner`` already holds that many; the count and the insert are one transaction, so
        concurrent creates never pass the limit."""
        canonical_inputs = json.dumps(inputs, sort_keys=True, separators=(",", ":"))
        with self._transaction() as conn:
            if max_per_owner is not None and self._count_owned(conn, owner) >= max_per_owner:
                raise HookLimitReached(max_per_owner)
            conn.execute(
                "INSERT INTO hook_subscriptions (id, trigger, inputs, token_ciphertext, owner, target_url,"
                " interval_seconds, created_at, next_poll_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (hook_id, trigger, canonical_inputs, self.cipher.encrypt(token), owner, target_url,
                 int(interval_seconds), now, now + interval_seconds))
            conn.execute("INSERT OR IGNORE INTO hook_owner_turns (owner, turn) VALUES (?, 0)", (owner,))
        return self.get(hook_id)

    @staticmethod
    def _count_owned(conn, owner):
        return conn.execute("SELECT COUNT(*) FROM hook_subscriptions WHERE owner = ?", (owner,)).fetchone()[0]

    def count_owned(self, owner):
        """How many subscriptions ``owner`` holds."""
        return self._count_owned(self._connection(), owner)

    def get(self, hook_id):
        row = self._connection().execute("SELECT * FROM hook_subscriptions WHERE id = ?", (hook_id,)).fetchone()
        return subscription_of(row)

    def delete(self, hook_id):
        """True when a subscription was removed; False when it was already gone."""
        with self._transaction() as conn:
            row = conn.execute("SELECT owner FROM hook_subscriptions WHERE id = ?", (hook_id,)).fetchone()
            if row is None:
                return False
            conn.execute("DELETE FROM hook_subscriptions WHERE id = ?", (hook_id,))
            conn.execute("DELETE FROM hook_owner_turns WHERE owner = ? AND NOT EXISTS"
                         " (SELECT 1 FROM hook_subscriptions WHERE owner = ?)", (row["owner"], row["owner"]))
            return True

    def token(self, subscription):
        return self.cipher.decrypt(subscription.token_ciphertext)

    def lease_next_due(self, worker, now, lease_seconds):
        """Lease a due subscription no one holds (due to poll, or to retry a delivery): the most
        overdue one of the owner served least recently; None when nothing is due."""
        with self._transaction() as conn:
            anyone = self._most_overdue(conn, now)
            if anyone is None:
                return None
            # An owner without a turn row (a subscription written by an older release) counts as never served.
            conn.execute("INSERT OR IGNORE INTO hook_owner_turns (owner, turn) VALUES (?, 0)", (anyone["owner"],))
            owner = conn.execute(NEXT_OWNER_SQL, {"now": now}).fetchone()["owner"]
            chosen = self._most_overdue(conn, now, owner)
            # The write lock is held since the reads above, so ``chosen`` is still due and unleased.
            conn.execute("UPDATE hook_subscriptions SET lease_owner = ?, lease_until = ? WHERE id = ?",
                         (worker, now + lease_seconds, chosen["id"]))
            conn.execute("UPDATE hook_owner_turns SET turn = (SELECT MAX(turn) FROM hook_owner_turns) + 1"
                         " WHERE owner = ?", (owner,))
            return subscription_of(
                conn.execute("SELECT * FROM hook_subscriptions WHERE id = ?", (chosen["id"],)).fetchone())

    @staticmethod
    def _most_overdue(conn, now, owner=None):
        """The row (id, owner, due) of the most overdue due subscription no one holds, of
        ``owner`` when given; None when there is none. Each due column is read in its index's
        order up to the first row no one holds, however many subscriptions there are."""
        owned = " AND owner = ?" if owner is not None else ""
        found = []
        for column in ("next_poll_at", "next_delivery_at"):
            found.append(conn.execute(
                f"SELECT id, owner, {column} AS due FROM hook_subscriptions"
                f" WHERE {column} <= ? AND lease_until < ?{owned} ORDER BY {column} LIMIT 1",
                (now, now) + ((owner,) if owner is not None else ())).fetchone())
        found = [row for row in found if row is not None]
        return min(found, key=lambda row: row["due"]) if found else None

    def renew_lease(self, hook_id, worker, now, lease_seconds):
        """Extend a lease this worker still holds; False when another worker has taken it over."""
        with self._transaction() as conn:
            return conn.execute(
                "UPDATE hook_subscriptions SET lease_until = ? WHERE id = ? AND lease_owner = ?",
                (now + lease_seconds, hook_id, worker)).rowcount > 0

    def update_held(self, hook_id, worker, release=False, **changes):
        """Write a held subscription's state (and, with ``release``, let it go).
        False when the lease was lost or the subscription deleted meanwhile."""
        assignments, values = held_assignments(changes, release, "?")
        if not assignments:
            return True
        with self._transaction() as conn:
            return conn.execute(
                f"UPDATE hook_subscriptions SET {', '.join(assignments)} WHERE id = ? AND lease_owner = ?",
                [*values, hook_id, worker]).rowcount > 0

    def close(self):
        self._connections.close()
