"""Fairness between tenants (issue 10): the ``bogus-tokens`` and ``hook-flood`` scenarios of
``python -m bench.abuse``. Each is a function of a running service (``bench.harness.Service``,
started by ``bench.abuse`` with the settings in ``BOGUS_ENV`` / ``HOOK_ENV`` and a database of
its own) returning rows of (scenario, configuration, measure, result).

``bogus_tokens``: the rate budget at its default (``GHL_BURST_MAX`` 95 per 10 s). The victim
polls a trigger every ``VICTIM_POLL_INTERVAL`` seconds with the real token, first alone, then
while ``--bogus-threads`` threads poll as fast as they are answered with bogus tokens (one per
thread; the sandbox answers 401) naming the victim's location, each phase ``--bogus-seconds``.

``hook_flood``: the ``Procfile``'s ``worker:`` (the REST-hook worker) runs beside the service,
delivering to a local receiver; the sandbox accepts two tokens, the victim's (``TOKEN``, on
``LOCATION``) and the attacker's (``bench-token-0``, on a location of its own). The attacker
subscribes ``--flood`` hooks (8 at a time) on the same trigger; then the victim subscribes one;
then the victim's location gains a contact every ``--item-interval`` seconds for
``--item-seconds``, and each contact's delay from creation to its arrival at the victim's hook
is measured. Three phases, each on a fresh service, database and worker: no flood; the flood at
the default cap (``HOOK_MAX_PER_CREDENTIAL``); the flood with the cap raised to ``--flood``
(round-robin alone). When the flood at the default cap is accepted whole (a version without a
cap), the third phase would repeat it and is left out.
"""

import statistics
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from bench.harness import LOCATION, TOKEN, HookWorkerProcess, Receiver, Service
from bench.sandbox_server import bench_tokens

TRIGGER = "list_contacts_deprecated"
VICTIM_POLL_INTERVAL = 0.5
ATTACKER_TOKEN = bench_tokens(1)[0]  # the sandbox must be started with tokens >= 1
ATTACKER_LOCATION = "attacker-location"
SUBSCRIBE_THREADS = 8

# The service's settings for each scenario (over the environment; SECRET_KEY comes from Service).
BOGUS_ENV = {}  # every GHL_* setting at its default: 95 requests per 10 s
HOOK_ENV = {
    # The budget out of the way (as for the other scenarios), so only the worker's scheduling is measured.
    "GHL_BURST_MAX": "1000000", "GHL_BURST_WINDOW_SECONDS": "1",
    "HOOK_ALLOW_HTTP": "1", "HOOK_TARGET_HOSTS": "127.0.0.1", "HOOK_POLL_SECONDS": "5",
}


def log(message):
    print(message, flush=True)


def percentile(sorted_values, share):
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * share))]


def _statuses(counter):
    return ", ".join(f"{n:,} × {status}" for status, n in sorted(counter.items(), key=lambda kv: -kv[1]))


# -- bogus tokens -----------------------------------------------------------------------------------
def _poll(session, url, token, subscriber, timeout=30):
    headers = {"Authorization": f"Bearer {token}", "X-Location-Id": LOCATION, "X-Subscriber-Id": subscriber}
    started = time.monotonic()
    try:
        status = session.post(f"{url}/triggers/{TRIGGER}", json={}, headers=headers, timeout=timeout).status_code
    except requests.RequestException as exc:
        status = type(exc).__name__
    return status, time.monotonic() - started


def victim_polls(url, seconds):
    """The victim's polls, one every ``VICTIM_POLL_INTERVAL`` s (each on a new connection) for
    ``seconds``: a list of (status, seconds)."""
    found = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with requests.Session() as session:
            found.append(_poll(session, url, TOKEN, "fairness-victim"))
        time.sleep(VICTIM_POLL_INTERVAL)
    return found


def describe_polls(found):
    answered = sorted(took for status, took in found if status == 200)
    others = Counter(status for status, _ in found if status != 200)
    text = f"{len(answered)}/{len(found)} answered 200"
    if others:
        text += f" (others: {_statuses(others)})"
    if answered:
        text += (f"; p50 {statistics.median(answered) * 1000:,.0f} ms, p99 {percentile(answered, 0.99) * 1000:,.0f} ms,"
                 f" max {answered[-1] * 1000:,.0f} ms")
    return text


class BogusCallers:
    """``count`` threads polling the victim's location with bogus tokens (one each), one request
    after another; ``statuses`` counts the answers."""

    def __init__(self, url, count):
        self.url, self.count = url, count
        self.statuses = Counter()
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads = []

    def _run(self, n):
        with requests.Session() as session:
            while not self.stopping.is_set():
                status, _ = _poll(session, self.url, f"bogus-token-{n}", f"bogus-{n}")
                with self.lock:
                    self.statuses[status] += 1

    def start(self):
        self.threads = [threading.Thread(target=self._run, args=(n,), daemon=True) for n in range(self.count)]
        for thread in self.threads:
            thread.start()
        return self

    def stop(self):
        self.stopping.set()
        for thread in self.threads:
            thread.join(35)


