"""The store contract: what triggers, hooks and the GHL client may ask of shared state.

Two backends implement it: SQLite (``storage.backend.SqliteBackend``, one file, the default) and
PostgreSQL (``storage.postgres.PostgresBackend``, when ``DATABASE_URL`` is set, for several
hosts). Code outside ``storage`` and the store modules never knows which one it has; the one
contract test suite (``tests/test_store_contract*.py``) runs against both.

Times are epoch seconds of the caller's clock (``time.time()``), except where a method says so.
"""

import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass

log = logging.getLogger(__name__)

PRUNE_EVERY_SECONDS = 3600


@dataclass(frozen=True)
class WatchScope:
    """A change trigger's scope: when it was first polled, and where a scanning trigger reads next."""

    first_poll: float
    scan_from: dict = None


class DedupeStore(ABC):
    """Per scope (one Zap's trigger), every identity seen and whether it was answered yet.

    Item bodies are kept only while they can still be answered: in the backlog (never answered,
    including a REST hook's outbox) and within the redelivery window after their first answer.
    Past that only what dedupe and change detection need is kept.
    """

    @abstractmethod
    def has_scope(self, scope):
        """True once a scope has been polled (recorded) at least once."""

    @abstractmethod
    def known(self, scope, identities):
        """The subset of ``identities`` already seen in ``scope``."""

    @abstractmethod
    def answer(self, scope, candidates, now, new_limit, redelivery_seconds, redelivery_limit):
        """Record ``candidates`` and return the answer: up to ``new_limit`` never-answered
        items (oldest first), plus items first answered within ``redelivery_seconds``
        (at most ``redelivery_limit``), all newest first. ``candidates`` may be a
        ``triggers.changes.ChangeBatch``: it is resolved against the scope's baselines in
        the same transaction. Concurrent answers of one scope never claim an item twice."""

    @abstractmethod
    def record(self, scope, candidates, now, answered=False):
        """Remember candidates (or a ChangeBatch) without answering them (REST hooks deliver
        from the backlog); with ``answered`` they never enter the backlog. Returns how many
        were new."""

    @abstractmethod
    def watch_scope(self, scope):
        """The WatchScope of a change trigger's scope; None before its first poll."""

    @abstractmethod
    def baselines(self, scope, ghl_ids):
        """{GHL id: Baseline} of those of ``ghl_ids`` that ``scope`` has a baseline for."""

    @abstractmethod
    def pending(self, scope, limit):
        """Up to ``limit`` backlog items, oldest first, without claiming them."""

    @abstractmethod
    def mark_answered(self, scope, identities, now):
        """Take delivered identities out of the backlog."""

    @abstractmethod
    def backlog(self, scope):
        """How many items of ``scope`` wait in the backlog."""

    @abstractmethod
    def forget_scope(self, scope):
        """Drop everything remembered for ``scope``."""

    @abstractmethod
    def prune(self, now, retention_seconds):
        """Forget identities and baselines not seen for ``retention_seconds``, scopes not polled
        for as long, and bodies past the redelivery window; returns how many identities went."""

    _last_prune = 0.0

    def maybe_prune(self, now, retention_seconds):
        """``prune`` at most once an hour per process; cheap to call on every poll. It runs
        after a poll's answer is written: a failure is logged and retried an hour later, and
        never fails the poll that happened to trigger it."""
        if now - self._last_prune < PRUNE_EVERY_SECONDS:
            return 0
        self._last_prune = now
        try:
            return self.prune(now, retention_seconds)
        except Exception as error:  # noqa: BLE001 - housekeeping; the poll's answer stands
            log.warning("pruning the dedupe store failed (%s); it is retried in an hour", type(error).__name__)
            return 0

    def close(self):
        """Release this process's (or thread's) connections."""


