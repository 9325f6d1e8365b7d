"""Checks every request against GHL's official OpenAPI specs (``../shared/ghl-openapi``).

``SpecValidator(spec_dir).violations(method, path, query, headers, json_body)`` names each
way a request breaks the spec: no such operation (method + path), a missing or unknown
``Version``, missing required path/query parameters, unknown query parameters, parameter
values of the wrong type or outside their enum, a missing or undeclared body, and in a JSON
body: missing required fields, unknown fields, wrong types (string, number, integer, boolean,
array, object), values outside an enum, and the same inside nested objects and array items.

Schemas are OpenAPI 3.0 as GHL writes them, checked leniently: local ``$ref``s are followed,
``allOf`` parts are merged, ``anyOf``/``oneOf`` accept a value any branch accepts, ``null`` is
accepted where the field is optional or ``nullable``, formats, lengths and ranges are not
checked, and keywords or types this module does not know are ignored. An enum written as one
list of values (``enum: [[...]]``, a slip of GHL's generator) is read as those values.
A ``multipart/form-data`` request (the five uploads) is checked part by part: required parts
present, no undeclared parts, text parts of the declared type. (A library was not used:
``jsonschema_rs``, installed with schemathesis, would need the specs rewritten first (OpenAPI's
``nullable``, lenient ``oneOf``, GHL's invalid types such as ``"any"``) and names problems less
plainly.)

Spec errors the service deliberately works around are in ``ALLOWANCES``, each with its reason.
The specs are read once per directory; when the directory is absent the validator is off
(``enabled`` false, ``status`` says why) and finds nothing.
"""

import collections
import functools
import json
import math
import os
import re
import threading
import weakref
from pathlib import Path
from urllib.parse import unquote

DEFAULT_SPEC_DIR = Path(__file__).resolve().parents[2] / "shared" / "ghl-openapi"
METHODS = ("get", "post", "put", "patch", "delete")
MULTIPART = "multipart/form-data"
MAX_DEPTH = 40  # recursive schemas (a filter group of filters) are followed this deep


# -- allowances: spec errors the service works around on purpose --------------------------------
# One row per allowance: (method, spec path template, where, reason). ``where`` names what is
# allowed as the violation names it (``query.sortBy``, ``body.customFields[].field_value``,
# ``Version``, ``path``, ``body``), ``*`` matching anything; array indices are written ``[]``.
# Keep each reason pointing at its evidence (../shared/ghl-api-notes.md or a GHL issue).
ALLOWANCES = [
    # Rows look like ("GET", "/contacts/", "query.sortBy", "undocumented sort GHL honours (evidence)"),
    # or, for an operation GHL serves but the specs leave out or misspell (where "path"):
    # ("GET", "/some/{id}/path", "path", "live but undocumented (evidence)").
    ("POST", "/conversations/messages/upload", "body.attachmentUrls",
     "the operation's own description says the files go in the part fileAttachment (what the record "
     "sends) and that GHL answers their URLs; its schema, which documents no file part, requires "
     "attachmentUrls, URLs of files already hosted, which an upload does not have"),
]


class Operation:
    """One spec operation, compiled: its path matcher, parameters, Version values and body."""

    def __init__(self, app, doc, method, template, spec):
        self.app, self.doc, self.method, self.template, self.spec = app, doc, method.upper(), template, spec
        self.segments = _segments(template)
        self.literal_count = sum(1 for s in self.segments if not _is_template(s))
        params = [_deref(doc, p) for p in spec.get("parameters", [])]
        self.params = {place: {p["name"]: p for p in params if p.get("in") == place}
                       for place in ("path", "query", "header")}
        version = {k.lower(): v for k, v in self.params["header"].items()}.get("version")
        self.versions = ((version or {}).get("schema") or {}).get("enum") if version else None
        self.body = spec.get("requestBody") and _deref(doc, spec["requestBody"])

    @property
    def name(self):
        return f"{self.method} {self.template}"

    def match(self, segments):
        """``{name: value}`` of the path's templated segments when ``segments`` fit, else None."""
        if len(segments) != len(self.segments):
            return None
        values = {}
        for want, got in zip(self.segments, segments):
            if _is_template(want):
                if not got:
                    return None
                values[want[1:-1]] = got
            elif want != got:
                return None
        return values


