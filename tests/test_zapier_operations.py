"""The generated operations in the Zapier app: "Run a GHL Operation" and "New Item in a GHL
List" (``zapier_app.generic_steps``), their Operation dropdowns and fields served by
``/zapier/operations`` (``server/routes/zapier_operations.py``), and three operations of services
the seed never covered (invoices, products, social media posting) run by Zapier's own runtime
against the live service and the sandbox GHL.
"""

import json

import pytest
import requests

from catalog.registry import load_catalog
from tests.conftest import LOCATION, operation_requests
from tests.test_zapier_app import fired_by_zapier
from tests.zapier_harness import trigger
from zapier_app import choices, fields, operation_picker as picker
from zapier_app.definition import zapier_app_definition
from zapier_app.generic_steps import DROPDOWN_KEYS, POLL_KEY, RUN_KEY

CATALOG = load_catalog()
HAND_WRITTEN = load_catalog(generated_dir=None)
GENERATED = [r for r in CATALOG if r["origin"] == "generated"]
URL = "https://ghl.example.com"
RUN = f"creates.{RUN_KEY}.operation"
POLL = f"triggers.{POLL_KEY}.operation"
GENERIC_TRIGGERS = {POLL_KEY, *DROPDOWN_KEYS.values()}
# The hidden dropdowns of generated lists that fill inputs of generated operations.
LIST_DROPDOWNS = {choices.TRIGGER_PREFIX + name for name, source in choices.sources(CATALOG).items()
                  if source.get("generated")}

INVOICE_INPUTS = {
    "name": "Zapier invoice", "currency": "USD", "issueDate": "2026-01-15", "liveMode": False,
    "businessDetails": json.dumps({"name": "Example Widgets"}),
    "items": json.dumps([{"name": "Mug", "currency": "USD", "amount": 12, "qty": 2}]),
    "discount": json.dumps({"type": "percentage", "value": 0}),
    "contactDetails": json.dumps({"id": "sandbox-contact-1", "name": "Ada Sample", "phoneNo": "+15550100",
                                  "email": "ada.sample@example.com"}),
    "sentTo": json.dumps({"email": ["ada.sample@example.com"]}),
}


def _visible(group):
    return {key for key, entry in group.items() if not entry["display"].get("hidden")}


# ----------------------------------------------------------------------------- the definition


def test_generated_records_are_no_steps_and_hand_written_ones_are_as_before():
    app = zapier_app_definition(CATALOG, URL, False)
    before = zapier_app_definition(HAND_WRITTEN, URL, False)
    generated_keys = {r["key"] for r in GENERATED}
    for group in ("triggers", "searches", "creates"):
        assert not {key.removesuffix("_instant") for key in app[group]} & generated_keys, group
    assert set(app["triggers"]) - set(before["triggers"]) == GENERIC_TRIGGERS | LIST_DROPDOWNS
    assert set(app["creates"]) - set(before["creates"]) == {RUN_KEY}
    for group in ("triggers", "searches", "creates"):
        for key, entry in before[group].items():
            assert app[group][key] == entry, f"{group}.{key} changed"
    assert app["searchOrCreates"] == before["searchOrCreates"]


def test_the_app_stays_the_size_of_the_hand_written_catalog():
    app = zapier_app_definition(CATALOG, URL, False)
    before = zapier_app_definition(HAND_WRITTEN, URL, False)
    assert len(CATALOG) - len(HAND_WRITTEN) == len(GENERATED) >= 400
    # The list trigger, two hidden operation dropdowns, and at most one hidden dropdown per generated list.
    assert len(app["triggers"]) == len(before["triggers"]) + 3 + len(LIST_DROPDOWNS)
    assert len(LIST_DROPDOWNS) <= len(picker.offered(CATALOG, "poll"))
    assert len(app["searches"]) == len(before["searches"])
    assert len(app["creates"]) == len(before["creates"]) + 1
    def visible(definition):
        return len(_visible(definition["triggers"])) + len(definition["searches"]) + len(definition["creates"])
    assert visible(app) == visible(before) + 2 < len(GENERATED) / 2
    assert len(json.dumps(app)) < 1.2 * len(json.dumps(before))


def test_every_generated_operation_is_offered_by_one_generic_step():
    run = {r["key"] for r in picker.offered(CATALOG, "run")}
    poll = {r["key"] for r in picker.offered(CATALOG, "poll")}
    assert run == {r["key"] for r in GENERATED if r["kind"] in ("action", "search")}
    assert poll == {r["key"] for r in GENERATED if r["kind"] == "trigger"}
    assert all(CATALOG.get(key)["response"]["id_field"] for key in poll)
    assert not run & poll and not {r["key"] for r in HAND_WRITTEN} & (run | poll)


