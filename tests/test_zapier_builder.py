"""What a Zap builder does with the app, in Zapier's own runtime (createAppTester) against the live
service and the sandbox GHL: custom fields loaded from the account and written in GHL's shape for
their type, a stage dropdown that follows the chosen pipeline, a contact found from an email
through a search-powered field, and errors that say what to do."""

import json

import requests

from tests.zapier_harness import trigger

CONTACT_WRITES = {  # field id: (what the Zap maps, what GHL must receive)
    "sandbox-field-1": ("Teal", "Teal"),                                       # TEXT
    "sandbox-field-2": ("42", 42),                                             # NUMERICAL
    "sandbox-field-4": ("Born in a sandbox.", "Born in a sandbox."),           # LARGE_TEXT
    "sandbox-field-5": ("+15550100999", "+15550100999"),                       # PHONE
    "sandbox-field-6": ("1250.50", 1250.5),                                    # MONETORY
    "sandbox-field-7": (["Hiking", "Chess"], ["Hiking", "Chess"]),             # CHECKBOX
    "sandbox-field-8": ("Gold", "Gold"),                                       # SINGLE_OPTIONS
    "sandbox-field-9": (["French", "Spanish"], ["French", "Spanish"]),         # MULTIPLE_OPTIONS
    "sandbox-field-10": ("2025-03-01T10:00:00Z", "2025-03-01"),                # DATE
    "sandbox-field-11": (["@ada", "ada.example.com"], ["@ada", "ada.example.com"]),  # TEXTBOX_LIST
    "sandbox-field-13": ("Evening", "Evening"),                                # RADIO
    "sandbox-field-14": ("billing@example.com", "billing@example.com"),        # EMAIL
}
FILE_FIELD, FILE_URL = "sandbox-field-12", "https://files.example.com/contract.pdf"


def app_definition(app_dir):
    return json.loads((app_dir / "app-definition.json").read_text())


def dynamic_fields_path(app_dir, group, key, which="inputFields"):
    """The path of the operation's function that loads the location's custom fields."""
    fields = app_definition(app_dir)[group][key]["operation"][which]
    return f"{group}.{key}.operation.{which}.{fields.index('$func$2$f$')}"


def field(app_dir, group, key, field_key):
    fields = app_definition(app_dir)[group][key]["operation"]["inputFields"]
    return next(f for f in fields if isinstance(f, dict) and f["key"] == field_key)


def ghl_writes(sandbox, method, path):
    log = requests.get(f"{sandbox.url}/_sandbox/requests", timeout=5).json()["requests"]
    return [r["json"] for r in log if r["method"] == method and r["path"] == path]


def test_custom_fields_come_from_the_account_and_each_type_is_written_in_its_shape(zapier_runtime, app_dir, service,
                                                                                   sandbox_reset, tmp_path):
    requests.delete(f"{sandbox_reset.url}/_sandbox/requests", timeout=5)
    inputs = {f"cf_{field_id}": mapped for field_id, (mapped, _) in CONTACT_WRITES.items()}
    inputs[f"cf_{FILE_FIELD}"] = FILE_URL
    results = zapier_runtime.run(app_dir, [
        {"name": "contact_fields", "path": dynamic_fields_path(app_dir, "creates", "create_contact")},
        {"name": "opportunity_fields", "path": dynamic_fields_path(app_dir, "creates", "create_opportunity")},
        {"name": "create", "path": "creates.create_contact.operation.perform",
         "bundle": {"inputData": {"firstName": "Cora", "email": "cora.fields@example.com", **inputs}}},
        {"name": "opportunity", "path": "creates.create_opportunity.operation.perform",
         "bundle": {"inputData": {"name": "Cora's deal", "pipelineId": "sandbox-pipeline-1",
                                  "pipelineStageId": "sandbox-stage-1", "contactId": "sandbox-contact-1",
                                  "status": "open", "cf_sandbox-field-3": "Website",
                                  "cf_sandbox-field-16": ["Widgets", "Gizmos"], "cf_sandbox-field-17": "12"}}},
        {"name": "output_fields", "path": dynamic_fields_path(app_dir, "creates", "create_contact", "outputFields")},
    ], tmp_path)
    assert all(r["ok"] for r in results.values()), {n: r.get("error") for n, r in results.items() if not r["ok"]}

    contact_fields = {f["key"]: f for f in results["contact_fields"]["result"]}
    assert contact_fields["cf_sandbox-field-8"]["label"] == "Membership Tier"
    assert {c["value"] for c in contact_fields["cf_sandbox-field-8"]["choices"]} == {"Bronze", "Silver", "Gold"}
    assert contact_fields["cf_sandbox-field-9"]["list"] is True
    assert contact_fields["cf_sandbox-field-2"]["type"] == "number"
    assert contact_fields["cf_sandbox-field-10"]["type"] == "datetime"
    assert "cf_sandbox-field-3" not in contact_fields, "an opportunity field offered on a contact"
    opportunity_fields = {f["key"] for f in results["opportunity_fields"]["result"]}
    assert "cf_sandbox-field-3" in opportunity_fields and "cf_sandbox-field-1" not in opportunity_fields

    [sent] = ghl_writes(sandbox_reset, "POST", "/contacts/")
    written = {entry["id"]: entry["field_value"] for entry in sent["customFields"]}
    assert all(set(entry) == {"id", "field_value"} for entry in sent["customFields"])
    for field_id, (_, wanted) in CONTACT_WRITES.items():
        assert written[field_id] == wanted, field_id
    [(file_key, file_entry)] = written[FILE_FIELD].items()
    assert file_entry["url"] == FILE_URL and file_entry["meta"]["uuid"] == file_key

    [sent] = ghl_writes(sandbox_reset, "POST", "/opportunities/")
    written = {entry["id"]: entry["field_value"] for entry in sent["customFields"]}
    assert written == {"sandbox-field-3": "Website", "sandbox-field-16": ["Widgets", "Gizmos"],
                       "sandbox-field-17": "12"}  # a number as text: the opportunities spec has no number shape

    created = results["create"]["result"]
    assert created["custom_fields"]["membership_tier"] == "Gold" and created["custom_fields"]["shoe_size"] == 42
    labels = {f["key"]: f["label"] for f in results["output_fields"]["result"]}
    assert labels["custom_fields__membership_tier"] == "Membership Tier"
    opportunity = results["opportunity"]["result"]
    assert opportunity["pipelineName"] == "Sandbox Sales" and opportunity["stageName"]


