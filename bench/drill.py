"""``python -m bench.drill --minutes N`` (``make drill``): nothing lost, nothing doubled, under failure.

For N minutes the sandbox GHL gains contacts at a steady rate while
  - several simulated Zaps poll ``list_contacts_deprecated`` through the service (gunicorn as
    the Procfile runs it), each with its own X-Subscriber-Id and Zapier's per-Zap dedupe by
    ``id`` (a Zap's first poll only fills its dedupe memory, as Zapier's does when a Zap is
    turned on);
  - REST hook subscriptions on the same trigger are served by the hook worker (the Procfile's
    ``worker:``), delivering to a local receiver that stands in for hooks.zapier.com;
  - event triggers (issue 11), each with a Zap and a REST hook, and an actor making its events
    in GHL about once a second (``--event-rate``), plus events the trigger's filter excludes:
    ``contact_tag_added`` (tag ``drill-vip``: the actor tags contacts the creator made, and now
    and then adds another tag), ``opportunity_stage_changed`` (the actor moves each of a pool of
    opportunities, made before the Zaps are on, once to a random stage, and flips a seeded
    opportunity's status), ``new_form_submission`` (form ``drill-form``; now and then a submission
    to another form). ``EVENT_FEEDS`` declares them, one entry each; a feed whose trigger is not in
    the catalog is skipped and said so;
and meanwhile
  - the sandbox injects 429s, 500/502/503s, slow answers (some beyond the service's read
    timeout) and dropped connections on the GHL paths the polls use (each tick, one fault on
    each trigger's list path);
  - gunicorn workers are SIGKILLed at random (the master starts new ones), and so is the hook
    worker (restarted after a pause, as a platform would);
  - the receiver fails a share of deliveries (500, 503, 429 with Retry-After, a dropped
    connection) and answers some slowly.
Then creation, events, faults and kills stop, and the Zaps and hooks run until every created
contact and every event has fired (or a drain timeout passes). An item has "fired" for a Zap
when the Zap's dedupe let it through; for a hook, when the receiver accepted (2xx) a delivery
holding it. Zapier does not dedupe REST hook payloads, so for hooks every accepted copy counts.
An event is told by what it did (the contact and the tag added; the opportunity and the stage it
moved to; the submission), so a fire with a wrong value counts as missing and unexpected.

Prints, per Zap and per hook: created (contacts, or events made), fired, missing, duplicated
(fired more than once), unexpected (fired, never made: a filtered-out event, a wrong value), and
exits 1 on any missing, duplicated or unexpected. For a hook, a batch the worker sends again
because it never read the receiver's answer (it was SIGKILLed while the batch was in flight, or
the answer came after its delivery timeout: the receiver times each batch, the drill each kill)
is the at-least-once design, not a duplicate: its items are counted apart, as ``repeated``.

Many hosts (``--hosts 2``): two hosts, each the Procfile's ``web:`` group and its ``worker:`` in
process groups of their own on ports of their own, sharing one store (``--backend postgres``: a
throwaway PostgreSQL server, ``bench.postgres_server``, and a fresh database; ``--backend sqlite``:
one SQLite file, which two hosts can share only on one machine). Every Zap polls through the
hosts in turn; hooks are subscribed on one host and deleted on another (each drill hook at the
end; meanwhile, every ``--churn-interval`` seconds, a short-lived hook is subscribed on one host
and deleted on the next while faults and kills go on), and each host must see, and stop
delivering, what the other did; gunicorn workers and hook workers are killed on every host in
turn. The checks are the same, plus per host: polls, kills, hooks subscribed and deleted; and the
rate budget: the sandbox (``bench.audited_sandbox``, in every mode) times every GHL request it
counts against its burst limit (``--burst-limit``, per token and location; the service's budget
``GHL_BURST_MAX`` is set 5% under it), and the drill fails if any request of the service's token
was refused (429) for the limit: the hosts' budget is one budget.
"""

import argparse
import random
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable
from pathlib import Path

import requests

from bench import harness
from bench.harness import LOCATION, ROOT, TOKEN, Host, SandboxProcess, Store, procfile_command
from catalog.registry import load_catalog

TRIGGER = "list_contacts_deprecated"
GHL_PATH_PREFIX = "/contacts"
# A hook worker killed this long after a batch was answered may not have recorded the delivery yet.
KILL_GRACE = 2.0
# What the sandbox injects, and how often relative to each other. "timeout" is a delay beyond the
# service's 10 s read timeout; "slow" stays within it.
FAULT_KINDS = ("429", "5xx", "slow", "drop", "timeout")
FAULT_WEIGHTS = (2, 3, 2, 2, 0.5)
# The actors making events call GHL with a token of their own, so their requests never count
# against the rate limit the service's polls are held to (``SandboxProcess(tokens=1)``).
ACTOR_TOKEN = "bench-token-0"
PIPELINE = "sandbox-pipeline-1"
STAGES = ("sandbox-stage-2", "sandbox-stage-3", "sandbox-stage-4")
DRILL_TAG = "drill-vip"
DRILL_FORM = "drill-form"
# The stage Zap's first poll scans at most the catch-up cap of pages (10 of 100): the pool stays within it.
MAX_OPPORTUNITY_POOL = 900
# A delivery to a hook deleted this long ago was started after its deletion (the worker renews its
# lease, which a deleted subscription no longer has, just before it POSTs).
DELETED_GRACE = 2.0
# The sandbox's burst limit (per token and location per 10 s): GHL's with one host; with several, low
# enough that the drill's GHL requests press on it (about 60 in 10 s otherwise), so that their shared budget binds.
GHL_BURST_LIMIT = 100
SHARED_BURST_LIMIT = 50


def item_key(item):
    return item.get("ghl_id") or item.get("id")


@dataclass(frozen=True)
class EventFeed:
    """An event trigger in the drill: a Zap (and a hook) with ``inputs``; its GHL list path, where
    the chaos injects faults; ``key``: the event a fired item reports, compared with the events
    the actor (``Drill.<actor>``, called once per event) made."""
    trigger: str
    inputs: dict
    fault_method: str
    fault_prefix: str
    actor: str
    key: Callable = item_key


EVENT_FEEDS = (
    EventFeed("contact_tag_added", {"tag": DRILL_TAG}, "POST", "/contacts/search", "tag_event",
              lambda item: f"{item['ghl_id']}+{item['tag']}"),
    EventFeed("opportunity_stage_changed", {"pipelineId": PIPELINE}, "GET", "/opportunities/search", "stage_event",
              lambda item: f"{item['ghl_id']}>{item['pipelineStageId']}"),
    EventFeed("new_form_submission", {"formId": DRILL_FORM}, "GET", "/forms/submissions", "form_event"),
    # Another trigger: one entry here and an actor method making one event (returns its key or None).
)


