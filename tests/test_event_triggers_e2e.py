"""Issue 11's end-to-end proof: the event triggers against the sandbox GHL and ONE service under
gunicorn (the Procfile's ``web:`` line, 2 workers) for the module, plus the Procfile's hook
worker and a loopback receiver standing in for hooks.zapier.com.

``CASES`` is the table: one small dict per trigger (see ``CASE FIELDS`` below). Each case gets a
fresh sandbox (reset) and runs, as a polling Zap and as its REST-hook twin at the same time:

  1. turn-on: the Zap's first poll fires nothing (a change trigger answers nothing; a plain "new"
     trigger answers what already exists, which Zapier's turn-on poll only remembers), and the
     hook's subscription seeds the same state, so nothing that existed before ever arrives;
  2. once: one matching event, a poll; then two more events, a poll: each fires exactly once,
     holding the values the case expects (``previous``, ``tag``, ``changed_fields``, ...);
  3. filter: events that do not match the trigger's inputs (another tag, stage, pipeline,
     calendar, field, channel, assignee, location, a window the range excludes) or are not the
     trigger's event (an outbound message, a task made or reopened but not completed) never fire;
  4. restart: an event, gunicorn restarted (and the hook worker), another event: both fire once,
     nothing is lost or repeated;
  5. burst (cases with ``burst``): 250 events fire in full over successive polls, 100, 100, 50;
  6. the hook: the receiver gets exactly the events the Zap fired (same values), each once, and
     one more worker poll after they arrived repeats nothing.

The table: the seven contact and opportunity change triggers, ``list_calendar_events``, the form,
survey, order, payment and invoice triggers, ``appointment_booked``/``appointment_status_changed``,
``new_inbound_message`` (the export's cursor, direction filtered by the service) and ``task_completed``
(a scan of the task search, ``completed`` false -> true). A case whose trigger is not in the catalog
is skipped, and says so.

Every trigger gets checks 1, 2, 3, 4 and 6. The hook worker polls each subscription every
HOOK_POLL_SECONDS (5 s); where the test waits for a hook poll it brings the subscription's
``next_poll_at`` forward to now in the service's database (``Hook.poll_now``), as if the 5 s had
passed: the polls, leases and deliveries are the worker's own (seventeen cases waiting two real
polls each would take well over two minutes). Every trigger but two also gets check 5:
``contact_updated`` (a burst of updates needs 250 baselined contacts, and an ordered first poll
baselines one page) and ``contact_tag_removed`` (the same path as ``contact_tag_added``'s burst);
``tests/test_change_triggers.py`` runs both bursts in-process.
The hook twin receives the bursts too. Each case's events touch distinct records, so the Zap and
the hook, which poll at different moments, see the same changes whatever their timing.

Run: ``.venv/bin/python -m pytest -q tests/test_event_triggers_e2e.py``.
"""

import os
import sqlite3
import time
from collections import Counter
from datetime import datetime

import pytest
import requests

from bench.harness import HookWorkerProcess, procfile_command
from catalog.registry import load_catalog
from sandbox.seed import CALENDAR_ID
from sandbox.store import iso_from_ms
from tests import event_zaps
from tests.conftest import LOCATION, SANDBOX_TOKEN, GunicornService, wait_for
from tests.event_zaps import PIPELINE

AUTH = {"Authorization": f"Bearer {SANDBOX_TOKEN}", "X-Location-Id": LOCATION}
HOOK_POLL_SECONDS = 5  # HOOK_POLL_SECONDS's floor
BURST = 250
POOL = 5  # records made before turn-on, one per matching event: 3 for "once", 2 for "restart"
DAY_MS = 86_400_000
CONVERSATION = "sandbox-conversation-1"  # sandbox-contact-1's
TASK_CONTACT = "sandbox-contact-2"


# -- GHL (the sandbox), Zapier's two sides --------------------------------------------------------

