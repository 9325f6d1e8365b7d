"""Contact and opportunity items carry custom fields by name, pipeline and stage names, and a link to
the record in GHL's web app (``ghl/enrichment.py``): from polls, REST-hook polls, samples, actions
and searches, against the real sandbox GHL; at most one lookup a minute per token, location and
kind; never failing a poll; never changing what is new or what changed."""

import logging

import pytest

from catalog.registry import load_catalog
from ghl import enrichment
from tests.conftest import LOCATION, SANDBOX_TOKEN
from tests.event_zaps import PIPELINE, Ghl, Zap, only
from triggers.poll import PollLimits, poll_into_backlog

APP = "https://app.gohighlevel.com"
DEFINITIONS_PATH = f"/locations/{LOCATION}/customFields"
CATALOG = load_catalog()


class SandboxGhl(Ghl):
    """Records made straight in the sandbox GHL, with custom field values as GHL answers them."""

    def create_contact(self, **fields):
        return self.call("POST", "/contacts/", json={"locationId": LOCATION, **fields})["contact"]

    def create_opportunity(self, **fields):
        body = {"locationId": LOCATION, "pipelineId": PIPELINE, "pipelineStageId": "sandbox-stage-3",
                "name": "Enriched deal", "status": "open", "contactId": "sandbox-contact-1", **fields}
        return self.call("POST", "/opportunities/", json=body)["opportunity"]

    def requests_to(self, path):
        logged = self.call("GET", "/_sandbox/requests")["requests"]
        return [r for r in logged if r["path"].split("?")[0] == path]

    def fault(self, path, status=403, times=1):
        self.call("POST", "/_sandbox/faults", json=[{"status": status, "path_prefix": path, "times": times}])


@pytest.fixture(autouse=True)
def fresh_caches():
    """Each test starts with nothing cached (the caches live for a minute in the process)."""
    enrichment.clear_caches()
    yield
    enrichment.clear_caches()


@pytest.fixture
def ghl(sandbox_reset):
    return SandboxGhl(sandbox_reset.url)


def zap(client, auth, trigger, inputs=None, zap_id="zap-1", mode=None):
    return Zap(client, auth, trigger, inputs, zap_id, mode)


def contact_link(contact_id):
    return f"{APP}/v2/location/{LOCATION}/contacts/detail/{contact_id}"


def opportunity_link(opportunity_id):
    return f"{APP}/v2/location/{LOCATION}/opportunities/list/{opportunity_id}?tab=OpportunityDetails"


# -- contacts -------------------------------------------------------------------------------------

def test_a_contact_trigger_item_carries_custom_fields_by_name_and_a_link(client, auth, ghl):
    trigger = zap(client, auth, "new_contact")
    assert trigger.poll() == []
    contract = {"f-1": {"meta": {"name": "contract.pdf"}, "url": "https://files.example.com/contract.pdf"}}
    created = ghl.create_contact(email="cf@example.com", customFields=[
        {"id": "sandbox-field-1", "field_value": "Blue"}, {"id": "sandbox-field-2", "field_value": 42},
        {"id": "sandbox-field-12", "field_value": contract}])
    item = only(trigger.poll())
    assert item["custom_fields"] == {"favorite_color": "Blue", "shoe_size": 42,
                                     "signed_contract": ["https://files.example.com/contract.pdf"]}
    assert item["customFields"] == created["customFields"], "what GHL sent is left as it was"
    assert item["url"] == contact_link(created["id"])
    assert item["id"] == item["ghl_id"] == created["id"], "the identity is GHL's id, as before"
    assert trigger.poll() == [], "a poll after an enriched one fires nothing"


def test_create_and_find_contact_answer_custom_fields_by_name(client, auth, ghl):
    created = client.post("/actions/create_contact", headers=auth, json={
        "email": "made@example.com", "custom_field_1_id": "sandbox-field-1", "custom_field_1_value": "Green"})
    assert created.status_code == 200, created.get_data(as_text=True)
    assert created.json["custom_fields"] == {"favorite_color": "Green"}
    assert created.json["url"] == contact_link(created.json["id"])
    found = client.post("/actions/find_contact", headers=auth, json={"email": "made@example.com"})
    assert found.status_code == 200, found.get_data(as_text=True)
    match = only(found.json)
    assert match["id"] == created.json["id"] and match["custom_fields"] == {"favorite_color": "Green"}
    assert match["url"] == contact_link(match["id"])


