"""Tenants are isolated: dedupe scopes and REST hooks belong to a credential (a token, or an
OAuth connection across its daily refreshes), hook subscriptions are capped per credential,
and the hook worker serves credentials round-robin.

The end-to-end tests run the service under the Procfile's gunicorn line against a sandbox GHL
that accepts several tokens for the same location, as GHL accepts several tokens of one account.
"""

import base64
import hashlib
import hmac
import json
import multiprocessing
import secrets
import sqlite3

import pytest
import requests

from ghl.credentials import credential_id
from sandbox.server import serve_sandbox
from tests.conftest import LOCATION, GunicornService
from tests.test_polling_e2e import Zap, create_contacts
from triggers.hooks_store import HookLimitReached, SqliteHookStore, TokenCipher, new_hook_id
from triggers.poll import scope_for

TRIGGER = "list_contacts_deprecated"
SECRET = "tenancy-secret"
VICTIM = "pit-victim-0000-1111-2222"
ATTACKER = "pit-attacker-3333-4444-5555"
HOOK_CAP = 3


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def make_jwt(payload, header=None, signature=None):
    """A token shaped like GHL's OAuth access tokens (RS256 JWTs); the signature is random."""
    encoded = [b64url(json.dumps(part).encode()) for part in (header or {"alg": "RS256", "typ": "JWT"}, payload)]
    return ".".join(encoded + [signature or b64url(secrets.token_bytes(64))])


def oauth_claims(location=LOCATION, client="6650f1c0a1b2c3d4e5f6a7b8-lx0abcde", auth_class="Location", **extra):
    return {"authClass": auth_class, "authClassId": location, "source": "INTEGRATION",
            "sourceId": client + "-src", "channel": "OAUTH", "primaryAuthClassId": location,
            "oauthMeta": {"scopes": ["contacts.readonly"], "client": client, "versionId": client},
            "iat": 1767225600, "exp": 1767312000, **extra}


# Two refreshes of one OAuth connection (both accepted by the sandbox), and a forgery with the
# same claims that GHL (the sandbox) does not accept.
JWT_MORNING = make_jwt(oauth_claims(iat=1767225600, exp=1767312000))
JWT_EVENING = make_jwt(oauth_claims(iat=1767268800, exp=1767355200))
JWT_FORGED = make_jwt(oauth_claims(iat=1767270000, exp=1767356400))


# --- credential_id ---------------------------------------------------------------------------

def test_a_private_integration_token_keeps_the_owner_id_of_the_previous_release():
    previous_release = "t:" + hmac.new(SECRET.encode(), VICTIM.encode(), hashlib.sha256).hexdigest()[:32]
    assert credential_id(SECRET, VICTIM) == previous_release
    assert credential_id("another-secret", VICTIM) != previous_release
    assert credential_id(SECRET, ATTACKER) != previous_release


def test_refreshed_oauth_tokens_of_one_connection_share_a_credential():
    morning, evening = credential_id(SECRET, JWT_MORNING), credential_id(SECRET, JWT_EVENING)
    assert JWT_MORNING != JWT_EVENING
    assert morning == evening and morning.startswith("o:") and len(morning) == 34
    assert JWT_MORNING not in morning and LOCATION not in morning


def test_the_client_falls_back_to_source_id():
    claims = oauth_claims()
    del claims["oauthMeta"]
    with_source_only = make_jwt({**claims, "sourceId": "the-client"})
    with_meta = make_jwt({**oauth_claims(), "oauthMeta": {"client": "the-client"}, "sourceId": "ignored"})
    assert credential_id(SECRET, with_source_only) == credential_id(SECRET, with_meta)
    assert credential_id(SECRET, with_source_only).startswith("o:")


@pytest.mark.parametrize("changed", [
    {"authClassId": "another-location"},
    {"authClass": "Company"},
    {"oauthMeta": {"client": "another-app"}},
])
def test_another_location_account_kind_or_app_is_another_credential(changed):
    other = make_jwt({**oauth_claims(), **changed})
    assert credential_id(SECRET, other).startswith("o:")
    assert credential_id(SECRET, other) != credential_id(SECRET, JWT_MORNING)


