"""Input validation and request building from catalog records."""

import pytest

from catalog.inputs import InvalidInput, fill_location, validate_inputs
from catalog.registry import load_catalog
from ghl.request_builder import build_request

CATALOG = load_catalog()


def problems(record, raw):
    with pytest.raises(InvalidInput) as caught:
        validate_inputs(record, raw)
    return caught.value.fields


def test_every_problem_is_reported_at_once():
    record = CATALOG.get("create_contact")
    found = problems(record, {"dnd": "maybe", "tags": {"a": 1}, "nope": 1})
    assert found == {"locationId": "required", "dnd": "must be true or false", "tags": "must be text",
                     "nope": "unknown input"}


def test_blank_optional_inputs_are_dropped_and_types_coerced():
    record = CATALOG.get("create_contact")
    clean = validate_inputs(record, {"locationId": "loc1", "email": "", "phone": None, "dnd": "true",
                                     "tags": "vip, new ,", "firstName": 42})
    assert clean == {"locationId": "loc1", "dnd": True, "tags": ["vip", "new"], "firstName": "42"}


def test_choices_are_enforced():
    record = CATALOG.get("bulk_update_contact_tags")
    assert "must be one of" in problems(record, {"type": "explode"})["type"]


def test_integer_number_datetime_and_json_types():
    record = {"inputs": [
        {"key": "n", "label": "n", "type": "integer", "in": "query"},
        {"key": "x", "label": "x", "type": "number", "in": "query"},
        {"key": "d", "label": "d", "type": "datetime", "in": "query"},
        {"key": "j", "label": "j", "type": "json", "in": "body"},
    ]}
    assert validate_inputs(record, {"n": "12", "x": "1.5", "d": "2024-05-01T09:30:00Z", "j": '{"a": 1}'}) == {
        "n": 12, "x": 1.5, "d": "2024-05-01T09:30:00Z", "j": {"a": 1}}
    assert set(problems(record, {"n": "1.2", "x": "abc", "d": "yesterday", "j": "{"})) == {"n", "x", "d", "j"}


@pytest.mark.parametrize("value", [".", ".."])
def test_dot_segments_are_refused_as_path_values(value):
    assert problems(CATALOG.get("get_contact"), {"contactId": value}) == {"contactId": "is not a valid id"}


@pytest.mark.parametrize("value, encoded", [
    ("../../locations/x", "..%2F..%2Flocations%2Fx"),
    ("a/b", "a%2Fb"),
    ("%2e%2e", "%252e%252e"),
    ("?x=1", "%3Fx%3D1"),
    ("#", "%23"),
    ("https://evil.test/x", "https%3A%2F%2Fevil.test%2Fx"),
])
def test_path_values_are_encoded_as_one_segment(value, encoded):
    record = CATALOG.get("get_contact")
    request = build_request(record, validate_inputs(record, {"contactId": value}))
    assert request.path == f"/contacts/{encoded}"


def test_custom_field_slots_become_the_write_shape():
    record = CATALOG.get("create_contact")
    raw = {"locationId": "loc1", "custom_field_1_id": "abc123", "custom_field_1_value": "gold",
           "custom_field_2_id": "contact.favourite_colour", "custom_field_2_value": "blue"}
    request = build_request(record, validate_inputs(record, raw))
    assert request.body["customFields"] == [
        {"id": "abc123", "field_value": "gold"},
        {"key": "contact.favourite_colour", "field_value": "blue"},
    ]
    assert sum(1 for f in record["inputs"] if f["key"].startswith("custom_field_")) == 20


def test_half_a_custom_field_slot_is_an_error():
    record = CATALOG.get("update_contact")
    found = problems(record, {"contactId": "c1", "custom_field_3_value": "x"})
    assert list(found) == ["custom_field_3_id"]


def test_location_header_fills_the_location_input_only_when_left_out():
    record = CATALOG.get("create_contact")
    assert fill_location(record, {}, "loc-h") == {"locationId": "loc-h"}
    assert fill_location(record, {"locationId": "loc-i"}, "loc-h") == {"locationId": "loc-i"}
    opportunities = CATALOG.get("search_opportunities")
    location_keys = [f["key"] for f in opportunities["inputs"] if f.get("location")]
    assert fill_location(opportunities, {}, "loc-h") == {location_keys[0]: "loc-h"}


