"""The change triggers end to end: the service in-process (``client``) polling the real sandbox GHL.

For each trigger: the first poll fires nothing; each event made in the sandbox afterwards
fires exactly once, with the right ``previous``/added/removed; an event the trigger's filter
excludes never fires; a burst of 250 events is delivered in full over successive polls; and
the REST-hook path (``poll_into_backlog`` + ``pending``) yields the same items.

A ``Zap`` stands in for Zapier: it fires only for ids it has not seen.
"""

import pytest

from tests.conftest import LOCATION
from tests.event_zaps import BURST, PIPELINE, check_rest_hook_path, drained_in_batches, ghl_fixture, only, zap_fixture
from tests import event_zaps



class Ghl(event_zaps.Ghl):
    """Contacts, tags and opportunities changed straight in the sandbox GHL."""

    def create_contact(self, **fields):
        return self.call("POST", "/contacts/", json={"locationId": LOCATION, **fields})["contact"]

    def create_opportunity(self, **fields):
        body = {"locationId": LOCATION, "pipelineId": PIPELINE, "pipelineStageId": "sandbox-stage-1",
                "name": "Deal", "status": "open", "contactId": "sandbox-contact-1", **fields}
        return self.call("POST", "/opportunities/", json=body)["opportunity"]


ghl = ghl_fixture(Ghl)
zap = zap_fixture()


# -- one event at a time -------------------------------------------------------------------------

def test_new_contact(zap, ghl):
    trigger = zap("new_contact")
    assert trigger.poll() == []
    created = ghl.create_contact(firstName="Nia", email="nia@example.com")
    item = only(trigger.poll())
    assert item["id"] == item["ghl_id"] == created["id"] and item["email"] == "nia@example.com"
    assert item["firstNameLowerCase"] == "nia", "items are search items"
    assert trigger.poll() == []
    # Not a new contact: a change to an old one, or a contact in another location.
    ghl.update_contact("sandbox-contact-2", email="ben.new@example.com")
    ghl.call("POST", "/contacts/", json={"locationId": "other-location", "email": "elsewhere@example.com"})
    assert trigger.poll() == []


def test_contact_updated(zap, ghl):
    any_field, phone_only = zap("contact_updated"), zap("contact_updated", {"fields": ["phone"]}, "zap-2")
    assert any_field.poll() == [] and phone_only.poll() == []
    ghl.update_contact("sandbox-contact-2", email="ben.new@example.com")
    item = only(any_field.poll())
    assert item["id"] == "sandbox-contact-2:1" and item["ghl_id"] == "sandbox-contact-2"
    assert item["changed_fields"] == ["email"] and item["previous"] == {"email": "ben.example@example.com"}
    assert item["email"] == "ben.new@example.com"
    assert phone_only.poll() == [], "email is not watched there"
    ghl.add_tags("sandbox-contact-3", "vip")
    item = only(any_field.poll())
    assert item["changed_fields"] == ["tags"] and item["previous"] == {"tags": ["lead", "newsletter"]}
    assert item["added"] == {"tags": ["vip"]} and item["removed"] == {"tags": []}
    ghl.update_contact("sandbox-contact-3", phone="+15550109999")
    assert only(phone_only.poll())["previous"] == {"phone": "+15550100003"}
    assert only(any_field.poll())["id"] == "sandbox-contact-3:2"
    assert any_field.poll() == [] and phone_only.poll() == []
    # An update that changes nothing watched bumps dateUpdated but fires nothing.
    ghl.update_contact("sandbox-contact-4", timezone="Europe/London")
    assert any_field.poll() == []


def test_contact_tag_added(zap, ghl):
    vip, any_tag = zap("contact_tag_added", {"tag": "VIP"}), zap("contact_tag_added", zap_id="zap-2")
    assert vip.poll() == [] and any_tag.poll() == []
    ghl.add_tags("sandbox-contact-2", "vip")
    item = only(vip.poll())
    assert (item["id"], item["tag"], item["ghl_id"]) == ("sandbox-contact-2:1:+vip", "vip", "sandbox-contact-2")
    assert item["previous"] == {"tags": ["lead"]} and item["tags"] == ["lead", "vip"]
    assert only(any_tag.poll())["id"] == "sandbox-contact-2:1:+vip"
    ghl.add_tags("sandbox-contact-3", "gold")
    assert vip.poll() == [], "another tag"
    assert only(any_tag.poll())["tag"] == "gold"
    # A contact created with tags (after the first poll) fires once per tag.
    created = ghl.create_contact(email="new@example.com", tags=["vip", "lead"])
    assert [(i["ghl_id"], i["tag"]) for i in vip.poll()] == [(created["id"], "vip")]
    assert sorted(i["tag"] for i in any_tag.poll()) == ["lead", "vip"]
    # Removing and adding it back fires again, with a new identity.
    ghl.remove_tags("sandbox-contact-2", "vip")
    assert vip.poll() == []
    ghl.add_tags("sandbox-contact-2", "vip")
    assert only(vip.poll())["id"] == "sandbox-contact-2:3:+vip"
    assert vip.poll() == []
    # A Zap that did not poll in between sees the tag where it was: polling sees states, not steps.
    assert any_tag.poll() == []


