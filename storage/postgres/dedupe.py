"""The dedupe store in PostgreSQL (``storage.contract.DedupeStore``), with lean rows.

Layout (``storage.postgres.migrations``): a scope's 64-hex name is stored once, in
``dedupe_scopes``, which gives it an integer id; each identity it has seen is a 16-byte row
of ``seen`` (scope id, epoch day last seen, ``storage.idents.ident_of``); an item's body lives
in ``seen_items`` only while it can still be answered: in the backlog and for
``keep_bodies_seconds`` (the redelivery window) after its first answer; a REST hook's outbox
(scope ``hook:<id>``, which never redelivers) drops a body as soon as it is delivered. The
same layout and rules as ``triggers.dedupe_store.SqliteDedupeStore``.

Locking: every write to a scope's identities, backlog or baselines runs in one transaction
that first locks the scope's row (``UPDATE dedupe_scopes ... RETURNING``, or the insert that
creates it), so concurrent polls of one scope, on any host, queue there while other scopes
go on in parallel: an item is never claimed twice and never lost. A change trigger's scope
locks its ``watch_scopes`` row first, then the ``dedupe_scopes`` row (``forget_scope`` takes
them in the same order, so they cannot deadlock).

The steady state costs one read: ``answer`` and ``record`` first look, in one read-only
statement, whether every candidate is known (and was seen today), nothing waits in the
backlog and the scope was polled today; if so they answer from that read (the redelivery
window's items) and write nothing. Anything else takes the locked path. Last-seen days and
last polls are refreshed at most daily, which is all retention needs.
"""

import time

from storage import fast_json
from storage.contract import DedupeStore, WatchScope
from storage.idents import ident_of
from storage.postgres.migrations import BODIES_COMPACTION_LOCK
from triggers.changes import KEEP_POSITION, Baseline

DAY_SECONDS = 86400
HOOK_SCOPE_PREFIX = "hook:"  # triggers.hooks_store.SCOPE_PREFIX
# Pruning this many bodies at once compacts the bodies table (see _compact_bodies).
COMPACT_AFTER_BODIES = 10_000

# The read that answers a steady-state poll: the scope, which candidates are known and seen
# today, whether a backlog waits, and the redelivery window's items, newest first.
QUIET_ANSWER_SQL = """
SELECT s.last_poll,
       ARRAY(SELECT n.ident FROM seen AS n
             WHERE n.scope_id = s.id AND n.ident = ANY(%(idents)b::int8[]) AND n.last_day >= %(today)s),
       EXISTS(SELECT 1 FROM seen_items AS b WHERE b.scope_id = s.id AND b.first_answered IS NULL),
       ARRAY(SELECT i.item FROM seen_items AS i
             WHERE i.scope_id = s.id AND i.first_answered >= %(since)s
             ORDER BY i.order_ts DESC, i.seq DESC LIMIT %(limit)s)
FROM dedupe_scopes AS s WHERE s.scope = %(scope)s
"""

QUIET_RECORD_SQL = """
SELECT s.last_poll,
       ARRAY(SELECT n.ident FROM seen AS n
             WHERE n.scope_id = s.id AND n.ident = ANY(%(idents)b::int8[]) AND n.last_day >= %(today)s)
FROM dedupe_scopes AS s WHERE s.scope = %(scope)s
"""

# Under the scope's lock: claim the oldest of the backlog, and read the redelivery window as it
# was before the claim (a data-modifying CTE's changes are invisible to its own statement), so
# the repeats never include what this answer claims.
CLAIM_SQL = """
WITH claimed AS (
    UPDATE seen_items SET first_answered = %(now)s
    WHERE scope_id = %(sid)s AND first_answered IS NULL AND ident IN (
        SELECT ident FROM seen_items WHERE scope_id = %(sid)s AND first_answered IS NULL
        ORDER BY order_ts, seq LIMIT %(new_limit)s)
    RETURNING item, order_ts, seq)
SELECT item, order_ts, seq FROM claimed
UNION ALL
(SELECT item, order_ts, seq FROM seen_items
 WHERE scope_id = %(sid)s AND first_answered >= %(since)s
 ORDER BY order_ts DESC, seq DESC LIMIT %(redelivery_limit)s)
"""

