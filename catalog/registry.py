"""The operations catalog: loads the declarative records, checks them, looks them up.

Records live in ``catalog/operations/*.json`` (a list of records per file, one file per
category). A record is data only; every behaviour (polling, dedupe, actions, the Zapier
export, the catalog page) is generated from it. The record format is documented in
``catalog/operations/README.md``; ``load_catalog`` rejects a record that breaks it, so a
mistake fails at start-up and in the tests, never in a user's Zap.

Nothing here does network I/O.
"""

import copy
import json
import re
from pathlib import Path

from catalog.inputs import (CUSTOM_FIELD_PREFIX, CUSTOM_FIELDS_OBJECT, FILE_ID_SLOT, PART_NAME_PLACE, PART_NAME_SLOT,
                            check_requires_when)
from catalog.pagination import PAGINATION_STYLES
from ghl.enrichment import WALL_CLOCK
from ghl.time_window import check_window

OPERATIONS_DIR = Path(__file__).parent / "operations"
# Records ``python -m catalog.generate --write`` wrote from GHL's specs, one file per service.
GENERATED_DIR = Path(__file__).parent / "generated"
ORIGINS = ("hand-written", "generated")
ACCESS = ("agency", "oauth")

# The categories, in the order the catalog page shows them: the seed's 14 first.
CATEGORIES = [
    "Contacts",
    "Calendars & Appointments",
    "Opportunities",
    "Users",
    "Conversations & Messages",
    "Businesses",
    "Workflows",
    "Locations",
    "Custom Fields",
    "Companies",
    "Associations",
    "Blogs",
    "Snapshots",
    "Courses",
    # Added after the seed, named for the GHL product.
    "Forms",
    "Surveys",
    "Payments",
    "Invoices",
    # GHL services only generated records cover (catalog/generate.py SERVICE_CATEGORIES).
    "Products",
    "Store",
    "Documents & Contracts",
    "Custom Objects",
    "Funnels",
    "Media Library",
    "Trigger Links",
    "Emails",
    "Social Planner",
    "Knowledge Base",
    "Conversation AI",
    "Voice AI",
    "Agent Studio",
    "Phone System",
    "Ad Manager",
    "Affiliate Manager",
    "Brand Boards",
    "Custom Menus",
    "SaaS",
    "Marketplace",
    "OAuth",
]

KINDS = ("trigger", "action", "search")
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
# ``file``: an https URL (what Zapier hands for a file) the service fetches and uploads.
INPUT_TYPES = ("string", "text", "integer", "number", "boolean", "datetime", "json", "file")
# ``none``: a POST, PUT or PATCH whose spec takes no body (nothing is sent, not even ``{}``).
BODY_FORMATS = ("json", "multipart", "none")
INPUT_PLACES = ("path", "query", "body")
# An input only a trigger's ``response.watch`` applies (a filter on an item field GHL cannot
# filter by, such as an appointment's status): never sent to GHL, names no GHL parameter.
WATCH_PLACE = "watch"
DEDUPE_STRATEGIES = ("new", "changes")
# Where GHL puts new items in a trigger's list: newest first (the default: the poll reads on
# while a page is all new) or unknown (each poll reads every page up to the cap).
LIST_ORDERS = ("newest_first", "unknown")
WATCH_EVENTS = ("created", "changed", "list_added", "list_removed")
WATCH_KEYS = {"event", "fields", "fields_input", "filters", "element", "created_field", "request"}
KEY_PATTERN = re.compile(r"^[a-zA-Z][a-zA-Z0-9_]*$")
PATH_PARAM = re.compile(r"{([^}]+)}")

CUSTOM_FIELD_SLOT_HELP = (
    "Optional. The id (or the key, such as contact.my_field) of a custom field. "
    "The List Custom Fields trigger shows them."
)


class CatalogError(ValueError):
    """A record breaks the catalog format."""


def snake_key(name):
    """The catalog key for an operation name: ``List Contacts (Deprecated)`` -> ``list_contacts_deprecated``."""
    words = re.findall(r"[A-Za-z0-9]+", name)
    return "_".join(word.lower() for word in words)


def custom_field_slot_inputs(slots):
    """The id/value input pairs that become GHL's ``customFields`` write list."""
    inputs = []
    for n in range(1, slots + 1):
        inputs.append({
            "key": f"custom_field_{n}_id",
            "label": f"Custom Field {n} ID or Key",
            "type": "string",
            "required": False,
            "help_text": CUSTOM_FIELD_SLOT_HELP,
            "in": "custom_fields",
        })
        inputs.append({
            "key": f"custom_field_{n}_value",
            "label": f"Custom Field {n} Value",
            "type": "string",
            "required": False,
            "help_text": f"The value for custom field {n}.",
            "in": "custom_fields",
        })
    return inputs


