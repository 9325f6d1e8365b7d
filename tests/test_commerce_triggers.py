"""The form, survey, order, payment and invoice triggers end to end: the service in-process
(``client``) polling the real sandbox GHL, as ``tests/test_change_triggers.py`` does for contacts.

For each trigger: the first poll fires nothing; each event made in the sandbox afterwards fires
exactly once (Invoice Paid with ``previous``); an event outside the trigger's filter (another
form; an invoice that becomes partially paid when "paid" was chosen) never fires; a burst of 250
is delivered in full over successive polls; the REST-hook path (``poll_into_backlog`` +
``pending``) yields the same items; and the rolling ``window`` means nothing older than its start
is ever asked for, whatever order GHL lists in (none of these lists has a documented order).

A ``Zap`` stands in for Zapier: it fires only for ids it has not seen.
"""

import time
from datetime import datetime, timedelta, timezone

import pytest
import requests

from catalog.inputs import validate_inputs
from catalog.registry import load_catalog
from zapier_app.definition import answered_sample
from ghl import time_window
from sandbox.store import iso_from_ms
from tests import event_zaps
from tests.conftest import LOCATION
from tests.event_zaps import (BURST, check_rest_hook_path, drained_in_batches, ghl_fixture, only, with_location,
                              zap_fixture)

TRIGGERS = ("new_form_submission", "new_survey_submission", "new_order", "new_payment", "invoice_paid")
LIST_PATHS = {"new_form_submission": "/forms/submissions", "new_survey_submission": "/surveys/submissions",
              "new_order": "/payments/orders", "new_payment": "/payments/transactions", "invoice_paid": "/invoices/"}
DAY_S = 86400


class Ghl(event_zaps.Ghl):
    """Submissions, orders, payments and invoices made straight in the sandbox GHL, as a customer would."""

    def submit(self, trigger, form, n=1, **fields):
        field = "formId" if trigger == "new_form_submission" else "surveyId"
        return self.records(LIST_PATHS[trigger], [{field: form, "contactId": f"sandbox-contact-{k % 5 + 1}",
                                                   "name": f"Sample {k}", "email": f"sample{k}@example.com",
                                                   "others": {"message": "Hello"}, **fields} for k in range(n)])

    def place_orders(self, n=1, location=LOCATION, **fields):
        return self.records("/payments/orders", [{"contactId": "sandbox-contact-1", "amount": 10 + k,
                                                  "currency": "USD", "status": "completed", "sourceType": "funnel",
                                                  **fields} for k in range(n)], location)

    def charge(self, n=1, location=LOCATION, **fields):
        return self.records("/payments/transactions", [{"contactId": "sandbox-contact-1", "amount": 10 + k,
                                                        "entityType": "order", "status": "succeeded", **fields}
                                                       for k in range(n)], location)

    def invoices(self, n=1, total=100, status="sent", location=LOCATION, **fields):
        return self.records("/invoices/", [{"name": f"Invoice {k}", "total": total, "status": status,
                                            "contactDetails": {"id": "sandbox-contact-1", "name": "Ada Sample"},
                                            **fields} for k in range(n)], location)

    def pay(self, invoice_id, amount=None):
        body = {} if amount is None else {"amount": amount}
        return self.call("POST", f"/_sandbox/invoices/{invoice_id}/record-payment", json=body)["invoice"]

    def list_oldest_first(self, path):
        self.call("POST", "/_sandbox/list-order", json={"path": path, "order": "oldest_first"})

    def requests_for(self, path):
        log = self.call("GET", "/_sandbox/requests")["requests"]
        return [entry["query"] for entry in log if entry["path"] == path and entry["method"] == "GET"]

    def get(self, path, **params):
        return self.http.get(self.url + path, params=params, timeout=30)


ghl = ghl_fixture(Ghl)
zap = zap_fixture(mode="live")  # said outright, as Zapier's index.js does