class HookStore(ABC):
    """REST hook subscriptions, their worker leases and the owners' turns (``triggers.hooks_store``)."""

    @abstractmethod
    def create(self, hook_id, trigger, inputs, token, owner, target_url, interval_seconds, now,
               max_per_owner=None):
        """Store a new subscription and return it; ``HookLimitReached`` when ``owner`` already
        holds ``max_per_owner`` (counted and inserted atomically)."""

    @abstractmethod
    def count_owned(self, owner):
        """How many subscriptions ``owner`` holds."""

    @abstractmethod
    def get(self, hook_id):
        """The ``Subscription``, or None."""

    @abstractmethod
    def delete(self, hook_id):
        """True when a subscription was removed; False when it was already gone."""

    @abstractmethod
    def token(self, subscription):
        """The subscription's GHL token, decrypted (``TokenUnreadable`` if it cannot be)."""

    @abstractmethod
    def lease_next_due(self, worker, now, lease_seconds):
        """Lease a due subscription no one holds: the most overdue one of the owner served least
        recently; None when nothing is due. Two workers never hold one subscription."""

    @abstractmethod
    def renew_lease(self, hook_id, worker, now, lease_seconds):
        """Extend a lease this worker still holds; False when another has taken it over."""

    @abstractmethod
    def update_held(self, hook_id, worker, release=False, **changes):
        """Write a held subscription's worker state (``WORKER_FIELDS``), and with ``release`` let
        it go; False when the lease was lost or the subscription deleted meanwhile."""

    def close(self):
        """Release this process's (or thread's) connections."""


class RateSlots(ABC):
    """The per-location request budget's slots, shared by every process (``ghl.rate_budget``)."""

    @abstractmethod
    def try_take(self, budget, now, window_seconds, max_requests):
        """Take a slot of ``budget`` at ``now`` when fewer than ``max_requests`` were taken in the
        last ``window_seconds`` and return 0.0; else return how long until one frees (> 0)."""


class SharedReadTable(ABC):
    """Leases and answers of identical GHL reads in flight (``ghl.shared_reads`` holds the logic).

    ``leader`` identifies the process that fetches: ``"<host>:<pid>"`` (``ghl.shared_reads.leader_id``).
    """

    @abstractmethod
    def fresh(self, key, since):
        """(status, body, headers) of an answer to ``key`` fetched at or after ``since``, or None."""

    @abstractmethod
    def claim(self, key, owner, leader, now, lease_until):
        """True when the caller becomes the leader for ``key`` (no live lease at ``now``)."""

    @abstractmethod
    def leader(self, key):
        """The leader of a live lease on ``key``, or None."""

    @abstractmethod
    def end_lease_of(self, key, leader):
        """End ``leader``'s lease on ``key`` (its process is gone); True if it did."""

    @abstractmethod
    def wait_for_leader(self, key, now):
        """Count one more waiter on a live lease; False when there is none."""

    @abstractmethod
    def release(self, key):
        """End the lease without an answer (the leader's fetch failed)."""

    @abstractmethod
    def publish(self, key, status, body, headers, fetched_at, keep):
        """End the lease with an answer. Unless ``keep``, the row is simply removed when no one
        waits for it; otherwise the answer is stored for ``fresh``."""

    @abstractmethod
    def forget_owner(self, owner, now):
        """Drop ``owner``'s stored answers whose lease has ended."""

    @abstractmethod
    def prune(self, older_than, now):
        """Drop answers fetched before ``older_than`` whose lease has ended."""


class Backend(ABC):
    """One deployment's shared state: opened once per process, schema migrated on open."""

    name = ""

    @abstractmethod
    def dedupe_store(self):
        """The DedupeStore (one per backend)."""

    @abstractmethod
    def hook_store(self, cipher):
        """A HookStore encrypting tokens with ``cipher`` (``triggers.hooks_store.TokenCipher``)."""

    @abstractmethod
    def rate_slots(self):
        """The RateSlots."""

    @abstractmethod
    def shared_read_table(self):
        """The SharedReadTable."""

    @property
    @abstractmethod
    def errors(self):
        """Exception classes this backend raises when a statement fails."""

    @abstractmethod
    def is_unavailable(self, error):
        """True when ``error`` (one of ``errors``) means the database is down, full, unwritable
        or contended (a 503 that may heal), not a bug in a statement (a 500)."""

    @abstractmethod
    def describe(self, error):
        """A short name for ``error`` fit for logs: never its text, which may quote data."""

    @abstractmethod
    def writable(self):
        """Whether a new connection can write now (the health probe); never raises."""

    @abstractmethod
    def close(self):
        """Release every connection this process holds."""
