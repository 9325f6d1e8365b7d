"""``/triggers/<key>``: Zapier's polling endpoint."""

from flask import Blueprint, jsonify, request

from catalog.inputs import fill_location, validate_inputs
from ghl.credentials import credential_id
from server.app import services
from server.errors import ApiError
from server.routes.caller import bearer_token, explained_access, location_header, operation, request_inputs
from triggers.poll import LIVE, SAMPLE, PollLimits, poll_once, scope_for

blueprint = Blueprint("triggers", __name__)

MAX_SUBSCRIBER_ID_LENGTH = 200


def poll_mode():
    """``X-Poll-Mode``: ``live`` (the default) or ``sample``; anything else is a 400."""
    mode = request.headers.get("X-Poll-Mode", "").strip().lower() or LIVE
    if mode not in (LIVE, SAMPLE):
        raise ApiError(400, "invalid_poll_mode", "X-Poll-Mode must be 'live' or 'sample'.")
    return mode


def subscriber_id():
    """``X-Subscriber-Id`` (the Zap), "" when absent: at most 200 printable ASCII characters,
    else a 400. It only separates Zaps of one credential; it never reaches another's scope."""
    value = request.headers.get("X-Subscriber-Id", "").strip()
    if len(value) > MAX_SUBSCRIBER_ID_LENGTH or not all(" " <= char <= "~" for char in value):
        raise ApiError(400, "invalid_subscriber_id",
                       f"X-Subscriber-Id must be at most {MAX_SUBSCRIBER_ID_LENGTH} printable ASCII characters.")
    return value


@blueprint.route("/triggers/<key>", methods=["GET", "POST"])
def poll_trigger(key):
    record = operation(key, ("trigger",))
    mode = poll_mode()
    token = bearer_token()
    subscriber = subscriber_id()
    inputs = validate_inputs(record, fill_location(record, request_inputs(), location_header()))
    shared = services()
    scope = scope_for(credential_id(shared.secret_key, token), key, inputs, subscriber=subscriber)
    with explained_access(record):
        items = poll_once(shared.client, shared.store, record, inputs, token, scope,
                          PollLimits.from_settings(shared.settings), mode=mode,
                          app_url=shared.settings.ghl_app_url)
    return jsonify(items)
