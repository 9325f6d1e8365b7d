"""GHL behaviours of forms, surveys, orders, transactions and invoices, where they differ from the generic handlers.

``SPECIAL_CASES`` maps (method, path shape) to a handler, as in ``sandbox.ghl_behaviours``,
which merges it into the sandbox's table. An entry only takes effect for a route some catalog
record declares; ``sandbox.control`` reaches the same code under ``/_sandbox`` so that tests and
``make run`` users can make every event whatever the catalog holds.

The lists, in GHL's answer shapes (the specs in ``apps/forms.json``, ``surveys.json``,
``payments.json``, ``invoices.json``):

- ``GET /forms/submissions``, ``GET /surveys/submissions``: ``locationId`` required; ``page``
  (from 1) and ``limit`` (default 20, at most 100); ``formId``/``surveyId``; ``q`` (contact id,
  name, email or phone); ``startAt``/``endAt`` as ``YYYY-MM-DD`` (whole UTC days, both
  inclusive; by default the same date last month to today, as the spec says);
  ``{submissions, meta: {total, currentPage, nextPage, prevPage}}``.
- ``GET /payments/orders`` (``altId`` required; the spec has no ``altType`` here) and
  ``GET /payments/transactions`` (``altId`` and ``altType``): ``offset`` (default 0) and
  ``limit`` (default 10); ``startAt``/``endAt`` on ``createdAt`` (a date, or an ISO time);
  ``{data, totalCount}``; ids are ``_id``.
- ``GET /invoices/``: ``altId``, ``altType`` (``location``), ``limit`` and ``offset`` all
  required; ``startAt``/``endAt`` (``YYYY-MM-DD``) on the issue date; ``sortField=issueDate``
  with ``sortOrder`` ``ascend``/``descend``; ``status``, ``contactId``, ``search``;
  ``{invoices, total}``.

The specs give no order for any of them (invoices only when ``sortField`` is sent). The sandbox
answers newest created first, or oldest first once ``set_list_order`` (``POST
/_sandbox/list-order``) says so, so that tests can show a trigger does not depend on it.

Records may be made with a few fields through ``POST /_sandbox/records`` (stored under ``id``
and with a ``locationId``): they are answered in GHL's shape, under ``_id`` and ``altId`` where
GHL uses those, with GHL's required fields filled in (``present``).

``record_payment`` (``POST /invoices/{id}/record-payment``): adds the amount (default: all that
is due) to ``amountPaid``, sets ``status`` to ``paid`` or ``partially_paid`` and, as GHL does,
records a transaction for it (``entityType`` ``invoice``).
"""

import calendar
import re
from datetime import datetime, timedelta, timezone

from sandbox import answers
from sandbox.filters import matches_text
from sandbox.paging import PagingError, offset_page, sort_key
from sandbox.store import epoch_ms

FORM_SUBMISSIONS = "/forms/submissions"
SURVEY_SUBMISSIONS = "/surveys/submissions"
ORDERS = "/payments/orders"
TRANSACTIONS = "/payments/transactions"
INVOICES = "/invoices"
# Per list (store collection key), the order the sandbox answers it in when the request names none.
LIST_ORDER = "/_sandbox/list-order"
NEWEST_FIRST, OLDEST_FIRST = "newest_first", "oldest_first"
LIST_ORDERS = (NEWEST_FIRST, OLDEST_FIRST)

SUBMISSION_FORM_FIELD = {FORM_SUBMISSIONS: "formId", SURVEY_SUBMISSIONS: "surveyId"}
SUBMISSION_TEXT_FIELDS = ("contactId", "name", "email", "phone")
# Fields the store keeps on every record that GHL's items here do not have.
STORE_ONLY = ("dateAdded", "dateUpdated")
PAYMENT_MODES = ("cash", "card", "cheque", "bank_transfer", "other")
DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
MS_PER_DAY = 86_400_000


# -- the order of lists whose order GHL does not document ----------------------------------------

def set_list_order(store, key, order):
    """Answer the list stored at ``key`` newest or oldest created first from now on (until reset)."""
    if order not in LIST_ORDERS:
        raise ValueError(f"order must be one of {', '.join(LIST_ORDERS)}")
    with store.lock:
        if store.update(LIST_ORDER, key, {"order": order}) is None:
            store.create(LIST_ORDER, {"order": order}, item_id=key)