def day(offset_days=0, now=None):
    moment = datetime.fromtimestamp(time.time() if now is None else now, tz=timezone.utc)
    return (moment + timedelta(days=offset_days)).strftime("%Y-%m-%d")


def iso_days_ago(days):
    return iso_from_ms(int((time.time() - days * DAY_S) * 1000))


# -- the records ----------------------------------------------------------------------------------------

CATALOG = load_catalog()


def test_the_triggers_are_watch_records_with_rolling_windows_and_samples_answered_as_is():
    for key in TRIGGERS:
        record = CATALOG.get(key)
        assert record["kind"] == "trigger" and record["response"]["watch"], key
        assert record["window"]["start"] == "startAt" and record["window"]["format"] == "date", key
        # None of these lists has a documented newest-first order: every one is scanned.
        assert record["response"]["sort_field"] in (None, "issueDate"), key
        sample = answered_sample(record)
        assert sample == record["sample"] and sample["ghl_id"] and sample["id"], key
    assert {CATALOG.get(k)["category"] for k in TRIGGERS} == {"Forms", "Surveys", "Payments", "Invoices"}
    assert CATALOG.get("invoice_paid")["response"]["watch"]["filters"] == [{"input": "status", "field": "status"}]


# -- one event at a time -----------------------------------------------------------------------------

@pytest.mark.parametrize("trigger_key, field", [("new_form_submission", "formId"),
                                                ("new_survey_submission", "surveyId")])
def test_new_submission(zap, ghl, trigger_key, field):
    ghl.submit(trigger_key, "form-a", 3)  # before the Zaps: never fire
    any_form, form_a = zap(trigger_key), zap(trigger_key, {field: "form-a"}, "zap-2")
    assert any_form.poll() == [] and form_a.poll() == []
    [submitted] = ghl.submit(trigger_key, "form-a", email="nia@example.com")
    item = only(any_form.poll())
    assert item["id"] == item["ghl_id"] == submitted and item[field] == "form-a"
    assert item["email"] == "nia@example.com" and item["others"] == {"message": "Hello"} and item["createdAt"]
    assert "locationId" not in item and "dateAdded" not in item, "GHL's submission shape"
    assert only(form_a.poll())["id"] == submitted
    assert any_form.poll() == [] and form_a.poll() == []
    # Another form; another location.
    [other] = ghl.submit(trigger_key, "form-b")
    ghl.records(LIST_PATHS[trigger_key], [{field: "form-a", "name": "Elsewhere"}], location="other-location")
    assert form_a.poll() == []
    assert [i["id"] for i in any_form.poll()] == [other]
    # The form is filtered by GHL, not here: it is sent as formId/surveyId.
    assert ghl.requests_for(LIST_PATHS[trigger_key])[-2][field] == ["form-a"]


@pytest.mark.parametrize("oldest_first", [False, True], ids=["newest-first", "oldest-first"])
def test_new_order_whatever_order_ghl_lists_in(zap, ghl, oldest_first):
    if oldest_first:
        ghl.list_oldest_first("/payments/orders")
    ghl.place_orders(150)  # two pages: a new order is last on page two when GHL lists oldest first
    trigger = zap("new_order")
    assert trigger.poll() == []
    [placed] = ghl.place_orders(amount=499)
    window = {"altId": LOCATION, "startAt": day(-2), "endAt": day(1), "limit": 100}
    pages = [ghl.get("/payments/orders", offset=offset, **window).json()["data"] for offset in (0, 100)]
    assert (pages[1][-1] if oldest_first else pages[0][0])["_id"] == placed
    item = only(trigger.poll())
    assert item["id"] == item["ghl_id"] == item["_id"] == placed and item["amount"] == 499
    assert item["altId"] == LOCATION and item["altType"] == "location" and "locationId" not in item
    assert trigger.poll() == []
    ghl.place_orders(location="other-location")
    assert trigger.poll() == []
    sent = ghl.requests_for("/payments/orders")[-1]
    assert sent["altId"] == [LOCATION] and "altType" not in sent, "the spec has no altType for orders"


