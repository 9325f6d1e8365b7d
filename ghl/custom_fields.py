"""A location's custom field definitions (GHL ``GET /locations/{id}/customFields``), cached briefly.

The cache is keyed by a keyed digest of the caller's token (``client.token_owner``), the location
and the model, so one tenant never reads definitions another tenant's token fetched. It is keyed
by the token rather than by ``credential_id``: an OAuth credential id is read from an unverified
JWT, and a forged token naming someone else's connection must not reach their cached fields.
"""

import copy
import decimal
import math
import mimetypes
import re
import threading
import time
import uuid
from collections import OrderedDict
from datetime import date, datetime
from urllib.parse import quote, unquote, urlsplit

from catalog.inputs import CUSTOM_FIELD_INPUT, CUSTOM_FIELDS_OBJECT, InvalidInput
from ghl.errors import GhlError
from ghl.request_builder import RESOLVED_CUSTOM_FIELDS

MODELS = ("contact", "opportunity")
DEFINITIONS_VERSION = "2021-07-28"
DEFINITIONS_SCOPES = ("locations/customFields.readonly",)
CACHE_SECONDS = 60.0
CACHE_ENTRIES = 2048
# A location with more fields than this is far beyond what GHL's UI allows; the rest are ignored.
MAX_FIELDS = 2000
DEFINITION_KEYS = ("id", "name", "fieldKey", "dataType", "picklistOptions", "model")


class DefinitionCache:
    """A bounded, time-limited, thread-safe map from (owner, location, model) to definitions."""

    def __init__(self, seconds=CACHE_SECONDS, entries=CACHE_ENTRIES, clock=time.monotonic):
        self.seconds = seconds
        self.entries = entries
        self.clock = clock
        self._items = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            found = self._items.get(key)
            if found is None:
                return None
            stored_at, definitions = found
            if self.clock() - stored_at >= self.seconds:
                del self._items[key]
                return None
            self._items.move_to_end(key)
            return copy.deepcopy(definitions)

    def put(self, key, definitions):
        with self._lock:
            self._items[key] = (self.clock(), copy.deepcopy(definitions))
            self._items.move_to_end(key)
            while len(self._items) > self.entries:
                self._items.popitem(last=False)

    def clear(self):
        with self._lock:
            self._items.clear()


CACHE = DefinitionCache()


def load_definitions(client, token, location_id, model, quick=False):
    """The location's custom field definitions of ``model`` ("contact" or "opportunity"): a list of
    {"id", "name", "fieldKey", "dataType", "picklistOptions", "model"} (GHL's GET
    /locations/{locationId}/customFields?model=...), cached in this process for about a minute per
    (credential, location, model) so a poll or an action costs at most one extra GHL call a minute."""
    if model not in MODELS:
        raise ValueError(f"custom fields belong to one of {MODELS}, not {model!r}")
    key = (client.token_owner(token), location_id, model)
    cached = CACHE.get(key)
    if cached is not None:
        return cached
    response = client.request("GET", "/locations/" + quote(location_id, safe="") + "/customFields", token,
                              version=DEFINITIONS_VERSION, query={"model": model}, scopes=DEFINITIONS_SCOPES,
                              quick=quick)
    definitions = _definitions_from(response.body, model)
    CACHE.put(key, definitions)
    return copy.deepcopy(definitions)


def _definitions_from(body, model):
    """The well-formed definitions of ``model`` in GHL's answer; malformed entries are skipped,
    and fields of another model are dropped even if GHL ignored the ``model`` filter."""
    listed = body.get("customFields") if isinstance(body, dict) else None
    definitions = []
    for field in listed if isinstance(listed, list) else []:
        if not isinstance(field, dict) or not isinstance(field.get("id"), str) or not field["id"]:
            continue
        if field.get("model") not in (None, model):
            continue
        options = field.get("picklistOptions")
        definitions.append({
            "id": field["id"],
            "name": field.get("name") if isinstance(field.get("name"), str) else field["id"],
            "fieldKey": field.get("fieldKey") if isinstance(field.get("fieldKey"), str) else None,
            "dataType": field.get("dataType") if isinstance(field.get("dataType"), str) else "TEXT",
            "picklistOptions": [str(o) for o in options if isinstance(o, (str, int, float))]
            if isinstance(options, list) else [],
            "model": model,
        })
        if len(definitions) >= MAX_FIELDS:
            break
    return definitions


# ----------------------------------------------------------------------------- which records

def record_model(record):
    """"contact" or "opportunity" when the items ``record`` reads or writes carry custom fields."""
    return (record.get("custom_fields") or {}).get("model")


def writes_custom_fields(record):
    return bool((record.get("custom_fields") or {}).get("write"))