def list_order(store, key):
    chosen = store.get(LIST_ORDER, key)
    return chosen["order"] if chosen else NEWEST_FIRST


def _in_list_order(store, key, items, field, id_field):
    newest = list_order(store, key) == NEWEST_FIRST
    return sorted(items, key=lambda item: sort_key(item, field, id_field), reverse=newest)


# -- dates ---------------------------------------------------------------------------------------------

def _day_start_ms(text):
    moment = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=timezone.utc)
    return int(moment.timestamp() * 1000)


def _bound(args, name, last, dates_only):
    """Epoch ms of the ``startAt``/``endAt`` query value: a date is its whole UTC day (its first
    millisecond, or with ``last`` its last one); None when absent. PagingError (422) when unreadable."""
    value = args.get(name)
    if value in (None, ""):
        return None
    text = str(value).strip()
    if DATE_ONLY.match(text):
        try:
            start = _day_start_ms(text)
        except ValueError:
            start = None
        if start is not None:
            return start + MS_PER_DAY - 1 if last else start
    elif not dates_only and not text.lstrip("-").isdigit() and epoch_ms(text) is not None:
        return epoch_ms(text)
    raise PagingError([f"{name} must be a valid date in YYYY-MM-DD format"])


def _date_range(args, dates_only, default_start=None, default_end=None):
    low = _bound(args, "startAt", False, dates_only)
    high = _bound(args, "endAt", True, dates_only)
    return (default_start if low is None else low), (default_end if high is None else high)


def _within(at, low, high):
    if at is None:
        return low is None and high is None
    return (low is None or at >= low) and (high is None or at <= high)


def _same_date_last_month(today):
    year, month = (today.year, today.month - 1) if today.month > 1 else (today.year - 1, 12)
    return today.replace(year=year, month=month, day=min(today.day, calendar.monthrange(year, month)[1]))


def _submission_default_range():
    """The spec's defaults: from the same date last month to today (whole UTC days)."""
    today = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    start = _same_date_last_month(today)
    return int(start.timestamp() * 1000), int((today + timedelta(days=1)).timestamp() * 1000) - 1


# -- GHL's item shapes -----------------------------------------------------------------------------

def _without(record, names):
    return {k: v for k, v in record.items() if k not in names}


def submission_item(record):
    """A form or survey submission as GHL lists it: id, contactId, createdAt, formId/surveyId,
    name, email, others."""
    item = _without(record, STORE_ONLY + ("updatedAt", "locationId"))
    item.setdefault("others", {})
    return item


def _object_item(store, key, record):
    """Shared by payments and invoices: the stored id as ``_id`` and the location as
    ``altId``/``altType``, whatever the record was stored with."""
    id_field = store.id_field(key)
    item = _without(record, STORE_ONLY + ("locationId", id_field))
    item = {"_id": record.get(id_field), **item}
    item["altId"] = record.get("altId") or record.get("locationId")
    item.setdefault("altType", "location")
    item.setdefault("currency", "USD")
    item.setdefault("liveMode", False)
    return item


def order_item(store, record):
    item = _object_item(store, ORDERS, record)
    for name, default in (("status", "completed"), ("sourceType", "funnel"), ("amount", 0)):
        item.setdefault(name, default)
    return item


def transaction_item(store, record):
    item = _object_item(store, TRANSACTIONS, record)
    for name, default in (("status", "succeeded"), ("entitySourceType", "funnel"), ("amount", 0)):
        item.setdefault(name, default)
    item.setdefault("fulfilledAt", item.get("createdAt"))
    return item


def _money(value):
    """An amount as GHL writes it: a number to the cent, whole amounts without a fraction."""
    try:
        amount = round(float(value), 2)
    except (TypeError, ValueError):
        return 0
    return int(amount) if amount.is_integer() else amount


def _items_total(items):
    return _money(sum(_money(i.get("amount")) * _money(i.get("qty", 1)) for i in items if isinstance(i, dict)))


