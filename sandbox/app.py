"""The sandbox GHL: a local, stateful stand-in for the GoHighLevel API v2.

``create_sandbox_app`` registers one route per catalog operation and serves them all
generically from the operation records (``sandbox.handlers``), with GHL's own behaviour
where it differs (``sandbox.ghl_behaviours``). Every API request passes, in order: the
request log, the spec check (``sandbox.spec_validator``: recorded, refused only when strict),
the configured latency, the bearer token (401), the burst rate limit (429),
injected faults, the ``Version`` header (400) and the record's required inputs (422).
A ``multipart/form-data`` upload is kept (``sandbox.uploads``: part names, sizes, digests) and
its parts are what the spec check and the handler see as its body.
"""

import time
from urllib.parse import quote

from flask import Flask, current_app, g, jsonify, request
from werkzeug.exceptions import HTTPException

from catalog.registry import load_catalog
from sandbox.control import control
from sandbox.faults import DroppedConnection, drop_connection, fault_body
from sandbox.ghl_behaviours import SPECIAL_CASES
from sandbox.handlers import Call, handle
from sandbox.routing import build_route_table
from sandbox.spec_shapes import attach_answer_shapes
from sandbox.spec_validator import ViolationLog
from sandbox.state import SandboxState
from sandbox.uploads import MULTIPART, form_fields, received_upload

CONTROL_PREFIX = "/_sandbox"
UNAUTHORIZED = {"statusCode": 401, "message": "Invalid token: access token is invalid", "error": "Unauthorized"}
# GHL does not document what it answers to a missing or wrong Version header; the
# sandbox refuses it so that a client sending the wrong one finds out here, not in production.
BAD_VERSION = {"statusCode": 400, "message": "Version header is missing or invalid"}
TOO_MANY = {"statusCode": 429, "message": "Too many requests"}


def create_sandbox_app(catalog=None, tokens=("sandbox-token",), seed=True, latency_ms=0,
                       burst_limit=100, burst_window_s=10, spec_dir=None, strict_spec=False):
    """A Flask app serving every operation of ``catalog`` (default: ``load_catalog()``).

    ``tokens`` are the accepted bearer tokens; ``seed`` loads the sandbox location's data;
    ``latency_ms`` delays every API answer; ``burst_limit`` requests per ``burst_window_s``
    seconds are allowed per (token, location) before 429. Every request is checked against
    GHL's OpenAPI specs in ``spec_dir`` (default ``../shared/ghl-openapi``; none there: not
    checked) and its violations listed at ``/_sandbox/violations``; ``strict_spec`` answers a
    request with violations 422 instead of serving it.
    """
    app = Flask(__name__)
    app.json.sort_keys = False
    table = build_route_table(load_catalog() if catalog is None else catalog, SPECIAL_CASES)
    app.extensions["sandbox"] = SandboxState(table, tokens, seed, latency_ms, burst_limit, burst_window_s)
    app.extensions["sandbox_spec"] = ViolationLog(spec_dir, strict=strict_spec)
    if not app.extensions["sandbox_spec"].validator.enabled:
        app.logger.warning("sandbox spec check %s", app.extensions["sandbox_spec"].validator.status)
    attach_answer_shapes(table, app.extensions["sandbox_spec"].validator)
    for number, op in enumerate(table.operations):
        app.add_url_rule(op.flask_rule, endpoint=f"operation_{number}", view_func=serve_operation,
                         methods=[op.method], strict_slashes=False, defaults={"operation": op})
    app.register_blueprint(control)
    app.before_request(check_request)
    app.after_request(finish_request)
    app.register_error_handler(HTTPException, route_error)
    app.register_error_handler(Exception, server_error)
    return app


def _state():
    return current_app.extensions["sandbox"]


def _raw_path():
    """The path exactly as the client sent it (percent-escapes kept)."""
    raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI")
    if raw:
        return raw.split("?", 1)[0]
    return quote(request.path, safe="/:@!$&'()*+,;=-._~")