class Ghl(event_zaps.Ghl):
    """Events made straight in the sandbox GHL over HTTP, as GHL's UI or a workflow would."""

    def create_contact(self, location=LOCATION, **fields):
        return self.call("POST", "/contacts/", json={"locationId": location, **fields})["contact"]["id"]

    def create_opportunity(self, **fields):
        body = {"locationId": LOCATION, "pipelineId": PIPELINE, "pipelineStageId": "sandbox-stage-1",
                "name": "Deal", "status": "open", "contactId": "sandbox-contact-1", **fields}
        return self.call("POST", "/opportunities/", json=body)["opportunity"]["id"]

    def pay(self, invoice_id, amount=None):
        body = {} if amount is None else {"amount": amount}
        return self.call("POST", f"/_sandbox/invoices/{invoice_id}/record-payment", json=body)["invoice"]

    def book(self, days_ahead, title, calendar=CALENDAR_ID, location=LOCATION):
        start = int(time.time() * 1000) + int(days_ahead * DAY_MS)
        return self.call("POST", "/calendars/events/appointments", version="2021-04-15", json={
            "calendarId": calendar, "locationId": location, "contactId": "sandbox-contact-1", "title": title,
            "startTime": iso_from_ms(start), "endTime": iso_from_ms(start + 30 * 60_000)})["id"]

    def edit_appointment(self, event_id, **fields):
        return self.call("PUT", f"/calendars/events/appointments/{event_id}", version="2021-04-15", json=fields)

    def messages(self, direction, bodies, kind="SMS", **where):
        """Messages a customer (``inbound``) or the location (``outbound``) sends, as GHL stores them."""
        where = where or {"conversationId": CONVERSATION}
        return self.call("POST", f"/_sandbox/messages/{direction}", json={"messages": [
            {"type": kind, "message": body, **where} for body in bodies]})["ids"]

    def create_task(self, contact_id, **fields):
        body = {"title": "Follow up", "dueDate": "2030-01-01T15:00:00Z", "completed": False, **fields}
        return self.call("POST", f"/contacts/{contact_id}/tasks", json=body)["task"]["id"]

    def complete(self, contact_id, task_id, completed=True):
        return self.call("PUT", f"/contacts/{contact_id}/tasks/{task_id}/completed", json={"completed": completed})

    def appointments(self, count, title):
        """``count`` confirmed appointments from a day ahead, a minute apart (the control API)."""
        start = int(time.time() * 1000) + DAY_MS
        return self.records("/calendars/events", [
            {"calendarId": CALENDAR_ID, "contactId": "sandbox-contact-1", "title": f"{title} {n}",
             "appointmentStatus": "confirmed", "startTime": iso_from_ms(start + n * 60_000),
             "endTime": iso_from_ms(start + n * 60_000 + 1_800_000)} for n in range(count)])


class Zap:
    """A polling Zap: polls the service and fires only ids it has not seen (Zapier's dedupe)."""

    def __init__(self, service, trigger, inputs):
        self.service, self.trigger, self.inputs = service, trigger, inputs
        self.headers = {**AUTH, "X-Subscriber-Id": f"e2e-{trigger}"}
        self.seen = set()
        self.fired = []

    def answer(self):
        response = requests.post(f"{self.service.url}/triggers/{self.trigger}", json=self.inputs,
                                 headers=self.headers, timeout=60)
        assert response.status_code == 200, response.text
        items = response.json()
        ids = [item["id"] for item in items]
        assert len(ids) == len(set(ids)), "an answer must not hold an id twice"
        return items

    def turn_on(self):
        """Zapier's first poll when a Zap is turned on: remembers what is there, fires nothing."""
        items = self.answer()
        self.seen.update(item["id"] for item in items)
        return items

    def poll(self):
        new = [item for item in reversed(self.answer()) if item["id"] not in self.seen]
        self.seen.update(item["id"] for item in new)
        self.fired.extend(new)
        return new


# -- what a fired item must hold -------------------------------------------------------------------

def key(item):
    """One event: the GHL record (every case's events touch distinct records) and, for list
    events, the element. A change detected twice would carry a new ``id`` but the same key."""
    return item.get("ghl_id") or item["id"], item.get("tag")


