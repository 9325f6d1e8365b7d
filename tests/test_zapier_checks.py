"""Zapier's offline integration checks (``zapier_app.checks``): each check on a tiny app that
breaks exactly its rule, and all of them on the generated app."""

import time

import pytest

from catalog.registry import load_catalog
from zapier_app import checks
from zapier_app.checks import (CHECKS, JUSTIFIED_EXCEPTIONS, Problem, date_problem, link_problem, raw_code, report,
                               run_checks, title_case, unexcused, unused_exceptions)
from zapier_app.definition import zapier_app_definition

API = "https://api.example.com"


def compliant_app():
    """A small app that passes every check: a polling and a hook trigger, a hidden dropdown
    trigger, a search, a create and a search-or-create."""
    contact_sample = {"id": "c1", "email": "bob@example.com", "firstName": "Bob", "dateAdded": "2024-01-02T09:00:00Z",
                      "score": 3, "isActive": True, "address": {"city": "Lyon"}, "tags": ["vip"]}
    contact_outputs = [
        {"key": "id", "label": "ID", "type": "string"},
        {"key": "email", "label": "Email", "type": "string", "required": True},
        {"key": "dateAdded", "label": "Date Added", "type": "datetime"},
        {"key": "score", "label": "Score", "type": "integer"},
        {"key": "isActive", "label": "Active", "type": "boolean"},
        {"key": "address__city", "label": "City", "type": "string"},
        {"key": "tags", "label": "Tags", "type": "string", "list": True},
    ]
    return {
        "version": "1.0.0",
        "platformVersion": "19.1.0",
        "authentication": {
            "type": "custom",
            "fields": [
                {"key": "token", "label": "API Token", "type": "password", "required": True,
                 "helpText": "Copy it from the [API settings](https://app.example.com/settings/api) page."},
                {"key": "region", "label": "Region", "type": "string", "required": False,
                 "helpText": "Where your account lives, such as `eu`; blank for the US."},
            ],
            "test": {"url": f"{API}/me", "method": "GET"},
            "connectionLabel": "{{email}}",
        },
        "beforeRequest": ["$func$3$f$"],
        "triggers": {
            "new_contact": {
                "key": "new_contact", "noun": "Contact",
                "display": {"label": "New Contact", "description": "Triggers when a contact is added."},
                "operation": {
                    "type": "polling",
                    "perform": {"url": f"{API}/contacts", "method": "GET"},
                    "inputFields": [{"key": "tag", "label": "Tag", "required": False,
                                     "helpText": "Only contacts carrying this tag start the Zap."}],
                    "sample": contact_sample,
                    "outputFields": contact_outputs,
                },
            },
            "new_contact_instant": {
                "key": "new_contact_instant", "noun": "Contact",
                "display": {"label": "New Contact (Instant)",
                            "description": "Triggers when a contact is added, within seconds."},
                "operation": {
                    "type": "hook",
                    "perform": "$func$2$f$",
                    "performSubscribe": {"url": f"{API}/hooks", "method": "POST"},
                    "performUnsubscribe": {"url": f"{API}/hooks/{{{{bundle.subscribeData.id}}}}", "method": "DELETE"},
                    "performList": {"url": f"{API}/contacts", "method": "GET"},
                    "inputFields": ["$func$2$f$"],
                    "sample": dict(contact_sample),
                    "outputFields": list(contact_outputs) + ["$func$2$f$"],
                },
            },
            "contact_choices": {
                "key": "contact_choices", "noun": "Contact",
                "display": {"label": "Contact Choices", "description": "Triggers when contacts fill a dropdown.",
                            "hidden": True},
                # Hidden: no sample needed, and its id input is filled by the step being set up.
                "operation": {"perform": {"url": f"{API}/choices/contacts", "method": "GET"},
                              "inputFields": [{"key": "companyId", "label": "Company ID"}]},
            },
        },
        "searches": {
            "find_contact": {
                "key": "find_contact", "noun": "Contact",
                "display": {"label": "Find Contact", "description": "Finds a contact by email."},
                "operation": {
                    "perform": {"url": f"{API}/contacts/search", "method": "POST"},
                    "inputFields": [{"key": "email", "label": "Email", "required": True,
                                     "helpText": "Matched exactly, ignoring case."}],
                    "sample": {"id": "c1", "email": "bob@example.com"},
                },
            },
        },
        "creates": {
            "create_contact": {
                "key": "create_contact", "noun": "Contact",
                "display": {"label": "Create Contact", "description": "Creates a new contact."},
                "operation": {
                    "perform": {"url": f"{API}/contacts", "method": "POST"},
                    "inputFields": [
                        {"key": "email", "label": "Email", "required": True},
                        {"key": "referrer", "label": "Referred By", "required": False,
                         "dynamic": "contact_choices.id.name", "search": "find_contact.id",
                         "helpText": "Pick a contact, or map an email and we find the contact."},
                        {"key": "ownerId", "label": "Owner ID", "required": False,
                         "dynamic": "contact_choices.id.name"},
                        {"key": "status", "label": "Status", "required": False,
                         "choices": [{"value": "open", "label": "Open"}, {"value": "won", "label": "Won"}]},
                        {"key": "channel", "label": "Channel", "choices": ["SMS", "Email", "WhatsApp", "10"]},
                        {"key": "tags", "label": "Tags", "list": True,
                         "helpText": "Each one is added; tags the contact already has stay."},
                        "$func$2$f$",
                    ],
                    "sample": {"id": "c1", "email": "bob@example.com", "dateAdded": "2024-01-02"},
                },
            },
        },
        "searchOrCreates": {
            "find_contact": {
                "key": "find_contact",
                "display": {"label": "Find or Create Contact",
                            "description": "Finds a contact, and creates one when none matches."},
                "search": "find_contact", "create": "create_contact",
            },
        },
    }


