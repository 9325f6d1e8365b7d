"""The generic "API Request" action: any GHL endpoint the catalog does not curate.

It is declared as a record like the others (so validation, the Zapier export and docs treat
it the same), but its path is an input, checked here to be a relative GHL path that cannot
leave ``GHL_BASE_URL`` or climb out of the path it names.
"""

import re

from catalog.inputs import InvalidInput, validate_inputs
from ghl.request_builder import check_url_length, query_string_chars

SAFE_PATH = re.compile(r"/[A-Za-z0-9._~\-/:@]*")
MAX_PATH_CHARS = 2048

API_REQUEST = {
    "key": "api_request",
    "name": "API Request",
    "kind": "action",
    "category": "Advanced",
    "noun": "API Request",
    "summary": "Calls any GHL API v2 endpoint with your connection, for what the catalog does not cover.",
    "method": "ANY",
    "path": "{path}",
    "version": None,
    "scopes": [],
    "inputs": [
        {"key": "method", "label": "Method", "type": "string", "required": True, "list": False,
         "choices": ["GET", "POST", "PUT", "PATCH", "DELETE"], "default": "GET", "help_text": "The HTTP method.",
         "in": "request"},
        {"key": "path", "label": "Path", "type": "string", "required": True, "list": False,
         "help_text": "The GHL path, such as /contacts/abc123 (relative: no host, no ..).", "in": "request"},
        {"key": "query", "label": "Query Parameters", "type": "json", "required": False, "list": False,
         "help_text": "A JSON object of query parameters.", "in": "request"},
        {"key": "body", "label": "JSON Body", "type": "json", "required": False, "list": False,
         "help_text": "The JSON body, for POST, PUT and PATCH.", "in": "request"},
        {"key": "version", "label": "Version Header", "type": "string", "required": False, "list": False,
         "choices": ["2021-07-28", "2021-04-15"], "default": "2021-07-28",
         "help_text": "GHL's Version header: 2021-04-15 for calendars and conversations, else 2021-07-28.",
         "in": "request"},
    ],
    "response": {"items": None, "single": True, "id_field": "id"},
    "sample": {"status": 200, "data": {"id": "sample-record-1", "name": "Sample Record"}},
}


def check_relative_path(path):
    """None when ``path`` is a safe relative GHL path, else what is wrong with it."""
    if len(path) > MAX_PATH_CHARS:
        return f"must be at most {MAX_PATH_CHARS} characters"
    if not SAFE_PATH.fullmatch(path) or path.startswith("//"):
        return "must be a relative GHL path such as /contacts/abc123 (letters, digits and - _ . ~ / : @ only)"
    if any(segment in (".", "..") for segment in path.split("/")):
        return "must not contain . or .. segments"
    return None


def run_api_request(client, raw_inputs, token):
    inputs = validate_inputs(API_REQUEST, raw_inputs)
    problem = check_relative_path(inputs["path"])
    if problem:
        raise InvalidInput({"path": problem})
    query = inputs.get("query")
    if query is not None and not isinstance(query, dict):
        raise InvalidInput({"query": "must be a JSON object"})
    check_url_length(inputs["path"], query, {"path": len(inputs["path"]), "query": query_string_chars(query)})
    method = inputs["method"]
    body = inputs.get("body") if method in ("POST", "PUT", "PATCH") else None
    response = client.request(method, inputs["path"], token, version=inputs.get("version"), query=query, body=body)
    return {"status": response.status, "data": response.body}
