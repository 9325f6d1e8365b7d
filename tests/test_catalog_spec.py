"""Every catalog record against GHL's official OpenAPI specs, and against the seed list."""

import json

import pytest

from catalog.registry import CATEGORIES, load_catalog
from tests import ghl_spec

CATALOG = load_catalog()
SEED = json.loads((ghl_spec.SPEC_DIR.parent / "catalog-seed.json").read_text())
SPLIT_SEED_CATEGORIES = {"Other Operations", "Workflows & Campaigns"}
RECORDS = list(CATALOG)


def ghl_name(field):
    """The top-level GHL name an input writes to."""
    return field.get("field", field["key"]).split(".")[0]


@pytest.fixture(params=RECORDS, ids=[r["key"] for r in RECORDS])
def record(request):
    return request.param


def test_seed_operations_are_all_offered_under_their_seed_names_and_kinds():
    by_name = {r["name"]: r for r in RECORDS}
    assert len(SEED) == 125
    for seed in SEED:
        assert seed["name"] in by_name, f"seed operation {seed['name']!r} is missing"
        record = by_name[seed["name"]]
        expected_kind = seed["kind"]
        if record["kind"] == "search":
            assert expected_kind == "action", f"{seed['name']}: only seed actions can become searches"
        else:
            assert record["kind"] == expected_kind, seed["name"]
        if seed["category"] not in SPLIT_SEED_CATEGORIES:
            assert record["category"] == seed["category"], seed["name"]
    seed_names = {seed["name"] for seed in SEED}
    seed_searches = {r["key"] for r in CATALOG.of_kind("search") if r["name"] in seed_names}
    assert seed_searches == {"find_contact", "find_location_by_id"}


def test_seed_operations_keep_their_fourteen_categories_and_every_category_is_used():
    seed_names = {seed["name"] for seed in SEED}
    assert len({r["category"] for r in RECORDS if r["name"] in seed_names}) == 14
    assert {r["category"] for r in RECORDS} == set(CATEGORIES)


def test_record_matches_a_spec_operation(record):
    app = record["spec"]["app"]
    operation = ghl_spec.spec_operation(app, record["method"], record["path"])
    assert operation is not None, f"{record['method']} {record['path']} is not in apps/{app}.json"
    assert operation.get("operationId") == record["spec"]["operation_id"]
    assert record["version"] == ghl_spec.version_of(operation)
    assert record["scopes"] == ghl_spec.scopes_of(operation)


def required_parameter_problems(record):
    """Required spec parameters that neither a required input nor the record's window provides."""
    operation = ghl_spec.spec_operation(record["spec"]["app"], record["method"], record["path"])
    problems = []
    for place in ("path", "query"):
        inputs = {ghl_name(f): f for f in record["inputs"] if f["in"] == place}
        filled = ghl_spec.window_filled(record, place)
        for name, required in ghl_spec.parameters_of(operation, place).items():
            if not required or name in filled:
                continue
            if name not in inputs:
                problems.append(f"required {place} parameter {name} has no input")
            elif not inputs[name]["required"]:
                problems.append(f"{place} parameter {name} is required by the spec")
    return problems


def test_every_required_spec_parameter_is_a_required_input(record):
    assert required_parameter_problems(record) == []


def test_a_required_parameter_counts_as_provided_only_when_the_window_fills_it():
    record = CATALOG.get("list_calendar_events")
    assert required_parameter_problems(record) == []
    assert required_parameter_problems({**record, "window": None}) == [
        "query parameter startTime is required by the spec", "query parameter endTime is required by the spec"]
    without_inputs = {**record, "window": None,
                      "inputs": [f for f in record["inputs"] if f["key"] not in ("startTime", "endTime")]}
    assert required_parameter_problems(without_inputs) == [
        "required query parameter startTime has no input", "required query parameter endTime has no input"]


def test_window_parameters_are_spec_query_parameters(record):
    operation = ghl_spec.spec_operation(record["spec"]["app"], record["method"], record["path"])
    for name in ghl_spec.window_filled(record, "query"):
        assert name in ghl_spec.parameters_of(operation, "query"), f"the window fills {name}, not in the spec"


# Required body fields a record leaves out on purpose: spec errors, each with its evidence.
UNSENT_REQUIRED_FIELDS = {
    # The spec's schema requires attachmentUrls (files already hosted) but documents no file part;
    # its description says the file goes in the part fileAttachment, which the record sends.
    ("upload_conversation_attachment", "attachmentUrls"),
}


def test_every_required_body_field_is_a_required_input(record):
    operation = ghl_spec.spec_operation(record["spec"]["app"], record["method"], record["path"])
    schema = ghl_spec.body_schema_of(record["spec"]["app"], operation) or {}
    inputs = {}
    for field in record["inputs"]:
        if field["in"] == "body" and "." not in field.get("field", field["key"]):
            inputs[ghl_name(field)] = field
    for name in schema.get("required", []):
        if (record["key"], name) in UNSENT_REQUIRED_FIELDS:
            continue
        assert name in inputs, f"required body field {name} has no input"
        assert inputs[name]["required"], f"body field {name} is required by the spec"


def test_no_input_goes_where_the_spec_has_no_place(record):
    app = record["spec"]["app"]
    operation = ghl_spec.spec_operation(app, record["method"], record["path"])
    body = ghl_spec.body_schema_of(app, operation)
    for field in record["inputs"]:
        name = ghl_name(field)
        if field["key"] in ghl_spec.window_day_inputs(record):
            continue  # the window turns it into the range parameters; never sent itself
        if field["in"] in ("watch", "part_name"):
            continue  # applied by the service to GHL's items, or names a file part (registry-checked)
        if field["type"] == "file":
            binary = {n for n, p in ((body or {}).get("properties") or {}).items() if p.get("format") == "binary"}
            # Where the spec's schema has no binary part, its description names the part.
            assert not binary or name in binary, f"file input {field['key']} goes to part {name}, not {binary}"
            continue
        if field["in"] == "path":
            # The spec sometimes forgets to declare a parameter its own path template uses.
            assert name in ghl_spec.parameters_of(operation, "path") or "{" + name + "}" in record["path"], (
                f"input {field['key']} goes to path {name}, which the spec does not have")
        elif field["in"] == "query":
            assert name in ghl_spec.parameters_of(operation, "query"), (
                f"input {field['key']} goes to {field['in']} {name}, which the spec does not have")
        else:
            assert body is not None, f"input {field['key']} goes to a body the operation does not take"
            target = "customFields" if field["in"] == "custom_fields" else name
            properties = body.get("properties")
            if properties:
                assert target in properties, f"input {field['key']} goes to body field {target}, not in the spec"


def test_location_input_is_the_spec_location_parameter(record):
    for field in record["inputs"]:
        if field.get("location"):
            assert ghl_name(field) in ("locationId", "location_id", "altId"), field["key"]
