"""How the Zapier app presents each catalog operation (zapier_app.presentation): roles, labels,
descriptions and nouns of every hand-written record (a step of its own), input fields of those
and of every generated record (shown once chosen in Run a GHL Operation or New Item in a GHL
List), and connection help, judged by Zapier's integration checks (D002, D008, D011, D018, D021)
and publishing requirements, with the named decisions pinned record by record."""

import re

import pytest

from actions.api_request import API_REQUEST
from catalog.registry import load_catalog
from zapier_app import checks
from zapier_app import choices as dropdowns
from zapier_app import operation_picker
from zapier_app import presentation as p
from zapier_app.definition import zapier_app_definition

CATALOG = load_catalog()
RECORDS = [record for record in CATALOG.operations if record["origin"] == "hand-written"]
CHOSEN = [record for step in operation_picker.STEPS for record in operation_picker.offered(CATALOG, step)]
ROLES = {record["key"]: p.role(record) for record in RECORDS}
PLATFORM = re.compile(r"\bGHL\b|HighLevel|LeadConnector", re.IGNORECASE)


def of_role(*roles):
    return [record for record in RECORDS if ROLES[record["key"]] in roles]


def record(key):
    return CATALOG.get(key)


def field(key, input_key):
    return next(f for f in (API_REQUEST if key == "api_request" else record(key))["inputs"] if f["key"] == input_key)


def shown(key, input_key):
    return p.field_presentation(API_REQUEST if key == "api_request" else record(key), field(key, input_key))


def shown_fields():
    """``(record, input, presentation)`` of every input a Zap builder can see."""
    for rec in of_role("trigger", "search", "create") + [API_REQUEST] + CHOSEN:
        for f in rec["inputs"]:
            if f.get("location") or f.get("in") == "custom_fields":
                continue
            yield rec, f, p.field_presentation(rec, f)


def assert_title_case(label):
    assert label == p.title_case(label) == checks.title_case(label), label


# ----------------------------------------------------------------------------- roles


def test_every_record_has_a_role_and_the_catalogs_actions_and_searches_keep_theirs():
    assert set(ROLES.values()) <= {"trigger", "search", "dropdown", "omit", "create"}
    for rec in RECORDS:
        if rec["kind"] == "action":
            assert ROLES[rec["key"]] == "create"
        elif rec["kind"] == "search":
            assert ROLES[rec["key"]] == "search"
        elif rec["response"].get("single"):
            # A single-record read is a look-up, never a trigger on one record's changes.
            assert ROLES[rec["key"]] in ("search", "omit"), rec["key"]


@pytest.mark.parametrize("key, expected", [
    ("get_free_slots", "omit"),               # a date-keyed map no Zap step can map
    ("check_blog_url_slug", "omit"),          # a yes/no answer, neither event nor record
    ("get_message_recording", "omit"),        # a file the service cannot pass on
    ("get_duplicate_contact", "omit"),        # the Find Contact search's request
    ("list_contacts_deprecated", "omit"),     # New Contact fires for the same contacts
    ("filter_users_by_email", "search"),      # was "New User Matching Email"
    ("search_users", "search"),
    ("get_contact", "search"),                # was "Updated Contact"
    ("get_opportunity", "search"),
    ("list_appointment_notes", "search"),     # one appointment, named by a typed id
    ("list_pipelines", "dropdown"),
    ("list_workflows", "dropdown"),
    ("list_campaigns", "dropdown"),
    ("list_custom_fields", "dropdown"),
    ("list_tags", "dropdown"),
    ("new_contact", "trigger"),
    ("contact_updated", "trigger"),
    ("get_contact_notes", "trigger"),
    ("list_users_by_location", "trigger"),
    ("create_contact", "create"),
    ("find_contact", "search"),
])
def test_role_decisions(key, expected):
    assert p.role(record(key)) == expected
    if expected == "omit":
        assert p.OMITTED[key]


def test_a_trigger_on_a_list_of_configuration_is_a_dropdown_but_events_on_it_stay_triggers():
    pipelines = record("list_pipelines")
    assert p.role({**pipelines, "noun": "Pipelines"}) == "dropdown"
    assert p.role({**pipelines, "noun": "Invoice"}) == "trigger"
    assert p.role({**pipelines, "name": "Pipeline Created"}) == "trigger"


# ----------------------------------------------------------------------------- nouns


@pytest.mark.parametrize("key, expected", [
    ("contact_tag_removed", "Contact"), ("contact_updated", "Contact"), ("new_contact", "Contact"),
    ("opportunity_stage_changed", "Opportunity"), ("invoice_paid", "Invoice"), ("task_completed", "Task"),
    ("new_inbound_message", "Message"), ("get_free_slots", "Free Slot"), ("get_company", "Agency"),
    ("import_courses", "Course"), ("create_blog_post", "Blog Post"), ("create_business", "Business"),
])
def test_nouns_name_the_record_in_the_singular(key, expected):
    assert p.noun(record(key)) == expected


