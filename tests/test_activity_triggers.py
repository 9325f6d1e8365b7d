"""Appointment, inbound-message and task triggers end to end: the service in-process (``client``)
polling the real sandbox GHL, as ``tests/test_change_triggers.py`` does for contacts.

For each trigger: the first poll fires nothing; each event made in the sandbox afterwards fires
exactly once (status changes with the right ``previous``); an event the trigger's inputs
exclude (another calendar, user, status, channel, an outbound message, another assignee or
location) never fires; a burst of 250 events is delivered in full over successive polls; the
REST-hook path (``poll_into_backlog`` + ``pending``) yields the same items. The calendar
triggers keep firing for appointments booked after the date a fixed window would have ended
(the window's clock, ``ghl.time_window.clock``, is moved instead of sleeping).

A ``Zap`` stands in for Zapier: it fires only for ids it has not seen.
"""

import copy
import time

import pytest
import requests

from catalog import registry
from catalog.registry import CatalogError, check_record, load_catalog, load_records
from zapier_app.definition import answered_sample
from ghl import time_window
from ghl.time_window import compute_window
from sandbox.seed import CALENDAR_ID
from sandbox.store import iso_from_ms
from tests import event_zaps
from tests.conftest import LOCATION
from tests.event_zaps import (BURST, check_rest_hook_path, drained_in_batches, ghl_fixture, only, with_location,
                              zap_fixture)

CATALOG = load_catalog()
KEYS = ("appointment_booked", "appointment_status_changed", "new_inbound_message", "task_completed")
DAY_MS = 86_400_000
OTHER_CALENDAR = "sandbox-calendar-2"
CONVERSATION = "sandbox-conversation-1"


def has_input(key, name):
    record = CATALOG.get(key)
    return bool(record) and any(f["key"] == name for f in record["inputs"])


# The records that need vocabulary the catalog may not have yet (fixed watch filters, inputs only
# the watch applies, the export's cursor and the task search's body paging) are skipped until
# they are in it.
def needs(key):
    return pytest.mark.skipif(CATALOG.get(key) is None, reason=f"{key} is not in the catalog yet")


needs_status_input = pytest.mark.skipif(not has_input("appointment_status_changed", "status"),
                                        reason="appointment_status_changed has no New Status input yet")


class Ghl(event_zaps.Ghl):
    """Appointments, messages and tasks made straight in the sandbox GHL, as GHL's UI or a customer would."""

    # appointments
    def book(self, days_ahead, calendar=CALENDAR_ID, location=LOCATION, **fields):
        start = int(time.time() * 1000) + int(days_ahead * DAY_MS)
        return self.call("POST", "/calendars/events/appointments", version="2021-04-15", json={
            "calendarId": calendar, "locationId": location, "contactId": "sandbox-contact-1",
            "title": "Consultation", "startTime": iso_from_ms(start), **fields})["id"]

    def edit(self, event_id, **fields):
        return self.call("PUT", f"/calendars/events/appointments/{event_id}", version="2021-04-15", json=fields)

    def set_status(self, event_id, status):
        return self.edit(event_id, appointmentStatus=status)

    def appointments(self, count, **fields):
        start = int(time.time() * 1000) + DAY_MS
        return self.records("/calendars/events", [
            {"calendarId": CALENDAR_ID, "contactId": "sandbox-contact-1", "title": f"Burst {n}",
             "appointmentStatus": "confirmed", "startTime": iso_from_ms(start + n * 60_000), **fields}
            for n in range(count)])

    # messages
    def message(self, direction, message="Hello", kind="SMS", **where):
        where = where or {"conversationId": CONVERSATION}
        return self.call("POST", f"/_sandbox/messages/{direction}",
                         json={"type": kind, "message": message, **where})["ids"][0]

    def messages(self, direction, bodies):
        return self.call("POST", f"/_sandbox/messages/{direction}", json={"messages": [
            {"conversationId": CONVERSATION, "type": "SMS", "message": body} for body in bodies]})["ids"]

    # tasks and contacts
    def create_contact(self, location=LOCATION, **fields):
        return self.call("POST", "/contacts/", json={"locationId": location, **fields})["contact"]["id"]

    def create_task(self, contact_id, completed=False, **fields):
        body = {"title": "Follow up", "dueDate": "2030-01-01T15:00:00Z", "completed": completed, **fields}
        return self.call("POST", f"/contacts/{contact_id}/tasks", json=body)["task"]["id"]

    def complete(self, contact_id, task_id, completed=True):
        return self.call("PUT", f"/contacts/{contact_id}/tasks/{task_id}/completed", json={"completed": completed})


