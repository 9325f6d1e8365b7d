"""Custom fields a Zap builder can use: dynamic fields from the account, every data type written in
GHL's exact write shape (checked by what the sandbox GHL received and stored), clear 400s, the
legacy numbered slots, and a definitions cache that costs one GHL call a minute per token."""

import pytest
import requests

from ghl import custom_fields
from tests.conftest import LOCATION, SANDBOX_TOKEN

DEFINITIONS_PATH = f"/locations/{LOCATION}/customFields"
CONTACT_TYPES = {"TEXT", "LARGE_TEXT", "NUMERICAL", "PHONE", "MONETORY", "CHECKBOX", "SINGLE_OPTIONS",
                 "MULTIPLE_OPTIONS", "DATE", "TEXTBOX_LIST", "FILE_UPLOAD", "RADIO", "EMAIL"}
FILE_URL = "https://files.example.com/docs/signed%20contract.pdf"


@pytest.fixture(autouse=True)
def empty_cache():
    custom_fields.CACHE.clear()
    yield
    custom_fields.CACHE.clear()


def sandbox_log(sandbox):
    return requests.get(f"{sandbox.url}/_sandbox/requests", timeout=5).json()["requests"]


def clear_log(sandbox):
    requests.delete(f"{sandbox.url}/_sandbox/requests", timeout=5).raise_for_status()


def definition_calls(sandbox):
    return [r for r in sandbox_log(sandbox) if r["method"] == "GET" and r["path"] == DEFINITIONS_PATH]


def sent_custom_fields(sandbox, method, path):
    """The ``customFields`` of the one write the sandbox received at ``path``, by field id."""
    writes = [r for r in sandbox_log(sandbox) if r["method"] == method and r["path"] == path]
    assert len(writes) == 1, writes
    entries = writes[0]["json"]["customFields"]
    assert all(set(entry) == {"id", "field_value"} for entry in entries), entries
    return {entry["id"]: entry["field_value"] for entry in entries}


def stored(sandbox, collection, record_id):
    records = requests.get(f"{sandbox.url}/_sandbox/records", params={"path": collection}, timeout=5).json()
    return next(r for r in records["records"] if r["id"] == record_id)


def fields_of(client, auth, key, purpose):
    response = client.get(f"/zapier/fields/{key}?for={purpose}", headers=auth)
    assert response.status_code == 200, response.json
    return {field["key"]: field for field in response.json}


# ----------------------------------------------------------------------------- the fields endpoint

def test_contact_action_offers_every_contact_field_typed_and_no_opportunity_field(client, auth):
    fields = fields_of(client, auth, "create_contact", "input")
    assert "cf_sandbox-field-3" not in fields  # Deal Source is an opportunity field
    assert not any(f["label"] == "Deal Source" for f in fields.values())
    assert len(fields) == len(CONTACT_TYPES)
    assert fields["cf_sandbox-field-1"]["label"] == "Favorite Color"
    assert fields["cf_sandbox-field-1"]["type"] == "string"
    assert fields["cf_sandbox-field-2"]["type"] == "number"  # Shoe Size, NUMERICAL
    assert fields["cf_sandbox-field-4"]["type"] == "text"  # LARGE_TEXT
    assert fields["cf_sandbox-field-6"]["type"] == "number"  # MONETORY
    assert fields["cf_sandbox-field-10"]["type"] == "datetime"  # DATE
    tier = fields["cf_sandbox-field-8"]
    assert tier["label"] == "Membership Tier" and not tier.get("list")
    assert tier["choices"] == [{"value": v, "label": v, "sample": v} for v in ("Bronze", "Silver", "Gold")]
    for key in ("cf_sandbox-field-7", "cf_sandbox-field-9", "cf_sandbox-field-11"):  # checkbox, multi, textbox list
        assert fields[key]["list"] is True
    assert [c["value"] for c in fields["cf_sandbox-field-7"]["choices"]] == ["Hiking", "Cooking", "Chess"]
    assert [c["value"] for c in fields["cf_sandbox-field-13"]["choices"]] == ["Morning", "Afternoon", "Evening"]
    assert "choices" not in fields["cf_sandbox-field-11"]  # a textbox list's options are box labels
    upload = fields["cf_sandbox-field-12"]
    assert upload["type"] == "string" and "URL" in upload["helpText"]
    for field in fields.values():
        assert field["required"] is False and field["helpText"] and field["helpText"] != field["label"]