def check_fired(fired, expected, what):
    """``fired`` holds each expected event exactly once, nothing else, with the expected values."""
    counts = Counter(key(item) for item in fired)
    assert set(counts) == {key(e) for e in expected}, f"{what}: fired {sorted(counts)}"
    assert all(n == 1 for n in counts.values()), f"{what}: fired twice: {[k for k, n in counts.items() if n > 1]}"
    by_key = {key(item): item for item in fired}
    for wanted in expected:
        item = by_key[key(wanted)]
        wrong = {k: (item.get(k), v) for k, v in wanted.items() if item.get(k) != v}
        assert not wrong, f"{what}: {key(wanted)} (got, wanted): {wrong}"


# -- the table ---------------------------------------------------------------------------------------
# CASE FIELDS: key, inputs (the Zap's); setup(ghl, burst) -> ctx with "pool" (record ids made before
# turn-on, one per matching event), optionally "existing" (ids a plain trigger's turn-on answers) and
# "burst" (records the burst changes); event(ghl, ctx, n) makes the n-th matching event and returns
# what its item must hold (must include "ghl_id" or "id", and "tag" for list events);
# other(ghl, ctx) makes events that must never fire; burst(ghl, ctx, settle) makes 250 matching events
# and returns their expected items (``settle()`` polls the Zap, asserting nothing fires).

def contact_pool(tags):
    def setup(ghl, burst):
        return {"pool": ghl.records("/contacts/", [{"firstName": f"Pool{n}", "email": f"pool{n}@example.com",
                                                    "phone": f"+1555020{n:04d}", "tags": tags}
                                                   for n in range(POOL)])}
    return setup


def opportunity_pool(ghl, burst):
    made = ghl.records("/opportunities/", [{"name": f"Deal {n}", "pipelineId": PIPELINE, "status": "open",
                                            "pipelineStageId": "sandbox-stage-1"} for n in range(POOL + burst)])
    return {"pool": made[:POOL], "burst": made[POOL:]}


def no_setup(ghl, burst):
    return {"pool": []}


def new_contacts(ghl, ctx, settle, tags=()):
    return ghl.records("/contacts/", [{"firstName": f"Burst{n}", "email": f"burst{n}@example.com",
                                       "tags": list(tags)} for n in range(BURST)])


def tag_burst(action, tag, start_tags):
    def burst(ghl, ctx, settle):
        ids = new_contacts(ghl, ctx, settle, start_tags)
        settle()  # the new contacts are first seen: no tag added or removed yet
        ghl.bulk_tags(ids, action, tag)
        return [{"ghl_id": i, "tag": tag} for i in ids]
    return burst


def each_opportunity(change):
    def burst(ghl, ctx, settle):
        for opportunity_id in ctx["burst"]:
            change(ghl, opportunity_id)
        return [{"ghl_id": i, "id": f"{i}:1"} for i in ctx["burst"]]
    return burst


def contact_changed(ghl, ctx, n):
    contact_id = ctx["pool"][n]
    if n % 2:
        ghl.update_contact(contact_id, phone=f"+1555030{n:04d}")
        change = {"changed_fields": ["phone"], "previous": {"phone": f"+1555020{n:04d}"}}
    else:
        ghl.update_contact(contact_id, email=f"changed{n}@example.com")
        change = {"changed_fields": ["email"], "previous": {"email": f"pool{n}@example.com"}}
    return {"ghl_id": contact_id, "id": f"{contact_id}:1", **change}


def new_contact(ghl, ctx, n):
    contact_id = ghl.create_contact(firstName=f"New{n}", email=f"new{n}@example.com")
    return {"id": contact_id, "ghl_id": contact_id, "email": f"new{n}@example.com"}


def new_opportunity(ghl, ctx, n):
    opportunity_id = ghl.create_opportunity(name=f"New deal {n}")
    return {"id": opportunity_id, "ghl_id": opportunity_id, "name": f"New deal {n}", "pipelineId": PIPELINE}


def calendar_setup(ghl, burst):
    return {"pool": [], "existing": [ghl.book(2, "Booked before the Zap was on")]}


def appointment(ghl, ctx, n):
    return {"id": ghl.book(1 + n, f"E2E appointment {n}"), "title": f"E2E appointment {n}",
            "calendarId": CALENDAR_ID}


