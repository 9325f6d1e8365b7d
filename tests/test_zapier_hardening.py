"""What a review of the Zapier-facing endpoints found, kept fixed: labels cut before they are
cleaned, lookups that give up quickly, old custom-field slots that work without the custom-fields
scope, malformed GHL items that do not break an answer, and only look-ups run as searches."""

import pytest
import requests

from ghl.errors import GhlError
from tests.conftest import LOCATION, SANDBOX_TOKEN
from zapier_app.choices import MAX_LABEL_CHARS, _text


def sandbox_log(sandbox):
    return requests.get(f"{sandbox.url}/_sandbox/requests", timeout=5).json()["requests"]


def faults(sandbox, specs):
    requests.post(f"{sandbox.url}/_sandbox/faults", json=specs, timeout=5).raise_for_status()


def test_a_label_is_cut_before_its_markup_is_cleaned():
    # Anyone can put text in a location (an inbound email); cleaning all of it would cost the
    # square of its length. Only what a label can show is read.
    assert len(_text("<" * 100_000, None)) <= 4 * MAX_LABEL_CHARS
    assert _text("<b>Ada</b> <i>Sample</i>", None) == "Ada Sample"


def test_a_quick_lookup_tries_once(app, sandbox_reset):
    client = app.extensions["ghl_zapier"].client
    faults(sandbox_reset, [{"status": 503, "times": 3, "path_prefix": "/opportunities/pipelines"}])
    requests.delete(f"{sandbox_reset.url}/_sandbox/requests", timeout=5)
    with pytest.raises(GhlError):
        client.request("GET", "/opportunities/pipelines", SANDBOX_TOKEN, version="2021-07-28",
                       query={"locationId": LOCATION}, quick=True)
    assert len([r for r in sandbox_log(sandbox_reset) if r["path"] == "/opportunities/pipelines"]) == 1
    requests.delete(f"{sandbox_reset.url}/_sandbox/faults", timeout=5)


def test_legacy_slots_still_write_without_the_custom_fields_scope(client, auth, sandbox_reset):
    faults(sandbox_reset, [{"status": 403, "times": 5, "path_prefix": f"/locations/{LOCATION}/customFields"}])
    requests.delete(f"{sandbox_reset.url}/_sandbox/requests", timeout=5)
    created = client.post("/actions/create_contact", headers=auth, json={
        "email": "slots@example.com", "custom_field_1_id": "sandbox-field-1", "custom_field_1_value": "Blue"})
    assert created.status_code == 200, created.json
    [sent] = [r["json"] for r in sandbox_log(sandbox_reset) if r["method"] == "POST" and r["path"] == "/contacts/"]
    assert sent["customFields"] == [{"id": "sandbox-field-1", "field_value": "Blue"}]
    # The new inputs need the definitions: they are refused with GHL's 403, not dropped.
    refused = client.post("/actions/create_contact", headers=auth, json={
        "email": "cf@example.com", "cf_sandbox-field-1": "Blue"})
    assert refused.status_code == 403
    requests.delete(f"{sandbox_reset.url}/_sandbox/faults", timeout=5)


def test_a_malformed_ghl_item_goes_out_unnamed_instead_of_failing(client, auth, sandbox_reset):
    requests.post(f"{sandbox_reset.url}/_sandbox/records", json={"path": "/opportunities", "records": [{
        "id": "odd-opportunity", "name": "Odd", "pipelineId": "sandbox-pipeline-1", "pipelineStageId": ["x"],
        "status": "open", "contactId": "sandbox-contact-1",
        "customFields": [{"id": ["sandbox-field-3"], "fieldValue": "Website"}]}]}, timeout=5).raise_for_status()
    found = client.post("/actions/get_opportunity", headers=auth, json={"opportunityId": "odd-opportunity"})
    assert found.status_code == 200, found.json
    [item] = found.json
    assert item["pipelineName"] == "Sandbox Sales" and "stageName" not in item and "custom_fields" not in item
    listed = client.get("/zapier/choices/opportunities", headers=auth)
    assert listed.status_code == 200 and "odd-opportunity" in {c["id"] for c in listed.json}


def test_only_look_ups_run_as_searches(client, auth, sandbox_reset):
    assert client.post("/actions/get_contact", headers=auth, json={"contactId": "sandbox-contact-1"}).status_code == 200
    refused = client.post("/actions/search_contacts", headers=auth, json={})
    assert refused.status_code == 404 and refused.json["error"]["code"] == "unknown_operation"
    assert "/triggers/search_contacts" in refused.json["error"]["message"]


def test_a_number_too_large_for_its_digits_is_refused_not_rounded(client, auth, sandbox_reset):
    response = client.post("/actions/create_contact", headers=auth, json={
        "email": "big@example.com", "cf_sandbox-field-1": 1e30})
    assert response.status_code == 400 and "cf_sandbox-field-1" in response.json["error"]["fields"]


def test_output_fields_without_the_scope_leave_the_step_usable(client, auth, sandbox_reset):
    faults(sandbox_reset, [{"status": 403, "times": 5, "path_prefix": f"/locations/{LOCATION}/customFields"}])
    assert client.get("/zapier/fields/create_contact?for=output", headers=auth).json == []
    assert client.get("/zapier/fields/create_contact?for=input", headers=auth).status_code == 403
    requests.delete(f"{sandbox_reset.url}/_sandbox/faults", timeout=5)

