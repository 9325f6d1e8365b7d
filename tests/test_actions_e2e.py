"""Actions and searches through the service, checked by what the sandbox GHL actually received."""

import json

import pytest
import requests

from catalog.registry import load_catalog
from sandbox.record_inputs import spec_operation, value_of
from sandbox.spec_validator import SpecValidator
from tests.conftest import LOCATION, SANDBOX_TOKEN, operation_requests

CATALOG = load_catalog()
VALIDATOR = SpecValidator()
# Hand-written records here (tests/test_every_operation.py drives every record, generated ones
# too); uploads are tests/test_uploads.py's.
ACTIONS = [r for r in CATALOG.of_kind("action", "search")
           if r["origin"] == "hand-written" and r.get("body_format", "json") == "json"]


def sample_value(field, record):
    """A valid value for ``field`` that needs no encoding, so the expected request is easy to spell;
    JSON as GHL's spec shapes it (``sandbox.record_inputs``)."""
    if field["type"] == "json":
        return value_of(field, spec_operation(record, VALIDATOR))
    if field.get("choices") or field.get("default") is not None:
        # Zapier spells choices and defaults as text; the service coerces them to the field's type.
        value = field["choices"][0] if field.get("choices") else field["default"]
        if field["type"] == "boolean":
            value = str(value).lower() == "true"
        elif field["type"] == "integer":
            value = int(value)
        elif field["type"] == "number":
            value = float(value)
    else:
        value = {
            "string": f"v-{field['key']}",
            "text": f"Some text for {field['key']}",
            "integer": 7,
            "number": 2.5,
            "boolean": True,
            "datetime": "2024-05-01T09:30:00+00:00",
        }[field["type"]]
    if field["key"].startswith("custom_field_") and field["key"].endswith("_id"):
        value = f"cf{field['key'].split('_')[2]}"
    return [value] if field.get("list") and not isinstance(value, list) else value


def expected_request(record, inputs):
    """What GHL must receive, written out from the record independently of the request builder."""
    path = record["path"]
    query, body = {}, {}
    for field in record["inputs"]:
        if field["in"] == "custom_fields":
            continue
        value = inputs[field["key"]]
        name = field.get("field", field["key"])
        if field["in"] == "path":
            path = path.replace("{" + name + "}", str(value))
        elif field["in"] == "query":
            values = value if isinstance(value, list) else [value]
            query[name] = [("true" if v else "false") if isinstance(v, bool) else str(v) for v in values]
        elif field["in"] == "body":
            node = body
            parts = name.split(".")
            for part in parts[:-1]:
                node = node.setdefault(part, {})
            node[parts[-1]] = value
    if record.get("body_as_list"):
        body = [body]
    takes_body = record["method"] in ("POST", "PUT", "PATCH") or bool(body) or record.get("body_required", False)
    return {"method": record["method"], "path": path, "query": query, "json": body if takes_body else None,
            "version": record["version"]}


def create_named_records(sandbox, record, inputs):
    """Create, in the sandbox, every record the operation's path names (the contact and the
    task of ``/contacts/{contactId}/tasks/{taskId}``), so the action has something to act on."""
    values = {f.get("field", f["key"]): str(inputs[f["key"]]) for f in record["inputs"] if f["in"] == "path"}
    walked = []
    for segment in record["path"].split("/"):
        name = segment[1:-1] if segment.startswith("{") and segment.endswith("}") else None
        if name:
            collection = "/".join(walked) or "/"
            requests.post(f"{sandbox.url}/_sandbox/records", timeout=5, json={
                "path": collection, "records": [{"id": values[name], "_id": values[name]}]}).raise_for_status()
            walked.append(values[name])
        else:
            walked.append(segment)


def received(sandbox):
    return requests.get(f"{sandbox.url}/_sandbox/requests", timeout=5).json()["requests"]


@pytest.mark.parametrize("record", ACTIONS, ids=[r["key"] for r in ACTIONS])
def test_every_action_and_search_sends_exactly_the_spec_request_and_is_accepted(record, client, sandbox_reset):
    # Custom fields are tests/test_custom_fields.py's: their values are checked against the location's definitions.
    inputs = {field["key"]: sample_value(field, record) for field in record["inputs"] if field["in"] != "custom_fields"}
    create_named_records(sandbox_reset, record, inputs)
    requests.delete(f"{sandbox_reset.url}/_sandbox/requests", timeout=5)
    response = client.post(f"/actions/{record['key']}", json=inputs,
                           headers={"Authorization": f"Bearer {SANDBOX_TOKEN}"})
    assert response.status_code == 200, response.json
    assert isinstance(response.json, list if record["kind"] == "search" else dict)
    log = operation_requests(sandbox_reset)
    assert len(log) == 1, log
    got = log[0]
    want = expected_request(record, json.loads(json.dumps(inputs)))
    assert got["method"] == want["method"]
    assert got["path"] == want["path"]
    assert got["query"] == want["query"]
    assert got["json"] == want["json"]
    assert got["version"] == want["version"]
    assert got["auth"] is True


def test_create_then_search_then_trigger(client, auth, sandbox_reset):
    created = client.post("/actions/create_contact", headers=auth, json={
        "firstName": "Grace", "email": "grace@example.com", "tags": ["vip"],
        "custom_field_1_id": "contact.favorite_color", "custom_field_1_value": "green"})
    assert created.status_code == 200, created.json
    contact = created.json
    assert contact["id"] and contact["email"] == "grace@example.com" and contact["locationId"] == LOCATION
    found = client.post("/actions/find_contact", headers=auth, json={"email": "grace@example.com"})
    assert found.status_code == 200 and [c["id"] for c in found.json] == [contact["id"]]
    nothing = client.post("/actions/find_contact", headers=auth, json={"email": "nobody@example.com"})
    assert nothing.status_code == 200 and nothing.json == []
    polled = client.post("/triggers/list_contacts_deprecated", headers=auth, json={}).json
    assert contact["id"] in {item["ghl_id"] for item in polled}


