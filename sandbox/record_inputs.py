"""Valid inputs for a catalog record, built from its inputs and GHL's spec (for driving every operation).

``valid_inputs(record, validator, ids)`` answers ``{input key: value}`` for every required input
of ``record`` the service does not fill itself (the location comes from ``X-Location-Id``;
custom fields are tests/test_custom_fields.py's): a choice is the first choice, a ``json``
input an object (or list) built from the spec's schema of that field with its required
properties, a scalar the spec's example when it fits, else a plain value of the input's
type. Path inputs take the id ``ids`` names for them (default ``path_id(key)``).
"""

from sandbox.seed import CALENDAR_ID, COMPANY_ID, LOCATION_ID, PIPELINE_ID
from sandbox.spec_values import fits, request_schema, schema_at, value_for

FILE_URL = "https://files.example.com/sandbox-upload.txt"
DATETIME = "2024-05-01T09:30:00+00:00"
PLAIN = {"string": "sandbox", "text": "Some sandbox text", "integer": 1, "number": 1, "boolean": True,
         "datetime": DATETIME, "file": FILE_URL}
PYTHON_TYPES = {"string": str, "text": str, "integer": int, "number": (int, float), "boolean": bool}
SKIPPED_PLACES = ("custom_fields", "watch")
# A ``json`` input whose spec schema says nothing (``properties`` of a custom object record).
EMPTY_SCHEMA_OBJECT = {"name": "sandbox"}
# Path values that name seed data by another field than its id (``/associations/key/{key_name}``).
SEEDED_PATH_VALUES = {"key_name": "contact_business", "objectKey": "contact"}
# Text inputs whose value the sandbox checks (ids of its seed records; numbers GHL types as
# strings in the spec but parses): by the field's name, before the spec's example.
TEXT_BY_NAME = {
    "contactId": "sandbox-contact-1", "contact_id": "sandbox-contact-1",
    "conversationId": "sandbox-conversation-1", "calendarId": CALENDAR_ID, "userId": "sandbox-user-1",
    "pipelineId": PIPELINE_ID, "pipeline_id": PIPELINE_ID, "companyId": COMPANY_ID,
    "locationId": LOCATION_ID, "location_id": LOCATION_ID, "altId": LOCATION_ID,
    "limit": "10", "pageLimit": "10", "offset": "0", "skip": "0", "page": "1",
}


def path_id(key):
    """The id a test puts in the sandbox for path input ``key``."""
    return f"sandbox-{key}"


def names_a_record(field):
    """True for a path input whose value must be a record put in the sandbox first (not a
    choice such as ``resourceType``, not the location, not seed data found by another field)."""
    name = field.get("field") or field["key"]
    return not (field.get("choices") or field.get("location") or name in SEEDED_PATH_VALUES)


def spec_operation(record, validator):
    """The spec operation a record was made from, or None (specs absent)."""
    spec = record.get("spec") or {}
    return validator.operation_named(spec.get("app"), spec.get("operation_id")) if validator.enabled else None


def field_schema(op, field):
    """The spec's schema of one record input, or {}."""
    if op is None:
        return {}
    name = field.get("field") or field["key"]
    if field["in"] == "body":
        return schema_at(op.doc, request_schema(op), name)
    param = op.params.get(field["in"], {}).get(name) or {}
    return param.get("schema") or {}


def value_of(field, op, ids=None):
    """A valid value for one input."""
    if field["in"] == "path" and not field.get("choices"):
        name = field.get("field") or field["key"]
        return (ids or {}).get(field["key"], SEEDED_PATH_VALUES.get(name, path_id(field["key"])))
    if field.get("choices"):
        choice = field["choices"][0]
        value = choice.get("value") if isinstance(choice, dict) else choice
    else:
        schema = field_schema(op, field)
        value = value_for(op.doc, schema) if op is not None and schema else None
        if field["type"] == "json":
            if not value and op is not None and schema:
                value = value_for(op.doc, schema, every_property=True)
            value = value or dict(EMPTY_SCHEMA_OBJECT)
        elif field["type"] in ("string", "text") and (field.get("field") or field["key"]) in TEXT_BY_NAME:
            value = TEXT_BY_NAME[field.get("field") or field["key"]]
        elif not _is_type(field["type"], value) or (op is not None and not fits(op.doc, schema, value)):
            value = PLAIN[field["type"]]
        if field["type"] in ("integer", "number"):
            value = max(value, field.get("min", value) if field.get("min") is not None else value)
            value = min(value, field["max"]) if field.get("max") is not None else value
    if field.get("list") and not isinstance(value, list):
        value = [value]
    return value


def _is_type(kind, value):
    if kind not in PYTHON_TYPES or value is None or (isinstance(value, bool) and kind != "boolean"):
        return False
    return isinstance(value, PYTHON_TYPES[kind])


def valid_inputs(record, validator, ids=None, file_url=FILE_URL):
    """``{key: value}`` of the record's required inputs (see the module docstring); a ``file``
    input is ``file_url`` (a sandbox's ``/_sandbox/files/<name>``, for one the service can fetch)."""
    op = spec_operation(record, validator)
    fields = {f["key"]: f for f in record["inputs"]
              if f["in"] not in SKIPPED_PLACES and not f.get("location")}
    inputs = {key: value_of(f, op, ids) for key, f in fields.items() if f.get("required") or f["in"] == "path"}
    for key in required_by_rules(record, inputs):
        if key in fields:
            inputs[key] = value_of(fields[key], op, ids)
    return {key: file_url if fields[key]["type"] == "file" else value for key, value in inputs.items()}


def required_by_rules(record, inputs):
    """The first input of each ``requires_when`` group that applies to ``inputs`` and that they leave empty."""
    wanted = []
    for rule in record.get("requires_when") or ():
        source = rule.get("input")
        if source is not None and str(inputs.get(source)) not in {str(v) for v in rule["values"]}:
            continue
        wanted += [group[0] for group in rule["requires"] if not any(k in inputs for k in group)]
    return wanted