def operation(app, group, key):
    return app[group][key]["operation"]


def field(app, group, key, field_key):
    return next(f for f in operation(app, group, key)["inputFields"] if isinstance(f, dict) and f["key"] == field_key)


def display(app, group, key):
    return app[group][key]["display"]


def static_hook_only(app):
    hook = app["triggers"]["new_contact_instant"]
    del hook["operation"]["performSubscribe"]
    app.clear()
    app.update({"version": "1.0.0", "platformVersion": "19.1.0", "triggers": {"new_contact_instant": hook}})


# (code, what breaks the rule, where it is reported, other codes the same break raises)
BREAKS = [
    ("D001", lambda a: operation(a, "creates", "create_contact")["inputFields"].append(
        {"key": "api_key", "label": "Key"}), "creates.create_contact.inputFields.api_key", ()),
    ("D001", lambda a: operation(a, "creates", "create_contact")["inputFields"].append(
        {"key": "auth", "label": "Access Token"}), "creates.create_contact.inputFields.auth", ()),
    ("D002", lambda a: a["authentication"]["fields"][0].update(helpText="Copy it from the API settings page."),
     "authentication.fields.token.helpText", ()),
    ("D003", lambda a: a["authentication"].pop("connectionLabel"), "authentication.connectionLabel", ()),
    ("D003", lambda a: a["authentication"].update(connectionLabel="Example"), "authentication.connectionLabel", ()),
    ("D003", lambda a: a["authentication"].update(connectionLabel="{{bundle.authData.token}}"),
     "authentication.connectionLabel", ()),
    ("D004", lambda a: operation(a, "creates", "create_contact")["inputFields"].append(
        {"key": "contactId", "label": "Contact ID"}), "creates.create_contact.inputFields.contactId", ()),
    ("D004", lambda a: field(a, "creates", "create_contact", "ownerId").pop("dynamic"),
     "creates.create_contact.inputFields.ownerId", ()),
    ("D004", lambda a: field(a, "triggers", "new_contact", "tag").update(label="Tag IDs"),
     "triggers.new_contact.inputFields.tag", ()),
    ("D005", lambda a: field(a, "creates", "create_contact", "referrer").update(dynamic="people.id.name"),
     "creates.create_contact.inputFields.referrer.dynamic", ()),
    ("D006", lambda a: operation(a, "triggers", "new_contact_instant").pop("performList"),
     "triggers.new_contact_instant.performList", ()),
    ("D007", lambda a: operation(a, "triggers", "new_contact")["perform"].update(url="http://api.example.com/c"),
     "triggers.new_contact.perform.url", ()),
    ("D007", lambda a: a["authentication"]["test"].update(url="http://api.example.com/me"),
     "authentication.test.url", ()),
    ("D007", lambda a: a["authentication"]["fields"][0].update(helpText="See [settings](http://app.example.com)."),
     "authentication.fields.token.helpText", ("D002",)),
    ("D008", lambda a: display(a, "triggers", "new_contact").update(
        description="Triggers when a contact is added at https://app.example.com."),
     "triggers.new_contact.display.description", ()),
    ("D008", lambda a: field(a, "creates", "create_contact", "tags").update(
        helpText="See [the guide(https://example.com/tags)."), "creates.create_contact.inputFields.tags.helpText", ()),
    ("D009", lambda a: operation(a, "searches", "find_contact").update(inputFields=[]),
     "searches.find_contact.inputFields", ()),
    ("D010", lambda a: operation(a, "triggers", "new_contact")["sample"].update(
        contactId=operation(a, "triggers", "new_contact")["sample"].pop("id")), "triggers.new_contact.sample", ()),
    ("D011", lambda a: field(a, "triggers", "new_contact", "tag").update(helpText="tag."),
     "triggers.new_contact.inputFields.tag.helpText", ()),
    ("D012", lambda a: operation(a, "searches", "find_contact").pop("sample"), "searches.find_contact.sample", ()),
    ("D013", lambda a: field(a, "creates", "create_contact", "referrer").update(search="find_person.id"),
     "creates.create_contact.inputFields.referrer.search", ()),
    ("D014", lambda a: field(a, "creates", "create_contact", "referrer").pop("dynamic"),
     "creates.create_contact.inputFields.referrer.search", ()),
    ("D015", lambda a: a["searchOrCreates"]["find_contact"].update(create="make_contact"),
     "searchOrCreates.find_contact.create", ()),
    ("D016", static_hook_only, "triggers", ("D017",)),
    ("D017", lambda a: operation(a, "triggers", "new_contact_instant").pop("performUnsubscribe"),
     "triggers.new_contact_instant.performUnsubscribe", ()),
    ("D018", lambda a: display(a, "triggers", "new_contact").update(label="New contact"),
     "triggers.new_contact.display.label", ()),
    ("D018", lambda a: a["searchOrCreates"]["find_contact"]["display"].update(label="Find Or Create Contact"),
     "searchOrCreates.find_contact.display.label", ()),
    ("D021", lambda a: display(a, "triggers", "new_contact").update(description="Fires when a contact is added."),
     "triggers.new_contact.display.description", ()),
    ("D021", lambda a: display(a, "triggers", "new_contact").update(description="Triggers when a contact is added"),
     "triggers.new_contact.display.description", ()),
    ("D021", lambda a: display(a, "triggers", "contact_choices").update(description="Lists contacts."),
     "triggers.contact_choices.display.description", ()),
    ("D022", lambda a: operation(a, "creates", "create_contact").update(inputFields=["$func$2$f$"]),
     "creates.create_contact.inputFields", ()),
    ("D023", lambda a: operation(a, "triggers", "new_contact")["sample"].update(dateAdded="2024-01-02T09:00:00"),
     "triggers.new_contact.sample.dateAdded", ()),
    ("D023", lambda a: operation(a, "creates", "create_contact")["sample"].update(dateAdded="01 Aug 2023"),
     "creates.create_contact.sample.dateAdded", ()),
    ("D023", lambda a: operation(a, "searches", "find_contact")["sample"].update(updatedAt=1700000000),
     "searches.find_contact.sample.updatedAt", ()),
    ("D024", lambda a: operation(a, "triggers", "new_contact")["sample"].update(score="3"),
     "triggers.new_contact.outputFields.score", ()),
    ("D024", lambda a: operation(a, "triggers", "new_contact")["sample"].pop("email"),
     "triggers.new_contact.outputFields.email", ()),
    ("D024", lambda a: operation(a, "triggers", "new_contact")["sample"]["address"].update(city=69),
     "triggers.new_contact.outputFields.address__city", ()),
    ("P-NOUN", lambda a: a["searches"]["find_contact"].update(noun="Contacts"), "searches.find_contact.noun", ()),
    ("P-NOUN", lambda a: a["creates"]["create_contact"].update(noun="Contact in Location"),
     "creates.create_contact.noun", ()),
    ("P-KEY", lambda a: a["triggers"].update(trigger_1={**a["triggers"]["new_contact"], "key": "trigger_1"}),
     "triggers.trigger_1", ()),
    ("P-SEARCH-LABEL", lambda a: display(a, "searches", "find_contact").update(label="Get Contact"),
     "searches.find_contact.display.label", ()),
    ("P-SEARCH-DESC", lambda a: display(a, "searches", "find_contact").update(
        description="Looks up a contact by email."), "searches.find_contact.display.description", ()),
    ("P-CREATE-DESC", lambda a: display(a, "creates", "create_contact").update(description="Create a new contact."),
     "creates.create_contact.display.description", ()),
    ("P-CREATE-DESC", lambda a: display(a, "creates", "create_contact").update(description="Creates a new contact"),
     "creates.create_contact.display.description", ()),
    ("P-DESC-APP-NAME", lambda a: display(a, "creates", "create_contact").update(
        description="Creates a new contact in GoHighLevel."), "creates.create_contact.display.description", ()),
    ("P-DESC-NOUN-CAPS", lambda a: display(a, "creates", "create_contact").update(
        description="Creates a new Contact."), "creates.create_contact.display.description", ()),
    ("P-GENERIC-UPDATE", lambda a: display(a, "triggers", "new_contact").update(label="Updated Contact"),
     "triggers.new_contact.display.label", ()),
    ("P-DELETE-ACTION", lambda a: display(a, "creates", "create_contact").update(
        label="Delete Contact", description="Deletes a contact."), "creates.create_contact.display.label", ()),
    ("P-HELP-REDUNDANT", lambda a: field(a, "triggers", "new_contact", "tag").update(helpText="The contact's tag."),
     "triggers.new_contact.inputFields.tag.helpText", ()),
    ("P-COMMA-LIST", lambda a: field(a, "creates", "create_contact", "tags").update(
        list=False, helpText="Tags to add, comma-separated."), "creates.create_contact.inputFields.tags", ()),
    ("P-FIELD-ORDER", lambda a: operation(a, "creates", "create_contact")["inputFields"].insert(
        0, {"key": "firstName", "label": "First Name", "required": False}),
     "creates.create_contact.inputFields.email", ()),
    ("P-CHOICE-LABEL", lambda a: field(a, "creates", "create_contact", "status").update(choices=["open", "won"]),
     "creates.create_contact.inputFields.status.choices", ()),
    ("P-CHOICE-LABEL", lambda a: field(a, "creates", "create_contact", "channel").update(
        choices={"TYPE_CALL": "TYPE_CALL", "SMS": "SMS"}), "creates.create_contact.inputFields.channel.choices", ()),
    ("P-SAMPLE-PLACEHOLDER", lambda a: operation(a, "triggers", "new_contact")["sample"].update(firstName="string"),
     "triggers.new_contact.sample.firstName", ()),
    ("P-SAMPLE-BOOLEAN", lambda a: operation(a, "creates", "create_contact")["sample"].update(isVip="true"),
     "creates.create_contact.sample.isVip", ()),
    ("P-SAMPLE-BOOLEAN", lambda a: operation(a, "creates", "create_contact")["sample"].update(hasPhone=1),
     "creates.create_contact.sample.hasPhone", ()),
]