def test_contact_tag_removed(zap, ghl):
    lead, any_tag = zap("contact_tag_removed", {"tag": "lead"}), zap("contact_tag_removed", zap_id="zap-2")
    assert lead.poll() == [] and any_tag.poll() == []
    ghl.remove_tags("sandbox-contact-3", "lead")
    item = only(lead.poll())
    assert (item["id"], item["tag"]) == ("sandbox-contact-3:1:-lead", "lead")
    assert item["previous"] == {"tags": ["lead", "newsletter"]} and item["tags"] == ["newsletter"]
    assert item["removed"] == {"tags": ["lead"]}
    assert only(any_tag.poll())["tag"] == "lead"
    ghl.remove_tags("sandbox-contact-1", "customer")
    ghl.add_tags("sandbox-contact-4", "lead")
    assert lead.poll() == [], "another tag removed; a tag added"
    assert [i["tag"] for i in any_tag.poll()] == ["customer"]
    assert lead.poll() == [] and any_tag.poll() == []


def test_new_opportunity(zap, ghl):
    in_pipeline = zap("new_opportunity", {"pipelineId": PIPELINE})
    won_stage = zap("new_opportunity", {"pipelineId": PIPELINE, "stageId": "sandbox-stage-4"}, "zap-2")
    assert in_pipeline.poll() == [] and won_stage.poll() == []
    created = ghl.create_opportunity(name="Fresh deal")
    item = only(in_pipeline.poll())
    assert item["id"] == item["ghl_id"] == created["id"] and item["name"] == "Fresh deal"
    assert won_stage.poll() == [], "created in another stage"
    ghl.create_opportunity(name="Elsewhere", pipelineId="other-pipeline")
    ghl.move("sandbox-opportunity-1", "sandbox-stage-4")
    assert in_pipeline.poll() == [] and won_stage.poll() == [], "another pipeline; a move is not new"
    signed = ghl.create_opportunity(name="Signed", pipelineStageId="sandbox-stage-4")
    assert only(won_stage.poll())["id"] == signed["id"]
    assert only(in_pipeline.poll())["id"] == signed["id"]


def test_opportunity_stage_changed(zap, ghl):
    any_stage = zap("opportunity_stage_changed", {"pipelineId": PIPELINE})
    to_won = zap("opportunity_stage_changed", {"pipelineId": PIPELINE, "stageId": "sandbox-stage-4"}, "zap-2")
    assert any_stage.poll() == [] and to_won.poll() == []
    ghl.move("sandbox-opportunity-2", "sandbox-stage-3")
    item = only(any_stage.poll())
    assert item["id"] == "sandbox-opportunity-2:1" and item["pipelineStageId"] == "sandbox-stage-3"
    assert item["previous"] == {"pipelineStageId": "sandbox-stage-1"} and item["changed_fields"] == ["pipelineStageId"]
    assert item["lastStageChangeAt"] == item["updatedAt"]
    assert to_won.poll() == [], "not the stage named"
    ghl.move("sandbox-opportunity-2", "sandbox-stage-4")
    assert only(to_won.poll())["previous"] == {"pipelineStageId": "sandbox-stage-3"}
    assert only(any_stage.poll())["id"] == "sandbox-opportunity-2:2"
    # Other changes, and moves in another pipeline, fire nothing.
    ghl.call("PUT", "/opportunities/sandbox-opportunity-1", json={"monetaryValue": 5000})
    ghl.set_status("sandbox-opportunity-1", "won")
    ghl.move("sandbox-opportunity-1", "elsewhere-stage-2", pipeline="other-pipeline")
    assert any_stage.poll() == [] and to_won.poll() == []


def test_opportunity_status_changed(zap, ghl):
    won, any_status = zap("opportunity_status_changed", {"status": "won"}), zap("opportunity_status_changed",
                                                                                zap_id="zap-2")
    assert won.poll() == [] and any_status.poll() == []
    ghl.set_status("sandbox-opportunity-1", "lost")
    assert won.poll() == []
    item = only(any_status.poll())
    assert (item["status"], item["previous"]) == ("lost", {"status": "open"})
    ghl.set_status("sandbox-opportunity-1", "won")
    item = only(won.poll())
    assert item["id"] == "sandbox-opportunity-1:2" and item["previous"] == {"status": "lost"}
    assert item["lastStatusChangeAt"] == item["updatedAt"]
    assert only(any_status.poll())["id"] == "sandbox-opportunity-1:2"
    ghl.move("sandbox-opportunity-2", "sandbox-stage-2")
    assert won.poll() == [] and any_status.poll() == []


