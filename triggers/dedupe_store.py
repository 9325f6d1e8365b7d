"""The dedupe store: per scope, every identity seen, and when it was first answered.

``storage.contract.DedupeStore`` is the interface the polling code uses; ``SqliteDedupeStore``
owns every SQLite detail; ``storage.postgres`` holds the PostgreSQL one. The schema and its
versions are ``storage.sqlite_migrations``'.

Lean rows. ``dedupe_scopes`` gives each scope (a 64-hex name) a small integer id, never reused,
with its first and last poll and the next sequence number. ``seen`` keeps, per scope and
identity, only what dedupe needs for as long as the retention: (scope id, ident, last_day),
where ``ident`` is the identity's 64-bit hash (``storage.idents.ident_of``: a collision, about
n²/2⁶⁵ for n identities of one scope, would hide one new item) and ``last_day`` the epoch day it
was last listed, refreshed when the day changes (retention only needs days). ``seen_items``
keeps an item's body, order key and sequence number and when it was first answered (NULL
while it waits in the backlog) only while it can still be answered: in the backlog, and for
``keep_bodies_seconds`` (the redelivery window) after its first answer; the hourly prune drops
older bodies, and a REST hook's outbox (scope ``hook:<id>``, which never redelivers) drops a
body as soon as it is delivered. ``answer`` claims a batch of the backlog in one write
transaction, so concurrent polls of one scope never claim the same new item twice and never
lose one.

The steady state writes nothing: ``answer`` (and ``record``) first read, in one statement,
whether every candidate is known and was seen today, whether anything waits in the backlog,
and whether anything was answered within the redelivery window, and whether the scope was
polled today; when nothing needs writing they answer from reads alone (one statement, two
when items are redelivered) and take no write lock. Anything else takes the locked path. A
scope's last poll is thus refreshed at most daily, which is all the 30-day retention needs.

Change triggers (``triggers.changes``) also keep, per scope, a *baseline* per GHL record:
rows of ``watched``, (scope id, GHL id) -> the watched values seen last (compact JSON), the
record's version, a change counter and when it was last seen; ``watch_scopes`` gives each
such scope a small integer id (never reused), its first poll, how many changes it has
detected and where a scanning trigger reads next. ``answer`` and ``record`` take a
``ChangeBatch`` in place of candidates: the comparison with the baselines, the new baselines
and the items it fires are all written in the same write transaction, so concurrent polls
never detect a change twice and a crash never loses one. A batch whose resolution would write
nothing (no change, no new record, nothing to refresh) takes the read-only path too.
"""

from storage import fast_json
from storage.contract import DedupeStore, WatchScope
from storage.idents import ident_of
from storage.sqlite import SqliteConnections
from storage.sqlite_migrations import ensure_schema
from triggers.changes import KEEP_POSITION, Baseline

DAY_SECONDS = 86400
LAST_SEEN_REFRESH_SECONDS = DAY_SECONDS
CHUNK = 500
FREE_PAGES_KEPT = 256  # 1 MiB of 4 KiB pages: never worth giving back
HOOK_SCOPE_PREFIX = "hook:"  # triggers.hooks_store.SCOPE_PREFIX (imported there from here would loop)

# The steady state's read: the scope, how many of the candidates are known and seen today, and
# whether anything waits in the backlog or was answered within the redelivery window.
QUIET_SQL = """
SELECT d.id, d.last_poll, {known},
       EXISTS (SELECT 1 FROM seen_items AS b WHERE b.scope_id = d.id AND b.first_answered IS NULL),
       EXISTS (SELECT 1 FROM seen_items AS r WHERE r.scope_id = d.id AND r.first_answered >= ?)
FROM dedupe_scopes AS d WHERE d.scope = ?
"""
QUIET_KNOWN_SQL = ("(SELECT COUNT(*) FROM seen AS n"
                   " WHERE n.scope_id = d.id AND n.last_day >= ? AND n.ident IN ({marks}))")
REPEATS_SQL = ("SELECT ident, item, order_ts, seq FROM seen_items WHERE scope_id = ? AND first_answered >= ?"
               " ORDER BY order_ts DESC, seq DESC LIMIT ?")
# A change trigger's scope with the baselines of the records on its page.
WATCH_READ_SQL = """
SELECT w.id, w.first_poll, w.last_poll, w.changes, w.scan_from,
       b.ghl_id, b.vals, b.mark, b.changes, b.last_seen
FROM watch_scopes AS w LEFT JOIN watched AS b ON b.scope_id = w.id AND b.ghl_id IN ({marks})
WHERE w.scope = ?
"""


