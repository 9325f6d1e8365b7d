"""Dropdowns backed by generated GHL lists (``zapier_app.list_dropdowns``): which lists can fill a
dropdown, which inputs they fill, the hidden triggers and ``/zapier/choices/<list>`` against the
sandbox GHL, and the fields "Run a GHL Operation" serves for a chosen operation."""

import pytest

from catalog.registry import load_catalog
from zapier_app import choices, list_dropdowns as ld
from zapier_app import operation_picker as picker
from zapier_app.definition import zapier_app_definition

CATALOG = load_catalog()
HAND_WRITTEN = load_catalog(generated_dir=None)
URL = "https://ghl.example.com"


def _record(key):
    return CATALOG.get(key)


def _field(record_key, input_key):
    return next(f for f in _record(record_key)["inputs"] if f["key"] == input_key)


def _fills(record_key, input_key):
    return choices.source_for_input(_record(record_key), _field(record_key, input_key), CATALOG)


# ----------------------------------------------------------------------------- the rule, unit by unit


@pytest.mark.parametrize("noun, key", [("Product", "productId"), ("Shipping Zone", "shippingZoneId"),
                                       ("FAQ", "faqId"), ("Brand Board", "brandBoardId"), ("", None)])
def test_id_key(noun, key):
    assert ld.id_key(noun) == key


@pytest.mark.parametrize("path, resource", [("/products/", "/products"), ("/payments/coupon/list", "/payments/coupon"),
                                            ("/conversation-ai/agents/search", "/conversation-ai/agents"),
                                            ("/store/shipping-zone", "/store/shipping-zone")])
def test_resource_path(path, resource):
    assert ld.resource_path(path) == resource


def test_which_generated_lists_can_fill_a_dropdown():
    usable = ld.usable_lists(CATALOG)
    products = usable["list_products"]
    assert (products["noun"], products["id"], products["label"]) == ("Product", "_id", ("{name}",))
    # A document's own documentId (what send_document takes), not its _id.
    assert usable["list_documents"]["id"] == "documentId"
    # Required paging inputs are filled by the source; a parent id is chained from the step.
    assert usable["list_schedules"]["fixed"] == {"limit": 100, "offset": 0}
    assert usable["list_prices_for_a_product"]["chain"] == {"productId": "productId"}
    assert usable["list_prices_for_a_product"]["requires"] == ("productId",)
    assert usable["list_affiliates"]["label"] == ld.PERSON_LABEL
    assert usable["list_agents_voice_ai"]["label"] == ("{agentName}",)
    not_usable = {
        "list_subscriptions": "no name-like field",
        "list_call_logs": "no name-like field",
        "get_custom_menu_links": "agency tokens only",
        "get_custom_fields_by_object_key": "a required objectKey the connection does not know",
        "get_location_where_app_is_installed": "required companyId and appId in the query",
        "new_contact": "hand-written",
    }
    for key, why in not_usable.items():
        assert CATALOG.get(key) is not None and key not in usable, why
    for key, source in usable.items():
        record = CATALOG.get(key)
        assert record["origin"] == "generated" and picker.step_of(record) == "poll", key
        assert not record.get("access") and record.get("deprecated") is None, key


@pytest.mark.parametrize("record_key, input_key, wanted", [
    ("get_product_by_id", "productId", "list_products"),
    ("update_product_by_id", "productId", "list_products"),
    ("create_price_for_a_product", "productId", "list_products"),
    ("fetch_product_reviews", "productId", "list_products"),  # a query input
    ("bulk_update_products", "productIds", "list_products"),  # a list of them in the body
    ("create_coupon", "productIds", "list_products"),  # payments: ACROSS_SERVICES
    ("get_price_by_id_for_a_product", "priceId", "list_prices_for_a_product"),
    ("get_shipping_zone", "shippingZoneId", "list_shipping_zones"),
    ("update_shipping_rate", "shippingRateId", "list_shipping_rates"),
    ("create_shipping_rate", "shippingCarrierId", "list_shipping_carriers"),
    ("get_an_template", "templateId", "list_templates"),
    ("send_template", "templateId", "list_templates_documents_contracts"),  # same key, other service
    ("send_document", "documentId", "list_documents"),
    ("get_link_by_id", "linkId", "get_links"),  # /links/id/{linkId}; /links/ wins over /links/search
    ("update_link", "linkId", "get_links"),
    ("get_agent_conversation_ai", "agentId", "search_agents"),
    ("get_agent_voice_ai", "agentId", "list_agents_voice_ai"),
    ("patch_agent", "numberPoolId", "list_number_pools"),
    ("get_action_by_id", "actionId", "list_actions_for_an_agent"),
    ("get_affiliate", "affiliateId", "list_affiliates"),
    ("fetch_coupon", "id", "list_coupons"),  # "id" of a Coupon record at the list's path
    ("get_brand_board", "id", "get_brand_boards"),
    ("update_custom_value", "id", "get_custom_values"),
    # No dropdown: a wrong one is worse than none.
    ("update_estimate_template", "templateId", None),  # /invoices/estimate/template/{templateId}
    ("preview_estimate_template", "templateId", None),  # NOT_THE_LIST
    ("get_agent", "agentId", None),  # agent studio: no list of its agents
    ("update_a_template", "templateId", None),  # emails: no list of templates
    ("list_products", "productIds", None),  # the list itself
    ("manage_auto_payment_for_an_schedule_invoice", "id", None),  # an "Auto Payment" record
    ("get_record_by_id", "id", None),
    ("delete_product_review", "reviewId", None),
    ("create_agent_voice_ai", "voiceId", None),
])
def test_which_list_fills_an_input(record_key, input_key, wanted):
    assert _fills(record_key, input_key) == wanted