def test_new_payment_fires_for_charges_and_invoice_payments(zap, ghl):
    trigger = zap("new_payment")
    assert trigger.poll() == []
    [charged] = ghl.charge(amount=25)
    item = only(trigger.poll())
    assert item["id"] == item["_id"] == charged and item["amount"] == 25 and item["entityType"] == "order"
    [invoice] = ghl.invoices(total=80)
    ghl.pay(invoice, 30)
    item = only(trigger.poll())
    assert (item["entityType"], item["entityId"], item["amount"]) == ("invoice", invoice, 30)
    assert item["fulfilledAt"] and item["status"] == "succeeded"
    assert trigger.poll() == []
    ghl.charge(location="other-location")
    assert trigger.poll() == []
    assert ghl.requests_for("/payments/transactions")[-1]["altType"] == ["location"]


def test_invoice_paid(zap, ghl):
    full, part = ghl.invoices(2, total=200)
    draft, = ghl.invoices(status="draft")
    paid, partially = zap("invoice_paid"), zap("invoice_paid", {"status": "partially_paid"}, "zap-2")
    assert paid.poll() == [] and partially.poll() == []
    ghl.pay(full)
    item = only(paid.poll())
    assert item["id"] == f"{full}:1" and item["ghl_id"] == item["_id"] == full
    assert item["status"] == "paid" and item["previous"] == {"status": "sent"} and item["changed_fields"] == ["status"]
    assert item["amountPaid"] == 200 and item["amountDue"] == 0
    assert partially.poll() == [], "paid in full is not partially paid"
    # Partially paid: fires for "partially_paid" only; then paid in full: for "paid", from partially_paid.
    ghl.pay(part, 50)
    assert paid.poll() == []
    item = only(partially.poll())
    assert item["previous"] == {"status": "sent"} and item["amountDue"] == 150
    ghl.pay(part, 100)
    assert paid.poll() == [] and partially.poll() == [], "still partially paid: no status change"
    ghl.pay(part, 50)
    item = only(paid.poll())
    assert item["id"] == f"{part}:2" and item["previous"] == {"status": "partially_paid"}
    assert partially.poll() == []
    # A draft paid straight away fires too; an invoice made after the first poll, already paid,
    # fires from no status; one in another location never.
    ghl.pay(draft)
    assert only(paid.poll())["previous"] == {"status": "draft"}
    [new] = ghl.invoices(status="paid", amountPaid=100)
    ghl.invoices(location="other-location", status="paid")
    item = only(paid.poll())
    assert item["ghl_id"] == new and item["previous"] == {"status": None}
    assert paid.poll() == [] and partially.poll() == []
    # The status input is applied here, never sent to GHL (it would hide the invoice until paid);
    # the sort is always sent, so pages keep their order between polls.
    sent = ghl.requests_for("/invoices/")[-1]
    assert "status" not in sent and sent["sortField"] == ["issueDate"] and sent["sortOrder"] == ["descend"]
    assert sent["limit"] == ["100"] and sent["offset"] == ["0"] and sent["altType"] == ["location"]


# -- bursts ------------------------------------------------------------------------------------------

BURSTS = {
    "new_form_submission": lambda g: g.submit("new_form_submission", "form-a", BURST),
    "new_survey_submission": lambda g: g.submit("new_survey_submission", "survey-a", BURST),
    "new_order": lambda g: g.place_orders(BURST),
    "new_payment": lambda g: g.charge(BURST),
}


@pytest.mark.parametrize("trigger_key", sorted(BURSTS))
@pytest.mark.parametrize("oldest_first", [False, True], ids=["newest-first", "oldest-first"])
def test_a_burst_of_250_new_items_is_delivered_in_full_oldest_first(zap, ghl, trigger_key, oldest_first):
    if oldest_first:
        ghl.list_oldest_first(LIST_PATHS[trigger_key])
    trigger = zap(trigger_key)
    assert trigger.poll() == []
    ids = BURSTS[trigger_key](ghl)
    assert [item["id"] for item in drained_in_batches(trigger)] == ids


