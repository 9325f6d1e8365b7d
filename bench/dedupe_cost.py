"""Dedupe cost on either store: bytes per remembered identity once the redelivery window has
passed, and ``answer`` on pages of 100, 1,000 and 10,000 candidates against a million
remembered identities.

``measure(settings, identities=1_000_000)`` uses the store ``storage.backend.open_backend``
opens for ``settings`` (SQLite at ``database_path``, or PostgreSQL at ``database_url``): it
must be empty. Everything is written through the store's public API: ``record(...,
answered=True)`` in pages of ``page`` (the bulk path: one write transaction per page), in
100 scopes with 64-hex names as ``triggers.poll.scope_for`` makes them, each item a
contact-sized JSON object. Each scope's newest 100 are recorded as answered ten minutes ago
(so a steady-state poll also redelivers, as one within the redelivery window does), the rest
two redelivery windows ago.

Timings: in one of the scopes, two pages per size: every candidate already remembered (a
Zap's steady state: GHL's page holds what was answered before; timed first, for every size)
and every candidate new (a burst, new on every repetition, up to 100 answered at once). Each
is timed ``repeats`` times and the median reported (the first steady-state answer of a day
refreshes the last-seen days; the others only read).

Size, after the window: ``prune`` once the redelivery window has passed (every body goes,
every identity stays: the 30-day retention keeps them), then for SQLite the file (+ WAL) as
left, with the freed bodies' pages still in it for reuse, and after ``VACUUM``; for
PostgreSQL ``pg_total_relation_size`` of ``dedupe_scopes``, ``seen`` and ``seen_items``
(heap, indexes, TOAST) as left, after ``VACUUM`` and after ``VACUUM FULL``. The headline
``bytes_per_identity`` is the compacted size (SQLite: after ``VACUUM``, which rewrites the
file; PostgreSQL: after ``VACUUM FULL``) over the identities remembered;
``bytes_per_identity_as_left`` what the run left (SQLite gives the pruned bodies' pages back
by itself once they are a quarter of the file: ``triggers.dedupe_store``).

    python -m bench.dedupe_cost [--identities N] [--database-url postgresql://...]
"""

import argparse
import hashlib
import json
import os
import statistics
import tempfile
import time

from triggers.identity import candidate_for

SCOPES = 100
PER_SCOPE = 10_000
RECENT_PER_SCOPE = 100
LIST_RECORD = {"response": {"id_field": "id", "sort_field": "dateAdded", "dedupe": "new"}}
PG_DEDUPE_TABLES = ("dedupe_scopes", "seen", "seen_items")
RETENTION_SECONDS = 30 * 86400


def contact(n, base_ms):
    ms = base_ms + n * 1000
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000)) + f".{ms % 1000:03d}Z"
    return {"id": f"c{n:012d}", "locationId": "bench-location", "firstName": f"First{n}", "lastName": "Bench",
            "contactName": f"First{n} Bench", "email": f"first{n}@example.com", "phone": f"+1555{n:07d}",
            "tags": ["lead", "bench"], "source": "bench", "type": "lead", "country": "US",
            "timezone": "America/New_York", "customFields": [], "dnd": False, "dateAdded": stamp,
            "dateUpdated": stamp}


def scope_name(s):
    return hashlib.sha256(f"bench-dedupe-{s}".encode()).hexdigest()


def _page(numbers, base_ms):
    """Candidates of contacts ``numbers``, newest first (as GHL lists them)."""
    return [candidate_for(LIST_RECORD, contact(n, base_ms)) for n in sorted(numbers, reverse=True)]