def test_the_compliant_app_passes_every_check():
    assert run_checks(compliant_app()) == []


@pytest.mark.parametrize("code, break_rule, where, also", BREAKS,
                         ids=[f"{code}-{n}" for n, (code, *_rest) in enumerate(BREAKS)])
def test_each_check_reports_the_rule_it_guards_where_it_is_broken(code, break_rule, where, also):
    app = compliant_app()
    break_rule(app)
    problems = run_checks(app)
    assert {p.code for p in problems} == {code, *also}, problems
    assert where in [p.where for p in problems if p.code == code], problems


def test_every_check_has_a_case_that_breaks_it_and_a_line_in_the_module_docstring():
    assert set(CHECKS) == {code for code, *_rest in BREAKS}
    for code in CHECKS:
        assert f"- {code} " in checks.__doc__, f"{code} is not described in the module docstring"


def test_what_the_checks_leave_alone():
    app = compliant_app()
    # Hidden operations: no sample, and an id input filled by the step being set up.
    assert "sample" not in operation(app, "triggers", "contact_choices")
    # Links in backticks or markdown, ISO dates with zones, prepositions either way.
    field(app, "triggers", "new_contact", "tag").update(
        helpText="Such as `https://example.com/x` or see [the guide](https://example.com/guide).")
    operation(app, "triggers", "new_contact")["sample"].update(dateAdded="2023-08-01T06:50:30-0500")
    display(app, "creates", "create_contact").update(label="Remove Tag from Contact",
                                                   description="Removes a tag from a contact.")
    display(app, "triggers", "new_contact").update(label="Updated Opportunity Status")
    assert run_checks(app) == []


