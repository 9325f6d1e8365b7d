"""Fewer GHL calls for the same answers: the per-location budget and shared reads, on both
backends (the ``backend`` fixture), and across gunicorn's worker processes."""

import os
import sqlite3
import subprocess
import sys
import threading
import time

import pytest
import requests

from ghl.rate_budget import BudgetExhausted, RateBudget
from ghl.shared_reads import SharedReads, leader_id
from sandbox.server import serve_sandbox
from server.app import create_app
from storage.backend import open_backend
from tests.conftest import LOCATION, SANDBOX_TOKEN, GunicornService, store_env


def stored_keys(settings):
    """The keys of the rows in ``shared_reads``, read as an operator would."""
    sql = "SELECT key FROM shared_reads"
    if settings.database_url:
        import psycopg
        with psycopg.connect(settings.database_url) as conn:
            return {row[0] for row in conn.execute(sql)}
    conn = sqlite3.connect(settings.database_path)
    try:
        return {row[0] for row in conn.execute(sql)}
    finally:
        conn.close()


class FakeClock:
    def __init__(self):
        self.now = 1000.0
        self.slept = []

    def time(self):
        return self.now

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds


def test_budget_queues_the_request_beyond_the_window_instead_of_failing(backend):
    clock = FakeClock()
    budget = RateBudget(backend.rate_slots(), max_requests=3, window_seconds=10,
                        clock=clock.time, sleep=clock.sleep, margin_seconds=0)
    for _ in range(3):
        budget.take("location:a", deadline=clock.now + 20)
    assert clock.slept == []
    budget.take("location:a", deadline=clock.now + 20)
    assert clock.slept == [pytest.approx(10.0)]
    # Budgets are per location.
    budget.take("location:b", deadline=clock.now + 20)
    assert len(clock.slept) == 1


def test_budget_gives_up_when_the_wait_would_pass_the_deadline(backend):
    clock = FakeClock()
    budget = RateBudget(backend.rate_slots(), max_requests=1, window_seconds=10,
                        clock=clock.time, sleep=clock.sleep, margin_seconds=0)
    budget.take("location:a", deadline=clock.now + 20)
    with pytest.raises(BudgetExhausted) as caught:
        budget.take("location:a", deadline=clock.now + 5)
    assert caught.value.retry_after == pytest.approx(10.0)


def test_a_shared_read_is_reused_within_its_ttl_and_dropped_after_a_write(backend):
    clock = FakeClock()
    reads = SharedReads(backend.shared_read_table(), ttl_seconds=30, clock=clock.time, sleep=clock.sleep)
    fetched = []

    def fetch():
        fetched.append(1)
        return 200, {"n": len(fetched)}, {}

    assert reads.read("owner", "k", fetch, deadline=clock.now + 5)[1] == {"n": 1}
    clock.now += 10
    assert reads.read("owner", "k", fetch, deadline=clock.now + 5)[1] == {"n": 1}
    reads.forget_owner("owner")
    assert reads.read("owner", "k", fetch, deadline=clock.now + 5)[1] == {"n": 2}


def test_stored_answers_are_pruned_once_past_their_use(backend, backend_settings):
    clock = FakeClock()
    reads = SharedReads(backend.shared_read_table(), ttl_seconds=5, clock=clock.time, sleep=clock.sleep)
    reads.read("owner", "old", lambda: (200, {"n": 1}, {}), deadline=clock.now)
    clock.now += 120
    reads.read("owner", "new", lambda: (200, {"n": 2}, {}), deadline=clock.now)
    assert stored_keys(backend_settings) == {"new"}


def test_without_a_ttl_an_answer_is_stored_only_for_a_caller_waiting_on_it(backend, backend_settings):
    reads = SharedReads(backend.shared_read_table(), ttl_seconds=0)
    assert reads.read("owner", "alone", lambda: (200, {"n": 1}, {}), deadline=0)[1] == {"n": 1}
    assert stored_keys(backend_settings) == set()

    # A second caller (another process, as a gunicorn worker would be) arrives while the leader fetches.
    other_process = open_backend(backend_settings)
    follower = SharedReads(other_process.shared_read_table(), ttl_seconds=0)
    fetched, answers = [], []
    leader_fetching, follower_waiting = threading.Event(), threading.Event()

    def slow_fetch():
        fetched.append("leader")
        leader_fetching.set()
        follower_waiting.wait(5)
        return 200, {"n": 2}, {}

    def follower_fetch():
        fetched.append("follower")
        return 200, {"n": 3}, {}

    leader = threading.Thread(target=lambda: answers.append(reads.read("owner", "k", slow_fetch, time.time() + 5)))
    leader.start()
    leader_fetching.wait(5)
    original_sleep = follower.sleep
    follower.sleep = lambda seconds: (follower_waiting.set(), original_sleep(seconds))
    answers.append(follower.read("owner", "k", follower_fetch, time.time() + 5))
    leader.join(5)
    other_process.close()
    assert fetched == ["leader"] and [a[1] for a in answers] == [{"n": 2}, {"n": 2}]


