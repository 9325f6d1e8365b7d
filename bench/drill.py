"""``python -m bench.drill --minutes N`` (``make drill``): nothing lost, nothing doubled, under failure.

For N minutes the sandbox GHL gains contacts at a steady rate while
  - several simulated Zaps poll ``list_contacts_deprecated`` through the service (gunicorn as
    the Procfile runs it), each with its own X-Subscriber-Id and Zapier's per-Zap dedupe by
    ``id`` (a Zap's first poll only fills its dedupe memory, as Zapier's does when a Zap is
    turned on);
  - REST hook subscriptions on the same trigger are served by the hook worker (the Procfile's
    ``worker:``), delivering to a local receiver that stands in for hooks.zapier.com;
and meanwhile
  - the sandbox injects 429s, 500/502/503s, slow answers (some beyond the service's read
    timeout) and dropped connections on the GHL paths the polls use;
  - gunicorn workers are SIGKILLed at random (the master starts new ones), and so is the hook
    worker (restarted after a pause, as a platform would);
  - the receiver fails a share of deliveries (500, 503, 429 with Retry-After, a dropped
    connection) and answers some slowly.
Then creation, faults and kills stop, and the Zaps and hooks run until every created contact
has fired (or a drain timeout passes). A contact has "fired" for a Zap when the Zap's dedupe
let it through; for a hook, when the receiver accepted (2xx) a delivery holding it. Zapier
does not dedupe REST hook payloads, so for hooks every accepted copy counts.

Prints, per Zap and per hook: created, fired, missing, duplicated (contacts fired more than
once, counted by GHL id), and exits 1 on any missing or duplicate.
"""

import argparse
import json
import random
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests

from bench.harness import LOCATION, ROOT, TOKEN, SandboxProcess, Service, free_port, procfile_command
from bench.harness import HookWorkerProcess as HookWorker

TRIGGER = "list_contacts_deprecated"
GHL_PATH_PREFIX = "/contacts"
# What the sandbox injects, and how often relative to each other. "timeout" is a delay beyond the
# service's 10 s read timeout; "slow" stays within it.
FAULT_KINDS = ("429", "5xx", "slow", "drop", "timeout")
FAULT_WEIGHTS = (2, 3, 2, 2, 0.5)


def log(message):
    print(f"[drill {time.strftime('%H:%M:%S')}] {message}", flush=True)


# -- the simulated Zapier ---------------------------------------------------------------------

class PollingZap:
    """One Zap on a polling trigger: polls through the service and fires on ids it has not seen."""

    def __init__(self, service_url, name):
        self.name = name
        self.url = f"{service_url}/triggers/{TRIGGER}"
        self.headers = {"Authorization": f"Bearer {TOKEN}", "X-Location-Id": LOCATION, "X-Subscriber-Id": name}
        self.session = requests.Session()
        self.seen = set()
        self.fired = Counter()  # GHL id -> times fired
        self.polls = Counter()  # outcome -> count
        self.lock = threading.Lock()

    def poll(self, populate=False):
        try:
            response = self.session.post(self.url, json={}, headers=self.headers, timeout=30)
        except requests.RequestException as exc:
            self.polls[type(exc).__name__] += 1
            return False
        self.polls[response.status_code] += 1
        if response.status_code != 200:
            return False
        items = response.json()
        with self.lock:
            for item in reversed(items):
                if item["id"] in self.seen:
                    continue
                self.seen.add(item["id"])
                if not populate:
                    self.fired[item.get("ghl_id", item["id"])] += 1
        return True