def appointment_burst(ghl, ctx, settle):
    return [{"id": i} for i in ghl.appointments(BURST, "Burst")]


def appointment_pool(ghl, burst):
    made = ghl.appointments(POOL + 1 + burst, "Pool")
    return {"pool": made[:POOL], "spare": made[POOL], "burst": made[POOL + 1:]}


def appointment_status(ghl, ctx, n):
    event_id = ctx["pool"][n]
    ghl.edit_appointment(event_id, appointmentStatus="showed")
    return {"ghl_id": event_id, "id": f"{event_id}:1", "appointmentStatus": "showed",
            "changed_fields": ["appointmentStatus"], "previous": {"appointmentStatus": "confirmed"}}


def not_this_calendars_bookings(ghl, ctx):
    """Another calendar's booking and status change, a reschedule, another location's booking."""
    ghl.records("/calendars", [{"id": "sandbox-calendar-2", "name": "Other Calendar", "slotDuration": 30}])
    ghl.edit_appointment(ghl.book(2, "Another calendar", calendar="sandbox-calendar-2"), appointmentStatus="cancelled")
    ghl.edit_appointment(ctx["spare"], title="Renamed", startTime=iso_from_ms(int(time.time() * 1000) + 3 * DAY_MS))
    ghl.book(2, "Another location", location="other-location")


def submissions(path, field):
    """Form or survey submissions: ``make(ghl, form, n)`` submits ``n`` to ``form``."""
    def make(ghl, form, n=1, location=LOCATION, prefix="Sample"):
        return ghl.records(path, [{field: form, "contactId": "sandbox-contact-1", "name": f"{prefix} {k}",
                                      "email": f"{prefix.lower()}{k}@example.com", "others": {"message": "Hi"}}
                                     for k in range(n)], location)
    return make


def created_case(key, inputs, make, other):
    """A trigger firing once per new record: ``make(ghl, n, prefix)`` makes ``n`` matching records."""
    def setup(ghl, burst):
        return {"pool": [], "before": make(ghl, 3, "Before")}  # made before the Zap: never fire

    def event(ghl, ctx, n):
        [made] = make(ghl, 1, f"Event{n}")
        return {"id": made, "ghl_id": made}
    return dict(key=key, inputs=inputs, setup=setup, event=event, other=other,
                burst=lambda g, ctx, settle: [{"id": i} for i in make(g, BURST, "Burst")])


FORMS = submissions("/forms/submissions", "formId")
SURVEYS = submissions("/surveys/submissions", "surveyId")


def orders(ghl, n, prefix, location=LOCATION):
    return ghl.records("/payments/orders", [{"contactId": "sandbox-contact-1", "amount": 10 + k, "currency": "USD",
                                                "status": "completed", "sourceType": "funnel", "name": f"{prefix} {k}"}
                                               for k in range(n)], location)


def charges(ghl, n, prefix, location=LOCATION):
    return ghl.records("/payments/transactions", [{"contactId": "sandbox-contact-1", "amount": 10 + k,
                                                      "entityType": "order", "status": "succeeded",
                                                      "name": f"{prefix} {k}"} for k in range(n)], location)


def invoices(ghl, n, location=LOCATION):
    return ghl.records("/invoices/", [{"name": f"Invoice {k}", "total": 100, "status": "sent",
                                          "contactDetails": {"id": "sandbox-contact-1", "name": "Ada Sample"}}
                                         for k in range(n)], location)


def invoice_setup(ghl, burst):
    made = invoices(ghl, POOL + 1 + burst)
    return {"pool": made[:POOL], "partly": made[POOL], "burst": made[POOL + 1:],
            "elsewhere": invoices(ghl, 1, location="other-location")[0]}


def invoice_paid(ghl, ctx, n):
    invoice_id = ctx["pool"][n]
    ghl.pay(invoice_id)
    return {"ghl_id": invoice_id, "id": f"{invoice_id}:1", "status": "paid", "previous": {"status": "sent"},
            "changed_fields": ["status"], "amountDue": 0}