class SpecValidator:
    def __init__(self, spec_dir=None):
        self.spec_dir = Path(spec_dir or os.environ.get("GHL_OPENAPI_DIR") or DEFAULT_SPEC_DIR)
        self.operations = _load_operations(str(self.spec_dir.resolve()))
        self.enabled = bool(self.operations)
        self.status = (f"on: {len(self.operations)} operations from {self.spec_dir}" if self.enabled
                       else f"off: no GHL OpenAPI specs in {self.spec_dir}/apps")
        self._by_length = {}
        self._by_id = {(op.app, op.spec.get("operationId")): op for op in self.operations}
        for op in self.operations:
            self._by_length.setdefault(len(op.segments), []).append(op)
        for ops in self._by_length.values():  # literal segments win over templated ones
            ops.sort(key=lambda op: -op.literal_count)

    def operation_named(self, app, operation_id):
        """The operation ``operation_id`` of spec ``app`` (a record's ``spec``), or None."""
        return self._by_id.get((app, operation_id))

    def operation_for(self, method, path):
        """(operation, path values) for ``method path``, or (None, methods the path has)."""
        segments = [unquote(s) for s in _segments(path)]
        path_methods = []
        for op in self._by_length.get(len(segments), []):
            values = op.match(segments)
            if values is None:
                continue
            if op.method == method.upper():
                return op, values
            path_methods.append(op.method)
        return None, path_methods

    def violations(self, method, path, query=None, headers=None, json_body=None, form=None):
        """Each way ``method path`` with these query values ({name: value or [values]}),
        headers and parsed JSON body (None: no body) or multipart ``form`` (``{"form": {name:
        [values]}, "files": {name: [...]}}``, ``sandbox.uploads``) breaks the spec, as plain sentences."""
        return [text for _, text in self.problems(method, path, query, headers, json_body, form)[1]]

    def problems(self, method, path, query=None, headers=None, json_body=None, form=None):
        """(operation or None, [(where, text)]) after the allowances."""
        if not self.enabled:
            return None, []
        op, values = self.operation_for(method, path)
        if op is None:
            if any(m == method.upper() and w == "path" and _template_fits(t, path) for m, t, w, _ in ALLOWANCES):
                return None, []
            others = f" (the path takes {', '.join(sorted(set(values)))})" if values else ""
            return None, [("path", f"no such operation: {method.upper()} {path}{others}")]
        found = []
        _check_version(op, headers or {}, found)
        _check_params(op, "path", {k: [v] for k, v in values.items()}, found)
        _check_params(op, "query", _query_lists(query or {}), found)
        if form is not None:
            _check_form(op, form, found)
        else:
            _check_body(op, json_body, found)
        return op, [(where, text) for where, text in found if not _allowed(op, where)]


@functools.lru_cache(maxsize=None)
def _load_operations(spec_dir):
    apps = Path(spec_dir) / "apps"
    operations = []
    for file in sorted(apps.glob("*.json")) if apps.is_dir() else []:
        with open(file, encoding="utf-8") as handle:
            doc = json.load(handle)
        for template, item in (doc.get("paths") or {}).items():
            for method, spec in item.items():
                if method in METHODS and isinstance(spec, dict):
                    operations.append(Operation(file.stem, doc, method, template, spec))
    return tuple(operations)


def _segments(path):
    return path.split("?", 1)[0].rstrip("/").split("/")[1:]  # GHL (Express) ignores a trailing slash


def _template_fits(template, path):
    want, got = _segments(template), [unquote(s) for s in _segments(path)]
    return len(want) == len(got) and all((_is_template(w) and g) or w == g for w, g in zip(want, got))


def _is_template(segment):
    return segment.startswith("{") and segment.endswith("}")


def _query_lists(query):
    return {k: list(v) if isinstance(v, (list, tuple)) else [v] for k, v in query.items()}