ghl = ghl_fixture(Ghl)
zap = zap_fixture()


@pytest.fixture
def other_calendar(ghl):
    """A second calendar of the location, in no group."""
    ghl.records("/calendars", [{"id": OTHER_CALENDAR, "name": "Other Calendar", "slotDuration": 30}])
    return OTHER_CALENDAR


def test_the_records_are_in_the_catalog_and_their_samples_are_answered_as_is():
    present = [key for key in KEYS if CATALOG.get(key)]
    assert "appointment_booked" in present
    for key in present:
        record = CATALOG.get(key)
        assert record["response"]["watch"] and answered_sample(record) == record["sample"], key
        assert record["sample"]["ghl_id"] and record["notes"], key


@pytest.mark.skipif(not hasattr(registry, "WATCH_PLACE"), reason="no fixed watch filters or 'watch' inputs yet")
@pytest.mark.parametrize("key, change, message", [
    ("appointment_status_changed", lambda r: r["response"]["watch"].pop("filters"),
     "input status has 'in': 'watch' but response.watch does not bind it"),
    ("appointment_booked", lambda r: r["inputs"].append({"key": "status", "label": "Status", "in": "watch"}),
     "input status has 'in': 'watch' but response.watch does not bind it"),
    ("list_calendar_events", lambda r: r["inputs"].append({"key": "status", "label": "Status", "in": "watch"}),
     "the record has no response.watch"),
    ("task_completed", lambda r: r["response"]["watch"]["filters"].append({"field": "completed", "value": [True]}),
     "a fixed value is a string, number or boolean"),
    ("task_completed", lambda r: r["response"]["watch"]["filters"].append({"field": "completed", "input": "x",
                                                                           "value": True}),
     "each response.watch.filters entry is"),
])
def test_the_registry_checks_fixed_filters_and_watch_inputs(key, change, message):
    record = copy.deepcopy(next(r for r in load_records() if r["key"] == key))
    change(record)
    with pytest.raises(CatalogError) as caught:
        check_record(record)
    assert message in str(caught.value)


# -- Appointment Booked --------------------------------------------------------------------------

def test_appointment_booked(zap, ghl, other_calendar):
    calendar = zap("appointment_booked", {"calendarId": CALENDAR_ID})
    user = zap("appointment_booked", {"userId": "sandbox-user-2"}, "zap-user")
    group = zap("appointment_booked", {"groupId": "sandbox-group-1"}, "zap-group")
    earlier = ghl.book(3, title="Booked before the Zap")
    assert calendar.poll() == [] and user.poll() == [] and group.poll() == []

    booked = ghl.book(2, title="Intro call")
    item = only(calendar.poll())
    assert item["id"] == item["ghl_id"] == booked and item["title"] == "Intro call"
    assert item["appointmentStatus"] == "confirmed" and item["calendarId"] == CALENDAR_ID
    assert only(group.poll())["id"] == booked, "the calendar is in the group"
    assert user.poll() == [], "assigned to nobody"
    assert calendar.poll() == []

    # Not bookings in that calendar: another calendar, a status change, a reschedule, another location.
    elsewhere = ghl.book(2, calendar=other_calendar)
    ghl.set_status(earlier, "cancelled")
    ghl.edit(booked, startTime=iso_from_ms(int(time.time() * 1000) + 5 * DAY_MS))
    ghl.book(2, location="other-location")
    assert calendar.poll() == [] and group.poll() == []
    # A user's appointment in any calendar.
    theirs = ghl.book(1, calendar=other_calendar, assignedUserId="sandbox-user-2")
    assert only(user.poll())["id"] == theirs
    assert calendar.poll() == [] and user.poll() == [] and group.poll() == []
    assert elsewhere not in calendar.seen | group.seen


@pytest.mark.parametrize("trigger", ["appointment_booked", "appointment_status_changed"])
def test_a_calendar_user_or_group_is_required_before_ghl_is_called(client, auth, sandbox_reset, trigger):
    requests.delete(f"{sandbox_reset.url}/_sandbox/requests", timeout=5)
    response = client.post(f"/triggers/{trigger}", json={}, headers=auth)
    assert response.status_code == 400 and response.json["error"]["code"] == "invalid_input"
    assert "calendarId" in response.json["error"]["fields"]
    assert requests.get(f"{sandbox_reset.url}/_sandbox/requests", timeout=5).json()["requests"] == []