def bogus_tokens(service, label, args):
    seconds, count = args.bogus_seconds, args.bogus_threads
    scenario = f"bogus tokens: {count} threads, {seconds:.0f} s, default rate budget"
    log(f"bogus-tokens {label}: the victim polls alone for {seconds:.0f}s")
    alone = victim_polls(service.url, seconds)
    log(f"    {describe_polls(alone)}")
    log(f"bogus-tokens {label}: the victim polls while {count} threads poll with bogus tokens for {seconds:.0f}s")
    callers = BogusCallers(service.url, count).start()
    try:
        flooded = victim_polls(service.url, seconds)
    finally:
        callers.stop()
    log(f"    {describe_polls(flooded)}; bogus polls: {_statuses(callers.statuses)}")
    every = f"victim's poll (real token, every {VICTIM_POLL_INTERVAL:g} s)"
    rows = [(scenario, label, f"{every}, no bogus traffic", describe_polls(alone)),
            (scenario, label, f"{every}, with the bogus traffic", describe_polls(flooded)),
            (scenario, label, "the bogus polls' answers",
             f"{sum(callers.statuses.values()):,} polls: {_statuses(callers.statuses)}")]
    # Let the budget's window pass before anything else uses this service.
    time.sleep(2)
    return rows


# -- hook flood -------------------------------------------------------------------------------------
class DeliveryReceiver(Receiver):
    """hooks.zapier.com's stand-in (``bench.harness.Receiver``, keeping connections open): accepts
    every delivery (200); ``arrived`` tells, per path, when each item (by GHL id) first arrived."""

    def __init__(self):
        super().__init__(keep_alive=True)

    def arrived(self, path):
        seen = {}
        for batch in self.batches(path):
            for item in batch.items:
                seen.setdefault(item.get("ghl_id", item.get("id")), batch.at)
        return seen


def subscribe(url, token, location, target_url):
    response = requests.post(f"{url}/hooks", timeout=60,
                             headers={"Authorization": f"Bearer {token}", "X-Location-Id": location},
                             json={"trigger": TRIGGER, "target_url": target_url, "inputs": {}})
    code = None
    if response.status_code >= 400:
        try:
            code = response.json().get("error", {}).get("code")
        except (ValueError, AttributeError):
            code = None
    return response.status_code, code


def add_contact(ghl_url, n):
    record = {"firstName": f"Victim{n}", "lastName": "Fairness", "email": f"victim{n}@example.com"}
    response = requests.post(f"{ghl_url}/_sandbox/records", timeout=30,
                             json={"path": "/contacts/", "records": [record], "locationId": LOCATION})
    response.raise_for_status()
    return response.json()["ids"][0]


class GhlPollCounter:
    """GHL contact lists the hook worker asks for, per location, read from the sandbox's request
    log (fetched and cleared every few seconds, as it keeps only the last 10,000 requests)."""

    def __init__(self, ghl_url, every=3.0):
        self.ghl_url, self.every = ghl_url, every
        self.counts = Counter()
        self.stopping = threading.Event()
        self.started = self.ended = None
        self.thread = None

    def _drain(self):
        logged = requests.get(f"{self.ghl_url}/_sandbox/requests", timeout=30).json()["requests"]
        requests.delete(f"{self.ghl_url}/_sandbox/requests", timeout=30)
        for entry in logged:
            if entry["method"] == "GET" and entry["path"].startswith("/contacts"):
                self.counts[(entry.get("query") or {}).get("locationId", [None])[0]] += 1

    def _run(self):
        while not self.stopping.wait(self.every):
            self._drain()

    def start(self):
        requests.delete(f"{self.ghl_url}/_sandbox/requests", timeout=30)
        self.started = time.monotonic()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        self.stopping.set()
        self.thread.join(60)
        self._drain()
        self.ended = time.monotonic()

    def describe(self, attacker_hooks):
        seconds = self.ended - self.started
        victim, attacker = self.counts[LOCATION], self.counts[ATTACKER_LOCATION]
        text = f"victim's hook every {seconds / victim:.1f} s" if victim else "victim's hook never"
        if attacker_hooks:
            text += f"; attacker's hooks {attacker / seconds:.0f} polls/s in all"
            if attacker:
                text += f", each every {seconds * attacker_hooks / attacker:.1f} s"
        return text + f" (over {seconds:.0f} s)"


def sibling_service(service, env, tag):
    """A new service like ``service`` (same tree, Procfile and GHL) with ``env`` over its settings
    and a database of its own."""
    database = Path(service.env["DATABASE_PATH"])
    workdir, tag = database.parent, f"{database.stem}-{tag}"
    settings = {key: value for key, value in service.env.items() if key != "DATABASE_PATH"}
    settings.update(env)
    return Service(service.env["GHL_BASE_URL"], workdir / f"{tag}.sqlite3", env=settings, label=service.label,
                   procfile=service.procfile, cwd=service.cwd, log_path=workdir / f"{tag}.log")