def invoice_item(store, record, number=None):
    """An invoice with GHL's required fields: status (draft until sent), total and amountDue
    from its items and amountPaid, issue and due dates (YYYY-MM-DD), totalSummary..."""
    item = _object_item(store, INVOICES, record)
    item.setdefault("invoiceItems", item.pop("items", None) or [])
    total = _money(item["total"]) if item.get("total") is not None else _items_total(item["invoiceItems"])
    paid = _money(item.get("amountPaid"))
    item.update(total=total, amountPaid=paid, amountDue=_money(max(total - paid, 0)))
    item.setdefault("status", "draft")
    item.setdefault("name", "Invoice")
    item.setdefault("title", "INVOICE")
    item.setdefault("invoiceNumber", number)
    item.setdefault("businessDetails", {})
    item.setdefault("contactDetails", {})
    item.setdefault("issueDate", str(item.get("createdAt") or "")[:10])
    item.setdefault("dueDate", item["issueDate"])
    item.setdefault("totalSummary", {"subTotal": total, "discount": 0, "tax": 0})
    return item


def _invoice_items(store):
    """Every stored invoice in GHL's shape, numbered in the order they were created."""
    return [invoice_item(store, record, number) for number, record in enumerate(store.items(INVOICES), start=1)]


# -- the lists ---------------------------------------------------------------------------------------

def _required(args, *names):
    missing = [name for name in names if args.get(name) in (None, "")]
    return answers.should_not_be_empty(*missing) if missing else None


def _whole_number(args, name, default, minimum, maximum=None):
    """A paging query param as class-validator checks it; PagingError (422) when it is not one."""
    raw = args.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(str(raw).strip())
    except ValueError:
        raise PagingError([f"{name} must be a number conforming to the specified constraints"]) from None
    if value < minimum:
        raise PagingError([f"{name} must not be less than {minimum}"])
    if maximum is not None and value > maximum:
        raise PagingError([f"{name} must not be greater than {maximum}"])
    return value


def _equal(item, name, wanted):
    value = item.get(name)
    return value is not None and str(value).lower() == str(wanted).lower()


def _filtered(items, args, names):
    """``items`` whose field equals each of the ``names`` query params given."""
    for name in names:
        wanted = args.get(name)
        if wanted not in (None, ""):
            items = [item for item in items if _equal(item, name, wanted)]
    return items


def _by_payment_mode(items, args):
    mode = str(args.get("paymentMode") or "").lower()
    if mode in ("live", "test"):
        return [item for item in items if bool(item.get("liveMode")) == (mode == "live")]
    return items


def _by_text(items, args, name):
    text = args.get(name)
    return [item for item in items if matches_text(item, text)] if text else items


def _of_location(store, key, location_id):
    return [r for r in store.items(key) if (r.get("altId") or r.get("locationId")) == location_id]


def submissions_list(call):
    """``GET /forms/submissions`` and ``GET /surveys/submissions``."""
    key = call.key(call.op.shape)
    missing = _required(call.args, "locationId")
    if missing:
        return missing
    current = _whole_number(call.args, "page", 1, 1)
    limit = _whole_number(call.args, "limit", 20, 1, 100)
    low, high = _date_range(call.args, True, *_submission_default_range())
    records = [r for r in call.store.items(key) if r.get("locationId") == call.args["locationId"]]
    records = [r for r in records if _within(epoch_ms(r.get("createdAt")), low, high)]
    items = _filtered([submission_item(r) for r in records], call.args, [SUBMISSION_FORM_FIELD.get(key, "formId")])
    text = str(call.args.get("q") or "").lower()
    if text:
        items = [i for i in items if any(text in str(i.get(f) or "").lower() for f in SUBMISSION_TEXT_FIELDS)]
    items = _in_list_order(call.store, key, items, "createdAt", "id")
    page = offset_page(items, {"page": current, "limit": limit})
    meta = {"total": page.total, "currentPage": current,
            "nextPage": current + 1 if page.meta["hasMore"] else None,
            "prevPage": current - 1 if current > 1 else None}
    return 200, {"submissions": page.items, "meta": meta}


