"""Zapier input and output fields for a catalog record.

Inputs: the record's inputs as the app presents them (``zapier_app.presentation``: labels,
help, human choice labels, internal settings hidden), with dropdowns and search-powered fields
from ``zapier_app.choices``. Inputs Zapier users never fill are left out: the location (the
connection gives it) and the numbered custom-field slots (replaced by the location's own
custom fields, loaded when the step is set up). Required fields come first.

Outputs: the keys of the record's sample as the service answers it, plus, for records whose
items carry custom fields, the location's custom fields by name (loaded like the inputs).

``DYNAMIC_FIELDS`` is Zapier's placeholder for a function: ``index.js`` replaces it with one
that asks ``/zapier/fields/<key>`` for the connection's custom fields. Pure: no I/O.
"""

import json
import re

from zapier_app import choices, presentation

DYNAMIC_FIELDS = "$func$2$f$"

INPUT_TYPES = {
    "string": "string",
    "text": "text",
    "integer": "integer",
    "number": "number",
    "boolean": "boolean",
    "datetime": "datetime",
    "json": "json",
    # Zapier hands a file as a URL it hosts; the service fetches it (ghl/file_fetch.py).
    "file": "file",
}

ISO_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")
WORD_BREAK = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|_+")
ACRONYMS = {"id": "ID", "ghl": "GHL", "url": "URL", "dnd": "DND", "html": "HTML", "ids": "IDs"}


def label_from_key(key):
    words = [w for w in WORD_BREAK.split(key) if w]
    return " ".join(ACRONYMS.get(w.lower(), w[:1].upper() + w[1:]) for w in words) or key


def choice_text(value):
    return json.dumps(value) if isinstance(value, bool) else str(value)


# ----------------------------------------------------------------------------- inputs


def shown_inputs(record):
    """``[(catalog input, presentation overrides)]`` of the inputs a Zap builder sees, required first.
    A search whose only input is the location (Find Location by ID) shows it: there it is what
    the user looks up, the connection's location when left blank."""
    shown = []
    for field in record["inputs"]:
        if field.get("in") == "custom_fields":
            continue
        overrides = presentation.field_presentation(record, field)
        if not overrides.get("hidden"):
            shown.append((field, overrides))
    if record["kind"] != "search" or any(not field.get("location") for field, _ in shown):
        shown = [(field, overrides) for field, overrides in shown if not field.get("location")]
    return sorted(shown, key=lambda pair: not _required(pair[0]))


def _required(field):
    # The service fills blank inputs from their defaults (or from the input named by
    # ``default_input``), so none of them needs the user.
    return bool(field.get("required")) and field.get("default") is None and not field.get("default_input")


def input_field(record, field, overrides, catalog, kind):
    """One catalog input as a Zapier input field; ``kind``: how the app presents the record."""
    zapier = {"key": field["key"], "label": field["label"], "type": INPUT_TYPES[field.get("type", "string")],
              "required": _required(field) and not field.get("location")}
    if field.get("help_text"):
        zapier["helpText"] = field["help_text"][:1000]
    if field.get("list"):
        zapier["list"] = True
    if field.get("choices"):
        zapier["choices"] = [choice_text(c) for c in field["choices"]]
    if field.get("default") is not None:
        zapier["default"] = choice_text(field["default"])
    zapier.update({k: v for k, v in overrides.items() if k not in ("hidden", "location")})
    if zapier.get("helpText"):
        zapier["helpText"] = zapier["helpText"][:1000]
    else:
        zapier.pop("helpText", None)  # the label says it all
    if not zapier.get("choices"):
        zapier.update(choices.dropdown_for(record, field, catalog, kind=kind) or {})
    return zapier


def input_fields(record, catalog, kind):
    """The record's Zapier input fields; a record that writes custom fields ends with the
    placeholder that loads them from the connection's location."""
    fields, pickers = [], {}
    for field, overrides in shown_inputs(record):
        fields.append(input_field(record, field, overrides, catalog, kind))
        pickers.update((p["key"], p) for p in choices.picker_fields(record, field, catalog))
    fields.extend(pickers.values())
    if (record.get("custom_fields") or {}).get("write"):
        fields.append(DYNAMIC_FIELDS)
    return fields


def body_template(record):
    """The shorthand request body: every input the step shows, as Zapier renders it."""
    return {field["key"]: "{{bundle.inputData.%s}}" % field["key"] for field, _ in shown_inputs(record)}


# ----------------------------------------------------------------------------- outputs


def _output_type(value):
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str) and ISO_DATETIME.match(value):
        return "datetime"
    return "string"


def output_fields(sample, labels=None):
    """Output fields for the keys of an answered ``sample``: scalars, lists of scalars, and the
    scalars of nested objects (Zapier's ``parent__child``)."""
    labels = labels or {}
    fields = []

    def add(key, value, label):
        if isinstance(value, dict):
            for sub_key, sub_value in value.items():
                if not isinstance(sub_value, (dict, list)):
                    add(f"{key}__{sub_key}", sub_value, f"{label} {label_from_key(sub_key)}")
            return
        field = {"key": key, "label": labels.get(key, label)}
        if isinstance(value, list):
            if not value or any(isinstance(v, (dict, list)) for v in value):
                return
            field["list"] = True
            if len({_output_type(v) for v in value}) > 1:
                value = None  # values of mixed types (a search cursor): no one type fits them
            else:
                value = value[0]
        if value is not None:
            field["type"] = _output_type(value)
        fields.append(field)

    for key, value in sample.items():
        if key == "custom_fields":
            continue  # named by the location's own fields (DYNAMIC_FIELDS)
        add(key, value, label_from_key(key))
    return fields


def record_output_fields(record, sample, labels=None):
    """``output_fields`` of the sample, plus the custom fields by name for records whose items carry them."""
    fields = output_fields(sample, labels)
    if record.get("custom_fields"):
        fields.append(DYNAMIC_FIELDS)
    return fields
