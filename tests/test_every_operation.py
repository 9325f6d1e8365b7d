"""Every catalog operation through the running service against the sandbox GHL, with the spec check on.

Each action and search runs once with valid inputs built from its record and GHL's spec
(``sandbox.record_inputs``): the ids its path names are put in the sandbox first. Each trigger
is polled once. Every answer must be a success, and every request GHL received must fit the
spec: ``sandbox.spec_validator`` finds 0 violations. One sandbox and one service (in-process,
talking to the sandbox over loopback) serve the whole module; the sandbox is reset per test.
"""

import pytest
import requests

from catalog.registry import load_catalog
from sandbox.record_inputs import names_a_record, valid_inputs
from sandbox.routing import shape_of
from sandbox.server import serve_sandbox
from sandbox.spec_validator import SpecValidator
from server.app import create_app
from tests.conftest import LOCATION, SANDBOX_TOKEN

CATALOG = load_catalog()
VALIDATOR = SpecValidator()
HEADERS = {"Authorization": f"Bearer {SANDBOX_TOKEN}", "X-Location-Id": LOCATION}

# Fields of the records put in the sandbox for a path, by collection: what the operation needs
# of them (an invoice with an amount due, to record a payment against).
PATH_RECORD_FIELDS = {"/invoices": {"status": "sent", "total": 100, "amountDue": 100, "amountPaid": 0,
                                    "currency": "USD", "altId": LOCATION, "altType": "location"}}
UPLOADED = "every-operation.txt"  # the file every upload hands, served by the sandbox itself

pytestmark = pytest.mark.skipif(not VALIDATOR.enabled, reason="no GHL OpenAPI specs")


RUN_AS_ACTION = [pytest.param(r, id=r["key"]) for r in CATALOG.of_kind("action", "search")]
POLLED = [pytest.param(r, id=r["key"]) for r in CATALOG.of_kind("trigger")]


@pytest.fixture(scope="module")
def ghl():
    with serve_sandbox(burst_limit=1_000_000) as running:
        yield running


@pytest.fixture(scope="module")
def service(ghl, tmp_path_factory):
    app = create_app({
        "ghl_base_url": ghl.url,
        "using_sandbox": True,
        "database_path": str(tmp_path_factory.mktemp("every-operation") / "service.sqlite3"),
        "secret_key": "test-secret",
        "file_fetch_allow_loopback": True,  # uploads fetch their file from the sandbox
    })
    return app.test_client()


@pytest.fixture
def fresh(ghl):
    """The sandbox back at its seed, with no violations recorded."""
    requests.post(f"{ghl.url}/_sandbox/reset", timeout=5).raise_for_status()
    return ghl


def violations(ghl):
    """Every way the requests the sandbox received broke the spec, one line each."""
    found = requests.get(f"{ghl.url}/_sandbox/violations", timeout=5).json()["violations"]
    return [f"{v['method']} {v['path']}: {text}" for v in found for text in v["violations"]]


def create_path_records(ghl, record, inputs):
    """Put in the sandbox every record the path names (the invoice of ``/invoices/{invoiceId}``),
    under the id the inputs give it."""
    names = {f.get("field", f["key"]): f for f in record["inputs"] if f["in"] == "path"}
    walked = []
    for segment in record["path"].rstrip("/").split("/"):
        field = names.get(segment[1:-1]) if segment.startswith("{") else None
        if field is None:
            walked.append(segment)
            continue
        value = LOCATION if field.get("location") else str(inputs[field["key"]])
        if names_a_record(field):
            collection = "/".join(walked) or "/"
            fields = {**PATH_RECORD_FIELDS.get(collection, {}), "id": value, "_id": value}
            requests.post(f"{ghl.url}/_sandbox/records", timeout=5,
                          json={"path": collection, "records": [fields]}).raise_for_status()
        walked.append(value)


@pytest.mark.parametrize("record", RUN_AS_ACTION)
def test_every_action_and_search_succeeds_with_a_request_that_fits_the_spec(record, service, fresh):
    inputs = valid_inputs(record, VALIDATOR, file_url=f"{fresh.url}/_sandbox/files/{UPLOADED}")
    create_path_records(fresh, record, inputs)
    response = service.post(f"/actions/{record['key']}", json=inputs, headers=HEADERS)
    assert violations(fresh) == []
    assert response.status_code == 200, response.json
    assert isinstance(response.json, list if record["kind"] == "search" else dict)


@pytest.mark.parametrize("record", POLLED)
def test_every_trigger_polls_once_with_a_request_that_fits_the_spec(record, service, fresh):
    inputs = valid_inputs(record, VALIDATOR)
    create_path_records(fresh, record, inputs)
    response = service.post(f"/triggers/{record['key']}", json=inputs,
                            headers={**HEADERS, "X-Subscriber-Id": "every-operation"})
    assert violations(fresh) == []
    assert response.status_code == 200, response.json
    assert isinstance(response.json, list)