def test_an_appointment_booked_beyond_days_ahead_fires_once_it_comes_within_range(zap, ghl, monkeypatch):
    set_up = time.time()
    monkeypatch.setattr(time_window, "clock", lambda: set_up)
    trigger = zap("appointment_booked", {"calendarId": CALENDAR_ID, "days_ahead": 30})
    assert trigger.poll() == []
    far, near = ghl.book(45), ghl.book(10)
    assert [i["id"] for i in trigger.poll()] == [near]
    monkeypatch.setattr(time_window, "clock", lambda: set_up + 20 * 86400)
    assert [i["id"] for i in trigger.poll()] == [far], "booked after turn-on, now within 30 days"
    assert trigger.poll() == []


def test_appointment_booked_keeps_firing_after_a_fixed_window_would_have_ended(zap, ghl, sandbox_reset,
                                                                              monkeypatch):
    set_up = time.time()
    monkeypatch.setattr(time_window, "clock", lambda: set_up)
    trigger = zap("appointment_booked", {"calendarId": CALENDAR_ID})
    record = CATALOG.get("appointment_booked")
    defaults = {f["key"]: f["default"] for f in record["inputs"] if f["key"] in ("days_back", "days_ahead")}
    # What a range typed as fixed times on day 0 would cover: yesterday to 90 days ahead.
    fixed_end = compute_window(record["window"], defaults, set_up)["endTime"]
    assert trigger.poll() == []
    beyond = ghl.book(150, title="Booked on day 0 for day 150")
    assert trigger.poll() == [], "beyond the range on day 0"

    # 120 days on (the window's clock moved, no sleeping): a booking for day 130, after fixed_end.
    monkeypatch.setattr(time_window, "clock", lambda: set_up + 120 * 86400)
    late_start = int(time.time() * 1000) + 130 * DAY_MS
    assert late_start > fixed_end
    late = ghl.book(130, title="Booked on day 120 for day 130")
    assert sorted(i["id"] for i in trigger.poll()) == sorted([beyond, late]), (
        "both are in the moved range, and both were booked after turn-on")
    assert trigger.poll() == []
    log = requests.get(f"{sandbox_reset.url}/_sandbox/requests", timeout=5).json()["requests"]
    sent = [e["query"] for e in log if e["path"] == "/calendars/events"][-1]
    assert int(sent["startTime"][0]) <= late_start <= int(sent["endTime"][0])
    assert int(sent["startTime"][0]) > fixed_end - 90 * DAY_MS
    assert "days_back" not in sent and "days_ahead" not in sent


# -- Appointment Status Changed -------------------------------------------------------------------

def test_appointment_status_changed(zap, ghl, other_calendar):
    appointment = ghl.book(1)
    other = ghl.book(1, calendar=other_calendar)
    any_status = zap("appointment_status_changed", {"calendarId": CALENDAR_ID})
    assert any_status.poll() == []

    ghl.set_status(appointment, "showed")
    item = only(any_status.poll())
    assert (item["id"], item["ghl_id"]) == (f"{appointment}:1", appointment)
    assert item["appointmentStatus"] == "showed" and item["changed_fields"] == ["appointmentStatus"]
    assert item["previous"] == {"appointmentStatus": "confirmed"}
    assert any_status.poll() == []
    ghl.set_status(appointment, "noshow")
    item = only(any_status.poll())
    assert item["id"] == f"{appointment}:2" and item["previous"] == {"appointmentStatus": "showed"}

    # Not status changes of the calendar's appointments: a reschedule, another calendar's.
    ghl.edit(appointment, title="Renamed", startTime=iso_from_ms(int(time.time() * 1000) + 2 * DAY_MS))
    ghl.set_status(other, "cancelled")
    assert any_status.poll() == []
    # A booking after turn-on counts as a change from no status.
    booked = ghl.book(3, appointmentStatus="new")
    item = only(any_status.poll())
    assert item["ghl_id"] == booked and item["previous"] == {"appointmentStatus": None}


@needs_status_input
def test_appointment_status_changed_to_a_chosen_status(zap, ghl):
    appointment, second = ghl.book(1), ghl.book(2)
    showed = zap("appointment_status_changed", {"calendarId": CALENDAR_ID, "status": "showed"})
    no_show = zap("appointment_status_changed", {"calendarId": CALENDAR_ID, "status": "noshow"}, "zap-2")
    assert showed.poll() == [] and no_show.poll() == []
    ghl.set_status(appointment, "showed")
    item = only(showed.poll())
    assert item["previous"] == {"appointmentStatus": "confirmed"} and item["appointmentStatus"] == "showed"
    assert no_show.poll() == []
    ghl.set_status(second, "cancelled")
    ghl.set_status(appointment, "noshow")
    assert showed.poll() == []
    assert only(no_show.poll())["previous"] == {"appointmentStatus": "showed"}
    ghl.set_status(appointment, "showed")
    assert only(showed.poll())["id"] == f"{appointment}:3", "back to showed: a new change, a new id"


