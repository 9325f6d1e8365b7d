"""Send Message, Find Opportunity, Find User and Find Contact Appointments (issue 11 item 4):
through the service, against the sandbox GHL, checked by the exact request GHL received."""

import pytest
import requests

from actions.execute import best_match_first
from catalog.inputs import InvalidInput, check_requires_when, validate_inputs
from catalog.registry import load_catalog
from sandbox.seed import COMPANY_ID
from tests import ghl_spec
from tests.conftest import LOCATION, operation_requests

CATALOG = load_catalog()
NEW = ("send_message", "find_opportunity", "find_user", "find_contact_appointments")


def received(sandbox):
    return requests.get(f"{sandbox.url}/_sandbox/requests", timeout=5).json()["requests"]


def forget_requests(sandbox):
    requests.delete(f"{sandbox.url}/_sandbox/requests", timeout=5).raise_for_status()


def stored(sandbox, path):
    return requests.get(f"{sandbox.url}/_sandbox/records", params={"path": path}, timeout=5).json()["records"]


def add_records(sandbox, path, records):
    requests.post(f"{sandbox.url}/_sandbox/records", json={"path": path, "records": records},
                  timeout=5).raise_for_status()


def act(client, auth, key, inputs):
    return client.post(f"/actions/{key}", headers=auth, json=inputs)


def only_request(sandbox):
    log = operation_requests(sandbox)
    assert len(log) == 1, log
    return log[0]


# ----------------------------------------------------------------------------- the records


def test_the_new_operations_are_offered_with_their_kinds():
    kinds = {key: CATALOG.get(key)["kind"] for key in NEW}
    assert kinds == {"send_message": "action", "find_opportunity": "search", "find_user": "search",
                     "find_contact_appointments": "search"}


@pytest.mark.parametrize("record", list(CATALOG), ids=[r["key"] for r in CATALOG])
def test_requires_when_default_input_and_best_match_follow_the_format(record):
    assert check_requires_when(record) is None
    best = record["response"].get("best_match")
    if best is not None:
        assert record["kind"] == "search"
        assert set(best) == {"input", "fields"} and best["input"] in {f["key"] for f in record["inputs"]}
        assert best["fields"] and all(isinstance(f, str) and f for f in best["fields"])


def test_send_message_offers_every_channel_of_the_spec_and_each_body_field_it_names():
    record = CATALOG.get("send_message")
    operation = ghl_spec.spec_operation("conversations", "POST", "/conversations/messages")
    body = ghl_spec.body_schema_of("conversations", operation)
    inputs = {f["key"]: f for f in record["inputs"]}
    assert set(inputs["type"]["choices"]) == set(body["properties"]["type"]["enum"])
    assert set(inputs["status"]["choices"]) == set(body["properties"]["status"]["enum"])
    for name in ("contactId", "message", "html", "subject", "emailFrom", "emailTo", "emailCc", "emailBcc",
                 "attachments", "templateId", "scheduledTimestamp", "threadId", "replyMessageId", "fromNumber",
                 "toNumber", "conversationProviderId", "appointmentId", "emailReplyMode"):
        assert name in inputs, name
    for name in ("attachments", "emailCc", "emailBcc"):  # arrays of strings in the spec
        assert inputs[name]["list"] and body["properties"][name]["type"] == "array"
    ruled = {v for rule in record["requires_when"] for v in rule["values"]}
    assert ruled == set(inputs["type"]["choices"]), "every channel says what it needs"


# ----------------------------------------------------------------------------- requires_when, default_input


def problems(record, raw):
    with pytest.raises(InvalidInput) as caught:
        validate_inputs(record, raw)
    return caught.value.fields


def test_channel_specific_inputs_are_required_by_channel():
    record = CATALOG.get("send_message")
    assert problems(record, {"type": "Email", "contactId": "c1"}) == {
        "subject": "required when Channel is Email",
        "html": "required when Channel is Email (or give Message)"}
    assert problems(record, {"type": "Email", "contactId": "c1", "message": "Hi"}) == {
        "subject": "required when Channel is Email"}
    assert problems(record, {"type": "SMS", "contactId": "c1", "subject": "ignored"}) == {
        "message": "required when Channel is SMS (or give Attachments)"}
    assert validate_inputs(record, {"type": "SMS", "contactId": "c1", "attachments": "https://example.com/a.png"})
    # A wrong channel is the problem to fix; it does not also ask for the fields of no channel.
    assert problems(record, {"type": "Pigeon", "contactId": "c1"}) == {
        "type": "must be one of: SMS, Email, WhatsApp, IG, FB, Live_Chat, RCS, TIKTOK, Custom"}


