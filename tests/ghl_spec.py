"""Read-only access to GHL's official OpenAPI specs in ../shared/ghl-openapi, for tests."""

import functools
import json
import os
from pathlib import Path

from catalog.generate import scopes_of, version_of  # noqa: F401 (used by the spec tests)

SPEC_DIR = Path(os.environ.get(
    "GHL_OPENAPI_DIR", Path(__file__).resolve().parents[2] / "shared" / "ghl-openapi"))


@functools.lru_cache(maxsize=None)
def spec_app(app):
    with open(SPEC_DIR / "apps" / f"{app}.json", encoding="utf-8") as handle:
        return json.load(handle)


def spec_apps():
    return sorted(p.stem for p in (SPEC_DIR / "apps").glob("*.json"))


def spec_operation(app, method, path):
    """The operation object for ``method path`` in ``apps/<app>.json``, or None."""
    return spec_app(app).get("paths", {}).get(path, {}).get(method.lower())


def find_operation(method, path):
    """(app, operation) wherever ``method path`` is declared, or (None, None)."""
    for app in spec_apps():
        operation = spec_operation(app, method, path)
        if operation:
            return app, operation
    return None, None


def resolve(app, schema):
    """Follow local ``$ref``s and merge ``allOf`` so that properties and required are at the top."""
    schema = schema or {}
    while "$ref" in schema:
        ref = schema["$ref"]
        if not ref.startswith("#/"):
            return {}
        node = spec_app(app)
        for part in ref[2:].split("/"):
            node = node[part]
        schema = node
    if "allOf" in schema:
        merged = {"type": "object", "properties": {}, "required": []}
        for part in schema["allOf"]:
            part = resolve(app, part)
            merged["properties"].update(part.get("properties", {}))
            merged["required"].extend(part.get("required", []))
        return merged
    return schema


def parameters_of(operation, place):
    """{name: required} of the operation's parameters in ``place`` (path, query, header)."""
    return {
        p["name"]: bool(p.get("required"))
        for p in operation.get("parameters", [])
        if p.get("in") == place
    }


def body_schema_of(app, operation):
    """The resolved request-body schema (JSON, or multipart/form-data for uploads: ``{}`` when
    the spec gives that none), or None when the operation takes no such body."""
    body = operation.get("requestBody")
    if not body:
        return None
    contents = body.get("content", {})
    content = contents.get("application/json", contents.get("multipart/form-data"))
    if content is None:
        return None
    return resolve(app, content.get("schema")) or {}


def window_filled(record, place):
    """Parameters in ``place`` the service fills itself at every request from the record's
    ``window`` (``ghl.time_window``): its start and end, always query parameters."""
    window = record.get("window") or {}
    if place != "query":
        return set()
    return {window[side] for side in ("start", "end") if window.get(side)}


def window_day_inputs(record):
    """Keys of the inputs the record's ``window`` consumes: day counts, never sent to GHL."""
    window = record.get("window") or {}
    return {window[side] for side in ("back", "ahead") if window.get(side)}
