"""Catalog records for every GHL operation, generated from GHL's official OpenAPI specs.

    python -m catalog.generate            # print the counts
    python -m catalog.generate --write    # (re)write catalog/generated/
    python -m catalog.generate --check    # exit 1 when catalog/generated/ is stale

Reads ``../shared/ghl-openapi/apps/*.json`` (``GHL_OPENAPI_DIR`` overrides; the specs are never
copied into the project) and writes one file of records per GHL service to
``catalog/generated/<service>.json``, in the record format of ``catalog/operations/README.md``,
plus ``catalog/generated/SUMMARY.md`` (counts, covered and excluded operations).

Precedence: an operation a hand-written record already implements (same ``spec.app`` and
``spec.operation_id`` in ``catalog/operations/*.json``) is not generated; it is listed as
covered. Operations whose request the record format cannot describe are excluded, with the
reason (``EXCLUSIONS``).

Fields a generated record has beside the hand-written format:

- ``generated``: ``{"from": "<app>.json <METHOD> <path>", "unknown": [...]}``: where the
  record came from and what the spec does not say (sort order, items key, ...); plus
  ``"overridden": {"fields", "why"}`` where ``generated_overrides.json`` corrects the spec.
- ``access``: present when the spec restricts the token: ``["agency"]`` (agency tokens only),
  ``["oauth"]`` (OAuth tokens only, no Private Integration Token), or both.
- ``deprecated``: ``{"replacement": <key> | null}`` when the spec marks the operation deprecated.

Output is deterministic: records sorted by path then method, fields in a fixed order. Nothing
here does network I/O.
"""

import argparse
import html
import json
import os
import re
import sys
from collections import Counter
from pathlib import Path

from catalog.pagination import pagination_style
from catalog.registry import CATEGORIES, OPERATIONS_DIR, load_records, snake_key

SPEC_DIR = Path(os.environ.get(
    "GHL_OPENAPI_DIR", Path(__file__).resolve().parents[2] / "shared" / "ghl-openapi"))
GENERATED_DIR = Path(__file__).parent / "generated"
# Field-by-field corrections of what a spec gets wrong for a generated record, each with its why
# (a whole operation the spec gets wrong is written by hand in catalog/operations/ instead).
OVERRIDES_FILE = Path(__file__).parent / "generated_overrides.json"
SUMMARY_FILE = "SUMMARY.md"
METHODS = ("get", "post", "put", "patch", "delete")

# The catalog category of each GHL service (spec file). Services the hand-written catalog
# already has keep its category; the rest are named for the GHL product.
SERVICE_CATEGORIES = {
    "ad-manager": "Ad Manager",
    "affiliate-manager": "Affiliate Manager",
    "agent-studio": "Agent Studio",
    "associations": "Associations",
    "blogs": "Blogs",
    "brand-boards": "Brand Boards",
    "businesses": "Businesses",
    "calendars": "Calendars & Appointments",
    "campaigns": "Workflows",
    "companies": "Companies",
    "contacts": "Contacts",
    "conversation-ai": "Conversation AI",
    "conversations": "Conversations & Messages",
    "courses": "Courses",
    "custom-fields": "Custom Fields",
    "custom-menus": "Custom Menus",
    "email-isv": "Emails",
    "emails": "Emails",
    "forms": "Forms",
    "funnels": "Funnels",
    "invoices": "Invoices",
    "knowledge-base": "Knowledge Base",
    "links": "Trigger Links",
    "locations": "Locations",
    "marketplace": "Marketplace",
    "medias": "Media Library",
    "oauth": "OAuth",
    "objects": "Custom Objects",
    "opportunities": "Opportunities",
    "payments": "Payments",
    "phone-system": "Phone System",
    "products": "Products",
    "proposals": "Documents & Contracts",
    "saas-api": "SaaS",
    "snapshots": "Snapshots",
    "social-media-posting": "Social Planner",
    "store": "Store",
    "surveys": "Surveys",
    "users": "Users",
    "voice-ai": "Voice AI",
    "workflows": "Workflows",
}
# Every category a generated record can have is one the registry accepts.
assert set(SERVICE_CATEGORIES.values()) <= set(CATEGORIES), set(SERVICE_CATEGORIES.values()) - set(CATEGORIES)

EXCLUSIONS = {
    "multipart": "multipart/form-data upload: needs a file input the record format lacks",
    "form": "application/x-www-form-urlencoded OAuth call: the service's own token handling, not a Zap step",
    "empty_body": "the spec's JSON body schema is empty: the generator cannot tell which fields to send",
}