def _check(condition, record, message):
    if not condition:
        raise CatalogError(f"{record.get('key') or record.get('name') or record}: {message}")


def _check_input(record, field):
    _check(isinstance(field, dict), record, "an input is not an object")
    key = field.get("key", "")
    _check(KEY_PATTERN.match(key or ""), record, f"input key {key!r} is not a valid Zapier key")
    _check(field.get("label"), record, f"input {key} has no label")
    _check(field.get("type", "string") in INPUT_TYPES, record, f"input {key} has unknown type {field.get('type')!r}")
    _check(field.get("in") in INPUT_PLACES + ("custom_fields", WATCH_PLACE, PART_NAME_PLACE), record, f"input {key} has no valid 'in'")
    _check(isinstance(field.get("required", False), bool), record, f"input {key}: required must be a boolean")
    choices = field.get("choices")
    if choices is not None:
        _check(isinstance(choices, list) and choices, record, f"input {key}: choices must be a non-empty list")
    if "join" in field:
        _check(field.get("list") and isinstance(field["join"], str) and field["join"], record,
               f"input {key}: join (the separator GHL wants between the values) is for list inputs")


def _check_response(record):
    response = record.get("response")
    _check(isinstance(response, dict), record, "no response block")
    _check("items" in response, record, "response.items is missing (null for the whole body)")
    _check(isinstance(response.get("single", False), bool), record, "response.single must be a boolean")
    if record["kind"] == "trigger":
        _check(response.get("pagination", "none") in PAGINATION_STYLES, record,
               f"unknown pagination style {response.get('pagination')!r}")
        _check(response.get("dedupe") in DEDUPE_STRATEGIES, record, "trigger response.dedupe must be 'new' or 'changes'")
        _check(response.get("order", "newest_first") in LIST_ORDERS, record,
               f"response.order must be one of {LIST_ORDERS}")
        if response.get("single"):
            _check(response.get("pagination", "none") == "none", record, "a single-object trigger cannot page")
            _check(response["dedupe"] == "changes", record, "a single-object trigger dedupes by 'changes'")
    if "watch" in response:
        _check_watch(record)
    if "local_times" in response:
        _check_local_times(record)


def _check_local_times(record):
    """``response.local_times``: top-level item fields GHL writes as the location's zone-less
    wall-clock time, which ``ghl.enrichment`` answers with the location's offset."""
    response = record["response"]
    fields = response["local_times"]
    _check(isinstance(fields, list) and fields and all(isinstance(f, str) and f for f in fields), record,
           "response.local_times must be a non-empty list of item field names")
    _check(len(set(fields)) == len(fields), record, "response.local_times names a field twice")
    _check(not any("." in f for f in fields), record, "response.local_times names top-level item fields")
    _check(response.get("id_field") not in fields, record, "response.local_times cannot name the id field")
    sample = record.get("sample") if isinstance(record.get("sample"), dict) else {}
    shown = [f for f in fields if f in sample]
    _check(all(isinstance(sample[f], str) and WALL_CLOCK.fullmatch(sample[f]) for f in shown), record,
           "the sample writes response.local_times as GHL does, without a zone (2021-07-16 11:00:00)")


