"""``python -m bench.abuse``: what abuse costs the service as the Procfile runs it (issue 10).

Against the sandbox GHL and the service under gunicorn from the ``Procfile``'s ``web:`` line:
  (a) slow clients: ``--slow`` connections (500) held ``--hold`` seconds (30), first trickling
      headers (a header line a second, never ending them), then a body (whole headers announcing
      a large JSON body, then a byte a second). A connection the server closes is opened again at
      once, so the count stays up. Meanwhile ``/healthz`` and a real trigger poll are timed, each
      on a new connection, one after another;
  (b) key floods: worker memory before and after bodies full of keys: 3 of the largest body the
      limits allow (the most keys, padded to the body limit), then 3 oversized ones (600,000 keys,
      about 6 MB), then 30 more of the largest, with how long each refusal took and its size;
  (c) bogus tokens and (d) a hook flood, fairness between tenants (``bench.fairness``): a
      victim's poll latency while ``--bogus-threads`` threads poll with bogus tokens naming its
      location, at the default rate budget; a victim's hook delivery delay while another tenant
      holds ``--flood`` hook subscriptions, with the hook worker (the ``worker:`` line) running.
``--compare-gthread`` runs (a) against the web line used before issue 10 as well;
``--compare-before PATH`` runs (c) and (d) against another checkout of the service too (its
``Procfile``, its code, this interpreter), e.g. a worktree of the commit before issue 10.

Prints a Markdown table; ``--write BENCHMARKS.md`` puts it in that file's
``## Abuse and fairness (issue 10)`` section. Each scenario is a function of a running service
returning rows of (scenario, configuration, measure, result), listed in ``SCENARIOS`` with the
configurations it runs against and the settings of its service: scenarios without settings of
their own share one service (rate budget out of the way); any other gets a service and database
of its own. Rows with the same scenario and measure are put together, one per configuration.
"""

import argparse
import re
import selectors
import socket
import statistics
import subprocess
import tempfile
import textwrap
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import requests

from bench import fairness
from bench.harness import LOCATION, ROOT, TOKEN, SandboxProcess, Service
from server.config import Settings
from server.request_limits import MAX_JSON_ITEMS

POLL_TRIGGER = "list_contacts_deprecated"
FLOOD_ACTION = "create_contact"
SECTION = "## Abuse and fairness (issue 10)"
GTHREAD_WEB_LINE = ("web: gunicorn --workers ${WEB_CONCURRENCY:-4} --worker-class gthread --threads "
                    "${WEB_THREADS:-16} --bind 0.0.0.0:$PORT --timeout 60 'server.app:create_app()'")


def log(message):
    print(message, flush=True)


# -- slow clients ---------------------------------------------------------------------------------
class SlowClients:
    """``count`` connections to ``url`` that never finish their request.

    ``mode="headers"``: the request line, then one header line every ``interval`` seconds.
    ``mode="body"``: a POST to ``path`` with whole headers (a JSON body of ``body_bytes``, the
    sandbox token), then one byte of it every ``interval`` seconds.
    A connection the server answers or closes is opened again: ``answers`` counts the statuses
    of the answers, ``closed`` the connections closed with none, ``reopened`` both.
    """

    def __init__(self, url, count, mode, interval=1.0, path=f"/triggers/{POLL_TRIGGER}", body_bytes=500_000):
        parts = urlsplit(url)
        self.address = (parts.hostname, parts.port)
        self.count = count
        self.mode = mode
        self.interval = interval
        self.path = path
        self.body_bytes = body_bytes
        self.answers = Counter()
        self.closed = 0
        self.reopened = 0
        self.open_failures = 0
        self._selector = selectors.DefaultSelector()
        self._due = {}
        self._stop = threading.Event()
        self._thread = None

    def _opening(self):
        if self.mode == "headers":
            return b"GET /healthz HTTP/1.1\r\nHost: slow\r\n"
        return (f"POST {self.path} HTTP/1.1\r\nHost: slow\r\nAuthorization: Bearer {TOKEN}\r\n"
                f"X-Location-Id: {LOCATION}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {self.body_bytes}\r\n\r\n").encode()

    def _piece(self, n):
        return f"X-Slow-{n}: a\r\n".encode() if self.mode == "headers" else b" "

    def _open(self):
        try:
            sock = socket.create_connection(self.address, timeout=5)
            sock.sendall(self._opening())
        except OSError:
            self.open_failures += 1
            return
        sock.setblocking(False)
        self._selector.register(sock, selectors.EVENT_READ)
        self._due[sock] = [time.monotonic() + self.interval, 0]

    def _drop(self, sock):
        self._selector.unregister(sock)
        self._due.pop(sock, None)
        sock.close()

    def start(self):
        for _ in range(self.count):
            self._open()
        self._thread = threading.Thread(target=self._run, name=f"slow-{self.mode}", daemon=True)
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            for key, _ in self._selector.select(timeout=0.05):
                sock = key.fileobj
                try:
                    answer = sock.recv(65536)
                except OSError:
                    answer = b""
                status = re.match(rb"HTTP/1\.[01] (\d{3})", answer)
                if status:
                    self.answers[int(status.group(1))] += 1
                else:
                    self.closed += 1
                # Answered (an error or a timeout) or closed by the server: come back at once.
                self._drop(sock)
                self.reopened += 1
                self._open()
            now = time.monotonic()
            for sock, state in list(self._due.items()):
                if state[0] > now:
                    continue
                state[0], state[1] = now + self.interval, state[1] + 1
                try:
                    sock.send(self._piece(state[1]))
                except BlockingIOError:
                    pass
                except OSError:
                    self._drop(sock)
                    self.reopened += 1
                    self._open()

    @property
    def open_now(self):
        return len(self._due)

    def stop(self):
        self._stop.set()
        if self._thread:
            self._thread.join(10)
        for sock in list(self._due):
            self._drop(sock)
        self._selector.close()


