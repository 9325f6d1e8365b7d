"""The Zapier app: generated from the catalog, validated by Zapier's schema package, and run by
Zapier's own runtime (``tests/zapier_harness.py``) against the live service and the sandbox GHL
on loopback.
"""

import json
import re
import sqlite3
import time

import pytest
import requests

from bench.harness import Receiver
from catalog.registry import Catalog, load_catalog, load_records
from tests.conftest import LOCATION, ROOT, SANDBOX_TOKEN
from tests.zapier_harness import AUTH_DATA, trigger
from zapier_app.__main__ import build_parser
from zapier_app import presentation
from zapier_app.definition import INSTANT_SUFFIX, ZAPIER_PLATFORM_VERSION, zapier_app_definition

CATALOG = load_catalog()
SERVICE_AUTH = {"Authorization": f"Bearer {SANDBOX_TOKEN}", "X-Location-Id": LOCATION}
CONTACTS = "search_contacts"


# ----------------------------------------------------------------------------- the definition


def test_the_export_command_writes_a_cli_app_pinning_zapier_platform_core_19(app_dir, service):
    package = json.loads((app_dir / "package.json").read_text())
    assert package["dependencies"]["zapier-platform-core"] == ZAPIER_PLATFORM_VERSION
    assert ZAPIER_PLATFORM_VERSION.startswith("19.") and package["main"] == "index.js"
    written = json.loads((app_dir / "app-definition.json").read_text())
    assert written == zapier_app_definition(CATALOG, service.url, False)
    assert "app-definition.json" in (app_dir / "index.js").read_text()


def test_the_readme_walk_through_uses_the_commands_and_fields_that_exist():
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## The Zapier app"):]
    section = section[:section.index("\n## ", 1)]
    assert readme.index("## The Zapier app") < readme.index("## Configuration")
    assert "python -m zapier_app --server-url" in section
    options = {o for action in build_parser()._actions for o in action.option_strings}
    for flag in set(re.findall(r"(?<![\w-])--[a-z][a-z-]+", section)):
        assert flag in options, f"the README mentions {flag}, which the command does not take"
    fields = zapier_app_definition(CATALOG, "https://ghl.example.com", True)["authentication"]["fields"]
    for field in fields:
        assert f"| {field['label']} |" in section, f"the README does not explain the {field['label']} field"


def test_every_hand_written_operation_is_in_the_app_as_its_role_says_with_a_sample():
    app = zapier_app_definition(CATALOG, "https://ghl.example.com", False)
    triggers, searches, creates = app["triggers"], app["searches"], app["creates"]
    # Generated records are offered by Run a GHL Operation and New Item in a GHL List
    # (tests/test_zapier_operations.py).
    hand_written = [r for r in CATALOG if r["origin"] == "hand-written"]
    roles = {r["key"]: presentation.role(r) for r in hand_written if r["kind"] == "trigger"}
    assert {k for k, role in roles.items() if role in ("trigger", "dropdown")} <= set(triggers)
    assert {r["key"] for r in hand_written if r["kind"] == "search"} | {
        k for k, role in roles.items() if role == "search"} == set(searches)
    assert {r["key"] for r in hand_written if r["kind"] == "action"} | {"api_request", "run_ghl_operation"} \
        == set(creates)
    omitted = {k for k, role in roles.items() if role == "omit"}
    assert omitted and not omitted & (set(triggers) | set(searches))
    assert not (set(triggers) & set(searches) or set(triggers) & set(creates) or set(searches) & set(creates))
    for group in (triggers, searches, creates):
        for key, operation in group.items():
            assert operation["key"] == key and operation["operation"]["sample"], key
            request = operation["operation"].get("performList", operation["operation"]["perform"])
            if key in ("run_ghl_operation", "new_ghl_list_item"):
                continue  # index.js posts to the chosen operation's route
            assert request["url"].startswith("https://ghl.example.com/"), key
    # Triggers' and searches' items carry an id (Zapier dedupes and search-or-creates on it), except
    # look-ups of things GHL answers without one (a calendar resource, a call transcription).
    for key, operation in {**triggers, **searches}.items():
        record = CATALOG.get(key.removesuffix(INSTANT_SUFFIX))
        assert operation["operation"]["sample"].get("id") or (
            key in searches and record["response"]["id_field"] is None), key
    labels = [t["display"]["label"] for t in triggers.values()]
    assert len(labels) == len(set(labels)), "two triggers share a label"
    # A look-up by id is a search on /actions, not a trigger that fires on one record's changes.
    assert "get_contact" not in triggers and searches["get_contact"]["display"]["label"] == "Find Contact by ID"
    assert searches["get_contact"]["operation"]["perform"]["url"] == "https://ghl.example.com/actions/get_contact"
    assert triggers["new_contact"]["display"]["label"] == "New Contact"
    assert triggers["contact_tag_added"]["display"]["description"].startswith("Triggers when ")
    assert searches["find_contact"]["display"]["description"].startswith("Finds ")
    assert creates["create_contact"]["display"]["label"] == "Create Contact"
    assert creates["upsert_contact"]["display"]["label"] == "Create or Update Contact"
    assert app["throttle"] == {"window": 10, "limit": 100, "key": "{{bundle.authData.locationId}}",
                               "scope": ["account"]}
    assert app["searchOrCreates"]["find_contact"] == {
        "key": "find_contact", "display": app["searchOrCreates"]["find_contact"]["display"],
        "search": "find_contact", "create": "create_contact"}
    assert app["searchOrCreates"]["find_opportunity"] == {
        "key": "find_opportunity", "display": {
            "label": "Find or Create Opportunity",
            "description": "Finds an opportunity, and creates one when none matches."},
        "search": "find_opportunity", "create": "create_opportunity"}


