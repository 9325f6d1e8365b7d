"""``python -m triggers.hooks_worker``: polls GHL for every REST hook subscription and pushes
what is new to its target URL. Run any number of them: leases keep each subscription with one.

Every tick (APScheduler, about once a second, never overlapping) the worker leases due
subscriptions one at a time, round-robin between owners (credentials): the most overdue
subscription of the owner served least recently, so one tenant's thousands of subscriptions
never hold up another's. For each: if its poll is due, ``poll_into_backlog`` (the polling
code ``/triggers`` uses) adds new items to the hook's backlog, which is its outbox; then, unless a
retry is scheduled for later, the oldest pending items (up to 100) are POSTed as one JSON array.
A 2xx marks them delivered; 410 deletes the subscription; 429 waits for Retry-After; anything
else keeps them for a retry with exponential backoff. Items leave the outbox only after a 2xx,
so a crash at any point means a repeat, never a loss.
"""

import logging
import math
import os
import secrets
import signal
import socket
import sys
import threading
import time
from datetime import datetime, timezone

from apscheduler.schedulers.blocking import BlockingScheduler

from catalog.registry import load_catalog
from ghl.client import client_from_settings
from ghl.errors import GhlError
from server.config import load_settings
from server.log_setup import configure_logging
from storage.backend import open_backend
from triggers import hook_delivery
from triggers.hooks_store import TokenCipher, TokenUnreadable
from triggers.poll import PollLimits, poll_into_backlog

log = logging.getLogger("triggers.hooks_worker")

# A tick hands over to the next one after this long, so SIGTERM and fairness never wait on a long queue.
TICK_BUDGET_SECONDS = 30.0


class HookWorker:
    def __init__(self, settings, catalog, client, dedupe, hooks, session=None, name=None):
        self.settings = settings
        self.catalog = catalog
        self.client = client
        self.dedupe = dedupe
        self.hooks = hooks
        self.session = session or hook_delivery.delivery_session()
        self.limits = PollLimits.from_settings(settings)
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        # A lease must outlast one delivery, or a second worker could repeat the batch in flight.
        self.lease_seconds = max(settings.hook_lease_seconds,
                                 math.ceil(hook_delivery.CONNECT_TIMEOUT + settings.hook_delivery_timeout) + 2)
        self.stopping = threading.Event()

    def tick(self):
        """Serve due subscriptions until none is left, the budget is spent, or the worker stops."""
        started = time.monotonic()
        while not self.stopping.is_set() and time.monotonic() - started < TICK_BUDGET_SECONDS:
            subscription = self.hooks.lease_next_due(self.name, time.time(), self.lease_seconds)
            if subscription is None:
                return
            try:
                self.serve(subscription)
            except Exception:
                # Never let one subscription stop the others; the lease lapses and it is retried.
                log.exception("hook %s: unexpected error", subscription.id)

    def serve(self, subscription):
        now = time.time()
        if subscription.next_poll_at <= now:
            self.poll(subscription, now)
        if subscription.next_delivery_at is None or subscription.next_delivery_at <= time.time():
            self.deliver(subscription)
        else:
            self._release(subscription)

    def poll(self, subscription, now):
        record = self.catalog.get(subscription.trigger)
        changes = {"last_poll_at": now, "next_poll_at": now + subscription.interval_seconds}
        try:
            if record is None:
                raise LookupError(f"the trigger {subscription.trigger!r} is no longer in the catalog")
            token = self.hooks.token(subscription)
            new = poll_into_backlog(self.client, self.dedupe, record, subscription.inputs, token,
                                    subscription.scope, self.limits, now=now,
                                    app_url=self.settings.ghl_app_url)
            log.info("hook %s: polled %s, %d new", subscription.id, subscription.trigger, new)
            self.dedupe.maybe_prune(now, self.limits.retention_seconds)
        except GhlError as exc:
            changes.update(last_error=f"polling GHL failed: {exc.code}: {exc.message}", last_error_at=now)
            if exc.retry_after:
                changes["next_poll_at"] = now + max(subscription.interval_seconds, exc.retry_after)
            log.warning("hook %s: polling GHL failed: %s (GHL status %s)", subscription.id, exc.code,
                        exc.ghl_status)
        except (TokenUnreadable, LookupError) as exc:
            changes.update(last_error=str(exc), last_error_at=now)
            log.warning("hook %s: %s", subscription.id, exc)
        self.hooks.update_held(subscription.id, self.name, **changes)

    def deliver(self, subscription):
        items = self.dedupe.pending(subscription.scope, hook_delivery.BATCH_SIZE)
        if not items:
            self._release(subscription, next_delivery_at=None)
            return
        # Fencing: if the poll outlasted the lease and another worker took over, leave it to them.
        if not self.hooks.renew_lease(subscription.id, self.name, time.time(), self.lease_seconds):
            log.info("hook %s: lease lost before delivery", subscription.id)
            self._forget_if_deleted(subscription)
            return
        items, body = hook_delivery.batch_payload(items)
        outcome = self.post(subscription.target_url, body)
        now = time.time()
        if outcome.kind == hook_delivery.DELIVERED:
            self.dedupe.mark_answered(subscription.scope, [item["id"] for item in items], now)
            more = self.dedupe.pending(subscription.scope, 1)
            self._release(subscription, last_delivery_at=now, delivery_failures=0,
                          next_delivery_at=now if more else None)
            log.info("hook %s: delivered %d items (%s)", subscription.id, len(items), outcome.status)
        elif outcome.kind == hook_delivery.GONE:
            self.remove(subscription)
            log.info("hook %s: the target answered 410 Gone; subscription removed", subscription.id)
        else:
            failures = subscription.delivery_failures + 1
            wait = outcome.retry_after if outcome.retry_after is not None else hook_delivery.retry_delay(failures)
            wait = max(wait, hook_delivery.RETRY_BASE_SECONDS)
            self._release(subscription, delivery_failures=failures, next_delivery_at=now + wait,
                          last_error=f"delivery failed: {outcome.error}", last_error_at=now)
            log.warning("hook %s: delivery of %d items failed (%s); retry in %.1fs", subscription.id,
                        len(items), outcome.error, wait)

    def post(self, target_url, body):
        # Checked again: the allowed hosts may have been narrowed since the subscription was made.
        try:
            hook_delivery.check_target_url(target_url, self.settings.hook_target_hosts,
                                           self.settings.hook_allow_http)
        except hook_delivery.InvalidTargetUrl as exc:
            return hook_delivery.Outcome(hook_delivery.FAILED, error=f"{exc} (under the current HOOK_* settings)")
        return hook_delivery.post_batch(self.session, target_url, body, self.settings.hook_delivery_timeout)

    def _release(self, subscription, **changes):
        if not self.hooks.update_held(subscription.id, self.name, release=True, **changes):
            self._forget_if_deleted(subscription)

    def remove(self, subscription):
        self.hooks.delete(subscription.id)
        self.dedupe.forget_scope(subscription.scope)

    def _forget_if_deleted(self, subscription):
        """A subscription deleted while this worker held it: drop what the poll just recorded."""
        if self.hooks.get(subscription.id) is None:
            self.dedupe.forget_scope(subscription.scope)


