"""A per-location request budget shared by every process and host of the service.

GHL allows an app about 100 requests per 10 seconds per location. Rather than collect 429s
(which cost a retry each and can fail a Zap), every GHL request first takes a slot from the
budget of its location; when the window is full, the caller waits for the oldest slot to
expire. Gunicorn workers and hook workers share the budget through the store's ``RateSlots``
(``storage.contract``): SQLite's file on one host, PostgreSQL across hosts.
"""

import hashlib
import time

from storage.contract import RateSlots
from storage.sqlite import SqliteConnections
from storage.sqlite_migrations import ensure_schema


class BudgetExhausted(Exception):
    """No slot frees up before the caller's deadline; ``retry_after`` says when one will."""

    def __init__(self, retry_after):
        super().__init__(f"rate budget exhausted; retry in {retry_after:.1f}s")
        self.retry_after = retry_after


class RateBudget:
    def __init__(self, slots, max_requests=95, window_seconds=10.0, clock=time.time, sleep=time.sleep,
                 margin_seconds=0.25):
        self.slots = slots
        self.max_requests = max_requests
        # GHL counts a request when it arrives, a little after we take its slot: a slot is
        # only reused once that later arrival has surely left GHL's window too.
        self.window = window_seconds + margin_seconds
        self.clock = clock
        self.sleep = sleep

    def _try_take(self, budget):
        """Take a slot now, or return how long until one frees up."""
        return self.slots.try_take(budget_key(budget), self.clock(), self.window, self.max_requests)

    def take(self, budget, deadline):
        """Block until ``budget`` has a free slot; BudgetExhausted if that would pass ``deadline``."""
        while True:
            wait = self._try_take(budget)
            if wait == 0.0:
                return
            if self.clock() + wait > deadline:
                raise BudgetExhausted(wait)
            self.sleep(wait)


def budget_key(budget):
    """The stored key of ``budget``: a fixed-size digest, since the name carries a caller's
    location id (any length, any character; PostgreSQL text cannot even hold a NUL)."""
    return hashlib.sha256(budget.encode("utf-8", "surrogatepass")).hexdigest()


class SqliteRateSlots(RateSlots):
    """Slots as rows of ``rate_slots`` (budget, taken), counted under SQLite's write lock.

    Expired slots are only deleted once a budget holds ``max_requests`` rows: until then even
    counting the expired ones the window cannot be full, and taking a slot is one statement
    (an ``INSERT ... SELECT`` takes the write lock before it counts, so it is atomic).
    """

    def __init__(self, path):
        self.path = path
        self._connections = SqliteConnections(path)
        ensure_schema(self._connections)  # tables: storage.sqlite_migrations

    def try_take(self, budget, now, window_seconds, max_requests):
        taken = self._connections.get().execute(
            "INSERT INTO rate_slots (budget, taken) SELECT ?, ?"
            " WHERE (SELECT COUNT(*) FROM rate_slots WHERE budget = ?) < ?", (budget, now, budget, max_requests))
        if taken.rowcount == 1:
            return 0.0
        with self._connections.transaction() as conn:
            conn.execute("DELETE FROM rate_slots WHERE budget = ? AND taken <= ?", (budget, now - window_seconds))
            taken, oldest = conn.execute(
                "SELECT COUNT(*), MIN(taken) FROM rate_slots WHERE budget = ?", (budget,)).fetchone()
            if taken < max_requests:
                conn.execute("INSERT INTO rate_slots (budget, taken) VALUES (?, ?)", (budget, now))
                return 0.0
        return max(0.01, oldest + window_seconds - now)
