"""The bodies GHL answers with: errors in its NestJS shapes, items wrapped at a dotted path."""

import uuid

from ghl.response_items import dig, wrap


def error(status, message, error_name=None):
    """``(status, body)`` for an error; GHL's 404/401/422 carry an ``error`` name, others not."""
    body = {"statusCode": status, "message": message}
    if error_name:
        body["error"] = error_name
    return status, body


def not_found(message):
    return error(404, message)


def unprocessable(messages):
    """422 as class-validator writes it: ``message`` is a list of strings."""
    return error(422, list(messages), "Unprocessable Entity")


def should_not_be_empty(*names):
    return unprocessable([f"{name} should not be empty" for name in names])


def trace_id():
    return str(uuid.uuid4())


def container(body, items_path):
    """The object holding the items (where list metadata such as ``total`` goes)."""
    if not items_path or not isinstance(body, dict):
        return None
    parent = items_path.rsplit(".", 1)[0] if "." in items_path else ""
    return dig(body, parent) if parent else body


def wrap_unless_present(items_path, result, item=None):
    """An action's answer: ``result`` as is when it already has ``items_path``, else the
    affected ``item`` (or ``result``) wrapped at that path."""
    if not items_path or (isinstance(result, dict) and dig(result, items_path) is not None):
        return result
    return wrap(items_path, item if item is not None else result)


def noun_of(shape):
    """``/contacts/{}/tasks`` -> ``Task``, for "not found" messages."""
    segment = next((s for s in reversed(shape.split("/")) if s and s != "{}"), "Record")
    if segment.endswith("ies"):
        segment = segment[:-3] + "y"
    elif segment.endswith("s"):
        segment = segment[:-1]
    return segment[:1].upper() + segment[1:]
