"""REST hook subscriptions: tokens encrypted at rest, leases between workers, fairness between
owners, the per-owner limit, the retry schedule, which target URLs are accepted, and the worker's
decisions on each kind of answer. Store cases run on both backends (the ``backend`` fixture)."""

import json
import multiprocessing
import sqlite3
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from catalog.registry import load_catalog
from ghl.client import GhlResponse
from ghl.credentials import credential_id
from storage.backend import open_backend
from triggers import hook_delivery
from triggers.hook_delivery import InvalidTargetUrl, check_target_url, retry_after_seconds, retry_delay
from triggers.hooks_store import HookLimitReached, TokenCipher, TokenUnreadable, new_hook_id, scope_for_hook
from triggers.hooks_worker import HookWorker
from triggers.poll import poll_into_backlog

SECRET = "unit-test-secret"
TOKEN = "pit-0123456789-very-secret-token"


def make_store(backend, secret=SECRET):
    return backend.hook_store(TokenCipher(secret))


def subscribe(store, now=1000.0, interval=60, owner=None, max_per_owner=None):
    return store.create(new_hook_id(), "list_contacts_deprecated", {"locationId": "loc"}, TOKEN,
                        owner or credential_id(SECRET, TOKEN), "https://hooks.zapier.com/h/1", interval, now,
                        max_per_owner=max_per_owner)


def run_sql(settings, sql):
    """Run ``sql`` on the store ``settings`` select, as an operator would."""
    if settings.database_url:
        import psycopg
        with psycopg.connect(settings.database_url, autocommit=True) as conn:
            conn.execute(sql)
        return
    conn = sqlite3.connect(settings.database_path)
    with conn:
        conn.execute(sql)
    conn.close()


def stored_bytes(settings):
    """Everything the store keeps, as bytes: the SQLite file (and its WAL), or every row of
    every PostgreSQL table as text."""
    if settings.database_url:
        import psycopg
        with psycopg.connect(settings.database_url) as conn:
            tables = [row[0] for row in conn.execute(
                "SELECT quote_ident(tablename) FROM pg_tables WHERE schemaname = current_schema()")]
            return "".join(str(row[0]) for table in tables
                           for row in conn.execute(f"SELECT t::text FROM {table} AS t")).encode()
    path = Path(settings.database_path)
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))


def test_the_token_is_stored_encrypted_and_only_the_right_key_reads_it(backend, backend_settings):
    store = make_store(backend)
    subscription = subscribe(store)
    assert TOKEN not in subscription.token_ciphertext and TOKEN not in repr(subscription)
    assert subscription.token_ciphertext.encode() in stored_bytes(backend_settings)
    assert TOKEN.encode() not in stored_bytes(backend_settings)
    assert store.token(store.get(subscription.id)) == TOKEN
    with pytest.raises(TokenUnreadable):
        make_store(backend, secret="another-secret").token(store.get(subscription.id))
    assert subscription.owner == credential_id(SECRET, TOKEN) and TOKEN not in subscription.owner


def test_a_subscription_reads_back_as_it_was_created(backend):
    store = make_store(backend)
    created = subscribe(store, now=1000.0, interval=90)
    read = store.get(created.id)
    assert read == created
    assert (read.trigger, read.inputs, read.interval_seconds, read.created_at, read.next_poll_at) == (
        "list_contacts_deprecated", {"locationId": "loc"}, 90, 1000.0, 1090.0)
    assert read.lease_owner is None and read.lease_until == 0 and read.delivery_failures == 0
    assert read.scope == scope_for_hook(created.id) and store.get("hk_missing") is None


def test_the_same_token_encrypts_differently_each_time():
    cipher = TokenCipher(SECRET)
    assert cipher.encrypt(TOKEN) != cipher.encrypt(TOKEN)
    with pytest.raises(ValueError):
        TokenCipher("")


def test_ids_are_random_and_long():
    ids = {new_hook_id() for _ in range(1000)}
    assert len(ids) == 1000 and all(len(i) >= 24 for i in ids)


