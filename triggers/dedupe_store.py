"""The dedupe store: per scope, every identity seen, and when it was first answered.

``DedupeStore`` is the interface the polling code uses; ``SqliteDedupeStore`` owns every
SQLite detail (through sqlite-utils), so another database can be added without touching
trigger code.

Rows of ``seen``: (scope, identity) -> the item as emitted, its order key, when it was first
seen, last seen (refreshed at most daily, for retention) and first answered (NULL while it
waits in the backlog). ``answer`` claims a batch of the backlog in one write transaction, so
concurrent polls of one scope never claim the same new item twice and never lose one.

Change triggers (``triggers.changes``) also keep, per scope, a *baseline* per GHL record:
rows of ``watched``, (scope id, GHL id) -> the watched values seen last (compact JSON), the
record's version, a change counter and when it was last seen; ``watch_scopes`` gives each
such scope a small integer id (never reused), its first poll, how many changes it has
detected and where a scanning trigger reads next. ``answer`` and ``record`` take a ``ChangeBatch`` in place of candidates: the
comparison with the baselines, the new baselines and the items it fires are all written in
the same write transaction, so concurrent polls never detect a change twice and a crash
never loses one.
"""

from abc import ABC, abstractmethod
from dataclasses import dataclass

import sqlite_utils

from storage import fast_json
from storage.sqlite import SqliteConnections
from triggers.changes import KEEP_POSITION, Baseline

LAST_SEEN_REFRESH_SECONDS = 86400
PRUNE_EVERY_SECONDS = 3600
CHUNK = 500