def test_a_blank_default_input_takes_the_other_inputs_value():
    record = CATALOG.get("send_message")
    clean = validate_inputs(record, {"type": "WhatsApp", "contactId": "c1", "message": "Hi"})
    assert clean == {"type": "WhatsApp", "contactId": "c1", "message": "Hi", "status": "pending",
                     "subType": "WhatsApp"}
    given = validate_inputs(record, {"type": "SMS", "contactId": "c1", "message": "Hi", "subType": "Other"})
    assert given["subType"] == "Other"
    assert "subType" not in problems(record, {"contactId": "c1"})  # type's own "required" says it


def test_a_rule_without_an_input_always_applies():
    record = CATALOG.get("find_opportunity")
    assert problems(record, {"location_id": LOCATION, "status": "open"}) == {
        "contact_id": "required (or give Search Text or Opportunity ID)"}
    assert validate_inputs(record, {"location_id": LOCATION, "q": "Ada"})


def test_malformed_rules_are_named():
    record = {"inputs": [{"key": "type", "label": "Type", "in": "body", "choices": ["a", "b"]},
                         {"key": "x", "label": "X", "in": "body"},
                         {"key": "y", "label": "Y", "in": "body", "required": True}]}
    assert check_requires_when(record) is None
    bad = [
        ([{"input": "type", "values": ["c"], "requires": [["x"]]}], "among its choices"),
        ([{"input": "nope", "values": ["a"], "requires": [["x"]]}], "not an input"),
        ([{"input": "type", "requires": [["x"]]}], "both input and values"),
        ([{"input": "type", "values": ["a"], "requires": [["z"]]}], "unknown input"),
        ([{"input": "type", "values": ["a"], "requires": [["y"]]}], "required input"),
        ([{"input": "type", "values": ["a"], "requires": []}], "non-empty list of groups"),
        ([{"requires": [["x"]], "when": 1}], "each requires_when rule"),
    ]
    for rules, words in bad:
        assert words in check_requires_when({**record, "requires_when": rules}), rules
    looping = {"inputs": [{"key": "a", "label": "A", "in": "body", "default_input": "a"}]}
    assert "not another input" in check_requires_when(looping)


def test_best_match_moves_exact_matches_first_and_keeps_ghls_order_otherwise():
    record = {"response": {"best_match": {"input": "q", "fields": ["name", "contact.email"]}}}
    items = [{"id": 1, "name": "Ada's deal"}, {"id": 2, "name": "B", "contact": {"email": "ADA@example.com "}},
             {"id": 3, "name": "ada@example.com"}, {"id": 4, "name": "C"}]
    assert [i["id"] for i in best_match_first(record, items, {"q": " ada@example.com"})] == [2, 3, 1, 4]
    assert [i["id"] for i in best_match_first(record, items, {})] == [1, 2, 3, 4]
    assert best_match_first({"response": {}}, items, {"q": "C"}) == items


# ----------------------------------------------------------------------------- send_message


SENT = "/conversations/messages"


def test_send_sms_sends_exactly_the_spec_body_and_answers_the_message_id(client, auth, sandbox_reset):
    forget_requests(sandbox_reset)
    response = act(client, auth, "send_message", {"type": "SMS", "contactId": "sandbox-contact-1",
                                                   "message": "Your order shipped.", "fromNumber": "+15550100000"})
    assert response.status_code == 200, response.json
    got = only_request(sandbox_reset)
    assert (got["method"], got["path"], got["version"], got["query"]) == ("POST", SENT, "2021-04-15", {})
    assert got["json"] == {"type": "SMS", "contactId": "sandbox-contact-1", "message": "Your order shipped.",
                           "fromNumber": "+15550100000", "status": "pending", "subType": "SMS"}
    answer = response.json
    assert answer["conversationId"] == "sandbox-conversation-1"  # the contact's existing conversation
    assert answer["id"] == answer["messageId"] and answer["status"] == "pending"
    message = next(m for m in stored(sandbox_reset, SENT) if m["id"] == answer["messageId"])
    assert message["messageType"] == "TYPE_SMS" and message["direction"] == "outbound"
    assert message["body"] == "Your order shipped."
    # What Get Message reads back.
    polled = client.post("/triggers/get_message_by_id", headers=auth, json={"messageId": answer["messageId"]})
    assert polled.status_code == 200 and polled.json[0]["ghl_id"] == answer["messageId"]


