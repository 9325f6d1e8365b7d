"""A per-location request budget shared by every process of the service, kept in SQLite.

GHL allows an app about 100 requests per 10 seconds per location. Rather than collect 429s
(which cost a retry each and can fail a Zap), every GHL request first takes a slot from the
budget of its location; when the window is full, the caller waits for the oldest slot to
expire. Gunicorn workers and the hook worker share the budget through the database file.
"""

import time

from storage.sqlite import SqliteConnections


class BudgetExhausted(Exception):
    """No slot frees up before the caller's deadline; ``retry_after`` says when one will."""

    def __init__(self, retry_after):
        super().__init__(f"rate budget exhausted; retry in {retry_after:.1f}s")
        self.retry_after = retry_after


class RateBudget:
    def __init__(self, path, max_requests=95, window_seconds=10.0, clock=time.time, sleep=time.sleep,
                 margin_seconds=0.25):
        self.path = path
        self.max_requests = max_requests
        # GHL counts a request when it arrives, a little after we take its slot: a slot is
        # only reused once that later arrival has surely left GHL's window too.
        self.window = window_seconds + margin_seconds
        self.clock = clock
        self.sleep = sleep
        self._connections = SqliteConnections(path)
        self._connections.migrate(
            "CREATE TABLE IF NOT EXISTS rate_slots (budget TEXT NOT NULL, taken REAL NOT NULL);"
            "CREATE INDEX IF NOT EXISTS rate_slots_by_budget ON rate_slots (budget, taken)")

    def _connection(self):
        return self._connections.get()

    def _try_take(self, budget):
        """Take a slot now, or return how long until one frees up."""
        now = self.clock()
        with self._connections.transaction() as conn:
            conn.execute("DELETE FROM rate_slots WHERE budget = ? AND taken <= ?", (budget, now - self.window))
            taken, oldest = conn.execute(
                "SELECT COUNT(*), MIN(taken) FROM rate_slots WHERE budget = ?", (budget,)).fetchone()
            if taken < self.max_requests:
                conn.execute("INSERT INTO rate_slots (budget, taken) VALUES (?, ?)", (budget, now))
                return 0.0
        return max(0.01, oldest + self.window - now)

    def take(self, budget, deadline):
        """Block until ``budget`` has a free slot; BudgetExhausted if that would pass ``deadline``."""
        while True:
            wait = self._try_take(budget)
            if wait == 0.0:
                return
            if self.clock() + wait > deadline:
                raise BudgetExhausted(wait)
            self.sleep(wait)
