"""Catalog browsing: JSON endpoints and the web page.

Every query parameter here is untrusted: values are bounded in length and checked against the
values the catalog knows before any record is looked at. ``GET /catalog`` answers a bad filter
with a 400 that lists what is allowed; the page ``/`` ignores one (a stale or hand-edited link
still shows the catalog).

The page renders only the first ``FIRST_CHUNK`` matching operations into its HTML (all of them
with ``?all=1``); its script fetches ``/catalog/page-data.json`` (the fields a card shows, for
every record) and builds the other cards after the first paint, a slice at a time; a card's
detail view comes from ``/catalog/<key>`` when opened.
"""

import base64
import hashlib

import orjson
from flask import Blueprint, Response, jsonify, make_response, render_template, request, url_for

from catalog.registry import KINDS, ORIGINS
from server.app import services
from server.errors import ApiError

blueprint = Blueprint("catalog", __name__)

# Longest value accepted for each filter; ``q`` is free text, the others name catalog values.
MAX_Q_LENGTH = 200
MAX_NAME_LENGTH = 100
FILTERS = ("kind", "category", "service", "origin", "q")
# Operations the page's HTML holds before its script runs: a few screens' worth.
FIRST_CHUNK = 12

# What a card shows: the page-data record keeps only these fields (the detail view reads the record).
CARD_FIELDS = ("key", "name", "kind", "category", "service", "origin", "summary", "method", "path",
               "version", "scopes")


class FilterError(ApiError):
    def __init__(self, name, message, allowed=None):
        details = {"parameter": name}
        if allowed is not None:
            details["allowed"] = list(allowed)
        super().__init__(400, "invalid_filter", message, **details)


class _Derived:
    """What the routes derive from a catalog, computed once: the catalog does not change while
    the process runs (``categories()`` alone walks every record once per category)."""

    def __init__(self, catalog):
        self.catalog = catalog
        self.allowed = {
            "kind": list(KINDS),
            "category": [c["name"] for c in catalog.categories()],
            "service": catalog.services(),
            "origin": list(ORIGINS),
        }
        self.canonical = {name: {value.lower(): value for value in values} for name, values in self.allowed.items()}
        self.categories = catalog.categories()
        self.counts = catalog.counts()
        self.services = _facet(catalog.operations, "service", self.allowed["service"])
        self.origins = _facet(catalog.operations, "origin", ORIGINS)
        self.names = {record["key"]: record["name"] for record in catalog.operations}
        self.page_data = orjson.dumps({"operations": [card_record(r) for r in catalog.operations]})
        self.page_data_etag = hashlib.sha256(self.page_data).hexdigest()[:32]


_derived_cache = {}


def derived(catalog):
    entry = _derived_cache.get(id(catalog))
    if entry is None or entry.catalog is not catalog:
        entry = _Derived(catalog)
        if len(_derived_cache) >= 8:
            _derived_cache.clear()
        _derived_cache[id(catalog)] = entry
    return entry


def read_filters(args, catalog):
    """The filters in ``args`` as canonical values (None: not filtered); FilterError when a value
    is too long or not one the catalog knows."""
    known = derived(catalog)
    filters = {}
    for name in FILTERS:
        raw = args.get(name, "")
        limit = MAX_Q_LENGTH if name == "q" else MAX_NAME_LENGTH
        if len(raw) > limit:
            raise FilterError(name, f"{name} must be at most {limit} characters long.")
        value = raw.strip()
        if not value:
            filters[name] = None
            continue
        if name == "q":
            filters[name] = value
            continue
        canonical = known.canonical[name].get(value.lower())
        if canonical is None:
            shown = value if len(value) <= 40 else value[:40] + "…"
            raise FilterError(name, f"{name} {shown!r} is not known; it must be one of: "
                                    f"{', '.join(known.allowed[name])}.", known.allowed[name])
        filters[name] = canonical
    return filters


def page_filters(args, catalog):
    """The page's filters: like ``read_filters`` but a bad value is dropped, never an error."""
    filters = {}
    for name in FILTERS:
        try:
            filters.update({name: read_filters({name: args.get(name, "")[:MAX_Q_LENGTH]}, catalog)[name]})
        except FilterError:
            filters[name] = None
    return filters


def _facet(records, field, order):
    counts = {}
    for record in records:
        counts[record[field]] = counts.get(record[field], 0) + 1
    return [{"name": name, "count": counts[name]} for name in order if name in counts]


@blueprint.get("/catalog")
def list_operations():
    catalog = services().catalog
    filters = read_filters(request.args, catalog)
    found = catalog.filter(**filters)
    return jsonify({
        "operations": found,
        "categories": catalog.categories(found),
        "counts": catalog.counts(found),
        "services": _facet(found, "service", derived(catalog).allowed["service"]),
        "origins": _facet(found, "origin", ORIGINS),
        "filters": filters,
    })


def card_record(record):
    """What a card shows, for ``/catalog/page-data.json``; its detail view (inputs, what the spec
    does not say) is read from ``/catalog/<key>`` when the user opens it."""
    card = {field: record[field] for field in CARD_FIELDS}
    card["n_inputs"] = len(record["inputs"])
    card["n_required"] = sum(1 for item in record["inputs"] if item["required"])
    card["n_unknown"] = len((record.get("generated") or {}).get("unknown") or [])
    for optional in ("access", "deprecated"):
        if record.get(optional):
            card[optional] = record[optional]
    return card


@blueprint.get("/catalog/page-data.json")
def page_data():
    known = derived(services().catalog)
    response = Response(known.page_data, mimetype="application/json")
    response.set_etag(known.page_data_etag)
    response.headers["Cache-Control"] = "no-cache"
    return response.make_conditional(request)


@blueprint.get("/catalog/<key>")
def get_operation(key):
    record = services().catalog.get(key)
    if record is None:
        raise ApiError(404, "unknown_operation", f"There is no operation called {key[:100]!r} in the catalog.")
    return jsonify(record)


# The page's one inline script (catalog.html: it marks the page as scripted before it paints).
INLINE_SCRIPT = 'document.documentElement.classList.replace("no-js", "js");'
# Defence in depth: the page runs only its own scripts, loads only its own files, is never framed.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self' 'sha256-"
        + base64.b64encode(hashlib.sha256(INLINE_SCRIPT.encode()).digest()).decode()
        + "'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


@blueprint.get("/")
def catalog_page():
    catalog = services().catalog
    filters = page_filters(request.args, catalog)
    found = catalog.filter(**filters)
    show_all = request.args.get("all") == "1"
    first = found if show_all else found[:FIRST_CHUNK]
    rendered = {}
    for record in first:
        rendered.setdefault(record["category"], []).append(record)
    known = derived(catalog)
    all_url = url_for("catalog.catalog_page", all=1, **{k: v for k, v in filters.items() if v})
    page = make_response(render_template(
        "catalog.html", categories=known.categories, counts=known.counts, rendered=rendered,
        found=len(found), first=len(first), filters=filters, services=known.services,
        origins=known.origins, names=known.names, all_url=all_url, inline_script=INLINE_SCRIPT))
    page.headers.update(PAGE_HEADERS)
    return page