def test_send_email_with_subject_html_and_attachments_as_urls(client, auth, sandbox_reset):
    forget_requests(sandbox_reset)
    response = act(client, auth, "send_message", {
        "type": "Email", "contactId": "sandbox-contact-2", "subject": "Your invoice",
        "html": "<p>Thanks, Ben!</p>", "message": "Thanks, Ben!", "emailFrom": "billing@example.com",
        "emailCc": ["boss@example.com", "books@example.com"], "emailBcc": "audit@example.com",
        "attachments": ["https://files.example.com/invoice-1.pdf", "https://files.example.com/terms.pdf"],
        "emailReplyMode": "reply_all", "scheduledTimestamp": "1735725600"})
    assert response.status_code == 200, response.json
    got = only_request(sandbox_reset)
    assert (got["method"], got["path"], got["version"]) == ("POST", SENT, "2021-04-15")
    assert got["json"] == {
        "type": "Email", "contactId": "sandbox-contact-2", "message": "Thanks, Ben!",
        "attachments": ["https://files.example.com/invoice-1.pdf", "https://files.example.com/terms.pdf"],
        "subject": "Your invoice", "html": "<p>Thanks, Ben!</p>", "emailFrom": "billing@example.com",
        "emailCc": ["boss@example.com", "books@example.com"], "emailBcc": ["audit@example.com"],
        "emailReplyMode": "reply_all", "scheduledTimestamp": 1735725600, "status": "pending", "subType": "Email"}
    answer = response.json
    assert answer["emailMessageId"] and answer["messageId"] and answer["conversationId"]
    email = next(e for e in stored(sandbox_reset, SENT + "/email") if e["id"] == answer["emailMessageId"])
    assert email["subject"] == "Your invoice" and email["to"] == ["ben.example@example.com"]
    assert email["attachments"] == got["json"]["attachments"] and email["cc"] == got["json"]["emailCc"]
    conversation = next(c for c in stored(sandbox_reset, "/conversations") if c["id"] == answer["conversationId"])
    assert conversation["contactId"] == "sandbox-contact-2" and conversation["type"] == "TYPE_EMAIL"


def test_send_whatsapp_with_a_message_and_an_attachment(client, auth, sandbox_reset):
    forget_requests(sandbox_reset)
    response = act(client, auth, "send_message", {
        "type": "WhatsApp", "contactId": "sandbox-contact-3", "message": "Here is the menu.",
        "attachments": "https://files.example.com/menu.jpg"})
    assert response.status_code == 200, response.json
    assert only_request(sandbox_reset)["json"] == {
        "type": "WhatsApp", "contactId": "sandbox-contact-3", "message": "Here is the menu.",
        "attachments": ["https://files.example.com/menu.jpg"], "status": "pending", "subType": "WhatsApp"}
    message = next(m for m in stored(sandbox_reset, SENT) if m["id"] == response.json["messageId"])
    assert message["messageType"] == "TYPE_WHATSAPP" and message["attachments"] == ["https://files.example.com/menu.jpg"]


@pytest.mark.parametrize("inputs, fields", [
    ({"type": "Email", "contactId": "sandbox-contact-1", "message": "Hi"}, {"subject"}),
    ({"type": "Email", "contactId": "sandbox-contact-1"}, {"subject", "html"}),
    ({"type": "SMS", "contactId": "sandbox-contact-1", "html": "<p>no</p>"}, {"message"}),
    ({"type": "WhatsApp"}, {"contactId", "message"}),
    ({"contactId": "sandbox-contact-1", "message": "Hi"}, {"type"}),
])
def test_a_channels_missing_fields_are_a_400_naming_them_before_ghl_is_called(client, auth, sandbox_reset,
                                                                                inputs, fields):
    forget_requests(sandbox_reset)
    response = act(client, auth, "send_message", inputs)
    assert response.status_code == 400, response.json
    error = response.json["error"]
    assert error["code"] == "invalid_input" and set(error["fields"]) == fields
    assert all(name in error["message"] for name in fields)
    assert received(sandbox_reset) == []


