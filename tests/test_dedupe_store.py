"""The dedupe store's contract, on both backends (the ``backend`` fixture: SQLite and
PostgreSQL): backlog order, redelivery window, isolation, seeding, the outbox, retention,
concurrency. SQLite-only cases (its file's schema) are at the end."""

import multiprocessing

from storage.backend import open_backend
from triggers.dedupe_store import SqliteDedupeStore
from triggers.identity import Candidate

HOUR = 3600
DAY = 86400


def candidates(ids, base_ts=1_700_000_000):
    """Newest first, as GHL lists them: higher number = newer."""
    return [Candidate(str(i), {"id": str(i), "n": i}, float(base_ts + i)) for i in sorted(ids, reverse=True)]


def answer(store, scope, cands, now, new_limit=100, window=HOUR, repeats=100):
    return store.answer(scope, cands, now, new_limit, window, repeats)


def ids(items):
    return [item["id"] for item in items]


def test_new_items_are_answered_newest_first_then_repeated_only_within_the_window(backend):
    store = backend.dedupe_store()
    first = answer(store, "s", candidates(range(5)), now=1000)
    assert ids(first) == ["4", "3", "2", "1", "0"]
    again = answer(store, "s", candidates(range(5)), now=1000 + HOUR - 1)
    assert ids(again) == ["4", "3", "2", "1", "0"]
    assert answer(store, "s", candidates(range(5)), now=1000 + HOUR + 1) == []


def test_new_items_and_repeats_come_together_newest_first_with_repeats_capped(backend):
    store = backend.dedupe_store()
    answer(store, "s", candidates(range(5)), now=1000)
    both = answer(store, "s", candidates(range(7)), now=1010)
    assert ids(both) == ["6", "5", "4", "3", "2", "1", "0"]
    # At most ``repeats`` of the earlier answers (the newest), beside every new item.
    capped = answer(store, "s", candidates(range(9)), now=1020, repeats=2)
    assert ids(capped) == ["8", "7", "6", "5"]
    assert ids(answer(store, "s", candidates(range(9)), now=1030, repeats=0)) == []


def test_a_backlog_drains_oldest_first_in_batches_without_loss_or_repeat(backend):
    store = backend.dedupe_store()
    burst = candidates(range(250))
    delivered = []
    for poll in range(4):
        items = answer(store, "s", burst, now=1000 + poll * 2 * HOUR, new_limit=100)
        delivered.extend(ids(items))
    assert sorted(delivered, key=int) == [str(i) for i in range(250)]
    assert len(delivered) == 250
    assert store.backlog("s") == 0


def test_first_batch_of_a_backlog_is_the_oldest_hundred(backend):
    store = backend.dedupe_store()
    items = answer(store, "s", candidates(range(250)), now=1000, new_limit=100)
    assert ids(items) == [str(i) for i in range(99, -1, -1)]
    assert backend.dedupe_store().backlog("s") == 150


def test_a_backlog_is_answered_even_when_the_poll_brings_nothing_new(backend):
    store = backend.dedupe_store()
    answer(store, "s", candidates(range(150)), now=1000, new_limit=100, window=0)
    # The same page again (all known): the rest of the backlog still comes out.
    assert ids(answer(store, "s", candidates(range(150)), now=1010, new_limit=100, window=0)) == [
        str(i) for i in range(149, 99, -1)]
    assert answer(store, "s", candidates(range(150)), now=1020, window=0) == []


def test_items_without_an_order_time_take_the_poll_time_and_keep_their_listing_order(backend):
    store = backend.dedupe_store()
    undated = [Candidate(name, {"id": name}, None) for name in ("c", "b", "a")]  # newest first
    assert ids(answer(store, "s", undated, now=1000)) == ["c", "b", "a"]
    assert ids(answer(store, "s", [Candidate("d", {"id": "d"}, 999.0)] + undated, now=1001, window=0)) == ["d"]


def test_scopes_are_isolated(backend):
    store = backend.dedupe_store()
    answer(store, "a", candidates(range(3)), now=1000)
    assert ids(answer(store, "b", candidates(range(3)), now=1000 + 2 * HOUR)) == ["2", "1", "0"]
    assert answer(store, "a", candidates(range(3)), now=1000 + 2 * HOUR) == []
    assert store.has_scope("a") and store.has_scope("b") and not store.has_scope("c")


def test_an_empty_first_poll_makes_the_scope(backend):
    store = backend.dedupe_store()
    assert answer(store, "s", [], now=1000) == [] and store.has_scope("s")
    assert store.record("r", [], now=1000) == 0 and store.has_scope("r")


def test_state_survives_reopening_the_store(backend, backend_settings):
    answer(backend.dedupe_store(), "s", candidates(range(3)), now=1000)
    backend.close()
    reopened = open_backend(backend_settings)
    try:
        store = reopened.dedupe_store()
        assert store.known("s", ["0", "1", "2", "3"]) == {"0", "1", "2"}
        assert answer(store, "s", candidates(range(4)), now=1000 + 2 * HOUR) == [{"id": "3", "n": 3}]
    finally:
        reopened.close()


def test_recording_fills_the_backlog_and_delivered_items_leave_it(backend):
    store = backend.dedupe_store()
    assert store.record("hook:1", candidates(range(3)), now=1000) == 3
    assert store.record("hook:1", candidates(range(5)), now=1010) == 2
    assert store.backlog("hook:1") == 5
    assert ids(store.pending("hook:1", 3)) == ["0", "1", "2"]
    store.mark_answered("hook:1", ["0", "1"], now=1020)
    assert store.backlog("hook:1") == 3 and ids(store.pending("hook:1", 10)) == ["2", "3", "4"]
    store.mark_answered("hook:1", ["1", "2", "unknown"], now=1030)
    assert ids(store.pending("hook:1", 10)) == ["3", "4"]