INSERT_SQL = """
WITH scope AS (UPDATE dedupe_scopes SET next_seq = %(next_seq)s WHERE id = %(sid)s),
     lean AS (INSERT INTO seen (scope_id, last_day, ident)
              SELECT %(sid)s, %(today)s, unnest(%(idents)b::int8[]) ON CONFLICT DO NOTHING)
INSERT INTO seen_items AS i (scope_id, ident, seq, order_ts, first_answered, item)
SELECT %(sid)s, u.ident, u.seq, u.order_ts, %(answered)s::float8, u.item
FROM unnest(%(body_idents)b::int8[], %(seqs)b::int8[], %(order_ts)b::float8[], %(items)b::text[])
     AS u(ident, seq, order_ts, item)
ON CONFLICT (scope_id, ident) DO UPDATE SET seq = EXCLUDED.seq, order_ts = EXCLUDED.order_ts,
    first_answered = EXCLUDED.first_answered, item = EXCLUDED.item
"""

WATCH_READ_SQL = """
SELECT w.id, w.first_poll, w.last_poll, w.changes, w.scan_from,
       b.ghl_id, b.vals, b.mark_ms, b.mark_text, b.changes, b.last_seen
FROM watch_scopes AS w
LEFT JOIN watched AS b ON b.scope_id = w.id AND b.ghl_id = ANY(%(ghl_ids)b::text[])
WHERE w.scope = %(scope)s
"""

BASELINES_SQL = """
SELECT ghl_id, vals, mark_ms, mark_text, changes, last_seen FROM watched
WHERE scope_id = %(sid)s AND ghl_id = ANY(%(ghl_ids)b::text[])
"""

WRITE_BASELINES_SQL = """
WITH scope AS (UPDATE watch_scopes SET changes = %(counted)s,
                   scan_from = CASE WHEN %(keep_position)s THEN scan_from ELSE %(scan_from)s END
               WHERE id = %(sid)s),
     refreshed AS (UPDATE watched SET last_seen = %(seen_at)s
                   WHERE scope_id = %(sid)s AND last_seen < %(stale_before)s
                     AND ghl_id = ANY(%(unchanged)b::text[]))
INSERT INTO watched AS w (scope_id, ghl_id, vals, mark_ms, mark_text, changes, last_seen)
SELECT %(sid)s, u.ghl_id, u.vals, u.mark_ms, u.mark_text, u.changes, %(seen_at)s
FROM unnest(%(ghl_ids)b::text[], %(vals)b::text[], %(mark_ms)b::int8[], %(mark_text)b::text[],
            %(changes)b::int8[]) AS u(ghl_id, vals, mark_ms, mark_text, changes)
ON CONFLICT (scope_id, ghl_id) DO UPDATE SET vals = EXCLUDED.vals, mark_ms = EXCLUDED.mark_ms,
    mark_text = EXCLUDED.mark_text, changes = EXCLUDED.changes, last_seen = EXCLUDED.last_seen
"""

INT64_MIN, INT64_MAX = -(2 ** 63), 2 ** 63 - 1