def inbound_message(ghl, ctx, n):
    [message_id] = ghl.messages("inbound", [f"Inbound {n}"])
    return {"id": message_id, "ghl_id": message_id, "body": f"Inbound {n}", "direction": "inbound",
            "messageType": "TYPE_SMS", "conversationId": CONVERSATION, "contactId": "sandbox-contact-1"}


def not_inbound_sms(ghl, ctx):
    """The location's own SMS, a customer's WhatsApp message, another location's customer's SMS."""
    ghl.messages("outbound", ["See you Tuesday"])
    ghl.messages("inbound", ["Hola"], kind="WhatsApp", contactId="sandbox-contact-2")
    ghl.messages("inbound", ["Hi?"], contactId=ghl.create_contact(location="other-location",
                                                                  email="stranger@example.com"))


def inbound_burst(ghl, ctx, settle):
    made = ghl.messages("inbound", [f"Burst {n}" for n in range(BURST)])
    ghl.messages("outbound", [f"Reply {n}" for n in range(20)])
    return [{"id": i, "direction": "inbound"} for i in made]


def tasks(ghl, count, title, **fields):
    """``count`` tasks of TASK_CONTACT (pending, for sandbox-user-1 unless ``fields`` say), a minute apart."""
    due = 1_893_456_000_000  # 2030
    return ghl.records(f"/contacts/{TASK_CONTACT}/tasks", [
        {"contactId": TASK_CONTACT, "title": f"{title} {n}", "completed": False, "assignedTo": "sandbox-user-1",
         "dueDate": iso_from_ms(due + n * 60_000), **fields} for n in range(count)])


def task_setup(ghl, burst):
    made = tasks(ghl, POOL + burst, "Task")
    return {"pool": made[:POOL], "burst": made[POOL:], "done": tasks(ghl, 1, "Done", completed=True)[0],
            "theirs": tasks(ghl, 1, "Uma's", assignedTo="sandbox-user-2")[0]}


def task_completed(ghl, ctx, n):
    task_id = ctx["pool"][n]
    ghl.complete(TASK_CONTACT, task_id)
    return {"ghl_id": task_id, "id": f"{task_id}:1", "_id": task_id, "title": f"Task {n}", "completed": True,
            "assignedTo": "sandbox-user-1", "contactId": TASK_CONTACT, "locationId": LOCATION,
            "changed_fields": ["completed"], "previous": {"completed": False}}


def not_completions(ghl, ctx):
    """A task made and edited but not completed, a completed task reopened, another assignee's
    completion, another location's task made complete."""
    made = ghl.create_task(TASK_CONTACT, assignedTo="sandbox-user-1", title="Made after turn-on")
    ghl.call("PUT", f"/contacts/{TASK_CONTACT}/tasks/{made}", json={"title": "Renamed", "body": "More"})
    ghl.complete(TASK_CONTACT, ctx["done"], completed=False)
    ghl.complete(TASK_CONTACT, ctx["theirs"])
    stranger = ghl.create_contact(location="other-location", email="stranger@example.com")
    ghl.create_task(stranger, assignedTo="sandbox-user-1", completed=True)


