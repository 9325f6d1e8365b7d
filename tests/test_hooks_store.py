"""REST hook subscriptions: tokens encrypted at rest, leases between workers, the retry schedule,
which target URLs are accepted, and the worker's decisions on each kind of answer."""

import json
import multiprocessing
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from catalog.registry import load_catalog
from ghl.client import GhlResponse
from ghl.credentials import credential_id
from server.config import Settings
from triggers import hook_delivery
from triggers.dedupe_store import SqliteDedupeStore
from triggers.hook_delivery import InvalidTargetUrl, check_target_url, retry_after_seconds, retry_delay
from triggers.hooks_store import SqliteHookStore, TokenCipher, TokenUnreadable, new_hook_id, scope_for_hook
from triggers.hooks_worker import HookWorker
from triggers.poll import poll_into_backlog

SECRET = "unit-test-secret"
TOKEN = "pit-0123456789-very-secret-token"


def make_store(path, secret=SECRET):
    return SqliteHookStore(str(path), TokenCipher(secret))


def subscribe(store, now=1000.0, interval=60):
    return store.create(new_hook_id(), "list_contacts_deprecated", {"locationId": "loc"}, TOKEN,
                        credential_id(SECRET, TOKEN), "https://hooks.zapier.com/h/1", interval, now)


def database_bytes(path):
    return b"".join(p.read_bytes() for p in Path(path).parent.glob(Path(path).name + "*"))


def test_the_token_is_stored_encrypted_and_only_the_right_key_reads_it(tmp_path):
    path = tmp_path / "hooks.sqlite3"
    store = make_store(path)
    subscription = subscribe(store)
    assert TOKEN not in subscription.token_ciphertext and TOKEN not in repr(subscription)
    assert TOKEN.encode() not in database_bytes(path)
    assert store.token(store.get(subscription.id)) == TOKEN
    with pytest.raises(TokenUnreadable):
        make_store(path, secret="another-secret").token(store.get(subscription.id))
    assert subscription.owner == credential_id(SECRET, TOKEN) and TOKEN not in subscription.owner


def test_the_same_token_encrypts_differently_each_time():
    cipher = TokenCipher(SECRET)
    assert cipher.encrypt(TOKEN) != cipher.encrypt(TOKEN)
    with pytest.raises(ValueError):
        TokenCipher("")


def test_ids_are_random_and_long():
    ids = {new_hook_id() for _ in range(1000)}
    assert len(ids) == 1000 and all(len(i) >= 24 for i in ids)


def test_only_due_unleased_subscriptions_are_leased_and_a_lease_excludes_other_workers(tmp_path):
    path = tmp_path / "hooks.sqlite3"
    first, second = make_store(path), make_store(path)
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


def test_a_scheduled_delivery_retry_makes_a_subscription_due(tmp_path):
    store = make_store(tmp_path / "hooks.sqlite3")
    subscription = subscribe(store, now=1000.0, interval=60)
    assert store.lease_next_due("w", 1060.0, 30).id == subscription.id
    assert store.update_held(subscription.id, "w", release=True, next_poll_at=1120.0, next_delivery_at=1070.0)
    assert store.lease_next_due("w", 1069.0, 30) is None
    assert store.lease_next_due("w", 1070.0, 30).id == subscription.id


def test_workers_cannot_write_fields_outside_their_state(tmp_path):
    store = make_store(tmp_path / "hooks.sqlite3")
    subscription = subscribe(store)
    with pytest.raises(ValueError):
        store.update_held(subscription.id, "w", target_url="https://evil.example/")


def test_delete_is_idempotent(tmp_path):
    store = make_store(tmp_path / "hooks.sqlite3")
    subscription = subscribe(store)
    assert store.delete(subscription.id) and not store.delete(subscription.id)
    assert store.get(subscription.id) is None


def _race_for_lease(path, worker, now, results):
    store = make_store(path)
    leased = store.lease_next_due(worker, now, 30)
    results.put((worker, leased.id if leased else None))


def test_processes_racing_for_one_subscription_lease_it_once(tmp_path):
    path = tmp_path / "hooks.sqlite3"
    subscription = subscribe(make_store(path), now=1000.0, interval=60)
    results = multiprocessing.Queue()
    processes = [multiprocessing.Process(target=_race_for_lease, args=(str(path), f"w{n}", 2000.0, results))
                 for n in range(6)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(30)
    winners = [results.get(timeout=5) for _ in processes]
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
def rig(tmp_path):
    settings = Settings(database_path=str(tmp_path / "w.sqlite3"), secret_key=SECRET)
    ghl, target = FakeGhl(), FakeTarget()
    dedupe, hooks = SqliteDedupeStore(settings.database_path), make_store(settings.database_path)
    worker = HookWorker(settings, load_catalog(), ghl, dedupe, hooks, session=target, name="w")
    record = worker.catalog.get("list_contacts_deprecated")
    ghl.add(1)
    hook_id = new_hook_id()
    poll_into_backlog(ghl, dedupe, record, {"locationId": "loc"}, TOKEN, scope_for_hook(hook_id),
                      worker.limits, seed=True)
    hooks.create(hook_id, record["key"], {"locationId": "loc"}, TOKEN, credential_id(SECRET, TOKEN),
                 "https://hooks.zapier.com/h/1", 60, time.time() - 120)
    return SimpleNamespace(worker=worker, ghl=ghl, target=target, hooks=hooks, dedupe=dedupe, id=hook_id,
                           make_due=lambda: hooks._connection().execute(
                               "UPDATE hook_subscriptions SET next_poll_at = 0, next_delivery_at = 0"))


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
    rig.worker.settings = Settings(database_path=rig.worker.settings.database_path, secret_key=SECRET,
                                   hook_target_hosts=("hooks.example.org",))
    rig.ghl.add(2)
    rig.worker.tick()
    assert rig.target.bodies == [] and "host" in rig.hooks.get(rig.id).last_error