# ----------------------------------------------------------------------------- values by type
#
# GHL's write shapes (contacts CreateContactDto.customFields, opportunities CreateDto): every
# entry is {"id", "field_value"}; the value is a string for text-like types, a number for
# NUMERICAL and MONETORY (its text for opportunities, whose spec has no number shape), a list of strings for CHECKBOX, MULTIPLE_OPTIONS and TEXTBOX_LIST
# (the array variant; the spec has none of its own for TEXTBOX_LIST), and for FILE_UPLOAD an
# object keyed by a file uuid holding {"meta", "url"}.

TEXT_TYPES = ("TEXT", "LARGE_TEXT", "PHONE")
NUMBER_TYPES = ("NUMERICAL", "MONETORY")
ONE_OPTION_TYPES = ("SINGLE_OPTIONS", "RADIO")
MANY_OPTION_TYPES = ("CHECKBOX", "MULTIPLE_OPTIONS")
LIST_TYPES = MANY_OPTION_TYPES + ("TEXTBOX_LIST",)
MAX_FILES = 10
MAX_URL_CHARS = 2048
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_ISO_DAY = re.compile(r"^(\d{4}-\d{2}-\d{2})(?:[T ].*)?$")
# Files named by a URL get a uuid derived from the field and the URL, so a replayed step
# writes the same file entry rather than a second one.
FILE_NAMESPACE = uuid.UUID("6f1d2c3e-8b7a-4f5e-9d0c-1a2b3c4d5e6f")


def _scalar_text(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and abs(value) >= 2 ** 53:
        raise ValueError("is a number too large to keep its digits: send it as text")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return value.strip()
    raise ValueError("must be text")


def _one(value):
    if isinstance(value, list):
        items = [v for v in value if v not in (None, "")]
        if len(items) != 1:
            raise ValueError("takes one value, not a list")
        return items[0]
    return value


def _number(value):
    value = _one(value)
    if isinstance(value, bool):
        raise ValueError("must be a number")
    if isinstance(value, (int, float)):
        number = value
    else:
        text = str(value).strip()
        try:
            number = float(text)
        except ValueError:
            raise ValueError("must be a number, such as 42 or 19.99") from None
        if number.is_integer() and not re.search(r"[.eE]", text):
            number = int(number)
    if isinstance(number, float) and not math.isfinite(number):
        raise ValueError("must be a finite number")
    return number


def _day(value):
    """GHL's DATE fields hold a calendar day; the contacts spec's one date-only field
    (dateOfBirth) reads back as YYYY-MM-DD, so that is what is written. A date and time (what
    Zapier sends for a datetime field) keeps the day as written, in its own zone."""
    value = _one(value)
    found = _ISO_DAY.match(value.strip()) if isinstance(value, str) else None
    if found:
        try:
            if found.group(0) != found.group(1):
                datetime.fromisoformat(found.group(0).replace("Z", "+00:00"))
            return date.fromisoformat(found.group(1)).isoformat()
        except ValueError:
            pass
    raise ValueError("must be a date, such as 2024-05-01 (or an ISO 8601 date and time)")


def _option(options, value):
    """``value`` spelled as the option it names (exactly, else ignoring case); ValueError when none."""
    text = _scalar_text(value)
    if not options or text in options:
        return text
    folded = {o.casefold(): o for o in options}
    if text.casefold() in folded:
        return folded[text.casefold()]
    raise ValueError(_not_an_option(text, options))


def _not_an_option(text, options):
    shown = ", ".join(options[:20]) + (", …" if len(options) > 20 else "")
    return f"has no option {text[:80]!r} (options: {shown})"


def _options(options, value):
    if isinstance(value, list):
        parts = value
    elif isinstance(value, str) and (value.strip() in options or not options):
        parts = [value]
    elif isinstance(value, str):
        parts = value.split(",")
    else:
        parts = [value]
    chosen = [_option(options, v) for v in parts if v is not None and _scalar_text(v) != ""]
    return list(dict.fromkeys(chosen))


def _texts(value):
    parts = value if isinstance(value, list) else [value]
    return [text for text in (_scalar_text(v) for v in parts if v is not None) if text]


def _file_url(value):
    url = _scalar_text(value)
    parts = urlsplit(url)
    if (len(url) > MAX_URL_CHARS or parts.scheme not in ("http", "https") or not parts.netloc
            or any(c.isspace() for c in url)):
        raise ValueError("must be the http(s) URL of a file")
    return url


def _files(field_id, value):
    urls = _texts(value)
    if len(urls) > MAX_FILES:
        raise ValueError(f"takes at most {MAX_FILES} files")
    files = {}
    for url in map(_file_url, urls):
        file_id = str(uuid.uuid5(FILE_NAMESPACE, f"{field_id}\n{url}"))
        name = unquote(urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1]) or "file"
        files[file_id] = {
            "meta": {"fieldname": field_id, "originalname": name,
                     "mimetype": mimetypes.guess_type(name)[0] or "application/octet-stream", "uuid": file_id},
            "url": url,
        }
    return files