def build_store(store, total, now, keep_seconds, page=1000, scopes=SCOPES, log=print):
    """Record ``total`` identities through ``store.record``; returns (seconds, scope names, per scope, base_ms)."""
    names = [scope_name(s) for s in range(scopes)]
    per_scope = max(1, total // scopes)
    recent = min(RECENT_PER_SCOPE, per_scope)
    base_ms = int((now - 40 * 86400) * 1000)
    long_ago = now - 2 * keep_seconds - 60
    started = time.perf_counter()
    for s, scope in enumerate(names):
        first_number = s * per_scope
        old_end = first_number + per_scope - recent
        for start in range(first_number, old_end, page):
            store.record(scope, _page(range(start, min(old_end, start + page)), base_ms), long_ago, answered=True)
        store.record(scope, _page(range(old_end, first_number + per_scope), base_ms), now - 600, answered=True)
        if (s + 1) % max(1, scopes // 5) == 0:
            log(f"  {(s + 1) * per_scope:,} identities recorded ({time.perf_counter() - started:.0f}s)")
    return time.perf_counter() - started, names, per_scope, base_ms


def time_answers(store, scope, scope_index, per_scope, base_ms, now, first_new, sizes, repeats, log=print):
    """Median ``answer`` times per page size, every steady-state page first (a burst leaves a
    backlog, after which a poll is no longer a steady state); the backlog the bursts leave is
    then answered. Returns (rows, identities added by the new pages)."""
    sizes = [size for size in sizes if size <= per_scope]
    rows = {size: {"size": size} for size in sizes}
    newest = scope_index * per_scope + per_scope
    for size in sizes:
        times, answered = [], []
        for _ in range(repeats):
            candidates = _page(range(newest - size, newest), base_ms)
            started = time.perf_counter()
            answered.append(len(store.answer(scope, candidates, now, 100, 3600, 100)))
            times.append((time.perf_counter() - started) * 1000)
        rows[size].update(seen_ms=statistics.median(times), answered_items=answered[-1])
    next_new = first_new
    for size in sizes:
        times, prepare_times = [], []
        for _ in range(repeats):
            started = time.perf_counter()
            candidates = _page(range(next_new, next_new + size), base_ms)
            prepare_times.append((time.perf_counter() - started) * 1000)
            next_new += size
            started = time.perf_counter()
            store.answer(scope, candidates, now, 100, 3600, 100)
            times.append((time.perf_counter() - started) * 1000)
        rows[size].update(new_ms=statistics.median(times), candidates_ms=statistics.median(prepare_times))
    store.answer(scope, [], now, next_new, 0, 0)  # the bursts' backlog: answered, so its bodies can go
    for row in rows.values():
        log(f"  page of {row['size']:>6,}: all seen {row['seen_ms']:.2f} ms (answers {row['answered_items']}),"
            f" all new {row['new_ms']:.2f} ms (+ {row['candidates_ms']:.2f} ms to make candidates)")
    return list(rows.values()), next_new - first_new


def sqlite_sizes(path):
    """{"as_left": bytes of the file and its WAL after a checkpoint, "vacuumed": after VACUUM, "free_pages"}."""
    import sqlite3
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        files = lambda: sum(os.path.getsize(path + s) for s in ("", "-wal") if os.path.exists(path + s))  # noqa: E731
        free = conn.execute("PRAGMA freelist_count").fetchone()[0]
        as_left = files()
        conn.execute("VACUUM")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        return {"as_left": as_left, "vacuumed": files(), "free_pages": free}
    finally:
        conn.close()


def postgres_sizes(database_url):
    """{"as_left", "vacuumed", "vacuumed_full", "tables"}: pg_total_relation_size of PG_DEDUPE_TABLES."""
    from storage.postgres.pool import connect
    sizes_sql = "SELECT t, COALESCE(pg_total_relation_size(to_regclass(t)), 0) FROM unnest(%s::text[]) AS t"
    with connect(database_url, statement_timeout_ms=None) as conn:
        measure = lambda: dict(conn.execute(sizes_sql, (list(PG_DEDUPE_TABLES),)).fetchall())  # noqa: E731
        as_left = measure()
        present = [t for t in PG_DEDUPE_TABLES if conn.execute("SELECT to_regclass(%s)", (t,)).fetchone()[0]]
        for table in present:
            conn.execute(f"VACUUM {table}")
        vacuumed = measure()
        for table in present:
            conn.execute(f"VACUUM FULL {table}")
        full = measure()
    return {"as_left": sum(as_left.values()), "vacuumed": sum(vacuumed.values()),
            "vacuumed_full": sum(full.values()), "tables": vacuumed, "tables_full": full}


def measure(settings, identities=SCOPES * PER_SCOPE, sizes=(100, 1000, 10_000), repeats=5, page=1000,
            scopes=SCOPES, log=print, total=None):
    """Fill the (empty) store ``settings`` select with ``identities``, time ``answer`` per page
    size, then measure its size once the redelivery window has passed; returns a dict.

    ``settings``: ``server.config.Settings``, or a SQLite file's path (what callers passed
    before there were two backends); ``total`` is the old name of ``identities``."""
    from storage.backend import open_backend
    settings = _settings_of(settings)
    identities = total if total is not None else identities
    keep_seconds = settings.redelivery_minutes * 60
    backend = open_backend(settings)
    log(f"dedupe cost on {backend.name}: {identities:,} identities recorded in pages of {page:,} ...")
    now = time.time()
    try:
        store = backend.dedupe_store()
        build_seconds, names, per_scope, base_ms = build_store(store, identities, now, keep_seconds, page=page,
                                                               scopes=scopes, log=log)
        remembered = per_scope * len(names)
        log(f"  built in {build_seconds:.1f}s")
        target = min(7, len(names) - 1)
        pages, added = time_answers(store, names[target], target, per_scope, base_ms, now, remembered + 10,
                                    sizes, repeats, log=log)
        remembered += added
        after_window = now + keep_seconds + 60
        store.prune(after_window, RETENTION_SECONDS)
    finally:
        backend.close()
    if backend.name == "sqlite":
        sizes_found = sqlite_sizes(settings.database_path)
    else:
        sizes_found = postgres_sizes(settings.database_url)
    size = sizes_found.get("vacuumed_full", sizes_found["vacuumed"])  # compact: SQLite's VACUUM rewrites the file
    result = {"backend": backend.name, "rows": remembered, "build_seconds": build_seconds,
              "identities_per_second": per_scope * len(names) / build_seconds if build_seconds else None,
              "bytes": size, "bytes_per_identity": size / remembered,
              "bytes_as_left": sizes_found["as_left"],
              "bytes_per_identity_as_left": sizes_found["as_left"] / remembered,
              "file_bytes": size, "bytes_per_million": size * 1_000_000 / remembered,
              "sizes": sizes_found, "pages": pages}
    if "vacuumed_full" in sizes_found:
        result["bytes_per_identity_after_vacuum"] = sizes_found["vacuumed"] / remembered
    plain = result.get("bytes_per_identity_after_vacuum")
    log(f"  after the redelivery window: {result['bytes_per_identity']:.1f} B per identity compacted "
        f"({size / 1e6:.1f} MB for {remembered:,}); {result['bytes_per_identity_as_left']:.1f} B as left"
        + (f", {plain:.1f} B after VACUUM" if plain is not None else ""))
    return result


def _settings_of(settings):
    if isinstance(settings, (str, os.PathLike)):
        from server.config import Settings
        return Settings(database_path=str(settings))
    return settings


def main(argv=None):
    parser = argparse.ArgumentParser(description="Dedupe cost: answer() timings and bytes per remembered identity.")
    parser.add_argument("--identities", type=int, default=SCOPES * PER_SCOPE)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--database-url", default="",
                        help="an empty PostgreSQL database (default: a SQLite file in a temporary directory)")
    args = parser.parse_args(argv)
    from server.config import Settings
    with tempfile.TemporaryDirectory(prefix="bench-dedupe-") as directory:
        settings = Settings(database_path=os.path.join(directory, "dedupe.sqlite3"), database_url=args.database_url)
        print(json.dumps(measure(settings, identities=args.identities, repeats=args.repeats), indent=1))


if __name__ == "__main__":
    main()
