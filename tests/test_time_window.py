"""Time ranges computed at every request from relative inputs (issue 11 part 3).

Unit tests of ``ghl.time_window`` and the request builder, then the calendar triggers end to
end in-process against the real sandbox, with the window's clock moved instead of sleeping.
"""

import copy
import time
from datetime import datetime, timezone

import pytest
import requests

from catalog.inputs import InvalidInput, validate_inputs
from catalog.registry import CatalogError, load_catalog
from ghl import time_window
from ghl.request_builder import build_request
from ghl.time_window import check_window, compute_window, window_params
from sandbox.seed import CALENDAR_ID
from sandbox.store import iso_from_ms
from tests.conftest import LOCATION, SANDBOX_TOKEN

CATALOG = load_catalog()
EVENTS = CATALOG.get("list_calendar_events")
BLOCKED = CATALOG.get("list_blocked_slots")
FREE = CATALOG.get("get_free_slots")
DAY_MS = 86_400_000
# 2024-03-10T15:30:00Z
NOW = datetime(2024, 3, 10, 15, 30, tzinfo=timezone.utc).timestamp()


def ms(text):
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


def problems(record, raw):
    with pytest.raises(InvalidInput) as caught:
        validate_inputs(record, raw)
    return caught.value.fields


# -- computing the window --------------------------------------------------------------------