def typed_value(definition, value):
    """``value`` as GHL's write shape wants it for ``definition``'s data type; ValueError
    (what is wrong) when it does not fit. None when nothing is left to write."""
    data_type = definition.get("dataType")
    options = definition.get("picklistOptions") or []
    if data_type in NUMBER_TYPES:
        return _number(value)
    if data_type == "DATE":
        return _day(value)
    if data_type in ONE_OPTION_TYPES:
        return _option(options, _one(value))
    if data_type in MANY_OPTION_TYPES:
        return _options(options, value) or None
    if data_type == "TEXTBOX_LIST":
        return _texts(value) or None
    if data_type == "FILE_UPLOAD":
        return _files(definition["id"], value) or None
    text = _scalar_text(_one(value))
    if data_type == "EMAIL" and text and (len(text) > 254 or not _EMAIL.match(text)):
        raise ValueError("must be an email address")
    return text


def write_entry(definition, value):
    """GHL's write entry for one field: always by ``id`` (the contacts spec requires it). The
    opportunities spec has no number shape (a string, a list or an object of files): a number
    goes there as its text."""
    if definition.get("model") == "opportunity" and isinstance(value, (int, float)) and not isinstance(value, bool):
        value = number_text(value)
    return {"id": definition["id"], "field_value": value}


def number_text(number):
    """``12`` -> "12", ``19.99`` -> "19.99", ``1e21`` -> "1000000000000000000000": never an exponent."""
    return format(decimal.Decimal(repr(number)), "f")


# ----------------------------------------------------------------------------- resolving inputs

# The resolved write list travels in the inputs under this key (no input can be called that:
# keys start with a letter) to ``ghl.request_builder``.
RESOLVED_INPUT = RESOLVED_CUSTOM_FIELDS


def _requests(record, inputs):
    """[(input key, field id or key, value)] for every custom field value in ``inputs``:
    the legacy numbered slots, then ``cf_<id>`` keys, then the ``customFields`` object."""
    found = []
    for n in range(1, record.get("custom_field_slots", 0) + 1):
        ident, value = inputs.get(f"custom_field_{n}_id"), inputs.get(f"custom_field_{n}_value")
        if ident is not None and value is not None:
            found.append((f"custom_field_{n}_id", str(ident).strip(), value))
    for key, value in inputs.items():
        matched = CUSTOM_FIELD_INPUT.match(key) if isinstance(key, str) else None
        if matched:
            found.append((key, matched.group(1), value))
    for name, value in (inputs.get(CUSTOM_FIELDS_OBJECT) or {}).items():
        found.append((f"{CUSTOM_FIELDS_OBJECT}.{name}", str(name).strip(), value))
    return found


def _consumed(record, inputs):
    keys = {CUSTOM_FIELDS_OBJECT} | {k for k in inputs if isinstance(k, str) and CUSTOM_FIELD_INPUT.match(k)}
    for n in range(1, record.get("custom_field_slots", 0) + 1):
        keys |= {f"custom_field_{n}_id", f"custom_field_{n}_value"}
    return keys


def definition_index(definitions, model):
    """{id: def, fieldKey: def, fieldKey without "<model>.": def}; ids win over keys."""
    index = {}
    prefix = model + "."
    for definition in definitions:
        key = definition.get("fieldKey")
        if key:
            index.setdefault(key, definition)
            if key.startswith(prefix):
                index.setdefault(key[len(prefix):], definition)
    index.update((d["id"], d) for d in definitions)
    return index


NOUNS = {"contact": "contacts", "opportunity": "opportunities"}


def write_location(record, inputs, location_id):
    """The location whose fields an action writes: its location input, else ``location_id``."""
    for field in record["inputs"]:
        if field.get("location") and inputs.get(field["key"]):
            return str(inputs[field["key"]])
    return location_id