# Query parameters that page a list, per catalog/pagination.py style.
PAGINATION_BY_PARAMS = [
    ({"skip", "limit"}, "skip_limit"),
    ({"offset", "limit"}, "offset_limit"),
    ({"page", "limit"}, "page_limit"),
]
PAGING_HINTS = {"skip", "offset", "page", "limit", "pageLimit", "startAfter", "startAfterId", "cursor",
                "lastDoc", "nextPageToken", "pageToken", "after", "before", "lastId", "startAfterDate"}
SIZE_PARAMS = {"limit", "pageLimit", "pageSize", "perPage"}
DESCENDING = ("desc", "descend", "descending", "DESC", "Desc", "-1")
SORT_HINTS = re.compile(r"^(sort|order)", re.IGNORECASE)
CREATED_FIELDS = ("dateAdded", "createdAt", "created_at", "dateCreated", "createdOn")
UPDATED_FIELDS = ("dateUpdated", "updatedAt", "updated_at", "lastUpdated")
ID_FIELDS = ("id", "_id")
ITEM_MODELS = {"contact": "contact", "contacts": "contact", "opportunity": "opportunity",
               "opportunities": "opportunity"}
WRAPPER_KEYS = {"traceId", "meta", "total", "count", "totalCount", "success", "message", "status",
                "statusCode", "succeded", "succeeded", "nextCursor", "nextPage", "prevPage", "currentPage"}
SAMPLE_FIELDS = 10
HELP_CHARS = 300
SUMMARY_CHARS = 200

SMALL_WORDS = {"a", "an", "and", "as", "at", "but", "by", "en", "for", "if", "in", "nor", "of", "on", "or",
               "the", "to", "v", "via", "vs"}
ACRONYMS = {"id": "ID", "ids": "IDs", "url": "URL", "urls": "URLs", "api": "API", "ai": "AI", "sms": "SMS",
            "seo": "SEO", "ip": "IP", "csv": "CSV", "html": "HTML", "dns": "DNS", "ssl": "SSL", "faq": "FAQ",
            "faqs": "FAQs", "saas": "SaaS", "ghl": "GHL", "utm": "UTM", "otp": "OTP", "kb": "KB", "oauth": "OAuth",
            "linkedin": "LinkedIn", "youtube": "YouTube", "tiktok": "TikTok"}


# ----------------------------------------------------------------------------- the specs


class Spec:
    """One spec file, with ``$ref`` resolution (local and ``../common`` refs)."""

    def __init__(self, spec_dir, app):
        self.spec_dir = Path(spec_dir)
        self.app = app
        self.data = self._load(self.spec_dir / "apps" / f"{app}.json")
        self._files = {}

    @staticmethod
    def _load(path):
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)

    def resolve(self, schema, depth=0):
        """``schema`` with ``$ref``s followed and ``allOf`` merged (top level only)."""
        schema = schema or {}
        seen = 0
        while isinstance(schema, dict) and "$ref" in schema and seen < 20:
            seen += 1
            target, _, pointer = schema["$ref"].partition("#")
            node = self.data
            if target:
                file = (self.spec_dir / "apps" / target).resolve()
                if file not in self._files:
                    self._files[file] = self._load(file) if file.exists() else {}
                node = self._files[file]
            for part in pointer.strip("/").split("/"):
                if not part:
                    continue
                node = node.get(part, {}) if isinstance(node, dict) else {}
            schema = node
        if isinstance(schema, dict) and "allOf" in schema and depth < 5:
            merged = {"type": "object", "properties": {}, "required": []}
            for part in schema["allOf"]:
                part = self.resolve(part, depth + 1)
                merged["properties"].update(part.get("properties", {}))
                merged["required"].extend(part.get("required", []))
            for key in ("description", "example"):
                if key in schema:
                    merged[key] = schema[key]
            return merged
        return schema if isinstance(schema, dict) else {}

    def operations(self):
        for path in sorted(self.data.get("paths", {})):
            item = self.data["paths"][path]
            for method in METHODS:
                if method in item:
                    yield method.upper(), path, item[method]


def spec_apps(spec_dir):
    return sorted(p.stem for p in (Path(spec_dir) / "apps").glob("*.json"))


def version_of(operation):
    for param in operation.get("parameters", []):
        if param.get("in") == "header" and param.get("name") == "Version":
            enum = (param.get("schema") or {}).get("enum") or []
            return enum[0] if enum else None
    return None


def scopes_of(operation):
    scopes = []
    for requirement in operation.get("security", []) or []:
        for names in requirement.values():
            scopes.extend(n for n in names if n not in scopes)
    return scopes


def access_of(operation):
    """``["agency"]``, ``["oauth"]``, both, or [] from the operation's security schemes.

    Schemes (ghl-api-notes.md B3): bearer and Location-Access take a sub-account token (OAuth or
    Private Integration Token), Agency-Access an agency one; the ``-Only`` variants take OAuth only.
    """
    schemes = {name for requirement in operation.get("security", []) or [] for name in requirement}
    if not schemes:
        return []
    access = []
    if all(s.startswith("Agency-") for s in schemes):
        access.append("agency")
    if all(s.endswith("-Only") for s in schemes):
        access.append("oauth")
    return access