def test_a_trigger_presented_as_a_search_runs_once_on_actions_and_records_nothing(client, auth, app):
    found = client.post("/actions/get_contact", headers=auth, json={"contactId": "sandbox-contact-1"})
    assert found.status_code == 200 and [c["id"] for c in found.json] == ["sandbox-contact-1"]
    missing = client.post("/actions/get_contact", headers=auth, json={"contactId": "no-such-contact"})
    assert missing.status_code == 200 and missing.json == []
    with sqlite3.connect(app.extensions["ghl_zapier"].settings.database_path) as db:
        for table in ("seen", "seen_items", "dedupe_scopes"):
            assert db.execute(f"SELECT COUNT(*) FROM {table}").fetchone() == (0,), table


def test_instant_twins_are_rest_hooks_on_the_hooks_endpoints_and_say_how_fast_they_are():
    app = zapier_app_definition(CATALOG, "https://ghl.example.com", False)
    twins = {k: t for k, t in app["triggers"].items() if t["operation"]["type"] == "hook"}
    assert {k[:-len(INSTANT_SUFFIX)] for k in twins} >= {
        "new_contact", "search_opportunities", "list_calendar_events", "get_contact_notes", "get_contact_tasks",
        "search_conversations", "get_messages_by_conversation", "contact_tag_added", "opportunity_stage_changed"}
    for key, twin in twins.items():
        source = CATALOG.get(key[:-len(INSTANT_SUFFIX)])
        operation = twin["operation"]
        assert not source["response"]["single"] and presentation.role(source) == "trigger"
        assert operation["performSubscribe"]["body"]["trigger"] == source["key"]
        assert operation["performSubscribe"]["body"]["target_url"] == "{{bundle.targetUrl}}"
        assert operation["performUnsubscribe"] == {
            "url": "https://ghl.example.com/hooks/{{bundle.subscribeData.id}}", "method": "DELETE"}
        assert operation["performList"]["url"] == f"https://ghl.example.com/hooks/sample/{source['key']}"
        assert twin["display"]["label"] == app["triggers"][source["key"]]["display"]["label"] + " (Checked Every Minute)"
        assert "every minute" in twin["display"]["description"]
        assert operation["sample"] == app["triggers"][source["key"]]["operation"]["sample"]