def test_a_burst_of_250_paid_invoices_is_delivered_in_full(zap, ghl):
    ids = ghl.invoices(BURST)
    trigger = zap("invoice_paid")
    assert trigger.poll() == []
    for invoice_id in ids:
        ghl.pay(invoice_id)
    delivered = drained_in_batches(trigger)
    assert sorted(item["ghl_id"] for item in delivered) == sorted(ids)
    assert all(item["id"] == item["ghl_id"] + ":1" and item["previous"] == {"status": "sent"} for item in delivered)


# -- the REST-hook path ----------------------------------------------------------------------------

HOOK_CASES = {
    "new_form_submission": ({"formId": "form-a"}, lambda g, _: (g.submit("new_form_submission", "form-a", 2),
                                                                g.submit("new_form_submission", "form-b"))),
    "new_survey_submission": ({}, lambda g, _: g.submit("new_survey_submission", "survey-a", 3)),
    "new_order": ({}, lambda g, _: g.place_orders(2)),
    "new_payment": ({}, lambda g, _: g.charge(2)),
    "invoice_paid": ({}, lambda g, invoices: (g.pay(invoices[0]), g.pay(invoices[1], 10))),
}


@pytest.mark.parametrize("trigger_key", sorted(HOOK_CASES))
def test_the_rest_hook_path_yields_the_same_items(app, zap, ghl, trigger_key):
    raw_inputs, event = HOOK_CASES[trigger_key]
    invoices = ghl.invoices(2)
    check_rest_hook_path(app, zap, trigger_key, raw_inputs, lambda: event(ghl, invoices),
                         hook_inputs=lambda record, inputs: validate_inputs(record, with_location(record, inputs)))


# -- the rolling window ----------------------------------------------------------------------------

OLD_ITEMS = {
    "new_form_submission": lambda g, at, n: g.submit("new_form_submission", "form-a", n, createdAt=at),
    "new_survey_submission": lambda g, at, n: g.submit("new_survey_submission", "survey-a", n, createdAt=at),
    "new_order": lambda g, at, n: g.place_orders(n, createdAt=at),
    "new_payment": lambda g, at, n: g.charge(n, createdAt=at),
}


@pytest.mark.parametrize("trigger_key", sorted(OLD_ITEMS))
def test_items_older_than_the_window_are_never_asked_for_and_the_window_moves_with_time(
        zap, ghl, monkeypatch, trigger_key):
    make = OLD_ITEMS[trigger_key]
    path = LIST_PATHS[trigger_key]
    make(ghl, iso_days_ago(10), 300)  # three pages of old items, well before the window
    ghl.list_oldest_first(path)  # and listed first, where they would be read first
    recent = make(ghl, iso_days_ago(1), 5)
    trigger = zap(trigger_key)
    assert trigger.poll() == []
    asked = ghl.requests_for(path)
    assert len(asked) == 1, "one page: the window holds only the recent items"
    assert asked[0]["startAt"] == [day(-2)] and asked[0]["endAt"] == [day(1)]
    assert "days_back" not in asked[0] and "days_ahead" not in asked[0]
    listed = ghl.get(path, **{k: v[0] for k, v in asked[0].items()}).json()
    listed_ids = {item.get("id") or item.get("_id") for item in listed.get("submissions") or listed.get("data")}
    assert listed_ids == set(recent), "GHL answers only the window"
    [new] = make(ghl, None, 1)
    assert [i["id"] for i in trigger.poll()] == [new]
    # Three days on (the window's clock moves, no sleeping): today's items have left the window,
    # the new day's come in and fire; the old ones are never asked for.
    later = time.time() + 3 * DAY_S
    monkeypatch.setattr(time_window, "clock", lambda: later)
    [future] = make(ghl, iso_from_ms(int(later * 1000)), 1)
    assert [i["id"] for i in trigger.poll()] == [future]
    assert ghl.requests_for(path)[-1]["startAt"] == [day(-2, later)]
    assert trigger.poll() == []


