"""``/_sandbox/``: fault injection and inspection for tests and benchmarks (no auth)."""

import mimetypes

from flask import Blueprint, Response, current_app, jsonify, request

from sandbox import commerce
from sandbox.faults import FaultError
from sandbox.handlers import CREATE_DEFAULTS
from sandbox.routing import list_collection_shape
from sandbox.seed import LOCATION_ID
from sandbox.uploads import file_bytes

control = Blueprint("sandbox_control", __name__, url_prefix="/_sandbox")


def _state():
    return current_app.extensions["sandbox"]


def _bad_request(message):
    return jsonify({"statusCode": 400, "message": message}), 400


@control.get("/")
def index():
    return jsonify({"endpoints": [
        "POST /_sandbox/faults  [{status, times, path_prefix, method, delay_ms, drop}]",
        "GET /_sandbox/faults", "DELETE /_sandbox/faults",
        "POST /_sandbox/reset",
        "GET /_sandbox/violations", "DELETE /_sandbox/violations",
        "GET /_sandbox/uploads", "DELETE /_sandbox/uploads",
        "GET /_sandbox/files/<name>  (a small file to hand an upload as its URL)",
        "GET /_sandbox/requests", "DELETE /_sandbox/requests",
        "POST /_sandbox/records  {path, records, locationId}", "GET /_sandbox/records?path=/contacts/",
        "POST /_sandbox/latency  {ms}",
        "POST /_sandbox/invoices/{invoiceId}/record-payment  {amount, mode}  (paid or partially_paid)",
        "POST /_sandbox/list-order  {path, order: newest_first|oldest_first}",
        "POST /_sandbox/messages/inbound|outbound  {conversationId | contactId, type, message} or {messages}",
    ]})


@control.post("/faults")
def add_faults():
    specs = request.get_json(silent=True, force=True)
    if isinstance(specs, dict):
        specs = specs.get("faults", [specs])
    if not isinstance(specs, list):
        return _bad_request("send a JSON list of faults")
    try:
        _state().faults.add(specs)
    except FaultError as exc:
        return _bad_request(str(exc))
    return jsonify({"faults": _state().faults.pending()}), 201


@control.get("/faults")
def list_faults():
    return jsonify({"faults": _state().faults.pending()})


@control.delete("/faults")
def clear_faults():
    _state().faults.clear()
    return jsonify({"faults": []})


@control.post("/reset")
def reset():
    _state().reset()
    current_app.extensions["sandbox_spec"].clear()
    return jsonify({"reset": True})


@control.get("/requests")
def list_requests():
    return jsonify({"requests": _state().logged()})


@control.delete("/requests")
def clear_requests():
    _state().clear_log()
    return jsonify({"requests": []})


@control.get("/violations")
def list_violations():
    """Requests that broke GHL's OpenAPI specs (``sandbox.spec_validator``), oldest first."""
    return jsonify(current_app.extensions["sandbox_spec"].listed())


@control.delete("/violations")
def clear_violations():
    current_app.extensions["sandbox_spec"].clear()
    return jsonify({"violations": []})


@control.get("/uploads")
def list_uploads():
    """Multipart uploads received, oldest first: method, path, form fields and file parts
    (filename, content_type, size, sha256; ``sandbox.uploads``)."""
    return jsonify({"uploads": _state().uploads()})


@control.delete("/uploads")
def clear_uploads():
    _state().clear_uploads()
    return jsonify({"uploads": []})