def test_seeding_records_what_exists_without_a_backlog(backend):
    store = backend.dedupe_store()
    assert store.record("hook:1", candidates(range(3)), now=1000, answered=True) == 3
    assert store.backlog("hook:1") == 0 and store.pending("hook:1", 10) == []
    assert store.record("hook:1", candidates(range(4)), now=1010) == 1
    assert ids(store.pending("hook:1", 10)) == ["3"]


def test_an_identity_listed_twice_in_one_poll_counts_once(backend):
    store = backend.dedupe_store()
    twice = candidates([2, 1]) + candidates([1])
    assert store.record("s", twice, now=1000) == 2
    assert store.backlog("s") == 2


def test_forget_scope_forgets_everything_of_that_scope_only(backend):
    store = backend.dedupe_store()
    store.record("hook:1", candidates(range(3)), now=1000)
    store.record("hook:2", candidates(range(3)), now=1000)
    store.forget_scope("hook:1")
    store.forget_scope("never-polled")
    assert not store.has_scope("hook:1") and store.known("hook:1", ["0"]) == set()
    assert store.backlog("hook:1") == 0 and store.backlog("hook:2") == 3
    assert store.record("hook:1", candidates(range(3)), now=2000) == 3


def test_prune_forgets_only_identities_not_seen_for_the_retention_period(backend):
    store = backend.dedupe_store()
    answer(store, "s", candidates([1, 2]), now=0)
    # Item 2 is still listed by GHL two days later: its last_seen is refreshed.
    answer(store, "s", candidates([2]), now=2 * DAY)
    assert store.prune(now=31 * DAY, retention_seconds=30 * DAY) == 1
    assert store.known("s", ["1", "2"]) == {"2"}


def test_identities_listed_on_every_poll_are_kept_however_long_the_scope_lives(backend):
    store = backend.dedupe_store()
    for day in range(0, 50, 10):
        answer(store, "s", candidates(range(3)), now=day * DAY + 5)
    assert store.prune(now=55 * DAY, retention_seconds=30 * DAY) == 0
    assert store.known("s", ["0", "1", "2"]) == {"0", "1", "2"} and store.has_scope("s")
    assert answer(store, "s", candidates(range(3)), now=56 * DAY, window=0) == []


def test_bodies_go_after_the_window_but_the_identities_stay(backend):
    store = backend.dedupe_store()
    answer(store, "s", candidates(range(3)), now=1000)
    store.record("hook:1", candidates(range(2)), now=1000)
    store.prune(now=1000 + 2 * HOUR, retention_seconds=30 * DAY)
    assert store.known("s", ["0", "1", "2"]) == {"0", "1", "2"}
    assert answer(store, "s", candidates(range(4)), now=1000 + 2 * HOUR) == [{"id": "3", "n": 3}]
    # The backlog keeps its bodies, however old.
    assert ids(store.pending("hook:1", 10)) == ["0", "1"]


def test_a_scope_not_polled_for_the_retention_is_forgotten_whole(backend):
    store = backend.dedupe_store()
    answer(store, "old", candidates(range(3)), now=0)
    answer(store, "kept", candidates(range(3)), now=0)
    answer(store, "kept", candidates(range(3)), now=25 * DAY)
    assert store.prune(now=31 * DAY, retention_seconds=30 * DAY) == 3
    assert not store.has_scope("old") and store.known("old", ["0"]) == set()
    assert store.has_scope("kept") and store.known("kept", ["0", "1", "2"]) == {"0", "1", "2"}


def test_a_hook_outbox_never_redelivers_what_it_delivered(backend):
    store = backend.dedupe_store()
    store.record("hook:1", candidates(range(2)), now=1000, answered=True)  # seeded at subscribe time
    store.record("hook:1", candidates(range(5)), now=1010)
    store.mark_answered("hook:1", ["2", "3"], now=1020)
    assert ids(store.pending("hook:1", 10)) == ["4"]
    assert ids(answer(store, "hook:1", candidates(range(5)), now=1030)) == ["4"]


def test_maybe_prune_prunes_at_most_hourly(backend):
    store = backend.dedupe_store()
    answer(store, "s", candidates([1]), now=0)
    assert store.maybe_prune(now=40 * DAY, retention_seconds=30 * DAY) == 1
    answer(store, "t", candidates([1]), now=0)
    assert store.maybe_prune(now=40 * DAY + 60, retention_seconds=30 * DAY) == 0
    assert store.maybe_prune(now=40 * DAY + HOUR, retention_seconds=30 * DAY) == 1


def _claim(settings, scope, barrier, queue):
    backend = open_backend(settings)
    store = backend.dedupe_store()
    barrier.wait()
    claimed = []
    for poll in range(5):
        claimed.extend(ids(store.answer(scope, candidates(range(40)), 1000.0 + poll, 10, 0, 0)))
    queue.put(claimed)
    backend.close()


def test_concurrent_polls_of_one_scope_claim_each_new_item_exactly_once(backend, backend_settings):
    context = multiprocessing.get_context("fork")
    barrier, queue = context.Barrier(4), context.Queue()
    workers = [context.Process(target=_claim, args=(backend_settings, "s", barrier, queue)) for _ in range(4)]
    for worker in workers:
        worker.start()
    results = [queue.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)
    claimed = [i for result in results for i in result]
    assert sorted(claimed, key=int) == [str(i) for i in range(40)]
    assert backend.dedupe_store().backlog("s") == 0


# -- SQLite only --------------------------------------------------------------------------------

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
