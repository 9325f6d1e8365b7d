"""What every trigger and action request carries: the caller's token, location and inputs."""

import sys
from contextlib import contextmanager

from flask import request

from ghl.errors import GhlError
from server.app import services
from server.errors import ApiError
from server.request_limits import JsonRefused, parse_json

# How long a request body may take to arrive once its headers are in.
BODY_SECONDS = 15


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
    data = _body_bytes()
    if not data:
        if required:
            raise ApiError(400, "invalid_json", message)
        return {}
    try:
        body = parse_json(data)
    except JsonRefused as refused:
        raise ApiError(refused.status, refused.code, refused.message) from None
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_json", message)
    return body


def _body_bytes():
    """The raw body, read only when it is JSON and small enough, and only as long as it keeps arriving."""
    length = request.content_length
    chunked = "chunked" in request.headers.get("Transfer-Encoding", "").lower()
    if not length and not chunked:
        return b""
    if not request.is_json:
        raise ApiError(415, "unsupported_media_type",
                       "The request body must be JSON, sent with 'Content-Type: application/json'.")
    limit = services().settings.max_body_bytes
    too_large = ApiError(413, "body_too_large", f"The request body is larger than {limit:,} bytes.")
    if length is not None and length > limit:
        raise too_large
    with body_deadline():
        data = request.get_data(cache=True)
        # Werkzeug cuts a chunked body at the limit without a word: one more byte means it was longer.
        if len(data) >= limit and request.environ["wsgi.input"].read(1):
            raise too_large
    return data


class _BodyTimeout(Exception):
    pass


@contextmanager
def body_deadline(seconds=BODY_SECONDS):
    """Under gevent, a body still arriving ``seconds`` after the headers is a 408: a client
    trickling it would otherwise hold its connection and greenlet for as long as it liked."""
    monkey = sys.modules.get("gevent.monkey")
    if monkey is None or not monkey.is_module_patched("socket"):
        yield
        return
    from gevent import Timeout
    timeout = Timeout(seconds, _BodyTimeout)
    timeout.start()
    try:
        yield
    except _BodyTimeout:
        raise ApiError(408, "body_timeout", f"The request body did not arrive within {seconds} seconds.") from None
    finally:
        timeout.close()


def operation(key, kinds):
    """The catalog record ``key`` of one of ``kinds``; 404 otherwise."""
    record = services().catalog.get(key)
    if record is None or record["kind"] not in kinds:
        what = " or ".join(kinds)
        raise ApiError(404, "unknown_operation", f"There is no {what} called {key!r} in the catalog.")
    return record


# What a record's ``access`` (from the spec's security) asks of the token, for GHL's 401 and 403.
ACCESS_NEEDS = {
    "agency": "an agency token (it acts on the agency, not on a sub-account)",
    "oauth": "an OAuth access token from a Marketplace app (GHL refuses Private Integration tokens here)",
}


@contextmanager
def explained_access(record):
    """A GHL 401 or 403 for an operation only some tokens may call says which (``access``)."""
    try:
        yield
    except GhlError as error:
        if error.status in (401, 403) and record.get("access"):
            needs = " or ".join(ACCESS_NEEDS[a] for a in record["access"])
            error.message = f"{error.message} This operation needs {needs}."
            error.details.setdefault("access", list(record["access"]))
        raise