def test_every_id_a_user_would_type_is_a_dropdown_served_by_the_service():
    app = zapier_app_definition(CATALOG, "https://ghl.example.com", False)
    triggers = app["triggers"]
    for group in ("triggers", "searches", "creates"):
        for key, operation in app[group].items():
            for field in operation["operation"].get("inputFields", []):
                if isinstance(field, dict) and "dynamic" in field:
                    trigger_key, id_field, label_field = field["dynamic"].split(".")
                    assert (id_field, label_field) == ("id", "name") and "choices" not in field, (key, field)
                    chooser = triggers[trigger_key]
                    assert chooser["display"]["hidden"] and chooser["operation"]["perform"]["url"].startswith((
                        "https://ghl.example.com/zapier/choices/", "https://ghl.example.com/zapier/operations")), \
                        trigger_key
    opportunity = {f["key"]: f for f in app["creates"]["create_opportunity"]["operation"]["inputFields"]
                   if isinstance(f, dict)}
    assert opportunity["pipelineId"]["dynamic"] == "choices_pipelines.id.name"
    assert opportunity["pipelineStageId"]["dependsOn"] == ["pipelineId"]
    assert opportunity["contactId"]["search"] == "find_contact.id"
    assert opportunity["assignedTo"]["dynamic"] == "choices_users.id.name"
    assert "locationId" not in opportunity, "the connection gives the location"
    assert [c["value"] for c in opportunity["status"]["choices"]] == ["open", "won", "lost", "abandoned"]
    contact = app["creates"]["create_contact"]["operation"]["inputFields"]
    assert contact[-1] == "$func$2$f$", "the location's own custom fields are loaded last"
    assert not any(isinstance(f, dict) and f["key"].startswith("custom_field_") for f in contact)
    assert {f["key"]: f for f in contact if isinstance(f, dict)}["tags"]["list"] is True
    required = [isinstance(f, dict) and f.get("required") for f in contact]
    assert required == sorted(required, reverse=True), "required fields come first"
    hidden = {k for k, t in triggers.items() if t["display"].get("hidden")}
    assert {"list_pipelines", "list_workflows", "list_tags"} <= hidden
    assert not any(t["display"].get("hidden") for k, t in triggers.items()
                   if k in {r["key"] for r in CATALOG.of_kind("trigger")} and presentation.role(CATALOG.get(k)) == "trigger")


def test_the_connection_asks_for_the_connector_key_only_when_the_server_requires_one():
    plain = zapier_app_definition(CATALOG, "https://ghl.example.com/", False)
    keyed = zapier_app_definition(CATALOG, "https://ghl.example.com", True)
    assert [f["key"] for f in plain["authentication"]["fields"]] == ["token", "locationId"]
    assert [f["key"] for f in keyed["authentication"]["fields"]] == ["token", "locationId", "connectorKey"]
    assert plain["authentication"]["fields"][0]["type"] == "password"
    assert keyed["authentication"]["fields"][2]["type"] == "password"
    assert plain["authentication"]["test"] == {"url": "https://ghl.example.com/auth/test", "method": "GET"}
    assert "X-Connector-Key" not in plain["requestTemplate"]["headers"]
    assert keyed["requestTemplate"]["headers"]["X-Connector-Key"] == "{{bundle.authData.connectorKey}}"
    assert plain["requestTemplate"]["headers"]["Authorization"] == "Bearer {{bundle.authData.token}}"


def test_the_service_serves_the_definition_and_checks_the_token_at_ghl(client, auth):
    served = client.get("/zapier/app.json")
    assert served.status_code == 200
    assert served.get_json() == zapier_app_definition(CATALOG, "http://localhost", False)
    answer = client.get("/auth/test", headers=auth)
    assert answer.status_code == 200
    assert answer.get_json() == {"location_id": LOCATION, "name": "Sandbox Location",
                                 "company_id": "sandbox-company", "timezone": "America/New_York"}
    refused = client.get("/auth/test", headers={**auth, "Authorization": "Bearer wrong"})
    assert refused.status_code == 401 and refused.get_json()["error"]["code"] == "ghl_unauthorized"
    missing = client.get("/auth/test", headers={"Authorization": auth["Authorization"]})
    assert missing.status_code == 400 and missing.get_json()["error"]["code"] == "missing_location"


# ----------------------------------------------------------------------------- Zapier's schema