def _payments_page(call, key, presenter, filters, required):
    missing = _required(call.args, *required)
    if missing:
        return missing
    low, high = _date_range(call.args, False)
    items = [presenter(call.store, r) for r in _of_location(call.store, key, call.args["altId"])]
    items = [i for i in items if _within(epoch_ms(i.get("createdAt")), low, high)]
    items = _by_text(_by_payment_mode(_filtered(items, call.args, filters), call.args), call.args, "search")
    items = _in_list_order(call.store, key, items, "createdAt", "_id")
    page = offset_page(items, {"offset": call.args.get("offset") or 0, "limit": call.args.get("limit") or 10})
    return 200, {"data": page.items, "totalCount": page.total}


def orders_list(call):
    """``GET /payments/orders``."""
    return _payments_page(call, ORDERS, order_item, ("status", "paymentStatus", "contactId", "sourceId"),
                          ("altId",))


def transactions_list(call):
    """``GET /payments/transactions``."""
    return _payments_page(call, TRANSACTIONS, transaction_item,
                          ("contactId", "subscriptionId", "entityId", "entitySourceType", "entitySourceSubType"),
                          ("altId", "altType"))


def _check_alt_type(args):
    alt_type = args.get("altType")
    if alt_type not in (None, "", "location"):
        return answers.unprocessable(["altType must be one of the following values: location"])
    return None


def invoices_list(call):
    """``GET /invoices/``."""
    args = call.args
    failure = _required(args, "altId", "altType", "limit", "offset") or _check_alt_type(args)
    if failure:
        return failure
    if args.get("sortField") not in (None, "", "issueDate"):
        return answers.unprocessable(["sortField must be one of the following values: issueDate"])
    if args.get("sortOrder") not in (None, "", "ascend", "descend"):
        return answers.unprocessable(["sortOrder must be one of the following values: ascend, descend"])
    low, high = _date_range(args, True)
    items = [i for i in _invoice_items(call.store) if i["altId"] == args["altId"]]
    items = [i for i in items if _within(epoch_ms(i.get("issueDate")), low, high)]
    items = _by_text(_by_payment_mode(_filtered(items, args, ("status", "contactId")), args), args, "search")
    if args.get("sortField"):
        items.sort(key=lambda i: (epoch_ms(i.get("issueDate")) or 0,) + sort_key(i, "createdAt", "_id"),
                   reverse=args.get("sortOrder", "descend") == "descend")
    else:
        items = _in_list_order(call.store, INVOICES, items, "createdAt", "_id")
    page = offset_page(items, {"offset": args["offset"], "limit": args["limit"]})
    return 200, {"invoices": page.items, "total": page.total}


# -- reading one ---------------------------------------------------------------------------------------

def _read(key, presenter, noun):
    def read(call):
        record = call.store.get(key, call.values[-1])
        if record is None:
            return answers.not_found(f"{noun} not found")
        return 200, presenter(call.store, record)
    return read


def _one_invoice(store, invoice_id):
    """The invoice in GHL's shape, numbered as the list numbers it; None when there is none."""
    return next((i for i in _invoice_items(store) if i["_id"] == invoice_id), None)


def invoice_read(call):
    """``GET /invoices/{invoiceId}``."""
    invoice = _one_invoice(call.store, call.values[-1])
    if invoice is None:
        return answers.not_found("Invoice not found")
    return 200, invoice


# -- invoices: create, send, void, record a payment ---------------------------------------------------

def create_invoice(store, body):
    """A draft invoice from a ``CreateInvoiceDto`` body (its ``items`` become ``invoiceItems``)."""
    fields = dict(body)
    fields["invoiceItems"] = fields.pop("items", None) or fields.get("invoiceItems") or []
    fields.setdefault("status", "draft")
    fields.setdefault("amountPaid", 0)
    fields.setdefault("invoiceNumber", len(store.items(INVOICES)) + 1)
    record = store.create(INVOICES, fields, id_field="_id")
    return _one_invoice(store, record[store.id_field(INVOICES)])


def invoice_create(call):
    """``POST /invoices/``."""
    failure = _check_alt_type(call.body_dict)
    if failure:
        return failure
    return 200, create_invoice(call.store, call.body_dict)


def _set_status(call, new_status, answer):
    """Move the invoice of the path to ``new_status(invoice)``; a paid or void one stays as it is (400)."""
    invoice = _one_invoice(call.store, call.values[-1])
    if invoice is None:
        return answers.not_found("Invoice not found")
    if invoice["status"] in ("paid", "void"):
        return answers.error(400, f"Invoice is already {invoice['status']}", "Bad Request")
    call.store.update(INVOICES, call.values[-1], {"status": new_status(invoice)})
    return 200, answer(_one_invoice(call.store, call.values[-1]))


