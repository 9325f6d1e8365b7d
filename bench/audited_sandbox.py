"""``python -m bench.audited_sandbox --port P``: ``bench.sandbox_server`` whose rate limiter is audited.

The sandbox counts GHL's burst limit per (token, location) (``sandbox.rate_limit.BurstLimiter``)
and answers 429 past it, but its request log keeps no times. This wraps the limiter of the
sandbox it serves so that every request it counts is remembered with its time, per bucket, and
every request it refuses is counted; ``GET /_sandbox/rate-audit`` answers, per bucket (a
sandbox token and a location): the requests counted, the requests refused (429 for the limit,
not injected faults), and the most requests counted in any window of the limiter's length
(``peak``), against the limit.
``DELETE /_sandbox/rate-audit`` starts over. The drill uses it to show that several hosts
sharing one rate budget never send a location more than GHL's burst limit.

Options are ``bench.sandbox_server``'s.
"""

import collections
import sys
import threading

from flask import jsonify, request

from bench import sandbox_server

_sandbox_app = sandbox_server.build_app


def peak_in_window(times, window):
    """The most of ``times`` (sorted) that fall in any half-open window ``(t - window, t]``:
    what the limiter itself counts when it lets the request at ``t`` through."""
    best, start = 0, 0
    for end, at in enumerate(times):
        while times[start] <= at - window:
            start += 1
        best = max(best, end - start + 1)
    return best


class RateAudit:
    """Times of the requests a ``BurstLimiter`` counted, per bucket, and how many it refused."""

    def __init__(self, limiter):
        self.limiter = limiter
        self.lock = threading.Lock()
        self.counted = collections.defaultdict(list)
        self.refused = collections.Counter()
        self._take = limiter.take
        limiter.take = self.take

    def take(self, bucket):
        allowed, headers = self._take(bucket)
        now = self.limiter._clock()
        with self.lock:
            if allowed:
                self.counted[bucket].append(now)
            else:
                self.refused[bucket] += 1
        return allowed, headers

    def clear(self):
        with self.lock:
            self.counted.clear()
            self.refused.clear()

    def summary(self):
        with self.lock:
            counted = {bucket: sorted(times) for bucket, times in self.counted.items()}
            refused = dict(self.refused)
        window = self.limiter.window_s
        rows = []
        for bucket in sorted(set(counted) | set(refused)):
            token, location = bucket
            times = counted.get(bucket, [])
            rows.append({"token": token, "location": location, "requests": len(times),
                         "refused": refused.get(bucket, 0), "peak": peak_in_window(times, window),
                         "first": times[0] if times else None, "last": times[-1] if times else None})
        return {"window_s": window, "limit": self.limiter.burst_limit, "buckets": rows}


def build_app(args):
    app = _sandbox_app(args)
    audit = RateAudit(app.extensions["sandbox"].limiter)

    @app.route("/_sandbox/rate-audit", methods=["GET", "DELETE"])
    def rate_audit():
        if request.method == "DELETE":
            audit.clear()
        return jsonify(audit.summary())

    return app


def main(argv=None):
    # sandbox_server.main builds its app through the module's build_app: this one, for this process.
    sandbox_server.build_app = build_app
    try:
        return sandbox_server.main(argv)
    finally:
        sandbox_server.build_app = _sandbox_app


if __name__ == "__main__":
    sys.exit(main())
