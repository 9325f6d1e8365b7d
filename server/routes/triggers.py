"""``/triggers/<key>``: Zapier's polling endpoint."""

from flask import Blueprint, jsonify, request

from catalog.inputs import fill_location, validate_inputs
from server.app import services
from server.errors import ApiError
from server.routes.caller import bearer_token, location_header, operation, request_inputs
from triggers.poll import LIVE, SAMPLE, PollLimits, poll_once, scope_for, subscriber_for_token

blueprint = Blueprint("triggers", __name__)


def poll_mode():
    """``X-Poll-Mode``: ``live`` (the default) or ``sample``; anything else is a 400."""
    mode = request.headers.get("X-Poll-Mode", "").strip().lower() or LIVE
    if mode not in (LIVE, SAMPLE):
        raise ApiError(400, "invalid_poll_mode", "X-Poll-Mode must be 'live' or 'sample'.")
    return mode


@blueprint.route("/triggers/<key>", methods=["GET", "POST"])
def poll_trigger(key):
    record = operation(key, ("trigger",))
    mode = poll_mode()
    token = bearer_token()
    inputs = validate_inputs(record, fill_location(record, request_inputs(), location_header()))
    shared = services()
    subscriber = request.headers.get("X-Subscriber-Id", "").strip() or subscriber_for_token(shared.secret_key, token)
    scope = scope_for(subscriber, key, inputs)
    items = poll_once(shared.client, shared.store, record, inputs, token, scope,
                      PollLimits.from_settings(shared.settings), mode=mode)
    return jsonify(items)