HEADER = b64url(b"{}")
MALFORMED = [
    "",
    "pit-1234",
    "a.b",
    "a.b.c.d",
    HEADER + "..sig",
    HEADER + ".!!!.sig",
    ".".join([HEADER, b64url(b"not json"), "sig"]),
    ".".join([HEADER, b64url(b"[1, 2]"), "sig"]),
    ".".join([HEADER, b64url(bytes([0xFF, 0xFE])), "sig"]),
    ".".join([HEADER, b64url(b"[" * 5000), "sig"]),
    ".".join([HEADER, "abcde", "sig"]),  # a length base64 cannot have
    make_jwt({k: v for k, v in oauth_claims().items() if k != "authClassId"}),
    make_jwt({**oauth_claims(), "authClassId": 42}),
    make_jwt({**oauth_claims(), "authClass": ""}),
    make_jwt({**oauth_claims(), "oauthMeta": "x", "sourceId": None}),
    make_jwt({**oauth_claims(), "authClassId": "x" * 1000}),
    make_jwt({**oauth_claims(), "padding": "x" * 9000}),
]


@pytest.mark.parametrize("token", MALFORMED)
def test_anything_not_shaped_like_an_oauth_token_is_an_opaque_token(token):
    assert credential_id(SECRET, token) == "t:" + hmac.new(SECRET.encode(), token.encode(),
                                                           hashlib.sha256).hexdigest()[:32]


def test_scopes_are_bound_to_the_credential_and_the_subscriber_only_separates_zaps():
    victim, attacker = credential_id(SECRET, VICTIM), credential_id(SECRET, ATTACKER)
    inputs = {"locationId": LOCATION}
    assert scope_for(victim, TRIGGER, inputs, subscriber="zap-1") != scope_for(attacker, TRIGGER, inputs,
                                                                                subscriber="zap-1")
    assert scope_for(victim, TRIGGER, inputs, subscriber="zap-1") != scope_for(victim, TRIGGER, inputs,
                                                                                subscriber="zap-2")
    assert scope_for(victim, TRIGGER, inputs) != scope_for(attacker, TRIGGER, inputs)
    assert scope_for(victim, TRIGGER, inputs, subscriber="zap-1") == scope_for(victim, TRIGGER, dict(inputs),
                                                                                subscriber="zap-1")


@pytest.mark.parametrize("subscriber, status", [
    ("z" * 200, 200),
    ("zap 17 / step 2", 200),
    ("z" * 201, 400),
    ("zap\x7f", 400),
    ("zap\x01", 400),
    ("z\u00e4p", 400),
])
def test_x_subscriber_id_is_bounded(client, auth, subscriber, status):
    response = client.post(f"/triggers/{TRIGGER}", headers={**auth, "X-Subscriber-Id": subscriber})
    assert response.status_code == status, response.get_data(as_text=True)
    if status == 400:
        assert response.json["error"]["code"] == "invalid_subscriber_id"


# --- the service under gunicorn, two tenants on one location ----------------------------------

@pytest.fixture(scope="module")
def tenants_sandbox():
    with serve_sandbox(tokens=(VICTIM, ATTACKER, JWT_MORNING, JWT_EVENING), burst_limit=10_000) as running:
        yield running


@pytest.fixture
def fresh_sandbox(tenants_sandbox):
    requests.post(tenants_sandbox.url + "/_sandbox/reset", timeout=5).raise_for_status()
    return tenants_sandbox