def flood_phase(service, receiver, args, flood, tag):
    """One phase on a fresh ``service``: its hook worker, ``flood`` attacker subscriptions, the
    victim's, then the victim's contacts; returns a dict of what was measured."""
    ghl_url = service.env["GHL_BASE_URL"]
    worker_log = service.log_path.with_suffix(".worker.log") if service.log_path else None
    worker = HookWorkerProcess.for_service(service, worker_log)
    if worker is None:
        raise RuntimeError(f"{service.procfile} has no worker: line")
    found = {"attacker": Counter(), "subscribe_seconds": 0.0}
    worker.start()
    try:
        if flood:
            started = time.monotonic()
            with ThreadPoolExecutor(SUBSCRIBE_THREADS) as pool:
                answers = pool.map(lambda n: subscribe(service.url, ATTACKER_TOKEN, ATTACKER_LOCATION,
                                                       f"{receiver.url}/attacker/{tag}/{n}"), range(flood))
                found["attacker"] = Counter(f"{status} {code}" if code else str(status) for status, code in answers)
            found["subscribe_seconds"] = time.monotonic() - started
            log(f"    attacker: {dict(found['attacker'])} in {found['subscribe_seconds']:.0f}s")
        path = f"/victim/{tag}"
        status, code = subscribe(service.url, TOKEN, LOCATION, receiver.url + path)
        if status != 201:
            raise RuntimeError(f"the victim's subscription failed: {status} {code}")
        time.sleep(5)
        counter = GhlPollCounter(ghl_url).start()
        created = {}
        deadline = time.monotonic() + args.item_seconds
        n = 0
        while time.monotonic() < deadline:
            ghl_id = add_contact(ghl_url, f"{tag}-{n}")
            created[ghl_id] = time.time()
            n += 1
            time.sleep(max(0.0, args.item_interval - (time.time() - created[ghl_id])))
        drain_until = time.monotonic() + args.drain_seconds
        while time.monotonic() < drain_until and not set(created) <= set(receiver.arrived(path)):
            time.sleep(0.2)
        counter.stop()
        if worker.process.poll() is not None:
            raise RuntimeError(f"the hook worker exited with {worker.process.returncode}; see its log")
    finally:
        worker.stop()
    arrived = receiver.arrived(path)
    found["delays"] = sorted(arrived[i] - t for i, t in created.items() if i in arrived)
    found["created"] = len(created)
    accepted = found["attacker"].get("201", 0)
    found["polls"] = counter.describe(accepted)
    return found


def describe_delays(found):
    delays = found["delays"]
    text = f"{len(delays)}/{found['created']} delivered"
    if delays:
        text += (f": p50 {statistics.median(delays):.1f} s, p90 {percentile(delays, 0.9):.1f} s, "
                 f"max {delays[-1]:.1f} s")
    return text


def hook_flood(service, label, args):
    flood = args.flood
    scenario = f"hook flood: {flood:,} hooks against 1, HOOK_POLL_SECONDS=5"
    rows = []
    accepted_all = False
    receiver = DeliveryReceiver().start()
    try:
        phases = [("no flood", service, 0), ("flood, default cap", None, flood),
                  (f"flood, HOOK_MAX_PER_CREDENTIAL={flood}", None, flood)]
        for n, (phase, running, attackers) in enumerate(phases):
            if n == 2 and accepted_all:
                rows.append((scenario, label, f"victim's delivery delay, {phase}",
                             f"not run: the default cap already accepted all {flood:,}"))
                break
            env = {"HOOK_MAX_PER_CREDENTIAL": str(flood)} if n == 2 else {}
            log(f"hook-flood {label}: {phase}")
            own = running or sibling_service(service, env, f"hook-flood-{n}")
            if running is None:
                own.start()
            try:
                found = flood_phase(own, receiver, args, attackers, f"p{n}")
            finally:
                if running is None:
                    own.stop()
            log(f"    victim: {describe_delays(found)}; {found['polls']}")
            if attackers:
                accepted = found["attacker"].get("201", 0)
                accepted_all = accepted == attackers
                refused = Counter({k: v for k, v in found["attacker"].items() if k != "201"})
                rows.append((scenario, label, f"attacker's subscriptions, {phase}",
                             f"{accepted:,} accepted (201), {attackers - accepted:,} refused"
                             + (f" ({_statuses(refused)})" if refused else "")
                             + f"; {found['subscribe_seconds']:.0f} s to subscribe"))
            rows.append((scenario, label, f"victim's delivery delay, {phase}", describe_delays(found)))
            rows.append((scenario, label, f"the worker's GHL polls while measured, {phase}", found["polls"]))
    finally:
        receiver.stop()
    return rows