@pytest.mark.parametrize("label, expected", [
    ("new contact", "New Contact"),
    ("Find Or Create Contact", "Find or Create Contact"),
    ("Add Contact To Workflow", "Add Contact to Workflow"),
    ("Remove Tag from Contact", "Remove Tag from Contact"),
    ("Remove Tag From Contact", "Remove Tag From Contact"),
    ("New Contact (instant)", "New Contact (Instant)"),
    ("Send SMS via WhatsApp", "Send SMS via WhatsApp"),
    ("the End", "The End"),
])
def test_title_case(label, expected):
    assert title_case(label) == expected


@pytest.mark.parametrize("label, is_code", [
    ("TYPE_CALL", True), ("added_desc", True), ("noshow", True), ("DRAFT", True), ("firstNameLowerCase", True),
    ("Open", False), ("SMS", False), ("WhatsApp", False), ("10", False), ("No Show", False), ("AF", False),
])
def test_raw_code(label, is_code):
    assert raw_code(label) is is_code


@pytest.mark.parametrize("key, value, bad", [
    ("dateAdded", "2023-08-01", False), ("dateAdded", "2023-09-15T09:59:59Z", False),
    ("dateAdded", "2023-08-01T06:50:30-0500", False), ("at", "2023-12-01T12:32:01-08:00", False),
    ("dateAdded", "2023-08-01T06:50:30", True), ("dateAdded", "2024-01-10 15:00:00", True),
    ("when", "01 Aug 2023", True), ("when", "01 Aug 2023 06:50:30", True), ("when", "08/01/2023", True),
    ("createdAt", 1700000000, True), ("createdAt", "1700000000000", True), ("count", 1700000000, False),
    ("name", "May", False), ("phone", "+15550100001", False),
])
def test_date_problem(key, value, bad):
    assert (date_problem(key, value) is not None) is bad