def test_every_noun_is_a_singular_title_case_noun_of_one_to_three_words():
    for rec in RECORDS + [API_REQUEST]:
        noun = p.noun(rec)
        words = noun.split()
        assert 1 <= len(words) <= 3 and not checks.is_plural(words[-1]), (rec["key"], noun)
        assert all(w[:1].isupper() for w in words), (rec["key"], noun)


# ----------------------------------------------------------------------------- triggers


def test_every_trigger_description_starts_triggers_when_and_ends_with_a_period():
    for rec in of_role("trigger", "dropdown"):
        description = p.trigger_display(rec, CATALOG)["description"]
        assert description.startswith("Triggers when ") and description.endswith("."), (rec["key"], description)
        assert not PLATFORM.search(description), description
        if p.wants_instant_twin(rec):
            twin = p.instant_display(rec, CATALOG)["description"]
            assert twin.startswith("Triggers when ") and twin.endswith("."), twin


def test_trigger_labels_name_events_in_title_case_and_are_unique():
    labels = []
    for rec in of_role("trigger", "dropdown"):
        labels.append(p.trigger_display(rec, CATALOG)["label"])
        if p.wants_instant_twin(rec):
            labels.append(p.instant_display(rec, CATALOG)["label"])
    for label in labels:
        assert_title_case(label)
        assert len(label) <= 64
        assert not re.match(r"^(?:Get|List|Search|Filter|Find|Check|Download) ", label), label
    assert len(labels) == len(set(labels))


@pytest.mark.parametrize("key, label, description", [
    ("new_contact", "New Contact", "Triggers when a contact is added."),
    ("contact_tag_added", "Contact Tag Added",
     "Triggers when a tag (any tag, or the one you choose) is added to a contact."),
    ("contact_updated", "Contact Field Changed", None),   # no generic "Updated Contact" (4.9)
    ("get_contact_notes", "New Contact Note", "Triggers when a note is added to the contact you choose."),
    ("search_contacts", "New Contact Matching Search", None),
    ("list_pipelines", "New Pipeline", "Triggers when there is a new pipeline."),
])
def test_trigger_display(key, label, description):
    display = p.trigger_display(record(key), CATALOG)
    assert display["label"] == label
    if description:
        assert display["description"] == description


def test_a_trigger_without_written_copy_gets_its_description_from_its_summary_or_noun():
    base = {**record("new_order"), "key": "order_shipped", "name": "Order Shipped", "noun": "Order"}
    event = p.trigger_display({**base, "summary": "Fires when an order is marked shipped in GHL"})
    assert event == {"label": "Order Shipped", "description": "Triggers when an order is marked shipped."}
    listed = p.trigger_display({**base, "key": "list_widgets", "name": "List Widgets", "noun": "Widgets",
                                "summary": "Fires once for each widget that appears."})
    assert listed == {"label": "New Widget", "description": "Triggers when there is a new widget."}


def test_a_label_another_trigger_has_is_followed_by_the_records_name():
    copy = {**record("new_contact"), "key": "list_contacts_again", "name": "List Contacts Again", "noun": "Contact"}

    class WithCopy:
        def of_kind(self, kind):
            return CATALOG.of_kind(kind) + [copy]

    assert p.trigger_label(copy, WithCopy()) == "New Contact (List Contacts Again)"


# ----------------------------------------------------------------------------- instant twins


def test_instant_twins_are_for_visible_list_triggers_of_events_and_things_that_appear():
    assert p.wants_instant_twin(record("new_contact"))
    assert p.wants_instant_twin(record("opportunity_stage_changed"))
    assert p.wants_instant_twin(record("get_contact_notes"))
    assert not p.wants_instant_twin(record("list_pipelines"))      # a dropdown
    assert not p.wants_instant_twin(record("get_contact"))         # a search now
    assert not p.wants_instant_twin(record("list_blocked_slots"))  # not a thing Zaps react to at once
    for rec in RECORDS:
        if p.wants_instant_twin(rec):
            assert ROLES[rec["key"]] == "trigger" and rec["response"]["dedupe"] == "new"


def test_instant_twins_say_how_fast_they_are():
    display = p.instant_display(record("new_contact"), CATALOG)
    assert display["label"] == "New Contact (Checked Every Minute)"
    assert display["description"].startswith("Triggers when a contact is added. ")
    assert "every minute" in display["description"] and "every 1 to 15 minutes" in display["description"]
    assert "Instant" not in display["label"]
    assert p.instant_display(record("new_contact"), poll_seconds=30)["label"] == "New Contact (Checked Every 30 Seconds)"
    assert p.instant_display(record("new_contact"), poll_seconds=300)["label"] == "New Contact (Checked Every 5 Minutes)"