def day_of(now):
    return int(now // DAY_SECONDS)


def _is_change_batch(candidates):
    return hasattr(candidates, "resolve")


def _chunks(values, size=CHUNK):
    for start in range(0, len(values), size):
        yield values[start:start + size]


def _marks(values):
    return ",".join("?" * len(values))


def _unique_by_ident(candidates):
    """{ident: candidate} of each distinct identity, oldest listing first (candidates arrive
    newest first; an identity listed twice keeps its oldest listing)."""
    chosen = {}
    for candidate in reversed(candidates):
        chosen.setdefault(ident_of(candidate.identity), candidate)
    return chosen


class SqliteDedupeStore(DedupeStore):
    def __init__(self, path, keep_bodies_seconds=3600):
        self.path = path
        self.keep_bodies_seconds = keep_bodies_seconds
        self._connections = SqliteConnections(path)
        ensure_schema(self._connections, keep_bodies_seconds)

    def _connection(self):
        return self._connections.get()

    def _transaction(self):
        return self._connections.transaction()

    # -- reads ------------------------------------------------------------------------------

    def has_scope(self, scope):
        row = self._connection().execute("SELECT 1 FROM dedupe_scopes WHERE scope = ?", (scope,)).fetchone()
        return row is not None

    def known(self, scope, identities):
        by_ident = {}
        for identity in identities:
            by_ident.setdefault(ident_of(identity), []).append(identity)
        conn = self._connection()
        found = set()
        for chunk in _chunks(list(by_ident)):
            rows = conn.execute(
                f"SELECT n.ident FROM seen AS n WHERE n.scope_id = (SELECT id FROM dedupe_scopes WHERE scope = ?)"
                f" AND n.ident IN ({_marks(chunk)})", [scope, *chunk])
            for row in rows:
                found.update(by_ident[row[0]])
        return found

    def pending(self, scope, limit):
        """Up to ``limit`` backlog items of ``scope``, oldest first, without claiming them."""
        rows = self._connection().execute(
            "SELECT item FROM seen_items WHERE scope_id = (SELECT id FROM dedupe_scopes WHERE scope = ?)"
            " AND first_answered IS NULL ORDER BY order_ts, seq LIMIT ?", (scope, limit)).fetchall()
        return [fast_json.loads(r[0]) for r in rows]

    def backlog(self, scope):
        """How many seen items of ``scope`` wait to be answered."""
        return self._connection().execute(
            "SELECT COUNT(*) FROM seen_items WHERE scope_id = (SELECT id FROM dedupe_scopes WHERE scope = ?)"
            " AND first_answered IS NULL", (scope,)).fetchone()[0]

    # -- the steady state: reads only -------------------------------------------------------

    def _quiet(self, conn, scope, candidates, now, since=None, redelivery_limit=0):
        """When this poll would change nothing (every candidate known and seen today, the scope
        polled today, and for an answer nothing in the backlog): the items to answer (the
        redelivery window's; [] for a record). None when the locked path must run."""
        if _is_change_batch(candidates):
            candidates = self._quiet_changes(conn, scope, candidates, now)
            if candidates is None:
                return None
        today = day_of(now)
        idents = list({ident_of(c.identity) for c in candidates})
        first, rest = idents[:CHUNK], idents[CHUNK:]
        known_sql = QUIET_KNOWN_SQL.format(marks=_marks(first)) if first else "0"
        params = ([today, *first] if first else []) + [now if since is None else since, scope]
        row = conn.execute(QUIET_SQL.format(known=known_sql), params).fetchone()
        if row is None:
            return None
        scope_id, last_poll, known, backlog, in_window = row
        if day_of(last_poll) < today or (backlog and since is not None):
            return None
        for chunk in _chunks(rest):
            known += conn.execute(
                f"SELECT COUNT(*) FROM seen WHERE scope_id = ? AND last_day >= ? AND ident IN ({_marks(chunk)})",
                [scope_id, today, *chunk]).fetchone()[0]
        if known < len(idents):
            return None
        if since is None or not in_window or redelivery_limit <= 0:
            return []
        return conn.execute(REPEATS_SQL, (scope_id, since, redelivery_limit)).fetchall()

    def _quiet_changes(self, conn, scope, batch, now):
        """A ChangeBatch's candidates when resolving it would write nothing (no change, no new
        record, no baseline to refresh, the scope's position and last poll current): always
        [], since every candidate comes with a baseline to write. None otherwise."""
        ghl_ids = batch.ghl_ids
        if len(ghl_ids) > CHUNK:
            return None
        rows = conn.execute(WATCH_READ_SQL.format(marks=_marks(ghl_ids) or "NULL"), [*ghl_ids, scope]).fetchall()
        if not rows:
            return None
        _, first_poll, last_poll, counted, scan_from = rows[0][:5]
        if day_of(last_poll) < day_of(now):
            return None
        baselines, last_seen = {}, {}
        for r in rows:
            if r[5] is not None:
                baselines[r[5]] = Baseline(fast_json.loads(r[6]), r[7], r[8])
                last_seen[r[5]] = r[9]
        quiet = batch.writes_nothing(baselines, last_seen, first_poll, now, counted,
                                     fast_json.loads(scan_from) if scan_from else None,
                                     int(now) - LAST_SEEN_REFRESH_SECONDS)
        return [] if quiet else None

    # -- the locked path --------------------------------------------------------------------

    def _record(self, conn, scope, candidates, now, answered):
        """Insert unseen candidates (inside the caller's transaction); returns (scope id, how
        many were new)."""
        today = day_of(now)
        row = conn.execute("SELECT id, next_seq FROM dedupe_scopes WHERE scope = ?", (scope,)).fetchone()
        if row is None:
            scope_id = conn.execute(
                "INSERT INTO dedupe_scopes (scope, first_poll, last_poll, next_seq) VALUES (?, ?, ?, 0)",
                (scope, now, now)).lastrowid
            next_seq = 0
        else:
            scope_id, next_seq = row
        chosen = _unique_by_ident(candidates)
        known = {}
        for chunk in _chunks(list(chosen)):
            known.update(conn.execute(
                f"SELECT ident, last_day FROM seen WHERE scope_id = ? AND ident IN ({_marks(chunk)})",
                [scope_id, *chunk]).fetchall())
        # A REST hook's outbox never redelivers: what it records as delivered needs no body.
        keep_bodies = not (answered and scope.startswith(HOOK_SCOPE_PREFIX))
        first_answered = now if answered else None
        fresh, bodies = [], []
        for ident, candidate in chosen.items():  # oldest first: older items get lower numbers
            if ident in known:
                continue
            fresh.append((scope_id, today, ident))
            if keep_bodies:
                order_ts = candidate.sort_ts if candidate.sort_ts is not None else now
                bodies.append((scope_id, ident, fast_json.dumps(candidate.item), order_ts, next_seq, first_answered))
            next_seq += 1
        conn.executemany("INSERT INTO seen (scope_id, last_day, ident) VALUES (?, ?, ?)", fresh)
        # OR REPLACE: a body whose identity was pruned in between would otherwise block the insert.
        conn.executemany("INSERT OR REPLACE INTO seen_items (scope_id, ident, item, order_ts, seq, first_answered)"
                         " VALUES (?, ?, ?, ?, ?, ?)", bodies)
        stale = [ident for ident, day in known.items() if day < today]
        for chunk in _chunks(stale):
            conn.execute(f"UPDATE seen SET last_day = ? WHERE scope_id = ? AND ident IN ({_marks(chunk)})",
                         [today, scope_id, *chunk])
        if row is not None:
            conn.execute("UPDATE dedupe_scopes SET last_poll = ?, next_seq = ? WHERE id = ?",
                         (now, next_seq, scope_id))
        elif next_seq:
            conn.execute("UPDATE dedupe_scopes SET next_seq = ? WHERE id = ?", (next_seq, scope_id))
        return scope_id, len(fresh)

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
        found = {}
        for chunk in _chunks(list(ghl_ids)):
            rows = conn.execute(
                f"SELECT ghl_id, vals, mark, changes FROM watched WHERE scope_id = ? AND ghl_id IN ({_marks(chunk)})",
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
        for chunk in _chunks(resolution.unchanged):
            conn.execute(
                f"UPDATE watched SET last_seen = ? WHERE scope_id = ? AND last_seen < ?"
                f" AND ghl_id IN ({_marks(chunk)})",
                [seen_at, scope_id, seen_at - LAST_SEEN_REFRESH_SECONDS, *chunk])
        return resolution.candidates

    def _candidates(self, conn, scope, candidates, now):
        if _is_change_batch(candidates):
            return self._resolve_changes(conn, scope, candidates, now)
        return candidates

    # -- answering ------------------------------------------------------------------------

    def record(self, scope, candidates, now, answered=False):
        """Remember ``candidates``: unseen ones wait in the backlog, or count as answered already
        (``answered=True``, for seeding a REST hook with what exists at subscribe time)."""
        if self._quiet(self._connection(), scope, candidates, now) is not None:
            return 0
        with self._transaction() as conn:
            candidates = self._candidates(conn, scope, candidates, now)
            return self._record(conn, scope, candidates, now, answered)[1]

    def answer(self, scope, candidates, now, new_limit, redelivery_seconds, redelivery_limit):
        since = now - redelivery_seconds
        quiet = self._quiet(self._connection(), scope, candidates, now, since, redelivery_limit)
        if quiet is not None:
            return [fast_json.loads(r[1]) for r in quiet]
        with self._transaction() as conn:
            candidates = self._candidates(conn, scope, candidates, now)
            scope_id = self._record(conn, scope, candidates, now, answered=False)[0]
            claimed = conn.execute(
                "SELECT ident, item, order_ts, seq FROM seen_items WHERE scope_id = ? AND first_answered IS NULL"
                " ORDER BY order_ts, seq LIMIT ?", (scope_id, new_limit)).fetchall()
            conn.executemany("UPDATE seen_items SET first_answered = ? WHERE scope_id = ? AND ident = ?",
                             [(now, scope_id, r[0]) for r in claimed])
            claimed_idents = {r[0] for r in claimed}
            repeats = conn.execute(REPEATS_SQL, (scope_id, since, redelivery_limit + len(claimed_idents))).fetchall()
        repeats = [r for r in repeats if r[0] not in claimed_idents][:redelivery_limit]
        rows = sorted(claimed + repeats, key=lambda r: (r[2], r[3]), reverse=True)
        return [fast_json.loads(r[1]) for r in rows]

    def mark_answered(self, scope, identities, now):
        """Take ``identities`` out of the backlog (after they were delivered). A REST hook's
        outbox never redelivers, so its delivered bodies go at once."""
        idents = list({ident_of(identity) for identity in identities})
        if not idents:
            return
        with self._transaction() as conn:
            row = conn.execute("SELECT id FROM dedupe_scopes WHERE scope = ?", (scope,)).fetchone()
            if row is None:
                return
            for chunk in _chunks(idents):
                if scope.startswith(HOOK_SCOPE_PREFIX):
                    conn.execute(f"DELETE FROM seen_items WHERE scope_id = ? AND first_answered IS NULL"
                                 f" AND ident IN ({_marks(chunk)})", [row[0], *chunk])
                else:
                    conn.execute(f"UPDATE seen_items SET first_answered = ? WHERE scope_id = ?"
                                 f" AND first_answered IS NULL AND ident IN ({_marks(chunk)})", [now, row[0], *chunk])

    # -- forgetting -----------------------------------------------------------------------

    def forget_scope(self, scope):
        with self._transaction() as conn:
            row = conn.execute("SELECT id FROM dedupe_scopes WHERE scope = ?", (scope,)).fetchone()
            if row is not None:
                self._forget_scope_id(conn, row[0])
            row = conn.execute("SELECT id FROM watch_scopes WHERE scope = ?", (scope,)).fetchone()
            if row is not None:
                conn.execute("DELETE FROM watched WHERE scope_id = ?", (row[0],))
                conn.execute("DELETE FROM watch_scopes WHERE id = ?", (row[0],))

    @staticmethod
    def _forget_scope_id(conn, scope_id):
        gone = conn.execute("DELETE FROM seen WHERE scope_id = ?", (scope_id,)).rowcount
        conn.execute("DELETE FROM seen_items WHERE scope_id = ?", (scope_id,))
        conn.execute("DELETE FROM dedupe_scopes WHERE id = ?", (scope_id,))
        return gone

    def prune(self, now, retention_seconds):
        """Forget identities and baselines not seen for ``retention_seconds`` (in whole days),
        scopes not polled for as long (with what they remember), and bodies answered more than
        ``keep_bodies_seconds`` ago; returns how many identities went."""
        cutoff = now - retention_seconds
        with self._transaction() as conn:
            gone = conn.execute("DELETE FROM seen WHERE last_day < ?", (day_of(cutoff),)).rowcount
            for (scope_id,) in conn.execute("SELECT id FROM dedupe_scopes WHERE last_poll < ?", (cutoff,)).fetchall():
                gone += self._forget_scope_id(conn, scope_id)
            # Bodies past the window, and any whose identity was just forgotten (a stale backlog).
            conn.execute("DELETE FROM seen_items WHERE first_answered < ? OR NOT EXISTS (SELECT 1 FROM seen AS n"
                         " WHERE n.scope_id = seen_items.scope_id AND n.ident = seen_items.ident)",
                         (now - self.keep_bodies_seconds,))
            conn.execute("DELETE FROM watched WHERE last_seen < ?", (cutoff,))
            conn.execute("DELETE FROM watch_scopes WHERE last_poll < ?", (cutoff,))
        self._release_free_pages(self._connection())
        return gone

    @staticmethod
    def _release_free_pages(conn):
        """Give free pages back to the file system when they are a quarter of the file or more
        (bodies pruned after a burst); fewer are kept for the next bodies. Files are
        ``auto_vacuum = INCREMENTAL`` (``storage.sqlite_migrations``); on others this does nothing."""
        free = conn.execute("PRAGMA freelist_count").fetchone()[0]
        if free >= max(FREE_PAGES_KEPT, conn.execute("PRAGMA page_count").fetchone()[0] // 4):
            # executescript steps it to the end: execute would free one page (one page per step).
            conn.executescript(f"PRAGMA incremental_vacuum({int(free)})")

    def close(self):
        self._connections.close()
