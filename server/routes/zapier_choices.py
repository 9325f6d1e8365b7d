"""``/zapier/choices/<source>``: dropdown choices (``[{id, name}]``) read from the connection's GHL
account, for the Zapier app's dynamic dropdowns (hand-written sources, and the generated GHL lists
that fill inputs of generated operations).

One GHL page per call (Zapier's "load more" asks for the next with ``page``, from 0), read the
way a trigger's sample is: nothing is recorded. The sources are data in ``zapier_app.choices``.
"""

import re

from flask import Blueprint, jsonify, request

from catalog.inputs import fill_location, validate_inputs
from ghl import enrichment
from server.app import services
from server.errors import ApiError
from server.routes.caller import bearer_token, location_header
from triggers.poll import iter_pages
from zapier_app.choices import (
    MAX_PAGE,
    available,
    choices_from,
    find_source,
    start_position,
    step_keys,
)

blueprint = Blueprint("zapier_choices", __name__)

MAX_STEP_INPUT_CHARS = 200
MAX_LISTED_PROBLEMS = 10
PAGE_PATTERN = re.compile(r"^[0-9]{1,4}$")


def _source(name):
    catalog = services().catalog
    if not available(name, catalog):
        raise ApiError(404, "unknown_choice_source", f"There is no dropdown source called {name[:64]!r}.")
    return find_source(name, catalog)


def _page():
    """Zapier's ``page`` (0-based, default 0): a whole number from 0 to MAX_PAGE, else a 400."""
    values = request.args.getlist("page")
    raw = values[0].strip() if len(values) == 1 else ("" if not values else None)
    if raw == "":
        return 0
    if raw is None or not PAGE_PATTERN.match(raw) or int(raw) > MAX_PAGE:
        raise ApiError(400, "invalid_page", f"page must be a whole number from 0 to {MAX_PAGE}.")
    return int(raw)


def _step_inputs(source):
    """The step's inputs the source takes (blank ones dropped): one short printable value each."""
    allowed = set(step_keys(source))
    problems, given = {}, {}
    for key in request.args:
        if key == "page":
            continue
        if len(problems) >= MAX_LISTED_PROBLEMS:
            break
        if key not in allowed:
            problems[key[:64]] = "unknown input"
            continue
        values = request.args.getlist(key)
        value = values[0].strip() if len(values) == 1 else None
        if value is None:
            problems[key] = "takes one value"
        elif len(value) > MAX_STEP_INPUT_CHARS or not value.isprintable():
            problems[key] = f"must be at most {MAX_STEP_INPUT_CHARS} printable characters"
        elif value:
            given[key] = value
    if problems:
        raise ApiError(400, "invalid_input", "Some inputs are invalid: " + ", ".join(
            f"{key} ({problem})" for key, problem in sorted(problems.items())), fields=problems)
    required = source.get("requires", ())
    if required and not any(key in given for key in required):
        raise ApiError(400, "choice_needs_input",
                       f"Fill in {' or '.join(_labels(source, required))} first: the {source['noun'].lower()} "
                       "choices are those of the one you choose there.", fields={key: "required" for key in required})
    return given


def _labels(source, step_inputs):
    """The labels of ``step_inputs`` as the source's record names them (``Contact ID``)."""
    record = services().catalog.get(source["record"])
    labels = {field["key"]: field["label"] for field in record["inputs"]}
    chain = source.get("chain", {})
    return [labels.get(chain.get(key, key), key) for key in step_inputs]


@blueprint.get("/zapier/choices/<name>")
def list_choices(name):
    source = _source(name)
    token = bearer_token()
    page = _page()
    step = _step_inputs(source)
    shared = services()
    record = shared.catalog.get(source["record"])
    start = start_position(name, record, page, shared.catalog)
    if start is None:
        return jsonify([])  # the source answers one page only
    inputs = dict(source.get("fixed", {}))
    inputs.update({record_key: step[step_key] for step_key, record_key in source.get("chain", {}).items()
                   if step_key in step})
    inputs = validate_inputs(record, fill_location(record, inputs, location_header()))
    items, _ = next(iter_pages(shared.client, record, inputs, token, start=start or None,
                               fixed=source.get("request")))
    if source.get("enrich"):
        context = enrichment.Context.for_request(shared.client, token, record, inputs, shared.settings.ghl_app_url)
        items = enrichment.enrich_items(context, record, items)
    return jsonify(choices_from(name, items, record, step, shared.catalog))
