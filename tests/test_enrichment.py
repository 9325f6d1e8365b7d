"""Contact and opportunity items carry custom fields by name, pipeline and stage names, and a link to
the record in GHL's web app, and appointments' zone-less times carry the location's offset
(``ghl/enrichment.py``): from polls, REST-hook polls, samples, actions and searches, against the
real sandbox GHL; at most one lookup a minute per token, location and kind; never failing a poll;
never changing what is new or what changed."""

import copy
import logging
import re
from zoneinfo import ZoneInfo

import pytest

from catalog.registry import CatalogError, check_record, load_catalog
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
        if enrichment.local_time_fields(record):
            continue  # their samples: test_static_samples_of_appointments_read_their_times_in_a_fixed_zone
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


# -- appointments' wall-clock times ---------------------------------------------------------------

LOCATION_PATH = f"/locations/{LOCATION}"
APPOINTMENT_TIMES = ("startTime", "endTime", "dateAdded", "dateUpdated")
ZONED = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3})?[+-]\d{2}:\d{2}")
# The sandbox location's zone is America/New_York; its clocks went forward on 2024-03-10.
BEFORE_DST, AFTER_DST = "2024-03-09T15:00:00.000Z", "2024-03-11T15:00:00.000Z"


class AppointmentGhl(SandboxGhl):
    def book(self, contact_id, start):
        return self.call("POST", "/calendars/events/appointments", version="2021-04-15", json={
            "calendarId": "sandbox-calendar-1", "locationId": LOCATION, "contactId": contact_id,
            "title": "Zoned visit", "startTime": start})

    def zone_less(self, contact_id):
        """What GHL answers for the contact's appointments, by id."""
        events = self.call("GET", f"/contacts/{contact_id}/appointments")["events"]
        return {e["id"]: e for e in events}


@pytest.fixture
def booking(sandbox_reset):
    return AppointmentGhl(sandbox_reset.url)


def offset_of(zone_name, wall_clock):
    moment = enrichment.zoned_time(wall_clock, ZoneInfo(zone_name))
    return moment[19:]


def assert_zoned_like_ghl(item, ghl_item, zone_name="America/New_York"):
    """Each wall-clock time GHL sent, now with ``zone_name``'s offset at that moment."""
    for field in APPOINTMENT_TIMES:
        local = ghl_item[field]
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", local), "GHL's shape in the sandbox"
        assert item[field] == local.replace(" ", "T") + offset_of(zone_name, local), field


def test_the_sandbox_answers_contact_appointments_in_the_locations_wall_clock_time(booking):
    made = booking.book("sandbox-contact-2", BEFORE_DST)
    answered = booking.zone_less("sandbox-contact-2")[made["id"]]
    assert (answered["startTime"], answered["endTime"]) == ("2024-03-09 10:00:00", "2024-03-09 10:30:00")
    assert booking.call("GET", LOCATION_PATH)["location"]["timezone"] == "America/New_York"


def test_the_trigger_delivers_times_with_the_locations_offset_either_side_of_dst(client, auth, booking):
    trigger = zap(client, auth, "get_contact_appointments", {"contactId": "sandbox-contact-2"})
    assert trigger.poll() == []
    winter, summer = booking.book("sandbox-contact-2", BEFORE_DST), booking.book("sandbox-contact-2", AFTER_DST)
    fired = {item["ghl_id"]: item for item in trigger.poll()}
    assert set(fired) == {winter["id"], summer["id"]}
    assert (fired[winter["id"]]["startTime"], fired[winter["id"]]["endTime"]) == (
        "2024-03-09T10:00:00-05:00", "2024-03-09T10:30:00-05:00")
    assert (fired[summer["id"]]["startTime"], fired[summer["id"]]["endTime"]) == (
        "2024-03-11T11:00:00-04:00", "2024-03-11T11:30:00-04:00")
    ghl_items = booking.zone_less("sandbox-contact-2")
    for ghl_id, item in fired.items():
        assert_zoned_like_ghl(item, ghl_items[ghl_id])
        assert item["id"] == ghl_id, "the identity is GHL's id, as before"
    assert trigger.poll() == [], "zoned times never make an item new again"


def test_the_search_delivers_times_with_the_locations_own_zone(client, auth, booking, sandbox_reset):
    sandbox_reset.state.store.update("/locations", LOCATION, {"timezone": "America/Los_Angeles"})
    made = booking.book("sandbox-contact-2", AFTER_DST)
    found = client.post("/actions/find_contact_appointments", headers=auth, json={"contactId": "sandbox-contact-2"})
    assert found.status_code == 200, found.get_data(as_text=True)
    match = only(found.json)
    assert (match["id"], match["startTime"]) == (made["id"], "2024-03-11T08:00:00-07:00")
    assert_zoned_like_ghl(match, booking.zone_less("sandbox-contact-2")[made["id"]], "America/Los_Angeles")