@pytest.fixture(scope="module")
def service(tenants_sandbox, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("tenancy")
    running = GunicornService({
        "GHL_BASE_URL": tenants_sandbox.url,
        "DATABASE_PATH": str(workdir / "service.sqlite3"),
        "SECRET_KEY": SECRET,
        "LOG_LEVEL": "WARNING",
        "HOOK_MAX_PER_CREDENTIAL": str(HOOK_CAP),
        "HOOK_TARGET_HOSTS": "127.0.0.1",
        "HOOK_ALLOW_HTTP": "1",
    }, workers=2, log_path=workdir / "gunicorn.log").start()
    yield running
    running.stop()


def drain(zap, most=10):
    """Poll until a poll fires nothing new; every answer, in order."""
    answers = []
    for _ in range(most):
        before = len(zap.fired)
        answers.append(zap.poll())
        if len(zap.fired) == before:
            return answers
    raise AssertionError("the Zap kept receiving new items")


def test_another_token_with_the_victims_zap_id_neither_reads_nor_consumes_its_items(service, fresh_sandbox):
    victim = Zap(service.url, TRIGGER, zap_id="victim-zap", token=VICTIM)
    answered_to_victim = {item["id"] for item in victim.poll()}
    assert answered_to_victim, "the sandbox seeds contacts"
    created = create_contacts(fresh_sandbox, 150, "burst")

    attacker = Zap(service.url, TRIGGER, zap_id="victim-zap", token=ATTACKER)
    attacker_answers = []
    for _ in range(2):
        response = requests.post(attacker.url, json={}, headers=attacker.headers, timeout=60)
        assert response.status_code == 200, response.text
        attacker_answers.extend(response.json())
    assert attacker_answers, "GHL answers the attacker's token; it just gets its own scope"
    assert not {item["id"] for item in attacker_answers} & answered_to_victim, \
        "nothing the victim's scope answered reaches another credential"
    assert {item["email"] for item in attacker_answers} <= created

    drain(victim)
    received = [item["email"] for item in victim.fired if item["email"] in created]
    assert sorted(received) == sorted(created), "all 150 reach the victim, none consumed by the attacker"


def test_items_another_token_saw_are_never_injected_into_the_victims_answers(service, fresh_sandbox):
    victim = Zap(service.url, TRIGGER, zap_id="victim-zap-2", token=VICTIM)
    assert victim.poll()
    fired_before = len(victim.fired)
    attacker = {"Authorization": f"Bearer {ATTACKER}", "X-Location-Id": LOCATION}
    planted = requests.post(f"{service.url}/actions/create_contact", headers=attacker, timeout=30,
                            json={"firstName": "Planted", "email": "planted@example.com"}).json()
    seen_by_attacker = requests.post(f"{service.url}/triggers/{TRIGGER}", json={}, timeout=30,
                                     headers={**attacker, "X-Subscriber-Id": "victim-zap-2"}).json()
    assert planted["id"] in {item["ghl_id"] for item in seen_by_attacker}
    deleted = requests.post(f"{service.url}/actions/delete_contact", headers=attacker, timeout=30,
                            json={"contactId": planted["id"]})
    assert deleted.status_code == 200, deleted.text

    later = create_contacts(fresh_sandbox, 3, "later")
    answers = drain(victim)
    answered = [item for answer in answers for item in answer]
    assert planted["id"] not in {item["ghl_id"] for item in answered}
    assert {item["email"] for item in victim.fired[fired_before:]} == later


# --- REST hooks: ownership and the per-credential cap -----------------------------------------

def bearer(token):
    return {"Authorization": f"Bearer {token}", "X-Location-Id": LOCATION}


class HookClient:
    """Subscribes through the service; deletes whatever it made when the test ends."""

    def __init__(self, service):
        self.service = service
        self.made = []

    def subscribe(self, token, path="/unused"):
        response = requests.post(f"{self.service.url}/hooks", headers=bearer(token), timeout=30, json={
            "trigger": TRIGGER, "target_url": f"http://127.0.0.1:9{path}", "inputs": {}})
        if response.status_code == 201:
            self.made.append((token, response.json()["id"]))
        return response

    def get(self, hook_id, token):
        return requests.get(f"{self.service.url}/hooks/{hook_id}", headers=bearer(token), timeout=30)

    def delete(self, hook_id, token):
        return requests.delete(f"{self.service.url}/hooks/{hook_id}", headers=bearer(token), timeout=30)

    def delete_all(self):
        for token, hook_id in self.made:
            self.delete(hook_id, token)


@pytest.fixture
def hook_client(service, fresh_sandbox):
    made = HookClient(service)
    yield made
    made.delete_all()


def ghl_requests(sandbox):
    return requests.get(sandbox.url + "/_sandbox/requests", timeout=5).json()["requests"]


def test_the_cap_per_credential_refuses_before_spending_ghl_requests(hook_client, fresh_sandbox):
    ids = [hook_client.subscribe(VICTIM).json()["id"] for _ in range(HOOK_CAP)]
    requests.delete(fresh_sandbox.url + "/_sandbox/requests", timeout=5).raise_for_status()
    refused = hook_client.subscribe(VICTIM)
    assert refused.status_code == 403
    error = refused.json()["error"]
    assert error["code"] == "hook_limit_reached" and error["limit"] == HOOK_CAP
    assert str(HOOK_CAP) in error["message"] and "HOOK_MAX_PER_CREDENTIAL" in error["message"]
    assert ghl_requests(fresh_sandbox) == [], "refused before the seeding poll"

    assert hook_client.subscribe(ATTACKER).status_code == 201, "another credential has its own allowance"
    assert hook_client.delete(ids[0], VICTIM).status_code == 200
    assert hook_client.subscribe(VICTIM).status_code == 201, "room again after an unsubscribe"


def test_refreshed_oauth_tokens_count_as_one_credential_against_the_cap(hook_client):
    for token in (JWT_MORNING, JWT_EVENING, JWT_MORNING):
        assert hook_client.subscribe(token).status_code == 201
    assert hook_client.subscribe(JWT_EVENING).json()["error"]["code"] == "hook_limit_reached"


def test_only_the_subscribing_credential_may_read_or_delete_a_hook(hook_client):
    hook_id = hook_client.subscribe(VICTIM).json()["id"]
    # The attacker's token is one GHL accepts for the same location: still someone else's hook.
    for response in (hook_client.get(hook_id, ATTACKER), hook_client.delete(hook_id, ATTACKER)):
        assert response.status_code == 404 and response.json()["error"]["code"] == "unknown_hook"
        assert VICTIM not in response.text
    state = hook_client.get(hook_id, VICTIM)
    assert state.status_code == 200 and state.json()["id"] == hook_id and VICTIM not in state.text
    assert hook_client.delete(hook_id, VICTIM).status_code == 200
    assert hook_client.get(hook_id, VICTIM).status_code == 404


def test_a_refreshed_oauth_token_manages_its_hooks_once_ghl_accepts_it(hook_client, fresh_sandbox):
    hook_id = hook_client.subscribe(JWT_MORNING).json()["id"]
    assert credential_id(SECRET, JWT_FORGED) == credential_id(SECRET, JWT_MORNING)
    # Same claims, but GHL refuses it: nothing else proves a JWT genuine, so it is someone else.
    assert hook_client.get(hook_id, JWT_FORGED).status_code == 404
    assert hook_client.delete(hook_id, JWT_FORGED).status_code == 404
    requests.delete(fresh_sandbox.url + "/_sandbox/requests", timeout=5).raise_for_status()
    refreshed = hook_client.get(hook_id, JWT_EVENING)
    assert refreshed.status_code == 200 and refreshed.json()["id"] == hook_id
    assert [r["path"] for r in ghl_requests(fresh_sandbox)] == ["/contacts/"], "one read proves the token"
    assert hook_client.delete(hook_id, JWT_EVENING).status_code == 200
    assert hook_client.get(hook_id, JWT_MORNING).status_code == 404


# --- the store: the cap under concurrency, round-robin leases, upgrading a database ------------

def make_store(path):
    return SqliteHookStore(str(path), TokenCipher(SECRET))


def add(store, token, now, interval=60):
    return store.create(new_hook_id(), TRIGGER, {"locationId": LOCATION}, token, credential_id(SECRET, token),
                        "https://hooks.zapier.com/h", interval, now)


def _subscribe_within_cap(path, barrier, results):
    store = make_store(path)
    barrier.wait()
    try:
        store.create(new_hook_id(), TRIGGER, {}, VICTIM, credential_id(SECRET, VICTIM),
                     "https://hooks.zapier.com/h", 60, 0.0, max_per_owner=5)
        results.put("created")
    except HookLimitReached:
        results.put("refused")


def test_concurrent_subscribes_never_pass_the_cap(tmp_path):
    path = str(tmp_path / "hooks.sqlite3")
    make_store(path)
    barrier = multiprocessing.Barrier(12)
    results = multiprocessing.Queue()
    processes = [multiprocessing.Process(target=_subscribe_within_cap, args=(path, barrier, results))
                 for _ in range(12)]
    for process in processes:
        process.start()
    outcomes = sorted(results.get(timeout=60) for _ in processes)
    for process in processes:
        process.join(30)
    assert outcomes == ["created"] * 5 + ["refused"] * 7
    assert make_store(path).count_owned(credential_id(SECRET, VICTIM)) == 5


def lease_all(store, now):
    leased = []
    while (subscription := store.lease_next_due("w", now, 30)) is not None:
        leased.append(subscription)
    return leased


def test_one_subscription_of_a_second_owner_is_not_stuck_behind_two_thousand(tmp_path):
    store = make_store(tmp_path / "hooks.sqlite3")
    crowd = [add(store, VICTIM, now=float(n)) for n in range(2000)]
    lonely = add(store, ATTACKER, now=2000.0)
    leased = lease_all(store, now=10_000.0)
    assert lonely.id in [s.id for s in leased[:2]]
    assert sorted(s.id for s in leased) == sorted([s.id for s in crowd] + [lonely.id]), "each once"
    crowd_order = [s.id for s in leased if s.owner == crowd[0].owner]
    assert crowd_order == [s.id for s in crowd], "within an owner, the most overdue first"


def test_owners_with_due_work_take_turns_and_a_new_owner_goes_first(tmp_path):
    store = make_store(tmp_path / "hooks.sqlite3")
    for n in range(5):
        add(store, VICTIM, now=float(n))
    for n in range(5):
        add(store, ATTACKER, now=100.0 + n)
    first_four = [store.lease_next_due("w", 1000.0, 30).owner for _ in range(4)]
    assert all(a != b for a, b in zip(first_four, first_four[1:])), first_four

    newcomer = add(store, JWT_MORNING, now=500.0)  # the least overdue of all
    assert store.lease_next_due("w", 1000.0, 30).id == newcomer.id
    rest = [s.owner for s in lease_all(store, 1000.0)]
    assert len(rest) == 6 and all(a != b for a, b in zip(rest, rest[1:])), rest


def test_a_released_subscription_is_served_again_in_its_owners_turn(tmp_path):
    store = make_store(tmp_path / "hooks.sqlite3")
    busy = [add(store, VICTIM, now=0.0) for _ in range(3)]
    quiet = add(store, ATTACKER, now=0.0)
    leased = [store.lease_next_due("w", 100.0, 30) for _ in range(2)]
    assert {s.owner for s in leased} == {busy[0].owner, quiet.owner}
    # Both released and due again: the owner served first is served first again, then the other.
    for subscription in leased:
        assert store.update_held(subscription.id, "w", release=True, next_poll_at=100.0)
    owners = [store.lease_next_due("w", 100.0, 30).owner for _ in range(2)]
    assert owners == [leased[0].owner, leased[1].owner]


def test_every_lease_statement_uses_an_index(tmp_path):
    store = make_store(tmp_path / "hooks.sqlite3")
    with store._connections.transaction() as conn:
        conn.executemany(
            "INSERT INTO hook_subscriptions (id, trigger, inputs, token_ciphertext, owner, target_url,"
            " interval_seconds, created_at, next_poll_at, next_delivery_at)"
            " VALUES (?, 'x', '{}', 'c', ?, 'u', 60, 0, ?, ?)",
            [(f"h{n}", f"owner-{n % 300}", float(n), float(n) if n % 7 == 0 else None) for n in range(6000)])
    store = make_store(tmp_path / "hooks.sqlite3")  # reopening gives every owner its turn row
    add(store, VICTIM, now=0.0)
    conn = store._connection()
    conn.execute("ANALYZE")
    statements = []
    conn.set_trace_callback(statements.append)
    try:
        assert store.lease_next_due("w", 3000.0, 30) is not None
    finally:
        conn.set_trace_callback(None)
    plans = {}
    for statement in statements:
        if statement.split()[0].upper() in ("SELECT", "UPDATE", "INSERT"):
            plans[statement] = [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + statement)]
    assert len(plans) >= 5, statements
    for statement, plan in plans.items():
        assert not any(step.startswith("SCAN hook_subscriptions") or step.startswith("SCAN s")
                       for step in plan), (statement, plan)
        assert not any("TEMP B-TREE" in step for step in plan), (statement, plan)