@control.get("/files/<name>")
def download_file(name):
    """A small file for tests to hand an upload as its URL (``sandbox.uploads.file_bytes``)."""
    data = file_bytes(name)
    return Response(data, mimetype=mimetypes.guess_type(name)[0] or "application/octet-stream",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


def _collection_key(path):
    """The collection a list path reads (``/contacts/`` -> ``/contacts``, ``/users/search`` -> ``/users``)."""
    return list_collection_shape(path.split("?")[0].rstrip("/") or "/")


@control.post("/records")
def bulk_create():
    """Create many records at once in the collection that the list ``path`` reads. Records
    without ``locationId`` get the payload's (default ``sandbox-location``)."""
    payload = request.get_json(silent=True, force=True) or {}
    path, records = payload.get("path"), payload.get("records")
    if not isinstance(path, str) or not path.startswith("/") or not isinstance(records, list):
        return _bad_request('send {"path": "/contacts/", "records": [...]}')
    location_id = payload.get("locationId", LOCATION_ID)
    key = _collection_key(path)
    store = _state().store
    created = []
    with store.lock:
        id_field = store.id_field(key)
        for fields in records:
            fields = {**CREATE_DEFAULTS.get(key, {}), **(fields if isinstance(fields, dict) else {})}
            if location_id and "locationId" not in fields:
                fields["locationId"] = location_id
            created.append(store.create(key, fields, id_field=id_field))
    return jsonify({"collection": key, "created": len(created), "ids": [r[id_field] for r in created]}), 201


@control.get("/records")
def list_stored():
    path = request.args.get("path", "")
    if not path.startswith("/"):
        return _bad_request("pass ?path=/contacts/")
    key = _collection_key(path)
    return jsonify({"collection": key, "records": _state().store.items(key)})


@control.post("/latency")
def set_latency():
    payload = request.get_json(silent=True, force=True) or {}
    ms = payload.get("ms")
    if not isinstance(ms, (int, float)) or ms < 0:
        return _bad_request('send {"ms": n} with n >= 0')
    _state().latency_ms = ms
    return jsonify({"ms": ms})


# -- forms, surveys, payments and invoices (sandbox.commerce) -----------------------------------------
# Submissions, orders, transactions and invoices are made with POST /_sandbox/records (path
# /forms/submissions, /surveys/submissions, /payments/orders, /payments/transactions, /invoices/).

@control.post("/invoices/<invoice_id>/record-payment")
def record_invoice_payment(invoice_id):
    """GHL's ``POST /invoices/{invoiceId}/record-payment`` without a catalog route: ``amount``
    (default: all that is due), ``mode`` (default cash); altId/altType default to the invoice's.
    The invoice becomes paid or partially_paid, and a transaction is recorded for the payment."""
    status, body = commerce.record_payment(_state().store, invoice_id, request.get_json(silent=True, force=True),
                                           fill_defaults=True)
    return jsonify(body), status


@control.post("/list-order")
def set_list_order():
    """Answer a list whose order GHL does not document (``/payments/orders``...) newest
    (``newest_first``, the default) or oldest (``oldest_first``) created first, until reset."""
    payload = request.get_json(silent=True, force=True) or {}
    path, order = payload.get("path"), payload.get("order")
    if not isinstance(path, str) or not path.startswith("/"):
        return _bad_request('send {"path": "/payments/orders", "order": "oldest_first"}')
    try:
        commerce.set_list_order(_state().store, _collection_key(path), order)
    except ValueError as exc:
        return _bad_request(str(exc))
    return jsonify({"collection": _collection_key(path), "order": order})


# -- messages a customer (inbound) or the location (outbound) sends (sandbox.activity) -------------

@control.post("/messages/<direction>")
def add_messages(direction):
    """Add a message to a conversation as GHL stores a customer's message (``inbound``) or the
    location's own (``outbound``): ``{conversationId | contactId, type, message, date?}``, or
    ``{"messages": [...]}`` for many; answers them as the message export lists them."""
    from sandbox.activity import add_message  # imported here to keep this block in one place
    if direction not in ("inbound", "outbound"):
        return _bad_request("POST /_sandbox/messages/inbound or /_sandbox/messages/outbound")
    payload = request.get_json(silent=True, force=True)
    many = isinstance(payload, dict) and isinstance(payload.get("messages"), list)
    bodies = payload["messages"] if many else [payload]
    if not all(isinstance(body, dict) for body in bodies):
        return _bad_request('send {"conversationId", "type", "message"} or {"messages": [...]}')
    store, added = _state().store, []
    with store.lock:
        for body in bodies:
            message, failure = add_message(store, body, direction)
            if failure:
                status, error = failure
                return jsonify(error), status
            added.append(message)
    return jsonify({"messages": added, "ids": [m["id"] for m in added]}), 201
