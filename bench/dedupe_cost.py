"""Dedupe cost: ``SqliteDedupeStore.answer`` on pages of 100, 1,000 and 10,000 candidates,
against a store that already holds a million seen identities; and the store's size on disk.

The million rows are written straight into the store's own table (its schema, made by
``SqliteDedupeStore``) with ``executemany`` in one transaction: 100 scopes of 10,000
identities, each item a contact-sized JSON object, first answered over the past 30 days
except each scope's newest 100, answered ten minutes ago (so a poll also redelivers, as
one within the redelivery window does). The measured scope is one of the hundred.

Two pages per size: every candidate already seen (a Zap's steady state: GHL's page holds
what was answered before) and every candidate new (a burst). Each is timed several times
and the median reported; new candidates are new on every repetition.
"""

import json
import os
import statistics
import tempfile
import time

from triggers.dedupe_store import SqliteDedupeStore
from triggers.identity import candidate_for

SCOPES = 100
PER_SCOPE = 10_000
LIST_RECORD = {"response": {"id_field": "id", "sort_field": "dateAdded", "dedupe": "new"}}


def contact(n, base_ms):
    ms = base_ms + n * 1000
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000)) + f".{ms % 1000:03d}Z"
    return {"id": f"c{n:012d}", "locationId": "bench-location", "firstName": f"First{n}", "lastName": "Bench",
            "contactName": f"First{n} Bench", "email": f"first{n}@example.com", "phone": f"+1555{n:07d}",
            "tags": ["lead", "bench"], "source": "bench", "type": "lead", "country": "US",
            "timezone": "America/New_York", "customFields": [], "dnd": False, "dateAdded": stamp,
            "dateUpdated": stamp}


def build_store(path, total=SCOPES * PER_SCOPE, now=None):
    """A store at ``path`` holding ``total`` seen identities; returns (seconds taken, scope names)."""
    now = time.time() if now is None else now
    store = SqliteDedupeStore(path)
    scopes = [f"bench-scope-{s:03d}" for s in range(SCOPES)]
    per_scope = total // SCOPES
    base_ms = int((now - 40 * 86400) * 1000)
    started = time.perf_counter()
    conn = store._connection()
    conn.execute("BEGIN")

    def rows():
        for s, scope in enumerate(scopes):
            for n in range(per_scope):
                item = contact(s * per_scope + n, base_ms)
                item["ghl_id"] = item["id"]
                order_ts = (base_ms + (s * per_scope + n) * 1000) / 1000.0
                recent = n >= per_scope - 100
                answered = now - 600 if recent else now - 86400 - (per_scope - n) * 200
                yield (scope, item["id"], json.dumps(item), order_ts, n, answered, answered, answered)

    conn.executemany(
        "INSERT INTO seen (scope, identity, item, order_ts, seq, first_seen, last_seen, first_answered)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows())
    conn.executemany("INSERT INTO scopes (scope, first_poll, last_poll, next_seq) VALUES (?, ?, ?, ?)",
                     [(scope, now - 40 * 86400, now - 60, per_scope) for scope in scopes])
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    elapsed = time.perf_counter() - started
    store.close()
    return elapsed, scopes, per_scope, base_ms


def _seen_page(scope_index, per_scope, size, base_ms):
    """The newest ``size`` identities of the scope, as GHL would list them (newest first)."""
    first = scope_index * per_scope + per_scope - size
    items = [contact(n, base_ms) for n in range(first, first + size)]
    return [candidate_for(LIST_RECORD, item) for item in reversed(items)]


def _new_page(start, size, base_ms):
    items = [contact(n, base_ms) for n in range(start, start + size)]
    return [candidate_for(LIST_RECORD, item) for item in reversed(items)]


def measure(path, sizes=(100, 1000, 10_000), repeats=5, total=SCOPES * PER_SCOPE, log=print):
    """Build the store, then time ``answer`` per page size; returns a dict of results."""
    now = time.time()
    log(f"building a store of {total:,} seen identities in {path} ...")
    build_seconds, scopes, per_scope, base_ms = build_store(path, total, now)
    size_bytes = os.path.getsize(path)
    log(f"  built in {build_seconds:.1f}s, {size_bytes / 1e6:.1f} MB on disk")
    store = SqliteDedupeStore(path)
    target = 7
    scope = scopes[target]
    results = {"rows": total, "build_seconds": build_seconds, "file_bytes": size_bytes,
               "bytes_per_million": size_bytes * 1_000_000 / total, "pages": []}
    next_new = total + 10
    for size in sizes:
        if size > per_scope:
            continue
        seen_times, new_times, prepare_times, answered = [], [], [], []
        for _ in range(repeats):
            page = _seen_page(target, per_scope, size, base_ms)
            started = time.perf_counter()
            answer = store.answer(scope, page, now, 100, 3600, 100)
            seen_times.append((time.perf_counter() - started) * 1000)
            answered.append(len(answer))
        for _ in range(repeats):
            items = [contact(n, base_ms) for n in range(next_new, next_new + size)]
            started = time.perf_counter()
            page = [candidate_for(LIST_RECORD, item) for item in reversed(items)]
            prepare_times.append((time.perf_counter() - started) * 1000)
            next_new += size
            started = time.perf_counter()
            store.answer(scope, page, now, 100, 3600, 100)
            new_times.append((time.perf_counter() - started) * 1000)
        row = {"size": size, "seen_ms": statistics.median(seen_times), "new_ms": statistics.median(new_times),
               "candidates_ms": statistics.median(prepare_times), "answered_items": answered[0]}
        results["pages"].append(row)
        log(f"  page of {size:>6,}: all seen {row['seen_ms']:.2f} ms, all new {row['new_ms']:.2f} ms "
            f"(+ {row['candidates_ms']:.2f} ms to make candidates)")
    store.close()
    return results


def main():
    with tempfile.TemporaryDirectory(prefix="bench-dedupe-") as directory:
        print(json.dumps(measure(os.path.join(directory, "dedupe.sqlite3")), indent=1))


if __name__ == "__main__":
    main()