CASES = [
    dict(key="new_contact", inputs={}, setup=no_setup, event=new_contact,
         other=lambda g, ctx: (g.update_contact("sandbox-contact-2", email="ben.new@example.com"),
                               g.create_contact(location="other-location", email="elsewhere@example.com")),
         burst=lambda g, ctx, settle: [{"id": i} for i in new_contacts(g, ctx, settle)]),
    dict(key="contact_updated", inputs={"fields": ["email", "phone"]}, setup=contact_pool(["lead"]),
         event=contact_changed,
         other=lambda g, ctx: (g.update_contact("sandbox-contact-1", website="https://acme.example"),
                               g.update_contact("sandbox-contact-4", timezone="Europe/London"),
                               g.add_tags("sandbox-contact-5", "vip"))),
    dict(key="contact_tag_added", inputs={"tag": "VIP"}, setup=contact_pool(["lead"]),
         event=lambda g, ctx, n: (g.add_tags(ctx["pool"][n], "vip"), {
             "ghl_id": ctx["pool"][n], "id": f"{ctx['pool'][n]}:1:+vip", "tag": "vip",
             "previous": {"tags": ["lead"]}, "tags": ["lead", "vip"], "added": {"tags": ["vip"]}})[1],
         other=lambda g, ctx: (g.add_tags("sandbox-contact-2", "gold"), g.remove_tags("sandbox-contact-1", "vip")),
         burst=tag_burst("add", "vip", [])),
    dict(key="contact_tag_removed", inputs={"tag": "lead"}, setup=contact_pool(["lead", "newsletter"]),
         event=lambda g, ctx, n: (g.remove_tags(ctx["pool"][n], "lead"), {
             "ghl_id": ctx["pool"][n], "id": f"{ctx['pool'][n]}:1:-lead", "tag": "lead",
             "previous": {"tags": ["lead", "newsletter"]}, "tags": ["newsletter"], "removed": {"tags": ["lead"]}})[1],
         other=lambda g, ctx: (g.remove_tags("sandbox-contact-1", "customer"),
                               g.add_tags("sandbox-contact-4", "lead"))),
    dict(key="new_opportunity", inputs={"pipelineId": PIPELINE}, setup=no_setup, event=new_opportunity,
         other=lambda g, ctx: (g.create_opportunity(name="Elsewhere", pipelineId="other-pipeline"),
                               g.move("sandbox-opportunity-1", "sandbox-stage-4")),
         burst=lambda g, ctx, settle: [{"id": i} for i in g.records("/opportunities/", [
             {"name": f"Burst {n}", "pipelineId": PIPELINE, "pipelineStageId": "sandbox-stage-1", "status": "open"}
             for n in range(BURST)])]),
    dict(key="opportunity_stage_changed", inputs={"pipelineId": PIPELINE, "stageId": "sandbox-stage-4"},
         setup=opportunity_pool,
         event=lambda g, ctx, n: (g.move(ctx["pool"][n], "sandbox-stage-4"), {
             "ghl_id": ctx["pool"][n], "id": f"{ctx['pool'][n]}:1", "pipelineStageId": "sandbox-stage-4",
             "changed_fields": ["pipelineStageId"], "previous": {"pipelineStageId": "sandbox-stage-1"}})[1],
         other=lambda g, ctx: (g.move("sandbox-opportunity-2", "sandbox-stage-3"),
                               g.set_status("sandbox-opportunity-1", "won"),
                               g.move("sandbox-opportunity-1", "elsewhere-stage-4", pipeline="other-pipeline")),
         burst=each_opportunity(lambda g, i: g.move(i, "sandbox-stage-4"))),
    dict(key="opportunity_status_changed", inputs={"status": "won"}, setup=opportunity_pool,
         event=lambda g, ctx, n: (g.set_status(ctx["pool"][n], "won"), {
             "ghl_id": ctx["pool"][n], "id": f"{ctx['pool'][n]}:1", "status": "won",
             "changed_fields": ["status"], "previous": {"status": "open"}})[1],
         other=lambda g, ctx: (g.set_status("sandbox-opportunity-1", "lost"),
                               g.move("sandbox-opportunity-2", "sandbox-stage-4")),
         burst=each_opportunity(lambda g, i: g.set_status(i, "won"))),
    dict(key="list_calendar_events", inputs={"calendarId": CALENDAR_ID}, setup=calendar_setup,
         event=appointment,
         other=lambda g, ctx: (g.book(40, "Beyond the 30 days ahead"),
                               g.book(3, "Another calendar", calendar="other-calendar")),
         burst=appointment_burst),
]
CASES += [
    created_case("new_form_submission", {"formId": "form-a"}, lambda g, n, p: FORMS(g, "form-a", n, prefix=p),
                 other=lambda g, ctx: (FORMS(g, "form-b"), FORMS(g, "form-a", location="other-location"))),
    created_case("new_survey_submission", {"surveyId": "survey-a"}, lambda g, n, p: SURVEYS(g, "survey-a", n, prefix=p),
                 other=lambda g, ctx: (SURVEYS(g, "survey-b"), SURVEYS(g, "survey-a", location="other-location"))),
    created_case("new_order", {}, orders, other=lambda g, ctx: orders(g, 1, "Elsewhere", "other-location")),
    created_case("new_payment", {}, charges, other=lambda g, ctx: charges(g, 1, "Elsewhere", "other-location")),
    dict(key="invoice_paid", inputs={"status": "paid"}, setup=invoice_setup, event=invoice_paid,
         other=lambda g, ctx: (g.pay(ctx["partly"], 30), g.pay(ctx["elsewhere"])),
         burst=lambda g, ctx, settle: [(g.pay(i), {"ghl_id": i, "id": f"{i}:1", "status": "paid"})[1]
                                       for i in ctx["burst"]]),
]
CASES += [
    dict(key="appointment_booked", inputs={"calendarId": CALENDAR_ID}, setup=lambda g, burst: appointment_pool(g, 0),
         event=appointment,
         other=not_this_calendars_bookings, burst=appointment_burst),
    dict(key="appointment_status_changed", inputs={"calendarId": CALENDAR_ID}, setup=appointment_pool,
         event=appointment_status, other=not_this_calendars_bookings,
         burst=lambda g, ctx, settle: [(g.edit_appointment(i, appointmentStatus="showed"), {
             "ghl_id": i, "id": f"{i}:1", "previous": {"appointmentStatus": "confirmed"}})[1] for i in ctx["burst"]]),
]
CASES += [
    dict(key="new_inbound_message", inputs={"channel": "SMS"}, setup=no_setup, event=inbound_message,
         other=not_inbound_sms, burst=inbound_burst),
    dict(key="task_completed", inputs={"assignedTo": "sandbox-user-1"}, setup=task_setup, event=task_completed,
         other=not_completions,
         burst=lambda g, ctx, settle: [(g.complete(TASK_CONTACT, i), {
             "ghl_id": i, "id": f"{i}:1", "completed": True, "previous": {"completed": False}})[1]
             for i in ctx["burst"]]),
]
# A case whose trigger is not in the catalog is skipped, and says so.
CATALOG_KEYS = {record["key"] for record in load_catalog()}