def _check_watch(record):
    """``response.watch``: a trigger that fires on changes to fields of the items in a list
    (``triggers.changes``; format in ``catalog/operations/README.md``)."""
    response = record["response"]
    watch = response["watch"]
    _check(isinstance(watch, dict), record, "response.watch must be an object")
    _check(record["kind"] == "trigger" and not response.get("single"), record,
           "response.watch is for triggers on a list")
    unknown = sorted(set(watch) - WATCH_KEYS)
    _check(not unknown, record, f"response.watch has unknown field(s) {', '.join(unknown)}")
    event = watch.get("event")
    _check(event in WATCH_EVENTS, record, f"response.watch.event must be one of {WATCH_EVENTS}")
    _check(response.get("dedupe") == "new", record,
           "a watch trigger dedupes by 'new': each change it finds is a new item with its own id")
    _check(response.get("id_field"), record, "a watch trigger needs response.id_field")
    fields = watch.get("fields", [])
    _check(isinstance(fields, list) and all(isinstance(f, str) and f for f in fields), record,
           "response.watch.fields must be a list of field names")
    _check(len(set(fields)) == len(fields), record, "response.watch.fields names a field twice")
    if event == "created":
        _check(not fields and not watch.get("fields_input"), record, "a 'created' watch watches no fields")
    else:
        _check(fields, record, f"a '{event}' watch needs response.watch.fields")
        _check(response.get("version_field"), record,
               "a watch trigger on changes needs response.version_field (the record's updated-at)")
    if event in ("list_added", "list_removed"):
        _check(len(fields) == 1, record, "a list watch watches exactly one (list) field")
        _check(isinstance(watch.get("element"), str) and KEY_PATTERN.match(watch["element"]), record,
               "a list watch needs response.watch.element, the item key for the added or removed element")
    else:
        _check("element" not in watch, record, "response.watch.element is for list watches")
    _check(isinstance(watch.get("created_field"), str) and watch["created_field"], record,
           "response.watch.created_field must name the field that says when a record was created")
    inputs = {f["key"]: f for f in record["inputs"]}
    bound = []
    if watch.get("fields_input") is not None:
        name = watch["fields_input"]
        _check(name in inputs and inputs[name].get("list"), record,
               "response.watch.fields_input must name a list input")
        bound.append(name)
    filters = watch.get("filters", [])
    _check(isinstance(filters, list), record, "response.watch.filters must be a list")
    for spec in filters:
        _check(isinstance(spec, dict) and set(spec) in ({"input", "field"}, {"field", "value"}), record,
               "each response.watch.filters entry is {\"input\", \"field\"} or {\"field\", \"value\"}")
        _check(isinstance(spec["field"], str) and spec["field"], record, "a watch filter needs a field")
        if "value" in spec:
            _check(isinstance(spec["value"], (str, int, float, bool)), record,
                   f"response.watch filter on {spec['field']}: a fixed value is a string, number or boolean")
            continue
        _check(spec["input"] in inputs, record, f"response.watch filter input {spec['input']!r} is not an input")
        bound.append(spec["input"])
    _check(len(set(bound)) == len(bound), record, "response.watch binds an input twice")
    for name in bound:
        field = inputs[name]
        _check(field.get("in") != "path", record,
               f"input {name} is bound by response.watch and cannot fill a path parameter")
        _check(not field.get("location"), record, f"input {name} is the location and cannot be a watch filter")
    for name, field in inputs.items():
        _check(field.get("in") != WATCH_PLACE or name in bound, record,
               f"input {name} has 'in': 'watch' but response.watch does not bind it")
    request = watch.get("request", {})
    _check(isinstance(request, dict), record, "response.watch.request must be an object")
    clash = sorted(set(request) & {f.get("field", f["key"]).split(".")[0] for f in record["inputs"]
                                   if f["key"] not in bound})
    _check(not clash, record, f"response.watch.request fixes {', '.join(clash)}, which an input also sets")


CUSTOM_FIELD_MODELS = ("contact", "opportunity")
CUSTOM_FIELD_KEYS = {"model", "write"}


def _check_custom_fields(record):
    """``custom_fields``: ``{"model": "contact"|"opportunity", "write": bool}``: the items the
    operation reads or writes carry that model's custom fields; ``write`` also takes them as inputs."""
    spec = record["custom_fields"]
    _check(isinstance(spec, dict) and set(spec) <= CUSTOM_FIELD_KEYS, record,
           'custom_fields is {"model", "write"}')
    _check(spec.get("model") in CUSTOM_FIELD_MODELS, record,
           f"custom_fields.model must be one of {CUSTOM_FIELD_MODELS}")
    _check(isinstance(spec.get("write", False), bool), record, "custom_fields.write must be a boolean")
    if spec.get("write"):
        _check(record["kind"] == "action" and record["method"] in ("POST", "PUT", "PATCH"), record,
               "custom_fields.write is for actions that send a body")
        # The inputs such a record takes beside its declared ones (catalog/inputs.py).
        clash = [f["key"] for f in record["inputs"] if f["key"].startswith(CUSTOM_FIELD_PREFIX)
                 or f["key"] == CUSTOM_FIELDS_OBJECT]
        _check(not clash, record, f"input {', '.join(clash)} clashes with the custom field inputs")


