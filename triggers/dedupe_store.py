"""The dedupe store: per scope, every identity seen, and when it was first answered.

``DedupeStore`` is the interface the polling code uses; ``SqliteDedupeStore`` owns every
SQLite detail (through sqlite-utils), so another database can be added without touching
trigger code.

Rows of ``seen``: (scope, identity) -> the item as emitted, its order key, when it was first
seen, last seen (refreshed at most daily, for retention) and first answered (NULL while it
waits in the backlog). ``answer`` claims a batch of the backlog in one write transaction, so
concurrent polls of one scope never claim the same new item twice and never lose one.
"""

from abc import ABC, abstractmethod

import sqlite_utils

from storage import fast_json
from storage.sqlite import SqliteConnections

LAST_SEEN_REFRESH_SECONDS = 86400
PRUNE_EVERY_SECONDS = 3600


class DedupeStore(ABC):
    @abstractmethod
    def has_scope(self, scope):
        """True once a scope has been polled (recorded) at least once."""

    @abstractmethod
    def known(self, scope, identities):
        """The subset of ``identities`` already seen in ``scope``."""

    @abstractmethod
    def answer(self, scope, candidates, now, new_limit, redelivery_seconds, redelivery_limit):
        """Record ``candidates`` and return the answer: up to ``new_limit`` never-answered
        items (oldest first), plus items first answered within ``redelivery_seconds``
        (at most ``redelivery_limit``), all newest first."""

    @abstractmethod
    def record(self, scope, candidates, now, answered=False):
        """Remember candidates without answering them (REST hooks deliver from the backlog)."""

    @abstractmethod
    def pending(self, scope, limit):
        """Backlog items, oldest first."""

    @abstractmethod
    def mark_answered(self, scope, identities, now):
        """Take delivered identities out of the backlog."""

    @abstractmethod
    def forget_scope(self, scope):
        """Drop everything remembered for ``scope``."""

    @abstractmethod
    def prune(self, now, retention_seconds):
        """Forget identities not seen for ``retention_seconds``."""


