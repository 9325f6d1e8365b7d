"""Turn an operation record and its cleaned inputs into the exact GHL request.

A record with ``body_format: multipart`` (GHL's uploads) becomes a form instead of a JSON body:
its ``file`` inputs, already fetched (``actions.execute``), are file parts named by the input's
``field``, where ``{file_id}`` is a fresh random id per file and ``{<key>}`` the value of a
``part_name`` input; every other body input is a text field (GHL's form fields are text:
true/false, numbers as written, objects and lists as JSON).
"""

import json
import re
import uuid
from dataclasses import dataclass, field
from urllib.parse import quote, urlencode

from catalog.inputs import FILE_ID_SLOT, PART_NAME_SLOT, InvalidInput
from ghl.time_window import relative_input_keys, window_params

PATH_PARAM = re.compile(r"{([^}]+)}")
# GHL's URLs stay well inside what proxies accept (8 KiB request lines are common).
MAX_URL_CHARS = 4096


@dataclass
class GhlRequest:
    method: str
    path: str
    version: str
    query: dict = field(default_factory=dict)
    body: object = None
    scopes: tuple = ()
    # A multipart record's text fields ({name: text}; None for a JSON request) and file parts
    # ((part name, ghl.file_fetch.FetchedFile) pairs).
    form: dict = None
    files: tuple = ()

    @property
    def multipart(self):
        """The form as (name, text) and (name, (filename, bytes, content type)) parts, in that
        order (what ``GhlClient.request`` sends as multipart/form-data); None for a JSON request."""
        if self.form is None:
            return None
        return list(self.form.items()) + [(name, (f.filename, f.content, f.content_type)) for name, f in self.files]


def encode_segment(value):
    """One path segment, percent-encoded so that no value can add segments, a query or a host."""
    return quote(str(value), safe="")


def query_value(value):
    """Query strings spell booleans as GHL does (``true``), not as Python does (``True``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return [query_value(v) for v in value]
    return value


def query_string_chars(query):
    return len(urlencode(query, doseq=True)) if query else 0


def check_url_length(path, query, shares):
    """InvalidInput when ``path`` and ``query`` make a URL over MAX_URL_CHARS, naming the input
    with the largest share (``shares``: input key -> characters it adds)."""
    if len(path) + 1 + query_string_chars(query) <= MAX_URL_CHARS:
        return
    key = max(shares, key=shares.get)
    raise InvalidInput({key: f"makes the GHL request's URL longer than {MAX_URL_CHARS:,} characters"})


def _nest(body, dotted, value):
    parts = dotted.split(".")
    node = body
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


# Where ``ghl.custom_fields.resolve_custom_field_inputs`` leaves the resolved write list.
RESOLVED_CUSTOM_FIELDS = "_custom_field_writes"


def custom_fields_list(record, inputs):
    """GHL's ``customFields`` write list: the one ``resolve_custom_field_inputs`` built from the
    location's definitions (``[{"id", "field_value"}]``, values typed). Inputs that were not
    resolved (a caller with no GHL access to definitions) fall back to the numbered slots as
    given, by id, or by key for a dotted field key."""
    if RESOLVED_CUSTOM_FIELDS in inputs:
        return list(inputs[RESOLVED_CUSTOM_FIELDS])
    unresolved = sorted(k for k in inputs if k.startswith("cf_") or k == "customFields")
    if unresolved and (record.get("custom_fields") or {}).get("write"):
        # Never drop a value silently: these need the location's definitions to be written.
        raise InvalidInput({k: "custom field values are not accepted here" for k in unresolved})
    entries = []
    for n in range(1, record.get("custom_field_slots", 0) + 1):
        ident, value = inputs.get(f"custom_field_{n}_id"), inputs.get(f"custom_field_{n}_value")
        if ident is None or value is None:
            continue
        # Field keys look like "contact.my_field"; ids never contain a dot.
        entries.append({("key" if "." in ident else "id"): ident, "field_value": value})
    return entries


def form_text(value):
    """A multipart form field's text for an input value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return str(value)


def part_name(template, inputs):
    """A file part's name: ``template`` with ``{file_id}`` a fresh random id and ``{key}`` the
    value of the ``part_name`` input ``key``."""
    return PART_NAME_SLOT.sub(lambda m: uuid.uuid4().hex if m.group(1) == FILE_ID_SLOT else str(inputs[m.group(1)]),
                              template)


def build_form(record, inputs):
    """(text fields, file parts) for a multipart ``record``; file inputs hold FetchedFile values."""
    form, files = {}, []
    for spec in record["inputs"]:
        if spec["in"] != "body" or spec["key"] not in inputs:
            continue
        value = inputs[spec["key"]]
        name = spec.get("field", spec["key"])
        if spec["type"] == "file":
            for fetched in value if isinstance(value, list) else [value]:
                if isinstance(fetched, str):
                    raise ValueError(f"file input {spec['key']} must be fetched before the request is built")
                files.append((part_name(name, inputs), fetched))
            continue
        if spec.get("join") and isinstance(value, list):
            value = spec["join"].join(str(v) for v in value)
        form[name] = form_text(value)
    custom_fields = custom_fields_list(record, inputs)
    if custom_fields:
        form["customFields"] = form_text(custom_fields)
    return form, tuple(files)


def build_request(record, inputs, now=None):
    """The GhlRequest for ``record`` with validated ``inputs``.

    A record with a ``window`` gets its time range computed here, at ``now`` (epoch seconds;
    ``ghl.time_window.clock`` when None), for every request: polls, samples, REST-hook polls
    and actions alike. The window's day-count inputs are not sent; a range parameter the
    inputs give explicitly is sent as given."""
    path_values = {}
    query = {}
    body = {}
    shares = {}
    consumed = relative_input_keys(record)
    multipart = record.get("body_format") == "multipart"
    for spec in record["inputs"]:
        if spec["key"] not in inputs or spec["key"] in consumed or (multipart and spec["in"] == "body"):
            continue
        value = inputs[spec["key"]]
        if spec.get("join") and isinstance(value, list):
            value = spec["join"].join(str(v) for v in value)  # GHL takes this list as one string
        name = spec.get("field", spec["key"])
        if spec["in"] == "path":
            path_values[name] = encode_segment(value)
            shares[spec["key"]] = len(path_values[name])
        elif spec["in"] == "query":
            query[name] = query_value(value)
            shares[spec["key"]] = query_string_chars({name: query[name]})
        elif spec["in"] == "body":
            _nest(body, name, value)
    custom_fields = [] if multipart else custom_fields_list(record, inputs)
    if custom_fields:
        body["customFields"] = custom_fields
    query.update(window_params(record, inputs, now))
    path = PATH_PARAM.sub(lambda m: path_values[m.group(1)], record["path"])
    if shares:
        check_url_length(path, query, shares)
    # A DELETE whose spec requires a JSON body gets ``{}`` when no input fills it; a POST whose
    # spec takes no body (body_format none) sends none.
    takes_body = record.get("body_format") != "none" and (
        record["method"] in ("POST", "PUT", "PATCH") or bool(body) or record.get("body_required", False))
    if takes_body and record.get("body_as_list"):
        body = [body]
    form, files = build_form(record, inputs) if multipart else (None, ())
    return GhlRequest(
        method=record["method"],
        path=path,
        version=record.get("version"),
        query=query,
        body=body if takes_body and not multipart else None,
        scopes=tuple(record.get("scopes", ())),
        form=form,
        files=files,
    )
