"""``/actions/<key>``: Zapier's creates and searches. A trigger that is really a look-up
(``zapier_app.presentation.role``: Get Contact by id, users by email) runs as a search: one read
of GHL, answered as a list, recording nothing."""

from flask import Blueprint, jsonify

from actions.api_request import API_REQUEST, run_api_request
from actions.execute import run_operation
from catalog.inputs import fill_location, validate_inputs
from ghl.custom_fields import resolve_custom_field_inputs
from server.app import services
from server.errors import ApiError
from server.routes.caller import bearer_token, explained_access, location_header, operation, request_inputs
from zapier_app.presentation import role

blueprint = Blueprint("actions", __name__)


@blueprint.post("/actions/<key>")
def run_action(key):
    if key == API_REQUEST["key"]:
        token = bearer_token()
        return jsonify(run_api_request(services().client, request_inputs(), token))
    record = operation(key, ("action", "search", "trigger"))
    if record["kind"] == "trigger" and role(record) != "search":
        raise ApiError(404, "unknown_operation", f"{key!r} is a trigger: poll it at /triggers/{key}.")
    token = bearer_token()
    inputs = validate_inputs(record, fill_location(record, request_inputs(), location_header()))
    shared = services()
    inputs = resolve_custom_field_inputs(shared.client, token, location_header(), record, inputs)
    with explained_access(record):
        answer = run_operation(shared.client, record, inputs, token, app_url=shared.settings.ghl_app_url)
    return jsonify(answer)