def _allowed(op, where):
    plain = re.sub(r"\[\d+\]", "[]", where)
    for method, template, pattern, _reason in ALLOWANCES:
        if method == op.method and template == op.template:
            if re.fullmatch(re.escape(pattern).replace(r"\*", ".*"), plain):
                return True
    return False


def _deref(doc, node, depth=0):
    """``node`` with local ``$ref``s followed; {} where a reference cannot be followed."""
    while isinstance(node, dict) and "$ref" in node and depth < MAX_DEPTH:
        ref, depth = node["$ref"], depth + 1
        if not isinstance(ref, str) or not ref.startswith("#/"):
            return {}
        target = doc
        for part in ref[2:].split("/"):
            target = target.get(part.replace("~1", "/").replace("~0", "~")) if isinstance(target, dict) else None
        node = target if isinstance(target, dict) else {}
    return node if isinstance(node, dict) else {}


def _flatten(doc, schema, depth=0):
    """``schema`` dereferenced with its ``allOf`` parts merged into it (properties, required)."""
    schema = _unnested_enum(_deref(doc, schema))
    if not isinstance(schema.get("allOf"), list) or depth > MAX_DEPTH:
        return schema
    merged = {k: v for k, v in schema.items() if k != "allOf"}
    merged["properties"] = dict(schema.get("properties") or {})
    merged["required"] = list(schema["required"]) if isinstance(schema.get("required"), list) else []
    for part in schema["allOf"]:
        part = _flatten(doc, part, depth + 1)
        merged["properties"].update(part.get("properties") or {})
        if isinstance(part.get("required"), list):
            merged["required"] += part["required"]
        for key, value in part.items():
            merged.setdefault(key, value)
    return merged


def _unnested_enum(schema):
    """GHL's generator writes an enum-typed field as ``enum: [[...values]]`` with a wrong type
    (store's ``ShippingZoneCountryDto.code``: ``"type": "number", "enum": [["US", "CA", ...]]``):
    no value fits that, so it is read as ``enum: [...values]`` of the values' own type."""
    enum = schema.get("enum")
    if not (isinstance(enum, list) and len(enum) == 1 and isinstance(enum[0], list) and enum[0]):
        return schema
    values = enum[0]
    kind = {bool: "boolean", str: "string", int: "number", float: "number"}.get(type(values[0]))
    if kind is None or not all(isinstance(v, type(values[0])) for v in values):
        return schema
    return {**schema, "type": kind, "enum": values}


# -- Version, parameters, body ------------------------------------------------------------------------

def _check_version(op, headers, found):
    if not op.versions:
        return
    sent = next((v for k, v in headers.items() if k.lower() == "version"), None)
    if sent is None:
        found.append(("Version", f"missing Version header (the spec's: {', '.join(op.versions)})"))
    elif sent not in op.versions:
        found.append(("Version", f"Version {sent!r} is not the spec's ({', '.join(op.versions)})"))


def _check_params(op, place, sent, found):
    declared = op.params[place]
    for name, param in declared.items():
        values = sent.get(name)
        if not values or values == [""]:
            if param.get("required"):
                found.append((f"{place}.{name}", f"missing required {place} parameter {name!r}"))
            continue
        schema = _flatten(op.doc, param.get("schema") or {})
        if schema.get("type") != "array" and len(values) > 1:
            found.append((f"{place}.{name}", f"{place} parameter {name!r} is sent {len(values)} times"))
        item = _flatten(op.doc, schema.get("items") or {}) if schema.get("type") == "array" else schema
        for value in values:
            problem = _text_problem(item, str(value))
            if problem:
                found.append((f"{place}.{name}", f"{place} parameter {name!r}={value!r} {problem}"))
    if place == "query":
        for name in sent:
            if name not in declared:
                found.append((f"query.{name}", f"unknown query parameter {name!r}"))