def test_zapiers_schema_package_finds_no_error_in_the_generated_app(zapier_runtime, app_dir):
    result = zapier_runtime.validate(app_dir)
    assert result["definitionErrors"] == [], "app-definition.json, as written"
    assert result["appErrors"] == [], "the app index.js exports, compiled as zapier-platform-core does"


# ----------------------------------------------------------------------------- Zapier's runtime


def test_auth_test_and_connection_label(zapier_runtime, app_dir, service, sandbox_reset, tmp_path):
    results = zapier_runtime.run(app_dir, [
        {"name": "test", "path": "authentication.test"},
        {"name": "label", "path": "authentication.connectionLabel", "inputDataFrom": "test"},
    ], tmp_path)
    assert results["test"]["result"]["location_id"] == LOCATION
    assert results["label"]["result"] == "Sandbox Location (sandbox-location)"


def test_a_401_from_ghl_is_zapiers_expired_auth_error_asking_to_reconnect(zapier_runtime, app_dir, service,
                                                                         sandbox_reset, tmp_path):
    results = zapier_runtime.run(app_dir, [
        {"name": "test", "path": "authentication.test"},
        {"name": "poll", "path": trigger(CONTACTS), "bundle": {"meta": {"zap": {"id": "zap-401"}}}},
    ], tmp_path, bundle={"authData": {**AUTH_DATA, "token": "revoked-token"}})
    for name in ("test", "poll"):
        error = results[name]["error"]
        assert error["name"] == "ExpiredAuthError", error
        assert "reconnect the account in Zapier" in error["message"]
        assert error["message"].endswith("(ghl_unauthorized)")


def fired_by_zapier(polls):
    """What Zapier fires on for each poll of one Zap: items whose id its deduper has not seen.
    The first poll is the one Zapier makes when the Zap is turned on: it only fills the deduper."""
    seen, fired = set(), []
    for n, items in enumerate(polls):
        ids = [item["id"] for item in items]
        assert len(ids) == len(set(ids)), "Zapier rejects a poll holding an id twice"
        fired.append([] if n == 0 else [item for item in items if item["id"] not in seen])
        seen.update(ids)
    return fired


def test_a_polling_trigger_fires_once_per_item_and_a_create_then_shows_up(zapier_runtime, app_dir, service,
                                                                          sandbox_reset, tmp_path):
    zap = {"meta": {"zap": {"id": "zap-polling"}}}
    service.received.clear()
    results = zapier_runtime.run(app_dir, [
        {"name": "turned_on", "path": trigger(CONTACTS),
         "bundle": {"meta": {**zap["meta"], "isPopulatingDedupe": True}}},
        {"name": "second", "path": trigger(CONTACTS), "bundle": zap},
        {"name": "create", "path": "creates.create_contact.operation.perform",
         "bundle": {"inputData": {"firstName": "Zed", "lastName": "Zapier", "email": "zed.zapier@example.com",
                                  "tags": ["zapier", "test"]}}},
        {"name": "third", "path": trigger(CONTACTS), "bundle": zap},
        {"name": "fourth", "path": trigger(CONTACTS), "bundle": zap},
        {"name": "sample", "path": trigger(CONTACTS), "bundle": {"meta": {**zap["meta"], "isLoadingSample": True}}},
    ], tmp_path)
    assert all(r["ok"] for r in results.values()), [r.get("error") for r in results.values()]
    polls = [results[name]["result"] for name in ("turned_on", "second", "third", "fourth")]
    assert {c["email"] for c in polls[0]} == {"ada.sample@example.com", "ben.example@example.com",
                                             "cleo.testwell@example.com", "dev.placeholder@example.com",
                                             "eve.fakename@example.com"}
    created = results["create"]["result"]
    assert created["id"] and created["email"] == "zed.zapier@example.com" and created["tags"] == ["zapier", "test"]
    _, second, third, fourth = fired_by_zapier(polls)
    assert second == [], "nothing new since the Zap was turned on"
    assert [item["id"] for item in third] == [created["id"]] and third[0]["email"] == "zed.zapier@example.com"
    assert fourth == []
    assert polls[2][0]["id"] == created["id"], "newest first"
    # Loading a sample (X-Poll-Mode: sample) answers GHL's newest items and records nothing.
    assert [item["id"] for item in results["sample"]["result"]][:1] == [created["id"]]
    assert len(results["sample"]["result"]) == 6
    polled = [r for r in service.received if r["path"] == f"/triggers/{CONTACTS}"]
    assert [r["X-Poll-Mode"] for r in polled] == [None, None, None, None, "sample"]
    assert {r["X-Subscriber-Id"] for r in polled} == {"zap-polling"}
    assert {r["X-Location-Id"] for r in service.received} == {LOCATION}


