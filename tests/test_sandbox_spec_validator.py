"""The sandbox's request validator (``sandbox.spec_validator``) against GHL's real OpenAPI specs."""

import pytest
import requests

from sandbox import spec_validator
from sandbox.app import create_sandbox_app
from sandbox.seed import LOCATION_ID
from sandbox.spec_validator import SpecValidator
from tests import ghl_spec

V2 = {"Version": "2021-07-28"}
CALENDARS = {"Version": "2021-04-15"}

pytestmark = pytest.mark.skipif(not (ghl_spec.SPEC_DIR / "apps").is_dir(), reason="no GHL OpenAPI specs")


@pytest.fixture(scope="module")
def spec():
    validator = SpecValidator(ghl_spec.SPEC_DIR)
    assert validator.enabled and validator.status.startswith("on: 576 operations")
    return validator


# -- operations: method and path ------------------------------------------------------------------

def test_an_unknown_path_or_a_method_the_path_does_not_take_is_no_operation(spec):
    assert spec.violations("GET", "/nope/x", {}, V2) == ["no such operation: GET /nope/x"]
    assert spec.violations("PATCH", "/contacts/c1", {}, V2) == [
        "no such operation: PATCH /contacts/c1 (the path takes DELETE, GET, PUT)"]


def test_a_templated_segment_matches_exactly_one_segment_and_literals_win(spec):
    assert spec.operation_for("GET", "/opportunities/search")[0].template == "/opportunities/search"
    assert spec.operation_for("GET", "/opportunities/o1") == (spec.operation_for("GET", "/opportunities/o1")[0],
                                                              {"id": "o1"})
    assert spec.operation_for("GET", "/contacts/a%2Fb")[1] == {"contactId": "a/b"}  # an escaped slash stays in
    assert spec.operation_for("GET", "/contacts/a/b")[0] is None
    assert spec.operation_for("GET", "/contacts//tasks")[0] is None  # an empty segment is no value
    assert spec.violations("GET", "/contacts", {"locationId": "l"}, V2) == []  # trailing slash: same route


# -- Version --------------------------------------------------------------------------------------

def test_version_must_be_the_operations(spec):
    assert spec.violations("GET", "/contacts/c1", {}, {}) == ["missing Version header (the spec's: 2021-07-28)"]
    assert spec.violations("GET", "/calendars/", {"locationId": "l"}, {"version": "2021-07-28"}) == [
        "Version '2021-07-28' is not the spec's (2021-04-15)"]
    assert spec.violations("GET", "/calendars/", {"locationId": "l"}, CALENDARS) == []
    # store.json declares no Version header: nothing to check.
    assert not [v for v in spec.violations("GET", "/store/shipping-zone", {}, {}) if "Version" in v]


# -- path and query parameters --------------------------------------------------------------------

def test_required_query_parameters_unknown_ones_types_enums_and_repeats(spec):
    assert spec.violations("GET", "/contacts/", {}, V2) == ["missing required query parameter 'locationId'"]
    assert spec.violations("GET", "/contacts/", {"locationId": [""]}, V2) == [
        "missing required query parameter 'locationId'"]
    found = spec.violations("GET", "/opportunities/search",
                            {"location_id": "l", "status": "sideways", "limit": "ten", "getNotes": "yes",
                             "locationId": "l"}, V2)
    assert found == [
        "query parameter 'status'='sideways' is not one of ['open', 'won', 'lost', 'abandoned', 'all']",
        "query parameter 'limit'='ten' is not a number",
        "query parameter 'getNotes'='yes' is not true or false",
        "unknown query parameter 'locationId'",
    ]
    assert spec.violations("GET", "/opportunities/search",
                           {"location_id": "l", "status": "won", "limit": "20", "getNotes": "true"}, V2) == []
    assert spec.violations("GET", "/products/", {"locationId": "l", "productIds": ["a", "b"],
                                                 "limit": ["1", "2"]}, V2) == [
        "query parameter 'limit' is sent 2 times"]  # productIds is an array: repeats are its items