def _text_problem(schema, text):
    """Why ``text`` (a path or query value) does not fit ``schema``, or None."""
    kind = schema.get("type")
    if kind == "integer" and not re.fullmatch(r"-?\d+", text):
        return "is not an integer"
    if kind == "number":
        try:
            if not math.isfinite(float(text)):
                raise ValueError
        except ValueError:
            return "is not a number"
    if kind == "boolean" and text not in ("true", "false"):
        return "is not true or false"
    enum = schema.get("enum")
    if isinstance(enum, list) and enum and text not in [_as_text(e) for e in enum]:
        return f"is not one of {enum}"
    return None


def _as_text(value):
    return json.dumps(value) if isinstance(value, bool) or value is None else str(value)


def _check_body(op, body, found):
    content = (op.body or {}).get("content") or {}
    if "application/json" not in content:
        takes = f"a {', '.join(content)} body" if content else "no body"
        if body is not None:
            found.append(("body", f"sends a JSON body where the spec takes {takes}"))
        elif content and (op.body or {}).get("required"):
            found.append(("body", f"missing body (the spec requires {takes})"))
        return
    if body is None:
        if op.body.get("required"):
            found.append(("body", "missing JSON body (the spec requires one)"))
        return
    schema = (content["application/json"] or {}).get("schema") or {}
    _check_value(op.doc, schema, body, "body", found, required=True,
                 allowed=lambda where: _allowed(op, where))


def _check_form(op, form, found):
    """A multipart request: the spec must take multipart, with every required part present and
    no undeclared part. File parts are checked against the declared parts only when the schema
    declares a file (``format: binary``): two of GHL's five upload schemas leave the file part
    out although their operation takes one (conversations' description names it ``fileAttachment``)."""
    content = (op.body or {}).get("content") or {}
    if MULTIPART not in content:
        takes = f"a {', '.join(content)} body" if content else "no body"
        found.append(("body", f"sends a multipart body where the spec takes {takes}"))
        return
    schema = _flatten(op.doc, (content[MULTIPART] or {}).get("schema") or {})
    properties = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
    fields, files = form.get("form") or {}, form.get("files") or {}
    for name in schema.get("required") or []:
        if name not in fields and name not in files:
            found.append((f"body.{name}", f"missing required part {name!r}"))
    declares_file = any(_flatten(op.doc, p).get("format") == "binary" for p in properties.values())
    for name in list(fields) + (list(files) if declares_file else []):
        if properties and name not in properties and schema.get("additionalProperties") is not True:
            found.append((f"body.{name}", f"unknown part {name!r}"))
    for name, values in fields.items():
        item = _flatten(op.doc, properties.get(name) or {})
        if item.get("format") == "binary":
            found.append((f"body.{name}", f"part {name!r} should be a file, not a text field"))
            continue
        if item.get("type") == "array":
            item = _flatten(op.doc, item.get("items") or {})
        for value in values:
            problem = _text_problem(item, str(value))
            if problem:
                found.append((f"body.{name}", f"part {name!r}={value!r} {problem}"))


_TYPES = {
    "string": lambda v: isinstance(v, str),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "integer": lambda v: (isinstance(v, int) and not isinstance(v, bool))
    or (isinstance(v, float) and v.is_integer()),
    "boolean": lambda v: isinstance(v, bool),
    "array": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
}