def log(message):
    print(f"[drill {time.strftime('%H:%M:%S')}] {message}", flush=True)


# -- the simulated Zapier ---------------------------------------------------------------------

class PollingZap:
    """One Zap on a polling trigger: polls through the service and fires on ids it has not seen.
    Given several services' URLs (hosts), it polls through each in turn; ``host_polls[n]``
    counts outcomes of the polls through ``service_urls[n]``."""

    def __init__(self, service_urls, name, trigger=TRIGGER, inputs=None, key=item_key):
        self.name = name
        service_urls = [service_urls] if isinstance(service_urls, str) else list(service_urls)
        self.urls = [f"{url}/triggers/{trigger}" for url in service_urls]
        self.url = self.urls[0]
        self.turn = 0
        self.host_polls = [Counter() for _ in self.urls]
        self.inputs = inputs or {}
        self.key = key
        self.headers = {"Authorization": f"Bearer {TOKEN}", "X-Location-Id": LOCATION, "X-Subscriber-Id": name}
        self.session = requests.Session()
        self.seen = set()
        self.fired = Counter()  # GHL id (the event, for an event trigger) -> times fired
        self.fired_ids = {}  # the same -> the item ids that fired it, for the report's examples
        self.polls = Counter()  # outcome -> count
        self.lock = threading.Lock()

    def poll(self, populate=False):
        host = self.turn % len(self.urls)
        self.turn += 1
        try:
            response = self.session.post(self.urls[host], json=self.inputs, headers=self.headers, timeout=30)
        except requests.RequestException as exc:
            self.polls[type(exc).__name__] += 1
            self.host_polls[host][type(exc).__name__] += 1
            return False
        self.polls[response.status_code] += 1
        self.host_polls[host][response.status_code] += 1
        if response.status_code != 200:
            return False
        items = response.json()
        with self.lock:
            for item in reversed(items):
                if item["id"] in self.seen:
                    continue
                self.seen.add(item["id"])
                if not populate:
                    self.fired[self.key(item)] += 1
                    self.fired_ids.setdefault(self.key(item), []).append(item["id"])
        return True


class Receiver(harness.Receiver):
    """hooks.zapier.com's stand-in (``bench.harness.Receiver``, keeping connections open): one path
    per subscription. While ``failing`` its answer policy answers a share of deliveries with a
    failure or slowly; the rest it accepts (200)."""

    FAILURES = ("500", "503", "429", "drop", "slow")

    def __init__(self, fail_share, rng, slow_seconds=1.5):
        super().__init__(answer=self.fault_mix, keep_alive=True)
        self.fail_share = fail_share
        self.slow_seconds = slow_seconds
        self.rng = rng
        self.failing = True
        self.keys = {}  # path -> what an item reports (default: its GHL id)
        self.outcomes = Counter()

    def fault_mix(self, path, body):
        """The answer to one delivery (called under the receiver's lock)."""
        failure = None
        if self.failing and self.rng.random() < self.fail_share:
            failure = self.rng.choice(self.FAILURES)
        self.outcomes[failure or "accepted"] += 1
        if failure == "drop":
            return harness.Answer(drop=True)
        if failure in ("500", "503", "429"):
            return harness.Answer(int(failure), {"Retry-After": "1"} if failure == "429" else {}, body=b"")
        return harness.Answer(delay=self.slow_seconds if failure == "slow" else 0.0)

    def accepted_batches(self, path):
        """Batches to ``path`` answered 200 (the answer written or being written), in that order."""
        return sorted((batch for batch in self.batches(path) if batch.accepted), key=lambda batch: batch.replying)

    def ids(self, path):
        key = self.keys.get(path, item_key)
        return Counter(key(item) for batch in self.accepted_batches(path) for item in batch.items)

    def item_ids(self, path):
        key = self.keys.get(path, item_key)
        found = {}
        for batch in self.accepted_batches(path):
            for item in batch.items:
                found.setdefault(key(item), []).append(item.get("id"))
        return found

    def unread(self, path, kills_at, delivery_timeout):
        """(What an item reports, its id) -> how many of its accepted copies came in a batch whose answer
        the hook worker may never have read: the worker was SIGKILLed while the batch was in flight
        (from a second before it was read in full to ``KILL_GRACE`` after it was answered: the
        worker still had to read the 200 and record it), or it was answered later than the
        worker's delivery timeout. The worker sends such a batch again, by design (at least once)."""
        unread = Counter()
        key = self.keys.get(path, item_key)
        for batch in self.accepted_batches(path):
            if batch.answered is None:
                continue
            received, answered = batch.received, batch.answered
            late = answered - received >= delivery_timeout - 0.5
            if late or any(received - 1.0 <= at <= answered + KILL_GRACE for at in kills_at):
                unread.update((key(item), item.get("id")) for item in batch.items)
        return unread


# -- the drill --------------------------------------------------------------------------------

@dataclass
class DrillConfig:
    minutes: float = 2.0
    zaps: int = 3
    hooks: int = 2
    rate: float = 4.0  # contacts created per second
    poll_interval: float = 1.0  # seconds between a Zap's polls (jittered)
    fault_interval: float = 2.5  # seconds between injected GHL faults (jittered)
    kill_interval: float = 6.0  # seconds between gunicorn worker kills (jittered)
    hook_kill_interval: float = 12.0  # seconds between hook worker kills (jittered)
    receiver_fail_share: float = 0.3
    drain_seconds: float = 150.0
    settle_seconds: float = 3.0
    workers: int = None  # None: the Procfile's
    threads: int = None  # None: the Procfile's gevent workers; N: gthread with N threads (the line before issue 10)
    seed: int = None
    keep_workdir: bool = False
    include_hooks: bool = True
    event_triggers: tuple = tuple(feed.trigger for feed in EVENT_FEEDS)  # () for none
    event_rate: float = 1.0  # events made per second, per event trigger
    hosts: int = 1  # hosts (a web group and a hook worker each) sharing one store
    backend: str = "sqlite"  # the store: sqlite (one file) or postgres (a throwaway server)
    database_url: str = None  # postgres: an existing empty database to use instead of starting a server
    burst_limit: int = None  # the sandbox's burst limit per token and location per 10 s (None: 100, GHL's, with
    # one host; 50 with several, so that their shared budget binds); the service's GHL_BURST_MAX is 5% under it
    # Seconds between short-lived hooks (subscribed on one host, deleted on the next); None: 8 if hosts > 1, else off.
    churn_interval: float = None
    service_dir: str = None  # run the hosts from another checkout of the service (its Procfile and code)