@pytest.mark.parametrize("text, bad", [
    ("See [Google](https://google.com)", False), ("See `https://google.com`", False),
    ("See <https://google.com>", False), ("See https://google.com", True), ("See [Google(https://google.com)", True),
    ("See [Google](google.com)", True), ("See www.google.com", True), ("No links here.", False),
])
def test_link_problem(text, bad):
    assert (link_problem(text) is not None) is bad


def test_unexcused_drops_problems_an_exception_covers_and_reports_stale_exceptions():
    problems = [Problem("D004", "creates.a.inputFields.locationId", "x"),
                Problem("D004", "creates.b.inputFields.locationId", "x"),
                Problem("D004", "creates.b.inputFields.contactId", "x"),
                Problem("D002", "authentication.fields.connectorKey.helpText", "x")]
    exceptions = {"D004": {"*.*.inputFields.locationId": "from the connection"},
                  "D002": {"authentication.fields.connectorKey": "the operator's key, no page to link"},
                  "D011": {"creates.a": "stale"}}
    assert unexcused(problems, exceptions) == [problems[2]]
    assert unused_exceptions(problems, exceptions) == [("D011", "creates.a")]
    # A prefix covers whole segments only.
    assert unexcused([Problem("D004", "creates.ab.inputFields.x", "x")], {"D004": {"creates.a": "?"}}) != []


# ----------------------------------------------------------------------------- the generated app


def _generated_app(connector_key_required):
    return zapier_app_definition(load_catalog(), "https://ghl.example.com", connector_key_required)


@pytest.mark.parametrize("connector_key_required", [False, True], ids=["open", "connector-key"])
def test_the_generated_app_passes_the_integration_checks(connector_key_required):
    definition = _generated_app(connector_key_required)
    started = time.perf_counter()
    problems = run_checks(definition)
    assert time.perf_counter() - started < 1.0
    open_problems = unexcused(problems)
    assert open_problems == [], (f"{len(open_problems)} integration-check problems "
                                 f"(python -m zapier_app.checks --all lists them):\n{report(open_problems, 5)}")


def test_every_justified_exception_excuses_something_and_says_why():
    problems = run_checks(_generated_app(False)) + run_checks(_generated_app(True))
    assert unused_exceptions(problems) == [], "JUSTIFIED_EXCEPTIONS has entries that excuse nothing"
    assert all(reason.strip() for entries in JUSTIFIED_EXCEPTIONS.values() for reason in entries.values())