def test_a_change_trigger_enriches_the_record_and_detects_changes_as_before(client, auth, ghl):
    trigger = zap(client, auth, "contact_updated")
    assert trigger.poll() == []
    ghl.update_contact("sandbox-contact-2", customFields=[{"id": "sandbox-field-1", "field_value": "Red"}])
    item = only(trigger.poll())
    assert item["changed_fields"] == ["customFields"] and item["custom_fields"] == {"favorite_color": "Red"}
    assert item["url"] == contact_link("sandbox-contact-2") and item["id"] == "sandbox-contact-2:1"
    # Enrichment that differs from one poll to the next (definitions failing now) changes nothing.
    enrichment.clear_caches()
    ghl.fault(DEFINITIONS_PATH)
    assert trigger.poll() == []
    assert trigger.poll() == []


# -- opportunities --------------------------------------------------------------------------------

def test_opportunity_trigger_items_and_find_opportunity_carry_pipeline_and_stage_names(client, auth, ghl):
    trigger = zap(client, auth, "new_opportunity")
    assert trigger.poll() == []
    created = ghl.create_opportunity(customFields=[{"id": "sandbox-field-3", "field_value": "Referral"}])
    item = only(trigger.poll())
    assert (item["pipelineName"], item["stageName"]) == ("Sandbox Sales", "Proposal Sent")
    assert item["custom_fields"] == {"deal_source": "Referral"}
    assert item["url"] == opportunity_link(created["id"])
    assert trigger.poll() == []

    moved = zap(client, auth, "opportunity_stage_changed", {"pipelineId": PIPELINE}, zap_id="zap-2")
    assert moved.poll() == []
    ghl.move(created["id"], "sandbox-stage-4")
    change = only(moved.poll())
    assert change["stageName"] == "Won" and change["previous"] == {"pipelineStageId": "sandbox-stage-3"}

    found = client.post("/actions/find_opportunity", headers=auth, json={"q": "Enriched deal"})
    assert found.status_code == 200, found.get_data(as_text=True)
    match = found.json[0]
    assert match["id"] == created["id"] and (match["pipelineName"], match["stageName"]) == ("Sandbox Sales", "Won")
    assert match["url"] == opportunity_link(created["id"])
    seeded = client.post("/actions/find_opportunity", headers=auth, json={"q": "Ben's trial"}).json[0]
    assert (seeded["pipelineName"], seeded["stageName"]) == ("Sandbox Sales", "New Lead")


def test_samples_and_rest_hook_deliveries_are_enriched_like_polls(app, client, auth, ghl):
    created = ghl.create_opportunity()
    sample = zap(client, auth, "new_opportunity", mode="sample").answer()
    ours = next(i for i in sample if i["ghl_id"] == created["id"])
    assert (ours["stageName"], ours["url"]) == ("Proposal Sent", opportunity_link(created["id"]))

    shared = app.extensions["ghl_zapier"]
    record, inputs = shared.catalog.get("new_opportunity"), {"location_id": LOCATION}
    limits = PollLimits.from_settings(shared.settings)
    assert poll_into_backlog(shared.client, shared.store, record, inputs, SANDBOX_TOKEN, "hook", limits) == 0
    later = ghl.create_opportunity(name="Hooked deal", pipelineStageId="sandbox-stage-1")
    assert poll_into_backlog(shared.client, shared.store, record, inputs, SANDBOX_TOKEN, "hook", limits) == 1
    delivered = only(shared.store.pending("hook", 100))
    assert delivered["ghl_id"] == later["id"] and delivered["stageName"] == "New Lead"
    assert delivered["url"] == opportunity_link(later["id"])


# -- cost, failures, tenants ----------------------------------------------------------------------

def test_a_second_poll_within_a_minute_looks_nothing_up_again(client, auth, ghl):
    ghl.create_opportunity(customFields=[{"id": "sandbox-field-3", "field_value": "Referral"}])
    ghl.call("DELETE", "/_sandbox/requests")
    sample = zap(client, auth, "search_opportunities", mode="sample")
    for _ in range(3):
        assert any(i.get("custom_fields") == {"deal_source": "Referral"} for i in sample.answer())
    assert len(ghl.requests_to(DEFINITIONS_PATH)) == 1
    assert len(ghl.requests_to(enrichment.PIPELINES_PATH)) == 1


def test_a_lookup_failure_still_delivers_the_items_and_is_not_retried_for_a_minute(client, auth, ghl, caplog):
    ghl.fault(DEFINITIONS_PATH)
    ghl.fault(enrichment.PIPELINES_PATH, status=500, times=10)
    trigger = zap(client, auth, "new_opportunity")
    with caplog.at_level(logging.WARNING, logger="ghl.enrichment"):
        assert trigger.poll() == []
    assert "pipelines" in caplog.text and SANDBOX_TOKEN not in caplog.text
    ghl.create_opportunity(customFields=[{"id": "sandbox-field-3", "field_value": "Referral"}])
    with caplog.at_level(logging.WARNING, logger="ghl.enrichment"):
        item = only(trigger.poll())
    assert "custom_fields" not in item and "pipelineName" not in item and "stageName" not in item
    assert item["customFields"] == [{"id": "sandbox-field-3", "fieldValue": "Referral"}]
    assert item["url"] == opportunity_link(item["ghl_id"])
    assert "definitions" in caplog.text and SANDBOX_TOKEN not in caplog.text
    definitions, pipelines = len(ghl.requests_to(DEFINITIONS_PATH)), len(ghl.requests_to(enrichment.PIPELINES_PATH))
    assert definitions == 1 and pipelines >= 1
    ghl.create_opportunity(name="Second deal", customFields=[{"id": "sandbox-field-3", "field_value": "Website"}])
    assert only(trigger.poll())["name"] == "Second deal"
    assert len(ghl.requests_to(DEFINITIONS_PATH)) == definitions, "a failure is remembered for a minute"
    assert len(ghl.requests_to(enrichment.PIPELINES_PATH)) == pipelines