def day_of(now):
    return int(now // DAY_SECONDS)


def _is_change_batch(candidates):
    return hasattr(candidates, "resolve")


def _mark_columns(mark):
    """A baseline's mark as (mark_ms, mark_text): epoch ms is an int, anything else text."""
    if isinstance(mark, int) and not isinstance(mark, bool) and INT64_MIN <= mark <= INT64_MAX:
        return mark, None
    return None, None if mark is None else str(mark)


def _mark_of(mark_ms, mark_text):
    return mark_ms if mark_ms is not None else mark_text


def _unique_by_ident(candidates):
    """(ident, candidate) of each distinct identity, oldest listing first (candidates arrive
    newest first; an identity listed twice keeps its oldest listing, as SQLite's does)."""
    chosen = {}
    for candidate in reversed(candidates):
        chosen.setdefault(ident_of(candidate.identity), candidate)
    return chosen


class PostgresDedupeStore(DedupeStore):
    def __init__(self, connections, keep_bodies_seconds=3600, clock=time.time):
        self._connections = connections
        self.keep_bodies_seconds = keep_bodies_seconds
        self._clock = clock

    # -- reads ------------------------------------------------------------------------------

    def has_scope(self, scope):
        with self._connections.connection() as conn:
            return conn.execute("SELECT 1 FROM dedupe_scopes WHERE scope = %s", (scope,)).fetchone() is not None

    def known(self, scope, identities):
        by_ident = {ident_of(identity): identity for identity in identities}
        if not by_ident:
            return set()
        with self._connections.connection() as conn:
            rows = conn.execute(
                "SELECT n.ident FROM seen AS n JOIN dedupe_scopes AS s ON s.id = n.scope_id"
                " WHERE s.scope = %s AND n.ident = ANY(%b::int8[])", (scope, list(by_ident))).fetchall()
        return {by_ident[row[0]] for row in rows}

    def pending(self, scope, limit):
        with self._connections.connection() as conn:
            rows = conn.execute(
                "SELECT i.item FROM seen_items AS i JOIN dedupe_scopes AS s ON s.id = i.scope_id"
                " WHERE s.scope = %s AND i.first_answered IS NULL ORDER BY i.order_ts, i.seq LIMIT %s",
                (scope, limit)).fetchall()
        return [fast_json.loads(row[0]) for row in rows]

    def backlog(self, scope):
        with self._connections.connection() as conn:
            return conn.execute(
                "SELECT COUNT(*) FROM seen_items AS i JOIN dedupe_scopes AS s ON s.id = i.scope_id"
                " WHERE s.scope = %s AND i.first_answered IS NULL", (scope,)).fetchone()[0]

    def watch_scope(self, scope):
        with self._connections.connection() as conn:
            row = conn.execute("SELECT first_poll, scan_from FROM watch_scopes WHERE scope = %s",
                               (scope,)).fetchone()
        if row is None:
            return None
        return WatchScope(row[0], fast_json.loads(row[1]) if row[1] else None)

    def baselines(self, scope, ghl_ids):
        ghl_ids = list(ghl_ids)
        if not ghl_ids:
            return {}
        with self._connections.connection() as conn:
            rows = conn.execute(
                "SELECT b.ghl_id, b.vals, b.mark_ms, b.mark_text, b.changes FROM watched AS b"
                " JOIN watch_scopes AS w ON w.id = b.scope_id WHERE w.scope = %s AND b.ghl_id = ANY(%b::text[])",
                (scope, ghl_ids)).fetchall()
        return {r[0]: Baseline(fast_json.loads(r[1]), _mark_of(r[2], r[3]), r[4]) for r in rows}

    # -- answering --------------------------------------------------------------------------

    def answer(self, scope, candidates, now, new_limit, redelivery_seconds, redelivery_limit):
        since = now - redelivery_seconds
        with self._connections.connection() as conn:
            quiet = self._quiet(conn, scope, candidates, now, since=since, redelivery_limit=redelivery_limit)
            if quiet is not None:
                items = quiet
            else:
                with conn.transaction():
                    candidates = self._candidates(conn, scope, candidates, now)
                    scope_id = self._record(conn, scope, candidates, now, answered=False)[0]
                    rows = conn.execute(CLAIM_SQL, {
                        "now": now, "sid": scope_id, "new_limit": new_limit, "since": since,
                        "redelivery_limit": redelivery_limit}).fetchall()
                rows.sort(key=lambda r: (r[1], r[2]), reverse=True)
                items = [r[0] for r in rows]
        return [fast_json.loads(item) for item in items]

    def record(self, scope, candidates, now, answered=False):
        with self._connections.connection() as conn:
            if self._quiet(conn, scope, candidates, now) is not None:
                return 0
            with conn.transaction():
                candidates = self._candidates(conn, scope, candidates, now)
                return self._record(conn, scope, candidates, now, answered)[1]

    def _quiet(self, conn, scope, candidates, now, since=None, redelivery_limit=0):
        """When this poll changes nothing (every candidate known and seen today, the scope polled
        today, and for an answer no backlog): the items to answer (the redelivery window's;
        [] for a record). None when the locked path must run. Reads only."""
        today = day_of(now)
        if _is_change_batch(candidates):
            candidates = self._quiet_changes(conn, scope, candidates, now)
            if candidates is None:
                return None
        idents = {ident_of(c.identity) for c in candidates}
        params = {"scope": scope, "idents": list(idents), "today": today}
        if since is None:
            row = conn.execute(QUIET_RECORD_SQL, params).fetchone()
        else:
            row = conn.execute(QUIET_ANSWER_SQL, {**params, "since": since, "limit": redelivery_limit}).fetchone()
        if row is None or day_of(row[0]) < today or len(row[1]) < len(idents):
            return None  # a new scope, not polled today, or something new or not seen today
        if since is None:
            return []
        backlog, repeats = row[2], row[3]
        return None if backlog else repeats

    def _quiet_changes(self, conn, scope, batch, now):
        """A ChangeBatch's candidates when resolving it would write nothing (no change, no new
        record, no baseline to refresh, the scope's position and last poll current): always
        [], since any candidate comes with a baseline to write. None otherwise."""
        rows = conn.execute(WATCH_READ_SQL, {"scope": scope, "ghl_ids": batch.ghl_ids}).fetchall()
        if not rows:
            return None
        _, first_poll, last_poll, counted, scan_from = rows[0][:5]
        if day_of(last_poll) < day_of(now):
            return None
        baselines, last_seen = {}, {}
        for r in rows:
            if r[5] is not None:
                baselines[r[5]] = Baseline(fast_json.loads(r[6]), _mark_of(r[7], r[8]), r[9])
                last_seen[r[5]] = r[10]
        quiet = batch.writes_nothing(baselines, last_seen, first_poll, now, counted,
                                     fast_json.loads(scan_from) if scan_from else None, int(now) - DAY_SECONDS)
        return [] if quiet else None

    def _candidates(self, conn, scope, candidates, now):
        if _is_change_batch(candidates):
            return self._resolve_changes(conn, scope, candidates, now)
        return candidates

    def _lock_scope(self, conn, scope, now):
        """Lock ``scope``'s row for the transaction (creating it on its first poll) and mark it
        polled; returns (id, next_seq, whether it was created now)."""
        while True:
            row = conn.execute("UPDATE dedupe_scopes SET last_poll = %s WHERE scope = %s RETURNING id, next_seq",
                               (now, scope)).fetchone()
            if row is not None:
                return row[0], row[1], False
            # ON CONFLICT waits for a concurrent creator; then the UPDATE above finds its row.
            row = conn.execute(
                "INSERT INTO dedupe_scopes (scope, first_poll, last_poll) VALUES (%s, %s, %s)"
                " ON CONFLICT (scope) DO NOTHING RETURNING id, next_seq", (scope, now, now)).fetchone()
            if row is not None:
                return row[0], row[1], True

    def _record(self, conn, scope, candidates, now, answered):
        """Insert unseen candidates inside the caller's transaction, the scope locked first;
        returns (scope id, how many were new)."""
        scope_id, next_seq, created = self._lock_scope(conn, scope, now)
        today = day_of(now)
        chosen = _unique_by_ident(candidates)
        known = {}
        if chosen and not created:  # (a new scope knows nothing)
            known = dict(conn.execute("SELECT ident, last_day FROM seen WHERE scope_id = %s"
                                      " AND ident = ANY(%b::int8[])", (scope_id, list(chosen))).fetchall())
        fresh = [(ident, c) for ident, c in chosen.items() if ident not in known]
        if fresh:
            # A REST hook's outbox never redelivers: what it records as delivered needs no body.
            bodies = [] if answered and scope.startswith(HOOK_SCOPE_PREFIX) else fresh
            seqs = dict(zip((ident for ident, _ in fresh), range(next_seq, next_seq + len(fresh))))
            conn.execute(INSERT_SQL, {
                "sid": scope_id, "today": today, "next_seq": next_seq + len(fresh),
                "idents": [ident for ident, _ in fresh],
                "body_idents": [ident for ident, _ in bodies], "seqs": [seqs[ident] for ident, _ in bodies],
                "order_ts": [float(c.sort_ts if c.sort_ts is not None else now) for _, c in bodies],
                "items": [fast_json.dumps(c.item) for _, c in bodies],
                "answered": now if answered else None})
        stale = [ident for ident, day in known.items() if day < today]
        if stale:
            conn.execute("UPDATE seen SET last_day = %s WHERE scope_id = %s AND ident = ANY(%b::int8[])"
                         " AND last_day < %s", (today, scope_id, stale, today))
        return scope_id, len(fresh)

    # -- change triggers --------------------------------------------------------------------

    def _lock_watch_scope(self, conn, scope, now):
        """Lock (or create) the change trigger scope's row: (id, first_poll or None, changes)."""
        while True:
            row = conn.execute("UPDATE watch_scopes SET last_poll = %s WHERE scope = %s"
                               " RETURNING id, first_poll, changes", (now, scope)).fetchone()
            if row is not None:
                return row
            row = conn.execute("INSERT INTO watch_scopes (scope, first_poll, last_poll) VALUES (%s, %s, %s)"
                               " ON CONFLICT (scope) DO NOTHING RETURNING id", (scope, now, now)).fetchone()
            if row is not None:
                return row[0], None, 0

    def _resolve_changes(self, conn, scope, batch, now):
        """The candidates a ChangeBatch fires, its baselines written (inside the caller's transaction)."""
        scope_id, first_poll, counted = self._lock_watch_scope(conn, scope, now)
        ghl_ids = batch.ghl_ids
        rows = conn.execute(BASELINES_SQL, {"sid": scope_id, "ghl_ids": ghl_ids}).fetchall() if ghl_ids else []
        baselines = {r[0]: Baseline(fast_json.loads(r[1]), _mark_of(r[2], r[3]), r[4]) for r in rows}
        resolution = batch.resolve(baselines, first_poll, now, counted)
        written = resolution.baselines
        marks = [_mark_columns(b.mark) for b in written.values()]
        seen_at = int(now)
        keep_position = batch.scan_from is KEEP_POSITION
        conn.execute(WRITE_BASELINES_SQL, {
            "sid": scope_id, "counted": resolution.counted, "keep_position": keep_position,
            "scan_from": None if keep_position or not batch.scan_from else fast_json.dumps(batch.scan_from),
            "seen_at": seen_at, "stale_before": seen_at - DAY_SECONDS, "unchanged": list(resolution.unchanged),
            "ghl_ids": list(written), "vals": [fast_json.dumps(b.values) for b in written.values()],
            "mark_ms": [m[0] for m in marks], "mark_text": [m[1] for m in marks],
            "changes": [b.changes for b in written.values()]})
        return resolution.candidates

    # -- the backlog ------------------------------------------------------------------------

    def mark_answered(self, scope, identities, now):
        """Take ``identities`` out of the backlog (after they were delivered). A REST hook's
        outbox never redelivers, so its delivered bodies go at once."""
        idents = list({ident_of(identity) for identity in identities})
        if not idents:
            return
        if scope.startswith(HOOK_SCOPE_PREFIX):
            sql = ("DELETE FROM seen_items WHERE scope_id = (SELECT id FROM dedupe_scopes WHERE scope = %(scope)s)"
                   " AND ident = ANY(%(idents)b::int8[]) AND first_answered IS NULL")
        else:
            sql = ("UPDATE seen_items SET first_answered = %(now)s WHERE scope_id = (SELECT id FROM dedupe_scopes"
                   " WHERE scope = %(scope)s) AND ident = ANY(%(idents)b::int8[]) AND first_answered IS NULL")
        with self._connections.connection() as conn:
            conn.execute(sql, {"now": now, "scope": scope, "idents": idents})

    def forget_scope(self, scope):
        with self._connections.transaction() as conn:
            # The same lock order as a change trigger's answer: its watch scope, then its scope.
            watch = conn.execute("SELECT id FROM watch_scopes WHERE scope = %s FOR UPDATE", (scope,)).fetchone()
            row = conn.execute("SELECT id FROM dedupe_scopes WHERE scope = %s FOR UPDATE", (scope,)).fetchone()
            if row is not None:
                conn.execute("WITH lean AS (DELETE FROM seen WHERE scope_id = %(sid)s),"
                             " bodies AS (DELETE FROM seen_items WHERE scope_id = %(sid)s)"
                             " DELETE FROM dedupe_scopes WHERE id = %(sid)s", {"sid": row[0]})
            if watch is not None:
                conn.execute("WITH baselines AS (DELETE FROM watched WHERE scope_id = %(wid)s)"
                             " DELETE FROM watch_scopes WHERE id = %(wid)s", {"wid": watch[0]})

    # -- retention --------------------------------------------------------------------------

    def prune(self, now, retention_seconds):
        """Forget identities and baselines not seen for ``retention_seconds``, scopes not polled
        for as long, and bodies answered more than ``keep_bodies_seconds`` ago (or whose
        identity went); returns how many identities went."""
        cutoff = now - retention_seconds
        with self._connections.connection() as conn:
            # An identity last seen on day d was seen before day d + 1 began: it goes once that
            # is past the cutoff; a body still in the backlog goes with it.
            gone = conn.execute(
                "WITH gone AS (DELETE FROM seen WHERE last_day < %s RETURNING scope_id, ident),"
                " bodies AS (DELETE FROM seen_items AS i USING gone"
                " WHERE i.scope_id = gone.scope_id AND i.ident = gone.ident)"
                " SELECT COUNT(*) FROM gone", (day_of(cutoff),)).fetchone()[0]
            # Scopes not polled for the retention, with everything they remember. (A poll that
            # holds the scope's lock meanwhile refreshes last_poll: the recheck then spares it.)
            gone += conn.execute(
                "WITH old AS (DELETE FROM dedupe_scopes WHERE last_poll < %s RETURNING id),"
                " lean AS (DELETE FROM seen WHERE scope_id IN (SELECT id FROM old) RETURNING 1),"
                " bodies AS (DELETE FROM seen_items WHERE scope_id IN (SELECT id FROM old))"
                " SELECT COUNT(*) FROM lean", (cutoff,)).fetchone()[0]
            bodies = conn.execute("DELETE FROM seen_items WHERE first_answered < %s",
                                  (now - self.keep_bodies_seconds,)).rowcount
            conn.execute("DELETE FROM watched WHERE last_seen < %s", (int(cutoff),))
            conn.execute("DELETE FROM watch_scopes WHERE last_poll < %s", (cutoff,))
            if bodies >= COMPACT_AFTER_BODIES:
                self._compact_bodies(conn)
        return gone

    @staticmethod
    def _compact_bodies(conn):
        """Give back the space of many pruned bodies (a burst that left the redelivery window).

        Autovacuum makes a table's free space reusable, but a btree index never shrinks: after
        a burst of a million items, the bodies' indexes would keep ~100 bytes per identity long
        after the bodies went. The table only holds the backlog and the redelivery window, so
        rebuilding its indexes is quick; ``REINDEX`` blocks writes to it meanwhile, so it waits
        at most a second for its lock and gives up (until the next prune) rather than queue
        polls behind it. One process at a time (an advisory lock)."""
        conn.execute("VACUUM seen_items")  # frees the heap (and truncates its empty tail)
        with conn.transaction():
            if not conn.execute("SELECT pg_try_advisory_xact_lock(%s)", (BODIES_COMPACTION_LOCK,)).fetchone()[0]:
                return
            conn.execute("SET LOCAL lock_timeout = '1s'")
            conn.execute("REINDEX TABLE seen_items")

    def close(self):
        self._connections.close()
