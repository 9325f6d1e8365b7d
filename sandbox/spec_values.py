"""Values that fit a schema of GHL's OpenAPI specs: for the sandbox's answers and for test inputs.

``value_for(doc, schema)`` builds a value the request validator (``sandbox.spec_validator``)
accepts: the schema's own ``example`` when it fits, else the first ``enum`` value, else one
built from the type (an object with its required properties, or all of them with
``every_property``; an array of one item; a string shaped by its ``format``).

``response_schema(op)`` and ``request_schema(op)`` find the JSON schemas of a spec operation's
success answer and body; ``schema_at(doc, schema, dotted)`` follows a dotted field path into one.
"""

import copy

from sandbox.spec_validator import MAX_DEPTH, _check_value, _declared_type, _deref, _flatten

SUCCESS_STATUSES = ("200", "201", "202", "204", "default")
# A string of a known ``format``; others are a plain word.
STRING_BY_FORMAT = {
    "date-time": "2024-01-01T09:00:00.000Z",
    "date": "2024-01-01",
    "email": "someone@example.com",
    "uri": "https://example.com/sandbox",
    "url": "https://example.com/sandbox",
    "binary": "sandbox-file",
}
PLAIN_STRING = "sandbox"
SCALARS = {"integer": 1, "number": 1, "boolean": True}


def fits(doc, schema, value):
    """True when ``value`` breaks nothing in ``schema`` (as the request validator checks it)."""
    found = []
    _check_value(doc, schema, value, "value", found, required=True)
    return not found


def value_for(doc, schema, every_property=False, depth=0):
    """A value that fits ``schema`` (None when the schema says nothing about its value)."""
    schema = _flatten(doc, schema)
    if depth > MAX_DEPTH // 4 or not schema:
        return None
    if schema.get("example") not in (None, "") and fits(doc, schema, schema["example"]):
        example = copy.deepcopy(schema["example"])
        if not (isinstance(example, dict) and every_property and schema.get("properties")):
            return example
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return copy.deepcopy(enum[0])
    branches = schema.get("anyOf") or schema.get("oneOf")
    if isinstance(branches, list) and branches:
        return value_for(doc, branches[0], every_property, depth + 1)
    kind = _declared_type(schema)
    if kind == "array":
        item = value_for(doc, schema.get("items") or {}, every_property, depth + 1)
        return [] if item is None else [item]
    if kind == "object" or (kind is None and schema.get("properties")):
        return object_for(doc, schema, every_property, depth)
    if kind == "string":
        return STRING_BY_FORMAT.get(schema.get("format"), PLAIN_STRING)
    return copy.deepcopy(SCALARS.get(kind))


def object_for(doc, schema, every_property=False, depth=0):
    """An object with ``schema``'s required properties (or all of them), each a fitting value."""
    properties = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
    required = schema.get("required") if isinstance(schema.get("required"), list) else []
    result = {}
    if isinstance(schema.get("example"), dict):
        result = {k: v for k, v in copy.deepcopy(schema["example"]).items()
                  if not properties or (k in properties and v is not None and fits(doc, properties[k], v))}
    for name, prop in properties.items():
        if name in result or not (every_property or name in required):
            continue
        value = value_for(doc, prop, every_property, depth + 1)
        if value is not None or name in required:
            result[name] = value
    return result


def schema_at(doc, schema, dotted):
    """The schema of the field ``dotted`` (``a.b``) inside ``schema``, or {} when it has none."""
    node = _flatten(doc, schema)
    for part in dotted.split(".") if dotted else ():
        if _declared_type(node) == "array":
            node = _flatten(doc, node.get("items") or {})
        properties = node.get("properties") if isinstance(node.get("properties"), dict) else {}
        node = _flatten(doc, properties.get(part) or {})
    return node


def request_schema(op):
    """The JSON schema of spec operation ``op``'s body, or {}."""
    content = ((op.body or {}).get("content") or {})
    return (content.get("application/json") or {}).get("schema") or {}


def multipart_schema(op):
    """The ``multipart/form-data`` schema of ``op``'s body, or {}."""
    content = ((op.body or {}).get("content") or {})
    return (content.get("multipart/form-data") or {}).get("schema") or {}


def response_schema(op):
    """The JSON schema of ``op``'s first documented success answer, or {}."""
    responses = op.spec.get("responses") or {}
    for status in SUCCESS_STATUSES:
        answer = _deref(op.doc, responses.get(status) or {})
        schema = ((answer.get("content") or {}).get("application/json") or {}).get("schema")
        if schema:
            return schema
    return {}
