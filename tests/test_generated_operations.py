"""Generated records as the service serves them: what GHL's access rules mean for the user, and
triggers on lists whose order nobody documents."""

import requests

from catalog.registry import load_catalog

CATALOG = load_catalog()


def add_fault(sandbox, **fault):
    requests.post(f"{sandbox.url}/_sandbox/faults", json=[{"times": 1, **fault}], timeout=5).raise_for_status()


def test_the_catalog_serves_hand_written_and_generated_records_side_by_side():
    origins = {r["origin"] for r in CATALOG}
    assert origins == {"hand-written", "generated"}
    generated = CATALOG.filter(origin="generated")
    assert len(generated) >= 400 and all(r["generated"]["from"] for r in generated)
    assert {r["service"] for r in generated} >= {"invoices", "products", "social-media-posting", "store"}
    # Hand-written precedence: no GHL operation is served twice.
    operations = [(r["service"], r["spec"]["operation_id"]) for r in generated]
    assert len(set(operations)) == len(operations)
    hand = {(r["service"], r["spec"]["operation_id"]) for r in CATALOG.filter(origin="hand-written")}
    assert not hand & set(operations)


def test_an_agency_only_operation_refused_by_ghl_says_which_token_it_needs(client, auth, sandbox_reset):
    record = CATALOG.get("get_agency_plans")
    assert record["access"] == ["agency"]
    add_fault(sandbox_reset, status=403, path_prefix="/saas/agency-plans", method="GET")
    response = client.post("/actions/get_agency_plans", json={"companyId": "company-1"}, headers=auth)
    assert response.status_code == 403
    error = response.json["error"]
    assert error["access"] == ["agency"]
    assert "needs an agency token" in error["message"]


def test_an_oauth_only_operation_refused_by_ghl_says_it_needs_an_oauth_token(client, auth, sandbox_reset):
    add_fault(sandbox_reset, status=401, path_prefix="/marketplace/billing/charges", method="GET")
    response = client.post("/actions/get_all_wallet_charges", json={}, headers=auth)
    assert response.status_code == 401
    assert "needs an OAuth access token" in response.json["error"]["message"]
    assert response.json["error"]["access"] == ["oauth"]


def test_a_refusal_of_an_operation_any_token_may_call_adds_no_access_hint(client, auth, sandbox_reset):
    add_fault(sandbox_reset, status=403, path_prefix="/products/", method="GET")
    response = client.post("/actions/get_product_by_id", json={"productId": "p-1"}, headers=auth)
    assert response.status_code == 403
    assert "access" not in response.json["error"] and "needs an" not in response.json["error"]["message"]


def put_inventory(sandbox, numbers):
    records = [{"_id": f"inventory-{n}", "name": f"Variant {n}", "availableQuantity": n,
                "updatedAt": "2024-01-01T00:00:00.000Z"} for n in numbers]
    requests.post(f"{sandbox.url}/_sandbox/records", json={"path": "/products/inventory", "records": records},
                  timeout=5).raise_for_status()


def inventory_reads(sandbox):
    log = requests.get(f"{sandbox.url}/_sandbox/requests", timeout=5).json()["requests"]
    return [r for r in log if r["path"] == "/products/inventory"]


def test_a_list_in_an_unknown_order_is_read_to_the_end_so_an_item_added_last_fires(client, auth, sandbox_reset):
    record = CATALOG.get("list_inventory")
    assert record["response"]["order"] == "unknown" and record["response"]["pagination"] == "offset_limit"
    put_inventory(sandbox_reset, range(1, 13))  # three pages of 5, in the order GHL keeps them
    inputs = {"limit": 5}
    first = client.post("/triggers/list_inventory", json=inputs, headers=auth)
    assert first.status_code == 200
    assert {item["id"] for item in first.json} == {f"inventory-{n}" for n in range(1, 13)}

    put_inventory(sandbox_reset, [13])  # listed last: a newest-first read would stop at page one
    requests.delete(f"{sandbox_reset.url}/_sandbox/requests", timeout=5)
    second = client.post("/triggers/list_inventory", json=inputs, headers=auth)
    assert second.status_code == 200
    assert "inventory-13" in {item["id"] for item in second.json}
    offsets = [r["query"]["offset"] for r in inventory_reads(sandbox_reset)]
    assert offsets == [["0"], ["5"], ["10"]]