def timed(call, timeout):
    """Seconds ``call(timeout)`` took when it answered 200; None when it failed or timed out."""
    started = time.monotonic()
    try:
        response = call(timeout)
        ok = response.status_code == 200
    except requests.RequestException:
        ok = False
    return time.monotonic() - started if ok else None


def healthz_probe(url):
    return lambda timeout: requests.get(f"{url}/healthz", timeout=timeout)


def poll_probe(url, subscriber="abuse-probe"):
    headers = {"Authorization": f"Bearer {TOKEN}", "X-Location-Id": LOCATION, "X-Subscriber-Id": subscriber}
    return lambda timeout: requests.post(f"{url}/triggers/{POLL_TRIGGER}", json={}, headers=headers, timeout=timeout)


def probe_for(seconds, probes, timeout=5.0, pause=0.1):
    """Each probe run one after another for ``seconds`` (a thread per probe); name -> latencies
    (seconds, None for a failure or a timeout)."""
    found = {name: [] for name in probes}
    deadline = time.monotonic() + seconds

    def loop(name, call):
        while time.monotonic() < deadline:
            found[name].append(timed(call, timeout))
            time.sleep(pause)
    threads = [threading.Thread(target=loop, args=item, daemon=True) for item in probes.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return found


def summary(latencies, within=1.0):
    answered = sorted(t for t in latencies if t is not None)
    stats = {"count": len(latencies), "failed": len(latencies) - len(answered),
             "within": sum(1 for t in answered if t < within), "p50_ms": None, "p99_ms": None, "max_ms": None}
    if answered:
        stats.update(p50_ms=statistics.median(answered) * 1000, max_ms=answered[-1] * 1000,
                     p99_ms=answered[min(len(answered) - 1, int(len(answered) * 0.99))] * 1000)
    return stats


def describe(stats):
    text = f"{stats['within']}/{stats['count']} answered within 1 s"
    if stats["failed"]:
        text += f", {stats['failed']} failed or timed out (5 s)"
    if stats["p50_ms"] is not None:
        text += (f"; answered: p50 {stats['p50_ms']:.1f} ms, p99 {stats['p99_ms']:.1f} ms, "
                 f"max {stats['max_ms']:.0f} ms")
    return text


def slow_clients(service, label, args, modes=("headers", "body")):
    """Rows for (a): /healthz and poll latency while ``args.slow`` connections trickle each of ``modes``."""
    count, hold = args.slow, args.hold
    rows = []
    probes = {"/healthz": healthz_probe(service.url), f"poll {POLL_TRIGGER}": poll_probe(service.url)}
    for mode in modes:
        log(f"(a) {label}: {count} slow connections trickling {mode} for {hold:.0f}s")
        clients = SlowClients(service.url, count, mode).start()
        try:
            found = probe_for(hold, probes)
        finally:
            clients.stop()
        scenario = f"{count} slow clients trickling {mode}, {hold:.0f} s"
        for name, latencies in found.items():
            stats = summary(latencies)
            log(f"    {name}: {describe(stats)}")
            rows.append((scenario, label, name, describe(stats)))
        answers = ", ".join(f"{n:,} answered {status}" for status, n in sorted(clients.answers.items()))
        rows.append((scenario, label, "slow connections the server ended (each reopened at once)",
                     f"{clients.closed:,} closed with no answer" + (f", {answers}" if answers else "")))
        # Let the service drop what the last slow connections left before the next measure.
        time.sleep(6)
    return rows


# -- key floods -----------------------------------------------------------------------------------
def key_flood(keys, max_bytes):
    """A JSON object of ``keys`` unknown keys, each as long as it can be for the body to fit ``max_bytes``."""
    width = (max_bytes - 1) // keys - len('"":0,')
    return ("{" + ",".join(f'"{n:0{width}d}":0' for n in range(keys)) + "}").encode()


def send_flood(url, body):
    started = time.monotonic()
    response = requests.post(f"{url}/actions/{FLOOD_ACTION}", data=body, timeout=60,
                             headers={"Authorization": f"Bearer {TOKEN}", "X-Location-Id": LOCATION,
                                      "Content-Type": "application/json"})
    return response.status_code, len(response.content), time.monotonic() - started


def key_floods(service, label, args):
    """Rows for (b): worker memory before and after bodies full of keys, and what they were answered."""
    max_bytes = Settings().max_body_bytes
    largest = key_flood(MAX_JSON_ITEMS, max_bytes)
    oversized = "{" + ",".join(f'"k{n}":1' for n in range(600_000)) + "}"
    oversized = oversized.encode()

    def rss():
        sizes = [kb for kb in service.worker_rss_kb().values() if kb]
        return sum(sizes) / 1024, max(sizes) / 1024

    def flood(body, times):
        answers = [send_flood(service.url, body) for _ in range(times)]
        statuses = sorted({status for status, _, _ in answers})
        return statuses, max(size for _, size, _ in answers), statistics.median(t for _, _, t in answers)

    # Every worker has served a poll and a refused flood, so what follows measures growth, not first use.
    for _ in range(len(service.worker_pids()) * 2):
        poll_probe(service.url)(10)
        send_flood(service.url, b'{"warm": 1}')
    rows = []
    before = rss()
    log(f"(b) {label}: workers {before[0]:.1f} MiB in all (largest {before[1]:.1f} MiB) before the floods")
    rows.append(("key floods", label, "worker RSS before (all workers; largest)",
                 f"{before[0]:.1f} MiB; {before[1]:.1f} MiB"))
    steps = [(f"3 of the largest allowed body ({len(largest):,} bytes, {MAX_JSON_ITEMS:,} keys)", largest, 3),
             (f"3 oversized ({len(oversized) / 1e6:.1f} MB, 600,000 keys)", oversized, 3),
             ("30 more of the largest allowed body", largest, 30)]
    for what, body, times in steps:
        statuses, size, took = flood(body, times)
        after = rss()
        result = (f"{after[0]:.1f} MiB ({after[0] - before[0]:+.1f}); {after[1]:.1f} MiB; answered "
                  f"{'/'.join(map(str, statuses))} in {took * 1000:.0f} ms (median), at most {size:,} bytes")
        log(f"    after {what}: {result}")
        rows.append(("key floods", label, f"worker RSS after {what}", result))
    return rows


# -- the table and BENCHMARKS.md ------------------------------------------------------------------
def table(rows):
    lines = ["| scenario | configuration | measure | result |", "|---|---|---|---|"]
    lines += [f"| {' | '.join(str(cell) for cell in row)} |" for row in rows]
    return "\n".join(lines)


def section(rows, args):
    about = (
        f"`python -m bench.abuse` ({time.strftime('%Y-%m-%d')}): the service under gunicorn from the `Procfile`'s "
        "`web:` line (gevent workers: 4 processes of up to 1,000 connections each) against the sandbox GHL; "
        "`configuration` says which ran (gthread: the web line before issue 10, with `--compare-gthread`; "
        "before issue 10: the service's code and `Procfile` at the commit before issue 10, from a git worktree, "
        "with `--compare-before`). Rows for one measure in several configurations are next to each other. "
        f"Slow clients: {args.slow} connections, each scenario held {args.hold:.0f} s; a connection the server "
        "ends is reopened at once. Probes: one after another, each on a new connection, with a 5 s timeout. "
        "Key floods: RSS of all workers, then of the largest; a worker's first floods raise it to the level "
        "a 10,000-key body needs, where it stays. These two run with the rate budget out of the way "
        "(`GHL_BURST_MAX=1000000` per 1 s).")
    fairness_about = (
        f"Bogus tokens: a service with the rate budget at its default (`GHL_BURST_MAX` 95 per 10 s); the victim "
        f"polls `{fairness.TRIGGER}` with the real token every {fairness.VICTIM_POLL_INTERVAL:g} s (a new "
        f"connection each), {args.bogus_seconds:.0f} s alone, then {args.bogus_seconds:.0f} s while "
        f"{args.bogus_threads} threads poll as fast as they are answered, each with a bogus token of its own (the "
        "sandbox answers 401) and the victim's `X-Location-Id`. Hook flood: the `Procfile`'s `worker:` line runs "
        "beside the service (`HOOK_POLL_SECONDS=5`, other `HOOK_*` settings at their defaults, the rate budget "
        "out of the way) and delivers to a local receiver; the attacker (another token, on a location of its own "
        f"with nothing new) subscribes {args.flood:,} hooks on `{fairness.TRIGGER}`, 8 at a time, then the victim "
        f"subscribes one; after 5 s the victim's location gains a contact every {args.item_interval:g} s for "
        f"{args.item_seconds:.0f} s, and each contact's delay from its creation to its arrival at the victim's "
        "receiver is measured. Each phase (no flood; the flood at the default `HOOK_MAX_PER_CREDENTIAL`, 200; "
        f"the flood with the cap raised to {args.flood:,}, round-robin alone) has a fresh service, database and "
        "worker. The worker's GHL polls are counted from the sandbox's request log while the contacts are created "
        "and delivered.")
    return "\n".join([SECTION, "", textwrap.fill(about, 100, break_on_hyphens=False), "",
                      textwrap.fill(fairness_about, 100, break_on_hyphens=False), "", table(rows), ""])


def write_section(path, text):
    path = Path(path)
    current = path.read_text() if path.exists() else ""
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(current):
        updated = pattern.sub(lambda _: text + "\n", current, count=1)
    else:
        updated = current.rstrip("\n") + "\n\n" + text
    path.write_text(updated)


# Settings of the service the scenarios without settings of their own share: the rate budget out
# of the way, so that what is measured is the web server, not waits for GHL slots.
SHARED_ENV = {"GHL_BURST_MAX": "1000000", "GHL_BURST_WINDOW_SECONDS": "1"}


@dataclass(frozen=True)
class Scenario:
    run: object  # (service, label, args) -> rows
    gthread: bool = False  # also against the web line used before issue 10 (--compare-gthread)
    before: bool = False  # also against the checkout given to --compare-before
    env: dict = None  # None: the shared service (SHARED_ENV); else a service of its own with these settings


SCENARIOS = {
    "slow-clients": Scenario(slow_clients, gthread=True),
    "key-floods": Scenario(key_floods),
    "bogus-tokens": Scenario(fairness.bogus_tokens, before=True, env=fairness.BOGUS_ENV),
    "hook-flood": Scenario(fairness.hook_flood, before=True, env=fairness.HOOK_ENV),
}


@dataclass(frozen=True)
class Config:
    label: str
    procfile: Path
    cwd: Path
    kind: str  # "current", "gthread" or "before"

    def runs(self, scenario):
        return self.kind == "current" or getattr(scenario, self.kind)


def before_config(path):
    path = Path(path).resolve()
    if not (path / "Procfile").exists():
        raise SystemExit(f"--compare-before: {path} has no Procfile")
    commit = subprocess.run(["git", "-C", str(path), "log", "-1", "--format=%h"], capture_output=True,
                            text=True).stdout.strip() or path.name
    return Config(f"before issue 10 ({commit})", path / "Procfile", path, "before")


def ordered(found):
    """Rows of (scenario name, configuration index, row), by scenario, then by (scenario, measure)
    as first met, then by configuration: one measure's configurations side by side."""
    names = list(dict.fromkeys(name for name, _, _ in found))
    keys = list(dict.fromkeys((name, row[0], row[2]) for name, _, row in found))
    place = {key: n for n, key in enumerate(keys)}
    return [row for _, _, row in sorted(found, key=lambda item: (names.index(item[0]),
                                                                 place[(item[0], item[2][0], item[2][2])], item[1]))]


def run(args, workdir):
    chosen = [name.strip() for name in args.scenarios.split(",") if name.strip()]
    unknown = set(chosen) - set(SCENARIOS)
    if unknown:
        raise SystemExit(f"unknown scenarios {sorted(unknown)} (known: {', '.join(SCENARIOS)})")
    configs = [Config("Procfile (gevent)", ROOT / "Procfile", ROOT, "current")]
    if args.compare_gthread:
        old = workdir / "Procfile.gthread"
        old.write_text(GTHREAD_WEB_LINE + "\n")
        configs.append(Config("gthread 4x16 (before issue 10)", old, ROOT, "gthread"))
    if args.compare_before:
        configs.append(before_config(args.compare_before))
    found = []
    # tokens=1: the hook flood's attacker holds a token of its own (bench-token-0).
    with SandboxProcess(burst_limit=10 ** 9, daily_limit=10 ** 12, tokens=1,
                        log_path=workdir / "sandbox.log") as sandbox:
        services = 0
        for index, config in enumerate(configs):
            names = [name for name in chosen if config.runs(SCENARIOS[name])]
            shared = [name for name in names if SCENARIOS[name].env is None]
            groups = ([(shared, SHARED_ENV)] if shared else []) + [
                ([name], SCENARIOS[name].env) for name in names if SCENARIOS[name].env is not None]
            for group, env in groups:
                service = Service(sandbox.url, workdir / f"service-{services}.sqlite3", env=env,
                                  label=config.label, procfile=config.procfile, cwd=config.cwd,
                                  log_path=workdir / f"service-{services}.log")
                services += 1
                with service:
                    for name in group:
                        found += [(name, index, row) for row in SCENARIOS[name].run(service, config.label, args)]
    return ordered(found)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--slow", type=int, default=500, help="slow connections held at once")
    parser.add_argument("--hold", type=float, default=30.0, help="seconds each slow-client scenario lasts")
    parser.add_argument("--compare-gthread", action="store_true",
                        help="also run the slow clients against the web line used before issue 10")
    parser.add_argument("--compare-before", metavar="PATH",
                        help="also run bogus-tokens and hook-flood against the service checked out at PATH "
                             "(its Procfile and code; e.g. a git worktree of the commit before issue 10)")
    parser.add_argument("--bogus-threads", type=int, default=20, help="bogus-tokens: threads polling with bogus tokens")
    parser.add_argument("--bogus-seconds", type=float, default=20.0,
                        help="bogus-tokens: seconds the victim polls alone, then with the bogus traffic")
    parser.add_argument("--flood", type=int, default=2000, help="hook-flood: subscriptions the attacker tries")
    parser.add_argument("--item-interval", type=float, default=2.0, help="hook-flood: seconds between victim contacts")
    parser.add_argument("--item-seconds", type=float, default=40.0, help="hook-flood: seconds of victim contacts")
    parser.add_argument("--drain-seconds", type=float, default=60.0,
                        help="hook-flood: how long to wait for the last deliveries")
    parser.add_argument("--keep-workdir", action="store_true", help="keep the logs and databases")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated: " + ", ".join(SCENARIOS))
    parser.add_argument("--write", metavar="BENCHMARKS.md", help="put the table in this file's section")
    args = parser.parse_args()
    if args.keep_workdir:
        workdir = tempfile.mkdtemp(prefix="abuse-")
        log(f"logs and databases in {workdir}")
        rows = run(args, Path(workdir))
    else:
        with tempfile.TemporaryDirectory(prefix="abuse-") as workdir:
            rows = run(args, Path(workdir))
    print()
    print(table(rows))
    if args.write:
        write_section(args.write, section(rows, args))
        log(f"wrote {SECTION!r} in {args.write}")


if __name__ == "__main__":
    main()
