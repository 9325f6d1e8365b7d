"""``python -m bench.run_bench`` (``make bench``): the service against the sandbox GHL, side by side.

One run measures:
  (a) polls: requests/s and p50/p99 at each concurrency, through the service (under gunicorn
      as the Procfile runs it, or other sizes with --configs gthread) vs the same GHL
      request sent straight to the sandbox; every poll has its own X-Subscriber-Id, so each
      is a Zap's first poll and the dedupe store records and answers the whole page;
  (b) actions: create_contact through the service vs the same POST /contacts/ sent direct;
  (c) dedupe cost: SqliteDedupeStore.answer on pages of 100/1,000/10,000 against a store of
      a million seen identities, and that store's size on disk (bench.dedupe_cost);
  (d) resident memory of every gunicorn worker before and after N polls (default 100,000)
      of a cheap trigger, with the sandbox's latency at 0;
  (e) shared reads: GHL requests made when 50 Zaps with one token poll the same list, all at
      once and spread over a minute (with POLL_SHARE_SECONDS at 0, then at 60).
and writes the tables into BENCHMARKS.md between its ``bench:results`` markers.

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
from datetime import datetime, timezone
from pathlib import Path

import requests

from bench import dedupe_cost
from bench.harness import LOCATION, ROOT, TOKEN, SandboxProcess, Service, tree_cpu_seconds
from bench.load import run_load

POLL_TRIGGER = "list_contacts_deprecated"
CHEAP_TRIGGER = "get_contact"
CHEAP_CONTACT = "sandbox-contact-1"
ACTION = "create_contact"
TOKENS = 256
BIG = 10 ** 9
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
        self.results = {"polls": [], "actions": [], "dedupe": None, "memory": None, "sharing": None}

    # -- setup ------------------------------------------------------------------------------
    def service_env(self):
        return {"GHL_BURST_MAX": str(BIG), "GHL_BURST_WINDOW_SECONDS": "0", "LOG_LEVEL": "WARNING"}

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

    def start(self):
        self.sandbox = SandboxProcess(latency_ms=self.args.latency_ms, burst_limit=BIG, daily_limit=10 ** 12,
                                      tokens=TOKENS, threads=self.args.sandbox_threads,
                                      log_path=self.workdir / "sandbox.log").start()
        self.fill_page()
        for label, workers, extra in self.configs():
            slug = re.sub(r"[^a-z0-9]+", "-", label)
            service = Service(self.sandbox.url, self.workdir / f"{slug}.sqlite3", workers=workers,
                              extra_args=extra, env=self.service_env(), log_path=self.workdir / f"{slug}.log",
                              label=label)
            service.start()
            self.services.append(service)
            log(f"service '{label}': {' '.join(service.argv[1:])}")

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

    # -- one measured cell ------------------------------------------------------------------
    def cell(self, kind, path_label, send, concurrency, service=None):
        sandbox_pid = self.sandbox.process.pid
        self.sandbox.clear_requests()
        before = (time.process_time(), tree_cpu_seconds(sandbox_pid),
                  tree_cpu_seconds(service.process.pid) if service else 0.0)
        result = run_load(send, concurrency, seconds=self.args.seconds, warmup_s=self.args.warmup)
        after = (time.process_time(), tree_cpu_seconds(sandbox_pid),
                 tree_cpu_seconds(service.process.pid) if service else 0.0)
        ghl_requests = len(self.sandbox.requests_log())
        sent = max(1, result.sent)
        row = {"kind": kind, "path": path_label, **result.summary(), "sent": result.sent,
               "ghl_per_request": ghl_requests / sent, "ghl_log_full": ghl_requests >= 10_000,
               "cpu_ms": {"loadgen": (after[0] - before[0]) * 1000 / sent,
                          "sandbox": (after[1] - before[1]) * 1000 / sent,
                          "service": (after[2] - before[2]) * 1000 / sent},
               "error_samples": result.error_samples}
        log(f"  {kind:7} c{concurrency:<3} {path_label:22} {row['throughput']:8.1f}/s  p50 {row['p50_ms']:8.2f} ms"
            f"  p99 {row['p99_ms']:8.2f} ms  errors {row['errors']}  GHL/req {row['ghl_per_request']:.2f}"
            f"  CPU ms/req svc {row['cpu_ms']['service']:.2f} sbx {row['cpu_ms']['sandbox']:.2f}"
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
        run = [0]
        for concurrency in self.concurrencies():
            self.results["polls"].append(self.cell("polls", "direct", direct, concurrency))
            for service in self.services:
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
        log(f"(c) dedupe cost against {self.args.dedupe_rows:,} seen identities")
        path = self.workdir / "dedupe.sqlite3"
        self.results["dedupe"] = dedupe_cost.measure(str(path), total=self.args.dedupe_rows,
                                                     repeats=self.args.dedupe_repeats, log=log)
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)

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
            service = Service(self.sandbox.url, self.workdir / f"{name}.sqlite3", label=name,
                              env={**self.service_env(), "POLL_SHARE_SECONDS": str(share_seconds)},
                              log_path=self.workdir / f"{name}.log").start()
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
    def run(self):
        parts = [p.strip() for p in self.args.parts.split(",")]
        self.start()
        try:
            if "polls" in parts:
                self.polls()
            if "actions" in parts:
                self.actions()
            if "memory" in parts:
                self.memory()
            if "sharing" in parts:
                self.sharing()
        finally:
            self.stop()
        if "dedupe" in parts:
            self.dedupe()
        return self.results


# -- reporting ----------------------------------------------------------------------------------

def _fmt(value, digits=1):
    return "n/a" if value is None or value != value else f"{value:,.{digits}f}"


def throughput_table(rows):
    lines = ["| kind | concurrency | path | req/s | p50 ms | p99 ms | errors | req/s vs direct | p50 vs direct "
             "| GHL calls/req | CPU ms/req: service / sandbox / load gen |",
             "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    direct = {}
    for row in rows:
        if row["path"] == "direct":
            direct[(row["kind"], row["concurrency"])] = row
    for row in rows:
        base = direct.get((row["kind"], row["concurrency"]))
        if row["path"] == "direct" or base is None:
            thr, p50 = "1.00", "1.00"
        else:
            thr = f"{row['throughput'] / base['throughput']:.2f}" if base["throughput"] else "n/a"
            p50 = f"{row['p50_ms'] / base['p50_ms']:.2f}" if base["p50_ms"] else "n/a"
        ghl = f"{row['ghl_per_request']:.2f}" + ("+" if row.get("ghl_log_full") else "")
        cpu = row["cpu_ms"]
        cpu_text = (f"{cpu['service']:.2f} / " if row["path"] != "direct" else "– / ") + \
            f"{cpu['sandbox']:.2f} / {cpu['loadgen']:.2f}"
        lines.append(f"| {row['kind']} | {row['concurrency']} | {row['path']} | {_fmt(row['throughput'])} | "
                     f"{_fmt(row['p50_ms'], 2)} | {_fmt(row['p99_ms'], 2)} | {row['errors']} | {thr} | {p50} | "
                     f"{ghl} | {cpu_text} |")
    return "\n".join(lines)


def dedupe_table(dedupe):
    lines = ["| page | all already seen (steady state) | all new (a burst) | making the candidates |",
             "|---:|---:|---:|---:|"]
    for row in dedupe["pages"]:
        lines.append(f"| {row['size']:,} | {row['seen_ms']:.2f} ms | {row['new_ms']:.2f} ms | "
                     f"{row['candidates_ms']:.2f} ms |")
    lines.append("")
    lines.append(f"Store: {dedupe['rows']:,} seen identities, {dedupe['file_bytes'] / 1e6:,.0f} MB on disk "
                 f"= **{dedupe['bytes_per_million'] / 1e6:,.0f} MB per million** (items stored as emitted, "
                 f"about 450 bytes of JSON each, plus three indexes); built in {dedupe['build_seconds']:.1f}s.")
    return "\n".join(lines)


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
    if results["dedupe"]:
        page = next((p for p in results["dedupe"]["pages"] if p["size"] == 1000), None)
        if page:
            worst = max(page["seen_ms"], page["new_ms"])
            lines.append(f"- 1,000-item page deduped: {page['seen_ms']:.1f} ms all seen, {page['new_ms']:.1f} ms "
                         f"all new (target < 20 ms: {'met' if worst < 20 else 'met when seen, MISSED when all new' if page['seen_ms'] < 20 else 'MISSED'})")
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


def bench_command():
    return "python -m bench.run_bench" + ("".join(" " + a for a in sys.argv[1:]) if sys.argv[1:] else "")


def render(results, args, started, elapsed, command=None):
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    command = command or bench_command()
    parts = [f"Run {started:%Y-%m-%d %H:%M} UTC, {elapsed / 60:.1f} min, on {machine}. Command: `{command}` "
             f"(`make bench`). Upstream latency {args.latency_ms:g} ms; polls read a page of {args.page_items} "
             f"contacts; {args.seconds:g} s measured per cell after {args.warmup:g} s of warm-up."]
    if results["polls"] or results["actions"]:
        parts += ["", "### Throughput and latency: service vs direct", "",
                  throughput_table(results["polls"] + results["actions"])]
    if results["dedupe"]:
        parts += ["", "### Dedupe cost (`SqliteDedupeStore.answer`, median of "
                  f"{args.dedupe_repeats})", "", dedupe_table(results["dedupe"])]
    if results["memory"]:
        parts += ["", "### Worker memory", "", memory_table(results["memory"])]
    if results.get("sharing"):
        parts += ["", "### Shared reads: GHL requests for the same list", "", sharing_table(results["sharing"])]
    parts += ["", "### Against the targets", "", targets(results, args.latency_ms)]
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
    parser.add_argument("--parts", default="polls,actions,dedupe,memory,sharing")
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
    return parser.parse_args(argv)


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
    return 0


if __name__ == "__main__":
    sys.exit(main())
