"""The generated catalog (catalog/generate.py, catalog/generated/): current, valid, true to the specs."""

import json

import pytest

from catalog import generate
from catalog.registry import Catalog, load_records
from tests import ghl_spec
from zapier_app.checks import title_case

RESULT = generate.generate()
GENERATED = [r for app in sorted(RESULT["records"]) for r in RESULT["records"][app]]
HAND_WRITTEN = load_records()


@pytest.fixture(params=GENERATED, ids=[r["key"] for r in GENERATED])
def record(request):
    return request.param


def test_committed_files_are_what_the_specs_generate():
    assert generate.stale_files(result=RESULT) == [], "run: python -m catalog.generate --write"


def test_check_fails_on_a_stale_or_extra_file(tmp_path, capsys):
    generate.write(tmp_path, RESULT)
    assert generate.main(["--check", "--dir", str(tmp_path)]) == 0
    products = tmp_path / "products.json"
    records = json.loads(products.read_text())
    records[0]["summary"] = "edited by hand"
    products.write_text(json.dumps(records))
    (tmp_path / "extra.json").write_text("[]")
    assert generate.main(["--check", "--dir", str(tmp_path)]) == 1
    assert "products.json, extra.json" in capsys.readouterr().err


def test_generation_is_deterministic():
    assert generate.render(generate.generate()) == generate.render(RESULT)


def test_every_spec_operation_is_hand_written_generated_or_excluded_with_a_reason():
    operations = [(app, method.upper(), path) for app in ghl_spec.spec_apps()
                  for path, item in ghl_spec.spec_app(app)["paths"].items() for method in item]
    assert RESULT["total"] == len(operations) == 576
    places = [e["from"] for e in RESULT["covered"] + RESULT["excluded"]] + [r["generated"]["from"] for r in GENERATED]
    assert sorted(places) == sorted(f"{app}.json {method} {path}" for app, method, path in operations)
    assert all(e["reason"] in generate.EXCLUSIONS.values() for e in RESULT["excluded"])
    assert len(RESULT["excluded"]) <= 12


def test_no_generated_record_competes_with_a_hand_written_one():
    hand = {(r["spec"]["app"], r["spec"]["operation_id"]) for r in HAND_WRITTEN}
    assert not hand & {(r["spec"]["app"], r["spec"]["operation_id"]) for r in GENERATED}
    assert len(RESULT["covered"]) == len(hand)


def test_generated_and_hand_written_records_load_together():
    catalog = Catalog(HAND_WRITTEN + GENERATED)
    assert len(catalog) == len(HAND_WRITTEN) + len(GENERATED)


def test_enums_are_choices(record):
    app = record["spec"]["app"]
    operation = ghl_spec.spec_operation(app, record["method"], record["path"])
    enums = {}
    for param in operation.get("parameters", []):
        if param.get("in") in ("path", "query"):
            schema = param.get("schema") or {}
            schema = schema.get("items", schema) if schema.get("type") == "array" else schema
            enums[(param["in"], param["name"])] = schema.get("enum")
    body = ghl_spec.body_schema_of(app, operation) or {}
    if body.get("type") == "array":
        body = ghl_spec.resolve(app, body.get("items"))
    for name, schema in body.get("properties", {}).items():
        schema = ghl_spec.resolve(app, schema)
        schema = ghl_spec.resolve(app, schema.get("items")) if schema.get("type") == "array" else schema
        enums[("body", name)] = schema.get("enum")
    for field in record["inputs"]:
        enum = [v for v in enums.get((field["in"], field.get("field", field["key"]))) or [] if v not in (None, "")]
        if enum:
            assert field.get("choices") == enum, field["key"]


def test_record_says_where_it_came_from_and_what_is_unknown(record):
    generated = record["generated"]
    assert generated["from"] == f"{record['spec']['app']}.json {record['method']} {record['path']}"
    assert isinstance(generated["unknown"], list) and all(isinstance(u, str) and u for u in generated["unknown"])
    if record["kind"] == "trigger":
        assert any(u.startswith("sort order") for u in generated["unknown"])


def test_name_is_in_title_case(record):
    assert record["name"] == title_case(record["name"])


def test_kinds_follow_the_answer():
    for record in GENERATED:
        response = record["response"]
        if record["kind"] == "trigger":
            assert record["method"] == "GET" and not response["single"] and response["id_field"]
            assert response["dedupe"] == "new"
        elif record["method"] != "GET" and record["kind"] == "search":
            assert record["method"] == "POST" and "search" in record["path"]
    kinds = {r["kind"] for r in GENERATED}
    assert kinds == {"trigger", "search", "action"}


def test_access_marks_follow_the_spec_security():
    for record in GENERATED + HAND_WRITTEN:
        operation = ghl_spec.spec_operation(record["spec"]["app"], record["method"], record["path"])
        schemes = {name for requirement in operation.get("security") or [] for name in requirement}
        access = record.get("access", [])
        assert ("agency" in access) == bool(schemes and all(s.startswith("Agency-") for s in schemes))
        assert ("oauth" in access) == bool(schemes and all(s.endswith("-Only") for s in schemes))


def test_deprecated_records_point_to_their_replacement():
    keys = {r["key"] for r in HAND_WRITTEN + GENERATED}
    by_key = {r["key"]: r for r in GENERATED}
    deprecated = [r for r in GENERATED + HAND_WRITTEN if "deprecated" in r]
    for record in GENERATED + HAND_WRITTEN:
        operation = ghl_spec.spec_operation(record["spec"]["app"], record["method"], record["path"])
        assert ("deprecated" in record) == bool(operation.get("deprecated")), record["key"]
    for record in deprecated:
        replacement = record["deprecated"]["replacement"]
        assert replacement is None or replacement in keys
        if replacement in by_key:
            assert "deprecated" not in by_key[replacement]
    assert by_key["list_agents_deprecated"]["deprecated"]["replacement"] == "list_agents"
    assert by_key["get_agent_deprecated"]["deprecated"]["replacement"] == "get_agent"
    assert by_key["execute_agent_deprecated"]["deprecated"]["replacement"] == "execute_agent"
    with_replacement = [r for r in deprecated if r["deprecated"]["replacement"]]
    assert len(with_replacement) >= len(deprecated) - 3  # the X (Twitter) operations have none


def test_samples_are_obviously_fake():
    text = json.dumps([r["sample"] for r in GENERATED])
    for real_looking in ("@gmail", "@yahoo", "John", "Deo", "ve9EPM428h8vShlRW1KT"):
        assert real_looking not in text


def test_an_override_corrects_a_generated_field_and_says_why():
    record = next(r for r in GENERATED if r["key"] == "create_post")
    post_type = next(f for f in record["inputs"] if f["key"] == "type")
    assert post_type["type"] == "string" and post_type["choices"] == ["post", "story", "reel"]
    assert record["generated"]["overridden"] == {
        "fields": ["inputs.type.choices"], "why": generate.load_overrides()[("social-media-posting", "create-post")]["why"]}


@pytest.mark.parametrize("override, problem", [
    ({"operation": ["contacts", "get-contact"], "inputs": {}, "why": "w"}, "not generated"),
    ({"operation": ["products", "create-product"], "inputs": {"nope": {"label": "x"}}, "why": "w"}, "no input 'nope'"),
    ({"operation": ["products", "create-product"], "inputs": {}}, "with a why"),
])
def test_an_override_that_no_longer_applies_fails_generation(tmp_path, override, problem):
    path = tmp_path / "overrides.json"
    path.write_text(json.dumps([override]))
    with pytest.raises(ValueError, match=problem):
        generate.generate(overrides_file=path)