def test_opportunity_action_offers_opportunity_fields_only(client, auth):
    fields = fields_of(client, auth, "update_opportunity", "input")
    assert set(fields) == {f"cf_sandbox-field-{n}" for n in (3, 15, 16, 17, 18, 19)}
    source = fields["cf_sandbox-field-3"]
    assert source["label"] == "Deal Source" and not source.get("list")
    assert [c["value"] for c in source["choices"]] == ["Referral", "Website", "Trade Show"]
    assert fields["cf_sandbox-field-16"]["list"] is True and fields["cf_sandbox-field-18"]["list"] is True
    assert fields["cf_sandbox-field-17"]["type"] == "number"
    assert not any(f["label"] == "Favorite Color" for f in fields.values())


def test_outputs_name_custom_fields_by_their_key_and_label_them_by_name(client, auth):
    contact = fields_of(client, auth, "new_contact", "output")
    assert contact["custom_fields__favorite_color"]["label"] == "Favorite Color"
    assert contact["custom_fields__shoe_size"]["type"] == "number"
    assert contact["custom_fields__interests"]["list"] is True
    assert contact["custom_fields__signed_contract"]["list"] is True  # a file field's URLs
    assert contact["custom_fields__renewal_date"]["type"] == "datetime"
    assert "custom_fields__deal_source" not in contact
    opportunity = fields_of(client, auth, "create_opportunity", "output")
    assert opportunity["custom_fields__deal_source"]["label"] == "Deal Source"
    assert "custom_fields__favorite_color" not in opportunity


def test_operations_without_custom_fields_answer_an_empty_list(client, auth, sandbox_reset):
    clear_log(sandbox_reset)
    assert client.get("/zapier/fields/delete_contact?for=input", headers=auth).json == []
    assert client.get("/zapier/fields/list_pipelines?for=output", headers=auth).json == []
    # A search reads contacts (outputs) but takes no custom field inputs.
    assert client.get("/zapier/fields/find_contact?for=input", headers=auth).json == []
    assert definition_calls(sandbox_reset) == []


def test_fields_endpoint_refuses_unknown_operations_bad_purposes_and_missing_auth(client, auth):
    unknown = client.get("/zapier/fields/no_such_thing?for=input", headers=auth)
    assert unknown.status_code == 404 and unknown.json["error"]["code"] == "unknown_operation"
    for purpose in ("", "inputs", "both"):
        bad = client.get(f"/zapier/fields/create_contact?for={purpose}", headers=auth)
        assert bad.status_code == 400 and bad.json["error"]["code"] == "invalid_input"
    anonymous = client.get("/zapier/fields/create_contact?for=input")
    assert anonymous.status_code == 401
    no_location = client.get("/zapier/fields/create_contact?for=input",
                             headers={"Authorization": auth["Authorization"]})
    assert no_location.status_code == 400 and no_location.json["error"]["code"] == "missing_location"


def test_fields_endpoint_passes_ghls_refusal_through(client, auth):
    response = client.get("/zapier/fields/create_contact?for=input",
                          headers={**auth, "Authorization": "Bearer not-a-real-token"})
    assert response.status_code == 401


# ----------------------------------------------------------------------------- writing each type