def _check_value(doc, schema, value, where, found, required=False, depth=0, allowed=lambda where: False):
    """Append (where, text) for each way ``value`` breaks ``schema``; an anyOf/oneOf branch
    fits when all it finds is ``allowed``."""
    schema = _flatten(doc, schema)
    if depth > MAX_DEPTH or not schema:
        return
    if value is None:
        if required and not schema.get("nullable") and schema.get("type") in _TYPES:
            found.append((where, f"{where} is null"))
        return
    branches = [b for key in ("anyOf", "oneOf") for b in (schema.get(key) or [])]
    if branches:
        attempts = []
        for branch in branches:
            attempt = []
            _check_value(doc, branch, value, where, attempt, required, depth + 1, allowed)
            attempt = [problem for problem in attempt if not allowed(problem[0])]
            if not attempt:
                break
            attempts.append(attempt)
        else:
            closest = min(attempts, key=len)
            found.append((where, f"{where} fits none of the {len(branches)} allowed shapes "
                                 f"(closest: {closest[0][1]})"))
            return
    kind = _declared_type(schema)
    if kind in _TYPES and not _TYPES[kind](value):
        found.append((where, f"{where} should be {'an' if kind[0] in 'aeiou' else 'a'} {kind}, "
                             f"not {_json_type(value)} {_short(value)}"))
        return
    enum = schema.get("enum")
    if isinstance(enum, list) and enum and value not in enum:
        found.append((where, f"{where}={_short(value)} is not one of {enum}"))
    if isinstance(value, dict):
        properties = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
        needed = schema.get("required") if isinstance(schema.get("required"), list) else []
        for name in needed:
            if name not in value:
                found.append((f"{where}.{name}", f"missing required field {where}.{name}"))
        extra = schema.get("additionalProperties")
        for name, item in value.items():
            if name in properties:
                _check_value(doc, properties[name], item, f"{where}.{name}", found, name in needed, depth + 1,
                             allowed)
            elif isinstance(extra, dict):
                _check_value(doc, extra, item, f"{where}.{name}", found, False, depth + 1, allowed)
            elif properties and extra is not True:
                found.append((f"{where}.{name}", f"unknown field {where}.{name}"))
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for number, item in enumerate(value):
            _check_value(doc, schema["items"], item, f"{where}[{number}]", found, True, depth + 1, allowed)


def _declared_type(schema):
    """The schema's ``type``; except that GHL's generator writes ``"type": "object"`` for fields
    it could not type (dates, numbers, unions: about 90 in the specs, e.g. contacts'
    ``NumericField.field_value``, example 100): an ``object`` without properties whose
    ``example`` is not an object takes its type from the example (none when it is null)."""
    kind = schema.get("type")
    if (kind == "object" and "example" in schema and not isinstance(schema["example"], dict)
            and not schema.get("properties") and "additionalProperties" not in schema):
        example = schema["example"]
        return None if example is None else {bool: "boolean", str: "string", list: "array"}.get(
            type(example), "number")
    return kind


def _json_type(value):
    return {bool: "a boolean", str: "a string", int: "a number", float: "a number",
            list: "an array", dict: "an object"}.get(type(value), type(value).__name__)


def _short(value):
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


# -- what the sandbox keeps ---------------------------------------------------------------------------

class ViolationLog:
    """The sandbox's record of requests that broke the spec: the last ``size`` of them, each
    ``{method, path, operation, violations}``; ``strict`` makes the sandbox refuse them (422)."""

    def __init__(self, spec_dir=None, strict=False, size=1000):
        self.validator = SpecValidator(spec_dir)
        self.strict = strict
        self._lock = threading.Lock()
        self._entries = collections.deque(maxlen=size)
        self.total = 0
        _LOGS.add(self)

    def observe(self, method, path, query, headers, json_body, form=None):
        """The request's violations (recorded when there are any)."""
        op, found = self.validator.problems(method, path, query, headers, json_body, form)
        if found:
            entry = {"method": method, "path": path, "operation": op.name if op else None,
                     "app": op.app if op else None, "violations": [text for _, text in found]}
            with self._lock:
                self._entries.append(entry)
                self.total += 1
        return [text for _, text in found]

    def listed(self):
        with self._lock:
            return {"validator": self.validator.status, "strict": self.strict, "total": self.total,
                    "violations": [dict(e) for e in self._entries]}

    def clear(self):
        with self._lock:
            self._entries.clear()
            self.total = 0

    def take(self):
        """The recorded violations, oldest first; the log is empty afterwards."""
        with self._lock:
            entries = [dict(e) for e in self._entries]
            self._entries.clear()
            self.total = 0
        return entries


# Every ViolationLog of this process (every sandbox app), for the test suite's check after each test.
_LOGS = weakref.WeakSet()


def take_violations():
    """The violations every sandbox app of this process recorded since the last call, oldest
    first per app, each ``{method, path, operation, app, violations}``; the logs are emptied."""
    return [entry for log in list(_LOGS) for entry in log.take()]