def test_a_search_with_a_match_and_one_without(zapier_runtime, app_dir, service, sandbox_reset, tmp_path):
    results = zapier_runtime.run(app_dir, [
        {"name": "match", "path": "searches.find_contact.operation.perform",
         "bundle": {"inputData": {"email": "ada.sample@example.com"}}},
        {"name": "none", "path": "searches.find_contact.operation.perform",
         "bundle": {"inputData": {"email": "nobody@example.com"}}},
    ], tmp_path)
    match = results["match"]["result"]
    assert len(match) == 1 and match[0]["id"] == "sandbox-contact-1" and match[0]["email"] == "ada.sample@example.com"
    assert results["none"]["result"] == []


def test_a_dynamic_dropdown_is_filled_by_its_list_trigger(zapier_runtime, app_dir, service, sandbox_reset, tmp_path):
    service.received.clear()
    results = zapier_runtime.run(app_dir, [
        {"name": "pipelines", "path": trigger("list_pipelines"),
         "bundle": {"inputData": {"name": "Deal", "status": "open"}, "meta": {"isFillingDynamicDropdown": True}}},
        {"name": "users", "path": trigger("list_users_by_location"),
         "bundle": {"meta": {"isFillingDynamicDropdown": True}}},
    ], tmp_path)
    assert [(p["id"], p["name"]) for p in results["pipelines"]["result"]] == [("sandbox-pipeline-1", "Sandbox Sales")]
    assert {u["name"] for u in results["users"]["result"]} == {"Alex Admin", "Uma User"}
    assert [r["X-Poll-Mode"] for r in service.received] == ["sample", "sample"], "dropdowns record nothing"


def test_a_429_from_ghl_surfaces_as_zapiers_throttled_error(zapier_runtime, app_dir, service, sandbox_reset,
                                                            tmp_path):
    faults = [{"status": 429, "times": 5, "path_prefix": "/contacts"}]
    requests.post(f"{sandbox_reset.url}/_sandbox/faults", json=faults, timeout=5).raise_for_status()
    try:
        results = zapier_runtime.run(app_dir, [
            {"name": "poll", "path": trigger(CONTACTS), "bundle": {"meta": {"zap": {"id": "zap-429"}}}},
            {"name": "create", "path": "creates.create_contact.operation.perform",
             "bundle": {"inputData": {"email": "throttled@example.com"}}},
        ], tmp_path)
    finally:
        requests.delete(f"{sandbox_reset.url}/_sandbox/faults", timeout=5)
    for name in ("poll", "create"):
        error = results[name]["error"]
        assert error["name"] == "ThrottledError", error
        assert isinstance(error["delay"], int) and error["delay"] >= 1, error


# ----------------------------------------------------------------------------- REST hooks


def hook_worker(app):
    """The REST hook worker, in this process, on the service's database and GHL client."""
    from triggers.hooks_store import SqliteHookStore, TokenCipher
    from triggers.hooks_worker import HookWorker
    shared = app.extensions["ghl_zapier"]
    hooks = SqliteHookStore(shared.settings.database_path, TokenCipher(shared.settings.secret_key))
    return HookWorker(shared.settings, shared.catalog, shared.client, shared.store, hooks)