def test_validation_errors_are_all_reported_before_ghl_is_called(client, sandbox_reset):
    requests.delete(f"{sandbox_reset.url}/_sandbox/requests", timeout=5)
    response = client.post("/actions/create_opportunity", headers={"Authorization": f"Bearer {SANDBOX_TOKEN}"},
                           json={"monetaryValue": "lots", "status": "sideways"})
    assert response.status_code == 400
    error = response.json["error"]
    assert error["code"] == "invalid_input"
    assert {"monetaryValue", "status"} <= set(error["fields"]) and len(error["fields"]) >= 3
    assert received(sandbox_reset) == []


@pytest.mark.parametrize("value", ["../../locations/x", "a/b", "%2e%2e", "?x=1", "#", "https://evil.test/x"])
def test_crafted_ids_stay_one_segment_of_the_intended_path(value, client, auth, sandbox_reset):
    requests.delete(f"{sandbox_reset.url}/_sandbox/requests", timeout=5)
    response = client.post("/actions/delete_contact", headers=auth, json={"contactId": value})
    assert response.status_code in (200, 404), response.json
    log = received(sandbox_reset)
    assert len(log) == 1
    path = log[0]["path"]
    assert path.startswith("/contacts/") and "/" not in path[len("/contacts/"):]
    assert "?" not in path and "#" not in path and log[0]["query"] == {}


def test_api_request_calls_a_relative_ghl_path(client, auth, sandbox_reset):
    response = client.post("/actions/api_request", headers=auth, json={
        "method": "GET", "path": "/contacts/", "query": {"locationId": LOCATION}, "version": "2021-07-28"})
    assert response.status_code == 200, response.json
    assert response.json["status"] == 200 and isinstance(response.json["data"]["contacts"], list)


@pytest.mark.parametrize("path", ["https://evil.test/x", "//evil.test/x", "/contacts/../oauth", "/a/%2e%2e/b",
                                  "/contacts?x=1", "contacts", "/a\\b", "/contacts/..\n", "/contacts/\n",
                                  "/contacts/" + "a" * 3000])
def test_api_request_refuses_paths_that_could_leave_ghl(path, client, auth, sandbox_reset):
    requests.delete(f"{sandbox_reset.url}/_sandbox/requests", timeout=5)
    response = client.post("/actions/api_request", headers=auth, json={"method": "GET", "path": path})
    assert response.status_code == 400 and "path" in response.json["error"]["fields"]
    assert received(sandbox_reset) == []


def test_ghl_errors_map_to_zapier_friendly_statuses(client, auth, sandbox_reset):
    missing = client.post("/actions/update_contact", headers=auth, json={"contactId": "does-not-exist",
                                                                           "firstName": "x"})
    assert missing.status_code == 404 and missing.json["error"]["code"] == "ghl_not_found"
    unauthorized = client.post("/actions/create_contact", json={"locationId": LOCATION},
                               headers={"Authorization": "Bearer not-a-token"})
    assert unauthorized.status_code == 401 and "reconnect" in unauthorized.json["error"]["message"]


def test_a_create_that_fails_after_reaching_ghl_is_not_retried(client, auth, sandbox_reset):
    requests.post(f"{sandbox_reset.url}/_sandbox/faults", json=[{"status": 500, "times": 5, "method": "POST",
                                                                 "path_prefix": "/contacts"}], timeout=5)
    requests.delete(f"{sandbox_reset.url}/_sandbox/requests", timeout=5)
    response = client.post("/actions/create_contact", headers=auth, json={"email": "once@example.com"})
    assert response.status_code == 502 and response.json["error"]["code"] == "outcome_unknown"
    assert len(received(sandbox_reset)) == 1


def test_a_429_is_retried_and_then_succeeds(client, auth, sandbox_reset, monkeypatch):
    monkeypatch.setattr("ghl.client.time.sleep", lambda seconds: None)
    requests.post(f"{sandbox_reset.url}/_sandbox/faults", json=[{"status": 429, "times": 2, "method": "POST",
                                                                 "path_prefix": "/contacts"}], timeout=5)
    response = client.post("/actions/create_contact", headers=auth, json={"email": "patient@example.com"})
    assert response.status_code == 200 and response.json["email"] == "patient@example.com"


@pytest.mark.parametrize("inputs, named", [
    ({"contactId": "c" * 600, "firstName": "x"}, "contactId"),
    ({"contactId": "c" * 900_000, "firstName": "x"}, "contactId"),
])
def test_oversized_path_values_are_refused_before_ghl(client, auth, sandbox_reset, inputs, named):
    requests.delete(f"{sandbox_reset.url}/_sandbox/requests", timeout=5)
    response = client.post("/actions/update_contact", headers=auth, json=inputs)
    assert response.status_code == 400 and set(response.json["error"]["fields"]) == {named}
    assert "512 characters" in response.json["error"]["fields"][named] and len(response.data) < 1000
    assert received(sandbox_reset) == []


def test_api_request_refuses_a_ghl_url_over_the_bound_naming_the_input(client, auth, sandbox_reset):
    requests.delete(f"{sandbox_reset.url}/_sandbox/requests", timeout=5)
    response = client.post("/actions/api_request", headers=auth, json={
        "method": "GET", "path": "/contacts/", "query": {"locationId": LOCATION, "q": "a" * 5000}})
    assert response.status_code == 400 and list(response.json["error"]["fields"]) == ["query"]
    assert received(sandbox_reset) == []