def test_only_due_unleased_subscriptions_are_leased_and_a_lease_excludes_other_workers(backend, backend_settings):
    other_process = open_backend(backend_settings)
    try:
        first, second = make_store(backend), make_store(other_process)
        subscription = subscribe(first, now=1000.0, interval=60)
        assert first.lease_next_due("w1", 1059.0, 30) is None, "not due before its interval"
        leased = first.lease_next_due("w1", 1060.0, 30)
        assert leased.id == subscription.id and leased.lease_owner == "w1"
        assert second.lease_next_due("w2", 1061.0, 30) is None
        assert first.renew_lease(subscription.id, "w1", 1080.0, 30)
        assert second.lease_next_due("w2", 1100.0, 30) is None, "renewed until 1110"
        # w1 dies without releasing; once the lease lapses w2 takes over, and w1 is fenced out.
        taken = second.lease_next_due("w2", 1111.0, 30)
        assert taken.lease_owner == "w2"
        assert not first.renew_lease(subscription.id, "w1", 1112.0, 30)
        assert not first.update_held(subscription.id, "w1", release=True, last_poll_at=1112.0)
        assert second.update_held(subscription.id, "w2", release=True, last_poll_at=1112.0, next_poll_at=1172.0)
        released = second.get(subscription.id)
        assert released.lease_owner is None and released.last_poll_at == 1112.0
        assert first.lease_next_due("w1", 1113.0, 30) is None, "released, but not due again until 1172"
    finally:
        other_process.close()


def test_a_scheduled_delivery_retry_makes_a_subscription_due(backend):
    store = make_store(backend)
    subscription = subscribe(store, now=1000.0, interval=60)
    assert store.lease_next_due("w", 1060.0, 30).id == subscription.id
    assert store.update_held(subscription.id, "w", release=True, next_poll_at=1120.0, next_delivery_at=1070.0)
    assert store.lease_next_due("w", 1069.0, 30) is None
    assert store.lease_next_due("w", 1070.0, 30).id == subscription.id


def test_the_most_overdue_subscription_is_leased_first(backend):
    store = make_store(backend)
    late, retry, later = (subscribe(store, now=now, interval=60) for now in (1000.0, 1001.0, 1010.0))
    assert store.lease_next_due("w", 1061.0, 30).id == late.id
    store.update_held(late.id, "w", release=True, next_poll_at=1200.0)
    assert store.lease_next_due("w", 1061.0, 30).id == retry.id
    store.update_held(retry.id, "w", release=True, next_poll_at=1200.0, next_delivery_at=1065.0)
    # Due at 1070: later (its poll, due 1070) and retry (its delivery, due 1065): retry waited longer.
    assert [store.lease_next_due("w", 1070.0, 30) for _ in range(3)][:2] == [
        store.get(retry.id), store.get(later.id)]
    assert store.lease_next_due("w", 1070.0, 30) is None


def test_leases_go_round_robin_between_owners(backend):
    store = make_store(backend)
    for owner, count in (("owner-a", 4), ("owner-b", 2), ("owner-c", 1)):
        for n in range(count):
            subscribe(store, now=1000.0 + n, interval=60, owner=owner)
    order = []
    while (leased := store.lease_next_due("w", 2000.0, 30)) is not None:
        order.append(leased.owner)
    assert order == ["owner-a", "owner-b", "owner-c", "owner-a", "owner-b", "owner-a", "owner-a"]


