"""What only the PostgreSQL store has to prove (``storage.postgres``), on a real server: claims
and leases from several processes and threads, migrations started at once, a starved pool and
an unreachable server answering quickly (and never quoting DATABASE_URL), gevent, the cost
of a steady-state poll, and bytes on disk per remembered identity. The store contract itself
runs on both backends in test_dedupe_store, test_hooks_store and test_rate_budget_and_shared_reads."""

import logging
import multiprocessing
import subprocess
import sys
import threading
import time

import psycopg
import pytest
from psycopg_pool import PoolTimeout

from storage.postgres import InvalidDatabaseUrl, PostgresBackend, migrations
from storage.postgres.pool import connection_kwargs
from triggers.hooks_store import TokenCipher, new_hook_id
from triggers.identity import Candidate

ROOT = __file__.rsplit("/tests/", 1)[0]
PASSWORD = "hunter2-secret"


@pytest.fixture
def pg_url(postgres_server):
    return postgres_server.fresh_database("pgstore")


@pytest.fixture
def pg(pg_url):
    backend = PostgresBackend(pg_url, keep_bodies_seconds=3600, pool_size=4)
    yield backend
    backend.close()


def candidates(ids, base_ts=1_700_000_000):
    return [Candidate(str(i), {"id": str(i), "n": i}, float(base_ts + i)) for i in sorted(ids, reverse=True)]


def rows(url, sql, params=None):
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchall()


# -- the cost of a poll -----------------------------------------------------------------------------

class StatementCounter:
    """Counts the statements and transactions psycopg sends from this process."""

    def __init__(self, monkeypatch):
        self.statements, self.transactions = [], 0
        execute, transaction = psycopg.Cursor.execute, psycopg.Connection.transaction

        def counted_execute(cursor, query, *args, **kwargs):
            self.statements.append(query.split(None, 1)[0])
            return execute(cursor, query, *args, **kwargs)

        def counted_transaction(conn, *args, **kwargs):
            self.transactions += 1
            return transaction(conn, *args, **kwargs)

        monkeypatch.setattr(psycopg.Cursor, "execute", counted_execute)
        monkeypatch.setattr(psycopg.Connection, "transaction", counted_transaction)

    def reset(self):
        self.statements, self.transactions = [], 0


def row_versions(url):
    """xmin of every row of the dedupe tables: any write changes it."""
    tables = ("dedupe_scopes", "seen", "seen_items")
    return [rows(url, f"SELECT xmin::text, ctid::text FROM {table} ORDER BY 2") for table in tables]


def test_a_steady_state_poll_is_one_read_only_statement(pg, pg_url, monkeypatch):
    store = pg.dedupe_store()
    counter = StatementCounter(monkeypatch)
    scope = "s" * 64
    page = [Candidate(f"contact{n:013d}", {"id": f"contact{n:013d}", "n": n}, 1.7e9 + n) for n in range(20)]
    now = 1.8e9
    counter.reset()
    assert len(store.answer(scope, page, now, 100, 3600, 100)) == 20
    assert counter.transactions == 1 and len(counter.statements) <= 5, counter.statements
    before = row_versions(pg_url)
    for window in (3600, 0):  # within the redelivery window (answers the 20 again), and without one
        counter.reset()
        answered = store.answer(scope, page, now + 60, 100, window, 100)
        assert len(answered) == (20 if window else 0)
        assert (len(counter.statements), counter.transactions) == (1, 0), counter.statements
    counter.reset()
    assert store.record(scope, page, now + 61) == 0
    assert (len(counter.statements), counter.transactions) == (1, 0)
    assert row_versions(pg_url) == before, "nothing was written"
    # The next day the locked path runs once, to refresh the days last seen; then quiet again.
    counter.reset()
    store.answer(scope, page, now + 86400, 100, 0, 100)
    assert counter.transactions == 1
    counter.reset()
    store.answer(scope, page, now + 86400 + 60, 100, 0, 100)
    assert (len(counter.statements), counter.transactions) == (1, 0)
    counter.reset()
    assert pg.rate_slots().try_take("location:x", now, 10.25, 95) == 0.0
    assert len(counter.statements) == 1