def test_every_operation_that_takes_a_location_marks_its_location_input():
    for record in CATALOG:
        names = {f.get("field", f["key"]) for f in record["inputs"]}
        marked = [f for f in record["inputs"] if f.get("location")]
        if {"locationId", "location_id"} & names:
            assert marked, f"{record['key']} takes a location but marks no input as the location"


def test_problems_are_listed_up_to_a_bound_then_counted():
    record = CATALOG.get("create_contact")
    raw = {f"unknown_{n:05d}": 1 for n in range(10_000)}
    raw.update({"locationId": "loc1", "dnd": "maybe", "k" * 100_000: 1})
    with pytest.raises(InvalidInput) as caught:
        validate_inputs(record, raw)
    error = caught.value
    # The declared input's problem is listed first; 25 in all; the rest is a count.
    assert list(error.fields)[0] == "dnd" and len(error.fields) == 25 and error.omitted == 10_001 - 24
    assert str(error).endswith(f", and {error.omitted:,} more") and len(str(error)) < 3000
    long_keys = InvalidInput({"k" * 100_000 + str(n): "unknown input" for n in range(30)})
    assert len(long_keys.fields) == 25 and all(len(key) <= 64 for key in long_keys.fields)


def test_path_values_are_bounded():
    record = CATALOG.get("get_contact")
    assert validate_inputs(record, {"contactId": "a" * 512}) == {"contactId": "a" * 512}
    assert problems(record, {"contactId": "a" * 513}) == {"contactId": "must be at most 512 characters"}
    assert problems(record, {"contactId": "a" * 3_000_000}) == {"contactId": "must be at most 512 characters"}


def test_the_ghl_url_is_bounded_and_the_input_that_fills_it_is_named():
    record = CATALOG.get("search_opportunities")
    fits = build_request(record, validate_inputs(record, {"location_id": "loc1", "q": "a" * 3000}))
    assert fits.query["q"] == "a" * 3000
    with pytest.raises(InvalidInput) as caught:
        too_long = {"location_id": "loc1", "q": "a" * 3000, "contact_id": "é" * 200}
        build_request(record, validate_inputs(record, too_long))
    assert caught.value.fields == {"q": "makes the GHL request's URL longer than 4,096 characters"}


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-Infinity", "1e400"])
def test_numbers_must_be_finite(value):
    record = {"inputs": [{"key": "x", "label": "x", "type": "number", "in": "body"}]}
    assert problems(record, {"x": value}) == {"x": "must be a finite number"}


@pytest.mark.parametrize("text, problem", [
    ('{"a": NaN}', "must be JSON"),
    ("[" * 33 + "]" * 33, "must be JSON nested at most 32 levels deep"),
    ("[" * 10_000 + "]" * 10_000, "must be JSON nested at most 32 levels deep"),
    ("[" + ",".join(["1"] * 10_001) + "]", "must be JSON of at most 10,000 keys and list items"),
])
def test_json_inputs_given_as_text_are_read_strictly_and_within_the_limits(text, problem):
    record = {"inputs": [{"key": "j", "label": "j", "type": "json", "in": "body"}]}
    assert problems(record, {"j": text}) == {"j": problem}


@pytest.mark.parametrize("value", ["a\x00b", "  ", "x" * 65, "a b", "id/../x", "{file_id}"])
def test_a_value_that_names_a_file_part_is_a_plain_id(value):
    record = CATALOG.get("upload_file_to_contact_custom_field")
    inputs = {"contactId": "c1", "locationId": "loc", "customFieldId": value, "file": "https://files.example/a.pdf"}
    with pytest.raises(InvalidInput) as refused:
        validate_inputs(record, inputs)
    assert "customFieldId" in refused.value.fields


def test_a_custom_field_id_names_its_file_part():
    record = CATALOG.get("upload_file_to_contact_custom_field")
    inputs = {"contactId": "c1", "locationId": "loc", "customFieldId": "Abc_12-x", "file": "https://files.example/a.pdf"}
    assert validate_inputs(record, inputs)["customFieldId"] == "Abc_12-x"