# -- generated records are stateful: what a create makes, the list shows and the get finds --------

# (create, list, get, delete) of one collection, all generated records.
GENERATED_FAMILIES = [
    ("create_product", "list_products", "get_product_by_id", "delete_product_by_id"),
    ("create_price_for_a_product", "list_prices_for_a_product", "get_price_by_id_for_a_product",
     "delete_price_by_id_for_a_product"),
    ("create_product_collection", "fetch_product_collections", "get_details_about_individual_product_collection",
     "delete_product_collection"),
    ("create_invoice_schedule", "list_schedules", "get_an_schedule", "delete_schedule"),
    ("create_template", "list_templates", "get_an_template", "delete_template"),
    ("create_shipping_zone", "list_shipping_zones", "get_shipping_zone", "delete_shipping_zone"),
    ("create_shipping_rate", "list_shipping_rates", "get_shipping_rate", "delete_shipping_rate"),
    ("create_shipping_carrier", "list_shipping_carriers", "get_shipping_carrier", "delete_shipping_carrier"),
    ("create_custom_value", "get_custom_values", "get_custom_value", "delete_custom_value"),
    ("create_user_availability_schedule", "list_user_availability_schedule", "get_user_availability_schedule",
     "delete_user_availability_schedule"),
    ("create_an_agent", "search_agents", "get_agent_conversation_ai", "delete_agent_conversation_ai"),
    ("create_agent_voice_ai", "list_agents_voice_ai", "get_agent_voice_ai", "delete_agent_voice_ai"),
    ("create_agent", "list_agents", "get_agent", "delete_agent"),
    ("create_custom_menu_link", "get_custom_menu_links", "get_custom_menu_link", "delete_custom_menu_link"),
    ("create_a_new_wallet_charge", "get_all_wallet_charges", "get_specific_wallet_charge_details",
     "delete_a_wallet_charge"),
]


def run(service, record, inputs):
    """The service's answer to one run of ``record`` (a trigger: one sample poll, nothing recorded)."""
    if record["kind"] == "trigger":
        return service.post(f"/triggers/{record['key']}", json=inputs, headers={**HEADERS, "X-Poll-Mode": "sample"})
    return service.post(f"/actions/{record['key']}", json=inputs, headers=HEADERS)


def item_id(record, item):
    """An item's id: at the record's ``id_field``, else ``id`` or ``_id`` (lists whose record names none)."""
    return item.get(record["response"]["id_field"] or "id") or item.get("id") or item.get("_id")


def last_path_input(record):
    return [f["key"] for f in record["inputs"] if f["in"] == "path" and names_a_record(f)][-1]


@pytest.mark.parametrize("family", GENERATED_FAMILIES, ids=[f[0] for f in GENERATED_FAMILIES])
def test_what_a_generated_create_makes_is_listed_found_and_deleted(family, service, fresh):
    create, listing, get, delete = (CATALOG.get(key) for key in family)
    assert all(r is not None and r["origin"] == "generated" for r in (create, listing, get, delete)), family
    inputs = valid_inputs(create, VALIDATOR)
    create_path_records(fresh, create, inputs)
    created = run(service, create, inputs)
    assert created.status_code == 200, created.json
    new_id = item_id(create, created.json)
    assert new_id
    parents = {k: v for k, v in inputs.items() if any(f["key"] == k and f["in"] == "path" for f in create["inputs"])}

    listed = run(service, listing, {**valid_inputs(listing, VALIDATOR), **parents})
    assert listed.status_code == 200, listed.json
    assert new_id in [item_id(listing, item) for item in listed.json]
    item = next(i for i in listed.json if item_id(listing, i) == new_id)
    spec_item = spec_item_fields(fresh, listing)
    assert spec_item <= set(item), f"listed item lacks the spec's fields {spec_item - set(item)}"

    target = {**parents, last_path_input(get): new_id}
    found = run(service, get, {**valid_inputs(get, VALIDATOR), **target})
    assert found.status_code == 200, found.json
    assert [new_id] == [item_id(get, i) for i in (found.json if isinstance(found.json, list) else [found.json])]

    deleted = run(service, delete, {**valid_inputs(delete, VALIDATOR), **parents, last_path_input(delete): new_id})
    assert deleted.status_code == 200, deleted.json
    gone = run(service, get, {**valid_inputs(get, VALIDATOR), **target})
    assert gone.status_code == 200 and gone.json == []  # a search answers a 404 as nothing found
    assert violations(fresh) == []


def spec_item_fields(ghl, record):
    """The fields the spec gives one item of ``record``'s list (``sandbox.spec_shapes``)."""
    op = next(o for o in ghl.state.table.operations
              if o.method == record["method"] and o.shape == shape_of(record["path"]))
    assert op.answer_shape is not None, f"no spec shape for {record['key']}"
    return set(op.answer_shape.item)