# -- JSON bodies ----------------------------------------------------------------------------------

def test_a_valid_create_contact_has_no_violations(spec):
    body = {"locationId": "l", "firstName": "Ada", "tags": ["vip"], "dnd": False,
            "dndSettings": {"Call": {"status": "active"}},
            "customFields": [{"id": "cf1", "field_value": "green"}, {"id": "cf2", "field_value": ["a", "b"]}]}
    assert spec.violations("POST", "/contacts/", {}, V2, body) == []


def test_create_contact_without_location_id(spec):
    assert spec.violations("POST", "/contacts/", {}, V2, {"firstName": "Ada"}) == [
        "missing required field body.locationId"]


def test_types_and_enums_are_checked_inside_objects_and_arrays(spec):
    body = {"locationId": "l", "dnd": "yes", "tags": ["ok", 1],
            "dndSettings": {"Call": {"status": "maybe"}, "Email": {"status": 3}}}
    assert spec.violations("POST", "/contacts/", {}, V2, body) == [
        'body.dnd should be a boolean, not a string "yes"',
        "body.tags[1] should be a string, not a number 1",
        "body.dndSettings.Call.status=\"maybe\" is not one of ['active', 'inactive', 'permanent']",
        "body.dndSettings.Email.status should be a string, not a number 3",
    ]


def test_unknown_fields_and_nulls(spec):
    assert spec.violations("POST", "/contacts/", {}, V2, {"locationId": "l", "favouriteColour": "green"}) == [
        "unknown field body.favouriteColour"]
    assert spec.violations("POST", "/contacts/", {}, V2, {"locationId": None}) == ["body.locationId is null"]
    assert spec.violations("POST", "/contacts/", {}, V2, {"locationId": "l", "firstName": None}) == []


def test_any_of_accepts_a_value_one_branch_accepts(spec):
    # customFields items are anyOf nine per-type schemas, each requiring id (ghl-api-notes.md B7).
    assert spec.violations("POST", "/contacts/", {}, V2, {"locationId": "l", "customFields": [
        {"key": "contact.colour", "field_value": "green"}]}) == [
        "body.customFields[0] fits none of the 9 allowed shapes "
        "(closest: missing required field body.customFields[0].id)"]


def test_a_field_typed_object_with_a_scalar_example_takes_the_examples_type(spec):
    # NumericField.field_value is {"type": "object", "example": 100}: a number is what GHL means.
    numeric = {"locationId": "l", "customFields": [{"id": "cf", "field_value": 100}]}
    assert spec.violations("POST", "/contacts/", {}, V2, numeric) == []


def test_a_required_body_must_be_sent_and_no_body_where_none_is_declared(spec):
    assert spec.violations("DELETE", "/calendars/events/e1", {}, CALENDARS, None) == [
        "missing JSON body (the spec requires one)"]
    assert spec.violations("DELETE", "/calendars/events/e1", {}, CALENDARS, {}) == []
    assert spec.violations("DELETE", "/contacts/c1", {}, V2, {"x": 1}) == [
        "sends a JSON body where the spec takes no body"]


def test_allowances_silence_what_they_name_and_nothing_else(spec, monkeypatch):
    query = {"locationId": "l", "sortBy": "date_updated", "order": "desc"}
    assert spec.violations("GET", "/contacts/", query, V2) == [
        "unknown query parameter 'sortBy'", "unknown query parameter 'order'"]
    monkeypatch.setattr(spec_validator, "ALLOWANCES", [
        ("GET", "/contacts/", "query.sortBy", "a test's reason"),
        ("POST", "/contacts/", "body.customFields[].field_value", "a test's reason")])
    assert spec.violations("GET", "/contacts/", query, V2) == ["unknown query parameter 'order'"]
    assert spec.violations("POST", "/contacts/", {}, V2, {"locationId": "l", "customFields": [
        {"id": "cf", "field_value": True}]}) == []  # anyOf branches are checked under allowances
    assert spec.violations("PUT", "/contacts/c1", {}, V2, {"customFields": [
        {"id": "cf", "field_value": True}]}) != []  # another operation: still a violation
    monkeypatch.setattr(spec_validator, "ALLOWANCES", [("GET", "/nope/{id}", "path", "a test's reason")])
    assert spec.violations("GET", "/nope/x", {}, V2) == []  # an operation the specs leave out
    assert spec.violations("GET", "/nope/x/y", {}, V2) == ["no such operation: GET /nope/x/y"]