def test_appointment_status_changes_keep_being_seen_as_the_window_moves(zap, ghl, monkeypatch):
    set_up = time.time()
    monkeypatch.setattr(time_window, "clock", lambda: set_up)
    trigger = zap("appointment_status_changed", {"calendarId": CALENDAR_ID})
    assert trigger.poll() == []
    monkeypatch.setattr(time_window, "clock", lambda: set_up + 200 * 86400)
    late = ghl.book(202)  # booked "on day 200" for day 202, long after a fixed window's end
    assert only(trigger.poll())["previous"] == {"appointmentStatus": None}
    ghl.set_status(late, "cancelled")
    assert only(trigger.poll())["previous"] == {"appointmentStatus": "confirmed"}


# -- New Inbound Message ------------------------------------------------------------------------------

@needs("new_inbound_message")
def test_new_inbound_message(zap, ghl):
    any_channel = zap("new_inbound_message")
    sms = zap("new_inbound_message", {"channel": "SMS"}, "zap-sms")
    email = zap("new_inbound_message", {"channel": "Email"}, "zap-email")
    assert any_channel.poll() == [] and sms.poll() == [] and email.poll() == []

    reply = ghl.message("inbound", "Tuesday works")
    item = only(any_channel.poll())
    assert item["id"] == item["ghl_id"] == reply
    assert (item["body"], item["direction"], item["messageType"]) == ("Tuesday works", "inbound", "TYPE_SMS")
    assert item["conversationId"] == CONVERSATION and item["contactId"] == "sandbox-contact-1"
    assert only(sms.poll())["id"] == reply and email.poll() == []
    assert any_channel.poll() == []

    # The location's own messages never fire, on any channel (sent with Send Message, or by GHL).
    ghl.call("POST", "/conversations/messages", version="2021-04-15", json={
        "type": "SMS", "subType": "SMS", "contactId": "sandbox-contact-1", "message": "See you Tuesday",
        "status": "delivered"})
    ghl.message("outbound", "Invoice attached", kind="Email")
    assert any_channel.poll() == [] and sms.poll() == [] and email.poll() == []
    # Another channel; a new conversation; email, which GHL's export leaves out unless asked for.
    whatsapp = ghl.message("inbound", "Hola", kind="WhatsApp", contactId="sandbox-contact-2")
    mail = ghl.message("inbound", "Question about my order", kind="Email", contactId="sandbox-contact-3")
    assert [i["id"] for i in any_channel.poll()] == [whatsapp]
    assert sms.poll() == []
    assert only(email.poll())["id"] == mail
    # Another location's customer.
    stranger = ghl.create_contact(location="other-location", email="stranger@example.com")
    ghl.message("inbound", "Hi?", contactId=stranger)
    assert any_channel.poll() == [] and sms.poll() == []


# -- Task Completed ------------------------------------------------------------------------------

@needs("task_completed")
def test_task_completed(zap, ghl):
    any_task = zap("task_completed")
    uma = zap("task_completed", {"assignedTo": "sandbox-user-2"}, "zap-uma")
    assert any_task.poll() == [] and uma.poll() == []

    ghl.complete("sandbox-contact-1", "sandbox-task-1")
    item = only(any_task.poll())
    assert (item["id"], item["ghl_id"], item["_id"]) == ("sandbox-task-1:1", "sandbox-task-1", "sandbox-task-1")
    assert item["completed"] is True and item["previous"] == {"completed": False}
    assert item["changed_fields"] == ["completed"] and item["title"] == "Call Ada back"
    assert item["locationId"] == LOCATION and item["contactId"] == "sandbox-contact-1"
    assert uma.poll() == [], "assigned to another user"
    assert any_task.poll() == []

    # Reopened: no completion; completed again: a new completion with a new id.
    ghl.complete("sandbox-contact-1", "sandbox-task-1", completed=False)
    assert any_task.poll() == []
    ghl.complete("sandbox-contact-1", "sandbox-task-1")
    assert only(any_task.poll())["id"] == "sandbox-task-1:3"

    # A task created after turn-on: pending fires nothing, then its completion fires once.
    task = ghl.create_task("sandbox-contact-2", assignedTo="sandbox-user-2", title="Send the quote")
    assert any_task.poll() == [] and uma.poll() == []
    ghl.complete("sandbox-contact-2", task)
    assert only(uma.poll())["previous"] == {"completed": False}
    assert only(any_task.poll())["ghl_id"] == task
    # Created already complete: fires from empty. Edited but not completed, or another location's: nothing.
    done = ghl.create_task("sandbox-contact-3", completed=True, title="Logged call")
    assert only(any_task.poll())["previous"] == {"completed": None}
    pending = ghl.create_task("sandbox-contact-4")
    ghl.call("PUT", f"/contacts/sandbox-contact-4/tasks/{pending}", json={"title": "Renamed", "body": "More"})
    stranger = ghl.create_contact(location="other-location", email="stranger@example.com")
    ghl.create_task(stranger, completed=True)
    assert any_task.poll() == [] and uma.poll() == []
    assert not any(i.startswith(done) for i in uma.seen), "assigned to nobody"