def test_every_contact_data_type_arrives_in_its_write_shape_and_is_stored(client, auth, sandbox_reset):
    inputs = {
        "firstName": "Tess", "email": "tess@example.com",
        "cf_sandbox-field-1": "teal",                                   # TEXT
        "cf_sandbox-field-2": "42",                                     # NUMERICAL, as Zapier sends numbers
        "cf_sandbox-field-4": "Line one\nLine two",                     # LARGE_TEXT
        "cf_sandbox-field-5": "+15550100042",                           # PHONE
        "cf_sandbox-field-6": "19.99",                                  # MONETORY
        "cf_sandbox-field-7": ["hiking", "Chess"],                      # CHECKBOX (case fixed to the option)
        "cf_sandbox-field-8": "Gold",                                   # SINGLE_OPTIONS
        "cf_sandbox-field-9": "English,Spanish",                        # MULTIPLE_OPTIONS, comma-separated
        "cf_sandbox-field-10": "2024-05-01T23:30:00-07:00",             # DATE: the day as written
        "cf_sandbox-field-11": ["@tess", "tess.example.com"],           # TEXTBOX_LIST
        "cf_sandbox-field-12": FILE_URL,                                # FILE_UPLOAD
        "cf_sandbox-field-13": "Evening",                               # RADIO
        "cf_sandbox-field-14": "billing@example.com",                   # EMAIL
    }
    clear_log(sandbox_reset)
    response = client.post("/actions/create_contact", headers=auth, json=inputs)
    assert response.status_code == 200, response.json
    sent = sent_custom_fields(sandbox_reset, "POST", "/contacts/")
    files = sent.pop("sandbox-field-12")
    assert sent == {
        "sandbox-field-1": "teal", "sandbox-field-2": 42, "sandbox-field-4": "Line one\nLine two",
        "sandbox-field-5": "+15550100042", "sandbox-field-6": 19.99, "sandbox-field-7": ["Hiking", "Chess"],
        "sandbox-field-8": "Gold", "sandbox-field-9": ["English", "Spanish"], "sandbox-field-10": "2024-05-01",
        "sandbox-field-11": ["@tess", "tess.example.com"], "sandbox-field-13": "Evening",
        "sandbox-field-14": "billing@example.com",
    }
    (file_id, file), = files.items()
    assert file["url"] == FILE_URL
    assert file["meta"]["uuid"] == file_id and file["meta"]["originalname"] == "signed contract.pdf"
    assert file["meta"]["mimetype"] == "application/pdf" and file["meta"]["fieldname"] == "sandbox-field-12"
    contact = stored(sandbox_reset, "/contacts/", response.json["id"])
    values = {entry["id"]: entry["value"] for entry in contact["customFields"]}
    assert values["sandbox-field-2"] == 42 and values["sandbox-field-7"] == ["Hiking", "Chess"]
    assert values["sandbox-field-10"] == "2024-05-01" and values["sandbox-field-12"] == files
    assert len(values) == len(CONTACT_TYPES)


def test_opportunity_custom_fields_arrive_in_their_write_shape(client, auth, sandbox_reset):
    clear_log(sandbox_reset)
    response = client.post("/actions/create_opportunity", headers=auth, json={
        "pipelineId": "sandbox-pipeline-1", "name": "Big deal", "contactId": "sandbox-contact-1",
        "cf_sandbox-field-3": "website", "cf_sandbox-field-15": "Acme", "cf_sandbox-field-16": ["Gizmos"],
        "cf_sandbox-field-17": 12, "cf_sandbox-field-18": ["Budget", "Need"], "cf_sandbox-field-19": "2024-07-04"})
    assert response.status_code == 200, response.json
    assert sent_custom_fields(sandbox_reset, "POST", "/opportunities/") == {
        "sandbox-field-3": "Website", "sandbox-field-15": "Acme", "sandbox-field-16": ["Gizmos"],
        "sandbox-field-17": "12", "sandbox-field-18": ["Budget", "Need"], "sandbox-field-19": "2024-07-04"}
    opportunity = stored(sandbox_reset, "/opportunities/", response.json["id"])
    assert {e["id"]: e["fieldValue"] for e in opportunity["customFields"]}["sandbox-field-18"] == ["Budget", "Need"]


def test_an_object_of_field_keys_works_for_other_clients_and_updates_merge(client, auth, sandbox_reset):
    created = client.post("/actions/create_contact", headers=auth, json={
        "firstName": "Kai", "customFields": {"contact.shoe_size": 9, "membership_tier": "silver"}})
    assert created.status_code == 200, created.json
    clear_log(sandbox_reset)
    # update_contact has no location input: the location comes from X-Location-Id.
    updated = client.post("/actions/update_contact", headers=auth, json={
        "contactId": created.json["id"], "cf_sandbox-field-1": "red"})
    assert updated.status_code == 200, updated.json
    assert sent_custom_fields(sandbox_reset, "PUT", f"/contacts/{created.json['id']}") == {"sandbox-field-1": "red"}
    values = {e["id"]: e["value"] for e in stored(sandbox_reset, "/contacts/", created.json["id"])["customFields"]}
    assert values == {"sandbox-field-2": 9, "sandbox-field-8": "Silver", "sandbox-field-1": "red"}