def test_an_owner_cannot_pass_its_limit_even_with_creates_at_once(backend, backend_settings):
    store = make_store(backend)
    subscribe(store, owner="o", max_per_owner=3)
    errors, made = [], []

    def create():
        local = open_backend(backend_settings)
        try:
            made.append(subscribe(make_store(local), owner="o", max_per_owner=3).id)
        except HookLimitReached as limit:
            errors.append(limit.limit)
        finally:
            local.close()

    threads = [threading.Thread(target=create) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(made) == 2 and errors == [3] * 4 and store.count_owned("o") == 3
    assert store.count_owned("someone-else") == 0


def test_workers_cannot_write_fields_outside_their_state(backend):
    store = make_store(backend)
    subscription = subscribe(store)
    with pytest.raises(ValueError):
        store.update_held(subscription.id, "w", target_url="https://evil.example/")


def test_delete_is_idempotent_and_the_owner_can_subscribe_again(backend):
    store = make_store(backend)
    subscription = subscribe(store)
    assert store.delete(subscription.id) and not store.delete(subscription.id)
    assert store.get(subscription.id) is None and store.count_owned(subscription.owner) == 0
    again = subscribe(store, now=1000.0)
    assert store.lease_next_due("w", 1060.0, 30).id == again.id


def _race_for_lease(settings, worker, now, barrier, results):
    backend = open_backend(settings)
    store = make_store(backend)
    barrier.wait()
    leased = store.lease_next_due(worker, now, 30)
    results.put((worker, leased.id if leased else None))
    backend.close()


def test_processes_racing_for_one_subscription_lease_it_once(backend, backend_settings):
    subscription = subscribe(make_store(backend), now=1000.0, interval=60)
    context = multiprocessing.get_context("fork")
    barrier, results = context.Barrier(6), context.Queue()
    processes = [context.Process(target=_race_for_lease, args=(backend_settings, f"w{n}", 2000.0, barrier, results))
                 for n in range(6)]
    for process in processes:
        process.start()
    winners = [results.get(timeout=30) for _ in processes]
    for process in processes:
        process.join(30)
    assert [leased for _, leased in winners if leased] == [subscription.id]


def test_backoff_doubles_from_one_second_up_to_fifteen_minutes_with_jitter():
    ceilings = [retry_delay(n, rng=lambda: 1.0) for n in range(1, 13)]
    assert ceilings[:6] == [1, 2, 4, 8, 16, 32]
    assert ceilings[-1] == hook_delivery.RETRY_CAP_SECONDS == 900
    floors = [retry_delay(n, rng=lambda: 0.0) for n in range(1, 13)]
    assert floors == [c / 2 for c in ceilings], "jitter keeps at least half the delay"
    spread = {round(retry_delay(5), 3) for _ in range(50)}
    assert len(spread) > 10 and all(8 <= s <= 16 for s in spread)


def test_retry_after_accepts_seconds_or_an_http_date_and_is_capped():
    assert retry_after_seconds("30") == 30
    assert retry_after_seconds("999999") == hook_delivery.MAX_RETRY_AFTER_SECONDS
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:30 GMT", now=1445412480.0) == 30
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None


ZAPIER = ("hooks.zapier.com",)


@pytest.mark.parametrize("url", [
    "https://hooks.zapier.com/hooks/standard/1/abc/",
    "https://HOOKS.zapier.com/hooks/x?y=1",
    "https://hooks.zapier.com:443/hooks/x",
])
def test_zapier_https_urls_are_accepted(url):
    assert check_target_url(url, ZAPIER, allow_http=False) == url


@pytest.mark.parametrize("url", [
    "https://evil.example/",
    "http://hooks.zapier.com/hooks/x",
    "https://hooks.zapier.com@evil.test/",
    "https://user:pw@hooks.zapier.com/",
    "https://evil.test#@hooks.zapier.com/",
    "https://evil.test\\@hooks.zapier.com/",
    "https://hooks.zapier.com.evil.test/",
    "https://hooks.zapier.com./",
    "https://xhooks.zapier.com/",
    "https://hooks.zapier.com:8443/",
    "https://hooks.zapier.com:99999/",
    "https://hooks%2ezapier.com/",
    "https://hooks.zapier.com /",
    "https:///hooks.zapier.com/",
    "ftp://hooks.zapier.com/",
    "//hooks.zapier.com/",
    "https://hooks.zapier.com/x#frag",
    "",
    None,
    42,
])
def test_everything_else_is_refused(url):
    with pytest.raises(InvalidTargetUrl):
        check_target_url(url, ZAPIER, allow_http=False)


def test_the_local_switch_allows_http_and_ports_but_only_on_listed_hosts():
    local = ("127.0.0.1",)
    assert check_target_url("http://127.0.0.1:8123/hook", local, allow_http=True)
    for url in ("http://127.0.0.1:8123/hook", "https://127.0.0.1:8123/hook"):
        with pytest.raises(InvalidTargetUrl):
            check_target_url(url, local, allow_http=False)
    for url in ("http://localhost:8123/", "http://127.0.0.2/", "http://a@127.0.0.1:1/", "http://[::1]:80/"):
        with pytest.raises(InvalidTargetUrl):
            check_target_url(url, local, allow_http=True)


def test_large_batches_are_cut_to_fit_the_payload_limit():
    items = [{"id": str(n), "blob": "x" * 1000} for n in range(100)]
    sent, body = hook_delivery.batch_payload(items, limit=30_000)
    assert 0 < len(sent) < 100 and len(body) <= 30_000 and sent == items[:len(sent)]
    single, _ = hook_delivery.batch_payload(items[:1], limit=10)
    assert single == items[:1]


# The worker's decisions, with GHL and the target faked (the e2e tests run the real thing).

class FakeGhl:
    def __init__(self):
        self.contacts = []
        self.tokens = []

    def add(self, n):
        self.contacts.append({"id": f"c{n}", "email": f"c{n}@example.com",
                              "dateAdded": f"2026-01-01T00:00:{n:02d}Z"})

    def request(self, method, path, token, **kwargs):
        self.tokens.append(token)
        return GhlResponse(200, {"contacts": list(reversed(self.contacts)), "meta": {}}, {})


class FakeTarget:
    def __init__(self):
        self.answers = []
        self.bodies = []

    def post(self, url, data, **kwargs):
        assert kwargs["allow_redirects"] is False
        self.bodies.append(json.loads(data))
        status, headers = self.answers.pop(0) if self.answers else (200, {})
        return SimpleNamespace(status_code=status, headers=headers, close=lambda: None)


@pytest.fixture
def rig(backend, backend_settings):
    settings = backend_settings.with_overrides({"secret_key": SECRET})
    ghl, target = FakeGhl(), FakeTarget()
    dedupe, hooks = backend.dedupe_store(), make_store(backend)
    worker = HookWorker(settings, load_catalog(), ghl, dedupe, hooks, session=target, name="w")
    record = worker.catalog.get("list_contacts_deprecated")
    ghl.add(1)
    hook_id = new_hook_id()
    poll_into_backlog(ghl, dedupe, record, {"locationId": "loc"}, TOKEN, scope_for_hook(hook_id),
                      worker.limits, seed=True)
    hooks.create(hook_id, record["key"], {"locationId": "loc"}, TOKEN, credential_id(SECRET, TOKEN),
                 "https://hooks.zapier.com/h/1", 60, time.time() - 120)
    return SimpleNamespace(worker=worker, ghl=ghl, target=target, hooks=hooks, dedupe=dedupe, id=hook_id,
                           make_due=lambda: run_sql(
                               settings, "UPDATE hook_subscriptions SET next_poll_at = 0, next_delivery_at = 0"))


def test_the_worker_pushes_only_new_items_with_the_decrypted_token(rig):
    rig.ghl.add(2)
    rig.worker.tick()
    assert [[item["id"] for item in body] for body in rig.target.bodies] == [["c2"]]
    assert set(rig.ghl.tokens) == {TOKEN}
    state = rig.hooks.get(rig.id)
    assert state.lease_owner is None and state.last_delivery_at and state.next_poll_at > time.time() + 50
    rig.worker.tick()
    assert len(rig.target.bodies) == 1, "nothing is due until the next poll"


def test_failures_keep_the_items_and_back_off_and_429_waits_for_retry_after(rig):
    rig.ghl.add(2)
    rig.target.answers = [(500, {}), (429, {"Retry-After": "30"})]
    rig.worker.tick()
    failed = rig.hooks.get(rig.id)
    assert failed.delivery_failures == 1 and "500" in failed.last_error
    assert 0.4 < failed.next_delivery_at - time.time() <= 1.0
    rig.make_due()
    rig.worker.tick()
    limited = rig.hooks.get(rig.id)
    assert limited.delivery_failures == 2 and 29 < limited.next_delivery_at - time.time() <= 30
    assert rig.dedupe.backlog(scope_for_hook(rig.id)) == 1
    rig.make_due()
    rig.worker.tick()
    assert [body[0]["id"] for body in rig.target.bodies] == ["c2", "c2", "c2"]
    assert rig.dedupe.backlog(scope_for_hook(rig.id)) == 0 and rig.hooks.get(rig.id).delivery_failures == 0


def test_a_410_deletes_the_subscription_and_its_outbox(rig):
    rig.ghl.add(2)
    rig.target.answers = [(410, {})]
    rig.worker.tick()
    assert rig.hooks.get(rig.id) is None and not rig.dedupe.has_scope(scope_for_hook(rig.id))


def test_a_target_no_longer_allowed_is_not_contacted(rig):
    rig.worker.settings = rig.worker.settings.with_overrides({"hook_target_hosts": ("hooks.example.org",)})
    rig.ghl.add(2)
    rig.worker.tick()
    assert rig.target.bodies == [] and "host" in rig.hooks.get(rig.id).last_error