def test_a_failing_location_lookup_leaves_ghls_times_and_still_delivers(client, auth, booking, caplog):
    trigger = zap(client, auth, "get_contact_appointments", {"contactId": "sandbox-contact-2"})
    assert trigger.poll() == []
    made = booking.book("sandbox-contact-2", BEFORE_DST)
    booking.fault(LOCATION_PATH, status=403, times=10)
    with caplog.at_level(logging.WARNING, logger="ghl.enrichment"):
        item = only(trigger.poll())
        found = client.post("/actions/find_contact_appointments", headers=auth,
                            json={"contactId": "sandbox-contact-2"})
    ghl_item = booking.zone_less("sandbox-contact-2")[made["id"]]
    assert {f: item[f] for f in APPOINTMENT_TIMES} == {f: ghl_item[f] for f in APPOINTMENT_TIMES}
    assert found.status_code == 200 and only(found.json)["startTime"] == "2024-03-09 10:00:00"
    assert "time zone of location" in caplog.text and SANDBOX_TOKEN not in caplog.text
    assert len(booking.requests_to(LOCATION_PATH)) == 1, "the failure is remembered for a minute"


def test_a_location_without_a_known_zone_leaves_ghls_times(client, auth, booking, sandbox_reset, caplog):
    sandbox_reset.state.store.update("/locations", LOCATION, {"timezone": "Mars/Olympus_Mons"})
    made = booking.book("sandbox-contact-2", BEFORE_DST)
    with caplog.at_level(logging.WARNING, logger="ghl.enrichment"):
        found = client.post("/actions/find_contact_appointments", headers=auth,
                            json={"contactId": "sandbox-contact-2"})
    ghl_item = booking.zone_less("sandbox-contact-2")[made["id"]]
    assert found.status_code == 200 and only(found.json) == ghl_item
    assert "unknown_time_zone" in caplog.text


def test_the_locations_zone_is_looked_up_once_a_minute_per_token(client, auth, booking, sandbox_reset, monkeypatch):
    monkeypatch.setattr(sandbox_reset.state, "tokens", (SANDBOX_TOKEN, "another-token"))
    booking.book("sandbox-contact-2", BEFORE_DST)
    booking.call("DELETE", "/_sandbox/requests")
    other_auth = {**auth, "Authorization": "Bearer another-token"}
    trigger = zap(client, auth, "get_contact_appointments", {"contactId": "sandbox-contact-2"}, mode="sample")
    for headers in (auth, other_auth, auth, other_auth):
        found = client.post("/actions/find_contact_appointments", headers=headers,
                            json={"contactId": "sandbox-contact-2"})
        assert only(found.json)["startTime"] == "2024-03-09T10:00:00-05:00"
        assert only(trigger.answer())["startTime"] == "2024-03-09T10:00:00-05:00"
    assert len(booking.requests_to(LOCATION_PATH)) == 2, "one lookup per token, then the cache"


def test_static_samples_of_appointments_read_their_times_in_a_fixed_zone():
    from zapier_app.checks import date_problem
    from zapier_app.definition import answered_sample
    for key in ("get_contact_appointments", "find_contact_appointments"):
        record = CATALOG.get(key)
        assert record["response"]["local_times"] == list(APPOINTMENT_TIMES)
        assert record["sample"]["startTime"] == "2024-01-10 15:00:00", "the record's sample stays GHL-shaped"
        sample = answered_sample(record)
        assert sample["startTime"] == "2024-01-10T15:00:00-06:00"
        for field in APPOINTMENT_TIMES:
            assert ZONED.fullmatch(sample[field]) and date_problem(field, sample[field]) is None, field
        others = {k: v for k, v in record["sample"].items() if k not in APPOINTMENT_TIMES}
        assert {k: sample[k] for k in others} == others


def test_the_zapier_app_has_no_sample_time_without_a_zone():
    from zapier_app.checks import run_checks
    from zapier_app.definition import zapier_app_definition
    for connector_key_required in (False, True):
        problems = run_checks(zapier_app_definition(CATALOG, "https://service.example.com", connector_key_required))
        assert [p for p in problems if p.code == "D023"] == []


def test_wall_clock_times_get_the_offset_in_force_and_other_values_stay():
    chicago = ZoneInfo("America/Chicago")
    assert enrichment.zoned_time("2021-07-16 11:00:00", chicago) == "2021-07-16T11:00:00-05:00"
    assert enrichment.zoned_time("2021-12-16T11:00:00", chicago) == "2021-12-16T11:00:00-06:00"
    assert enrichment.zoned_time("2021-12-16 11:00:00.250", chicago) == "2021-12-16T11:00:00.250-06:00"
    for kept in ("2021-07-16T11:00:00Z", "2021-07-16T11:00:00+02:00", "2021-07-16", "16/07/2021 11:00",
                 "2021-13-40 11:00:00", "", None, 1626426000000):
        assert enrichment.zoned_time(kept, chicago) == kept
    item = {"id": "e1", "startTime": "2021-07-16 11:00:00", "title": "2021-07-16 11:00:00"}
    assert enrichment.with_zoned_times(item, ["startTime", "endTime"], chicago) == {
        **item, "startTime": "2021-07-16T11:00:00-05:00"}


