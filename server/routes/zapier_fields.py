"""``/zapier/fields/<key>``: an operation's custom fields, loaded from the connection's GHL account,
as Zapier input or output field descriptors (Zapier dynamic fields).

``?for=input``: for actions that write custom fields, one field per custom field of the record
type, keyed ``cf_<field id>`` (what ``POST /actions/<key>`` takes). ``?for=output``: for every
operation whose items carry custom fields, the ``custom_fields__<name>`` outputs, labelled with
the fields' GHL names. Other operations answer ``[]``. Reads definitions only; records nothing.
"""

from flask import Blueprint, jsonify, request

from ghl.custom_fields import (
    input_field,
    load_definitions,
    output_field,
    record_model,
    usable_as_input,
    writes_custom_fields,
)
from ghl.errors import GhlError
from server.app import services
from server.errors import ApiError
from server.routes.caller import bearer_token, location_header

blueprint = Blueprint("zapier_fields", __name__)
PURPOSES = ("input", "output")


@blueprint.get("/zapier/fields/<key>")
def custom_fields(key):
    record = services().catalog.get(key)
    if record is None:
        raise ApiError(404, "unknown_operation", f"There is no operation called {key!r} in the catalog.")
    purpose = request.args.get("for", "")
    if purpose not in PURPOSES:
        raise ApiError(400, "invalid_input", "Say which fields with ?for=input or ?for=output.",
                       fields={"for": "must be input or output"})
    token = bearer_token()
    model = record_model(record)
    if model is None or (purpose == "input" and not writes_custom_fields(record)):
        return jsonify([])
    location_id = location_header()
    if not location_id or location_id in (".", ".."):
        raise ApiError(400, "missing_location",
                       "Send the location id in the X-Location-Id header (the connection's Location ID field).")
    try:
        definitions = load_definitions(services().client, token, location_id, model)
    except GhlError as error:
        # Output fields only label what a step gives: a token without the custom-fields scope
        # still sets the step up, with the custom fields unlabelled.
        if purpose == "output" and error.status == 403:
            return jsonify([])
        raise
    if purpose == "input":
        return jsonify([input_field(d) for d in definitions if usable_as_input(d)])
    return jsonify([output_field(d, model) for d in definitions])