# -- fixtures ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def env(sandbox, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("event-e2e")
    return {**os.environ, "GHL_BASE_URL": sandbox.url, "DATABASE_PATH": str(workdir / "service.sqlite3"),
            "SECRET_KEY": "e2e-secret-key", "HOOK_TARGET_HOSTS": "127.0.0.1", "HOOK_ALLOW_HTTP": "1",
            "HOOK_POLL_SECONDS": str(HOOK_POLL_SECONDS), "HOOK_TICK_SECONDS": "0.2", "LOG_LEVEL": "WARNING",
            "E2E_WORKDIR": str(workdir)}


@pytest.fixture(scope="module")
def service(env):
    running = GunicornService(env, workers=2, log_path=os.path.join(env["E2E_WORKDIR"], "gunicorn.log")).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def worker(env):
    running = HookWorkerProcess(procfile_command("worker"), env,
                                os.path.join(env["E2E_WORKDIR"], "worker.log")).start()
    yield running
    running.stop()


class Hook:
    """A REST-hook subscription through the service, to ``receiver`` at ``/<trigger>``."""

    def __init__(self, service, receiver, trigger, inputs):
        self.service, self.receiver, self.path = service, receiver, f"/{trigger}"
        self.database = service.env["DATABASE_PATH"]
        response = requests.post(f"{service.url}/hooks", headers=AUTH, timeout=30, json={
            "trigger": trigger, "target_url": receiver.url + self.path, "inputs": inputs})
        assert response.status_code == 201, response.text
        self.id = response.json()["id"]

    def state(self):
        response = requests.get(f"{self.service.url}/hooks/{self.id}", headers=AUTH, timeout=10)
        assert response.status_code == 200, response.text
        return response.json()

    def items(self):
        return self.receiver.items(self.path)

    def poll_now(self):
        """Make the subscription due, as if HOOK_POLL_SECONDS had passed (the worker's next tick
        polls it). A worker holding it may set its own next time after; ``polled_after`` nudges again."""
        with sqlite3.connect(self.database, timeout=30) as conn:
            conn.execute("UPDATE hook_subscriptions SET next_poll_at = ? WHERE id = ?", (time.time(), self.id))
        conn.close()

    def polled_after(self, moment, what):
        """Until a worker poll that started after ``moment`` has finished (its items are in the outbox)."""
        deadline = time.monotonic() + HOOK_POLL_SECONDS + 15
        while time.monotonic() < deadline:
            self.poll_now()
            nudged = time.monotonic()
            while time.monotonic() - nudged < 1.0:
                if last_poll(self) > moment:
                    return
                time.sleep(0.1)
        raise AssertionError(f"no hook poll after {what}")

    def unsubscribe(self):
        requests.delete(f"{self.service.url}/hooks/{self.id}", headers=AUTH, timeout=10)