def test_legacy_slots_still_work_and_now_send_ids_and_typed_values(client, auth, sandbox_reset):
    clear_log(sandbox_reset)
    response = client.post("/actions/upsert_contact", headers=auth, json={
        "email": "slots@example.com",
        "custom_field_1_id": "contact.shoe_size", "custom_field_1_value": "11",
        "custom_field_2_id": "sandbox-field-1", "custom_field_2_value": "blue",
        "custom_field_3_id": "contact.interests", "custom_field_3_value": "Cooking, Chess"})
    assert response.status_code == 200, response.json
    assert sent_custom_fields(sandbox_reset, "POST", "/contacts/upsert") == {
        "sandbox-field-2": 11, "sandbox-field-1": "blue", "sandbox-field-7": ["Cooking", "Chess"]}


@pytest.mark.parametrize("inputs, key, words", [
    ({"cf_sandbox-field-2": "lots"}, "cf_sandbox-field-2", ("Shoe Size", "number")),
    ({"cf_sandbox-field-6": True}, "cf_sandbox-field-6", ("Lifetime Spend", "number")),
    ({"cf_sandbox-field-8": "Platinum"}, "cf_sandbox-field-8", ("Membership Tier", "Platinum", "Gold")),
    ({"cf_sandbox-field-8": ["Gold", "Silver"]}, "cf_sandbox-field-8", ("Membership Tier", "one value")),
    ({"cf_sandbox-field-7": ["Hiking", "Sailing"]}, "cf_sandbox-field-7", ("Interests", "Sailing")),
    ({"cf_sandbox-field-9": "Klingon"}, "cf_sandbox-field-9", ("Languages", "Klingon")),
    ({"cf_sandbox-field-13": "Midnight"}, "cf_sandbox-field-13", ("Preferred Contact Time", "Midnight")),
    ({"cf_sandbox-field-10": "next Tuesday"}, "cf_sandbox-field-10", ("Renewal Date", "date")),
    ({"cf_sandbox-field-10": "2024-02-30"}, "cf_sandbox-field-10", ("Renewal Date", "date")),
    ({"cf_sandbox-field-12": "contract.pdf"}, "cf_sandbox-field-12", ("Signed Contract", "URL")),
    ({"cf_sandbox-field-12": "ftp://files.example.com/a.pdf"}, "cf_sandbox-field-12", ("Signed Contract", "URL")),
    ({"cf_sandbox-field-14": "not-an-email"}, "cf_sandbox-field-14", ("Billing Email", "email")),
    ({"cf_nope": "x"}, "cf_nope", ("'nope'", "not a custom field of contacts")),
    ({"cf_sandbox-field-3": "Website"}, "cf_sandbox-field-3", ("not a custom field of contacts",)),
    ({"customFields": {"contact.nope": 1}}, "customFields.contact.nope", ("'contact.nope'",)),
    ({"custom_field_1_id": "contact.favourite_colour", "custom_field_1_value": "green"}, "custom_field_1_id",
     ("'contact.favourite_colour'",)),
    ({"custom_field_1_id": "contact.shoe_size", "custom_field_1_value": "big"}, "custom_field_1_value",
     ("Shoe Size", "number")),
    ({"cf_sandbox-field-1": "a", "customFields": {"sandbox-field-1": "b"}}, "customFields.sandbox-field-1",
     ("Favorite Color", "twice")),
])
def test_bad_values_are_a_400_naming_the_field_before_anything_is_written(inputs, key, words, client, auth,
                                                                          sandbox_reset):
    clear_log(sandbox_reset)
    response = client.post("/actions/create_contact", headers=auth, json={"firstName": "Bad", **inputs})
    assert response.status_code == 400, response.json
    error = response.json["error"]
    assert error["code"] == "invalid_input"
    assert key in error["fields"], error
    for word in words:
        assert word in error["fields"][key], error
        assert word in error["message"]
    assert not [r for r in sandbox_log(sandbox_reset) if r["method"] != "GET"]