# -- concurrency across processes and threads ----------------------------------------------------

def _claim_in_threads(url, barrier, queue, threads=4):
    backend = PostgresBackend(url, pool_size=3)
    store = backend.dedupe_store()
    claimed, lock = [], threading.Lock()

    def poll(n):
        now = 1000.0 + n
        while True:
            answered = store.answer("s", candidates(range(300)), now, 7, 0, 0)
            if not answered:
                return
            with lock:
                claimed.extend(item["id"] for item in answered)

    barrier.wait()
    workers = [threading.Thread(target=poll, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    queue.put(claimed)
    backend.close()


def test_processes_and_threads_claiming_one_backlog_never_claim_an_item_twice(pg, pg_url):
    context = multiprocessing.get_context("fork")
    barrier, queue = context.Barrier(3), context.Queue()
    processes = [context.Process(target=_claim_in_threads, args=(pg_url, barrier, queue)) for _ in range(3)]
    for process in processes:
        process.start()
    claimed = [item for _ in processes for item in queue.get(timeout=120)]
    for process in processes:
        process.join(30)
    assert sorted(claimed, key=int) == [str(i) for i in range(300)]
    assert pg.dedupe_store().backlog("s") == 0


def _lease_all(url, worker, barrier, queue):
    backend = PostgresBackend(url, pool_size=2)
    store = backend.hook_store(TokenCipher("k"))
    barrier.wait()
    leased = []
    while (subscription := store.lease_next_due(worker, 5000.0, 300)) is not None:
        leased.append((subscription.id, subscription.lease_owner))
    queue.put(leased)
    backend.close()


def test_workers_leasing_at_once_never_hold_one_subscription_twice(pg, pg_url):
    hooks = pg.hook_store(TokenCipher("k"))
    made = {hooks.create(new_hook_id(), "t", {}, "token", f"owner-{n % 5}", "https://hooks.zapier.com/h", 60,
                         1000.0 + n).id for n in range(40)}
    context = multiprocessing.get_context("fork")
    barrier, queue = context.Barrier(6), context.Queue()
    processes = [context.Process(target=_lease_all, args=(pg_url, f"w{n}", barrier, queue)) for n in range(6)]
    for process in processes:
        process.start()
    leased = [pair for _ in processes for pair in queue.get(timeout=120)]
    for process in processes:
        process.join(30)
    assert sorted(i for i, _ in leased) == sorted(made), "every subscription leased exactly once"
    holders = {i: owner for i, owner in leased}
    assert all(hooks.get(i).lease_owner == holders[i] for i in made)
    assert len({owner for _, owner in leased}) > 1, "the workers leased in parallel"


def test_the_rate_budget_holds_across_processes_taking_at_once(pg, pg_url):
    results, barrier = [], threading.Barrier(8)

    def take():
        backend = PostgresBackend(pg_url, pool_size=1)
        slots = backend.rate_slots()
        barrier.wait()
        results.extend(slots.try_take("location:a", 1000.0, 10.0, 25) for _ in range(5))
        backend.close()

    threads = [threading.Thread(target=take) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert results.count(0.0) == 25 and len(results) == 40
    assert all(wait == pytest.approx(10.0) for wait in results if wait)


def test_concurrent_change_polls_never_fire_a_change_twice(pg_url):
    from triggers.changes import ChangeBatch
    from tests.test_changes import T0, contact, watch
    w = watch("contact_tag_added")
    first = PostgresBackend(pg_url)
    first.dedupe_store().answer("s", ChangeBatch(w, [contact(f"c{n}", T0 - n) for n in range(50)]), T0, 100, 0, 0)
    before = [contact(f"c{n}", T0 - n) for n in range(50)]
    after = [contact(f"c{n}", T0 + 100 + n, ["vip"]) for n in range(50)]
    barrier, results, errors = threading.Barrier(8), [], []

    def poll(snapshot):
        backend = PostgresBackend(pg_url, pool_size=1)
        try:
            barrier.wait()
            for round_ in range(3):
                results.append(backend.dedupe_store().answer("s", ChangeBatch(w, snapshot), T0 + 200 + round_,
                                                             100, 0, 0))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            backend.close()

    threads = [threading.Thread(target=poll, args=(after if n % 2 else before,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    first.close()
    assert not errors
    ids = [item["id"] for answered in results for item in answered]
    assert sorted(ids) == sorted(f"c{n}:1:+vip" for n in range(50)), "each change fired exactly once"


# -- migrations ----------------------------------------------------------------------------------

def _open(url, barrier, queue):
    barrier.wait()
    try:
        backend = PostgresBackend(url)
        backend.dedupe_store().has_scope("s")
        backend.close()
        queue.put("ok")
    except Exception as error:  # pragma: no cover - reported below
        queue.put(repr(error))


def test_processes_starting_at_once_on_an_empty_database_migrate_it_once(pg_url):
    context = multiprocessing.get_context("fork")
    barrier, queue = context.Barrier(8), context.Queue()
    processes = [context.Process(target=_open, args=(pg_url, barrier, queue)) for _ in range(8)]
    for process in processes:
        process.start()
    outcomes = [queue.get(timeout=60) for _ in processes]
    for process in processes:
        process.join(30)
    assert outcomes == ["ok"] * 8
    assert rows(pg_url, "SELECT version FROM schema_migrations") == [(migrations.LATEST,)]
    with psycopg.connect(pg_url, autocommit=True) as conn:
        assert migrations.migrate(conn) == [], "an up-to-date database is left alone"


def test_a_new_step_is_applied_once_however_many_processes_apply_it(pg, pg_url):
    step = (migrations.LATEST + 1, "a test step", "CREATE TABLE step_applied (n integer)")
    applied, barrier = [], threading.Barrier(6)

    def run():
        with psycopg.connect(pg_url, autocommit=True) as conn:
            barrier.wait()
            applied.append(migrations.migrate(conn, migrations.MIGRATIONS + [step]))

    threads = [threading.Thread(target=run) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(applied) == [[]] * 5 + [[step[0]]]
    assert rows(pg_url, "SELECT version FROM schema_migrations ORDER BY 1") == [(1,), (step[0],)]


def test_a_failing_step_leaves_nothing_behind(pg, pg_url):
    broken = (migrations.LATEST + 1, "broken", "CREATE TABLE half_made (n integer); SELECT 1/0")
    with psycopg.connect(pg_url, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.DivisionByZero):
            migrations.migrate(conn, migrations.MIGRATIONS + [broken])
    assert rows(pg_url, "SELECT to_regclass('half_made') IS NULL") == [(True,)]
    assert rows(pg_url, "SELECT MAX(version) FROM schema_migrations") == [(migrations.LATEST,)]


# -- a starved pool, an unreachable server, the URL's password --------------------------------------

def test_a_starved_pool_answers_an_error_quickly_and_recovers(pg_url):
    backend = PostgresBackend(pg_url, pool_size=1, pool_timeout=0.3)
    store = backend.dedupe_store()
    try:
        with backend._connections.connection():  # every connection of the pool is busy
            started = time.monotonic()
            with pytest.raises(PoolTimeout) as caught:
                store.has_scope("s")
            assert time.monotonic() - started < 1.5
        assert backend.is_unavailable(caught.value) and backend.describe(caught.value) == "PoolTimeout"
        assert store.has_scope("s") is False
    finally:
        backend.close()


def test_connections_cut_by_the_server_fail_one_request_and_the_pool_heals(pg, pg_url):
    store = pg.dedupe_store()
    holding, barrier = [], threading.Barrier(3)

    def hold():  # three connections open in the pool
        with pg._connections.connection() as conn:
            conn.execute("SELECT 1")
            barrier.wait()

    threads = [threading.Thread(target=hold) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    database = pg_url.rsplit("/", 1)[1]
    with psycopg.connect(pg_url, autocommit=True) as admin:  # as a server restart would
        holding = admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                                " WHERE datname = %s AND pid <> pg_backend_pid()", (database,)).fetchall()
    assert len(holding) >= 3
    with pytest.raises(psycopg.OperationalError) as caught:
        store.has_scope("s")
    assert pg.is_unavailable(caught.value)
    time.sleep(0.5)  # the pool checks its idle connections and replaces the broken ones
    assert [store.has_scope("s") for _ in range(6)] == [False] * 6


def test_an_unreachable_server_answers_503_kinds_of_errors_and_never_shows_the_password(caplog):
    from bench.harness import free_port
    url = f"postgresql://ghl:{PASSWORD}@127.0.0.1:{free_port()}/postgres"
    caplog.set_level(logging.DEBUG)
    started = time.monotonic()
    backend = PostgresBackend(url, pool_timeout=0.5)  # starts; its schema waits for the server
    try:
        assert PASSWORD not in repr(backend) and PASSWORD not in repr(backend._connections)
        with pytest.raises(psycopg.OperationalError) as caught:
            backend.dedupe_store().has_scope("s")
        assert backend.is_unavailable(caught.value) and PASSWORD not in str(caught.value)
        assert PASSWORD not in backend.describe(caught.value)
        assert backend.writable() is False
        assert time.monotonic() - started < 10
    finally:
        backend.close()
    assert PASSWORD not in caplog.text
    with pytest.raises(InvalidDatabaseUrl) as invalid:
        connection_kwargs(f"postgresql://ghl:{PASSWORD}%zz@127.0.0.1/postgres")
    assert PASSWORD not in str(invalid.value)


def test_a_process_started_before_its_server_migrates_once_the_server_answers():
    from bench.postgres_server import PostgresServer
    server = PostgresServer()
    backend = PostgresBackend(server.dsn, pool_timeout=10)
    try:
        assert backend.writable() is False
        server.start()
        assert backend.dedupe_store().record("s", candidates(range(2)), 1000.0) == 2
        assert backend.writable() is True
        assert rows(server.dsn, "SELECT version FROM schema_migrations") == [(migrations.LATEST,)]
    finally:
        backend.close()
        server.stop()


def test_errors_of_statements_are_bugs_and_errors_of_the_server_are_outages(pg):
    assert pg.errors == (psycopg.Error,)
    with pg._connections.connection() as conn:
        with pytest.raises(psycopg.errors.UndefinedTable) as bug:
            conn.execute("SELECT * FROM no_such_table")
    assert not pg.is_unavailable(bug.value) and pg.describe(bug.value) == "UndefinedTable (42P01)"
    with pg._connections.transaction() as conn:
        conn.execute("SET LOCAL statement_timeout = 50")
        with pytest.raises(psycopg.errors.QueryCanceled) as cancelled:
            conn.execute("SELECT pg_sleep(1)")
    assert pg.is_unavailable(cancelled.value)
    for state, unavailable in (("53100", True), ("25006", True), ("08006", True), ("23505", False)):
        error = psycopg.errors.lookup(state)("x")
        assert pg.is_unavailable(error) is unavailable, state
    assert pg.writable() is True


# -- gevent ------------------------------------------------------------------------------------------

GEVENT_SCRIPT = """
from gevent import monkey
monkey.patch_all()
import sys, time
import gevent
from storage.postgres import PostgresBackend
backend = PostgresBackend(sys.argv[1], pool_size=4)
import psycopg.waiting
assert psycopg.waiting.wait.__name__ != "wait_c", psycopg.waiting.wait

def sleep_in_database():
    with backend._connections.connection() as conn:
        conn.execute("SELECT pg_sleep(0.4)")

started = time.monotonic()
gevent.joinall([gevent.spawn(sleep_in_database) for _ in range(4)], raise_error=True)
elapsed = time.monotonic() - started
assert elapsed < 1.2, f"greenlets waited in turn ({elapsed:.2f}s): psycopg blocked the thread"
store = backend.dedupe_store()
from triggers.identity import Candidate
page = [Candidate(str(n), {"id": str(n)}, float(n)) for n in range(20)]
answers = [gevent.spawn(store.answer, "scope-%d" % (n % 5), page, 1000.0, 100, 60, 100) for n in range(40)]
gevent.joinall(answers, raise_error=True)
assert sum(len(g.value) for g in answers) == 40 * 20
print("ok")
"""


def test_greenlets_share_the_pool_without_blocking_each_other(pg_url):
    done = subprocess.run([sys.executable, "-c", GEVENT_SCRIPT, pg_url], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-3000:]


# -- bytes on disk -------------------------------------------------------------------------------------

def _body(n):
    """A contact as GHL lists it (about 480 bytes of JSON)."""
    return {"id": f"{n:020d}", "email": f"user{n}@example.com", "firstName": "Ann", "lastName": "Lee",
            "tags": ["customer", "vip"], "dateAdded": "2026-01-01T00:00:00.000Z", "phone": "+15550100000",
            "customFields": [{"id": "f" * 20, "value": "v" * 40}], "source": "web form", "address1": "1 Main St",
            "city": "Springfield", "country": "US", "companyName": "Acme Holdings Inc", "type": "lead",
            "website": "https://example.com/landing?utm=abc"}


def dedupe_bytes(url):
    """Bytes on disk of the dedupe tables (heap, indexes, TOAST) after VACUUM."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE) seen, seen_items, dedupe_scopes")
        return conn.execute("SELECT SUM(pg_total_relation_size(t)) FROM unnest(ARRAY['seen', 'seen_items',"
                            " 'dedupe_scopes']::regclass[]) AS t").fetchone()[0]


def test_a_remembered_identity_costs_at_most_150_bytes_once_past_the_redelivery_window(pg, pg_url):
    """50,000 identities in 10 scopes (64-hex names, as poll.scope_for makes them), arriving
    over 50 hours, pages of 100 answered as they come, pruned hourly (with VACUUM standing in
    for autovacuum); measured a window after the last, when only dedupe's rows are left."""
    import hashlib
    import random
    store = pg.dedupe_store()
    scopes = [hashlib.sha256(str(n).encode()).hexdigest() for n in range(10)]
    random_ids = random.Random(14)
    start, hour, identities = 1.8e9, 3600, 0
    for hours in range(50):
        now = start + hours * hour
        for scope in scopes:
            page = [Candidate(random_ids.randbytes(10).hex(), _body(identities + k), now + k) for k in range(100)]
            identities += len(page)
            assert len(store.answer(scope, page[::-1], now, 100, hour, 100)) >= 100
        store.prune(now, 30 * 86400)
        dedupe_bytes(pg_url) if hours % 5 == 4 else None
    in_window = rows(pg_url, "SELECT COUNT(*) FROM seen_items")[0][0]
    store.prune(start + 51 * hour, 30 * 86400)
    assert rows(pg_url, "SELECT COUNT(*) FROM seen_items") == [(0,)] and in_window >= 1000
    assert rows(pg_url, "SELECT COUNT(*) FROM seen") == [(50_000,)]
    per_identity = dedupe_bytes(pg_url) / identities
    print(f"PostgreSQL: {per_identity:.1f} bytes per remembered identity after the window")
    assert per_identity <= 150
    assert store.known(scopes[0], ["nothing"]) == set() and store.has_scope(scopes[0])


def test_a_burst_of_bodies_gives_its_space_back_once_pruned(pg, pg_url):
    """30,000 items answered at once, then past the redelivery window: the prune that drops their
    bodies also compacts the bodies table, so a burst does not leave its index pages behind."""
    import hashlib
    store = pg.dedupe_store()
    scope = hashlib.sha256(b"burst").hexdigest()
    now = 1.8e9
    for start in range(0, 30_000, 1_000):
        page = [Candidate(f"burst-{n:06d}", _body(n), now + n) for n in range(start + 999, start - 1, -1)]
        store.record(scope, page, now, answered=True)
    bodies_bytes = "SELECT pg_total_relation_size('seen_items')"
    burst = rows(pg_url, bodies_bytes)[0][0]
    store.prune(now + 2 * 3600, 30 * 86400)
    assert rows(pg_url, "SELECT COUNT(*) FROM seen_items") == [(0,)]
    assert rows(pg_url, "SELECT COUNT(*) FROM seen") == [(30_000,)]
    left = rows(pg_url, bodies_bytes)[0][0]
    assert left < burst / 20, (burst, left)
    assert store.known(scope, ["burst-000007", "never"]) == {"burst-000007"}