def build_worker(settings):
    backend = open_backend(settings)
    return HookWorker(settings, load_catalog(), client_from_settings(settings, backend, secret=settings.secret_key),
                      backend.dedupe_store(), backend.hook_store(TokenCipher(settings.secret_key)))


def main():
    settings = load_settings()
    configure_logging(settings.log_level, "%(asctime)s %(levelname)s %(name)s[%(process)d]: %(message)s")
    # A tick that outlasts its interval is normal here (one at a time, by design), not a warning.
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
    if not settings.secret_key:
        log.error("SECRET_KEY is not set: the hook worker cannot read stored tokens. Set SECRET_KEY "
                  "(make run sets it from the development key file).")
        return 2
    # Signals are handled before the (slow) start: loading the catalog and opening the store
    # take a second or more, and a stop asked for meanwhile must still end the worker cleanly.
    stopping = threading.Event()
    scheduler = BlockingScheduler()

    def stop(signum, _frame):
        log.info("hook worker: stopping (signal %d)", signum)
        stopping.set()
        if scheduler.running:
            # wait=False: the running tick sees ``stopping`` and ends after its current subscription.
            scheduler.shutdown(wait=False)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    worker = build_worker(settings)
    worker.stopping = stopping

    def tick():
        if stopping.is_set():  # a stop that came before the scheduler ran
            scheduler.shutdown(wait=False)
            return
        worker.tick()

    if stopping.is_set():
        return 0
    scheduler.add_job(tick, "interval", seconds=settings.hook_tick_seconds, id="hooks-tick",
                      max_instances=1, coalesce=True, next_run_time=datetime.now(timezone.utc))
    log.info("hook worker %s: started (tick %.2fs, lease %ss)", worker.name, settings.hook_tick_seconds,
             worker.lease_seconds)
    scheduler.start()
    return 0


if __name__ == "__main__":
    sys.exit(main())
