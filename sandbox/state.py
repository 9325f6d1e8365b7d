"""Everything a sandbox app remembers, kept in ``app.extensions["sandbox"]``."""

import collections
import threading

from sandbox.faults import FaultInjector
from sandbox.rate_limit import BurstLimiter
from sandbox.seed import seed_store
from sandbox.store import ResourceStore

REQUEST_LOG_SIZE = 10_000
UPLOADS_KEPT = 1_000


class SandboxState:
    def __init__(self, table, tokens, seed, latency_ms, burst_limit, burst_window_s):
        self.table = table
        self.tokens = tuple(tokens)
        self.seed = seed
        self.initial_latency_ms = latency_ms
        self.limiter = BurstLimiter(burst_limit, burst_window_s)
        self.faults = FaultInjector()
        self._log_lock = threading.Lock()
        self._log = collections.deque(maxlen=REQUEST_LOG_SIZE)
        self._uploads = collections.deque(maxlen=UPLOADS_KEPT)
        self.reset()

    def reset(self):
        """Back to the seed data, with no faults, an empty log, fresh rate limits and the
        latency the app was created with."""
        store = ResourceStore()
        if self.seed:
            seed_store(store)
        self.store = store
        self.latency_ms = self.initial_latency_ms
        self.faults.clear()
        self.limiter.reset()
        self.clear_log()
        self.clear_uploads()

    def log(self, entry):
        with self._log_lock:
            self._log.append(entry)

    def logged(self):
        with self._log_lock:
            return [dict(e) for e in self._log]

    def clear_log(self):
        with self._log_lock:
            self._log.clear()

    def keep_upload(self, upload):
        """Remember a multipart upload (``sandbox.uploads.received_upload`` plus method and path)."""
        with self._log_lock:
            self._uploads.append(upload)

    def uploads(self):
        with self._log_lock:
            return [dict(u) for u in self._uploads]

    def clear_uploads(self):
        with self._log_lock:
            self._uploads.clear()
