"""Catalog browsing: JSON endpoints and the web page."""

from flask import Blueprint, jsonify, render_template, request

from catalog.registry import KINDS
from server.app import services
from server.errors import ApiError

blueprint = Blueprint("catalog", __name__)


@blueprint.get("/catalog")
def list_operations():
    catalog = services().catalog
    kind = request.args.get("kind", "").strip().lower() or None
    if kind and kind not in KINDS:
        raise ApiError(400, "invalid_filter", f"kind must be one of: {', '.join(KINDS)}")
    category = request.args.get("category", "").strip() or None
    found = catalog.filter(kind=kind, category=category, q=request.args.get("q"))
    return jsonify({
        "operations": found,
        "categories": catalog.categories(found),
        "counts": catalog.counts(found),
    })


@blueprint.get("/catalog/<key>")
def get_operation(key):
    record = services().catalog.get(key)
    if record is None:
        raise ApiError(404, "unknown_operation", f"There is no operation called {key!r} in the catalog.")
    return jsonify(record)


@blueprint.get("/")
def catalog_page():
    catalog = services().catalog
    return render_template("catalog.html", operations=catalog.operations, categories=catalog.categories(),
                           counts=catalog.counts())