def test_a_rest_hook_subscribes_delivers_lists_and_unsubscribes(zapier_runtime, app_dir, service, sandbox_reset,
                                                                 tmp_path):
    probe = requests.post(f"{service.url}/hooks", json={}, headers=SERVICE_AUTH, timeout=5)
    if probe.status_code in (404, 405):
        pytest.skip("REST hooks (issue 5) are not built yet: POST /hooks answers "
                    f"{probe.status_code}; this test runs once server/routes/hooks.py has them")
    hook = f"triggers.{CONTACTS}{INSTANT_SUFFIX}.operation"
    receiver = Receiver().start()
    try:
        target_url = f"{receiver.url}/hooks/standard/1/zap-hook/"
        subscribed = zapier_runtime.run(app_dir, [
            {"name": "subscribe", "path": f"{hook}.performSubscribe",
             "bundle": {"targetUrl": target_url, "inputData": {}, "meta": {"zap": {"id": "zap-hook"}}}},
        ], tmp_path)["subscribe"]
        assert subscribed["ok"], subscribed.get("error")
        subscription = subscribed["result"]
        assert subscription["id"] and subscription["target_url"] == target_url

        created = requests.post(f"{sandbox_reset.url}/_sandbox/records", timeout=5, json={
            "path": "/contacts/", "records": [{"firstName": "Hope", "email": "hope.hook@example.com"}]})
        created.raise_for_status()
        new_id = created.json()["ids"][0]
        worker = hook_worker(service.app)
        deadline = time.monotonic() + 10
        while not receiver.bodies() and time.monotonic() < deadline:
            worker.tick()  # the subscription is due one second after subscribing
            time.sleep(0.1)
        assert len(receiver.bodies()) == 1, "one delivery of what appeared after subscribing"
        delivered = receiver.bodies()[0]
        assert isinstance(delivered, list) and [item["ghl_id"] for item in delivered] == [new_id]

        results = zapier_runtime.run(app_dir, [
            {"name": "perform", "path": f"{hook}.perform", "bundle": {"cleanedRequest": delivered}},
            {"name": "perform_one", "path": f"{hook}.perform", "bundle": {"cleanedRequest": delivered[0]}},
            {"name": "list", "path": f"{hook}.performList", "bundle": {"inputData": {}}},
            {"name": "unsubscribe", "path": f"{hook}.performUnsubscribe",
             "bundle": {"subscribeData": subscription, "targetUrl": target_url}},
        ], tmp_path)
        assert all(r["ok"] for r in results.values()), [r.get("error") for r in results.values()]
        assert results["perform"]["result"] == delivered
        assert results["perform_one"]["result"] == delivered
        listed = {item["id"]: item for item in results["list"]["result"]}
        assert set(listed[delivered[0]["id"]]) == set(delivered[0]), "performList shapes items as deliveries do"
        assert len(listed) == 6
        assert results["unsubscribe"]["result"]["deleted"] is True
        gone = requests.get(f"{service.url}/hooks/{subscription['id']}", headers=SERVICE_AUTH, timeout=5)
        assert gone.status_code == 404
    finally:
        receiver.stop()


# ----------------------------------------------------------------------------- issue 11: event triggers, new actions


def test_triggers_named_for_their_event_keep_their_name_and_get_an_instant_twin():
    app = zapier_app_definition(CATALOG, "https://ghl.example.com", False)
    triggers = app["triggers"]
    event_named = [r for r in CATALOG.of_kind("trigger") if presentation.names_its_event(r)]
    assert {r["key"] for r in event_named} >= {
        "new_contact", "contact_updated", "contact_tag_added", "contact_tag_removed", "new_opportunity",
        "opportunity_stage_changed", "opportunity_status_changed"}
    for record in event_named:
        label = triggers[record["key"]]["display"]["label"]
        assert label == presentation.trigger_display(record, CATALOG)["label"]
        if not record["response"]["single"] and record["response"]["dedupe"] == "new":
            twin = triggers[record["key"] + INSTANT_SUFFIX]
            assert twin["display"]["label"] == f"{label} (Checked Every Minute)"
            assert twin["operation"]["performSubscribe"]["body"]["trigger"] == record["key"]
    assert triggers["contact_tag_added"]["operation"]["outputFields"][0] == {"key": "id", "label": "Change ID",
                                                                            "type": "string"}
    assert triggers["new_contact"]["operation"]["outputFields"][0]["label"] == "ID"