@pytest.mark.parametrize("inputs, key", [
    ({"cf_bad key": "x"}, "cf_bad key"),
    ({"cf_" + "a" * 65: "x"}, "cf_aaaa"),
    ({"cf_sandbox-field-1": {"nested": "object"}}, "cf_sandbox-field-1"),
    ({"cf_sandbox-field-1": "x" * 10_001}, "cf_sandbox-field-1"),
    ({"cf_sandbox-field-7": ["Hiking"] * 101}, "cf_sandbox-field-7"),
    ({"customFields": ["sandbox-field-1"]}, "customFields"),
    ({f"cf_field{n}": "x" for n in range(101)}, "customFields"),
])
def test_custom_field_inputs_are_bounded_without_calling_ghl(inputs, key, client, auth, sandbox_reset):
    clear_log(sandbox_reset)
    response = client.post("/actions/create_contact", headers=auth, json=inputs)
    assert response.status_code == 400, response.json
    assert [k for k in response.json["error"]["fields"] if k.startswith(key)], response.json  # long keys are cut
    assert sandbox_log(sandbox_reset) == []


def test_actions_without_custom_fields_refuse_them(client, auth):
    response = client.post("/actions/delete_contact", headers=auth,
                           json={"contactId": "sandbox-contact-1", "cf_sandbox-field-1": "x", "customFields": {}})
    assert response.status_code == 400
    assert response.json["error"]["fields"] == {"cf_sandbox-field-1": "unknown input", "customFields": "unknown input"}


# ----------------------------------------------------------------------------- the definitions cache

def test_definitions_cost_one_ghl_call_a_minute_per_token_and_location(client, auth, sandbox_reset, monkeypatch):
    clear_log(sandbox_reset)
    plain = client.post("/actions/create_contact", headers=auth, json={"firstName": "NoFields"})
    assert plain.status_code == 200 and definition_calls(sandbox_reset) == []
    now = [1000.0]
    monkeypatch.setattr(custom_fields.CACHE, "clock", lambda: now[0])
    for name in ("One", "Two"):
        response = client.post("/actions/create_contact", headers=auth,
                               json={"firstName": name, "cf_sandbox-field-1": name})
        assert response.status_code == 200, response.json
    assert client.get("/zapier/fields/create_contact?for=input", headers=auth).status_code == 200
    assert len(definition_calls(sandbox_reset)) == 1
    assert definition_calls(sandbox_reset)[0]["query"] == {"model": ["contact"]}
    # The opportunity fields are another model: one more call.
    assert client.get("/zapier/fields/create_opportunity?for=input", headers=auth).status_code == 200
    assert len(definition_calls(sandbox_reset)) == 2
    now[0] += custom_fields.CACHE_SECONDS + 1
    assert client.get("/zapier/fields/create_contact?for=input", headers=auth).status_code == 200
    assert len(definition_calls(sandbox_reset)) == 3


def test_two_tokens_never_share_cached_definitions(client, auth, sandbox_reset, monkeypatch):
    monkeypatch.setattr(sandbox_reset.state, "tokens", (SANDBOX_TOKEN, "another-token"))
    clear_log(sandbox_reset)
    assert client.get("/zapier/fields/create_contact?for=input", headers=auth).status_code == 200
    other = {**auth, "Authorization": "Bearer another-token"}
    assert client.get("/zapier/fields/create_contact?for=input", headers=other).status_code == 200
    assert client.get("/zapier/fields/create_contact?for=input", headers=other).status_code == 200
    assert len(definition_calls(sandbox_reset)) == 2
    # A token GHL refuses gets its refusal, never the definitions another token cached.
    refused = client.get("/zapier/fields/create_contact?for=input", headers={**auth, "Authorization": "Bearer bogus"})
    assert refused.status_code == 401