def _check_provenance(record):
    """``spec`` (which GHL operation), and the fields generated records add (catalog/generate.py)."""
    spec = record["spec"]
    _check(isinstance(spec, dict) and isinstance(spec.get("app"), str) and spec["app"]
           and isinstance(spec.get("operation_id"), str) and spec["operation_id"], record,
           'spec must be {"app": <GHL service>, "operation_id": <the spec\'s operationId>}')
    if "generated" in record:
        generated = record["generated"]
        _check(isinstance(generated, dict) and isinstance(generated.get("from"), str)
               and isinstance(generated.get("unknown"), list)
               and set(generated) <= {"from", "unknown", "overridden"}, record,
               'generated must be {"from": <spec operation>, "unknown": [<what the spec does not say>]}')
    if "access" in record:
        access = record["access"]
        _check(isinstance(access, list) and access and set(access) <= set(ACCESS), record,
               f"access must be a non-empty list of {ACCESS}")
    if "deprecated" in record:
        deprecated = record["deprecated"]
        _check(isinstance(deprecated, dict) and set(deprecated) == {"replacement"}
               and (deprecated["replacement"] is None or isinstance(deprecated["replacement"], str)), record,
               'deprecated must be {"replacement": <key> | null}')


def _check_body(record):
    """``body_format`` (json, the default, or multipart for uploads) and ``body_required``."""
    body_format = record.get("body_format", "json")
    _check(body_format in BODY_FORMATS, record, f"body_format must be one of {BODY_FORMATS}")
    files = [f["key"] for f in record["inputs"] if f.get("type") == "file"]
    if body_format == "multipart":
        _check(record["method"] in ("POST", "PUT", "PATCH") and files, record,
               "a multipart record is a POST, PUT or PATCH with a file input")
        _check(not record.get("body_as_list"), record, "a multipart body is not a list")
    if body_format == "none":
        _check(record["method"] in ("POST", "PUT", "PATCH") and not record.get("body_required")
               and not any(f["in"] in ("body", "custom_fields") for f in record["inputs"]), record,
               "a record with body_format none is a POST, PUT or PATCH with no body inputs")
    _check(not files or body_format == "multipart", record,
           f"file input {', '.join(files)} needs body_format multipart")
    _check(all(f["in"] == "body" for f in record["inputs"] if f.get("type") == "file"), record,
           "a file input goes in the body")
    naming = {f["key"] for f in record["inputs"] if f["in"] == PART_NAME_PLACE}
    used = set()
    for field in record["inputs"]:
        if field.get("type") == "file":
            slots = PART_NAME_SLOT.findall(field.get("field", field["key"]))
            _check(all(s in naming or s == FILE_ID_SLOT for s in slots), record,
                   f"file input {field['key']}: its part name may use {{file_id}} and part_name inputs only")
            used.update(slots)
    _check(naming <= used, record, f"part_name input {', '.join(sorted(naming - used))} names no file part")
    _check(all(f.get("required") for f in record["inputs"] if f["in"] == PART_NAME_PLACE), record,
           "a part_name input is required (the part cannot be named without it)")
    _check(isinstance(record.get("body_required", False), bool), record, "body_required must be a boolean")


def check_record(record):
    """Raise CatalogError unless ``record`` follows the catalog format."""
    for field in ("key", "name", "kind", "category", "summary", "method", "path", "scopes", "inputs", "sample",
                  "spec"):
        _check(field in record, record, f"missing {field}")
    _check(record["key"] == snake_key(record["name"]), record, f"key must be {snake_key(record['name'])!r}")
    _check(KEY_PATTERN.match(record["key"]), record, "key breaks Zapier's key rule")
    _check(record["kind"] in KINDS, record, f"kind must be one of {KINDS}")
    _check(record["category"] in CATEGORIES, record, f"unknown category {record['category']!r}")
    _check(record["method"] in METHODS, record, f"method must be one of {METHODS}")
    _check(record["path"].startswith("/"), record, "path must start with /")
    _check(record.get("version") is None or isinstance(record["version"], str), record, "version must be a string or null")
    _check(isinstance(record["scopes"], list), record, "scopes must be a list")
    _check(isinstance(record["sample"], dict) and record["sample"], record, "sample must be a non-empty object")
    keys = set()
    for field in record["inputs"]:
        _check_input(record, field)
        _check(field["key"] not in keys, record, f"input {field['key']} declared twice")
        keys.add(field["key"])
    watch_inputs = [f["key"] for f in record["inputs"] if f["in"] == WATCH_PLACE]
    _check(not watch_inputs or (record.get("response") or {}).get("watch"), record,
           f"input {', '.join(watch_inputs)} has 'in': 'watch' but the record has no response.watch")
    path_inputs = {f.get("field", f["key"]) for f in record["inputs"] if f["in"] == "path"}
    for name in PATH_PARAM.findall(record["path"]):
        _check(name in path_inputs, record, f"path parameter {name} has no input")
    for name in path_inputs:
        _check("{" + name + "}" in record["path"], record, f"path input {name} is not in the path")
    _check_response(record)
    _check_provenance(record)
    _check_body(record)
    if "custom_fields" in record:
        _check_custom_fields(record)
    check_window(record, CatalogError)
    problem = check_requires_when(record)
    _check(problem is None, record, problem)


