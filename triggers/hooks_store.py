"""REST hook subscriptions, in the same SQLite file as the dedupe store.

A subscription is one Zap's instant trigger: the trigger key, its validated inputs, the GHL
token (encrypted with Fernet under a key derived from ``SECRET_KEY``; never stored in plain
text), who owns it (an HMAC of the token), where to push, and the worker's schedule.

Its outbox is the dedupe store's backlog of the scope ``hook:<id>``: polled items wait there,
unanswered, until a delivery succeeds.

Leases: a worker takes a due subscription with one ``UPDATE ... WHERE lease_until < now``
inside ``BEGIN IMMEDIATE``, so two worker processes never hold the same subscription. Every
state change a worker writes is conditional on still holding the lease.
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

from storage.sqlite import SqliteConnections

SCOPE_PREFIX = "hook:"
# Separates the encryption key from the HMAC that names token owners, though both come from SECRET_KEY.
KEY_DERIVATION_INFO = b"ghl-zapier/hook-token-encryption/v1"

SCHEMA = """
CREATE TABLE IF NOT EXISTS hook_subscriptions (
    id TEXT PRIMARY KEY,
    trigger TEXT NOT NULL,
    inputs TEXT NOT NULL,
    token_ciphertext TEXT NOT NULL,
    owner TEXT NOT NULL,
    target_url TEXT NOT NULL,
    interval_seconds INTEGER NOT NULL,
    created_at REAL NOT NULL,
    next_poll_at REAL NOT NULL,
    last_poll_at REAL,
    last_delivery_at REAL,
    last_error TEXT,
    last_error_at REAL,
    delivery_failures INTEGER NOT NULL DEFAULT 0,
    next_delivery_at REAL,
    lease_owner TEXT,
    lease_until REAL NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS hook_subscriptions_by_poll ON hook_subscriptions (next_poll_at);
CREATE INDEX IF NOT EXISTS hook_subscriptions_by_delivery ON hook_subscriptions (next_delivery_at);
"""

# What a worker may change on a subscription it holds.
WORKER_FIELDS = frozenset({
    "next_poll_at", "last_poll_at", "last_delivery_at", "last_error", "last_error_at",
    "delivery_failures", "next_delivery_at",
})


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


def scope_for_hook(hook_id):
    return SCOPE_PREFIX + hook_id


def new_hook_id():
    """Random and unguessable: the id is all a caller needs to read a subscription's state."""
    return "hk_" + secrets.token_urlsafe(18)


def iso_time(epoch):
    return None if epoch is None else datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="seconds")


class SqliteHookStore:
    def __init__(self, path, cipher):
        self.path = path
        self.cipher = cipher
        self._connections = SqliteConnections(path, row_factory=sqlite3.Row)
        self._connections.migrate(SCHEMA)

    def _connection(self):
        return self._connections.get()

    def _transaction(self):
        return self._connections.transaction()

    @staticmethod
    def _subscription(row):
        if row is None:
            return None
        values = dict(row)
        values["inputs"] = json.loads(values["inputs"])
        return Subscription(**values)

    def create(self, hook_id, trigger, inputs, token, owner, target_url, interval_seconds, now):
        canonical_inputs = json.dumps(inputs, sort_keys=True, separators=(",", ":"))
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO hook_subscriptions (id, trigger, inputs, token_ciphertext, owner, target_url,"
                " interval_seconds, created_at, next_poll_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (hook_id, trigger, canonical_inputs, self.cipher.encrypt(token), owner, target_url,
                 int(interval_seconds), now, now + interval_seconds))
        return self.get(hook_id)

    def get(self, hook_id):
        row = self._connection().execute("SELECT * FROM hook_subscriptions WHERE id = ?", (hook_id,)).fetchone()
        return self._subscription(row)

    def delete(self, hook_id):
        """True when a subscription was removed; False when it was already gone."""
        with self._transaction() as conn:
            return conn.execute("DELETE FROM hook_subscriptions WHERE id = ?", (hook_id,)).rowcount > 0

    def token(self, subscription):
        return self.cipher.decrypt(subscription.token_ciphertext)

    def lease_next_due(self, worker, now, lease_seconds):
        """Lease the most overdue subscription no one holds (due to poll, or to retry a delivery)."""
        with self._transaction() as conn:
            row = conn.execute(
                "SELECT id FROM hook_subscriptions WHERE lease_until < ?"
                " AND (next_poll_at <= ? OR next_delivery_at <= ?)"
                " ORDER BY MIN(next_poll_at, COALESCE(next_delivery_at, next_poll_at)) LIMIT 1",
                (now, now, now)).fetchone()
            if row is None:
                return None
            taken = conn.execute(
                "UPDATE hook_subscriptions SET lease_owner = ?, lease_until = ? WHERE id = ? AND lease_until < ?",
                (worker, now + lease_seconds, row["id"], now)).rowcount
            if not taken:
                return None
            return self._subscription(
                conn.execute("SELECT * FROM hook_subscriptions WHERE id = ?", (row["id"],)).fetchone())

    def renew_lease(self, hook_id, worker, now, lease_seconds):
        """Extend a lease this worker still holds; False when another worker has taken it over."""
        with self._transaction() as conn:
            return conn.execute(
                "UPDATE hook_subscriptions SET lease_until = ? WHERE id = ? AND lease_owner = ?",
                (now + lease_seconds, hook_id, worker)).rowcount > 0

    def update_held(self, hook_id, worker, release=False, **changes):
        """Write a held subscription's state (and, with ``release``, let it go).
        False when the lease was lost or the subscription deleted meanwhile."""
        unknown = set(changes) - WORKER_FIELDS
        if unknown:
            raise ValueError(f"not worker state: {sorted(unknown)}")
        assignments = [f"{name} = ?" for name in changes]
        values = list(changes.values())
        if release:
            assignments += ["lease_owner = NULL", "lease_until = 0"]
        if not assignments:
            return True
        with self._transaction() as conn:
            return conn.execute(
                f"UPDATE hook_subscriptions SET {', '.join(assignments)} WHERE id = ? AND lease_owner = ?",
                [*values, hook_id, worker]).rowcount > 0

    def close(self):
        self._connections.close()