@pytest.mark.spec_violations_expected
def test_the_sandbox_refuses_a_send_without_the_specs_required_fields(sandbox_reset):
    headers = {"Authorization": "Bearer sandbox-token", "Version": "2021-04-15"}
    missing = requests.post(sandbox_reset.url + SENT, headers=headers, timeout=5,
                            json={"type": "SMS", "contactId": "sandbox-contact-1", "message": "x"})
    assert missing.status_code == 422 and set(missing.json()["message"]) == {
        "status should not be empty", "subType should not be empty"}
    wrong = requests.post(sandbox_reset.url + SENT, headers=headers, timeout=5, json={
        "type": "Fax", "contactId": "sandbox-contact-1", "status": "pending", "subType": "Fax"})
    assert wrong.status_code == 422 and "type must be one of" in wrong.json()["message"][0]


# ----------------------------------------------------------------------------- find_opportunity


def test_find_opportunity_by_contact_sends_the_spec_query(client, auth, sandbox_reset):
    forget_requests(sandbox_reset)
    found = act(client, auth, "find_opportunity", {"contact_id": "sandbox-contact-2", "status": "open"})
    assert found.status_code == 200 and [o["id"] for o in found.json] == ["sandbox-opportunity-2"]
    assert found.json[0]["contact"]["email"] == "ben.example@example.com"
    got = only_request(sandbox_reset)
    assert (got["method"], got["path"], got["version"]) == ("GET", "/opportunities/search", "2021-07-28")
    assert got["query"] == {"location_id": [LOCATION], "contact_id": ["sandbox-contact-2"], "status": ["open"],
                            "order": ["added_desc"]}


def test_find_opportunity_by_text_matches_the_contacts_email_and_puts_the_exact_match_first(client, auth,
                                                                                           sandbox_reset):
    assert [o["id"] for o in act(client, auth, "find_opportunity", {"q": "ada.sample@example.com"}).json] == [
        "sandbox-opportunity-1"]
    # Two opportunities match "trial"; the one named exactly so comes first, though it is older.
    add_records(sandbox_reset, "/opportunities", [
        {"name": "Trial", "pipelineId": "sandbox-pipeline-1", "status": "open", "contactId": "sandbox-contact-4",
         "dateAdded": "2023-06-01T00:00:00.000Z"}])
    found = act(client, auth, "find_opportunity", {"q": "trial"}).json
    assert [o["name"] for o in found] == ["Trial", "Ben's trial"]
    newest = act(client, auth, "find_opportunity", {"q": "tri"}).json
    assert [o["name"] for o in newest] == ["Ben's trial", "Trial"]


def test_find_opportunity_misses_are_an_empty_list(client, auth, sandbox_reset):
    for inputs in ({"q": "nobody@example.com"}, {"contact_id": "sandbox-contact-5"},
                   {"contact_id": "sandbox-contact-1", "status": "won"}, {"opportunityId": "no-such-id"},
                   {"contact_id": "sandbox-contact-1", "pipeline_id": "another-pipeline"}):
        response = act(client, auth, "find_opportunity", inputs)
        assert response.status_code == 200 and response.json == [], inputs
    by_id = act(client, auth, "find_opportunity", {"opportunityId": "sandbox-opportunity-1"}).json
    assert [o["id"] for o in by_id] == ["sandbox-opportunity-1"]


def test_find_opportunity_needs_something_to_find_by(client, auth, sandbox_reset):
    forget_requests(sandbox_reset)
    response = act(client, auth, "find_opportunity", {"pipeline_id": "sandbox-pipeline-1"})
    assert response.status_code == 400 and set(response.json["error"]["fields"]) == {"contact_id"}
    assert received(sandbox_reset) == []


# ----------------------------------------------------------------------------- find_user