def _expand(record):
    """The record as served: defaults filled in and declared input groups spelled out."""
    record = copy.deepcopy(record)
    record["origin"] = "generated" if "generated" in record else "hand-written"
    record["service"] = record["spec"]["app"]
    slots = record.pop("custom_field_slots", 0)
    if slots:
        record["inputs"].extend(custom_field_slot_inputs(slots))
        record["custom_field_slots"] = slots
    if "custom_fields" in record:
        record["custom_fields"].setdefault("write", False)
    for field in record["inputs"]:
        field.setdefault("type", "string")
        field.setdefault("required", False)
        field.setdefault("list", False)
        field.setdefault("help_text", "")
    response = record["response"]
    response.setdefault("single", False)
    response.setdefault("id_field", "id")
    if record["kind"] == "trigger":
        response.setdefault("pagination", "none")
        response.setdefault("version_field", None)
        response.setdefault("sort_field", None)
        if response.get("watch"):
            response["watch"].setdefault("filters", [])
            response["watch"].setdefault("request", {})
            response["watch"].setdefault("fields", [])
    return record


class Catalog:
    """The loaded operations, looked up by key and filtered for browsing."""

    def __init__(self, records):
        self._by_key = {}
        for record in records:
            check_record(record)
            if record["key"] in self._by_key:
                raise CatalogError(f"{record['key']}: key declared twice")
            self._by_key[record["key"]] = _expand(record)
        for record in self._by_key.values():
            replacement = (record.get("deprecated") or {}).get("replacement")
            _check(replacement is None or replacement in self._by_key, record,
                   f"deprecated.replacement {replacement!r} is not a catalog key")
        category_rank = {name: n for n, name in enumerate(CATEGORIES)}
        self.operations = sorted(self._by_key.values(), key=lambda r: (category_rank[r["category"]], r["name"]))

    def get(self, key):
        """The record for ``key``, or None."""
        return self._by_key.get(key)

    def __len__(self):
        return len(self._by_key)

    def __iter__(self):
        return iter(self.operations)

    def of_kind(self, *kinds):
        return [r for r in self.operations if r["kind"] in kinds]

    def services(self):
        """The GHL services (spec files) the records come from, sorted."""
        return sorted({r["service"] for r in self.operations})

    def filter(self, kind=None, category=None, q=None, service=None, origin=None):
        """Records matching every given filter; ``q`` matches name, summary and path, case-insensitively."""
        needle = (q or "").strip().lower()
        found = []
        for record in self.operations:
            if kind and record["kind"] != kind:
                continue
            if category and record["category"].lower() != category.lower():
                continue
            if service and record["service"] != service:
                continue
            if origin and record["origin"] != origin:
                continue
            if needle and not any(needle in record[f].lower() for f in ("name", "summary", "path")):
                continue
            found.append(record)
        return found

    def counts(self, records=None):
        records = self.operations if records is None else records
        """Totals; ``actions`` includes searches (as the seed list counts them), ``searches`` is the part."""
        return {
            "operations": len(records),
            "triggers": sum(1 for r in records if r["kind"] == "trigger"),
            "actions": sum(1 for r in records if r["kind"] in ("action", "search")),
            "searches": sum(1 for r in records if r["kind"] == "search"),
            "categories": len({r["category"] for r in records}),
        }

    def categories(self, records=None):
        records = self.operations if records is None else records
        present = {r["category"] for r in records}
        return [
            {"name": name, "count": sum(1 for r in records if r["category"] == name)}
            for name in CATEGORIES if name in present
        ]


def load_records(directory=OPERATIONS_DIR):
    records = []
    for path in sorted(Path(directory).glob("*.json")):
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
        if not isinstance(data, list):
            raise CatalogError(f"{path.name}: must hold a list of records")
        records.extend(data)
    return records


def load_catalog(directory=OPERATIONS_DIR, generated_dir=GENERATED_DIR):
    """Load and check the hand-written records under ``directory`` and the generated ones under
    ``generated_dir`` (None: hand-written only). The generator never writes a record for an
    operation a hand-written record implements, so the hand-written one is the only one served."""
    records = load_records(directory)
    if generated_dir is not None:
        records += load_records(generated_dir)
    return Catalog(records)