def test_a_trigger_added_later_gets_its_label_and_twin_from_its_record_alone():
    records = load_records()
    opportunity = next(r for r in records if r["key"] == "new_opportunity")
    added = [{**opportunity, "key": "order_shipped", "name": "Order Shipped"}]
    app = zapier_app_definition(Catalog(records + added), "https://ghl.example.com", False)
    triggers = app["triggers"]
    assert triggers["order_shipped"]["display"]["label"] == "Order Shipped"
    assert triggers["order_shipped_instant"]["display"]["label"] == "Order Shipped (Checked Every Minute)"
    assert triggers["order_shipped"]["display"]["description"].startswith("Triggers when ")
    labels = [t["display"]["label"] for t in triggers.values()]
    assert len(labels) == len(set(labels))


def test_send_message_and_the_new_searches_in_the_definition():
    app = zapier_app_definition(CATALOG, "https://ghl.example.com", False)
    send = app["creates"]["send_message"]
    assert send["display"]["label"] == "Send Message"
    fields = {f["key"]: f for f in send["operation"]["inputFields"]}
    assert fields["type"]["required"] is True
    assert [(c["value"], c["label"]) for c in fields["type"]["choices"][:3]] == [
        ("SMS", "SMS"), ("Email", "Email"), ("WhatsApp", "WhatsApp")]
    assert "Email needs a Subject" in fields["type"]["helpText"]
    assert fields["contactId"]["required"] is True
    assert "status" not in fields and "subType" not in fields, "internal: the service fills them"
    assert fields["attachments"]["list"] is True and fields["emailCc"]["list"] is True
    assert send["operation"]["sample"]["id"] == "sample-message-1"
    for key in ("find_opportunity", "find_user", "find_contact_appointments"):
        search = app["searches"][key]
        assert search["operation"]["sample"]["id"] and search["operation"]["inputFields"], key
    users = {f["key"]: f for f in app["searches"]["find_user"]["operation"]["inputFields"]}
    assert users["query"]["required"] is True and "locationId" not in users
    opportunity = {f["key"]: f for f in app["searches"]["find_opportunity"]["operation"]["inputFields"]}
    assert opportunity["pipeline_id"]["dynamic"] == "choices_pipelines.id.name"


def test_find_or_create_opportunity_in_zapiers_runtime(zapier_runtime, app_dir, service, sandbox_reset, tmp_path):
    """Zapier runs a search-or-create as its search, then (on []) its create: both steps here."""
    definition = json.loads((app_dir / "app-definition.json").read_text())["searchOrCreates"]["find_opportunity"]
    search, create = definition["search"], definition["create"]
    find = {"contact_id": "sandbox-contact-5", "pipeline_id": "sandbox-pipeline-1"}
    results = zapier_runtime.run(app_dir, [
        {"name": "miss", "path": f"searches.{search}.operation.perform", "bundle": {"inputData": find}},
        {"name": "create", "path": f"creates.{create}.operation.perform",
         "bundle": {"inputData": {"contactId": "sandbox-contact-5", "pipelineId": "sandbox-pipeline-1",
                                  "name": "Eve's renewal", "monetaryValue": "250"}, "meta": {"withSearch": True}}},
        {"name": "hit", "path": f"searches.{search}.operation.perform", "bundle": {"inputData": find}},
        {"name": "by_text", "path": f"searches.{search}.operation.perform",
         "bundle": {"inputData": {"q": "eve.fakename@example.com"}}},
    ], tmp_path)
    assert all(r["ok"] for r in results.values()), [r.get("error") for r in results.values()]
    assert results["miss"]["result"] == []
    created = results["create"]["result"]
    assert created["id"] and created["name"] == "Eve's renewal" and created["status"] == "open"
    assert [o["id"] for o in results["hit"]["result"]] == [created["id"]]
    assert results["hit"]["result"][0]["contact"]["email"] == "eve.fakename@example.com"
    assert [o["id"] for o in results["by_text"]["result"]] == [created["id"]]