def test_a_leader_whose_process_died_does_not_hold_its_followers(backend):
    table = backend.shared_read_table()
    reads = SharedReads(table, ttl_seconds=0)
    host = leader_id().rpartition(":")[0]
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    # A gunicorn worker of this host took the lease for 30 s and was SIGKILLed before answering.
    assert table.claim("k", "owner", f"{host}:{dead.pid}", time.time(), time.time() + 30)
    started = time.monotonic()
    answer = reads.read("owner", "k", lambda: (200, {"fresh": True}, {}), deadline=time.time() + 20)
    assert answer[1] == {"fresh": True} and time.monotonic() - started < 2

    # A live leader (this test's parent process stands in for another worker) is waited for,
    # and so is one on another host, which this host cannot check.
    for leader in (f"{host}:{os.getppid()}", f"another-host:{dead.pid}"):
        assert table.claim("k", "owner", leader, time.time(), time.time() + 30)
        started = time.monotonic()
        reads.read("owner", "k", lambda: (200, {"own": True}, {}), deadline=time.time() + 0.5)
        assert time.monotonic() - started >= 0.5, f"it waited for the live leader {leader} until its deadline"
        table.release("k")


def test_a_failed_read_is_not_shared(backend):
    reads = SharedReads(backend.shared_read_table(), ttl_seconds=30)

    def failing():
        raise RuntimeError("GHL down")

    with pytest.raises(RuntimeError):
        reads.read("owner", "k", failing, deadline=0)
    assert reads.read("owner", "k", lambda: (200, {"ok": True}, {}), deadline=0)[1] == {"ok": True}


def sandbox_log(sandbox):
    return requests.get(f"{sandbox.url}/_sandbox/requests", timeout=5).json()["requests"]


def test_polls_beyond_ghls_burst_limit_queue_instead_of_meeting_429(backend_settings):
    with serve_sandbox(burst_limit=10, burst_window_s=2) as ghl:
        app = create_app({"ghl_base_url": ghl.url, "database_path": backend_settings.database_path,
                          "database_url": backend_settings.database_url,
                          "secret_key": "k", "ghl_burst_max": 10, "ghl_burst_window_seconds": 2.0})
        client = app.test_client()
        for n in range(25):
            response = client.post("/triggers/list_contacts_deprecated", json={},
                                   headers={"Authorization": f"Bearer {SANDBOX_TOKEN}", "X-Location-Id": LOCATION,
                                            "X-Subscriber-Id": f"zap-{n}"})
            assert response.status_code == 200, response.json
        statuses = [entry["status"] for entry in sandbox_log(ghl)]
        assert len(statuses) == 25 and 429 not in statuses


@pytest.mark.parametrize("store_kind", ["sqlite", "postgres"])
def test_identical_polls_in_flight_at_once_share_one_ghl_request(tmp_path, store_kind, request):
    with serve_sandbox(burst_limit=10_000, latency_ms=400) as ghl:
        service = GunicornService({"GHL_BASE_URL": ghl.url, **store_env(store_kind, tmp_path, request),
                                   "SECRET_KEY": "k", "LOG_LEVEL": "WARNING"}, workers=4,
                                  log_path=tmp_path / "gunicorn.log").start()
        try:
            requests.delete(f"{ghl.url}/_sandbox/requests", timeout=5)
            answers = {}

            def poll(n):
                answers[n] = requests.post(
                    f"{service.url}/triggers/list_contacts_deprecated", json={}, timeout=30,
                    headers={"Authorization": f"Bearer {SANDBOX_TOKEN}", "X-Location-Id": LOCATION,
                             "X-Subscriber-Id": f"zap-{n}"})

            threads = [threading.Thread(target=poll, args=(n,)) for n in range(16)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(60)
            assert all(answer.status_code == 200 for answer in answers.values())
            contact_ids = {frozenset(item["id"] for item in answer.json()) for answer in answers.values()}
            assert len(contact_ids) == 1, "every Zap gets the same, complete first answer"
            ghl_reads = [e for e in sandbox_log(ghl) if e["path"] == "/contacts/"]
            # All 16 arrive while the first read (400 ms) is in flight; a loaded machine may let a few
            # start before the leader's lease is visible, so this allows some slack (the bench measures it).
            assert len(ghl_reads) <= 8, len(ghl_reads)
        finally:
            service.stop()
