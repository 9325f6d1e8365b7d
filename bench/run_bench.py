"""``python -m bench.run_bench`` (``make bench``): the service against the sandbox GHL, side by side.

One run measures, on each store of ``--backends`` side by side (``sqlite``: one file;
``postgres``: a throwaway PostgreSQL server started for the run, ``bench.postgres_server``,
a fresh database per service):
  (a) polls: requests/s and p50/p99 at each concurrency, through the service (under gunicorn
      as the Procfile runs it, or other sizes with --configs gthread) vs the same GHL
      request sent straight to the sandbox, in two kinds of cell:
      - first polls: every poll has its own X-Subscriber-Id, so each is a Zap's first poll
        and the dedupe store records and answers the whole page;
      - steady polls: a fixed set of Zaps (``--steady-zaps``, 256: each its own
        X-Subscriber-Id and token) polled in turn, after a warm-up round in which every Zap
        polled once, so every measured poll finds its page already known (as a Zap polls
        every few minutes for months); the issue's ratio and CPU targets are about these;
  (b) actions: create_contact through the service vs the same POST /contacts/ sent direct;
  (c) dedupe cost: the store's answer on pages of 100/1,000/10,000 against a million
      remembered identities, and the size per identity once their bodies are pruned, on each
      store (bench.dedupe_cost);
  (d) resident memory of every gunicorn worker before and after N polls (default 100,000)
      of a cheap trigger, with the sandbox's latency at 0;
  (e) shared reads: GHL requests made when 50 Zaps with one token poll the same list, all at
      once and spread over a minute (with POLL_SHARE_SECONDS at 0, then at 60);
  (f) two hosts: a short ``bench.drill --hosts 2`` on each store (two gunicorn groups and two
      hook workers sharing it, faults and kills on both): polls per host, GHL calls, the most
      in any 10 s against the sandbox's burst limit, missing and duplicated items.
(d) and (e) run on the first of ``--backends`` only. The tables go into BENCHMARKS.md between
its ``bench:results`` markers.

How the load is made fair (see BENCHMARKS.md): the sandbox runs in its own process (one
gunicorn gthread worker: its state is in memory) with its burst limit raised; the service's
per-location budget is raised to match (GHL_BURST_MAX) with a short window, so it still takes
a slot per GHL call but never waits; polls rotate over 256 sandbox tokens so that single-flight
(identical reads of one token in flight) does not merge different Zaps' polls.
"""

import argparse
import json
import os
import platform
import re
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

import requests

from bench import dedupe_cost
from bench.harness import LOCATION, ROOT, TOKEN, SandboxProcess, Service, Store, tree_cpu_seconds
from bench.load import new_session, run_load

POLL_TRIGGER = "list_contacts_deprecated"
CHEAP_TRIGGER = "get_contact"
CHEAP_CONTACT = "sandbox-contact-1"
ACTION = "create_contact"
TOKENS = 256
STEADY_ZAPS = 256  # at most TOKENS: each steady Zap has a token of its own
BIG = 10 ** 9
BACKENDS = ("sqlite", "postgres")
# The targets for steady-state polls (at 50 ms upstream latency).
STEADY_TARGETS = {"p50_c16": 1.05, "throughput_c16": 0.90, "throughput_c64": 0.80, "cpu_ms": 2.0}
# "Flat" memory: the highest worker RSS grows at most this much over the second half of the run.
# Workers that served fewer polls early keep growing until their caches reach the same level, so
# single workers can grow more without anything leaking; a leak would lift the highest one too.
FLAT_MIB = 1.0
MARK_START = "<!-- bench:results:start -->"
MARK_END = "<!-- bench:results:end -->"


def bench_token(n):
    return f"bench-token-{n % TOKENS}"


def log(message):
    print(message, flush=True)