class Receiver:
    """hooks.zapier.com's stand-in: one path per subscription; records the batches it accepts.
    While ``failing`` it answers a share of deliveries with a failure or slowly."""

    FAILURES = ("500", "503", "429", "drop", "slow")

    def __init__(self, fail_share, rng, slow_seconds=1.5):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.fail_share = fail_share
        self.slow_seconds = slow_seconds
        self.rng = rng
        self.failing = True
        self.lock = threading.Lock()
        self.accepted = {}  # path -> Counter of ids
        self.outcomes = Counter()
        self.server = None

    def start(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    failure = None
                    if receiver.failing and receiver.rng.random() < receiver.fail_share:
                        failure = receiver.rng.choice(receiver.FAILURES)
                    receiver.outcomes[failure or "accepted"] += 1
                if failure == "drop":
                    self.close_connection = True
                    try:
                        self.connection.shutdown(2)
                    except OSError:
                        pass
                    return
                if failure in ("500", "503", "429"):
                    self.send_response(int(failure))
                    if failure == "429":
                        self.send_header("Retry-After", "1")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if failure == "slow":
                    time.sleep(receiver.slow_seconds)
                try:
                    items = json.loads(body)
                except ValueError:
                    items = []
                with receiver.lock:
                    ids = receiver.accepted.setdefault(self.path, Counter())
                    for item in items:
                        ids[item.get("ghl_id", item.get("id"))] += 1
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, name="receiver", daemon=True).start()
        return self

    def stop(self):
        if self.server:
            self.server.shutdown()
            self.server.server_close()

    def ids(self, path):
        with self.lock:
            return Counter(self.accepted.get(path, Counter()))


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
    seed: int = 0

    @property
    def failed(self):
        return any(row["missing"] or row["duplicated"] for row in self.rows)


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
        self.report = Report(seed=config.seed)
        self.sandbox = self.service = self.receiver = self.worker = None
        self.zaps, self.hook_paths, self.threads = [], [], []

    # -- processes --------------------------------------------------------------------------
    def env(self):
        return {"SECRET_KEY": "drill-secret-key", "HOOK_TARGET_HOSTS": "127.0.0.1", "HOOK_ALLOW_HTTP": "1",
                "HOOK_POLL_SECONDS": "5", "HOOK_TICK_SECONDS": "0.2", "HOOK_DELIVERY_TIMEOUT": "3",
                "HOOK_LEASE_SECONDS": "5", "LOG_LEVEL": "WARNING"}

    def start(self):
        self.sandbox = SandboxProcess(latency_ms=0, log_path=self.workdir / "sandbox.log").start()
        extra = ["--worker-class", "gthread", "--threads", str(self.config.threads)] if self.config.threads else []
        self.service = Service(self.sandbox.url, self.workdir / "service.sqlite3", workers=self.config.workers,
                               extra_args=extra, env=self.env(), log_path=self.workdir / "gunicorn.log").start()
        log(f"sandbox {self.sandbox.url}; service {self.service.url}: {' '.join(self.service.argv[1:])}")
        if self.config.include_hooks:
            command = procfile_command("worker")
            if command is None or not (ROOT / "triggers" / "hooks_worker.py").exists():
                self.report.hooks_note = "no worker: line in the Procfile / no triggers/hooks_worker.py; hooks skipped"
                self.config.include_hooks = False
            else:
                self.receiver = Receiver(self.config.receiver_fail_share, random.Random(self.rng.random())).start()
                self.worker = HookWorker(command, {**self.service.env}, self.workdir / "hooks-worker.log").start()
                log(f"hook worker: {command}; receiver {self.receiver.url}")

    def stop(self):
        self.stop_all.set()
        for thread in self.threads:
            thread.join(40)
        if self.worker:
            self.worker.stop()
        if self.receiver:
            self.receiver.stop()
        if self.service:
            self.service.stop()
        if self.sandbox:
            self.sandbox.stop()

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

    def zap_loop(self, zap):
        while not self.stop_all.is_set():
            zap.poll()
            self._sleep(self.config.poll_interval * self.rng.uniform(0.5, 1.5), self.stop_all)

    def fault(self):
        kind = self.rng.choices(FAULT_KINDS, FAULT_WEIGHTS)[0]
        spec = {"path_prefix": GHL_PATH_PREFIX, "method": "GET", "times": self.rng.randint(1, 3)}
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
            kind, spec = self.fault()
            try:
                self.sandbox.add_faults([spec])
                self.report.faults[kind] += 1
            except requests.RequestException as exc:
                log(f"injecting a fault failed: {exc!r}")

    def killer(self):
        while not self.stop_chaos.is_set():
            self._sleep(self.config.kill_interval * self.rng.uniform(0.5, 1.5), self.stop_chaos)
            if self.stop_chaos.is_set():
                break
            pids = self.service.worker_pids()
            if pids and self.service.kill_worker(self.rng.choice(pids)):
                self.report.worker_kills += 1

    def hook_killer(self):
        while not self.stop_chaos.is_set():
            self._sleep(self.config.hook_kill_interval * self.rng.uniform(0.5, 1.5), self.stop_chaos)
            if self.stop_chaos.is_set():
                break
            self.worker.kill9()
            self._sleep(self.rng.uniform(0.5, 3.0), self.stop_all)
            self.worker.start()

    # -- the run ----------------------------------------------------------------------------
    def subscribe_hooks(self):
        for n in range(self.config.hooks):
            path = f"/hook/{n}"
            response = requests.post(f"{self.service.url}/hooks", timeout=30,
                                     headers={"Authorization": f"Bearer {TOKEN}", "X-Location-Id": LOCATION},
                                     json={"trigger": TRIGGER, "target_url": self.receiver.url + path, "inputs": {}})
            if response.status_code != 201:
                raise RuntimeError(f"subscribing a hook failed: {response.status_code} {response.text[:300]}")
            self.hook_paths.append(path)

    def all_fired(self):
        with self.created_lock:
            created = set(self.created)
        zaps_done = all(created <= set(zap.fired) for zap in self.zaps)
        hooks_done = all(created <= set(self.receiver.ids(path)) for path in self.hook_paths)
        return zaps_done and hooks_done

    def run(self):
        started = time.monotonic()
        config = self.config
        self.start()
        try:
            # Zaps are turned on: the first poll fills Zapier's dedupe memory (nothing fires).
            for n in range(config.zaps):
                zap = PollingZap(self.service.url, f"drill-zap-{n}")
                deadline = time.monotonic() + 30
                while not zap.poll(populate=True):
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"{zap.name}'s first poll never succeeded")
                    time.sleep(0.5)
                zap.polls.clear()
                self.zaps.append(zap)
            if config.include_hooks:
                self.subscribe_hooks()
            log(f"{config.zaps} Zaps and {len(self.hook_paths)} hooks on; creating {config.rate:g} contacts/s "
                f"for {config.minutes:g} min with faults and kills (seed {config.seed})")
            self._thread(self.creator, "creator")
            for zap in self.zaps:
                self._thread(lambda zap=zap: self.zap_loop(zap), zap.name)
            self._thread(self.chaos, "chaos")
            self._thread(self.killer, "killer")
            if config.include_hooks:
                self._thread(self.hook_killer, "hook-killer")
            chaos_end = time.monotonic() + config.minutes * 60
            while time.monotonic() < chaos_end:
                time.sleep(min(5.0, max(0.0, chaos_end - time.monotonic())))
                with self.created_lock:
                    count = len(self.created)
                log(f"created {count}; fired per Zap {[len(z.fired) for z in self.zaps]}; per hook "
                    f"{[len(self.receiver.ids(p)) for p in self.hook_paths]}; faults {sum(self.report.faults.values())},"
                    f" worker kills {self.report.worker_kills}"
                    + (f", hook worker kills {self.worker.kills}" if self.worker else ""))
            # Drain: no new contacts, no more faults or kills; the receiver recovers.
            self.stop_creating.set()
            self.stop_chaos.set()
            for thread in self.threads:
                if thread.name in ("creator", "chaos", "killer", "hook-killer"):
                    thread.join(60)
            self.sandbox.clear_faults()
            if self.worker and self.worker.process.poll() is not None:
                self.worker.start()
            if self.receiver:
                self.receiver.failing = False
            self.service.wait_for_workers()
            drain_started = time.monotonic()
            with self.created_lock:
                log(f"draining: {len(self.created)} created")
            while time.monotonic() - drain_started < config.drain_seconds and not self.all_fired():
                time.sleep(0.5)
            self.report.drain_seconds = time.monotonic() - drain_started
            # A little longer, so a late repeat would still be counted.
            time.sleep(config.settle_seconds)
            self.stop_all.set()
            for thread in self.threads:
                thread.join(40)
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
            report.rows.append(self._row(f"zap {zap.name}", "poll", created, zap.fired, zap.polls))
        for path in self.hook_paths:
            report.rows.append(self._row(f"hook {path}", "hook", created, self.receiver.ids(path), Counter()))
        if self.worker:
            report.hook_worker_kills = self.worker.kills
        if self.receiver:
            report.receiver = Counter(self.receiver.outcomes)

    @staticmethod
    def _row(name, kind, created, fired, polls):
        fired_created = {k: v for k, v in fired.items() if k in created}
        return {"name": name, "kind": kind, "created": len(created),
                "fired": sum(fired_created.values()),
                "missing": len(created - set(fired)),
                "duplicated": sum(1 for v in fired_created.values() if v > 1),
                "unexpected": sum(1 for k in fired if k not in created),
                "polls": dict(polls)}