def test_find_user_by_email_sends_the_spec_query(client, auth, sandbox_reset):
    forget_requests(sandbox_reset)
    found = act(client, auth, "find_user", {"query": "uma.user@example.com", "companyId": COMPANY_ID})
    assert found.status_code == 200 and [u["id"] for u in found.json] == ["sandbox-user-2"]
    got = only_request(sandbox_reset)
    assert (got["method"], got["path"], got["version"]) == ("GET", "/users/search", "2021-07-28")
    assert got["query"] == {"query": ["uma.user@example.com"], "companyId": [COMPANY_ID], "locationId": [LOCATION]}


def test_find_user_puts_the_exact_match_before_ghls_name_order(client, auth, sandbox_reset):
    add_records(sandbox_reset, "/users", [
        {"name": "Aaron Alex", "email": "alex@example.com", "companyId": COMPANY_ID,
         "roles": {"type": "account", "role": "user", "locationIds": [LOCATION]}},
        {"name": "Alex", "email": "alex.b@example.com", "companyId": COMPANY_ID,
         "roles": {"type": "account", "role": "user", "locationIds": [LOCATION]}}], )
    by_name = act(client, auth, "find_user", {"query": "alex", "companyId": COMPANY_ID}).json
    assert [u["name"] for u in by_name] == ["Alex", "Aaron Alex", "Alex Admin"]
    by_email = act(client, auth, "find_user", {"query": "alex@example.com", "companyId": COMPANY_ID}).json
    assert by_email[0]["email"] == "alex@example.com"
    admins = act(client, auth, "find_user", {"query": "alex", "companyId": COMPANY_ID, "role": "admin"}).json
    assert [u["id"] for u in admins] == ["sandbox-user-1"]


def test_find_user_misses_are_an_empty_list_and_the_company_is_required(client, auth, sandbox_reset):
    for inputs in ({"query": "nobody@example.com", "companyId": COMPANY_ID},
                   {"query": "uma", "companyId": "another-company"},
                   {"query": "uma", "companyId": COMPANY_ID, "locationId": "another-location"}):
        response = act(client, auth, "find_user", inputs)
        assert response.status_code == 200 and response.json == [], inputs
    response = act(client, auth, "find_user", {"query": "uma"})
    assert response.status_code == 400 and set(response.json["error"]["fields"]) == {"companyId"}


# ----------------------------------------------------------------------------- find_contact_appointments


def test_find_contact_appointments_hit_and_misses(client, auth, sandbox_reset):
    forget_requests(sandbox_reset)
    found = act(client, auth, "find_contact_appointments", {"contactId": "sandbox-contact-1"})
    assert found.status_code == 200 and [a["id"] for a in found.json] == ["sandbox-appointment-1"]
    got = only_request(sandbox_reset)
    assert (got["method"], got["path"], got["version"], got["query"], got["json"]) == (
        "GET", "/contacts/sandbox-contact-1/appointments", "2021-07-28", {}, None)
    none_booked = act(client, auth, "find_contact_appointments", {"contactId": "sandbox-contact-2"})
    assert none_booked.status_code == 200 and none_booked.json == []
    unknown = act(client, auth, "find_contact_appointments", {"contactId": "no-such-contact"})
    assert unknown.status_code == 200 and unknown.json == []  # GHL's 404 is no match
    booked = client.post("/actions/create_appointment", headers=auth, json={
        "calendarId": "sandbox-calendar-1", "contactId": "sandbox-contact-2", "startTime": "2024-03-01T10:00:00Z"})
    assert booked.status_code == 200, booked.json
    again = act(client, auth, "find_contact_appointments", {"contactId": "sandbox-contact-2"}).json
    assert [a["id"] for a in again] == [booked.json["id"]]


def test_find_or_create_opportunity_through_the_service(client, auth, sandbox_reset):
    """The two steps of Zapier's Find or Create Opportunity: the search, then the create on []."""
    find = {"contact_id": "sandbox-contact-4", "pipeline_id": "sandbox-pipeline-1", "status": "open"}
    assert act(client, auth, "find_opportunity", find).json == []
    created = act(client, auth, "create_opportunity", {"contactId": "sandbox-contact-4", "name": "Dev's pilot",
                                                       "pipelineId": "sandbox-pipeline-1"})
    assert created.status_code == 200, created.json
    found = act(client, auth, "find_opportunity", find).json
    assert [o["id"] for o in found] == [created.json["id"]]
    assert found[0]["contact"]["email"] == "dev.placeholder@example.com"