def test_two_tokens_never_share_cached_definitions_or_pipelines(client, auth, ghl, sandbox_reset, monkeypatch):
    monkeypatch.setattr(sandbox_reset.state, "tokens", (SANDBOX_TOKEN, "another-token"))
    ghl.create_opportunity(customFields=[{"id": "sandbox-field-3", "field_value": "Referral"}])
    ghl.call("DELETE", "/_sandbox/requests")
    other_auth = {**auth, "Authorization": "Bearer another-token"}
    for headers in (auth, other_auth, auth, other_auth):
        items = zap(client, headers, "search_opportunities", mode="sample").answer()
        assert any(i.get("custom_fields") == {"deal_source": "Referral"} for i in items)
    assert len(ghl.requests_to(DEFINITIONS_PATH)) == 2
    assert len(ghl.requests_to(enrichment.PIPELINES_PATH)) == 2


# -- without GHL ----------------------------------------------------------------------------------

def test_every_contact_and_opportunity_record_is_enriched_and_its_sample_shows_the_keys():
    """The records whose items are contacts or opportunities (by where GHL's answer holds them)
    are exactly those the catalog declares a custom field model for, so none is left out."""
    nouns = {"contact": "contact", "contacts": "contact", "opportunity": "opportunity",
             "opportunities": "opportunity"}
    for record in CATALOG:
        by_items = nouns.get((record["response"].get("items") or "").split(".")[-1])
        assert enrichment.record_kind(record) == by_items, record["key"]
        sample = enrichment.enrich_sample(record, record["sample"])
        if by_items is None:
            assert sample == record["sample"]
            continue
        assert {k: sample[k] for k in record["sample"]} == record["sample"], "nothing the sample had changes"
        assert sample["url"].startswith(f"{APP}/v2/location/") and sample["custom_fields"]
        assert ("stageName" in sample and "pipelineName" in sample) == (by_items == "opportunity")


def test_enrichment_never_replaces_a_key_ghl_sent_and_the_pipelines_request_is_the_catalogs():
    record = CATALOG.get("new_contact")
    context = enrichment.Context(client=None, token="unused", location_id=LOCATION)
    own = {"id": "c1", "ghl_id": "c1", "locationId": LOCATION, "url": "https://example.com/mine"}
    assert enrichment.enrich_items(context, record, [own]) == [own]
    pipelines = CATALOG.get("list_pipelines")
    assert (pipelines["method"], pipelines["path"], pipelines["version"], tuple(pipelines["scopes"])) == (
        "GET", enrichment.PIPELINES_PATH, enrichment.PIPELINES_VERSION, enrichment.PIPELINES_SCOPES)


def test_links_use_the_agencys_web_app_when_one_is_configured(app, ghl):
    from actions.execute import run_operation
    from server.config import load_settings
    from triggers.poll import poll_once
    assert load_settings({"GHL_APP_URL": "https://crm.agency.example/"}).ghl_app_url == "https://crm.agency.example"
    with pytest.raises(ValueError):
        load_settings({"GHL_APP_URL": "http://crm.agency.example"})
    shared, agency = app.extensions["ghl_zapier"], "https://crm.agency.example"
    found = run_operation(shared.client, CATALOG.get("find_contact"),
                          {"locationId": LOCATION, "email": "ada.sample@example.com"}, SANDBOX_TOKEN, app_url=agency)
    assert only(found)["url"] == f"{agency}/v2/location/{LOCATION}/contacts/detail/sandbox-contact-1"
    polled = poll_once(shared.client, shared.store, CATALOG.get("get_opportunity"),
                       {"opportunityId": "sandbox-opportunity-1"}, SANDBOX_TOKEN, "s", PollLimits(), app_url=agency)
    assert only(polled)["url"] == (f"{agency}/v2/location/{LOCATION}/opportunities/list/sandbox-opportunity-1"
                                   "?tab=OpportunityDetails")
    assert (only(polled)["pipelineName"], only(polled)["stageName"]) == ("Sandbox Sales", "Contacted")