def format_report(report):
    lines = [f"{'who':<22} {'created':>8} {'fired':>8} {'missing':>8} {'duplicated':>10} {'unexpected':>10}  polls"]
    for row in report.rows:
        polls = ", ".join(f"{k}: {v}" for k, v in sorted(row["polls"].items(), key=lambda kv: str(kv[0])))
        lines.append(f"{row['name']:<22} {row['created']:>8} {row['fired']:>8} {row['missing']:>8} "
                     f"{row['duplicated']:>10} {row['unexpected']:>10}  {polls}")
    lines.append(f"injected GHL faults: {dict(report.faults)}; gunicorn workers killed: {report.worker_kills}; "
                 f"hook worker killed: {report.hook_worker_kills}; receiver answers: {dict(report.receiver)}")
    lines.append(f"took {report.seconds:.0f}s (drain {report.drain_seconds:.1f}s), seed {report.seed}")
    if report.hooks_note:
        lines.append(f"TODO: {report.hooks_note}")
    lines.append("RESULT: " + ("FAILED (missing or duplicated items)" if report.failed
                               else "every created item fired exactly once per Zap and per hook"))
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
    parser = argparse.ArgumentParser(prog="python -m bench.drill", description=__doc__.split("\n\n")[0])
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
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--keep-workdir", action="store_true")
    args = parser.parse_args(argv)
    return DrillConfig(minutes=args.minutes, zaps=args.zaps, hooks=args.hooks, rate=args.rate,
                       poll_interval=args.poll_interval, fault_interval=args.fault_interval,
                       kill_interval=args.kill_interval, hook_kill_interval=args.hook_kill_interval,
                       receiver_fail_share=args.receiver_fail_share, drain_seconds=args.drain_seconds,
                       workers=args.workers, threads=args.threads, seed=args.seed, keep_workdir=args.keep_workdir,
                       include_hooks=args.hooks > 0)


def main(argv=None):
    config = parse_args(argv)
    report = run_drill(config)
    print(format_report(report), flush=True)
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
