"""What the in-process trigger tests share: a ``Zap`` standing in for Zapier, a ``Ghl`` making events
straight in the sandbox GHL (also used by ``tests/test_event_triggers_e2e.py``), their fixtures, and the checks every trigger family makes the same way.

Used by ``tests/test_change_triggers.py``, ``tests/test_commerce_triggers.py`` and
``tests/test_activity_triggers.py``; each subclasses ``Ghl`` with its own event makers and binds
the fixtures with ``zap = zap_fixture()`` and ``ghl = ghl_fixture(ItsGhl)``.
"""

import pytest
import requests

from tests.conftest import LOCATION, SANDBOX_TOKEN
from triggers.hooks_store import scope_for_hook
from triggers.poll import PollLimits, poll_into_backlog

GHL_VERSION = "2021-07-28"
GHL_HEADERS = {"Authorization": f"Bearer {SANDBOX_TOKEN}", "Version": GHL_VERSION}
PIPELINE = "sandbox-pipeline-1"
BURST = 250


class Zap:
    """Zapier polling one trigger: it fires only for ids it has not seen.

    ``mode``, when given, is sent as ``X-Poll-Mode``; without it the header is left out.
    """

    def __init__(self, client, auth, trigger, inputs=None, zap_id="zap-1", mode=None):
        self.client, self.trigger, self.inputs = client, trigger, inputs or {}
        self.headers = {**auth, "X-Subscriber-Id": zap_id}
        self.mode = mode
        self.seen = set()

    def answer(self, mode=None):
        mode = mode or self.mode
        headers = {**self.headers, "X-Poll-Mode": mode} if mode else self.headers
        response = self.client.post(f"/triggers/{self.trigger}", json=self.inputs, headers=headers)
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.json

    def poll(self):
        """What Zapier fires for one poll, oldest first."""
        items = self.answer()
        ids = [item["id"] for item in items]
        assert len(ids) == len(set(ids)), "an answer must not hold an id twice"
        new = [item for item in reversed(items) if item["id"] not in self.seen]
        self.seen.update(ids)
        return new

    def drain(self, polls=5):
        fired = []
        for _ in range(polls):
            fired.extend(self.poll())
        return fired


class Ghl:
    """Events made straight in the sandbox GHL, as GHL's own UI, a customer or a workflow would."""

    def __init__(self, url):
        self.url = url
        self.http = requests.Session()
        self.http.headers.update(GHL_HEADERS)

    def call(self, method, path, version=GHL_VERSION, **kwargs):
        response = self.http.request(method, self.url + path, headers={"Version": version}, timeout=30, **kwargs)
        assert response.status_code < 300, (method, path, response.text)
        return response.json()

    def records(self, path, records, location=LOCATION):
        """Records made in bulk through the sandbox's ``POST /_sandbox/records``; their ids."""
        return self.call("POST", "/_sandbox/records", json={"path": path, "records": records,
                                                            "locationId": location})["ids"]

    def update_contact(self, contact_id, **fields):
        return self.call("PUT", f"/contacts/{contact_id}", json=fields)

    def add_tags(self, contact_id, *tags):
        return self.call("POST", f"/contacts/{contact_id}/tags", json={"tags": list(tags)})

    def remove_tags(self, contact_id, *tags):
        return self.call("DELETE", f"/contacts/{contact_id}/tags", json={"tags": list(tags)})

    def bulk_tags(self, contact_ids, action, *tags):
        return self.call("POST", f"/contacts/bulk/tags/update/{action}",
                         json={"locationId": LOCATION, "contacts": list(contact_ids), "tags": list(tags)})

    def move(self, opportunity_id, stage, pipeline=PIPELINE):
        return self.call("PUT", f"/opportunities/{opportunity_id}",
                         json={"pipelineId": pipeline, "pipelineStageId": stage})

    def set_status(self, opportunity_id, status):
        return self.call("PUT", f"/opportunities/{opportunity_id}/status", json={"status": status})


def zap_fixture(mode=None):
    """A ``zap`` fixture: ``zap(trigger, inputs=None, zap_id="zap-1")`` makes a ``Zap``."""
    @pytest.fixture
    def zap(client, auth):
        def make(trigger, inputs=None, zap_id="zap-1"):
            return Zap(client, auth, trigger, inputs, zap_id, mode)
        return make
    return zap


def ghl_fixture(ghl_class):
    """A ``ghl`` fixture: a ``ghl_class`` on the freshly reset sandbox."""
    @pytest.fixture
    def ghl(sandbox_reset):
        return ghl_class(sandbox_reset.url)
    return ghl


def only(items):
    assert len(items) == 1, items
    return items[0]


def drained_in_batches(trigger):
    """A burst of ``BURST`` items over successive polls: 100, 100, 50, then nothing."""
    batches = [trigger.poll() for _ in range(4)]
    assert [len(b) for b in batches] == [100, 100, 50, 0]
    return [item for batch in batches for item in batch]


def with_location(record, inputs):
    """``inputs`` with the record's location input set to the sandbox's location."""
    return {**inputs, next(f["key"] for f in record["inputs"] if f.get("location")): LOCATION}


def check_rest_hook_path(app, zap, trigger_key, inputs, event, hook_inputs=with_location):
    """The REST-hook path (``poll_into_backlog`` + ``pending``) yields what polling fires for ``event()``.

    ``zap(trigger_key, inputs)`` polls; the hook polls with ``hook_inputs(record, inputs)``.
    """
    shared = app.extensions["ghl_zapier"]
    record = shared.catalog.get(trigger_key)
    full_inputs = hook_inputs(record, inputs)
    scope, limits = scope_for_hook("hook-under-test"), PollLimits()
    polling = zap(trigger_key, inputs)
    assert polling.poll() == []
    # Subscribing seeds the outbox with what exists now: nothing to push.
    assert poll_into_backlog(shared.client, shared.store, record, full_inputs, SANDBOX_TOKEN, scope, limits,
                             seed=True) == 0
    event()
    new = poll_into_backlog(shared.client, shared.store, record, full_inputs, SANDBOX_TOKEN, scope, limits)
    pushed = shared.store.pending(scope, 100)
    polled = polling.poll()
    assert new == len(pushed) == len(polled) >= 1
    assert sorted(pushed, key=lambda i: i["id"]) == sorted(polled, key=lambda i: i["id"])
    # Polling again puts nothing new in the outbox.
    assert poll_into_backlog(shared.client, shared.store, record, full_inputs, SANDBOX_TOKEN, scope, limits) == 0