def service_budget(burst_limit):
    """The service's GHL_BURST_MAX for a sandbox limit: 5% under it, as 95 is under GHL's 100."""
    return max(1, burst_limit - max(1, -(-burst_limit // 20)))


@dataclass
class Report:
    created: int = 0
    rows: list = field(default_factory=list)
    faults: Counter = field(default_factory=Counter)
    worker_kills: int = 0
    hook_worker_kills: int = 0
    receiver: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    drain_seconds: float = 0.0
    hooks_note: str = ""
    events_note: str = ""
    events: dict = field(default_factory=dict)  # trigger -> events made
    seed: int = 0
    backend: str = "sqlite"
    hosts: list = field(default_factory=list)  # per host: name, url, polls, kills, hooks subscribed/deleted
    hook_checks: list = field(default_factory=list)  # hooks subscribed on one host, deleted on another
    rate: dict = field(default_factory=dict)  # the sandbox's rate audit (bench.audited_sandbox)

    @property
    def rate_problems(self):
        """Buckets of the service's token where the sandbox refused requests for its burst limit."""
        return [b for b in self.rate.get("buckets", ()) if b["token"] == TOKEN
                and (b["refused"] or b["peak"] > self.rate["limit"])]

    @property
    def hook_problems(self):
        return [check for check in self.hook_checks if check["problems"]]

    @property
    def ghl_calls(self):
        """GHL requests the sandbox counted for the service's token (all hosts, Zaps and hooks)."""
        return sum(b["requests"] + b["refused"] for b in self.rate.get("buckets", ()) if b["token"] == TOKEN)

    @property
    def failed(self):
        return (any(row["missing"] or row["duplicated"] or row["unexpected"] for row in self.rows)
                or bool(self.rate_problems) or bool(self.hook_problems))

    def totals(self):
        """What a summary (the bench's two-host table) shows of this run."""
        polls = sum(sum(host["polls"].values()) for host in self.hosts)
        return {"backend": self.backend, "hosts": len(self.hosts), "seconds": self.seconds,
                "created": self.created, "events": sum(self.events.values()),
                "polls": polls, "polls_per_host": [sum(host["polls"].values()) for host in self.hosts],
                "ghl_calls": self.ghl_calls,
                "peak": max((b["peak"] for b in self.rate.get("buckets", ()) if b["token"] == TOKEN), default=0),
                "limit": self.rate.get("limit"), "refused": sum(b["refused"] for b in self.rate_problems),
                "missing": sum(row["missing"] for row in self.rows),
                "duplicated": sum(row["duplicated"] for row in self.rows),
                "unexpected": sum(row["unexpected"] for row in self.rows),
                "repeated": sum(row.get("repeated", 0) for row in self.rows),
                "worker_kills": self.worker_kills, "hook_worker_kills": self.hook_worker_kills,
                "hook_checks": len(self.hook_checks), "hook_problems": len(self.hook_problems),
                "failed": self.failed}


class Drill:
    def __init__(self, config, workdir):
        self.config = config
        self.workdir = Path(workdir)
        self.rng = random.Random(config.seed)
        self.stop_chaos = threading.Event()
        self.stop_creating = threading.Event()
        self.stop_all = threading.Event()
        self.created = []
        self.created_lock = threading.Lock()
        self.report = Report(seed=config.seed, backend=config.backend)
        self.sandbox = self.receiver = self.store = None
        self.hosts = []  # harness.Host: a web group and (with hooks) a hook worker each
        self.host_stats = []  # per host: worker_kills, hook_worker_kills, hooks_subscribed, hooks_deleted
        self.zaps, self.hook_paths, self.threads = [], [], []
        self.hook_ids = {}  # receiver path -> (hook id, index of the host it was subscribed on)
        self.feeds = []  # the EVENT_FEEDS in this run
        self.event_zaps, self.event_hook_paths = {}, {}  # trigger -> Zap, receiver path
        self.events = {}  # trigger -> keys of the events made
        self.opportunity_pool = []
        self.hook_kills_at = []
        self.tagged = 0  # contacts (in creation order) tagged so far
        self.actor_http = requests.Session()
        self.actor_http.headers.update({"Authorization": f"Bearer {ACTOR_TOKEN}", "Version": "2021-07-28"})

    @property
    def service(self):
        """The first host's web group (the only one with ``--hosts 1``)."""
        return self.hosts[0].service if self.hosts else None

    @property
    def burst_limit(self):
        if self.config.burst_limit is not None:
            return self.config.burst_limit
        return GHL_BURST_LIMIT if self.config.hosts == 1 else SHARED_BURST_LIMIT

    @property
    def churn_interval(self):
        if self.config.churn_interval is not None:
            return self.config.churn_interval
        return 8.0 if self.config.hosts > 1 else 0.0

    # -- processes --------------------------------------------------------------------------
    def env(self):
        return {"SECRET_KEY": "drill-secret-key", "HOOK_TARGET_HOSTS": "127.0.0.1", "HOOK_ALLOW_HTTP": "1",
                "HOOK_POLL_SECONDS": "5", "HOOK_TICK_SECONDS": "0.2", "HOOK_DELIVERY_TIMEOUT": "3",
                "HOOK_LEASE_SECONDS": "5", "LOG_LEVEL": "WARNING",
                "GHL_BURST_MAX": str(service_budget(self.burst_limit))}

    def open_store(self):
        """(database_path, database_url) every host shares: one SQLite file, or a fresh database on
        a throwaway PostgreSQL server (or the one ``database_url`` names)."""
        config = self.config
        if config.backend not in Store.KINDS:
            raise ValueError(f"unknown backend {config.backend!r} (sqlite, postgres)")
        if config.backend == "postgres" and config.database_url:
            return self.workdir / "service.sqlite3", config.database_url
        self.store = Store(config.backend, self.workdir).start()
        if config.backend == "sqlite":
            return self.workdir / "service.sqlite3", None
        return self.store.fresh("drill")

    def start(self):
        config = self.config
        self.sandbox = SandboxProcess(latency_ms=0, tokens=1, burst_limit=self.burst_limit, audit=True,
                                      log_path=self.workdir / "sandbox.log").start()
        database_path, database_url = self.open_store()
        extra = ["--worker-class", "gthread", "--threads", str(config.threads)] if config.threads else []
        code = Path(config.service_dir).resolve() if config.service_dir else ROOT
        where = {"cwd": code, "procfile": code / "Procfile"}
        if config.include_hooks:
            command = procfile_command("worker", where["procfile"])
            if command is None or not (code / "triggers" / "hooks_worker.py").exists():
                self.report.hooks_note = "no worker: line in the Procfile / no triggers/hooks_worker.py; hooks skipped"
                config.include_hooks = False
        single = config.hosts == 1
        for n in range(config.hosts):
            host = Host(f"host{n + 1}", self.sandbox.url, database_path, database_url, env=self.env(),
                        log_dir=self.workdir, hook_worker=config.include_hooks, workers=config.workers,
                        extra_args=extra, **where)
            if single:  # the logs' names before there were hosts
                host.service.log_path = self.workdir / "gunicorn.log"
                if host.worker:
                    host.worker.log_path = self.workdir / "hooks-worker.log"
            host.service.start()
            self.hosts.append(host)
            self.host_stats.append(Counter())
            log(f"{'service' if single else host.name} {host.url} on {config.backend}"
                f"{'' if single else ' (shared)'}: {' '.join(host.service.argv[1:])}")
        log(f"sandbox {self.sandbox.url}, burst limit {self.burst_limit} per 10 s per token and location; "
            f"the service's budget GHL_BURST_MAX={service_budget(self.burst_limit)}")
        if config.include_hooks:
            self.receiver = Receiver(config.receiver_fail_share, random.Random(self.rng.random())).start()
            for host in self.hosts:
                host.worker.start()
            log(f"hook worker{'s' if not single else ''}: {procfile_command('worker', where['procfile'])}; "
                f"receiver {self.receiver.url}" + (f"; the service's code from {code}" if code != ROOT else ""))
        catalog = {record["key"] for record in load_catalog()}
        wanted = [feed for feed in EVENT_FEEDS if feed.trigger in config.event_triggers]
        self.feeds = [feed for feed in wanted if feed.trigger in catalog]
        skipped = [feed.trigger for feed in wanted if feed.trigger not in catalog]
        unknown = set(config.event_triggers) - {feed.trigger for feed in EVENT_FEEDS}
        if skipped or unknown:
            self.report.events_note = "; ".join(
                ([f"not in the catalog, skipped: {', '.join(skipped)}"] if skipped else [])
                + ([f"no EVENT_FEEDS entry: {', '.join(sorted(unknown))}"] if unknown else []))
        self.events = {feed.trigger: [] for feed in self.feeds}

    def stop(self):
        self.stop_all.set()
        for thread in self.threads:
            thread.join(40)
        self.actor_http.close()
        for host in self.hosts:
            host.stop()
        if self.receiver:
            self.receiver.stop()
        if self.sandbox:
            self.sandbox.stop()
        if self.store:
            self.store.stop()

    @property
    def urls(self):
        return [host.url for host in self.hosts]

    # -- the actors -------------------------------------------------------------------------
    def _thread(self, target, name):
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self.threads.append(thread)

    def _sleep(self, seconds, event):
        event.wait(max(0.0, seconds))

    def creator(self):
        n = 0
        interval = 1.0 / self.config.rate
        next_at = time.monotonic()
        while not self.stop_creating.is_set():
            record = {"firstName": f"Drill{n}", "lastName": "Contact", "email": f"drill{n}@example.com"}
            try:
                ids = self.sandbox.add_records("/contacts/", [record])
            except requests.RequestException as exc:  # the control API is never faulted; report loudly
                log(f"creating a contact failed: {exc!r}")
                ids = []
            with self.created_lock:
                self.created.extend(ids)
            n += 1
            next_at += interval
            self._sleep(next_at - time.monotonic(), self.stop_creating)

    # Event actors: each makes one event (returns its key, or None when it made none) and, every
    # fourth call, one the trigger's filter excludes. GHL calls use the actors' own token.
    def ghl(self, method, path, body):
        for attempt in range(5):
            try:
                response = self.actor_http.request(method, self.sandbox.url + path, json=body, timeout=15)
                if response.status_code < 300:
                    return True
                problem = f"{response.status_code} {response.text[:200]}"
            except requests.RequestException as exc:
                problem = repr(exc)
            log(f"an actor's {method} {path} failed (attempt {attempt + 1}): {problem}")
            time.sleep(0.5)
        return False

    def tag_event(self, n):
        with self.created_lock:
            if self.tagged >= len(self.created):
                return None
            contact = self.created[self.tagged]
            self.tagged += 1
            noise = self.created[self.rng.randrange(len(self.created))] if n % 4 == 3 else None
        if noise and not self.ghl("POST", f"/contacts/{noise}/tags", {"tags": [f"drill-other-{n}"]}):
            log("adding a filtered-out tag failed")
        tagged = self.ghl("POST", f"/contacts/{contact}/tags", {"tags": [DRILL_TAG]})
        return f"{contact}+{DRILL_TAG}" if tagged else None

    def stage_event(self, n):
        if n % 4 == 3:  # a status change is not a stage change
            self.ghl("PUT", "/opportunities/sandbox-opportunity-1/status", {"status": ("won", "open")[n % 8 // 4]})
        if not self.opportunity_pool:
            return None
        opportunity, stage = self.opportunity_pool.pop(), self.rng.choice(STAGES)
        moved = self.ghl("PUT", f"/opportunities/{opportunity}", {"pipelineId": PIPELINE, "pipelineStageId": stage})
        return f"{opportunity}>{stage}" if moved else None

    def form_event(self, n):
        def submit(form):
            return self.sandbox.add_records("/forms/submissions", [{
                "formId": form, "contactId": "sandbox-contact-1", "name": f"Drill {n}",
                "email": f"drill-form{n}@example.com", "others": {"message": "drill"}}])[0]
        if n % 4 == 3:
            submit("drill-other-form")
        return submit(DRILL_FORM)

    def event_actor(self, feed):
        make = getattr(self, feed.actor)
        interval = 1.0 / self.config.event_rate
        next_at, n = time.monotonic(), 0
        while not self.stop_creating.is_set():
            try:
                made = make(n)
            except requests.RequestException as exc:  # the control API is never faulted; report loudly
                log(f"{feed.trigger}: making an event failed: {exc!r}")
                made = None
            if made is not None:
                with self.created_lock:
                    self.events[feed.trigger].append(made)
            n += 1
            next_at += interval
            self._sleep(next_at - time.monotonic(), self.stop_creating)

    def zap_loop(self, zap):
        while not self.stop_all.is_set():
            zap.poll()
            self._sleep(self.config.poll_interval * self.rng.uniform(0.5, 1.5), self.stop_all)

    def fault_targets(self):
        return [("GET", GHL_PATH_PREFIX)] + [(feed.fault_method, feed.fault_prefix) for feed in self.feeds]

    def fault(self, method="GET", path_prefix=GHL_PATH_PREFIX):
        kind = self.rng.choices(FAULT_KINDS, FAULT_WEIGHTS)[0]
        spec = {"path_prefix": path_prefix, "method": method, "times": self.rng.randint(1, 3)}
        if kind == "429":
            spec["status"] = 429
        elif kind == "5xx":
            spec["status"] = self.rng.choice((500, 502, 503))
        elif kind == "slow":
            spec["delay_ms"] = self.rng.randint(500, 4000)
        elif kind == "drop":
            spec["drop"] = True
            spec["times"] = self.rng.randint(1, 2)
        else:  # beyond the service's 10 s read timeout: the GET is retried
            spec["delay_ms"] = 11_000
            spec["times"] = 1
        return kind, spec

    def chaos(self):
        while not self.stop_chaos.is_set():
            self._sleep(self.config.fault_interval * self.rng.uniform(0.5, 1.5), self.stop_chaos)
            if self.stop_chaos.is_set():
                break
            for method, path_prefix in self.fault_targets():
                kind, spec = self.fault(method, path_prefix)
                try:
                    self.sandbox.add_faults([spec])
                    self.report.faults[kind] += 1
                except requests.RequestException as exc:
                    log(f"injecting a fault failed: {exc!r}")

    def killer(self):
        """SIGKILL a random gunicorn worker of each host in turn."""
        turn = 0
        while not self.stop_chaos.is_set():
            self._sleep(self.config.kill_interval * self.rng.uniform(0.5, 1.5), self.stop_chaos)
            if self.stop_chaos.is_set():
                break
            n = turn % len(self.hosts)
            turn += 1
            service = self.hosts[n].service
            pids = service.worker_pids()
            if pids and service.kill_worker(self.rng.choice(pids)):
                self.report.worker_kills += 1
                self.host_stats[n]["worker_kills"] += 1

    def hook_killer(self):
        """SIGKILL the hook worker of each host in turn; it comes back after a pause."""
        turn = 0
        while not self.stop_chaos.is_set():
            self._sleep(self.config.hook_kill_interval * self.rng.uniform(0.5, 1.5), self.stop_chaos)
            if self.stop_chaos.is_set():
                break
            n = turn % len(self.hosts)
            turn += 1
            worker = self.hosts[n].worker
            self.hook_kills_at.append(time.monotonic())
            worker.kill9()
            self.host_stats[n]["hook_worker_kills"] += 1
            self._sleep(self.rng.uniform(0.5, 3.0), self.stop_all)
            worker.start()

    def churner(self):
        """Now and then a hook on the drill trigger, subscribed on one host and, a few seconds
        later, deleted on the next (``check_deleted``), while faults and kills go on."""
        n = 0
        while not self.stop_chaos.is_set():
            self._sleep(self.churn_interval * self.rng.uniform(0.5, 1.5), self.stop_chaos)
            if self.stop_chaos.is_set():
                break
            on = n % len(self.hosts)
            hook_id = None
            for attempt in range(4):  # subscribing polls GHL once, and GHL is failing now and then
                # A path per attempt: a subscription whose answer was lost (its worker killed) may exist,
                # unknown to the drill, and its deliveries must not count against the one checked.
                path = f"/churn/{n}" + (f"-{attempt}" if attempt else "")
                try:
                    hook_id = self.subscribe(TRIGGER, path, {}, on)
                    break
                except (RuntimeError, requests.RequestException) as exc:
                    log(f"churn: subscribing {path} on host {on + 1} failed (attempt {attempt + 1}): {exc}")
                    self._sleep(1.0, self.stop_all)
            n += 1
            if hook_id is None:
                self.report.hook_checks.append({"path": path, "kind": "churn", "subscribed_on": on + 1,
                                                "deleted_on": None, "problems": [],
                                                "note": "never subscribed (GHL faults)"})
                continue
            self._sleep(self.rng.uniform(2.0, 6.0), self.stop_all)
            self.report.hook_checks.append(self.check_deleted(path, hook_id, on, "churn"))

    def hook_state(self, host, hook_id):
        response = requests.get(f"{self.hosts[host].url}/hooks/{hook_id}", timeout=30,
                                headers={"Authorization": f"Bearer {TOKEN}", "X-Location-Id": LOCATION})
        return response.status_code

    def check_deleted(self, path, hook_id, on, kind):
        """Delete the hook subscribed on host ``on`` through the next host: that host must see it
        first (200), the deletion must succeed, and the subscribing host then no longer knows it
        (404); ``tally`` later counts deliveries begun after the deletion (none allowed)."""
        other = (on + 1) % len(self.hosts)
        problems = []
        for attempt in range(5):  # a killed worker may drop the connection; the checks are idempotent
            try:
                seen = self.hook_state(other, hook_id)
                response = requests.delete(f"{self.hosts[other].url}/hooks/{hook_id}", timeout=30,
                                           headers={"Authorization": f"Bearer {TOKEN}", "X-Location-Id": LOCATION})
                deleted_at = time.monotonic()
                gone = self.hook_state(on, hook_id)
                break
            except requests.RequestException as exc:
                if attempt == 4:
                    raise
                log(f"checking {path}'s deletion: {exc!r}; again")
                time.sleep(1.0)
        if seen != 200 and not (attempt and seen == 404):  # 404 on a retry: deleted by the first try
            problems.append(f"host {other + 1} did not see it ({seen})")
        if response.status_code != 200:
            problems.append(f"deleting on host {other + 1} answered {response.status_code}")
        if gone != 404:
            problems.append(f"host {on + 1} still knows it after the deletion ({gone})")
        self.host_stats[other]["hooks_deleted"] += 1
        return {"path": path, "kind": kind, "hook_id": hook_id, "subscribed_on": on + 1, "deleted_on": other + 1,
                "deleted_at": deleted_at, "problems": problems}

    # -- the run ----------------------------------------------------------------------------
    def subscribe(self, trigger, path, inputs, host=0):
        """Subscribe a hook delivering to ``path`` through host number ``host``; its id."""
        response = requests.post(f"{self.hosts[host].url}/hooks", timeout=30,
                                 headers={"Authorization": f"Bearer {TOKEN}", "X-Location-Id": LOCATION},
                                 json={"trigger": trigger, "target_url": self.receiver.url + path, "inputs": inputs})
        if response.status_code != 201:
            raise RuntimeError(f"subscribing a hook to {trigger} failed: {response.status_code} "
                               f"{response.text[:300]}")
        self.host_stats[host]["hooks_subscribed"] += 1
        hook_id = response.json()["id"]
        self.hook_ids[path] = (hook_id, host)
        return hook_id

    def subscribe_hooks(self):
        """The drill's hooks, subscribed on the hosts in turn."""
        turn = 0
        for n in range(self.config.hooks):
            path = f"/hook/{n}"
            self.subscribe(TRIGGER, path, {}, turn % len(self.hosts))
            turn += 1
            self.hook_paths.append(path)
        if self.config.hooks:
            for feed in self.feeds:
                path = f"/hook/{feed.trigger}"
                self.receiver.keys[path] = feed.key
                self.subscribe(feed.trigger, path, feed.inputs, turn % len(self.hosts))
                turn += 1
                self.event_hook_paths[feed.trigger] = path

    def delete_hooks(self):
        """With several hosts: each drill hook is deleted on another host than it was subscribed on."""
        for path in [*self.hook_paths, *self.event_hook_paths.values()]:
            hook_id, on = self.hook_ids[path]
            self.report.hook_checks.append(self.check_deleted(path, hook_id, on, "drill hook"))

    def turn_on(self, zap):
        """The Zap's first poll fills Zapier's dedupe memory (nothing fires)."""
        deadline = time.monotonic() + 30
        while not zap.poll(populate=True):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{zap.name}'s first poll never succeeded")
            time.sleep(0.5)
        zap.polls.clear()
        for counter in zap.host_polls:
            counter.clear()
        return zap

    def make_opportunity_pool(self):
        """Opportunities the stage actor moves, each once, made before the Zaps are on."""
        seconds = self.config.minutes * 60
        size = min(MAX_OPPORTUNITY_POOL, int(self.config.event_rate * seconds * 1.2) + 10)
        self.opportunity_pool = self.sandbox.add_records("/opportunities/", [
            {"name": f"Drill deal {n}", "pipelineId": PIPELINE, "pipelineStageId": "sandbox-stage-1",
             "status": "open", "contactId": "sandbox-contact-1"} for n in range(size)])
        self.opportunity_pool.reverse()  # popped oldest first

    def all_fired(self):
        with self.created_lock:
            created = set(self.created)
            events = {trigger: set(made) for trigger, made in self.events.items()}
        zaps_done = all(created <= set(zap.fired) for zap in self.zaps)
        hooks_done = all(created <= set(self.receiver.ids(path)) for path in self.hook_paths)
        events_done = all(events[trigger] <= set(zap.fired) for trigger, zap in self.event_zaps.items())
        event_hooks_done = all(events[trigger] <= set(self.receiver.ids(path))
                               for trigger, path in self.event_hook_paths.items())
        return zaps_done and hooks_done and events_done and event_hooks_done

    def run(self):
        started = time.monotonic()
        config = self.config
        self.start()
        try:
            if any(feed.trigger == "opportunity_stage_changed" for feed in self.feeds):
                self.make_opportunity_pool()
            # Zaps are turned on: the first poll fills Zapier's dedupe memory (nothing fires).
            for n in range(config.zaps):
                self.zaps.append(self.turn_on(PollingZap(self.urls, f"drill-zap-{n}")))
            for feed in self.feeds:
                self.event_zaps[feed.trigger] = self.turn_on(
                    PollingZap(self.urls, f"drill-{feed.trigger}", feed.trigger, feed.inputs, feed.key))
            if config.include_hooks:
                self.subscribe_hooks()
            log(f"{config.zaps} Zaps and {len(self.hook_paths)} hooks on; creating {config.rate:g} contacts/s "
                f"for {config.minutes:g} min with faults and kills (seed {config.seed})"
                + (f"; {len(self.hosts)} hosts on one {config.backend} store, Zaps polling through each in turn"
                   if len(self.hosts) > 1 else ""))
            if self.feeds:
                log(f"event triggers, a Zap and {'a hook' if self.event_hook_paths else 'no hook'} each, "
                    f"{config.event_rate:g} events/s: {', '.join(feed.trigger for feed in self.feeds)}")
            self._thread(self.creator, "creator")
            for feed in self.feeds:
                self._thread(lambda feed=feed: self.event_actor(feed), f"actor-{feed.trigger}")
            for zap in [*self.zaps, *self.event_zaps.values()]:
                self._thread(lambda zap=zap: self.zap_loop(zap), zap.name)
            self._thread(self.chaos, "chaos")
            self._thread(self.killer, "killer")
            if config.include_hooks:
                self._thread(self.hook_killer, "hook-killer")
                if self.churn_interval > 0:
                    self._thread(self.churner, "churner")
            chaos_end = time.monotonic() + config.minutes * 60
            while time.monotonic() < chaos_end:
                time.sleep(min(5.0, max(0.0, chaos_end - time.monotonic())))
                with self.created_lock:
                    count = len(self.created)
                    made = {trigger: len(keys) for trigger, keys in self.events.items()}
                events = "".join(f"; {trigger}: made {made[trigger]}, fired {len(zap.fired)}"
                                 for trigger, zap in self.event_zaps.items())
                log(f"created {count}; fired per Zap {[len(z.fired) for z in self.zaps]}; per hook "
                    f"{[len(self.receiver.ids(p)) for p in self.hook_paths]}{events}; "
                    f"faults {sum(self.report.faults.values())},"
                    f" worker kills {self.report.worker_kills}"
                    + (f", hook worker kills {sum(st['hook_worker_kills'] for st in self.host_stats)}"
                       if config.include_hooks else "")
                    + (f", hooks churned {len(self.report.hook_checks)}" if self.report.hook_checks else ""))
            # Drain: no new contacts, no more faults or kills; the receiver recovers.
            self.stop_creating.set()
            self.stop_chaos.set()
            for thread in self.threads:
                if (thread.name in ("creator", "chaos", "killer", "hook-killer", "churner")
                        or thread.name.startswith("actor-")):
                    thread.join(60)
            self.sandbox.clear_faults()
            for host in self.hosts:
                if host.worker and not host.worker.running():
                    host.worker.start()
            if self.receiver:
                self.receiver.failing = False
            for host in self.hosts:
                host.service.wait_for_workers()
            drain_started = time.monotonic()
            with self.created_lock:
                log(f"draining: {len(self.created)} created"
                    + "".join(f", {len(keys)} {trigger}" for trigger, keys in self.events.items()))
            while time.monotonic() - drain_started < config.drain_seconds and not self.all_fired():
                time.sleep(0.5)
            self.report.drain_seconds = time.monotonic() - drain_started
            # A little longer, so a late repeat would still be counted.
            time.sleep(config.settle_seconds)
            self.stop_all.set()
            for thread in self.threads:
                thread.join(40)
            if len(self.hosts) > 1 and config.include_hooks:
                self.delete_hooks()
            if self.report.hook_checks:
                time.sleep(DELETED_GRACE + 1.0)  # a delivery begun after the last deletion would arrive by now
            self.report.rate = self.sandbox.rate_audit()
            self.tally()
        finally:
            self.stop()
        self.report.seconds = time.monotonic() - started
        return self.report

    def tally(self):
        with self.created_lock:
            created = set(self.created)
        report = self.report
        report.created = len(created)
        for zap in self.zaps:
            report.rows.append(self._row(f"zap {zap.name}", "poll", created, zap.fired, zap.polls, zap.fired_ids))
        for path in self.hook_paths:
            report.rows.append(self._row(f"hook {path}", "hook", created, self.receiver.ids(path), Counter(),
                                         self.receiver.item_ids(path), self.unread(path)))
        with self.created_lock:
            events = {trigger: set(keys) for trigger, keys in self.events.items()}
        report.events = {trigger: len(keys) for trigger, keys in events.items()}
        for trigger, zap in self.event_zaps.items():
            report.rows.append(self._row(f"zap {trigger}", "poll", events[trigger], zap.fired, zap.polls,
                                         zap.fired_ids))
        for trigger, path in self.event_hook_paths.items():
            report.rows.append(self._row(f"hook {trigger}", "hook", events[trigger], self.receiver.ids(path),
                                         Counter(), self.receiver.item_ids(path), self.unread(path)))
        report.hook_worker_kills = sum(host.worker.kills for host in self.hosts if host.worker)
        if self.receiver:
            report.receiver = Counter(self.receiver.outcomes)
        for check in report.hook_checks:
            if check.get("deleted_at") is None:
                continue
            late = [batch for batch in self.receiver.batches(check["path"])
                    if batch.received > check["deleted_at"] + DELETED_GRACE]
            check["deliveries_after_delete"] = len(late)
            if late:
                check["problems"].append(f"{len(late)} deliveries begun after its deletion, the first "
                                         f"{late[0].received - check['deleted_at']:.1f}s after")
        zaps = [*self.zaps, *self.event_zaps.values()]
        for n, host in enumerate(self.hosts):
            polls = Counter()
            for zap in zaps:
                polls.update(zap.host_polls[n])
            stats = self.host_stats[n]
            report.hosts.append({"name": host.name, "url": host.url, "polls": dict(polls),
                                 "worker_kills": stats["worker_kills"], "hook_worker_kills": stats["hook_worker_kills"],
                                 "hooks_subscribed": stats["hooks_subscribed"],
                                 "hooks_deleted": stats["hooks_deleted"]})

    def unread(self, path):
        timeout = float(self.env().get("HOOK_DELIVERY_TIMEOUT") or 3)
        return self.receiver.unread(path, list(self.hook_kills_at), timeout)

    @staticmethod
    def _row(name, kind, created, fired, polls, ids=None, unread=None):
        """``unread``: copies of (event, item id) in hook batches whose answer the worker may never
        have read (``Receiver.unread``). Sending the same item (same id) again after such a batch
        is the at-least-once design: those copies count as ``repeated``, not ``duplicated``. An
        event is duplicated when it fired more than once otherwise: twice from batches whose
        answer the worker read, or under two ids (detected twice)."""
        fired_created = {k: v for k, v in fired.items() if k in created}
        unread = unread or Counter()
        ids = ids or {}

        def excused(k):
            copies = Counter(ids.get(k, ()))
            return sum(min(unread[(k, item_id)], n - 1) for item_id, n in copies.items())
        duplicated = [k for k, v in fired_created.items() if v - excused(k) > 1]
        repeated = [k for k, v in fired_created.items() if v > 1 and k not in duplicated]
        # A few of what went wrong, with the item ids that fired: the same id twice is a repeated
        # delivery; two ids for one event, the event detected twice.
        examples = ([f"duplicated {k}: {ids.get(k)}" for k in duplicated][:3]
                    + [f"repeated {k}: {ids.get(k)}" for k in repeated][:2]
                    + [f"unexpected {k}: {ids.get(k)}" for k in fired if k not in created][:3]
                    + [f"missing {k}" for k in sorted(created - set(fired))][:3])
        return {"name": name, "kind": kind, "created": len(created),
                "fired": sum(fired_created.values()),
                "missing": len(created - set(fired)),
                "duplicated": len(duplicated),
                "repeated": len(repeated),
                "unexpected": sum(1 for k in fired if k not in created),
                "polls": dict(polls), "examples": examples}


def format_report(report):
    lines = [f"{'who':<32} {'created':>8} {'fired':>8} {'missing':>8} {'duplicated':>10} {'unexpected':>10} "
             f"{'repeated':>8}  polls"]
    for row in report.rows:
        polls = ", ".join(f"{k}: {v}" for k, v in sorted(row["polls"].items(), key=lambda kv: str(kv[0])))
        lines.append(f"{row['name']:<32} {row['created']:>8} {row['fired']:>8} {row['missing']:>8} "
                     f"{row['duplicated']:>10} {row['unexpected']:>10} {row.get('repeated', 0):>8}  {polls}")
    for row in report.rows:
        lines.extend(f"  {row['name']}: {example}" for example in row.get("examples", ()))
    lines.append(f"injected GHL faults: {dict(report.faults)}; gunicorn workers killed: {report.worker_kills}; "
                 f"hook worker killed: {report.hook_worker_kills}; receiver answers: {dict(report.receiver)}")
    lines.append(f"took {report.seconds:.0f}s (drain {report.drain_seconds:.1f}s), seed {report.seed}")
    if len(report.hosts) > 1:
        lines.append(f"{len(report.hosts)} hosts on one {report.backend} store:")
    else:
        lines.append(f"store: {report.backend}")
    for host in report.hosts if len(report.hosts) > 1 else ():
        polls = ", ".join(f"{k}: {v}" for k, v in sorted(host["polls"].items(), key=lambda kv: str(kv[0])))
        lines.append(f"  {host['name']} {host['url']}: polls {sum(host['polls'].values())} ({polls}); "
                     f"gunicorn workers killed {host['worker_kills']}, hook worker killed {host['hook_worker_kills']}; "
                     f"hooks subscribed {host['hooks_subscribed']}, deleted {host['hooks_deleted']}")
    if report.rate:
        for bucket in report.rate.get("buckets", ()):
            whose = "the service (all hosts)" if bucket["token"] == TOKEN else f"the drill's actors ({bucket['token']})"
            lines.append(f"GHL requests of {whose} to {bucket['location']}: {bucket['requests']}, at most "
                         f"{bucket['peak']} in any {report.rate['window_s']:g} s (burst limit {report.rate['limit']}), "
                         f"refused for the limit: {bucket['refused']}")
    if report.hook_checks:
        deleted = [c for c in report.hook_checks if c.get("deleted_on")]
        lines.append(f"hooks subscribed on one host and deleted on another: {len(deleted)} "
                     f"({sum(1 for c in deleted if c['kind'] == 'churn')} during the chaos), "
                     f"{len(report.hook_problems)} with problems; deliveries begun after a deletion: "
                     f"{sum(c.get('deliveries_after_delete', 0) for c in deleted)}"
                     + "".join(f"; {c['path']}: {c['note']}" for c in report.hook_checks if c.get("note")))
        lines.extend(f"  {c['path']} (subscribed on host {c['subscribed_on']}, deleted on host {c['deleted_on']}): "
                     + "; ".join(c["problems"]) for c in report.hook_problems)
    if any(row.get("repeated") for row in report.rows):
        lines.append("repeated: a hook batch sent again because the worker never read its answer (killed while it "
                     "was in flight, or answered after the delivery timeout): at least once, by design")
    if report.events:
        lines.append("events made (the created column of the event rows): "
                     + ", ".join(f"{trigger} {count}" for trigger, count in report.events.items()))
    if report.hooks_note:
        lines.append(f"TODO: {report.hooks_note}")
    if report.events_note:
        lines.append(f"TODO: event triggers {report.events_note}")
    if report.failed:
        why = (["missing, duplicated or unexpected items"] if any(
            row["missing"] or row["duplicated"] or row["unexpected"] for row in report.rows) else []) \
            + (["GHL refused requests for its burst limit"] if report.rate_problems else []) \
            + (["a host did not see or stop a hook deleted on another"] if report.hook_problems else [])
        lines.append(f"RESULT: FAILED ({'; '.join(why)})")
    else:
        lines.append("RESULT: every created item and event fired exactly once per Zap and per hook"
                     + ("; the hosts shared one rate budget and saw each other's hooks" if len(report.hosts) > 1
                        else ""))
    return "\n".join(lines)


def run_drill(config):
    if config.seed is None:
        config.seed = random.SystemRandom().randrange(1, 10 ** 6)
    workdir = tempfile.mkdtemp(prefix="ghl-drill-")
    try:
        report = Drill(config, workdir).run()
    finally:
        if not config.keep_workdir:
            import shutil
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            log(f"logs and database kept in {workdir}")
    return report


def parse_args(argv=None):
    defaults = DrillConfig()
    parser = argparse.ArgumentParser(
        prog="python -m bench.drill", description=__doc__.split("\n\n")[0],
        epilog="Two hosts on PostgreSQL: python -m bench.drill --hosts 2 --backend postgres (make drill "
               "DRILL_ARGS='--hosts 2 --backend postgres'); on one SQLite file: --hosts 2 --backend sqlite. "
               "Exit status 1 on any missing, duplicated or unexpected item, a GHL request refused for the "
               "burst limit, or a hook a host failed to see or stop after another deleted it.")
    parser.add_argument("--minutes", type=float, default=defaults.minutes, help="how long faults and kills go on")
    parser.add_argument("--zaps", type=int, default=defaults.zaps)
    parser.add_argument("--hooks", type=int, default=defaults.hooks, help="REST hook subscriptions (0: none)")
    parser.add_argument("--rate", type=float, default=defaults.rate, help="contacts created per second")
    parser.add_argument("--poll-interval", type=float, default=defaults.poll_interval)
    parser.add_argument("--fault-interval", type=float, default=defaults.fault_interval)
    parser.add_argument("--kill-interval", type=float, default=defaults.kill_interval)
    parser.add_argument("--hook-kill-interval", type=float, default=defaults.hook_kill_interval)
    parser.add_argument("--receiver-fail-share", type=float, default=defaults.receiver_fail_share)
    parser.add_argument("--drain-seconds", type=float, default=defaults.drain_seconds)
    parser.add_argument("--workers", type=int, default=None, help="gunicorn workers (default: the Procfile's)")
    parser.add_argument("--threads", type=int, default=None,
                        help="run gunicorn's gthread workers with this many threads (default: the Procfile as is)")
    parser.add_argument("--event-triggers", default=",".join(defaults.event_triggers),
                        help="comma-separated event triggers, each with a Zap and a hook ('' for none); "
                             "default: every EVENT_FEEDS entry")
    parser.add_argument("--event-rate", type=float, default=defaults.event_rate,
                        help="events made per second, per event trigger")
    parser.add_argument("--hosts", type=int, default=defaults.hosts,
                        help="hosts, each a gunicorn group and a hook worker on a port of its own, sharing one "
                             "store; Zaps poll through them in turn, hooks are deleted on another host than "
                             "they were subscribed on, kills go round every host (default 1)")
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default=defaults.backend,
                        help="the shared store: one SQLite file (default), or a fresh database on a throwaway "
                             "PostgreSQL server started for the run (Debian's postgresql package: make postgres)")
    parser.add_argument("--burst-limit", type=int, default=None,
                        help=f"the sandbox's burst limit per token and location per 10 s (default {GHL_BURST_LIMIT} "
                             f"with one host, {SHARED_BURST_LIMIT} with several, so that their shared budget binds; "
                             "the service's GHL_BURST_MAX is set 5%% under it); no request of the service may be "
                             "refused for it")
    parser.add_argument("--churn-interval", type=float, default=None,
                        help="seconds between short-lived hooks subscribed on one host and deleted on the next "
                             "(default 8 with --hosts 2 or more, else 0: none)")
    parser.add_argument("--service-dir", default=None,
                        help="run the hosts from another checkout of the service (its Procfile and code), "
                             "with this interpreter")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--keep-workdir", action="store_true")
    args = parser.parse_args(argv)
    if args.hosts < 1:
        parser.error("--hosts must be 1 or more")
    return DrillConfig(minutes=args.minutes, zaps=args.zaps, hooks=args.hooks, rate=args.rate,
                       poll_interval=args.poll_interval, fault_interval=args.fault_interval,
                       kill_interval=args.kill_interval, hook_kill_interval=args.hook_kill_interval,
                       receiver_fail_share=args.receiver_fail_share, drain_seconds=args.drain_seconds,
                       workers=args.workers, threads=args.threads, seed=args.seed, keep_workdir=args.keep_workdir,
                       include_hooks=args.hooks > 0,
                       event_triggers=tuple(t.strip() for t in args.event_triggers.split(",") if t.strip()),
                       event_rate=args.event_rate, hosts=args.hosts, backend=args.backend,
                       burst_limit=args.burst_limit, churn_interval=args.churn_interval,
                       service_dir=args.service_dir)


def main(argv=None):
    config = parse_args(argv)
    report = run_drill(config)
    print(format_report(report), flush=True)
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