# ----------------------------------------------------------------------------- text


def plain_text(text):
    """Spec prose (markdown, HTML) as one line of plain text."""
    text = re.sub(r"<[^>]+>", " ", text or "")
    text = html.unescape(text)
    text = re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"[*`#]+", "", text)
    return re.sub(r"\s+", " ", text).strip()


def shorten(text, limit):
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0].rstrip(",;:")
    return cut + "…"


def sentence(text):
    """``text`` ending with a full stop (or other end mark)."""
    text = text.strip()
    return text if not text or text[-1] in ".!?…" else text + "."


def first_sentence(text):
    match = re.match(r"(.+?[.!?])(\s|$)", text)
    return match.group(1) if match else text


def words_of(name):
    """``locationId`` -> ``["location", "Id"]``; ``custom-values`` -> ``["custom", "values"]``."""
    name = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1 \2", name)
    return [w for w in re.split(r"[^A-Za-z0-9]+", name) if w]


def title_case(text):
    """Each word capitalised but small words inside; acronyms and words with inner capitals kept."""
    words = text.split()
    out = []
    for index, word in enumerate(words):
        lead, core, trail = re.match(r"^([^A-Za-z0-9]*)(.*?)([^A-Za-z0-9]*)$", word).groups()
        if core.lower() in ACRONYMS and not any(c.isupper() for c in core[1:]):
            core = ACRONYMS[core.lower()]
        elif core and core[0].isalpha() and not any(c.isupper() for c in core[1:]):
            inner = 0 < index < len(words) - 1 and not lead and not out[-1].endswith(":")
            core = core.lower() if inner and core.lower() in SMALL_WORDS else core[0].upper() + core[1:]
        out.append(lead + core + trail)
    return " ".join(out)


def label_of(name):
    return title_case(" ".join(words_of(name)))