@pytest.mark.parametrize("fmt, start, end", [
    ("epoch_ms", ms("2024-03-09T00:00:00Z"), ms("2024-04-09T23:59:59.999Z")),
    ("epoch_s", ms("2024-03-09T00:00:00Z") // 1000, ms("2024-04-09T23:59:59Z") // 1000),
    ("date", "2024-03-09", "2024-04-09"),
    ("datetime", "2024-03-09T00:00:00.000Z", "2024-04-09T23:59:59.999Z"),
])
def test_each_format_covers_whole_utc_days_from_days_back_to_days_ahead(fmt, start, end):
    window = {"start": "from", "end": "to", "format": fmt, "back": "b", "ahead": "a"}
    assert compute_window(window, {"b": 1, "a": 30}, NOW) == {"from": start, "to": end}
    as_datetime = datetime.fromtimestamp(NOW, tz=timezone.utc)
    assert compute_window(window, {"b": 1, "a": 30}, as_datetime) == {"from": start, "to": end}


def test_a_window_with_only_days_ahead_starts_today():
    window = {"start": "startAt", "end": "endAt", "format": "date", "ahead": "a"}
    assert compute_window(window, {"a": 0}, NOW) == {"startAt": "2024-03-10", "endAt": "2024-03-10"}


def test_calendar_events_default_to_yesterday_through_30_days_ahead_in_epoch_ms():
    inputs = validate_inputs(EVENTS, {"locationId": "loc1", "calendarId": "cal1"})
    assert inputs["days_back"] == 1 and inputs["days_ahead"] == 30
    request = build_request(EVENTS, inputs, now=NOW)
    assert request.path == "/calendars/events" and request.version == "2021-04-15"
    assert request.query == {"locationId": "loc1", "calendarId": "cal1",
                             "startTime": ms("2024-03-09T00:00:00Z"), "endTime": ms("2024-04-09T23:59:59.999Z")}


def test_blocked_slots_use_the_same_window():
    inputs = validate_inputs(BLOCKED, {"locationId": "loc1", "userId": "u1", "days_back": 0, "days_ahead": "2"})
    query = build_request(BLOCKED, inputs, now=NOW).query
    assert (query["startTime"], query["endTime"]) == (ms("2024-03-10T00:00:00Z"), ms("2024-03-12T23:59:59.999Z"))
    assert "days_back" not in query and "days_ahead" not in query


def test_free_slots_default_to_today_through_7_days_ahead_and_never_exceed_ghls_31_days():
    inputs = validate_inputs(FREE, {"calendarId": "cal1"})
    request = build_request(FREE, inputs, now=NOW)
    assert request.path == "/calendars/cal1/free-slots"
    assert request.query == {"startDate": ms("2024-03-10T00:00:00Z"), "endDate": ms("2024-03-17T23:59:59.999Z")}
    widest = build_request(FREE, validate_inputs(FREE, {"calendarId": "cal1", "days_ahead": 30}), now=NOW).query
    assert widest["endDate"] - widest["startDate"] < 31 * DAY_MS
    assert problems(FREE, {"calendarId": "cal1", "days_ahead": 31}) == {"days_ahead": "must be from 0 to 30"}


@pytest.mark.parametrize("raw, expected", [
    ({"days_back": -1}, {"days_back": "must be from 0 to 90"}),
    ({"days_back": 91}, {"days_back": "must be from 0 to 90"}),
    ({"days_ahead": "-5"}, {"days_ahead": "must be from 0 to 365"}),
    ({"days_ahead": 10 ** 30}, {"days_ahead": "must be from 0 to 365"}),
    ({"days_ahead": "9" * 500}, {"days_ahead": "must be from 0 to 365"}),
    ({"days_ahead": "soon"}, {"days_ahead": "must be a whole number"}),
    ({"days_back": 1.5}, {"days_back": "must be a whole number"}),
])
def test_out_of_bounds_day_counts_are_invalid_inputs(raw, expected):
    assert problems(EVENTS, {"locationId": "loc1", "calendarId": "c", **raw}) == expected


def test_bounds_are_answered_as_400_invalid_input(client, auth):
    response = client.post("/triggers/list_calendar_events", json={"calendarId": CALENDAR_ID, "days_ahead": -5},
                           headers=auth)
    assert response.status_code == 400
    assert response.json["error"]["code"] == "invalid_input"
    assert response.json["error"]["fields"] == {"days_ahead": "must be from 0 to 365"}


def test_explicit_absolute_values_win_one_by_one():
    fixed_start, fixed_end = ms("2023-01-01T00:00:00Z"), ms("2023-01-31T00:00:00Z")
    both = validate_inputs(EVENTS, {"locationId": "l", "calendarId": "c", "startTime": str(fixed_start),
                                    "endTime": fixed_end})
    query = build_request(EVENTS, both, now=NOW).query
    assert (query["startTime"], query["endTime"]) == (fixed_start, fixed_end)
    only_start = validate_inputs(EVENTS, {"locationId": "l", "calendarId": "c", "startTime": fixed_start})
    query = build_request(EVENTS, only_start, now=NOW).query
    assert (query["startTime"], query["endTime"]) == (fixed_start, ms("2024-04-09T23:59:59.999Z"))
    old_free = validate_inputs(FREE, {"calendarId": "c", "startDate": fixed_start, "endDate": fixed_end})
    assert build_request(FREE, old_free, now=NOW).query == {"startDate": fixed_start, "endDate": fixed_end}


def test_the_range_inputs_are_optional_and_say_the_relative_inputs_replace_them():
    for record, names in ((EVENTS, ("startTime", "endTime")), (BLOCKED, ("startTime", "endTime")),
                          (FREE, ("startDate", "endDate"))):
        fields = {f["key"]: f for f in record["inputs"]}
        for name in names:
            assert fields[name]["required"] is False
            assert "Leave empty" in fields[name]["help_text"] and "instead of" in fields[name]["help_text"]
        assert record["window"]["format"] == "epoch_ms"


def test_the_clock_is_read_at_each_request_and_can_be_replaced(monkeypatch):
    inputs = validate_inputs(EVENTS, {"locationId": "l", "calendarId": "c"})
    monkeypatch.setattr(time_window, "clock", lambda: NOW)
    first = build_request(EVENTS, inputs).query
    monkeypatch.setattr(time_window, "clock", lambda: NOW + 400 * 86400)
    later = build_request(EVENTS, inputs).query
    assert later["startTime"] - first["startTime"] == 400 * DAY_MS
    assert later["endTime"] - first["endTime"] == 400 * DAY_MS


def test_records_without_a_window_are_untouched():
    record = CATALOG.get("get_contact")
    assert window_params(record, {"contactId": "x"}, NOW) == {}
    assert build_request(record, {"contactId": "x"}, now=NOW).query == {}


def test_a_later_record_with_a_date_window_gets_yyyy_mm_dd():
    """GET /forms/submissions, /surveys/submissions, /payments/orders and /payments/transactions
    take startAt/endAt as YYYY-MM-DD: the same declaration covers them."""
    record = {"key": "list_form_submissions", "method": "GET", "path": "/forms/submissions",
              "version": "2021-07-28", "scopes": [], "inputs": [
                  {"key": "locationId", "label": "Location", "type": "string", "in": "query", "required": True},
                  {"key": "days_back", "label": "Days Back", "type": "integer", "in": "query",
                   "default": 7, "min": 0, "max": 365}],
              "window": {"start": "startAt", "end": "endAt", "format": "date", "back": "days_back"}}
    check_window(record)
    request = build_request(record, validate_inputs(record, {"locationId": "l"}), now=NOW)
    assert request.query == {"locationId": "l", "startAt": "2024-03-03", "endAt": "2024-03-10"}


# -- checking the declaration -----------------------------------------------------------------

def test_every_catalog_window_is_well_formed():
    windows = [r for r in CATALOG if r.get("window")]
    assert {r["key"] for r in windows} >= {"list_calendar_events", "list_blocked_slots", "get_free_slots"}
    for record in CATALOG:
        check_window(record)


def _broken(change):
    record = copy.deepcopy(EVENTS)
    change(record)
    return record


def _field(record, key):
    return next(f for f in record["inputs"] if f["key"] == key)


@pytest.mark.parametrize("change, message", [
    (lambda r: r.update(window=["startTime"]), "must be an object"),
    (lambda r: r["window"].update(step=1), "unknown field(s) step"),
    (lambda r: r["window"].pop("start"), "start must name the GHL query parameter"),
    (lambda r: r["window"].update(end="startTime"), "start and end must be different"),
    (lambda r: r["window"].update(format="millis"), "format must be one of epoch_ms, epoch_s, date, datetime"),
    (lambda r: [r["window"].pop("back"), r["window"].pop("ahead")], "needs back and/or ahead"),
    (lambda r: r["window"].update(ahead="days_later"), "ahead names input 'days_later'"),
    (lambda r: _field(r, "days_back").update(type="string"), "input days_back must be a single integer"),
    (lambda r: _field(r, "days_ahead").pop("max"), "input days_ahead needs integer min, default and max"),
    (lambda r: _field(r, "days_ahead").update(default=400), "0 <= min <= default <= max"),
    (lambda r: _field(r, "days_back").update(min=-1), "0 <= min <= default <= max"),
    (lambda r: _field(r, "startTime").update(required=True), "must not be required"),
    (lambda r: r["window"].update(max_days=31), "allow 456 days, more than max_days 31"),
    (lambda r: r["window"].update(max_days=0), "max_days must be a positive integer"),
])
def test_a_malformed_window_is_refused_with_a_clear_message(change, message):
    with pytest.raises(ValueError) as caught:
        check_window(_broken(change))
    assert str(caught.value).startswith("list_calendar_events: window: ")
    assert message in str(caught.value)


def test_the_registry_can_have_its_own_error_raised():
    with pytest.raises(CatalogError, match="list_calendar_events: window: format must be one of"):
        check_window(_broken(lambda r: r["window"].update(format="ms")), CatalogError)


# -- end to end: the calendar triggers keep firing -------------------------------------------

GHL_HEADERS = {"Authorization": f"Bearer {SANDBOX_TOKEN}", "Version": "2021-04-15"}


class Zap:
    """A Zap on a trigger: polls the in-process service and fires on ids it has not seen."""

    def __init__(self, client, auth, trigger, inputs, zap_id):
        self.client, self.trigger, self.inputs = client, trigger, inputs
        self.headers = {**auth, "X-Subscriber-Id": zap_id}
        self.seen = set()

    def poll(self, mode="live"):
        response = self.client.post(f"/triggers/{self.trigger}", json=self.inputs,
                                    headers={**self.headers, "X-Poll-Mode": mode})
        assert response.status_code == 200, response.get_data(as_text=True)
        ids = [item["id"] for item in response.json]
        if mode != "live":
            return ids
        fired = [i for i in ids if i not in self.seen]
        self.seen.update(ids)
        return fired


def book(sandbox, path, start_ms, **fields):
    body = {"calendarId": CALENDAR_ID, "locationId": LOCATION, "startTime": iso_from_ms(start_ms),
            "endTime": iso_from_ms(start_ms + 30 * 60_000), **fields}
    response = requests.post(sandbox.url + path, json=body, headers=GHL_HEADERS, timeout=5)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def ghl_queries(sandbox, path):
    log = requests.get(f"{sandbox.url}/_sandbox/requests", timeout=5).json()["requests"]
    return [entry["query"] for entry in log if entry["path"] == path and entry["method"] == "GET"]


def test_new_appointment_keeps_firing_after_a_fixed_window_would_have_ended(client, auth, sandbox_reset,
                                                                                monkeypatch):
    created_at = time.time()  # the day the Zaps are set up
    created_ms = int(created_at * 1000)
    monkeypatch.setattr(time_window, "clock", lambda: created_at)
    zap = Zap(client, auth, "list_calendar_events", {"calendarId": CALENDAR_ID}, "zap-relative")
    # An old Zap, its window typed as fixed times when it was built: yesterday to 30 days ahead.
    fixed = compute_window(EVENTS["window"], {"days_back": 1, "days_ahead": 30}, created_at)
    old_zap = Zap(client, auth, "list_calendar_events", {"calendarId": CALENDAR_ID, **fixed}, "zap-fixed")
    fixed_window_end = fixed["endTime"]

    assert "sandbox-appointment-1" not in zap.poll(), "the seeded 2024 appointment is outside the window"
    old_zap.poll()
    soon = book(sandbox_reset, "/calendars/events/appointments", created_ms + 10 * DAY_MS,
                contactId="sandbox-contact-1", title="In ten days")
    assert zap.poll() == [soon]
    assert old_zap.poll() == [soon]
    sent = ghl_queries(sandbox_reset, "/calendars/events")[-2]
    assert sent["startTime"] == [str(fixed["startTime"])] and sent["endTime"] == [str(fixed_window_end)]
    assert "days_back" not in sent and "days_ahead" not in sent

    # Sixty days on (the window's clock moved, no sleeping): an appointment booked for day 75,
    # well after the end of the window a fixed Zap typed on day 0 covers.
    monkeypatch.setattr(time_window, "clock", lambda: created_at + 60 * 86400)
    late_start = created_ms + 75 * DAY_MS
    assert late_start > fixed_window_end
    late = book(sandbox_reset, "/calendars/events/appointments", late_start,
                contactId="sandbox-contact-1", title="In seventy-five days")
    assert zap.poll() == [late], "the relative window moved with time: the late appointment fires"
    assert zap.poll() == []
    assert late in zap.poll(mode="sample")
    query = ghl_queries(sandbox_reset, "/calendars/events")[-1]
    assert int(query["startTime"][0]) <= late_start <= int(query["endTime"][0])
    assert int(query["startTime"][0]) > fixed_window_end - 31 * DAY_MS
    # The old Zap's explicit values still win: its window has passed, so it stays silent.
    assert old_zap.poll() == []


def test_blocked_slots_follow_days_ahead_and_the_moving_clock(client, auth, sandbox_reset, monkeypatch):
    created_at = time.time()
    monkeypatch.setattr(time_window, "clock", lambda: created_at)
    block = book(sandbox_reset, "/calendars/events/block-slots", int(created_at * 1000) + 40 * DAY_MS,
                 title="Away")
    default_zap = Zap(client, auth, "list_blocked_slots", {"calendarId": CALENDAR_ID}, "zap-30")
    assert block not in default_zap.poll(), "40 days ahead is past the default 30"
    assert block in Zap(client, auth, "list_blocked_slots", {"calendarId": CALENDAR_ID, "days_ahead": 60},
                        "zap-60").poll()
    monkeypatch.setattr(time_window, "clock", lambda: created_at + 20 * 86400)
    assert default_zap.poll() == [block]


def test_free_slots_look_from_today_to_days_ahead(client, auth, sandbox_reset, monkeypatch):
    later = time.time() + 100 * 86400  # any day: the range is counted from the clock's today
    monkeypatch.setattr(time_window, "clock", lambda: later)
    response = client.post("/triggers/get_free_slots", json={"calendarId": CALENDAR_ID, "days_ahead": 2},
                           headers={**auth, "X-Subscriber-Id": "zap-free"})
    assert response.status_code == 200, response.get_data(as_text=True)
    days = sorted(k for k in response.json[0] if k[:4].isdigit())
    assert days == [datetime.fromtimestamp(later + n * 86400, tz=timezone.utc).strftime("%Y-%m-%d")
                    for n in range(3)]
    query = ghl_queries(sandbox_reset, f"/calendars/{CALENDAR_ID}/free-slots")[-1]
    assert int(query["endDate"][0]) - int(query["startDate"][0]) == 3 * DAY_MS - 1
