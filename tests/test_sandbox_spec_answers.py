"""The sandbox's answers for generated records in the spec's shape, and what tests read of its spec check."""

import pytest
import requests

from sandbox import LOCATION_ID, serve_sandbox
from sandbox.spec_validator import SpecValidator, take_violations
from tests import ghl_spec

HEADERS = {"Authorization": "Bearer sandbox-token", "Version": "2021-07-28"}
PRODUCTS = {"locationId": LOCATION_ID}
needs_specs = pytest.mark.skipif(not (ghl_spec.SPEC_DIR / "apps").is_dir(), reason="no GHL OpenAPI specs")


def new_product(url):
    return requests.post(url + "/products/", headers=HEADERS,
                         json={"name": "Mug", "locationId": LOCATION_ID, "productType": "PHYSICAL"})


@needs_specs
def test_a_generated_create_list_get_and_delete_answer_the_specs_shapes(sandbox_reset):
    url = sandbox_reset.url
    created = new_product(url)
    assert created.status_code == 201
    product = created.json()
    assert product["name"] == "Mug" and product["_id"]
    assert {"description", "image", "availableInStore", "createdAt", "updatedAt"} <= set(product)  # from the spec
    listed = requests.get(url + "/products/", headers=HEADERS, params=PRODUCTS).json()
    assert set(listed) >= {"products", "total"}
    assert [p["_id"] for p in listed["products"]] == [product["_id"]]
    assert listed["products"][0]["name"] == "Mug" and "availableInStore" in listed["products"][0]
    found = requests.get(url + f"/products/{product['_id']}", headers=HEADERS, params=PRODUCTS).json()
    assert found["_id"] == product["_id"] and found["name"] == "Mug"
    assert requests.delete(url + f"/products/{product['_id']}", headers=HEADERS, params=PRODUCTS).status_code == 200
    missing = requests.get(url + f"/products/{product['_id']}", headers=HEADERS, params=PRODUCTS)
    assert missing.status_code == 404 and missing.json()["statusCode"] == 404
    assert requests.get(url + "/products/", headers=HEADERS, params=PRODUCTS).json()["products"] == []


def test_without_the_specs_answers_fall_back_to_the_stored_fields_and_samples(tmp_path):
    with serve_sandbox(spec_dir=tmp_path) as ghl:
        product = new_product(ghl.url).json()
        assert set(product) == {"_id", "name", "locationId", "productType", "dateAdded", "dateUpdated",
                                "createdAt", "updatedAt"}
        listed = requests.get(ghl.url + "/products/", headers=HEADERS, params=PRODUCTS).json()
        assert [p["_id"] for p in listed["products"]] == [product["_id"]]


def test_a_path_ending_in_the_location_acts_on_the_location(sandbox_reset):
    answer = requests.put(sandbox_reset.url + f"/saas/update-saas-subscription/{LOCATION_ID}",
                          headers={**HEADERS, "Version": "2021-04-15"},
                          json={"subscriptionId": "sub_1", "customerId": "cus_1", "companyId": "sandbox-company"})
    assert answer.status_code == 200, answer.text
    boards = requests.get(sandbox_reset.url + f"/brand-boards/{LOCATION_ID}", headers=HEADERS)
    assert boards.status_code == 200, boards.text


@needs_specs
def test_an_enum_written_as_one_list_is_read_as_its_values():
    spec = SpecValidator(ghl_spec.SPEC_DIR)
    zone = {"altId": LOCATION_ID, "altType": "location", "name": "North", "countries": [{"code": "US"}]}
    assert spec.violations("POST", "/store/shipping-zone", {}, HEADERS, zone) == []
    zone["countries"][0]["code"] = "XX"
    assert spec.violations("POST", "/store/shipping-zone", {}, HEADERS, zone)[0].startswith(
        'body.countries[0].code="XX" is not one of')


@needs_specs
@pytest.mark.spec_violations_expected
def test_take_violations_answers_every_sandboxs_violations_once(sandbox_reset):
    take_violations()
    requests.get(sandbox_reset.url + "/contacts/", headers=HEADERS)  # no locationId
    with serve_sandbox() as other:
        requests.get(other.url + "/no/such/path", headers=HEADERS)
        found = take_violations()
    assert sorted((v["path"], v["violations"]) for v in found) == [
        ("/contacts/", ["missing required query parameter 'locationId'"]),
        ("/no/such/path", ["no such operation: GET /no/such/path"])]
    assert take_violations() == []
    assert requests.get(sandbox_reset.url + "/_sandbox/violations").json()["violations"] == []