def singular(word):
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("sses", "shes", "ches", "xes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def noun_of(path):
    """What one item is, from the path's last literal segment: ``/products/{id}/price`` -> Price."""
    segments = [s for s in path.split("/") if s and not s.startswith("{")]
    ignore = {"search", "list", "all", "public-api", "bulk", "v2"}
    for segment in reversed(segments):
        if segment.lower() not in ignore:
            words = words_of(segment)
            if words:
                words[-1] = singular(words[-1])
                return title_case(" ".join(words))
    return "Item"


# ----------------------------------------------------------------------------- inputs


def scalar_type(schema):
    kind = schema.get("type")
    if kind == "integer":
        return "integer"
    if kind == "number":
        return "number"
    if kind == "boolean":
        return "boolean"
    if kind == "string" and schema.get("format") == "date-time":
        return "datetime"
    if kind == "string" or (kind is None and "enum" in schema):
        return "string"
    return None


def input_shape(spec, schema):
    """(type, list, choices) for a parameter or body property schema."""
    schema = spec.resolve(schema)
    for combo in ("oneOf", "anyOf"):
        if combo in schema:
            parts = [spec.resolve(p) for p in schema[combo]]
            types = {scalar_type(p) for p in parts}
            if len(types) == 1 and None not in types:
                return types.pop(), False, None
            return "json", False, None
    if schema.get("type") == "array":
        item = spec.resolve(schema.get("items"))
        kind = scalar_type(item)
        if kind and not any(c in item for c in ("oneOf", "anyOf")):
            return kind, True, enum_choices(item)
        return "json", False, None
    kind = scalar_type(schema)
    if kind:
        return kind, False, enum_choices(schema)
    if schema.get("type") == "object" and not schema.get("properties") and isinstance(schema.get("example"), str):
        # GHL types some string fields "object" (Create Post's type, example "post"): the example
        # says what GHL takes, as sandbox/spec_validator.py reads it too.
        return "string", False, None
    return ("json" if schema.get("type") in ("object", None) else "string"), False, None


def enum_choices(schema):
    enum = [v for v in schema.get("enum") or [] if v is not None and v != ""]
    return enum or None


def make_input(spec, key, name, schema, required, place, description):
    kind, is_list, choices = input_shape(spec, schema)
    schema = spec.resolve(schema)
    label = label_of(name)
    help_text = shorten(plain_text(description or schema.get("description", "")), HELP_CHARS)
    if kind == "json":
        help_text = (sentence(help_text) + " " if help_text else "") + "As JSON, in GHL's shape."
    field = {"key": key, "label": label, "type": kind, "required": bool(required),
             "help_text": help_text or f"The {label.lower() if not label.isupper() else label}.", "in": place}
    if key != name:
        field["field"] = name
    if is_list:
        field["list"] = True
    if choices:
        field["choices"] = choices
    default = schema.get("default")
    if name in SIZE_PARAMS and isinstance(default, (int, float)) and default <= 0:
        default = None  # GHL's specs give page sizes a default of 0, which asks for nothing
    if isinstance(default, bool) and kind == "string":
        default = "true" if default else "false"  # a string parameter with a boolean default, as GHL spells it
    if isinstance(default, (str, int, float, bool)) and not is_list and kind != "json":
        if not choices or default in choices:
            field["default"] = default
    elif choices and len(choices) == 1 and required:
        field["default"] = choices[0]
    return field


# ----------------------------------------------------------------------------- responses


def success_schema(spec, operation):
    for code in sorted(operation.get("responses", {})):
        if code.startswith("2"):
            content = (operation["responses"][code].get("content") or {}).get("application/json")
            if content and content.get("schema"):
                return spec.resolve(content["schema"])
    return None


def is_object(schema):
    return schema.get("type") == "object" or bool(schema.get("properties"))


def id_field_of(item):
    properties = item.get("properties", {})
    for name in ID_FIELDS:
        if name in properties:
            return name
    return None


def analyse_response(spec, schema, path=""):
    """What the success answer holds: ``{"shape": "list"|"object"|"unknown", "items", "item", ...}``."""
    path_words = {w.lower() for w in words_of(path)}
    if schema is None or not (is_object(schema) or schema.get("type") == "array"):
        return {"shape": "unknown", "items": None, "item": None, "note": "response shape (no response schema)"}
    if schema.get("type") == "array":
        item = spec.resolve(schema.get("items"))
        return {"shape": "list", "items": None, "item": item if is_object(item) else None}
    properties = {k: spec.resolve(v) for k, v in schema.get("properties", {}).items()}
    lists = [k for k, v in properties.items() if v.get("type") == "array" and k not in WRAPPER_KEYS]
    object_lists = [k for k in lists if is_object(spec.resolve(properties[k].get("items")))]
    objects = [k for k, v in properties.items() if is_object(v) and k not in WRAPPER_KEYS]
    scalars = [k for k, v in properties.items() if k not in WRAPPER_KEYS and k not in lists and k not in objects]
    if id_field_of(schema) or len(scalars) > 2:
        # An object with an id or fields of its own (a product with its variants) is one record.
        return {"shape": "object", "items": None, "item": schema}
    if len(object_lists) > 1:
        # Several lists: the items are the one the path names (GET /custom-fields/... {fields,
        # folders}); otherwise the answer is one object holding lists (a brand board's logos, colors...).
        named = [k for k in object_lists if k.lower() in path_words]
        if len(named) == 1:
            return {"shape": "list", "items": named[0], "item": spec.resolve(properties[named[0]].get("items")),
                    "note": f"items key (the answer also has {', '.join(k for k in object_lists if k != named[0])})"}
        return {"shape": "object", "items": None, "item": schema,
                "note": f"items (the answer holds several lists: {', '.join(object_lists)}; read as one object)"}
    if len(object_lists) == 1:
        key = object_lists[0]
        return {"shape": "list", "items": key, "item": spec.resolve(properties[key].get("items"))}
    if not object_lists and len(lists) == 1 and not objects:
        return {"shape": "list", "items": lists[0], "item": None}
    if len(objects) == 1 and not lists and not id_field_of(schema):
        return {"shape": "object", "items": objects[0], "item": properties[objects[0]]}
    return {"shape": "object", "items": None, "item": schema}


def input_schema(spec, operation, name):
    for param in operation.get("parameters", []):
        param = spec.resolve(param)
        if param.get("name") == name and param.get("in") == "query":
            return spec.resolve(param.get("schema"))
    return None


def trigger_order(query, pagination, paging_unknown=False):
    """What the record knows of a list's order, as an ``unknown`` entry; sets a documented
    descending sort order as the default of its input (newest first, where the spec says by date)."""
    sorts = sorted(n for n in query if SORT_HINTS.match(n))
    for name in sorts:
        field = query[name]
        descending = [c for c in field.get("choices") or [] if str(c) in DESCENDING]
        if descending:
            field["default"] = descending[0]
            others = [n for n in sorts if n != name]
            return (f"sort order: {name} defaults to {descending[0]}; the field it sorts by"
                    + (f" ({', '.join(others)})" if others else "") + " is not documented as the creation date")
    if sorts:
        return f"sort order (query {', '.join(sorts)} may set it; no descending value documented)"
    if pagination == "none" and not paging_unknown:
        return "sort order (not documented; one answer holds every item, so each is seen)"
    return "sort order (not documented)"


def pagination_of(query):
    names = set(query)
    for params, style in PAGINATION_BY_PARAMS:
        if params <= names:
            return style, None
    paging = sorted(names & PAGING_HINTS)
    if paging:
        return "none", f"pagination (query {', '.join(paging)}: no known style; reads the first page only)"
    return "none", None


# ----------------------------------------------------------------------------- samples


def sample_value(spec, name, schema, depth, noun="item"):
    schema = spec.resolve(schema)
    for combo in ("oneOf", "anyOf"):
        if combo in schema and schema[combo]:
            schema = spec.resolve(schema[combo][0])
    lower = name.lower()
    if schema.get("enum"):
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "array":
        item = spec.resolve(schema.get("items"))
        if depth >= 2:
            return []
        value = sample_value(spec, singular(name), item, depth + 1)
        return [value] if value not in (None, {}) else []
    if kind == "object" or schema.get("properties"):
        if depth >= 2:
            return {}
        return sample_object(spec, schema, depth + 1, limit=4)
    if kind == "boolean":
        return False
    if kind in ("integer", "number"):
        return 1
    if "email" in lower:
        return "sample@example.com"
    if "phone" in lower:
        return "+15550100001"
    if "url" in lower or "link" in lower or "website" in lower:
        return "https://example.com/sample"
    if schema.get("format") == "date-time" or re.search(r"(date|At$|time)", name) or lower.endswith("_at"):
        return "2024-01-01T00:00:00.000Z"
    if lower in ID_FIELDS and depth == 0:
        return f"sample-{'-'.join(w.lower() for w in words_of(noun))}-1"
    if lower in ID_FIELDS or lower.endswith("id"):
        return f"sample-{'-'.join(w.lower() for w in words_of(name)) or 'id'}-1"
    if "name" in lower or "title" in lower:
        return "Sample " + " ".join(words_of(name)).title()
    if kind == "string" or kind is None:
        return "sample"
    return None


def sample_object(spec, schema, depth=0, limit=SAMPLE_FIELDS, noun="item"):
    properties = schema.get("properties", {})
    names = sorted(properties, key=lambda n: (n not in ID_FIELDS, n not in schema.get("required", [])))
    sample = {}
    for name in names:
        if len(sample) >= limit:
            break
        value = sample_value(spec, name, properties[name], depth, noun)
        if value is not None:
            sample[name] = value
    return sample


# ----------------------------------------------------------------------------- records


def clean_summary(operation):
    summary = plain_text(operation.get("summary", ""))
    if not summary:
        summary = " ".join(words_of(operation.get("operationId", "")))
    return summary.rstrip(".")


def record_name(operation):
    name = title_case(clean_summary(operation))
    if operation.get("deprecated") and "deprecated" not in name.lower():
        name += " (Deprecated)"
    return name


def describe(operation, kind, noun):
    text = first_sentence(plain_text(operation.get("description", ""))) or clean_summary(operation) + "."
    if text.lower().startswith("deprecated"):
        text = clean_summary(operation) + "."
    text = shorten(text, SUMMARY_CHARS)
    if kind == "trigger":
        return f"Fires once for each new {noun.lower()}. {text}"
    return text


def build_inputs(spec, method, path, operation, body):
    """(inputs, unknown) from the path and query parameters and the body's top-level properties."""
    inputs, unknown, used = [], [], set()
    params = [spec.resolve(p) for p in operation.get("parameters", [])]
    declared_path = {p["name"] for p in params if p.get("in") == "path"}
    for name in re.findall(r"{([^}]+)}", path):
        if name not in declared_path:
            params.append({"name": name, "in": "path", "required": True, "schema": {"type": "string"}})
            unknown.append(f"path parameter {name} (used in the path, not declared in the spec)")
    for place in ("path", "query"):
        for param in params:
            if param.get("in") != place:
                continue
            name = param["name"]
            key = name if name not in used else f"{place}_{name}"
            used.add(key)
            required = place == "path" or bool(param.get("required"))
            inputs.append(make_input(spec, key, name, param.get("schema") or {}, required, place,
                                     param.get("description")))
    if body is not None:
        required = set(body.get("required", []))
        for name, schema in body.get("properties", {}).items():
            key = name if name not in used else f"body_{name}"
            used.add(key)
            inputs.append(make_input(spec, key, name, schema, name in required, "body",
                                     spec.resolve(schema).get("description")))
    names = {f.get("field", f["key"]) for f in inputs}
    for field in inputs:
        ghl = field.get("field", field["key"])
        if ghl in ("locationId", "location_id") or (ghl == "altId" and "altType" in names):
            field["location"] = True
            field["help_text"] = sentence(field["help_text"]) + " Leave empty to use the connected location."
    return inputs, unknown


def excluded_reason(operation):
    content = (operation.get("requestBody") or {}).get("content") or {}
    if "multipart/form-data" in content:
        return "multipart"
    if "application/x-www-form-urlencoded" in content:
        return "form"
    return None


def body_of(spec, operation):
    """The resolved JSON body schema, None without one; ``body_as_list`` when it is an array."""
    content = ((operation.get("requestBody") or {}).get("content") or {}).get("application/json")
    if content is None:
        return None, False
    schema = spec.resolve(content.get("schema"))
    if schema.get("type") == "array":
        return spec.resolve(schema.get("items")), True
    return schema, False


def build_record(spec, method, path, operation):
    """(record, None) or (None, exclusion reason key)."""
    reason = excluded_reason(operation)
    if reason:
        return None, reason
    body, body_as_list = body_of(spec, operation)
    if body is not None and not body.get("properties"):
        return None, "empty_body"
    app = spec.app
    unknown = []
    inputs, input_unknown = build_inputs(spec, method, path, operation, body)
    unknown.extend(input_unknown)
    query = {f.get("field", f["key"]): f for f in inputs if f["in"] == "query"}
    answer = analyse_response(spec, success_schema(spec, operation), path)
    if answer.get("note"):
        unknown.append(answer["note"])
    item = answer["item"] or {}
    id_field = id_field_of(item) if answer["item"] else None
    is_search_path = "search" in path.lower().split("/")[-1] or path.lower().rstrip("/").endswith("/search")
    if method == "GET" and answer["shape"] == "list" and id_field:
        kind = "trigger"
    elif method == "GET" or (method == "POST" and is_search_path):
        kind = "search"
    else:
        kind = "action"
    response = {"items": answer["items"], "single": answer["shape"] != "list", "id_field": id_field}
    if answer["shape"] == "list" and not id_field:
        unknown.append("item identity (items have no id)" if answer["item"] else "item fields (no item schema)")
    if kind == "trigger":
        pagination, note = pagination_of(query)
        if note:
            unknown.append(note)
        paging_unknown = bool(note)
        properties = item.get("properties", {})
        response.update({
            "version_field": next((f for f in UPDATED_FIELDS if f in properties), None),
            "sort_field": None,
            "pagination": pagination,
            "dedupe": "new",
        })
        unknown.append(trigger_order(query, pagination, paging_unknown))
        created = next((f for f in CREATED_FIELDS if f in properties), None)
        if pagination != "none" and created:
            # Order unknown: a 'created' watch with no sort_field scans the list (up to the
            # catch-up cap per poll, going round), so new items are seen in any order.
            response["watch"] = {"event": "created", "created_field": created}
        elif pagination != "none":
            unknown[-1] += ("; each poll reads every page up to the catch-up cap, so a new item is seen"
                            " wherever GHL lists it")
        # No generated record knows where GHL puts new items (trigger_order says what the spec
        # documents): triggers.poll reads every page up to the cap.
        response["order"] = "unknown"
        if pagination != "none":
            size = query.get(pagination_style(pagination)["size_param"])
            maximum = size and (input_schema(spec, operation, size["key"]) or {}).get("maximum")
            if isinstance(maximum, int) and maximum < pagination_style(pagination)["size"]:
                size["default"] = maximum
    noun = noun_of(path)
    if answer["item"]:
        sample = sample_object(spec, item, noun=noun)
    elif answer["shape"] == "list" and answer["items"]:
        sample = {answer["items"]: ["sample"]}
    else:
        sample = {}
    if not sample:
        sample = {"success": True}
        if "response shape (no response schema)" not in unknown:
            unknown.append("response fields (the spec's response schema has none)")
    record = {
        "key": None,
        "name": record_name(operation),
        "kind": kind,
        "category": SERVICE_CATEGORIES.get(app, title_case(app.replace("-", " "))),
        "noun": noun,
        "summary": describe(operation, kind, noun),
        "method": method,
        "path": path,
        "version": version_of(operation),
        "scopes": scopes_of(operation),
        "spec": {"app": app, "operation_id": operation.get("operationId")},
        "inputs": inputs,
        "response": response,
        "sample": sample,
        "generated": {"from": f"{app}.json {method} {path}", "unknown": unknown},
    }
    model = ITEM_MODELS.get((answer["items"] or "").split(".")[-1])
    if model:
        # Contacts and opportunities carry the location's custom fields (ghl/enrichment.py).
        record["custom_fields"] = {"model": model}
    if body_as_list:
        record["body_as_list"] = True
    if method in ("POST", "PUT", "PATCH") and not operation.get("requestBody"):
        record["body_format"] = "none"
    if method == "DELETE" and body is not None and (operation.get("requestBody") or {}).get("required"):
        record["body_required"] = True
    access = access_of(operation)
    if access:
        record["access"] = access
    return record, None


# ----------------------------------------------------------------------------- deprecations


def replacement_operation(spec, method, path, operation):
    """(app, operationId) of the operation the spec names as this deprecated one's replacement."""
    live = [(m, p, op) for m, p, op in spec.operations() if not op.get("deprecated")]
    text = plain_text(operation.get("description", ""))
    mentioned = re.search(r"use (GET|POST|PUT|PATCH|DELETE) (/[^\s`]*)", text, re.IGNORECASE)
    if mentioned:
        want_method = mentioned.group(1).upper()
        want_path = re.sub(r":(\w+)", r"{\1}", mentioned.group(2).rstrip(".,)"))
        for m, p, op in live:
            if m == want_method and (p == want_path or p.endswith(want_path)):
                return op.get("operationId")
        norm = re.sub(r"{[^}]+}", "{}", want_path)
        for m, p, op in live:
            if m == want_method and re.sub(r"{[^}]+}", "{}", p).endswith(norm):
                return op.get("operationId")
    base = re.sub(r"-deprecated$", "", operation.get("operationId", ""))
    for m, p, op in live:
        if op.get("operationId") == base and base != operation.get("operationId"):
            return base
    summary = clean_summary(operation).replace("(Deprecated)", "").strip().lower()
    for m, p, op in live:
        if m == method and clean_summary(op).lower() == summary:
            return op.get("operationId")
    return None


# ----------------------------------------------------------------------------- the whole run


def distinguishing_segment(path, name):
    """The first literal path segment (after the service's) with a word the name lacks:
    ``/ad-publishing/linkedin/ad-account`` tells "Get Ad Account Details" apart as ``Linkedin``."""
    have = {singular(w.lower()) for w in words_of(name)}
    segments = [s for s in path.split("/") if s and not s.startswith("{")][1:]
    for segment in segments:
        words = words_of(segment)
        if words and any(singular(w.lower()) not in have for w in words):
            return title_case(" ".join(words))
    return None


def load_overrides(path=OVERRIDES_FILE):
    """{(app, operationId): override} from ``generated_overrides.json``: each override is
    ``{"operation": [app, operationId], "inputs": {key: {field: value}}, "response": {field:
    value}, "why": text}``."""
    overrides = {}
    for override in json.loads(Path(path).read_text(encoding="utf-8")):
        operation = tuple(override["operation"])
        if operation in overrides or not override.get("why") or not set(override) <= {"operation", "inputs",
                                                                                       "response", "why"}:
            raise ValueError(f"override {operation}: one per operation, with a why, of inputs and response only")
        overrides[operation] = override
    return overrides


def apply_override(record, override):
    """``record`` with ``override``'s fields set; ``generated.overridden`` says which and why."""
    changed = []
    for key, patch in override.get("inputs", {}).items():
        field = next((f for f in record["inputs"] if f["key"] == key), None)
        if field is None:
            raise ValueError(f"override {override['operation']}: the record has no input {key!r}")
        field.update(patch)
        changed += [f"inputs.{key}.{name}" for name in patch]
    for name, value in override.get("response", {}).items():
        record["response"][name] = value
        changed.append(f"response.{name}")
    record["generated"]["overridden"] = {"fields": changed, "why": override["why"]}


def hand_written(directory=OPERATIONS_DIR):
    """{(app, operation_id): [hand-written keys]} and the set of hand-written names."""
    covered, names = {}, set()
    for record in load_records(directory):
        covered.setdefault((record["spec"]["app"], record["spec"]["operation_id"]), []).append(record["key"])
        names.add(record["name"])
    return covered, names


def generate(spec_dir=SPEC_DIR, operations_dir=OPERATIONS_DIR, overrides_file=OVERRIDES_FILE):
    """{"records": {app: [record]}, "covered": [...], "excluded": [...], "total": n}."""
    overrides = load_overrides(overrides_file)
    covered_by, taken_names = hand_written(operations_dir)
    taken_keys = {snake_key(n) for n in taken_names}
    records, covered, excluded, deprecated = {}, [], [], []
    by_operation = {}
    for app in spec_apps(spec_dir):
        spec = Spec(spec_dir, app)
        for method, path, operation in spec.operations():
            operation_id = operation.get("operationId")
            where = f"{app}.json {method} {path}"
            if (app, operation_id) in covered_by:
                keys = sorted(covered_by[(app, operation_id)])
                covered.append({"from": where, "operation_id": operation_id, "keys": keys})
                by_operation[(app, operation_id)] = keys[0]
                continue
            record, reason = build_record(spec, method, path, operation)
            if record is None:
                excluded.append({"from": where, "operation_id": operation_id, "reason": EXCLUSIONS[reason]})
                continue
            if (app, operation_id) in overrides:
                apply_override(record, overrides.pop((app, operation_id)))
            name = record["name"]
            candidates = [name] + [f"{name} ({extra})" for extra in (
                distinguishing_segment(path, name), record["category"],
                title_case(" ".join(words_of(operation_id or method))))
                if extra and not {w.lower() for w in words_of(extra)} <= {w.lower() for w in words_of(name)}]
            for candidate in candidates:
                if snake_key(candidate) not in taken_keys:
                    name = candidate
                    break
            else:
                raise ValueError(f"{where}: no free name for {record['name']!r}")
            record["name"] = name
            record["key"] = snake_key(name)
            taken_keys.add(record["key"])
            records.setdefault(app, []).append(record)
            by_operation[(app, operation_id)] = record["key"]
            if operation.get("deprecated"):
                deprecated.append((record, spec, method, path, operation))
    for record, spec, method, path, operation in deprecated:
        replacement = replacement_operation(spec, method, path, operation)
        record["deprecated"] = {"replacement": by_operation.get((spec.app, replacement))}
    if overrides:
        raise ValueError(f"overrides of operations that are not generated: {sorted(overrides)}")
    total = len(covered) + len(excluded) + sum(len(v) for v in records.values())
    return {"records": records, "covered": covered, "excluded": excluded, "total": total}


def render_records(records):
    return json.dumps(records, indent=2, ensure_ascii=False) + "\n"


def render_summary(result):
    generated = [r for records in result["records"].values() for r in records]
    kinds = Counter(r["kind"] for r in generated)
    lines = [
        "# Generated operations",
        "",
        "Written by `python -m catalog.generate --write` from `../shared/ghl-openapi/apps/*.json`;",
        "`--check` (and `tests/test_catalog_generate.py`) fail when this folder is stale.",
        "",
        f"Spec operations: {result['total']}. Hand-written (covered): {len(result['covered'])}. "
        f"Generated: {len(generated)} ({', '.join(f'{kinds[k]} {k}' + ('es' if k == 'search' else 's') for k in sorted(kinds))}). "
        f"Excluded: {len(result['excluded'])}.",
        "",
        "| service | generated | triggers | searches | actions | agency only | OAuth only | deprecated |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for app in sorted(result["records"]):
        rs = result["records"][app]
        count = Counter(r["kind"] for r in rs)
        lines.append(
            f"| {app} | {len(rs)} | {count['trigger']} | {count['search']} | {count['action']} | "
            f"{sum('agency' in r.get('access', []) for r in rs)} | {sum('oauth' in r.get('access', []) for r in rs)} | "
            f"{sum('deprecated' in r for r in rs)} |")
    lines += ["", "## Excluded", "", "| operation | operationId | reason |", "|---|---|---|"]
    lines += [f"| `{e['from']}` | {e['operation_id']} | {e['reason']} |" for e in result["excluded"]]
    lines += ["", "## Covered by hand-written records", "", "| operation | operationId | records |", "|---|---|---|"]
    lines += [f"| `{c['from']}` | {c['operation_id']} | {', '.join(c['keys'])} |" for c in result["covered"]]
    return "\n".join(lines) + "\n"


def render(result):
    """{file name: text} of the generated folder."""
    files = {f"{app}.json": render_records(records) for app, records in result["records"].items()}
    files[SUMMARY_FILE] = render_summary(result)
    return files


def stale_files(directory=GENERATED_DIR, result=None):
    """Names of files in ``directory`` that differ from, lack or outlive what the specs generate."""
    files = render(result or generate())
    directory = Path(directory)
    present = {p.name for p in directory.glob("*")} if directory.exists() else set()
    stale = sorted(name for name, text in files.items()
                   if name not in present or (directory / name).read_text(encoding="utf-8") != text)
    stale += sorted(present - set(files))
    return stale


def write(directory=GENERATED_DIR, result=None):
    files = render(result or generate())
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for path in directory.glob("*"):
        if path.name not in files:
            path.unlink()
    for name, text in files.items():
        (directory / name).write_text(text, encoding="utf-8")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m catalog.generate", description=__doc__.split("\n")[0])
    parser.add_argument("--write", action="store_true", help="rewrite catalog/generated/")
    parser.add_argument("--check", action="store_true", help="exit 1 when catalog/generated/ is stale")
    parser.add_argument("--dir", default=str(GENERATED_DIR), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    result = generate()
    if args.write:
        write(args.dir, result)
    if args.check:
        stale = stale_files(args.dir, result)
        if stale:
            print(f"stale generated catalog files (run python -m catalog.generate --write): {', '.join(stale)}",
                  file=sys.stderr)
            return 1
    generated = sum(len(v) for v in result["records"].values())
    print(f"{result['total']} spec operations: {len(result['covered'])} hand-written, {generated} generated, "
          f"{len(result['excluded'])} excluded")
    return 0


if __name__ == "__main__":
    sys.exit(main())