def test_without_specs_the_validator_is_off_and_says_so(tmp_path):
    validator = SpecValidator(tmp_path)
    assert not validator.enabled and validator.status == f"off: no GHL OpenAPI specs in {tmp_path}/apps"
    assert validator.violations("GET", "/nope", {}, {}) == []


# -- in the sandbox -------------------------------------------------------------------------------

def violations(sandbox):
    return requests.get(f"{sandbox.url}/_sandbox/violations", timeout=5).json()


def test_the_sandbox_records_violations_without_changing_its_answers(sandbox_reset):
    url = sandbox_reset.url
    auth = {"Authorization": "Bearer sandbox-token", **V2}
    assert violations(sandbox_reset)["violations"] == []
    good = requests.get(f"{url}/contacts/", params={"locationId": LOCATION_ID}, headers=auth, timeout=5)
    bad = requests.get(f"{url}/contacts/", params={"locationId": LOCATION_ID, "bogus": "1"}, headers=auth,
                       timeout=5)
    assert good.status_code == bad.status_code == 200 and bad.json() == good.json()
    requests.get(f"{url}/_sandbox/records", params={"path": "/contacts/"}, timeout=5)  # controls: not checked
    listed = violations(sandbox_reset)
    assert listed["validator"].startswith("on: ") and listed["strict"] is False and listed["total"] == 1
    assert listed["violations"] == [{"method": "GET", "path": "/contacts/", "operation": "GET /contacts/",
                                     "app": "contacts", "violations": ["unknown query parameter 'bogus'"]}]
    assert requests.delete(f"{url}/_sandbox/violations", timeout=5).json() == {"violations": []}
    assert violations(sandbox_reset)["violations"] == []
    requests.delete(f"{url}/calendars/events/e1", headers=auth, timeout=5)
    assert violations(sandbox_reset)["violations"][0]["violations"] == ["Version '2021-07-28' is not the spec's "
                                                                       "(2021-04-15)",
                                                                       "missing JSON body (the spec requires one)"]
    requests.post(f"{url}/_sandbox/reset", timeout=5).raise_for_status()
    assert violations(sandbox_reset) == {**listed, "total": 0, "violations": []}


def test_a_strict_sandbox_refuses_violations_with_422():
    client = create_sandbox_app(strict_spec=True, spec_dir=ghl_spec.SPEC_DIR).test_client()
    auth = {"Authorization": "Bearer sandbox-token", **V2}
    refused = client.post("/contacts/", json={"firstName": "Ada"}, headers=auth)
    assert refused.status_code == 422 and refused.json == {
        "statusCode": 422, "message": ["missing required field body.locationId"], "error": "Spec violation"}
    assert client.post("/contacts/", json={"firstName": "Ada", "locationId": LOCATION_ID},
                       headers=auth).status_code == 201
    assert client.get("/_sandbox/violations").json["total"] == 1


def test_a_sandbox_without_specs_serves_as_before_and_says_the_check_is_off(tmp_path):
    client = create_sandbox_app(spec_dir=tmp_path).test_client()
    answer = client.get("/contacts/", query_string={"locationId": LOCATION_ID, "bogus": "1"},
                        headers={"Authorization": "Bearer sandbox-token", **V2})
    assert answer.status_code == 200
    listed = client.get("/_sandbox/violations").json
    assert listed["validator"].startswith("off: ") and listed["violations"] == []