# ----------------------------------------------------------------------------- searches and creates


def test_every_search_is_find_and_finds():
    labels = []
    for rec in of_role("search"):
        display = p.search_display(rec)
        labels.append(display["label"])
        assert display["label"].startswith("Find "), display
        assert display["description"].startswith("Finds ") and display["description"].endswith("."), display
        assert not PLATFORM.search(display["description"]), display
        assert_title_case(display["label"])
    assert len(labels) == len(set(labels))


@pytest.mark.parametrize("key, label, description", [
    ("find_contact", "Find Contact", "Finds an existing contact by email or phone number."),
    ("get_contact", "Find Contact by ID", "Finds a contact by ID."),
    ("filter_users_by_email", "Find Agency User by Email", None),
    ("get_calendar_by_id", "Find Calendar", "Finds a calendar by ID."),
])
def test_search_display(key, label, description):
    display = p.search_display(record(key))
    assert display["label"] == label
    if description:
        assert display["description"] == description


def test_every_create_is_an_imperative_with_a_description_of_what_happens():
    labels = []
    for rec in of_role("create") + [API_REQUEST]:
        display = p.create_display(rec)
        labels.append(display["label"])
        assert_title_case(display["label"])
        first = display["description"].split()[0]
        assert re.fullmatch(r"[A-Z][a-z]+s", first) and display["description"].endswith("."), display
        assert not PLATFORM.search(display["description"]), display
    assert len(labels) == len(set(labels))
    assert p.create_display(record("delete_contact"))["description"] == "Deletes a contact permanently."
    assert p.create_display(record("upsert_contact"))["label"] == "Create or Update Contact"
    assert p.create_display(record("remove_tags_from_contact"))["label"] == "Remove Tags from Contact"
    assert p.create_display(API_REQUEST)["label"] == "Send API Request"


# ----------------------------------------------------------------------------- input fields


def test_dropdown_fields_name_the_thing_not_its_id():
    for rec, f, shown_field in shown_fields():
        if dropdowns.declared_source(rec, f) is not None:
            assert not re.search(r"\bIDs?\b", shown_field["label"]), (rec["key"], f["key"], shown_field["label"])
    assert shown("create_opportunity", "contactId")["label"] == "Contact"
    assert shown("create_opportunity", "pipelineStageId")["label"] == "Pipeline Stage"
    assert shown("create_user", "companyId")["label"] == "Agency"
    assert shown("add_followers", "followers")["label"] == "Followers"
    assert shown("create_blog_post", "categories")["label"] == "Categories"
    assert shown("create_calendar", "groupId")["label"] == "Calendar Group"
    # No list offers a live-chat visitor: the user maps an id, and the label says so.
    assert shown("agent_typing_indicator", "visitorId")["label"] == "Visitor ID"


def test_help_texts_add_something_and_have_no_bare_links():
    for rec, f, shown_field in shown_fields():
        help_text = shown_field["helpText"]
        if help_text is None:
            continue
        where = (rec["key"], f["key"])
        assert help_text.strip(), where
        assert p._words(help_text) != p._words(shown_field["label"]), where            # D011
        assert p.adds_information(help_text, shown_field["label"], f["key"], p.noun(rec)), where
        assert checks.link_problem(help_text) is None, (where, help_text)                # D008
        assert not re.match(r"Optional\b", help_text), where   # Zapier marks optional fields itself
        assert "trigger shows" not in help_text or dropdowns.declared_source(rec, f) is None, where


@pytest.mark.parametrize("key, input_key, expected", [
    ("add_contact_followers", "contactId", "The contact to follow."),
    ("create_opportunity", "pipelineId", "The pipeline the opportunity goes in."),
    ("complete_contact_task", "taskId", None),   # "The id of the task (the … trigger shows them)."
    ("create_contact", "city", None),            # "City."
    ("create_contact", "firstName", None),       # "The contact's first name."
    ("get_contact", "contactId", None),          # "The id of the contact to watch." on a search
    ("create_blog_post", "status", None),        # the codes the dropdown now labels
    ("find_opportunity", "order", "Which opportunity comes first when several match."),
    ("new_form_submission", "formId", "Fire only for submissions of this form. Leave empty for every form."),
])
def test_help_text(key, input_key, expected):
    assert shown(key, input_key)["helpText"] == expected


def test_links_examples_and_placeholders_sit_in_backticks():
    assert "`https://example.com/menu.pdf`" in shown("send_message", "attachments")["helpText"]
    meeting = shown("create_calendar", "locationConfigurations")["helpText"]
    assert '`[{"kind": "custom", "location": "https://meet.example.com/room"}]`' in meeting
    assert "`{{contact.name}}`" in shown("create_calendar", "eventTitle")["helpText"]
    assert p.in_code_spans("See https://x.example.com/a.") == "See `https://x.example.com/a`."
    assert p.in_code_spans("Already `https://x.example.com` here.") == "Already `https://x.example.com` here."