def resolve_custom_field_inputs(client, token, location_id, record, inputs):
    """``inputs`` with their custom field values (legacy slots, ``cf_<id>`` keys, the
    ``customFields`` object) replaced by GHL's write list under ``RESOLVED_INPUT``.
    ``location_id`` is the caller's location (``X-Location-Id``); the record's location input
    wins when the inputs give one.

    Costs one GHL call a minute per token and location (``load_definitions``), and none when
    the inputs hold no custom field value. Raises InvalidInput naming each unknown field and
    each value that does not fit its field's type (by the field's GHL name)."""
    if not writes_custom_fields(record):
        return inputs
    wanted = _requests(record, inputs)
    if not wanted:
        return inputs
    location_id = write_location(record, inputs, location_id)
    if not location_id:
        raise InvalidInput({"X-Location-Id": "needed to look up the location's custom fields"})
    model = record_model(record)
    try:
        definitions = load_definitions(client, token, location_id, model)
    except GhlError as error:
        # A token without the custom-fields scope still writes the legacy numbered slots as
        # given, as it did before definitions were read; the new inputs need them.
        if error.status in (401, 403) and all(key.startswith("custom_field_") for key, _, _ in wanted):
            return inputs
        raise
    index = definition_index(definitions, model)
    problems, entries, written_by = {}, [], {}
    for input_key, ident, value in wanted:
        definition = index.get(ident)
        if definition is None:
            problems[input_key] = f"{ident[:80]!r} is not a custom field of {NOUNS[model]} in this location"
            continue
        name = definition["name"]
        if definition["id"] in written_by:
            problems[input_key] = f"{name}: set twice (also by {written_by[definition['id']]})"
            continue
        written_by[definition["id"]] = input_key
        try:
            typed = typed_value(definition, value)
        except ValueError as exc:
            # A legacy slot's value problem belongs to its value input.
            value_key = input_key[:-3] + "_value" if input_key.startswith("custom_field_") else input_key
            problems[value_key] = f"{name}: {exc}"
            continue
        if typed is not None:
            entries.append(write_entry(definition, typed))
    if problems:
        raise InvalidInput(problems)
    resolved = {k: v for k, v in inputs.items() if k not in _consumed(record, inputs)}
    resolved[RESOLVED_INPUT] = entries
    return resolved


# ----------------------------------------------------------------------------- Zapier fields

INPUT_TYPES = {"LARGE_TEXT": "text", "NUMERICAL": "number", "MONETORY": "number", "DATE": "datetime"}
OUTPUT_TYPES = {"NUMERICAL": "number", "MONETORY": "number", "DATE": "datetime"}
TYPE_HELP = {
    "TEXT": "Text.",
    "LARGE_TEXT": "Text; it may span several lines.",
    "PHONE": "A phone number, best with its country code, such as +15550100001.",
    "EMAIL": "An email address.",
    "NUMERICAL": "A number, such as 42.",
    "MONETORY": "An amount of money, such as 19.99.",
    "DATE": "A date. GHL keeps the day only, as written (YYYY-MM-DD); a time of day is dropped.",
    "SINGLE_OPTIONS": "One of the field's options.",
    "RADIO": "One of the field's options.",
    "CHECKBOX": "One or more of the field's options.",
    "MULTIPLE_OPTIONS": "One or more of the field's options.",
    "TEXTBOX_LIST": "One or more texts, one per box.",
    "FILE_UPLOAD": "The public http(s) URL of a file (up to 10); GHL keeps a link to it, the file is not copied.",
}
OUTPUT_PREFIX = "custom_fields"


def output_name(definition, model):
    """The name a custom field's value has in an item's ``custom_fields`` object: its
    fieldKey without the ``contact.``/``opportunity.`` prefix (its id when it has no key)."""
    key = definition.get("fieldKey") or definition["id"]
    prefix = model + "."
    return key[len(prefix):] if key.startswith(prefix) else key


def input_field(definition):
    """A Zapier input field descriptor for one custom field (key ``cf_<id>``)."""
    data_type = definition.get("dataType")
    help_text = TYPE_HELP.get(data_type, "Text.")
    if definition.get("fieldKey"):
        help_text += f" GHL custom field {definition['fieldKey']}."
    field = {"key": "cf_" + definition["id"], "label": definition["name"], "helpText": help_text,
             "type": INPUT_TYPES.get(data_type, "string"), "required": False}
    options = definition.get("picklistOptions") or []
    if data_type in ONE_OPTION_TYPES + MANY_OPTION_TYPES and options:
        field["choices"] = [{"value": o, "label": o, "sample": o} for o in options]
    if data_type in LIST_TYPES:
        field["list"] = True
    return field


def output_field(definition, model):
    """A Zapier output field descriptor for one custom field, as Zapier flattens
    ``custom_fields.<name>`` (``custom_fields__<name>``)."""
    data_type = definition.get("dataType")
    field = {"key": f"{OUTPUT_PREFIX}__{output_name(definition, model)}", "label": definition["name"],
             "type": OUTPUT_TYPES.get(data_type, "string")}
    # Outputs carry a file field as its URLs (ghl.enrichment).
    if data_type in LIST_TYPES + ("FILE_UPLOAD",):
        field["list"] = True
    return field


def usable_as_input(definition):
    return bool(CUSTOM_FIELD_INPUT.match("cf_" + definition["id"]))