def invoice_send(call):
    """``POST /invoices/{invoiceId}/send``: a draft becomes ``sent``."""
    return _set_status(call, lambda invoice: "sent" if invoice["status"] == "draft" else invoice["status"],
                       lambda invoice: {"invoice": invoice, "smsData": {}, "emailData": {}})


def invoice_void(call):
    """``POST /invoices/{invoiceId}/void``."""
    return _set_status(call, lambda invoice: "void", lambda invoice: invoice)


def record_payment(store, invoice_id, body, fill_defaults=False):
    """``POST /invoices/{invoiceId}/record-payment``: ``(status, answer)``. ``fill_defaults``
    (the ``/_sandbox`` route): altId/altType from the invoice and mode ``cash`` when left out."""
    with store.lock:
        invoice = _one_invoice(store, invoice_id)
        if invoice is None:
            return answers.not_found("Invoice not found")
        body = dict(body) if isinstance(body, dict) else {}
        if fill_defaults:
            body.setdefault("altId", invoice["altId"])
            body.setdefault("altType", "location")
            body.setdefault("mode", "cash")
        failure = _required(body, "altId", "altType", "mode") or _check_alt_type(body)
        if failure:
            return failure
        if body["mode"] not in PAYMENT_MODES:
            return answers.unprocessable([f"mode must be one of the following values: {', '.join(PAYMENT_MODES)}"])
        if body["altId"] != invoice["altId"]:
            return answers.not_found("Invoice not found")
        if invoice["status"] in ("paid", "void"):
            return answers.error(400, f"Invoice is already {invoice['status']}", "Bad Request")
        due = invoice["amountDue"]
        amount = _money(body["amount"]) if body.get("amount") is not None else due
        if amount <= 0 or amount > due:
            return answers.unprocessable([f"amount must be more than 0 and at most the amount due ({due})"])
        paid = _money(invoice["amountPaid"] + amount)
        status = "paid" if paid >= invoice["total"] else "partially_paid"
        store.update(INVOICES, invoice_id, {"amountPaid": paid, "amountDue": _money(invoice["total"] - paid),
                                            "status": status})
        now = store.now()
        contact = invoice["contactDetails"] if isinstance(invoice["contactDetails"], dict) else {}
        transaction = {
            "altId": invoice["altId"], "altType": "location", "contactId": contact.get("id"),
            "contactName": contact.get("name"), "contactEmail": contact.get("email"),
            "currency": invoice["currency"], "amount": amount, "status": "succeeded", "liveMode": invoice["liveMode"],
            "entityType": "invoice", "entityId": invoice_id, "entitySourceType": "invoice",
            "entitySourceName": invoice["name"], "entitySourceId": invoice_id, "paymentProviderType": "manual",
            "paymentMethod": {"mode": body["mode"]}, "fulfilledAt": body.get("fulfilledAt") or now,
            "createdAt": now}
        store.create(TRANSACTIONS, {k: v for k, v in transaction.items() if v is not None}, id_field="_id")
        return 200, {"success": True, "invoice": _one_invoice(store, invoice_id)}


def invoice_record_payment(call):
    return record_payment(call.store, call.values[-1], call.body_dict)


SPECIAL_CASES = {
    ("GET", FORM_SUBMISSIONS): submissions_list,
    ("GET", SURVEY_SUBMISSIONS): submissions_list,
    ("GET", ORDERS): orders_list,
    ("GET", ORDERS + "/{}"): _read(ORDERS, order_item, "Order"),
    ("GET", TRANSACTIONS): transactions_list,
    ("GET", TRANSACTIONS + "/{}"): _read(TRANSACTIONS, transaction_item, "Transaction"),
    ("GET", INVOICES): invoices_list,
    ("GET", INVOICES + "/{}"): invoice_read,
    ("POST", INVOICES): invoice_create,
    ("POST", INVOICES + "/{}/send"): invoice_send,
    ("POST", INVOICES + "/{}/void"): invoice_void,
    ("POST", INVOICES + "/{}/record-payment"): invoice_record_payment,
}