def test_send_message_and_the_new_searches_in_zapiers_runtime(zapier_runtime, app_dir, service, sandbox_reset,
                                                             tmp_path):
    requests.delete(f"{sandbox_reset.url}/_sandbox/requests", timeout=5)
    results = zapier_runtime.run(app_dir, [
        {"name": "email", "path": "creates.send_message.operation.perform", "bundle": {"inputData": {
            "type": "Email", "contactId": "sandbox-contact-1", "subject": "Hello", "html": "<p>Hi Ada</p>",
            "attachments": ["https://files.example.com/a.pdf"]}}},
        {"name": "no_subject", "path": "creates.send_message.operation.perform", "bundle": {"inputData": {
            "type": "Email", "contactId": "sandbox-contact-1", "message": "Hi"}}},
        {"name": "user", "path": "searches.find_user.operation.perform",
         "bundle": {"inputData": {"query": "alex.admin@example.com", "companyId": "sandbox-company"}}},
        {"name": "appointments", "path": "searches.find_contact_appointments.operation.perform",
         "bundle": {"inputData": {"contactId": "sandbox-contact-1"}}},
        {"name": "no_appointments", "path": "searches.find_contact_appointments.operation.perform",
         "bundle": {"inputData": {"contactId": "sandbox-contact-4"}}},
    ], tmp_path)
    email = results["email"]["result"]
    assert email["id"] == email["messageId"] and email["emailMessageId"] and email["conversationId"]
    error = results["no_subject"]["error"]
    assert error["name"] == "AppError" and error["status"] == 400 and error["code"] == "invalid_input", error
    assert error["message"] == ("Some inputs are missing or invalid: Subject (Email): "
                                "required when Channel is Email (invalid_input)")
    assert [u["id"] for u in results["user"]["result"]] == ["sandbox-user-1"]
    assert [a["id"] for a in results["appointments"]["result"]] == ["sandbox-appointment-1"]
    assert results["no_appointments"]["result"] == []
    sent = [r for r in requests.get(f"{sandbox_reset.url}/_sandbox/requests", timeout=5).json()["requests"]
            if r["path"] == "/conversations/messages"]
    assert [r["json"] for r in sent] == [{
        "type": "Email", "contactId": "sandbox-contact-1", "attachments": ["https://files.example.com/a.pdf"],
        "subject": "Hello", "html": "<p>Hi Ada</p>", "status": "pending", "subType": "Email"}]


def test_a_change_triggers_instant_twin_delivers_each_change(zapier_runtime, app_dir, service, sandbox_reset,
                                                             tmp_path):
    hook = "triggers.contact_tag_added_instant.operation"
    receiver = Receiver().start()
    try:
        target_url = f"{receiver.url}/hooks/standard/1/zap-tag/"
        subscribed = zapier_runtime.run(app_dir, [
            {"name": "subscribe", "path": f"{hook}.performSubscribe",
             "bundle": {"targetUrl": target_url, "inputData": {"tag": "Gold"}, "meta": {"zap": {"id": "zap-tag"}}}},
        ], tmp_path)["subscribe"]
        assert subscribed["ok"], subscribed.get("error")
        subscription = subscribed["result"]
        for contact_id, tags in (("sandbox-contact-2", ["gold"]), ("sandbox-contact-3", ["silver"])):
            added = requests.post(f"{service.url}/actions/add_tags_to_contact", headers=SERVICE_AUTH, timeout=5,
                                  json={"contactId": contact_id, "tags": tags})
            assert added.status_code == 200, added.text
        worker = hook_worker(service.app)
        deadline = time.monotonic() + 10
        while not receiver.bodies() and time.monotonic() < deadline:
            worker.tick()
            time.sleep(0.1)
        assert len(receiver.bodies()) == 1, receiver.bodies()
        delivered = receiver.bodies()[0]
        assert [(item["ghl_id"], item["tag"]) for item in delivered] == [("sandbox-contact-2", "gold")]
        results = zapier_runtime.run(app_dir, [
            {"name": "perform", "path": f"{hook}.perform", "bundle": {"cleanedRequest": delivered}},
            {"name": "unsubscribe", "path": f"{hook}.performUnsubscribe",
             "bundle": {"subscribeData": subscription, "targetUrl": target_url}},
        ], tmp_path)
        assert all(r["ok"] for r in results.values()), [r.get("error") for r in results.values()]
        assert results["perform"]["result"] == delivered
        assert results["unsubscribe"]["result"]["deleted"] is True
    finally:
        receiver.stop()