def test_no_generated_record_has_an_input_the_steps_use_themselves():
    for record in GENERATED:
        assert not {f["key"] for f in record["inputs"]} & set(picker.STEP_KEYS), record["key"]


def test_the_steps_look_like_zapier_steps():
    app = zapier_app_definition(CATALOG, URL, False)
    run, poll = app["creates"][RUN_KEY], app["triggers"][POLL_KEY]
    assert run["display"]["label"] == "Run a GHL Operation"
    assert poll["display"]["label"] == "New Item in a GHL List"
    assert poll["display"]["description"].startswith("Triggers when ") and poll["operation"]["type"] == "polling"
    for step, entry in (("run", run), ("poll", poll)):
        inputs = {f["key"]: f for f in entry["operation"]["inputFields"] if isinstance(f, dict)}
        chosen = inputs["operation"]
        assert chosen["required"] and chosen["altersDynamicFields"]
        assert chosen["dynamic"] == f"{DROPDOWN_KEYS[step]}.id.name"
        assert entry["operation"]["inputFields"][-1] == "$func$2$f$", "the chosen operation's fields load last"
        assert [c["value"] for c in inputs["operation_service"]["choices"]] == picker.services(CATALOG, step)
        dropdown = app["triggers"][DROPDOWN_KEYS[step]]
        assert dropdown["display"]["hidden"] and dropdown["operation"]["canPaginate"]
        assert dropdown["operation"]["perform"]["url"] == f"{URL}/zapier/operations"
        assert dropdown["operation"]["perform"]["params"]["step"] == step
        assert entry["operation"]["sample"]["id"]
    assert {"invoices", "products", "social-media-posting", "store"} <= set(picker.services(CATALOG, "run"))


# ----------------------------------------------------------------------------- the service's routes


def _dropdown(client, auth, **params):
    answer = client.get("/zapier/operations", query_string=params, headers=auth)
    return answer.status_code, answer.get_json()