@dataclass(frozen=True)
class WatchScope:
    """A change trigger's scope: when it was first polled, and where a scanning trigger reads next."""

    first_poll: float
    scan_from: dict = None


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
        (at most ``redelivery_limit``), all newest first. ``candidates`` may be a
        ``triggers.changes.ChangeBatch``: it is resolved against the scope's baselines in
        the same write transaction."""

    @abstractmethod
    def record(self, scope, candidates, now, answered=False):
        """Remember candidates (or a ChangeBatch) without answering them (REST hooks deliver
        from the backlog)."""

    @abstractmethod
    def watch_scope(self, scope):
        """The WatchScope of a change trigger's scope; None before its first poll."""

    @abstractmethod
    def baselines(self, scope, ghl_ids):
        """{GHL id: Baseline} of those of ``ghl_ids`` that ``scope`` has a baseline for."""

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
        # AUTOINCREMENT: a pruned scope's id is never given to another scope.
        conn.execute(
            "CREATE TABLE IF NOT EXISTS watch_scopes (id INTEGER PRIMARY KEY AUTOINCREMENT,"
            " scope TEXT NOT NULL UNIQUE, first_poll REAL NOT NULL, last_poll REAL NOT NULL, scan_from TEXT,"
            " changes INTEGER NOT NULL DEFAULT 0)")
        # WITHOUT ROWID: the rows are small and found by their key; mark is epoch ms or text.
        conn.execute(
            "CREATE TABLE IF NOT EXISTS watched (scope_id INTEGER NOT NULL, ghl_id TEXT NOT NULL,"
            " vals TEXT NOT NULL, mark, changes INTEGER NOT NULL, last_seen INTEGER NOT NULL,"
            " PRIMARY KEY (scope_id, ghl_id)) WITHOUT ROWID")
        conn.execute("CREATE INDEX IF NOT EXISTS watched_by_last_seen ON watched (last_seen)")

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

    # -- change triggers ------------------------------------------------------------------

    def watch_scope(self, scope):
        row = self._connection().execute(
            "SELECT first_poll, scan_from FROM watch_scopes WHERE scope = ?", (scope,)).fetchone()
        if row is None:
            return None
        return WatchScope(row[0], fast_json.loads(row[1]) if row[1] else None)

    def baselines(self, scope, ghl_ids):
        conn = self._connection()
        row = conn.execute("SELECT id FROM watch_scopes WHERE scope = ?", (scope,)).fetchone()
        return {} if row is None else self._baselines(conn, row[0], ghl_ids)

    @staticmethod
    def _baselines(conn, scope_id, ghl_ids):
        ghl_ids = list(ghl_ids)
        found = {}
        for start in range(0, len(ghl_ids), CHUNK):
            chunk = ghl_ids[start:start + CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = conn.execute(
                f"SELECT ghl_id, vals, mark, changes FROM watched WHERE scope_id = ? AND ghl_id IN ({marks})",
                [scope_id, *chunk])
            found.update((r[0], Baseline(fast_json.loads(r[1]), r[2], r[3])) for r in rows)
        return found

    def _resolve_changes(self, conn, scope, batch, now):
        """The candidates a ChangeBatch fires, its baselines written (inside the caller's transaction)."""
        row = conn.execute("SELECT id, first_poll, changes FROM watch_scopes WHERE scope = ?", (scope,)).fetchone()
        if row is None:
            scope_id = conn.execute("INSERT INTO watch_scopes (scope, first_poll, last_poll) VALUES (?, ?, ?)",
                                    (scope, now, now)).lastrowid
            first_poll, counted = None, 0
        else:
            scope_id, first_poll, counted = row
        resolution = batch.resolve(self._baselines(conn, scope_id, batch.ghl_ids), first_poll, now, counted)
        if batch.scan_from is KEEP_POSITION:
            conn.execute("UPDATE watch_scopes SET last_poll = ?, changes = ? WHERE id = ?",
                         (now, resolution.counted, scope_id))
        else:
            conn.execute("UPDATE watch_scopes SET last_poll = ?, changes = ?, scan_from = ? WHERE id = ?",
                         (now, resolution.counted, fast_json.dumps(batch.scan_from) if batch.scan_from else None,
                          scope_id))
        seen_at = int(now)
        conn.executemany(
            "INSERT OR REPLACE INTO watched (scope_id, ghl_id, vals, mark, changes, last_seen)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [(scope_id, ghl_id, fast_json.dumps(b.values), b.mark, b.changes, seen_at)
             for ghl_id, b in resolution.baselines.items()])
        for start in range(0, len(resolution.unchanged), CHUNK):
            chunk = resolution.unchanged[start:start + CHUNK]
            marks = ",".join("?" * len(chunk))
            conn.execute(
                f"UPDATE watched SET last_seen = ? WHERE scope_id = ? AND last_seen < ? AND ghl_id IN ({marks})",
                [seen_at, scope_id, seen_at - LAST_SEEN_REFRESH_SECONDS, *chunk])
        return resolution.candidates

    def _candidates(self, conn, scope, candidates, now):
        if hasattr(candidates, "resolve"):
            return self._resolve_changes(conn, scope, candidates, now)
        return candidates

    # -- answering ------------------------------------------------------------------------

    def record(self, scope, candidates, now, answered=False):
        """Remember ``candidates``: unseen ones wait in the backlog, or count as answered already
        (``answered=True``, for seeding a REST hook with what exists at subscribe time)."""
        with self._transaction() as conn:
            candidates = self._candidates(conn, scope, candidates, now)
            return self._record(conn, scope, candidates, now, answered)

    def answer(self, scope, candidates, now, new_limit, redelivery_seconds, redelivery_limit):
        with self._transaction() as conn:
            candidates = self._candidates(conn, scope, candidates, now)
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
            row = conn.execute("SELECT id FROM watch_scopes WHERE scope = ?", (scope,)).fetchone()
            if row is not None:
                conn.execute("DELETE FROM watched WHERE scope_id = ?", (row[0],))
                conn.execute("DELETE FROM watch_scopes WHERE id = ?", (row[0],))

    def backlog(self, scope):
        """How many seen items of ``scope`` wait to be answered."""
        row = self._connection().execute(
            "SELECT COUNT(*) FROM seen WHERE scope = ? AND first_answered IS NULL", (scope,)).fetchone()
        return row[0]

    def prune(self, now, retention_seconds):
        """Forget identities and baselines not seen for ``retention_seconds``, and scopes not
        polled for as long (their baselines were last seen no later than their last poll)."""
        cutoff = now - retention_seconds
        conn = self._connection()
        cursor = conn.execute("DELETE FROM seen WHERE last_seen < ?", (cutoff,))
        conn.execute("DELETE FROM scopes WHERE last_poll < ?", (cutoff,))
        conn.execute("DELETE FROM watched WHERE last_seen < ?", (cutoff,))
        conn.execute("DELETE FROM watch_scopes WHERE last_poll < ?", (cutoff,))
        return cursor.rowcount

    def maybe_prune(self, now, retention_seconds):
        """Prune at most once an hour per process; cheap to call on every poll."""
        if now - self._last_prune < PRUNE_EVERY_SECONDS:
            return 0
        self._last_prune = now
        return self.prune(now, retention_seconds)

    def close(self):
        self._connections.close()