def last_poll(hook):
    at = hook.state()["last_poll_at"]
    return datetime.fromisoformat(at).timestamp() if at else 0.0


# -- the test ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("case", [
    pytest.param(case, id=case["key"], marks=pytest.mark.skipif(
        case["key"] not in CATALOG_KEYS, reason=f"{case['key']} is not in the catalog")) for case in CASES])
def test_event_trigger_end_to_end(case, service, worker, receiver, sandbox_reset):
    ghl = Ghl(sandbox_reset.url)
    ctx = case["setup"](ghl, BURST if case.get("burst") else 0)
    zap = Zap(service, case["key"], case["inputs"])

    # 1. Turned on: nothing fires; a plain trigger's answer holds only what existed before.
    assert {item["id"] for item in zap.turn_on()} == set(ctx.get("existing", []))
    hook = Hook(service, receiver, case["key"], case["inputs"])
    try:
        # 2. Each event fires exactly once, with the right values: one alone, then two together.
        expected = [case["event"](ghl, ctx, 0)]
        check_fired(zap.poll(), expected, "the first event")
        more = [case["event"](ghl, ctx, n) for n in (1, 2)]
        check_fired(zap.poll(), more, "two events between polls")
        expected += more
        assert zap.poll() == []

        # 3. Events the trigger's inputs exclude never fire.
        case["other"](ghl, ctx)
        assert zap.poll() == [] and zap.poll() == []

        # 4. A restart between two events loses nothing and repeats nothing.
        before = case["event"](ghl, ctx, 3)
        service.restart()
        worker.stop()
        worker.start()
        after = case["event"](ghl, ctx, 4)
        check_fired(zap.poll(), [before, after], "events either side of a restart")
        assert zap.poll() == []
        expected += [before, after]

        # 5. A burst of 250 is delivered in full, at most 100 new per poll.
        burst = []
        if case.get("burst"):
            def settle():
                # Polling sees states, not steps: the Zap and the hook must see the records before they change.
                made = time.time()
                assert zap.poll() == [] and zap.poll() == []
                hook.polled_after(made, "the burst's records were made")
            burst = case["burst"](ghl, ctx, settle)
            batches = [zap.poll() for _ in range(4)]
            assert [len(batch) for batch in batches] == [100, 100, 50, 0]
            check_fired([item for batch in batches for item in batch], burst, "the burst")
            expected += burst

        check_fired(zap.fired, expected, "the Zap, overall")

        # 6. The REST-hook twin gets the same events, each once, with the same values.
        wanted = {key(e) for e in expected}
        hook.polled_after(time.time(), "the last event")
        wait_for(lambda: {key(item) for item in hook.items()} >= wanted, 20, f"{len(wanted)} events through the hook")
        hook.polled_after(time.time(), "they arrived")  # a poll that would repeat any of them
        wait_for(lambda: hook.state()["pending"] == 0, 10, "the outbox to empty")
        check_fired(hook.items(), expected, "the hook")
        # Outside a burst (where the hook may first see a record after its change), the very same items.
        by_zap, by_hook = ({key(i): i for i in items} for items in (zap.fired, hook.items()))
        for wanted in expected[:len(expected) - len(burst)]:
            assert by_hook[key(wanted)] == by_zap[key(wanted)]
    finally:
        hook.unsubscribe()