def test_the_stage_dropdown_follows_the_chosen_pipeline(zapier_runtime, app_dir, service, sandbox_reset, tmp_path):
    second = {"id": "builder-pipeline-2", "name": "Renewals", "locationId": "sandbox-location",
              "stages": [{"id": "builder-stage-a", "name": "Up for Renewal", "position": 0},
                         {"id": "builder-stage-b", "name": "Renewed", "position": 1}]}
    requests.post(f"{sandbox_reset.url}/_sandbox/records", json={"path": "/opportunities/pipelines",
                                                                  "records": [second]}, timeout=5).raise_for_status()
    stage = field(app_dir, "creates", "create_opportunity", "pipelineStageId")
    assert stage["dynamic"] == "choices_stages.id.name" and "pipelineId" in stage["dependsOn"]
    pipeline = field(app_dir, "creates", "create_opportunity", "pipelineId")
    assert pipeline["dynamic"] == "choices_pipelines.id.name"
    results = zapier_runtime.run(app_dir, [
        {"name": "pipelines", "path": trigger("choices_pipelines"),
         "bundle": {"meta": {"isFillingDynamicDropdown": True}}},
        {"name": "renewals", "path": trigger("choices_stages"),
         "bundle": {"inputData": {"pipelineId": "builder-pipeline-2"}, "meta": {"isFillingDynamicDropdown": True}}},
        {"name": "sales", "path": trigger("choices_stages"),
         "bundle": {"inputData": {"pipelineId": "sandbox-pipeline-1"}, "meta": {"isFillingDynamicDropdown": True}}},
    ], tmp_path)
    assert {(p["id"], p["name"]) for p in results["pipelines"]["result"]} >= {
        ("sandbox-pipeline-1", "Sandbox Sales"), ("builder-pipeline-2", "Renewals")}
    assert [(s["id"], s["name"]) for s in results["renewals"]["result"]] == [
        ("builder-stage-a", "Up for Renewal"), ("builder-stage-b", "Renewed")]
    sales = {s["id"] for s in results["sales"]["result"]}
    assert sales and not sales & {"builder-stage-a", "builder-stage-b"}


def test_a_contact_is_found_from_an_email_through_the_search_powered_field(zapier_runtime, app_dir, service,
                                                                           sandbox_reset, tmp_path):
    contact = field(app_dir, "creates", "create_opportunity", "contactId")
    assert contact["dynamic"] == "choices_contacts.id.name" and contact["search"] == "find_contact.id"
    # Zapier's "add a search step" runs the search, then maps its first result's id into the field.
    results = zapier_runtime.run(app_dir, [
        {"name": "search", "path": "searches.find_contact.operation.perform",
         "bundle": {"inputData": {"email": "ben.example@example.com"}}},
        {"name": "dropdown", "path": trigger("choices_contacts"), "bundle": {"meta": {"isFillingDynamicDropdown": True}}},
    ], tmp_path)
    found = results["search"]["result"][0]["id"]
    assert found == "sandbox-contact-2"
    labels = {c["id"]: c["name"] for c in results["dropdown"]["result"]}
    assert "ben.example@example.com" in labels[found]
    created = zapier_runtime.run(app_dir, [
        {"name": "create", "path": "creates.create_opportunity.operation.perform",
         "bundle": {"inputData": {"name": "Ben's upgrade", "pipelineId": "sandbox-pipeline-1",
                                  "pipelineStageId": "sandbox-stage-1", "status": "open", "contactId": found}}},
    ], tmp_path)["create"]
    assert created["ok"], created.get("error")
    assert created["result"]["contactId"] == found


def test_a_ghl_422_on_a_create_reads_as_ghls_reason_and_the_code(zapier_runtime, app_dir, service, sandbox_reset,
                                                                 tmp_path):
    reason = "The email address is invalid"
    faults = [{"status": 422, "times": 1, "path_prefix": "/contacts", "method": "POST", "message": [reason]}]
    requests.post(f"{sandbox_reset.url}/_sandbox/faults", json=faults, timeout=5).raise_for_status()
    try:
        results = zapier_runtime.run(app_dir, [
            {"name": "create", "path": "creates.create_contact.operation.perform",
             "bundle": {"inputData": {"email": "not-an-email@example.com"}}},
        ], tmp_path)
    finally:
        requests.delete(f"{sandbox_reset.url}/_sandbox/faults", timeout=5)
    error = results["create"]["error"]
    assert error["name"] == "AppError" and error["code"] == "ghl_rejected_input", error
    assert reason in error["message"] and error["message"].endswith("(ghl_rejected_input)")
    assert "{" not in error["message"] and "http" not in error["message"].lower()