def _location_of(body):
    for name in ("locationId", "location_id"):
        if request.args.get(name):
            return request.args[name]
    if isinstance(body, dict) and isinstance(body.get("locationId"), str):
        return body["locationId"]
    operation = (request.view_args or {}).get("operation")
    if operation is not None and "locationId" in operation.param_names:
        return request.view_args[f"p{operation.param_names.index('locationId')}"]
    return "-"


def _json_body():
    """The parsed JSON body; None when there is none, and for a multipart upload (see ``uploads``)."""
    if request.mimetype == MULTIPART:
        return None
    return request.get_json(silent=True, force=True) if request.get_data(cache=True) else None


def _handler_body():
    """What the handler sees as the body: the JSON, or for an upload its text fields and file part names."""
    return form_fields(request) if request.mimetype == MULTIPART else _json_body()


def check_request():
    """Everything before the handler; an answer here ends the request."""
    if request.path.startswith(CONTROL_PREFIX):
        return None
    state = _state()
    body = _json_body()
    authorization = request.headers.get("Authorization", "")
    g.log_entry = {
        "method": request.method,
        "path": _raw_path(),
        "query": request.args.to_dict(flat=False),
        "json": body,
        "version": request.headers.get("Version"),
        "auth": bool(authorization),
        "status": None,
    }
    if request.mimetype:
        g.log_entry["content_type"] = request.mimetype
    upload = received_upload(request) if request.mimetype == MULTIPART else None
    if upload is not None:
        g.log_entry.update(form=upload["form"], files=upload["files"])
        state.keep_upload({"method": request.method, "path": g.log_entry["path"], **upload})
    state.log(g.log_entry)
    spec = current_app.extensions["sandbox_spec"]
    problems = spec.observe(request.method, g.log_entry["path"], g.log_entry["query"], request.headers, body,
                            form=upload)
    if problems and spec.strict:
        return jsonify({"statusCode": 422, "message": problems, "error": "Spec violation"}), 422
    if state.latency_ms:
        time.sleep(state.latency_ms / 1000)
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or token.strip() not in state.tokens:
        return jsonify(UNAUTHORIZED), 401
    allowed, g.rate_headers = state.limiter.take((token.strip(), _location_of(body)))
    if not allowed:
        return jsonify(TOO_MANY), 429
    fault = state.faults.take(request.method, request.path)
    if fault:
        if fault["delay_ms"]:
            time.sleep(fault["delay_ms"] / 1000)
        if fault["drop"]:
            g.log_entry["status"] = "dropped"
            drop_connection(request.environ)
            return "", 500
        if fault["status"]:
            return jsonify(fault_body(fault["status"], fault.get("message"))), fault["status"]
    operation = (request.view_args or {}).get("operation")
    if operation is not None and operation.versions and request.headers.get("Version") not in operation.versions:
        return jsonify(BAD_VERSION), 400
    return None


def serve_operation(operation, **path_values):
    state = _state()
    values = [path_values[f"p{n}"] for n in range(len(operation.param_names))]
    call = Call(op=operation, table=state.table, store=state.store, values=values, args=request.args,
                body=_handler_body(), url=request.base_url)
    special = SPECIAL_CASES.get((operation.method, operation.shape))
    status, body = handle(call, special)
    return jsonify(body), status


def finish_request(response):
    for name, value in getattr(g, "rate_headers", {}).items():
        response.headers[name] = value
    entry = getattr(g, "log_entry", None)
    if entry is not None and entry["status"] is None:
        entry["status"] = response.status_code
    return response


def route_error(exc):
    """Unknown paths and methods, in NestJS's words (``Cannot GET /nope``), as GHL answers."""
    if exc.code in (404, 405):
        return jsonify({"statusCode": 404, "message": f"Cannot {request.method} {request.path}",
                        "error": "Not Found"}), 404
    return jsonify({"statusCode": exc.code, "message": exc.description}), exc.code


def server_error(exc):
    if isinstance(exc, DroppedConnection):
        raise exc
    current_app.logger.exception("sandbox handler failed")
    return jsonify({"statusCode": 500, "message": "Internal server error"}), 500
