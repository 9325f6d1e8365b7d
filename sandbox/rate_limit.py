"""GHL's rate limits: a sliding burst window and a daily budget per (token, location).

GHL documents 100 requests per 10 s and 200,000 per day per app and location, reports
them in five ``X-RateLimit-*`` headers, and documents no ``Retry-After``; so neither does
the sandbox.
"""

import collections
import threading
import time

DAILY_LIMIT = 200_000


class BurstLimiter:
    def __init__(self, burst_limit=100, window_s=10.0, daily_limit=DAILY_LIMIT, clock=time.monotonic):
        self.burst_limit = burst_limit
        self.window_s = window_s
        self.daily_limit = daily_limit
        self._clock = clock
        self._lock = threading.Lock()
        self._recent = collections.defaultdict(collections.deque)
        self._daily = collections.Counter()

    def reset(self):
        with self._lock:
            self._recent.clear()
            self._daily.clear()

    def take(self, bucket):
        """Count one request against ``bucket``: (allowed, the five X-RateLimit headers).

        A refused request is not counted, so the window frees up as earlier requests age out.
        """
        with self._lock:
            now = self._clock()
            recent = self._recent[bucket]
            while recent and recent[0] <= now - self.window_s:
                recent.popleft()
            allowed = len(recent) < self.burst_limit and self._daily[bucket] < self.daily_limit
            if allowed:
                recent.append(now)
                self._daily[bucket] += 1
            headers = {
                "X-RateLimit-Limit-Daily": str(self.daily_limit),
                "X-RateLimit-Daily-Remaining": str(self.daily_limit - self._daily[bucket]),
                "X-RateLimit-Interval-Milliseconds": str(int(self.window_s * 1000)),
                "X-RateLimit-Max": str(self.burst_limit),
                "X-RateLimit-Remaining": str(self.burst_limit - len(recent)),
            }
            return allowed, headers