def test_no_choice_label_is_a_raw_code():
    for rec in RECORDS + [API_REQUEST] + CHOSEN:
        for f in rec["inputs"]:
            if not f.get("choices"):
                continue
            listed = p.field_presentation(rec, f)["choices"]
            assert [c["value"] for c in listed] == [str(v).lower() if isinstance(v, bool) else str(v)
                                                  for v in f["choices"]]
            for choice in listed:
                assert choice["sample"] == choice["value"]
                assert not checks.raw_code(choice["label"]), (rec["key"], f["key"], choice)
                assert not p._reads_as_code(choice["label"]), (rec["key"], f["key"], choice)


@pytest.mark.parametrize("key, input_key, value, label", [
    ("get_messages_by_conversation", "type", "TYPE_CALL", "Call"),
    ("get_messages_by_conversation", "type", "TYPE_ACTIVITY_INVOICE", "Invoice activity"),
    ("search_conversations", "lastMessageType", "TYPE_SMS_NO_SHOW_REQUEST", "SMS no-show request"),
    ("find_opportunity", "order", "added_desc", "Newest first"),
    ("create_appointment", "appointmentStatus", "noshow", "No-show"),
    ("create_calendar", "eventType", "RoundRobin_OptimizeForAvailability", "Optimize for availability"),
    ("send_message", "type", "IG", "Instagram"),
    ("new_inbound_message", "channel", "WhatsApp", "WhatsApp"),
    ("create_location", "country", "US", "United States"),
    ("create_user", "platformLanguage", "pt_BR", "Portuguese (Brazil)"),
    ("agent_typing_indicator", "isTyping", "true", "Show the indicator"),
    ("api_request", "version", "2021-04-15", "2021-04-15 (calendars, conversations)"),
])
def test_choice_labels(key, input_key, value, label):
    listed = {c["value"]: c["label"] for c in shown(key, input_key)["choices"]}
    assert listed[value] == label


@pytest.mark.parametrize("key, input_key", [
    ("search_contacts", "sort"), ("search_opportunities", "order"), ("search_users", "sort"),
    ("search_users", "sortDirection"), ("search_conversations", "sort"), ("find_associations", "limit"),
    ("get_blog_posts", "offset"), ("invoice_paid", "limit"), ("invoice_paid", "altType"),
    ("list_calendar_events", "startTime"), ("list_calendar_events", "endTime"), ("send_message", "status"),
    ("send_message", "subType"), ("filter_users_by_email", "projection"), ("list_forms", "limit"),
])
def test_internal_settings_are_hidden(key, input_key):
    assert shown(key, input_key).get("hidden") is True


@pytest.mark.parametrize("key, input_key", [
    ("find_opportunity", "order"),       # which match comes first: a real choice in a search
    ("api_request", "version"),          # calendars and conversations need the other one
    ("list_calendar_events", "days_back"),
    ("create_contact_task", "completed"),
])
def test_settings_a_zap_builder_chooses_stay_visible(key, input_key):
    assert not shown(key, input_key).get("hidden")


def test_only_inputs_the_service_can_fill_are_hidden():
    for rec in RECORDS + [API_REQUEST] + CHOSEN:
        for f in rec["inputs"]:
            if p.field_presentation(rec, f).get("hidden"):
                assert not f.get("required") or f.get("default") is not None or f.get("default_input"), \
                    (rec["key"], f["key"])


# ----------------------------------------------------------------------------- connection


def test_connection_fields_link_to_where_the_value_is():
    help_texts = p.auth_fields_help("https://ghl.example.com")
    for key in ("token", "locationId", "connectorKey"):
        links = checks.MARKDOWN_LINK.findall(help_texts[key])
        assert links and all(target.startswith("https://") for _text, target in links), key      # D002
        assert checks.link_problem(help_texts[key]) is None, key                                   # D008
    assert p.PRIVATE_INTEGRATIONS_HELP in help_texts["token"]
    assert p.BUSINESS_PROFILE_HELP in help_texts["locationId"]
    assert "[the server](https://ghl.example.com/)" in help_texts["connectorKey"]
    assert set(p.AUTH_FIELDS_HELP) == {"token", "locationId", "connectorKey"}


def test_a_step_only_some_tokens_may_run_says_which_token_it_needs():
    definition = zapier_app_definition(CATALOG, "https://service.example", False)
    assert "Needs an agency token" in definition["creates"]["create_location"]["display"]["description"]
    assert "agency token" in definition["searches"]["get_company"]["display"]["description"]
    assert "Needs an" not in definition["creates"]["create_contact"]["display"]["description"]