def test_invoice_paid_watches_invoices_issued_in_its_window(zap, ghl):
    old, = ghl.invoices(issueDate=day(-200))
    recent, = ghl.invoices(issueDate=day(-10))
    trigger = zap("invoice_paid")
    assert trigger.poll() == []
    asked = ghl.requests_for("/invoices/")[-1]
    assert asked["startAt"] == [day(-90)] and asked["endAt"] == [day(30)]
    ghl.pay(old)
    ghl.pay(recent)
    assert [i["ghl_id"] for i in trigger.poll()] == [recent], "issued 200 days ago: outside the default 90"
    longer = zap("invoice_paid", {"days_back": 365}, "zap-2")
    assert longer.poll() == [] and ghl.requests_for("/invoices/")[-1]["startAt"] == [day(-365)]


# -- the sandbox's GHL answers ------------------------------------------------------------------------

@pytest.mark.spec_violations_expected
def test_the_sandbox_answers_in_ghls_shapes_and_refuses_what_ghl_refuses(ghl):
    ghl.submit("new_form_submission", "form-a", 3)
    window = {"startAt": day(-1), "endAt": day(0)}
    answer = ghl.get("/forms/submissions", locationId=LOCATION, limit=2, **window).json()
    assert set(answer) == {"submissions", "meta"} and len(answer["submissions"]) == 2
    assert answer["meta"] == {"total": 3, "currentPage": 1, "nextPage": 2, "prevPage": None}
    assert ghl.get("/forms/submissions", locationId=LOCATION, limit=101, **window).status_code == 422
    assert ghl.get("/forms/submissions", locationId=LOCATION, startAt="01/02/2024", endAt=day(0)).status_code == 422
    assert ghl.get("/forms/submissions", **window).status_code == 422, "locationId is required"

    ghl.place_orders(12)
    orders = ghl.get("/payments/orders", altId=LOCATION, **window).json()
    assert set(orders) == {"data", "totalCount"} and orders["totalCount"] == 12 and len(orders["data"]) == 10
    assert all("_id" in o and "id" not in o for o in orders["data"])
    assert ghl.get("/payments/transactions", altId=LOCATION, **window).status_code == 422, "altType is required"

    invoice, = ghl.invoices(total=120)
    query = {"altId": LOCATION, "altType": "location", "limit": 10, "offset": 0, **window}
    listed = ghl.get("/invoices/", **query).json()
    assert set(listed) == {"invoices", "total"} and listed["total"] == 1
    assert {"_id", "status", "amountPaid", "amountDue", "total", "invoiceNumber", "issueDate", "dueDate",
            "altId", "altType", "totalSummary"} <= set(listed["invoices"][0])
    assert ghl.get("/invoices/", **{**query, "sortOrder": "newest"}).status_code == 422
    assert ghl.get("/invoices/", **{k: v for k, v in query.items() if k != "offset"}).status_code == 422
    paying = f"{ghl.url}/_sandbox/invoices/{invoice}/record-payment"
    assert requests.post(paying, json={"amount": 500}, timeout=5).status_code == 422, "more than is due"
    assert requests.post(paying, json={"mode": "barter"}, timeout=5).status_code == 422
    assert ghl.pay(invoice, 20)["status"] == "partially_paid"
    assert ghl.pay(invoice)["status"] == "paid"
    assert requests.post(paying, json={}, timeout=5).status_code == 400, "already paid"
    assert requests.post(f"{ghl.url}/_sandbox/invoices/nope/record-payment", json={}, timeout=5).status_code == 404