# The tables of the release before credentials and turns, exactly as it created them.
PREVIOUS_RELEASE_SCHEMA = """
CREATE TABLE IF NOT EXISTS hook_subscriptions (
    id TEXT PRIMARY KEY, trigger TEXT NOT NULL, inputs TEXT NOT NULL, token_ciphertext TEXT NOT NULL,
    owner TEXT NOT NULL, target_url TEXT NOT NULL, interval_seconds INTEGER NOT NULL, created_at REAL NOT NULL,
    next_poll_at REAL NOT NULL, last_poll_at REAL, last_delivery_at REAL, last_error TEXT, last_error_at REAL,
    delivery_failures INTEGER NOT NULL DEFAULT 0, next_delivery_at REAL, lease_owner TEXT,
    lease_until REAL NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS hook_subscriptions_by_poll ON hook_subscriptions (next_poll_at);
CREATE INDEX IF NOT EXISTS hook_subscriptions_by_delivery ON hook_subscriptions (next_delivery_at);
"""


def test_a_database_of_the_previous_release_is_upgraded_in_place(tmp_path):
    path = tmp_path / "hooks.sqlite3"
    cipher = TokenCipher(SECRET)
    old_owner = "t:" + hmac.new(SECRET.encode(), VICTIM.encode(), hashlib.sha256).hexdigest()[:32]
    with sqlite3.connect(path) as conn:
        conn.executescript(PREVIOUS_RELEASE_SCHEMA)
        conn.executemany(
            "INSERT INTO hook_subscriptions (id, trigger, inputs, token_ciphertext, owner, target_url,"
            " interval_seconds, created_at, next_poll_at)"
            " VALUES (?, ?, '{}', ?, ?, 'https://hooks.zapier.com/h', 60, 0, ?)",
            [(f"old-{n}", TRIGGER, cipher.encrypt(VICTIM), old_owner, float(n)) for n in range(3)])
    conn.close()

    store = make_store(path)
    assert store.count_owned(credential_id(SECRET, VICTIM)) == 3, "existing owners keep matching"
    assert store.token(store.get("old-0")) == VICTIM
    newcomer = add(store, ATTACKER, now=50.0)
    assert [s.id for s in lease_all(store, 1000.0)][:2] in (["old-0", newcomer.id], [newcomer.id, "old-0"])
    make_store(path)  # opening it again changes nothing and fails on nothing


def test_a_subscription_without_a_turn_row_is_still_served(tmp_path):
    """A web process of the previous release may insert while workers of this one run."""
    store = make_store(tmp_path / "hooks.sqlite3")
    with store._connections.transaction() as conn:
        conn.execute(
            "INSERT INTO hook_subscriptions (id, trigger, inputs, token_ciphertext, owner, target_url,"
            " interval_seconds, created_at, next_poll_at) VALUES ('orphan', 'x', '{}', 'c', 'legacy', 'u', 60, 0, 0)")
    assert store.lease_next_due("w", 10.0, 30).id == "orphan"


def test_deleting_an_owners_last_subscription_forgets_its_turn(tmp_path):
    store = make_store(tmp_path / "hooks.sqlite3")
    first, second = add(store, VICTIM, now=0.0), add(store, VICTIM, now=0.0)
    turns = lambda: store._connection().execute("SELECT COUNT(*) FROM hook_owner_turns").fetchone()[0]
    assert turns() == 1
    store.delete(first.id)
    assert turns() == 1
    store.delete(second.id)
    assert turns() == 0