class SqliteDedupeStore(DedupeStore):
    def __init__(self, path):
        self.path = path
        self._connections = SqliteConnections(path)
        self._last_prune = 0.0
        self._connections.migrate(self._create_tables)

    def _connection(self):
        return self._connections.get()

    @staticmethod
    def _create_tables(conn):
        db = sqlite_utils.Database(conn)
        if "seen" not in db.table_names():
            db["seen"].create({
                "scope": str, "identity": str, "item": str, "order_ts": float, "seq": int,
                "first_seen": float, "last_seen": float, "first_answered": float,
            }, pk=("scope", "identity"), if_not_exists=True)
        db["seen"].create_index(["scope", "first_answered", "order_ts"], if_not_exists=True,
                                index_name="seen_by_answer")
        db["seen"].create_index(["last_seen"], if_not_exists=True, index_name="seen_by_last_seen")
        if "scopes" not in db.table_names():
            db["scopes"].create({"scope": str, "first_poll": float, "last_poll": float, "next_seq": int},
                                pk="scope", if_not_exists=True)

    def has_scope(self, scope):
        row = self._connection().execute("SELECT 1 FROM scopes WHERE scope = ?", (scope,)).fetchone()
        return row is not None

    def known(self, scope, identities):
        identities = list(identities)
        found = set()
        conn = self._connection()
        for start in range(0, len(identities), 500):
            chunk = identities[start:start + 500]
            marks = ",".join("?" * len(chunk))
            rows = conn.execute(
                f"SELECT identity FROM seen WHERE scope = ? AND identity IN ({marks})", [scope, *chunk])
            found.update(r[0] for r in rows)
        return found

    def _record(self, conn, scope, candidates, now, answered):
        """Insert unseen candidates (inside the caller's transaction); returns how many were new."""
        row = conn.execute("SELECT next_seq FROM scopes WHERE scope = ?", (scope,)).fetchone()
        next_seq = row[0] if row else 0
        already = self.known(scope, (c.identity for c in candidates))
        fresh = []
        seen_in_batch = set()
        # Candidates arrive newest first; give older ones lower sequence numbers.
        for candidate in reversed(candidates):
            if candidate.identity in already or candidate.identity in seen_in_batch:
                continue
            seen_in_batch.add(candidate.identity)
            order_ts = candidate.sort_ts if candidate.sort_ts is not None else now
            fresh.append((scope, candidate.identity, fast_json.dumps(candidate.item), order_ts,
                          next_seq, now, now, now if answered else None))
            next_seq += 1
        conn.executemany(
            "INSERT INTO seen (scope, identity, item, order_ts, seq, first_seen, last_seen, first_answered)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)", fresh)
        stale = [c.identity for c in candidates if c.identity in already]
        for start in range(0, len(stale), 500):
            chunk = stale[start:start + 500]
            marks = ",".join("?" * len(chunk))
            conn.execute(
                f"UPDATE seen SET last_seen = ? WHERE scope = ? AND last_seen < ? AND identity IN ({marks})",
                [now, scope, now - LAST_SEEN_REFRESH_SECONDS, *chunk])
        conn.execute(
            "INSERT INTO scopes (scope, first_poll, last_poll, next_seq) VALUES (?, ?, ?, ?)"
            " ON CONFLICT(scope) DO UPDATE SET last_poll = excluded.last_poll, next_seq = excluded.next_seq",
            (scope, now, now, next_seq))
        return len(fresh)

    def _transaction(self):
        return self._connections.transaction()

    def record(self, scope, candidates, now, answered=False):
        """Remember ``candidates``: unseen ones wait in the backlog, or count as answered already
        (``answered=True``, for seeding a REST hook with what exists at subscribe time)."""
        with self._transaction() as conn:
            return self._record(conn, scope, candidates, now, answered)

    def answer(self, scope, candidates, now, new_limit, redelivery_seconds, redelivery_limit):
        with self._transaction() as conn:
            self._record(conn, scope, candidates, now, answered=False)
            claimed = conn.execute(
                "SELECT identity, item, order_ts, seq FROM seen WHERE scope = ? AND first_answered IS NULL"
                " ORDER BY order_ts, seq LIMIT ?", (scope, new_limit)).fetchall()
            conn.executemany("UPDATE seen SET first_answered = ? WHERE scope = ? AND identity = ?",
                             [(now, scope, r[0]) for r in claimed])
            claimed_ids = {r[0] for r in claimed}
            repeats = conn.execute(
                "SELECT identity, item, order_ts, seq FROM seen WHERE scope = ? AND first_answered >= ?"
                " AND first_answered IS NOT NULL ORDER BY order_ts DESC, seq DESC LIMIT ?",
                (scope, now - redelivery_seconds, redelivery_limit + len(claimed_ids))).fetchall()
        repeats = [r for r in repeats if r[0] not in claimed_ids][:redelivery_limit]
        rows = sorted(claimed + repeats, key=lambda r: (r[2], r[3]), reverse=True)
        return [fast_json.loads(r[1]) for r in rows]

    def pending(self, scope, limit):
        """Up to ``limit`` backlog items of ``scope``, oldest first, without claiming them."""
        rows = self._connection().execute(
            "SELECT item FROM seen WHERE scope = ? AND first_answered IS NULL ORDER BY order_ts, seq LIMIT ?",
            (scope, limit)).fetchall()
        return [fast_json.loads(r[0]) for r in rows]

    def mark_answered(self, scope, identities, now):
        """Take ``identities`` out of the backlog (after they were delivered)."""
        with self._transaction() as conn:
            conn.executemany(
                "UPDATE seen SET first_answered = ? WHERE scope = ? AND identity = ? AND first_answered IS NULL",
                [(now, scope, identity) for identity in identities])

    def forget_scope(self, scope):
        with self._transaction() as conn:
            conn.execute("DELETE FROM seen WHERE scope = ?", (scope,))
            conn.execute("DELETE FROM scopes WHERE scope = ?", (scope,))

    def backlog(self, scope):
        """How many seen items of ``scope`` wait to be answered."""
        row = self._connection().execute(
            "SELECT COUNT(*) FROM seen WHERE scope = ? AND first_answered IS NULL", (scope,)).fetchone()
        return row[0]

    def prune(self, now, retention_seconds):
        cutoff = now - retention_seconds
        conn = self._connection()
        cursor = conn.execute("DELETE FROM seen WHERE last_seen < ?", (cutoff,))
        conn.execute("DELETE FROM scopes WHERE last_poll < ?", (cutoff,))
        return cursor.rowcount

    def maybe_prune(self, now, retention_seconds):
        """Prune at most once an hour per process; cheap to call on every poll."""
        if now - self._last_prune < PRUNE_EVERY_SECONDS:
            return 0
        self._last_prune = now
        return self.prune(now, retention_seconds)

    def close(self):
        self._connections.close()
