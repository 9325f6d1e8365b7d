"""What every trigger and action request carries: the caller's token, location and inputs."""

from flask import request

from server.app import services
from server.errors import ApiError


def bearer_token():
    """The GHL token from ``Authorization: Bearer``; 401 when missing."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise ApiError(401, "missing_token",
                       "Send the GHL token as 'Authorization: Bearer <token>' (a Private Integration "
                       "token or an OAuth access token).")
    return token


def location_header():
    return request.headers.get("X-Location-Id", "").strip() or None


def request_inputs():
    """Inputs from the JSON body, or from the query string for a GET."""
    if request.method == "GET":
        inputs = {}
        for key in request.args:
            values = request.args.getlist(key)
            inputs[key] = values if len(values) > 1 else values[0]
        return inputs
    return json_body_object("The request body must be a JSON object of inputs.")


def json_body_object(message, required=False):
    """The request's JSON body, which must be an object; ``{}`` for an empty body unless ``required``.
    ``message`` says what the object should hold, for the 400 answer."""
    if not request.data:
        if required:
            raise ApiError(400, "invalid_json", message)
        return {}
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_json", message)
    return body


def operation(key, kinds):
    """The catalog record ``key`` of one of ``kinds``; 404 otherwise."""
    record = services().catalog.get(key)
    if record is None or record["kind"] not in kinds:
        what = " or ".join(kinds)
        raise ApiError(404, "unknown_operation", f"There is no {what} called {key!r} in the catalog.")
    return record