# -- bursts --------------------------------------------------------------------------------------

def test_a_burst_of_bookings_is_delivered_in_full_oldest_first(zap, ghl):
    trigger = zap("appointment_booked", {"calendarId": CALENDAR_ID})
    trigger.poll()
    ids = ghl.appointments(BURST)
    assert [item["id"] for item in drained_in_batches(trigger)] == ids


def test_a_burst_of_appointment_status_changes_is_delivered_in_full(zap, ghl):
    ids = ghl.appointments(BURST)  # booked before turn-on: the first poll reads the whole range
    trigger = zap("appointment_status_changed", {"calendarId": CALENDAR_ID})
    assert trigger.poll() == []
    for event_id in ids:
        ghl.set_status(event_id, "showed")
    delivered = drained_in_batches(trigger)
    assert sorted(item["ghl_id"] for item in delivered) == sorted(ids)
    assert all(item["id"] == item["ghl_id"] + ":1" and item["previous"] == {"appointmentStatus": "confirmed"}
               for item in delivered)


@needs("new_inbound_message")
def test_a_burst_of_inbound_messages_is_delivered_in_full_oldest_first(zap, ghl):
    trigger = zap("new_inbound_message")
    trigger.poll()
    ids = ghl.messages("inbound", [f"Message {n}" for n in range(BURST)])
    ghl.messages("outbound", [f"Reply {n}" for n in range(20)])
    assert [item["id"] for item in drained_in_batches(trigger)] == ids


@needs("task_completed")
def test_a_burst_of_task_completions_is_delivered_in_full(zap, ghl):
    # Made before turn-on: the first poll scans them all (3 pages of 100, within the catch-up cap).
    ids = ghl.records("/contacts/sandbox-contact-2/tasks", [
        {"contactId": "sandbox-contact-2", "title": f"Task {n}", "completed": False,
         "dueDate": iso_from_ms(1893456000000 + n * 60_000)} for n in range(BURST)])
    trigger = zap("task_completed")
    assert trigger.poll() == []
    for task_id in ids:
        ghl.complete("sandbox-contact-2", task_id)
    delivered = drained_in_batches(trigger)
    assert sorted(item["ghl_id"] for item in delivered) == sorted(ids)
    assert all(item["id"] == item["ghl_id"] + ":1" for item in delivered)


# -- the REST-hook path ----------------------------------------------------------------------------

HOOK_CASES = {
    "appointment_booked": ({"calendarId": CALENDAR_ID}, lambda g: (g.book(1), g.book(4))),
    "appointment_status_changed": ({"calendarId": CALENDAR_ID},
                                   lambda g: g.set_status(g.state["appointment"], "cancelled")),
    "new_inbound_message": ({}, lambda g: (g.message("inbound", "One"), g.message("outbound", "Two"),
                                           g.message("inbound", "Three", kind="WhatsApp"))),
    "task_completed": ({}, lambda g: g.complete("sandbox-contact-1", "sandbox-task-1")),
}


@pytest.mark.parametrize("trigger_key", [pytest.param(k, marks=needs(k)) for k in sorted(HOOK_CASES)])
def test_the_rest_hook_path_yields_the_same_items(app, zap, ghl, trigger_key):
    inputs, event = HOOK_CASES[trigger_key]
    ghl.state = {"appointment": ghl.book(2)}
    check_rest_hook_path(app, zap, trigger_key, inputs, lambda: event(ghl), hook_inputs=_with_defaults)


def _with_defaults(record, inputs):
    full_inputs = with_location(record, inputs)
    for field in record["inputs"]:  # the defaults Zapier would show (the service fills them for polls)
        if field.get("default") is not None:
            full_inputs.setdefault(field["key"], field["default"])
    return full_inputs