def test_hand_written_sources_keep_their_inputs():
    # A generated record's contactId keeps the hand-written contacts source.
    record = next(r for r in CATALOG if r["origin"] == "generated"
                  and any(f["key"] == "contactId" and not f.get("choices") for f in r["inputs"]))
    field = next(f for f in record["inputs"] if f["key"] == "contactId")
    assert choices.source_for_input(record, field, CATALOG) == "contacts"


def test_a_field_of_a_list_of_one_parent_depends_on_the_parent():
    fields = {f["key"]: f for f in picker.input_fields(_record("update_price_by_id_for_a_product"), CATALOG)}
    assert fields["productId"]["dynamic"] == "choices_list_products.id.name"
    assert fields["priceId"]["dynamic"] == "choices_list_prices_for_a_product.id.name"
    assert fields["priceId"]["dependsOn"] == ["productId"]
    # A step without the product gets no price dropdown (the list is of one product).
    record = {**_record("get_price_by_id_for_a_product"), "inputs": [_field("get_price_by_id_for_a_product", "priceId")]}
    assert choices.source_for_input(record, record["inputs"][0], CATALOG) is None


def test_how_many_inputs_get_a_dropdown_and_the_hidden_triggers_stay_one_per_list():
    filled = {}
    for record in CATALOG:
        for field in record["inputs"]:
            name = choices.source_for_input(record, field, CATALOG)
            if name in ld.usable_lists(CATALOG):
                filled.setdefault(name, []).append((record["key"], field["key"]))
    assert sum(len(v) for v in filled.values()) >= 80 and len(filled) >= 15
    app = zapier_app_definition(CATALOG, URL, False)
    before = zapier_app_definition(HAND_WRITTEN, URL, False)
    added = {key for key in app["triggers"] if key.startswith(choices.TRIGGER_PREFIX)} - set(before["triggers"])
    assert added == {choices.TRIGGER_PREFIX + name for name in filled}, "one hidden trigger per list that fills an input"
    for key in added:
        trigger = app["triggers"][key]
        assert trigger["display"]["hidden"] and trigger["display"]["description"].startswith("Triggers when ")
    labels = [app["triggers"][key]["display"]["label"] for key in added]
    assert len(set(labels)) == len(labels)


# ----------------------------------------------------------------------------- the service


def _choices(client, auth, name, **params):
    answer = client.get(f"/zapier/choices/{name}", query_string=params, headers=auth)
    return answer.status_code, answer.get_json()


def _run(client, auth, key, **inputs):
    answer = client.post(f"/actions/{key}", json=inputs, headers=auth)
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()


def test_the_fields_of_a_generated_operation_carry_the_dropdown(client, auth):
    answer = client.get("/zapier/operations/get_product_by_id/fields", query_string={"for": "input"}, headers=auth)
    fields = {f["key"]: f for f in answer.get_json()}
    assert answer.status_code == 200 and fields["productId"]["dynamic"] == "choices_list_products.id.name"
    assert fields["productId"]["required"]


def test_generated_lists_answer_labelled_choices(client, auth, sandbox_reset):
    mug = _run(client, auth, "create_product", name="Choice Mug", productType="PHYSICAL")
    cap = _run(client, auth, "create_product", name="Choice Cap", productType="PHYSICAL")
    status, products = _choices(client, auth, "list_products")
    assert status == 200
    assert {"id": mug["_id"], "name": "Choice Mug"} in products and {"id": cap["_id"], "name": "Choice Cap"} in products
    assert [c["name"].casefold() for c in products] == sorted(c["name"].casefold() for c in products)
    price = _run(client, auth, "create_price_for_a_product", productId=mug["_id"], name="Choice Mug, single",
                 type="one_time", currency="USD", amount=12)
    status, prices = _choices(client, auth, "list_prices_for_a_product", productId=mug["_id"])
    assert status == 200 and {"id": price["_id"], "name": "Choice Mug, single"} in prices
    status, none = _choices(client, auth, "list_prices_for_a_product", productId=cap["_id"])
    assert status == 200 and price["_id"] not in {c["id"] for c in none}
    for name, source in choices.sources(CATALOG).items():
        if not source.get("generated"):
            continue
        params = {key: mug["_id"] for key in source.get("requires", ())} if name != "list_actions_for_an_agent" \
            else {"agentId": "sandbox-agent-1"}
        status, listed = _choices(client, auth, name, **params)
        # A list of one parent (the shipping rates of a zone) may find no such parent: GHL's 404.
        assert status == 200 or (status == 404 and source.get("requires")), (name, listed)
        if status == 200:
            assert all(set(c) == {"id", "name"} and c["id"] and c["name"] for c in listed), (name, listed)


@pytest.mark.parametrize("params, code", [
    ({}, "choice_needs_input"),
    ({"productId": "x" * 201}, "invalid_input"),
    ({"productId": "a\nb"}, "invalid_input"),
    ({"productId": ["a", "b"]}, "invalid_input"),
    ({"productId": "p", "shippingZoneId": "z"}, "invalid_input"),
    ({"productId": "p", "page": "1001"}, "invalid_page"),
])
def test_bad_input_to_a_generated_list_is_a_clear_400(client, auth, params, code):
    status, answer = _choices(client, auth, "list_prices_for_a_product", **params)
    assert status == 400 and answer["error"]["code"] == code, answer


def test_a_list_no_input_asks_for_is_no_source(client, auth):
    assert "list_inventory" in ld.usable_lists(CATALOG) and not choices.available("list_inventory", CATALOG)
    for name in ("list_inventory", "list_subscriptions", "create_product", "__class__"):
        status, answer = _choices(client, auth, name)
        assert status == 404 and answer["error"]["code"] == "unknown_choice_source", name
