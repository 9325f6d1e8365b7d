"""The SQLite dedupe store: backlog order, redelivery window, isolation, retention, concurrency."""

import multiprocessing

from triggers.dedupe_store import SqliteDedupeStore
from triggers.identity import Candidate

HOUR = 3600


def candidates(ids, base_ts=1_700_000_000):
    """Newest first, as GHL lists them: higher number = newer."""
    return [Candidate(str(i), {"id": str(i), "n": i}, float(base_ts + i)) for i in sorted(ids, reverse=True)]


def answer(store, scope, cands, now, new_limit=100, window=HOUR, repeats=100):
    return store.answer(scope, cands, now, new_limit, window, repeats)


def ids(items):
    return [item["id"] for item in items]


def test_new_items_are_answered_newest_first_then_repeated_only_within_the_window(tmp_path):
    store = SqliteDedupeStore(str(tmp_path / "d.sqlite3"))
    first = answer(store, "s", candidates(range(5)), now=1000)
    assert ids(first) == ["4", "3", "2", "1", "0"]
    again = answer(store, "s", candidates(range(5)), now=1000 + HOUR - 1)
    assert ids(again) == ["4", "3", "2", "1", "0"]
    assert answer(store, "s", candidates(range(5)), now=1000 + HOUR + 1) == []


def test_a_backlog_drains_oldest_first_in_batches_without_loss_or_repeat(tmp_path):
    store = SqliteDedupeStore(str(tmp_path / "d.sqlite3"))
    burst = candidates(range(250))
    delivered = []
    for poll in range(4):
        items = answer(store, "s", burst, now=1000 + poll * 2 * HOUR, new_limit=100)
        delivered.extend(ids(items))
    assert sorted(delivered, key=int) == [str(i) for i in range(250)]
    assert len(delivered) == 250
    assert store.backlog("s") == 0


def test_first_batch_of_a_backlog_is_the_oldest_hundred(tmp_path):
    store = SqliteDedupeStore(str(tmp_path / "d.sqlite3"))
    items = answer(store, "s", candidates(range(250)), now=1000, new_limit=100)
    assert ids(items) == [str(i) for i in range(99, -1, -1)]


def test_scopes_are_isolated(tmp_path):
    store = SqliteDedupeStore(str(tmp_path / "d.sqlite3"))
    answer(store, "a", candidates(range(3)), now=1000)
    assert ids(answer(store, "b", candidates(range(3)), now=1000 + 2 * HOUR)) == ["2", "1", "0"]
    assert answer(store, "a", candidates(range(3)), now=1000 + 2 * HOUR) == []
    assert store.has_scope("a") and store.has_scope("b") and not store.has_scope("c")


def test_state_survives_reopening_the_file(tmp_path):
    path = str(tmp_path / "d.sqlite3")
    answer(SqliteDedupeStore(path), "s", candidates(range(3)), now=1000)
    reopened = SqliteDedupeStore(path)
    assert reopened.known("s", ["0", "1", "2", "3"]) == {"0", "1", "2"}
    assert answer(reopened, "s", candidates(range(4)), now=1000 + 2 * HOUR) == [{"id": "3", "n": 3}]


def test_prune_forgets_only_identities_not_seen_for_the_retention_period(tmp_path):
    store = SqliteDedupeStore(str(tmp_path / "d.sqlite3"))
    day = 86400
    answer(store, "s", candidates([1, 2]), now=0)
    # Item 2 is still listed by GHL two days later: its last_seen is refreshed.
    answer(store, "s", candidates([2]), now=2 * day)
    assert store.prune(now=31 * day, retention_seconds=30 * day) == 1
    assert store.known("s", ["1", "2"]) == {"2"}


def _claim(path, scope, barrier, queue):
    store = SqliteDedupeStore(path)
    barrier.wait()
    items = store.answer(scope, candidates(range(40)), 1000.0, 100, 0, 0)
    queue.put(ids(items))


def test_concurrent_polls_of_one_scope_claim_each_new_item_exactly_once(tmp_path):
    path = str(tmp_path / "d.sqlite3")
    SqliteDedupeStore(path)
    context = multiprocessing.get_context("fork")
    barrier, queue = context.Barrier(4), context.Queue()
    workers = [context.Process(target=_claim, args=(path, "s", barrier, queue)) for _ in range(4)]
    for worker in workers:
        worker.start()
    results = [queue.get(timeout=30) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)
    claimed = [i for result in results for i in result]
    assert sorted(claimed, key=int) == [str(i) for i in range(40)]


def test_a_database_made_before_change_triggers_gains_their_tables_on_open(tmp_path):
    import sqlite3
    path = str(tmp_path / "d.sqlite3")
    answer(SqliteDedupeStore(path), "s", candidates(range(3)), now=1000)
    conn = sqlite3.connect(path)
    conn.execute("DROP TABLE watched")
    conn.execute("DROP TABLE watch_scopes")
    conn.commit()
    conn.close()
    reopened = SqliteDedupeStore(path)
    assert reopened.known("s", ["0", "1", "2"]) == {"0", "1", "2"}
    assert reopened.watch_scope("s") is None and reopened.baselines("s", ["0"]) == {}
    tables = {row[0] for row in reopened._connection().execute("SELECT name FROM sqlite_master")}
    assert {"watched", "watch_scopes", "watched_by_last_seen"} <= tables