class Bench:
    def __init__(self, args, workdir):
        self.args = args
        self.workdir = Path(workdir)
        self.sandbox = None
        self.services = []
        self.stores = {}  # backend -> harness.Store
        self.results = {"polls": [], "steady": [], "actions": [], "dedupe": None, "dedupe_postgres": None,
                        "memory": None, "sharing": None, "hosts": [], "backends": list(self.backends())}

    # -- setup ------------------------------------------------------------------------------
    def service_env(self):
        return {"GHL_BURST_MAX": str(BIG), "GHL_BURST_WINDOW_SECONDS": "0", "LOG_LEVEL": "WARNING"}

    def backends(self):
        return backends_of(self.args.backends)

    def configs(self):
        chosen = []
        for name in self.args.configs.split(","):
            name = name.strip()
            if name == "procfile":
                chosen.append(("procfile", None, []))
            elif name == "gthread":
                chosen.append((f"gthread {self.args.workers}x{self.args.threads}", self.args.workers,
                               ["--worker-class", "gthread", "--threads", str(self.args.threads)]))
            elif name:
                raise SystemExit(f"unknown configuration {name!r} (procfile, gthread)")
        return chosen

    def store(self, backend):
        """The run's store of ``backend`` (a PostgreSQL server is started once, on first use)."""
        if backend not in self.stores:
            self.stores[backend] = Store(backend, self.workdir).start()
            if backend == "postgres":
                log(f"PostgreSQL {self.stores[backend].server.bin.parent.name} on 127.0.0.1:"
                    f"{self.stores[backend].server.port} (a fresh database per service)")
        return self.stores[backend]

    def new_service(self, label, backend, env=None, **kwargs):
        """A service of ``label`` on a fresh store of ``backend``, not started."""
        slug = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")
        database_path, database_url = self.store(backend).fresh(slug)
        service = Service(self.sandbox.url, database_path, database_url=database_url,
                          env={**self.service_env(), **(env or {})}, log_path=self.workdir / f"{slug}.log",
                          label=label, **kwargs)
        service.backend = backend
        return service

    def start(self):
        self.sandbox = SandboxProcess(latency_ms=self.args.latency_ms, burst_limit=BIG, daily_limit=10 ** 12,
                                      tokens=TOKENS, threads=self.args.sandbox_threads,
                                      log_path=self.workdir / "sandbox.log").start()
        self.fill_page()
        several = len(self.backends()) > 1
        for backend in self.backends():
            for label, workers, extra in self.configs():
                name = f"{label} · {backend}" if several else label
                service = self.new_service(name, backend, workers=workers, extra_args=extra)
                service.start()
                self.services.append(service)
                log(f"service '{name}': {' '.join(service.argv[1:])}")

    def fill_page(self):
        """The sandbox location holds ``page_items`` contacts (5 are seeded)."""
        have = len([c for c in self.sandbox.records("/contacts/") if c.get("locationId") == LOCATION])
        missing = self.args.page_items - have
        if missing > 0:
            self.sandbox.add_records("/contacts/", [
                {"firstName": f"Page{n}", "lastName": "Bench", "email": f"page{n}@example.com",
                 "phone": f"+1555020{n:04d}", "tags": ["bench"], "source": "bench"} for n in range(missing)])

    def stop(self):
        for service in self.services:
            service.stop()
        if self.sandbox:
            self.sandbox.stop()

    def stop_stores(self):
        for store in self.stores.values():
            store.stop()
        self.stores.clear()

    # -- one measured cell ------------------------------------------------------------------
    def cell(self, kind, path_label, send, concurrency, service=None):
        sandbox_pid = self.sandbox.process.pid
        store = self.stores.get(getattr(service, "backend", None))

        def store_cpu():  # the PostgreSQL server's processes (SQLite runs inside the service)
            return store.server_cpu_seconds() if store is not None else 0.0
        self.sandbox.clear_requests()
        before = (time.process_time(), tree_cpu_seconds(sandbox_pid),
                  tree_cpu_seconds(service.process.pid) if service else 0.0, store_cpu())
        result = run_load(send, concurrency, seconds=self.args.seconds, warmup_s=self.args.warmup)
        after = (time.process_time(), tree_cpu_seconds(sandbox_pid),
                 tree_cpu_seconds(service.process.pid) if service else 0.0, store_cpu())
        ghl_requests = len(self.sandbox.requests_log())
        sent = max(1, result.sent)
        row = {"kind": kind, "path": path_label, **result.summary(), "sent": result.sent,
               "backend": getattr(service, "backend", None),
               "ghl_per_request": ghl_requests / sent, "ghl_log_full": ghl_requests >= 10_000,
               "cpu_ms": {"loadgen": (after[0] - before[0]) * 1000 / sent,
                          "sandbox": (after[1] - before[1]) * 1000 / sent,
                          "service": (after[2] - before[2]) * 1000 / sent,
                          "store": (after[3] - before[3]) * 1000 / sent if store is not None and
                          store.kind == "postgres" else None},
               "error_samples": result.error_samples}
        store_text = f" pg {row['cpu_ms']['store']:.2f}" if row["cpu_ms"]["store"] is not None else ""
        log(f"  {kind:12} c{concurrency:<3} {path_label:22} {row['throughput']:8.1f}/s  p50 {row['p50_ms']:8.2f} ms"
            f"  p99 {row['p99_ms']:8.2f} ms  errors {row['errors']}  GHL/req {row['ghl_per_request']:.2f}"
            f"  CPU ms/req svc {row['cpu_ms']['service']:.2f}{store_text} sbx {row['cpu_ms']['sandbox']:.2f}"
            f" gen {row['cpu_ms']['loadgen']:.2f}")
        return row

    def captured(self, do_once):
        """The GHL requests ``do_once()`` made through the service, as the sandbox logged them."""
        self.sandbox.clear_requests()
        do_once()
        entries = [e for e in self.sandbox.requests_log() if not e["path"].startswith("/_sandbox")]
        if not entries:
            raise RuntimeError("the service made no GHL request")
        return entries

    def direct_sender(self, entries, body_for=None):
        url = self.sandbox.url

        def send(session, n):
            status = None
            for entry in entries:
                body = body_for(entry["json"], n) if body_for else entry["json"]
                headers = {"Authorization": f"Bearer {bench_token(n)}", "Accept": "application/json"}
                if entry.get("version"):
                    headers["Version"] = entry["version"]
                response = session.request(entry["method"], url + entry["path"], params=entry["query"] or None,
                                           json=body, headers=headers, timeout=60)
                response.content
                status = response.status_code
                if status >= 300:
                    return status
            return status
        return send

    # -- (a) polls ----------------------------------------------------------------------------
    def polls(self):
        log(f"(a) polls: {POLL_TRIGGER}, a page of {self.args.page_items} contacts, "
            f"{self.args.latency_ms:g} ms upstream latency")
        first = self.services[0]
        entries = self.captured(lambda: requests.post(
            f"{first.url}/triggers/{POLL_TRIGGER}", json={}, timeout=60,
            headers={"Authorization": f"Bearer {TOKEN}", "X-Location-Id": LOCATION,
                     "X-Subscriber-Id": "bench-capture"}).raise_for_status())
        direct = self.direct_sender(entries)
        parts = self.parts()
        steady = {}
        if "steady" in parts:
            log(f"    steady polls: {self.args.steady_zaps} Zaps (each its own X-Subscriber-Id and token), "
                f"each polled once before the cells")
            for service in self.services:
                steady[service.label] = self.steady_zaps(service)
        run = [0]
        for concurrency in self.concurrencies():
            self.results["polls"].append(self.cell("polls", "direct", direct, concurrency))
            for service in self.services if "polls" in parts else ():
                run[0] += 1
                prefix = f"bench-{run[0]}-"

                def via(session, n, service=service, prefix=prefix):
                    response = session.post(
                        f"{service.url}/triggers/{POLL_TRIGGER}", json={}, timeout=60,
                        headers={"Authorization": f"Bearer {bench_token(n)}", "X-Location-Id": LOCATION,
                                 "X-Subscriber-Id": prefix + str(n)})
                    response.content
                    return response.status_code
                self.results["polls"].append(self.cell("polls", service.label, via, concurrency, service))
            for service in self.services if steady else ():
                self.results["steady"].append(
                    self.cell("steady polls", service.label, steady[service.label], concurrency, service))

    def steady_zaps(self, service):
        """A sender polling ``--steady-zaps`` fixed Zaps of ``service`` in turn (poll ``n`` is Zap
        ``n % zaps``, with token ``bench-token-<zap>``), after each polled once here (its first
        poll: its page is then known, and every later poll is a steady one)."""
        zaps = self.args.steady_zaps
        prefix = f"steady-{re.sub(r'[^a-z0-9]+', '-', service.label.lower())}-"

        def via(session, n):
            zap = n % zaps
            response = session.post(
                f"{service.url}/triggers/{POLL_TRIGGER}", json={}, timeout=60,
                headers={"Authorization": f"Bearer {bench_token(zap)}", "X-Location-Id": LOCATION,
                         "X-Subscriber-Id": f"{prefix}{zap}"})
            response.content
            return response.status_code
        local = threading.local()

        def first_poll(zap):
            if not hasattr(local, "session"):
                local.session = new_session()
            return via(local.session, zap)
        with ThreadPoolExecutor(16) as pool:
            statuses = Counter(pool.map(first_poll, range(zaps)))
        if set(statuses) != {200}:
            raise RuntimeError(f"the steady Zaps' first polls through '{service.label}' failed: {dict(statuses)}")
        return via

    # -- (b) actions --------------------------------------------------------------------------
    def actions(self):
        log(f"(b) actions: {ACTION} vs POST /contacts/ direct")
        first = self.services[0]

        def inputs(n):
            return {"firstName": f"Act{n}", "lastName": "Bench", "email": f"act{n}@example.com",
                    "phone": f"+1555030{n % 10000:04d}", "tags": ["bench"]}
        entries = self.captured(lambda: requests.post(
            f"{first.url}/actions/{ACTION}", json=inputs(0), timeout=60,
            headers={"Authorization": f"Bearer {TOKEN}", "X-Location-Id": LOCATION}).raise_for_status())

        def body_for(body, n):
            return {**body, **inputs(n)} if isinstance(body, dict) else body
        direct = self.direct_sender(entries, body_for)
        for concurrency in self.concurrencies():
            self.results["actions"].append(self.cell("actions", "direct", direct, concurrency))
            for service in self.services:
                def via(session, n, service=service):
                    response = session.post(f"{service.url}/actions/{ACTION}", json=inputs(n), timeout=60,
                                            headers={"Authorization": f"Bearer {bench_token(n)}",
                                                     "X-Location-Id": LOCATION})
                    response.content
                    return response.status_code
                self.results["actions"].append(self.cell("actions", service.label, via, concurrency, service))
        # Thousands of contacts were created; later parts start from the seed again.
        self.sandbox.reset()
        self.fill_page()

    def concurrencies(self):
        return [int(c) for c in self.args.concurrency.split(",") if c.strip()]

    # -- (c) dedupe ---------------------------------------------------------------------------
    def dedupe(self):
        """``bench.dedupe_cost.measure`` on a fresh store of each backend."""
        for backend in self.backends():
            name = {"sqlite": "SQLite", "postgres": "PostgreSQL"}[backend]
            self.attempt(f"dedupe ({name})", lambda backend=backend: self.dedupe_cost(backend))

    def dedupe_cost(self, backend):
        from server.config import Settings
        log(f"(c) dedupe cost on {backend} against {self.args.dedupe_rows:,} remembered identities (bench.dedupe_cost)")
        database_path, database_url = self.store(backend).fresh(f"dedupe-{backend}")
        try:
            result = dedupe_cost.measure(Settings(database_path=str(database_path), database_url=database_url or ""),
                                         identities=self.args.dedupe_rows, repeats=self.args.dedupe_repeats, log=log)
        finally:
            for suffix in ("", "-wal", "-shm"):
                Path(str(database_path) + suffix).unlink(missing_ok=True)
        self.results["dedupe" if backend == "sqlite" else "dedupe_postgres"] = {**result, "source": "dedupe_cost"}

    def attempt(self, name, part):
        """Run one part; if it fails, say so (in the results too) and go on with the others."""
        try:
            part()
        except Exception as exc:
            log(f"  {name} FAILED:\n{traceback.format_exc()}")
            self.results.setdefault("failed", {})[name] = f"{type(exc).__name__}: {exc}"[:300]
            return False
        return True

    # -- (f) two hosts --------------------------------------------------------------------------
    def hosts(self):
        """A short two-host drill (``bench.drill --hosts 2``) on each backend: its totals."""
        from bench.drill import DrillConfig, format_report, run_drill

        def drill(backend):
            log(f"(f) two hosts on one {backend} store: bench.drill --hosts 2 --minutes {self.args.hosts_minutes:g}")
            database_url = self.store(backend).fresh("two-hosts")[1] if backend == "postgres" else None
            config = DrillConfig(minutes=self.args.hosts_minutes, hosts=2, backend=backend, database_url=database_url,
                                 seed=self.args.hosts_seed)
            report = run_drill(config)
            log(format_report(report))
            self.results["hosts"].append({**report.totals(), "seed": report.seed, "minutes": config.minutes,
                                          "zaps": config.zaps + len(report.events), "hook_rows": sum(
                                              1 for row in report.rows if row["kind"] == "hook"),
                                          "per_host": report.hosts})
        for backend in self.backends():
            self.attempt(f"two hosts ({backend})", lambda backend=backend: drill(backend))

    # -- (d) memory ---------------------------------------------------------------------------
    def memory(self):
        target = self.args.memory_polls
        label_wanted = self.args.memory_config
        service = next((s for s in self.services if s.label.startswith(label_wanted)), self.services[-1])
        log(f"(d) memory: {target:,} polls of {CHEAP_TRIGGER} through '{service.label}', sandbox latency 0, "
            f"concurrency {self.args.memory_concurrency}, at most {self.args.memory_seconds:.0f}s")
        # A fresh service: its workers have served nothing yet.
        service.stop()
        service.start()
        self.sandbox.set_latency(0)
        boot = service.worker_rss_kb()
        url = f"{service.url}/triggers/{CHEAP_TRIGGER}"

        def poll(session, n):
            response = session.post(url, json={"contactId": CHEAP_CONTACT}, timeout=60,
                                    headers={"Authorization": f"Bearer {bench_token(n)}",
                                             "X-Location-Id": LOCATION, "X-Subscriber-Id": f"mem-{n}"})
            response.content
            return response.status_code

        offset = [0]

        def chunk(count):
            start = offset[0]
            result = run_load(lambda s, n: poll(s, start + n), self.args.memory_concurrency, seconds=10 ** 6,
                              max_requests=count, warmup_s=0)
            offset[0] += result.sent
            return result

        warm = chunk(self.args.memory_warmup)
        before = service.worker_rss_kb()
        samples = [{"polls": 0, "rss_kb": before}]
        started = time.monotonic()
        done, errors = 0, warm.errors
        step = max(1, target // 10)
        while done < target and time.monotonic() - started < self.args.memory_seconds:
            result = chunk(min(step, target - done))
            done += result.count
            errors += result.errors
            samples.append({"polls": done, "rss_kb": service.worker_rss_kb(),
                            "throughput": result.throughput})
            mean = sum(v for v in samples[-1]["rss_kb"].values() if v) / max(1, len(samples[-1]["rss_kb"]))
            log(f"  {done:>7,} polls: mean worker RSS {mean / 1024:.1f} MiB, {result.throughput:.0f} polls/s")
        elapsed = time.monotonic() - started
        self.sandbox.set_latency(self.args.latency_ms)
        self.results["memory"] = {"service": service.label, "boot_rss_kb": boot, "warmup_polls": warm.count,
                                  "samples": samples, "polls": done, "target": target, "seconds": elapsed,
                                  "errors": errors, "pids_same": set(boot) == set(samples[-1]["rss_kb"])}

    # -- (e) shared reads ---------------------------------------------------------------------
    def sharing(self):
        zaps, spread = self.args.share_zaps, self.args.share_seconds
        log(f"(e) shared reads: {zaps} Zaps with one token poll {POLL_TRIGGER}, "
            f"{self.args.latency_ms:g} ms upstream latency")
        rows = []
        for over, share_seconds in ((0.0, 0), (spread, 0), (spread, spread)):
            name = f"share-{len(rows)}"
            service = self.new_service(name, self.backends()[0],
                                       env={"POLL_SHARE_SECONDS": str(share_seconds)}).start()
            try:
                self.sandbox.clear_requests()
                answers = self.zaps_poll(service, zaps, over)
                reads = [e for e in self.sandbox.requests_log() if e["method"] == "GET" and e["path"] == "/contacts/"]
            finally:
                service.stop()
            row = {"zaps": zaps, "over_seconds": over, "share_seconds": share_seconds,
                   "ok": sum(1 for status, _ in answers if status == 200),
                   "same_page": len({ids for status, ids in answers if status == 200}) == 1,
                   "ghl_requests": len(reads)}
            rows.append(row)
            log(f"  {zaps} Zaps {'at once' if not over else f'over {over:g} s'}, POLL_SHARE_SECONDS={share_seconds:g}: "
                f"{row['ghl_requests']} GHL requests, {row['ok']} answered 200, same page: {row['same_page']}")
        self.results["sharing"] = rows

    @staticmethod
    def zaps_poll(service, zaps, over_seconds):
        """Each Zap (its own X-Subscriber-Id, one token) polls once; Zap n starts n/zaps of the way
        through ``over_seconds``. Returns (status, frozenset of item ids) per Zap."""
        start = time.monotonic() + 0.5
        answers = [None] * zaps

        def zap(n):
            time.sleep(max(0.0, start + over_seconds * n / zaps - time.monotonic()))
            response = requests.post(f"{service.url}/triggers/{POLL_TRIGGER}", json={}, timeout=60,
                                     headers={"Authorization": f"Bearer {TOKEN}", "X-Location-Id": LOCATION,
                                              "X-Subscriber-Id": f"share-zap-{n}"})
            ids = frozenset(item["id"] for item in response.json()) if response.status_code == 200 else None
            answers[n] = (response.status_code, ids)

        threads = [threading.Thread(target=zap, args=(n,)) for n in range(zaps)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return answers

    # -- run --------------------------------------------------------------------------------
    def parts(self):
        return [p.strip() for p in self.args.parts.split(",") if p.strip()]

    def run(self):
        parts = self.parts()
        try:
            if set(parts) & {"polls", "steady", "actions", "memory", "sharing"}:
                self.start()
                try:
                    if "polls" in parts or "steady" in parts:
                        self.attempt("polls", self.polls)
                    if "actions" in parts:
                        self.attempt("actions", self.actions)
                    if "memory" in parts:
                        self.attempt("memory", self.memory)
                    if "sharing" in parts:
                        self.attempt("sharing", self.sharing)
                finally:
                    self.stop()
            if "dedupe" in parts:
                self.dedupe()
            if "hosts" in parts:
                self.hosts()
        finally:
            self.stop_stores()
        return self.results


def backends_of(text):
    chosen = [b.strip() for b in text.split(",") if b.strip()]
    unknown = [b for b in chosen if b not in BACKENDS]
    if unknown or not chosen:
        raise SystemExit(f"unknown backend(s) {unknown or text!r}: choose from {', '.join(BACKENDS)}")
    return chosen


# -- reporting ----------------------------------------------------------------------------------

def _fmt(value, digits=1):
    return "n/a" if value is None or value != value else f"{value:,.{digits}f}"


KIND_ORDER = ("polls", "steady polls", "actions")
# Steady polls make the same GHL request as first polls: they compare with the same direct row.
DIRECT_OF = {"steady polls": "polls"}


def throughput_table(rows):
    lines = ["| kind | concurrency | path | req/s | p50 ms | p99 ms | errors | req/s vs direct | p50 vs direct "
             "| GHL calls/req | CPU ms/req: service / PostgreSQL server / sandbox / load gen |",
             "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    direct = {}
    for row in rows:
        if row["path"] == "direct":
            direct[(row["kind"], row["concurrency"])] = row
    order = {kind: n for n, kind in enumerate(KIND_ORDER)}

    def place(numbered):  # polls of both kinds together per concurrency (direct, first, steady); then actions
        n, row = numbered
        kind = order.get(row["kind"], len(order))
        return order.get(DIRECT_OF.get(row["kind"], row["kind"]), kind), row["concurrency"], kind, n
    for _, row in sorted(enumerate(rows), key=place):
        base = direct.get((DIRECT_OF.get(row["kind"], row["kind"]), row["concurrency"]))
        if row["path"] == "direct" or base is None:
            thr, p50 = "1.00", "1.00"
        else:
            thr = f"{row['throughput'] / base['throughput']:.2f}" if base["throughput"] else "n/a"
            p50 = f"{row['p50_ms'] / base['p50_ms']:.2f}" if base["p50_ms"] else "n/a"
        ghl = f"{row['ghl_per_request']:.2f}" + ("+" if row.get("ghl_log_full") else "")
        cpu = row["cpu_ms"]
        store = cpu.get("store")
        cpu_text = (f"{cpu['service']:.2f} / " if row["path"] != "direct" else "– / ") + \
            (f"{store:.2f} / " if store is not None else "– / ") + f"{cpu['sandbox']:.2f} / {cpu['loadgen']:.2f}"
        lines.append(f"| {row['kind']} | {row['concurrency']} | {row['path']} | {_fmt(row['throughput'])} | "
                     f"{_fmt(row['p50_ms'], 2)} | {_fmt(row['p99_ms'], 2)} | {row['errors']} | {thr} | {p50} | "
                     f"{ghl} | {cpu_text} |")
    return "\n".join(lines)


def hosts_table(rows):
    lines = ["| store | hosts | polls (per host) | GHL calls | most GHL calls in any 10 s (burst limit) | refused "
             "for the limit | missing | duplicated | unexpected | hooks deleted on another host (problems) "
             "| kills: gunicorn / hook worker | result |",
             "|---|---:|---|---:|---:|---:|---:|---:|---:|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['backend']} | {row['hosts']} | {row['polls']:,} "
                     f"({' + '.join(f'{p:,}' for p in row['polls_per_host'])}) | {row['ghl_calls']:,} | "
                     f"{row['peak']} ({row['limit']}) | {row['refused']} | {row['missing']} | {row['duplicated']} | "
                     f"{row['unexpected']} | {row['hook_checks']} ({row['hook_problems']}) | "
                     f"{row['worker_kills']} / {row['hook_worker_kills']} | {'FAILED' if row['failed'] else 'ok'} |")
    if rows:
        first = rows[0]
        lines += ["", f"Each: `python -m bench.drill --hosts 2 --backend <store> --minutes {first['minutes']:g}` "
                  f"(seed {', '.join(str(r['seed']) for r in rows)}): two gunicorn groups and two hook workers "
                  f"on one store, {first['zaps']} Zaps polling through the hosts in turn and {first['hook_rows']} "
                  "hooks, GHL faults, kills on both hosts; the sandbox counts every GHL call against its burst limit."]
    return "\n".join(lines)


STORE_NAMES = {"sqlite": "SQLite", "postgres": "PostgreSQL"}


def _size_words(result):
    """Bytes per remembered identity as measured: as the store left the files, after a plain
    ``VACUUM`` (what autovacuum leaves, PostgreSQL), and compacted (SQLite ``VACUUM``,
    PostgreSQL ``VACUUM FULL``)."""
    plain, compacted = result.get("bytes_per_identity_after_vacuum"), result["bytes_per_identity"]
    words = [f"**{result['bytes_per_identity_as_left']:.1f} B per identity as left**"]
    if plain is not None:
        words.append(f"{plain:.1f} B after `VACUUM` (what autovacuum leaves)")
    if compacted is not None:
        words.append(f"{compacted:.1f} B compacted (`VACUUM FULL`)" if plain is not None
                     else f"{compacted:.1f} B after `VACUUM`")
    return ", ".join(words)


def dedupe_measured(results):
    """(store name, dedupe_cost result) for each store measured."""
    found = [("SQLite", results.get("dedupe")), ("PostgreSQL", results.get("dedupe_postgres"))]
    return [(name, result) for name, result in found if result and not result.get("error")]


def dedupe_table(results):
    measured = dedupe_measured(results)
    timed = [(name, result) for name, result in measured if result.get("pages")]
    lines = []
    if timed:
        several = len(timed) > 1
        lines += ["| page | " + " | ".join(f"{name + ': ' if several else ''}all already seen (steady state) | "
                                           f"{name + ': ' if several else ''}all new (a burst)" for name, _ in timed)
                  + " | making the candidates |",
                  "|---:|" + "---:|---:|" * len(timed) + "---:|"]
        by_size = [{row["size"]: row for row in result["pages"]} for _, result in timed]
        for size in sorted(set().union(*by_size)):
            cells = [by_size[n].get(size) for n in range(len(timed))]
            lines.append(f"| {size:,} | " + " | ".join(
                f"{c['seen_ms']:.2f} ms | {c['new_ms']:.2f} ms" if c else "– | –" for c in cells)
                + f" | {next(c for c in cells if c)['candidates_ms']:.2f} ms |")
        lines.append("")
    for name, result in measured:
        if "bytes_per_identity" in result:
            how = "`bench.dedupe_cost`"
            lines.append(f"{name}: {result['rows']:,} remembered identities, recorded through the store's `record` "
                         f"in {result['build_seconds']:.1f}s, then pruned once the redelivery window had passed: "
                         + _size_words(result) + f" ({how}).")
            lines.append("")
        else:  # a run from before issue 14: every body kept
            lines.append(f"Store: {result['rows']:,} seen identities, {result['file_bytes'] / 1e6:,.0f} MB on disk "
                         f"= **{result['bytes_per_million'] / 1e6:,.0f} MB per million** (items stored as emitted, "
                         f"about 450 bytes of JSON each, plus three indexes); built in {result['build_seconds']:.1f}s.")
    for name, result in [("SQLite", results.get("dedupe")), ("PostgreSQL", results.get("dedupe_postgres"))]:
        if result and result.get("error"):
            lines += [f"{name}: not measured ({result['error']}).", ""]
    return "\n".join(lines).strip()


def memory_table(memory):
    pids = list(memory["samples"][0]["rss_kb"])  # pids (strings after a JSON round trip)
    header = "| polls after warm-up | " + " | ".join(f"worker {n + 1} RSS" for n in range(len(pids))) + \
        " | mean | polls/s |"
    lines = [header, "|---:|" + "---:|" * (len(pids) + 2)]
    boot = memory["boot_rss_kb"]
    lines.append("| at boot (0 polls) | " + " | ".join(
        f"{(boot.get(p) or 0) / 1024:.1f} MiB" for p in pids) + f" | {_mean_mib(boot)} | |")
    for sample in memory["samples"]:
        rss = sample["rss_kb"]
        label = f"{sample['polls']:,}" if sample["polls"] else f"0 (after {memory['warmup_polls']:,} warm-up)"
        lines.append(f"| {label} | " + " | ".join(
            f"{(rss.get(p) or 0) / 1024:.1f} MiB" for p in pids) + f" | {_mean_mib(rss)} | "
            f"{_fmt(sample.get('throughput'), 0) if sample.get('throughput') else ''} |")
    growth, second_half = memory_growth(memory)
    lines.append("")
    lines.append(f"{memory['polls']:,} polls (target {memory['target']:,}) in {memory['seconds']:.0f}s through "
                 f"'{memory['service']}', {memory['errors']} errors; same worker pids throughout: "
                 f"{'yes' if memory['pids_same'] else 'no'}. Growth per worker from warm-up to the end: "
                 + ", ".join(f"{g:+.1f} MiB" for g in growth) + "; over the second half: "
                 + ", ".join(f"{g:+.1f} MiB" for g in second_half) + ".")
    return "\n".join(lines)


def memory_growth(memory):
    """Per worker (MiB): growth from the end of warm-up to the end, and over the second half."""
    samples = memory["samples"]
    first, last = samples[0]["rss_kb"], samples[-1]["rss_kb"]
    middle = _middle_sample(memory)
    whole = [((last.get(p) or 0) - (first.get(p) or 0)) / 1024 for p in first]
    half = [((last.get(p) or 0) - (middle.get(p) or 0)) / 1024 for p in first]
    return whole, half


def plateau_growth(memory):
    """Growth (MiB) of the highest worker RSS from the middle of the run to its end."""
    middle, last = _middle_sample(memory), memory["samples"][-1]["rss_kb"]
    return (max((v or 0) for v in last.values()) - max((v or 0) for v in middle.values())) / 1024


def _middle_sample(memory):
    """Per-worker RSS of the sample taken closest to half of the run's polls."""
    return min(memory["samples"], key=lambda s: abs(s["polls"] - memory["polls"] / 2))["rss_kb"]


def _mean_mib(rss):
    values = [v for v in rss.values() if v]
    return f"{sum(values) / len(values) / 1024:.1f} MiB" if values else "n/a"


def sharing_table(rows):
    lines = ["| Zaps polling one list with one token | `POLL_SHARE_SECONDS` | answered 200 | same page for all "
             "| GHL requests |", "|---|---:|---:|---|---:|"]
    for row in rows:
        when = "all at once" if not row["over_seconds"] else f"spread evenly over {row['over_seconds']:g} s"
        lines.append(f"| {row['zaps']}, {when} | {row['share_seconds']:g} | {row['ok']} | "
                     f"{'yes' if row['same_page'] else 'no'} | **{row['ghl_requests']}** |")
    return "\n".join(lines)


def targets(results, latency_ms):
    """The issue's targets, as ratios from this run."""
    lines = []
    c16 = [r for r in results["polls"] if r["concurrency"] == 16]
    base = next((r for r in c16 if r["path"] == "direct"), None)
    if base:
        for row in c16:
            if row["path"] == "direct":
                continue
            p50 = row["p50_ms"] / base["p50_ms"]
            thr = row["throughput"] / base["throughput"]
            lines.append(f"- polls, c16, {latency_ms:g} ms, {row['path']}: p50 {p50:.2f}x direct "
                         f"(target ≤ 1.05: {'met' if p50 <= 1.05 else 'MISSED'}), throughput {thr:.2f}x direct "
                         f"(target ≥ 0.90: {'met' if thr >= 0.90 else 'MISSED'})")
    lines += steady_targets(results, latency_ms)
    for name, result in dedupe_measured(results):
        page = next((p for p in result.get("pages") or () if p["size"] == 1000), None)
        if page:
            worst = max(page["seen_ms"], page["new_ms"])
            verdict = ("met" if worst < 20 else "met when seen, MISSED when all new" if page["seen_ms"] < 20
                       else "MISSED")
            lines.append(f"- 1,000-item page deduped{' on ' + name if len(dedupe_measured(results)) > 1 else ''}: "
                         f"{page['seen_ms']:.1f} ms all seen, {page['new_ms']:.1f} ms all new "
                         f"(target < 20 ms: {verdict})")
    sizes = [f"{name}: " + _size_words(result).replace("**", "") if "bytes_per_identity" in result
             else f"{name} {result['bytes_per_million'] / 1e6:,.0f} B" for name, result in dedupe_measured(results)]
    if sizes:
        lines.append(f"- bytes per remembered identity (= MB per million), after the redelivery window: "
                     f"{'; '.join(sizes)} (target ≤ 150 B)")
    for row in results.get("hosts") or []:
        lines.append(f"- two hosts on {row['backend']}: {row['polls']:,} polls "
                     f"({' + '.join(f'{p:,}' for p in row['polls_per_host'])}), {row['ghl_calls']:,} GHL calls, "
                     f"at most {row['peak']} in any 10 s against a burst limit of {row['limit']} ({row['refused']} "
                     f"refused), {row['missing']} missing, {row['duplicated']} duplicated "
                     f"(target 0 missing, 0 duplicated, limit never exceeded: "
                     f"{'met' if not row['failed'] else 'MISSED'})")
    for row in results.get("sharing") or []:
        when = "at once" if not row["over_seconds"] else f"over {row['over_seconds']:g} s"
        lines.append(f"- {row['zaps']} Zaps polling the same list {when}, POLL_SHARE_SECONDS={row['share_seconds']:g}: "
                     f"{row['ghl_requests']} GHL request{'' if row['ghl_requests'] == 1 else 's'} (measured; no target)")
    memory = results["memory"]
    if memory:
        whole, second_half = memory_growth(memory)
        plateau = plateau_growth(memory)
        half_polls = max(1, memory["polls"] // 2)
        flat = plateau <= FLAT_MIB
        lines.append(f"- memory over {memory['polls']:,} polls: per-worker growth from warm-up to the end "
                     f"{max(whole):+.1f} MiB at most (caches filling); over the second half the highest worker RSS "
                     f"(the level the caches fill to) grew {plateau:+.1f} MiB, single workers up to "
                     f"{max(second_half):+.1f} MiB while reaching it (target flat, taken as the highest worker RSS "
                     f"growing ≤ {FLAT_MIB:g} MiB over the second half; a leak of one contact record per poll, about "
                     f"1 KB, would add about {half_polls / 1024:.0f} MiB: {'met' if flat else 'MISSED'})")
    return "\n".join(lines)


def steady_targets(results, latency_ms):
    """The issue's steady-state targets, per service (store): p50 and throughput against direct
    at 16, throughput at 64, CPU per poll."""
    lines = []
    direct = {r["concurrency"]: r for r in results["polls"] if r["path"] == "direct"}
    steady = results.get("steady") or []
    targets = STEADY_TARGETS
    for label in dict.fromkeys(r["path"] for r in steady):
        cells = {r["concurrency"]: r for r in steady if r["path"] == label}
        c16, c64 = cells.get(16), cells.get(64)
        if c16 and direct.get(16):
            p50 = c16["p50_ms"] / direct[16]["p50_ms"]
            thr = c16["throughput"] / direct[16]["throughput"]
            lines.append(f"- steady polls, c16, {latency_ms:g} ms, {label}: p50 {p50:.2f}x direct (target ≤ "
                         f"{targets['p50_c16']:.2f}: {'met' if p50 <= targets['p50_c16'] else 'MISSED'}), throughput "
                         f"{thr:.2f}x direct (target ≥ {targets['throughput_c16']:.2f}: "
                         f"{'met' if thr >= targets['throughput_c16'] else 'MISSED'})")
        if c64 and direct.get(64):
            thr = c64["throughput"] / direct[64]["throughput"]
            lines.append(f"- steady polls, c64, {latency_ms:g} ms, {label}: throughput {thr:.2f}x direct (target ≥ "
                         f"{targets['throughput_c64']:.2f}: {'met' if thr >= targets['throughput_c64'] else 'MISSED'})")
        judged = c16 or next(iter(cells.values()))
        cpu = judged["cpu_ms"]["service"]
        others = ", ".join(f"c{c} {r['cpu_ms']['service']:.2f}" for c, r in sorted(cells.items()) if r is not judged)
        store = judged["cpu_ms"].get("store")
        lines.append(f"- CPU per steady poll, {label}: {cpu:.2f} ms of the service at c{judged['concurrency']}"
                     + (f" ({others})" if others else "")
                     + (f", plus {store:.2f} ms of the PostgreSQL server" if store is not None else "")
                     + f" (target ≤ {targets['cpu_ms']:g} ms: {'met' if cpu <= targets['cpu_ms'] else 'MISSED'})")
    return lines


def bench_command():
    return "python -m bench.run_bench" + ("".join(" " + a for a in sys.argv[1:]) if sys.argv[1:] else "")


def render(results, args, started, elapsed, command=None):
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    command = command or bench_command()
    backends = results.get("backends") or ["sqlite"]
    stores = {"sqlite": "SQLite (one file)", "postgres": "PostgreSQL (a local server, a database per service)"}
    parts = [f"Run {started:%Y-%m-%d %H:%M} UTC, {elapsed / 60:.1f} min, on {machine}. Command: `{command}` "
             f"(`make bench`). Upstream latency {args.latency_ms:g} ms; polls read a page of {args.page_items} "
             f"contacts; {args.seconds:g} s measured per cell after {args.warmup:g} s of warm-up. Stores: "
             + ", ".join(stores.get(b, b) for b in backends) + "."]
    if results["polls"] or results["actions"] or results.get("steady"):
        steady_note = (f" First polls: a new X-Subscriber-Id per poll. Steady polls: "
                       f"{getattr(args, 'steady_zaps', STEADY_ZAPS)} Zaps (each its own X-Subscriber-Id and token) "
                       f"polled in turn, each polled once before (their direct is the polls' direct)."
                       if results.get("steady") else "")
        parts += ["", "### Throughput and latency: service vs direct", ""]
        if steady_note:
            parts += [steady_note.strip(), ""]
        parts += [throughput_table(results["polls"] + (results.get("steady") or []) + results["actions"])]
    if results["dedupe"] or results.get("dedupe_postgres"):
        parts += ["", f"### Dedupe cost (the store's `answer`, median of {args.dedupe_repeats}; size per "
                  "remembered identity)", "", dedupe_table(results)]
    if results.get("hosts"):
        parts += ["", "### Two hosts on one store", "", hosts_table(results["hosts"])]
    if results["memory"]:
        parts += ["", "### Worker memory", "", memory_table(results["memory"])]
    if results.get("sharing"):
        parts += ["", "### Shared reads: GHL requests for the same list", "", sharing_table(results["sharing"])]
    parts += ["", "### Against the targets", "", targets(results, args.latency_ms)]
    if results.get("failed"):
        parts += ["", "### Parts that failed", ""]
        parts += [f"- {name}: `{error}`" for name, error in results["failed"].items()]
    return "\n".join(parts)


def write_markdown(path, text):
    path = Path(path)
    block = f"{MARK_START}\n{text}\n{MARK_END}"
    if path.exists():
        current = path.read_text()
        if MARK_START in current and MARK_END in current:
            head, rest = current.split(MARK_START, 1)
            tail = rest.split(MARK_END, 1)[1]
            path.write_text(head + block + tail)
            return
        path.write_text(current.rstrip("\n") + "\n\n" + block + "\n")
        return
    path.write_text("# Benchmarks\n\n" + block + "\n")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.run_bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency-ms", type=float, default=50, help="the sandbox's upstream latency")
    parser.add_argument("--concurrency", default="1,16,64")
    parser.add_argument("--seconds", type=float, default=6, help="measured seconds per cell")
    parser.add_argument("--warmup", type=float, default=1, help="unmeasured seconds before each cell")
    parser.add_argument("--page-items", type=int, default=20, help="contacts on the polled page")
    parser.add_argument("--configs", default="procfile",
                        help="service configurations, comma-separated: procfile (as the Procfile), gthread "
                             "(--worker-class gthread with --workers and --threads, to compare other sizes)")
    parser.add_argument("--workers", type=int, default=4, help="workers of the gthread configuration")
    parser.add_argument("--threads", type=int, default=16, help="threads per worker of the gthread configuration")
    parser.add_argument("--sandbox-threads", type=int, default=160)
    parser.add_argument("--backends", default=",".join(BACKENDS),
                        help="stores side by side, comma-separated: sqlite (one file), postgres (a throwaway "
                             "PostgreSQL server started for the run, a fresh database per service; Debian's "
                             "postgresql package: make postgres); default both. The memory and sharing parts "
                             "run on the first")
    parser.add_argument("--parts", default="polls,steady,actions,dedupe,memory,sharing,hosts",
                        help="polls (first polls), steady (steady-state polls), actions, dedupe, memory, sharing, "
                             "hosts (a two-host drill per store)")
    parser.add_argument("--steady-zaps", type=int, default=STEADY_ZAPS,
                        help=f"Zaps of the steady-poll cells, each its own X-Subscriber-Id and token (≤ {TOKENS})")
    parser.add_argument("--hosts-minutes", type=float, default=0.5,
                        help="minutes of faults and kills in the two-host drill (the hosts part), per store")
    parser.add_argument("--hosts-seed", type=int, default=None, help="the two-host drill's seed (default random)")
    parser.add_argument("--quick", action="store_true",
                        help="a short run to try things: 2 s cells after 0.5 s of warm-up, 100,000 dedupe rows, "
                             "10,000 memory polls, the sharing spread 10 s, "
                             "0.25 min two-host drills (explicit options still win)")
    parser.add_argument("--dedupe-rows", type=int, default=1_000_000)
    parser.add_argument("--dedupe-repeats", type=int, default=7)
    parser.add_argument("--memory-polls", type=int, default=100_000)
    parser.add_argument("--memory-warmup", type=int, default=2_000)
    parser.add_argument("--memory-seconds", type=float, default=600, help="time bound of the memory part")
    parser.add_argument("--memory-concurrency", type=int, default=32)
    parser.add_argument("--share-zaps", type=int, default=50, help="Zaps polling one list in the sharing part")
    parser.add_argument("--share-seconds", type=float, default=60, help="the sharing part's spread (and TTL)")
    parser.add_argument("--memory-config", default="procfile", help="which configuration the memory part uses")
    parser.add_argument("--write", default=str(ROOT / "BENCHMARKS.md"), help="'' to leave BENCHMARKS.md alone")
    parser.add_argument("--json", default="", help="also write the raw results here")
    parser.add_argument("--from-json", default="", help="render a saved --json file instead of measuring")
    args = parser.parse_args(argv)
    if args.quick:
        given = {a.split("=", 1)[0] for a in (argv if argv is not None else sys.argv[1:]) if a.startswith("--")}
        for name, value in QUICK.items():
            if "--" + name.replace("_", "-") not in given:
                setattr(args, name, value)
    backends_of(args.backends)
    if not 0 < args.steady_zaps <= TOKENS:
        parser.error(f"--steady-zaps must be between 1 and {TOKENS} (the sandbox's tokens)")
    return args


QUICK = {"seconds": 2.0, "warmup": 0.5, "dedupe_rows": 100_000, "dedupe_repeats": 3,
         "memory_polls": 10_000, "memory_warmup": 500, "share_seconds": 10.0, "hosts_minutes": 0.25}


def main(argv=None):
    args = parse_args(argv)
    if args.from_json:
        results = json.loads(Path(args.from_json).read_text())
        meta = results.get("meta", {})
        saved = vars(args)
        saved.update({k: v for k, v in meta.get("args", {}).items() if k in saved and k not in ("write", "from_json")})
        started = datetime.fromisoformat(meta["started"]) if meta.get("started") else datetime.now(timezone.utc)
        elapsed = meta.get("elapsed", 0.0)
        command = meta.get("command")
    else:
        started = datetime.now(timezone.utc)
        t0 = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="ghl-bench-") as workdir:
            results = Bench(args, workdir).run()
        elapsed = time.monotonic() - t0
        command = None
        results["meta"] = {"args": dict(vars(args)), "started": started.isoformat(), "elapsed": elapsed,
                           "command": bench_command()}
    text = render(results, args, started, elapsed, command)
    print("\n" + text)
    if args.write:
        write_markdown(args.write, text)
        print(f"\nwritten to {args.write}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=str))
    return 1 if results.get("failed") else 0


if __name__ == "__main__":
    sys.exit(main())
