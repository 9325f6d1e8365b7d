"""A bounded concurrent load generator: ``concurrency`` threads, each with its own
``requests.Session`` (kept-alive connections, like Zapier's and the service's pools), sending
until a time budget or a request count is spent; latencies measured per request.

The first ``warmup_s`` seconds are sent but not counted (connections open, caches fill).
Throughput is the counted requests over the time from the end of warm-up to the last
counted answer.
"""

import itertools
import statistics
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import requests
from requests.adapters import HTTPAdapter


@dataclass
class LoadResult:
    concurrency: int
    count: int
    errors: int
    seconds: float
    latencies_ms: list = field(repr=False, default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    error_samples: list = field(default_factory=list)
    sent: int = 0  # every request sent, warm-up included

    @property
    def throughput(self):
        return self.count / self.seconds if self.seconds > 0 else 0.0

    def percentile(self, p):
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        index = min(len(ordered) - 1, max(0, int(round(p / 100.0 * len(ordered) + 0.5)) - 1))
        return ordered[index]

    @property
    def p50(self):
        return statistics.median(self.latencies_ms) if self.latencies_ms else float("nan")

    @property
    def p99(self):
        return self.percentile(99)

    def summary(self):
        return {"concurrency": self.concurrency, "count": self.count, "errors": self.errors,
                "seconds": round(self.seconds, 3), "throughput": round(self.throughput, 1),
                "p50_ms": round(self.p50, 2), "p99_ms": round(self.p99, 2), "statuses": dict(self.statuses)}


def new_session(pool_size=4):
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size)
    session.mount("http://", adapter)
    return session


def run_load(send, concurrency, seconds=5.0, max_requests=None, warmup_s=0.5, ok=(200, 201)):
    """Call ``send(session, n)`` (returning the HTTP status) from ``concurrency`` threads.

    Stops at ``warmup_s + seconds`` or after ``max_requests`` counted requests, whichever comes
    first. Anything raised by ``send`` counts as an error (status ``"exception"``).
    """
    tickets = itertools.count()
    lock = threading.Lock()
    latencies, statuses, samples = [], Counter(), []
    started = time.perf_counter()
    warm_end = started + warmup_s
    deadline = warm_end + seconds
    last_end = [warm_end]
    counted = [0]
    sent = [0]
    stop = threading.Event()

    def worker():
        session = new_session()
        local_lat, local_status, local_last, local_sent = [], Counter(), warm_end, 0
        try:
            while not stop.is_set():
                begin = time.perf_counter()
                if begin >= deadline:
                    break
                n = next(tickets)
                counting = begin >= warm_end
                if counting and max_requests is not None:
                    with lock:
                        if counted[0] >= max_requests:
                            stop.set()
                            break
                        counted[0] += 1
                try:
                    status = send(session, n)
                except Exception as exc:  # a dropped connection, a timeout: an error, not a crash
                    status = "exception"
                    if len(samples) < 5:
                        samples.append(repr(exc)[:200])
                end = time.perf_counter()
                local_sent += 1
                if counting:
                    local_lat.append((end - begin) * 1000.0)
                    local_status[status] += 1
                    local_last = max(local_last, end)
        finally:
            session.close()
            with lock:
                latencies.extend(local_lat)
                statuses.update(local_status)
                last_end[0] = max(last_end[0], local_last)
                sent[0] += local_sent

    threads = [threading.Thread(target=worker, name=f"load-{n}", daemon=True) for n in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(warmup_s + seconds + 120)
    stop.set()
    count = len(latencies)
    errors = sum(v for k, v in statuses.items() if k not in ok)
    return LoadResult(concurrency, count, errors, max(1e-9, last_end[0] - warm_end), latencies, statuses,
                      samples, sent[0])
