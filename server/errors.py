"""Every error leaves the service as JSON ``{"error": {"code", "message", ...}}``."""

import logging
import traceback

from flask import jsonify
from werkzeug.exceptions import HTTPException

from catalog.inputs import InvalidInput
from ghl.errors import GhlError

log = logging.getLogger(__name__)

# How long a client should wait after the database failed (a fault clears, or a restart happens).
STORAGE_RETRY_AFTER_SECONDS = 5


class ApiError(Exception):
    def __init__(self, status, code, message, **details):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details


def error_response(status, code, message, headers=None, **details):
    body = {"error": {"code": code, "message": message, **details}}
    response = jsonify(body)
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _api_error(exc):
    return error_response(exc.status, exc.code, exc.message, **exc.details)


def _invalid_input(exc):
    # ``fields`` lists the first problems; ``omitted`` counts the rest (the message says so too).
    details = {"omitted": exc.omitted} if getattr(exc, "omitted", 0) else {}
    return error_response(400, "invalid_input", str(exc), fields=exc.fields, **details)


def _ghl_error(exc):
    response = jsonify(exc.to_json())
    response.status_code = exc.status
    if exc.retry_after is not None:
        response.headers["Retry-After"] = str(int(exc.retry_after))
    return response


def _http_error(exc):
    code = (exc.name or "error").lower().replace(" ", "_")
    # Keep the headers werkzeug adds, such as Allow on a 405 (RFC 9110 requires it).
    headers = {name: value for name, value in exc.get_headers() if name.lower() != "content-type"}
    return error_response(exc.code or 500, code, exc.description or exc.name, headers=headers)


def _storage_error_handler(backend):
    def storage_error(exc):
        if not backend.is_unavailable(exc):
            return _unexpected(exc)  # a statement's own error is a bug, not an outage
        log.warning("storage unavailable: %s", backend.describe(exc))
        return error_response(503, "storage_unavailable",
                              "The service's database is unavailable right now; try again shortly.",
                              headers={"Retry-After": str(STORAGE_RETRY_AFTER_SECONDS)})
    return storage_error


def _unexpected(exc):
    # The exception's text may quote inputs (emails, phones, URLs): log its type and where it was raised.
    log.error("unhandled error: %s\n%s", type(exc).__name__,
              "".join(traceback.format_tb(exc.__traceback__)).rstrip())
    return error_response(500, "internal_error", "Something went wrong inside the service; it has been logged.")


def register_error_handlers(app, backend):
    app.register_error_handler(ApiError, _api_error)
    app.register_error_handler(InvalidInput, _invalid_input)
    app.register_error_handler(GhlError, _ghl_error)
    app.register_error_handler(HTTPException, _http_error)
    for error_class in backend.errors:
        app.register_error_handler(error_class, _storage_error_handler(backend))
    app.register_error_handler(Exception, _unexpected)