@pytest.mark.parametrize("step", picker.STEPS)
def test_the_dropdown_pages_through_every_offered_operation(client, auth, step):
    listed, page = [], 0
    while True:
        status, choices = _dropdown(client, auth, step=step, page=page)
        assert status == 200 and len(choices) <= picker.PAGE_SIZE
        if not choices:
            break
        listed += choices
        page += 1
    assert page == -(-len(picker.offered(CATALOG, step)) // picker.PAGE_SIZE)
    ids = [choice["id"] for choice in listed]
    assert len(ids) == len(set(ids)) and set(ids) == {r["key"] for r in picker.offered(CATALOG, step)}
    for choice in listed:
        record = CATALOG.get(choice["id"])
        service = picker.service_label(record["service"])
        name = record["name"].removesuffix(" (Deprecated)").removesuffix(f" ({service})")
        assert choice["name"].startswith(f"{name} ({service}"), choice


def test_the_dropdown_finds_operations_by_words_and_service(client, auth):
    status, found = _dropdown(client, auth, step="run", q="  Invoice  CREATE ")
    assert status == 200 and {"create_invoice", "create_invoice_schedule"} <= {c["id"] for c in found}
    for choice in found:
        record = CATALOG.get(choice["id"])
        text = f"{record['name']} {record['summary']} {record['path']} {record['key']} {record['service']}".lower()
        assert "invoice" in text and "create" in text, choice
    assert {"id": "create_invoice", "name": "Create Invoice (Invoices)"} in found
    status, products = _dropdown(client, auth, step="run", service="products")
    assert status == 200 and {CATALOG.get(c["id"])["service"] for c in products} == {"products"}
    assert len(products) == len([r for r in GENERATED if r["service"] == "products" and r["kind"] != "trigger"])
    status, lists = _dropdown(client, auth, step="poll", q="product", service="products")
    assert status == 200 and "list_products" in {c["id"] for c in lists}
    assert _dropdown(client, auth, step="run", q="no operation has this text") == (200, [])


def test_labels_say_which_tokens_work_and_what_replaces_a_deprecated_operation():
    agency = next(r for r in GENERATED if r.get("access") == ["agency"] and not r.get("deprecated"))
    oauth = next(r for r in GENERATED if r.get("access") == ["oauth"] and not r.get("deprecated"))
    assert picker.choice_label(agency, CATALOG).endswith("; agency token only)")
    assert picker.choice_label(oauth, CATALOG).endswith("; OAuth only)")
    deprecated = CATALOG.get("get_agency_plans_deprecated")
    assert picker.choice_label(deprecated, CATALOG) == (
        "Get Agency Plans (SaaS API; agency token only; deprecated: use Get Agency Plans)")
    for record in GENERATED:
        if record.get("deprecated"):
            assert "deprecated" in picker.choice_label(record, CATALOG), record["key"]
    notes = picker.notes_field(deprecated, CATALOG)
    assert notes["type"] == "copy" and "agency token" in notes["helpText"]
    assert "use Get Agency Plans instead" in notes["helpText"]


@pytest.mark.parametrize("params, code", [
    ({}, "invalid_input"),
    ({"step": "everything"}, "invalid_input"),
    ({"step": "run", "q": "x" * 101}, "invalid_input"),
    ({"step": "run", "q": "tab\there"}, "invalid_input"),
    ({"step": "run", "service": "no-such-service"}, "invalid_input"),
    ({"step": "poll", "service": "saas-api"}, "invalid_input"),  # no lists with ids there
    ({"step": "run", "page": "21"}, "invalid_page"),
    ({"step": "run", "page": "-1"}, "invalid_page"),
    ({"step": "run", "page": "1e3"}, "invalid_page"),
    ({"step": "run", "limit": "5000"}, "invalid_input"),
    ({"step": ["run", "poll"]}, "invalid_input"),
])
def test_a_bad_dropdown_request_is_a_json_400(client, auth, params, code):
    status, body = _dropdown(client, auth, **params)
    assert status == 400 and body["error"]["code"] == code and body["error"]["message"], body


def test_the_routes_want_the_connections_token(client):
    for path in ("/zapier/operations?step=run", "/zapier/operations/create_invoice/fields?for=input"):
        answer = client.get(path, headers={"X-Location-Id": LOCATION})
        assert answer.status_code == 401 and answer.get_json()["error"]["code"] == "missing_token"


@pytest.mark.parametrize("key, kind", [("create_invoice", "create"), ("get_categories_by_location_id", "search"),
                                       ("list_products", "trigger")])
def test_a_chosen_operation_has_the_fields_of_a_first_class_step(client, auth, key, kind):
    record = CATALOG.get(key)
    answer = client.get(f"/zapier/operations/{key}/fields", query_string={"for": "input"}, headers=auth)
    assert answer.status_code == 200
    first_class = [f for f in fields.input_fields(record, CATALOG, kind) if isinstance(f, dict)]
    assert [f for f in answer.get_json() if f["key"] != picker.NOTES_KEY] == first_class
    assert all(not f.get("location") and f["key"] not in ("locationId", "altId") for f in answer.get_json())
    outputs = client.get(f"/zapier/operations/{key}/fields", query_string={"for": "output"}, headers=auth)
    keys = {f["key"] for f in outputs.get_json()}
    assert outputs.status_code == 200 and keys
    if kind == "search":
        assert "count" in keys and all(k == "count" or k.startswith("items[]") for k in keys)
    else:
        assert "id" in keys


def test_every_offered_operation_answers_its_fields(client, auth):
    for record in picker.offered(CATALOG, "run") + picker.offered(CATALOG, "poll"):
        for purpose in ("input", "output"):
            answer = client.get(f"/zapier/operations/{record['key']}/fields", query_string={"for": purpose},
                                headers=auth)
            assert answer.status_code == 200, (record["key"], purpose, answer.get_json())
            listed = answer.get_json()
            assert all(isinstance(f, dict) and f.get("key") for f in listed), record["key"]
            assert len({f["key"] for f in listed}) == len(listed), (record["key"], purpose)


def test_only_generated_operations_have_fields_here(client, auth):
    for key in ("create_contact", "new_contact", "no_such_operation", "x" * 300):
        answer = client.get(f"/zapier/operations/{key}/fields", query_string={"for": "input"}, headers=auth)
        assert answer.status_code == 404 and answer.get_json()["error"]["code"] == "unknown_operation", key
        assert len(answer.get_json()["error"]["message"]) < 250
    for purpose in ({}, {"for": "everything"}, {"for": ["input", "output"]}):
        answer = client.get("/zapier/operations/create_invoice/fields", query_string=purpose, headers=auth)
        assert answer.status_code == 400 and answer.get_json()["error"]["code"] == "invalid_input", purpose


def test_fields_of_an_agency_only_or_deprecated_operation_start_with_a_note(client, auth):
    answer = client.get("/zapier/operations/get_agency_plans_deprecated/fields", query_string={"for": "input"},
                        headers=auth)
    first = answer.get_json()[0]
    assert first["key"] == picker.NOTES_KEY and first["type"] == "copy"
    assert "deprecated" in first["helpText"] and "agency token" in first["helpText"]


# ----------------------------------------------------------------------------- in Zapier's runtime


def _requests_to(sandbox, prefix):
    return [r for r in operation_requests(sandbox) if r["path"].startswith(prefix)]


def _violations(sandbox, prefixes):
    listed = requests.get(f"{sandbox.url}/_sandbox/violations", timeout=5).json()["violations"]
    return [v for v in listed if v["path"].startswith(prefixes)]


def test_run_a_ghl_operation_lists_loads_and_runs_three_generated_operations(zapier_runtime, app_dir, service,
                                                                            sandbox_reset, tmp_path):
    fill = {"isFillingDynamicDropdown": True, "page": 0}
    product = {"name": "Zapier Mug", "productType": "PHYSICAL", "description": "A mug for Zaps"}
    results = zapier_runtime.run(app_dir, [
        {"name": "list_invoices", "path": trigger(DROPDOWN_KEYS["run"]),
         "bundle": {"inputData": {"operation_search": "create invoice"}, "meta": fill}},
        {"name": "list_products", "path": trigger(DROPDOWN_KEYS["run"]),
         "bundle": {"inputData": {"operation_service": "products", "operation_search": "create"}, "meta": fill}},
        {"name": "list_social", "path": trigger(DROPDOWN_KEYS["run"]),
         "bundle": {"inputData": {"operation_service": "social-media-posting"}, "meta": fill}},
        {"name": "page_0", "path": trigger(DROPDOWN_KEYS["run"]), "bundle": {"meta": fill}},
        {"name": "page_1", "path": trigger(DROPDOWN_KEYS["run"]), "bundle": {"meta": {**fill, "page": 1}}},
        {"name": "no_fields_yet", "path": f"{RUN}.inputFields.3"},
        {"name": "invoice_fields", "path": f"{RUN}.inputFields.3",
         "bundle": {"inputData": {"operation": "create_invoice"}}},
        {"name": "product_fields", "path": f"{RUN}.inputFields.3",
         "bundle": {"inputData": {"operation": "create_product"}}},
        {"name": "social_fields", "path": f"{RUN}.inputFields.3",
         "bundle": {"inputData": {"operation": "get_categories_by_location_id"}}},
        {"name": "social_outputs", "path": f"{RUN}.outputFields.2",
         "bundle": {"inputData": {"operation": "get_categories_by_location_id"}}},
        {"name": "invoice", "path": f"{RUN}.perform", "bundle": {"inputData": {
            "operation": "create_invoice", "operation_search": "create invoice", **INVOICE_INPUTS}}},
        {"name": "product", "path": f"{RUN}.perform", "bundle": {"inputData": {
            "operation": "create_product", "operation_service": "products", **product}}},
        {"name": "social", "path": f"{RUN}.perform",
         "bundle": {"inputData": {"operation": "get_categories_by_location_id", "searchText": "news"}}},
    ], tmp_path)
    assert all(r["ok"] for r in results.values()), {n: r.get("error") for n, r in results.items() if not r["ok"]}
    assert {"id": "create_invoice", "name": "Create Invoice (Invoices)"} in results["list_invoices"]["result"]
    assert "create_product" in {c["id"] for c in results["list_products"]["result"]}
    assert "get_categories_by_location_id" in {c["id"] for c in results["list_social"]["result"]}
    first_page, second_page = ({c["id"] for c in results[n]["result"]} for n in ("page_0", "page_1"))
    assert len(first_page) == picker.PAGE_SIZE and second_page and not first_page & second_page
    assert results["no_fields_yet"]["result"] == []
    invoice_fields = {f["key"]: f for f in results["invoice_fields"]["result"]}
    assert invoice_fields["items"]["type"] == "json" and invoice_fields["name"]["required"]
    assert "altId" not in invoice_fields, "the connection gives the location"
    product_fields = {f["key"]: f for f in results["product_fields"]["result"]}
    assert [c["value"] for c in product_fields["productType"]["choices"]] == [
        "DIGITAL", "PHYSICAL", "SERVICE", "PHYSICAL/DIGITAL"]
    assert "searchText" in {f["key"] for f in results["social_fields"]["result"]}
    assert "count" in {f["key"] for f in results["social_outputs"]["result"]}

    invoice, created, social = (results[n]["result"] for n in ("invoice", "product", "social"))
    assert invoice["id"] and invoice["name"] == "Zapier invoice"
    assert created["id"] and created["name"] == "Zapier Mug"
    assert social["count"] == len(social["items"]), "a look-up's list comes as its count and items"
    sent = {(r["method"], r["path"]): r for r in _requests_to(sandbox_reset, ("/invoices", "/products", "/social"))}
    invoice_body = sent[("POST", "/invoices/")]["json"]
    assert invoice_body["altId"] == LOCATION and invoice_body["altType"] == "location"
    assert invoice_body["items"] == [{"name": "Mug", "currency": "USD", "amount": 12, "qty": 2}]
    assert invoice_body["liveMode"] is False
    assert "operation" not in invoice_body and "operation_search" not in invoice_body
    product_body = sent[("POST", "/products/")]["json"]
    assert {key: product_body.get(key) for key in product} == product and product_body["locationId"] == LOCATION
    assert "operation" not in product_body and "operation_service" not in product_body
    categories = sent[("GET", f"/social-media-posting/{LOCATION}/categories")]
    assert categories["query"] == {"searchText": ["news"]} and categories["version"] == "2021-07-28"
    assert _violations(sandbox_reset, ("/invoices", "/products", "/social-media-posting")) == []
    assert {"/zapier/operations", "/zapier/operations/create_invoice/fields", "/actions/create_invoice",
            "/actions/get_categories_by_location_id"} <= {r["path"] for r in service.received}


def test_new_item_in_a_ghl_list_fires_once_for_a_new_product(zapier_runtime, app_dir, service, sandbox_reset,
                                                             tmp_path):
    zap = {"zap": {"id": "zap-generated-list"}}
    watch = {"operation": "list_products"}
    service.received.clear()
    results = zapier_runtime.run(app_dir, [
        {"name": "older", "path": f"{RUN}.perform", "bundle": {"inputData": {
            "operation": "create_product", "name": "Older Mug", "productType": "PHYSICAL"}}},
        {"name": "lists", "path": trigger(DROPDOWN_KEYS["poll"]),
         "bundle": {"inputData": {"operation_search": "products"}, "meta": {"isFillingDynamicDropdown": True}}},
        {"name": "fields", "path": f"{POLL}.inputFields.3", "bundle": {"inputData": watch}},
        {"name": "outputs", "path": f"{POLL}.outputFields.2", "bundle": {"inputData": watch}},
        {"name": "turned_on", "path": f"{POLL}.perform",
         "bundle": {"inputData": watch, "meta": {**zap, "isPopulatingDedupe": True}}},
        {"name": "second", "path": f"{POLL}.perform", "bundle": {"inputData": watch, "meta": zap}},
        {"name": "created", "path": f"{RUN}.perform", "bundle": {"inputData": {
            "operation": "create_product", "name": "Newer Mug", "productType": "DIGITAL"}}},
        {"name": "third", "path": f"{POLL}.perform", "bundle": {"inputData": watch, "meta": zap}},
        {"name": "fourth", "path": f"{POLL}.perform", "bundle": {"inputData": watch, "meta": zap}},
        {"name": "sample", "path": f"{POLL}.perform",
         "bundle": {"inputData": watch, "meta": {**zap, "isLoadingSample": True}}},
    ], tmp_path)
    assert all(r["ok"] for r in results.values()), {n: r.get("error") for n, r in results.items() if not r["ok"]}
    assert "list_products" in {c["id"] for c in results["lists"]["result"]}
    assert "search" in {f["key"] for f in results["fields"]["result"]}
    assert {"id", "name"} <= {f["key"] for f in results["outputs"]["result"]}
    polls = [results[name]["result"] for name in ("turned_on", "second", "third", "fourth")]
    # Items there before the Zap was turned on never fire (list_products watches for created items:
    # the first poll only sets the baseline).
    assert "Newer Mug" not in {item["name"] for item in polls[0] + polls[1]}
    _, second, third, fourth = fired_by_zapier(polls)
    created = results["created"]["result"]
    assert second == [] and fourth == []
    assert [item["id"] for item in third] == [created["id"]] and third[0]["name"] == "Newer Mug"
    assert {"Older Mug", "Newer Mug"} <= {item["name"] for item in results["sample"]["result"]}
    polled = [r for r in service.received if r["path"] == "/triggers/list_products"]
    assert len(polled) == 5 and {r["X-Subscriber-Id"] for r in polled} == {"zap-generated-list"}
    assert [r["X-Poll-Mode"] for r in polled] == [None, None, None, None, "sample"]
    assert _violations(sandbox_reset, ("/products",)) == []


def test_the_generic_steps_fail_with_readable_errors(zapier_runtime, app_dir, service, sandbox_reset, tmp_path):
    results = zapier_runtime.run(app_dir, [
        {"name": "unchosen", "path": f"{RUN}.perform", "bundle": {"inputData": {"name": "x"}}},
        {"name": "unknown", "path": f"{RUN}.perform", "bundle": {"inputData": {"operation": "no_such_operation"}}},
        {"name": "invalid", "path": f"{RUN}.perform",
         "bundle": {"inputData": {"operation": "create_product", "name": "No type"}}},
        {"name": "not_a_list", "path": f"{POLL}.perform", "bundle": {"inputData": {"operation": "create_product"}}},
        {"name": "odd_key", "path": f"{RUN}.inputFields.3", "bundle": {"inputData": {"operation": "../../auth/test"}}},
    ], tmp_path)
    assert not any(r["ok"] for r in results.values()), results
    assert results["unchosen"]["error"]["message"].endswith("(missing_operation)")
    assert results["unknown"]["error"]["message"].endswith("(unknown_operation)")
    invalid = results["invalid"]["error"]["message"]
    assert "productType: required" in invalid and invalid.endswith("(invalid_input)")
    assert results["not_a_list"]["error"]["message"].endswith("(unknown_operation)")
    assert results["odd_key"]["error"]["message"].endswith(("(unknown_operation)", "(not_found)"))
    assert _requests_to(sandbox_reset, "/products") == [], "nothing reached GHL"


def test_a_generated_operations_id_field_is_a_dropdown_of_the_generated_list(zapier_runtime, app_dir, service,
                                                                               sandbox_reset, tmp_path):
    """Get Product by ID through "Run a GHL Operation": its productId field is a dropdown that lists
    the location's products by name, and the product chosen there is the one the operation reads."""
    fill = {"isFillingDynamicDropdown": True, "page": 0}
    made = zapier_runtime.run(app_dir, [
        {"name": name, "path": f"{RUN}.perform", "bundle": {"inputData": {
            "operation": "create_product", "name": name, "productType": "PHYSICAL"}}}
        for name in ("Dropdown Mug", "Dropdown Cap")], tmp_path)
    assert all(r["ok"] for r in made.values()), made
    results = zapier_runtime.run(app_dir, [
        {"name": "fields", "path": f"{RUN}.inputFields.3", "bundle": {"inputData": {"operation": "get_product_by_id"}}},
        {"name": "dropdown", "path": trigger("choices_list_products"), "bundle": {"meta": fill}},
    ], tmp_path)
    assert all(r["ok"] for r in results.values()), {n: r.get("error") for n, r in results.items() if not r["ok"]}
    product_id = {f["key"]: f for f in results["fields"]["result"]}["productId"]
    assert product_id["dynamic"] == "choices_list_products.id.name" and product_id["required"]
    trigger_key, id_field, label_field = product_id["dynamic"].split(".")
    offered = {c[label_field]: c[id_field] for c in results["dropdown"]["result"]}
    assert {"Dropdown Mug", "Dropdown Cap"} <= set(offered)
    assert offered["Dropdown Cap"] == made["Dropdown Cap"]["result"]["id"]

    chosen = zapier_runtime.run(app_dir, [
        {"name": "get", "path": f"{RUN}.perform",
         "bundle": {"inputData": {"operation": "get_product_by_id", "productId": offered["Dropdown Cap"]}}},
    ], tmp_path)["get"]
    assert chosen["ok"], chosen.get("error")
    found = chosen["result"]
    assert found["count"] == 1 and found["items"][0]["name"] == "Dropdown Cap"
    sent = [r for r in _requests_to(sandbox_reset, "/products/") if r["method"] == "GET"]
    assert f"/products/{offered['Dropdown Cap']}" in {r["path"] for r in sent}
    assert "/zapier/choices/list_products" in {r["path"] for r in service.received}
    assert _violations(sandbox_reset, ("/products",)) == []