def test_local_times_are_checked_and_the_location_request_is_the_catalogs():
    record = copy.deepcopy(CATALOG.get("find_contact_appointments"))
    check_record(record)
    for bad in ([], "startTime", [""], ["startTime", "startTime"], ["event.startTime"], ["id"], [3]):
        with pytest.raises(CatalogError):
            check_record({**record, "response": {**record["response"], "local_times": bad}})
    with pytest.raises(CatalogError):
        check_record({**record, "sample": {**record["sample"], "startTime": "2024-01-10T15:00:00Z"}})
    location = CATALOG.get("find_location_by_id")
    assert (location["method"], location["path"].replace("{locationId}", "{}"), location["version"],
            tuple(location["scopes"])) == ("GET", enrichment.LOCATION_PATH, enrichment.LOCATION_VERSION,
                                           enrichment.LOCATION_SCOPES)


# -- only what goes out is enriched ---------------------------------------------------------------

class CountingGhl:
    """A GHL client stand-in answering enrichment's lookups, recording each request's path."""

    def __init__(self):
        self.paths = []

    def token_owner(self, token):
        return f"owner-of-{token}"

    def request(self, method, path, token, **kwargs):
        from ghl.client import GhlResponse
        self.paths.append(path)
        if path.endswith("/customFields"):
            body = {"customFields": [{"id": "f1", "name": "Deal source", "fieldKey": "opportunity.deal_source",
                                      "model": "opportunity"}]}
        elif path == enrichment.PIPELINES_PATH:
            body = {"pipelines": [{"id": "p1", "name": "Sales", "stages": [{"id": "s1", "name": "Won"}]}]}
        else:
            body = {"location": {"timezone": "America/New_York"}}
        return GhlResponse(200, body, {})


@pytest.mark.parametrize("key, items", [
    # More locations than one call looks up (MAX_LOCATIONS_PER_CALL): which get names depends on the whole list.
    ("new_opportunity", [{"id": f"o{n}", "ghl_id": f"o{n}", "locationId": f"loc-{n % 7}", "pipelineId": "p1",
                          "pipelineStageId": "s1", "customFields": [{"id": "f1", "fieldValue": "Web"}]}
                         for n in range(14)] + [{"id": "o-here", "ghl_id": "o-here", "pipelineId": "p1"}, "odd"]),
    ("get_contact_appointments", [{"id": f"a{n}", "locationId": f"loc-{n % 2}", "startTime": "2024-03-09 15:00:00",
                                   "endTime": "2024-03-11T15:00:00+00:00"} for n in range(4)]),
])
def test_prepared_looks_everything_up_first_then_enriches_as_enrich_items_does(key, items):
    record = CATALOG.get(key)
    as_one_call = CountingGhl()
    expected = enrichment.enrich_items(enrichment.Context(as_one_call, "tok", LOCATION), record, copy.deepcopy(items))
    enrichment.clear_caches()
    ghl = CountingGhl()
    prepared = enrichment.Prepared(enrichment.Context(ghl, "tok", LOCATION), record, items)
    assert ghl.paths == as_one_call.paths and ghl.paths, "the same lookups, in the same order, up front"
    assert prepared.enrich(items) == expected
    assert ghl.paths == as_one_call.paths, "enriching calls GHL no more"


def test_a_poll_of_known_items_enriches_none_and_answers_as_before(client, auth, ghl, monkeypatch):
    enriched = []
    as_is = enrichment._enriched
    monkeypatch.setattr(enrichment, "_enriched", lambda item, *rest: enriched.append(item) or as_is(item, *rest))
    trigger = zap(client, auth, "search_opportunities")  # a list trigger (change triggers compare records first)
    assert trigger.poll() and enriched
    enriched.clear()
    assert trigger.poll() == [] and enriched == [], "nothing new: nothing enriched"
    created = ghl.create_opportunity(customFields=[{"id": "sandbox-field-3", "field_value": "Referral"}])
    first = trigger.answer()
    item = next(i for i in first if i["ghl_id"] == created["id"])
    assert (item["stageName"], item["pipelineName"], item["url"], item["custom_fields"]) == (
        "Proposal Sent", "Sandbox Sales", opportunity_link(created["id"]), {"deal_source": "Referral"})
    assert enriched, "a new item is enriched"
    enriched.clear()
    again = trigger.answer()  # the redelivery window answers it again, from the store, unchanged
    assert item in again and enriched == []