def test_callers_cannot_change_the_cached_definitions(app, sandbox_reset):
    from server.app import services
    with app.app_context():
        client = services().client
        first = custom_fields.load_definitions(client, SANDBOX_TOKEN, LOCATION, "contact")
        first[0]["name"] = "Changed"
        first.clear()
        again = custom_fields.load_definitions(client, SANDBOX_TOKEN, LOCATION, "contact")
    assert again[0]["name"] == "Favorite Color" and len(again) == len(CONTACT_TYPES)
    assert {d["model"] for d in again} == {"contact"}


def test_the_cache_is_bounded():
    cache = custom_fields.DefinitionCache(entries=3)
    for n in range(5):
        cache.put(("owner", f"location-{n}", "contact"), [{"id": str(n)}])
    assert cache.get(("owner", "location-0", "contact")) is None
    assert cache.get(("owner", "location-4", "contact")) == [{"id": "4"}]


# ----------------------------------------------------------------------------- the sandbox GHL

def sandbox_call(sandbox, method, path, **kwargs):
    return requests.request(method, sandbox.url + path, timeout=5, **kwargs,
                            headers={"Authorization": f"Bearer {SANDBOX_TOKEN}", "Version": "2021-07-28"})


def test_sandbox_lists_definitions_by_model(sandbox_reset):
    def models(model):
        body = sandbox_call(sandbox_reset, "GET", DEFINITIONS_PATH, params={"model": model}).json()
        return [(d["model"], d["dataType"]) for d in body["customFields"]]
    contact = models("contact")
    assert {m for m, _ in contact} == {"contact"} and {t for _, t in contact} == CONTACT_TYPES
    opportunity = models("opportunity")
    assert {m for m, _ in opportunity} == {"opportunity"}
    assert {"TEXT", "SINGLE_OPTIONS", "MULTIPLE_OPTIONS", "NUMERICAL", "CHECKBOX"} <= {t for _, t in opportunity}
    assert len(models("all")) == len(contact) + len(opportunity)


@pytest.mark.spec_violations_expected
@pytest.mark.parametrize("entry, problem", [
    ({"key": "contact.favorite_color", "field_value": "teal"}, "customFields.0.id should not be empty"),
    ({"id": "sandbox-field-2", "field_value": "42"}, "customFields.0.field_value must be a number"),
    ({"id": "sandbox-field-7", "field_value": "Hiking"}, "customFields.0.field_value must be an array of strings"),
    ({"id": "sandbox-field-1", "field_value": ["teal"]}, "customFields.0.field_value must be a string"),
    ({"id": "sandbox-field-10", "field_value": "May 1st"}, "customFields.0.field_value must be a valid date"),
    ({"id": "sandbox-field-12", "field_value": FILE_URL}, "customFields.0.field_value must be an object of files"),
])
def test_sandbox_refuses_contact_entries_that_do_not_fit_their_type(entry, problem, sandbox_reset):
    response = sandbox_call(sandbox_reset, "POST", "/contacts/",
                            json={"locationId": LOCATION, "firstName": "X", "customFields": [entry]})
    assert response.status_code == 422
    assert any(message.startswith(problem) for message in response.json()["message"]), response.json()


@pytest.mark.spec_violations_expected
def test_sandbox_takes_an_opportunity_key_for_a_string_value_but_not_on_upsert(sandbox_reset):
    created = sandbox_call(sandbox_reset, "POST", "/opportunities/", json={
        "locationId": LOCATION, "pipelineId": "sandbox-pipeline-1", "name": "Keyed", "status": "open",
        "contactId": "sandbox-contact-2", "customFields": [{"key": "opportunity.competitor", "field_value": "Acme"}]})
    assert created.status_code == 201, created.json()
    assert created.json()["opportunity"]["customFields"] == [{"id": "sandbox-field-15", "fieldValue": "Acme"}]
    upsert = sandbox_call(sandbox_reset, "POST", "/opportunities/upsert", json={
        "locationId": LOCATION, "pipelineId": "sandbox-pipeline-1", "followers": ["sandbox-user-1"],
        "followersActionType": "add", "isRemoveAllFollowers": False,
        "customFields": [{"id": "sandbox-field-15", "field_value": "Acme"}]})
    assert upsert.status_code == 422