# -- bursts ------------------------------------------------------------------------------------------

def _new_contacts(ghl, prefix, **fields):
    return ghl.records("/contacts/", [{"firstName": f"{prefix}{n}", "email": f"{prefix}{n}@example.com",
                                           "tags": [], **fields} for n in range(BURST)])


def test_a_burst_of_new_contacts_is_delivered_in_full_oldest_first(zap, ghl):
    trigger = zap("new_contact")
    trigger.poll()
    ids = _new_contacts(ghl, "burst")
    delivered = drained_in_batches(trigger)
    assert [item["id"] for item in delivered] == ids


@pytest.mark.parametrize("trigger_key, inputs", [
    ("contact_tag_added", {"tag": "vip"}), ("contact_tag_removed", {"tag": "vip"}), ("contact_updated", {})])
def test_a_burst_of_contact_changes_is_delivered_in_full(zap, ghl, trigger_key, inputs):
    trigger = zap(trigger_key, inputs)
    trigger.poll()
    ids = _new_contacts(ghl, "burst", tags=["vip"] if trigger_key == "contact_tag_removed" else [])
    trigger.drain()  # the new contacts are first seen (Contact Updated fires for them, from empty)
    if trigger_key == "contact_tag_added":
        ghl.bulk_tags(ids, "add", "vip")
    elif trigger_key == "contact_tag_removed":
        ghl.bulk_tags(ids, "remove", "vip")
    else:
        for n, contact_id in enumerate(ids):
            ghl.update_contact(contact_id, email=f"changed{n}@example.com")
    delivered = drained_in_batches(trigger)
    assert sorted(item["ghl_id"] for item in delivered) == sorted(ids)
    assert len({item["id"] for item in delivered}) == BURST
    if trigger_key == "contact_updated":
        assert all(item["changed_fields"] == ["email"] for item in delivered)


def test_a_burst_of_new_opportunities_is_delivered_in_full(zap, ghl):
    trigger = zap("new_opportunity", {"pipelineId": PIPELINE})
    trigger.poll()
    ids = ghl.records("/opportunities/", [{"name": f"Deal {n}", "pipelineId": PIPELINE,
                                               "pipelineStageId": "sandbox-stage-1"} for n in range(BURST)])
    assert [item["id"] for item in drained_in_batches(trigger)] == ids


@pytest.mark.parametrize("trigger_key, inputs", [
    ("opportunity_stage_changed", {"pipelineId": PIPELINE, "stageId": "sandbox-stage-4"}),
    ("opportunity_status_changed", {"status": "won"})])
def test_a_burst_of_opportunity_changes_is_delivered_in_full(zap, ghl, trigger_key, inputs):
    # Created before the Zap's first poll, which scans and so records all of them.
    ids = ghl.records("/opportunities/", [{"name": f"Deal {n}", "pipelineId": PIPELINE, "status": "open",
                                               "pipelineStageId": "sandbox-stage-1"} for n in range(BURST)])
    trigger = zap(trigger_key, inputs)
    assert trigger.poll() == []
    for opportunity_id in ids:
        if trigger_key == "opportunity_stage_changed":
            ghl.move(opportunity_id, "sandbox-stage-4")
        else:
            ghl.set_status(opportunity_id, "won")
    delivered = drained_in_batches(trigger)
    assert sorted(item["ghl_id"] for item in delivered) == sorted(ids)
    assert all(item["id"] == item["ghl_id"] + ":1" for item in delivered)


# -- the REST-hook path ----------------------------------------------------------------------------

HOOK_CASES = {
    "new_contact": ({}, lambda g: g.create_contact(email="hooked@example.com")),
    "contact_updated": ({}, lambda g: g.update_contact("sandbox-contact-2", email="hooked@example.com")),
    "contact_tag_added": ({"tag": "vip"}, lambda g: (g.add_tags("sandbox-contact-2", "vip"),
                                                     g.add_tags("sandbox-contact-3", "gold"))),
    "contact_tag_removed": ({}, lambda g: g.remove_tags("sandbox-contact-3", "lead", "newsletter")),
    "new_opportunity": ({"pipelineId": PIPELINE}, lambda g: g.create_opportunity(name="Hooked")),
    "opportunity_stage_changed": ({"pipelineId": PIPELINE}, lambda g: g.move("sandbox-opportunity-2",
                                                                             "sandbox-stage-2")),
    "opportunity_status_changed": ({}, lambda g: g.set_status("sandbox-opportunity-1", "abandoned")),
}


@pytest.mark.parametrize("trigger_key", sorted(HOOK_CASES))
def test_the_rest_hook_path_yields_the_same_items(app, zap, ghl, trigger_key):
    inputs, event = HOOK_CASES[trigger_key]
    check_rest_hook_path(app, zap, trigger_key, inputs, lambda: event(ghl))
