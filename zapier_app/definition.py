"""The Zapier app definition, generated from the catalog: ``zapier_app_definition``.

``python -m zapier_app`` writes it as a Zapier Platform CLI app; ``GET /zapier/app.json`` serves
the same definition.

The translation, record by record:
- every trigger is a polling trigger on ``POST /triggers/<key>``; the list triggers of things
  that appear (contacts, opportunities, appointments, notes, tasks, conversations, messages,
  users, businesses) also get an instant (REST hook) twin on ``/hooks``;
- a trigger named for its event ("New Contact", "Contact Tag Added", "Invoice Paid": a name
  that does not start with a request verb such as Get or List) is labelled with its name, and
  when it fires on a list of new items or changes it gets an instant twin too. Other triggers'
  labels are derived from their nouns ("New Pipeline", "Updated Contact");
- searches and actions (plus the generic API Request) are searches and creates on
  ``POST /actions/<key>``, with Find or Create Contact and Find or Create Opportunity as
  search-or-creates;
- inputs become Zapier input fields; id inputs that a list trigger can enumerate become
  dynamic dropdowns; samples and output fields are the record's sample as the service answers it.

Functions in the definition are Zapier's serialized placeholders (``$func$2$f$``); ``index.js``
replaces each with the real one and refuses to load if one is left over. Pure: no I/O.
"""

import json
import re

from actions.api_request import API_REQUEST
from actions.execute import shape_action_result, shape_search_result
from catalog.registry import KEY_PATTERN
from ghl.response_items import wrap
from triggers.identity import candidate_for

ZAPIER_PLATFORM_VERSION = "19.1.0"
DEFAULT_APP_VERSION = "1.0.0"
INSTANT_SUFFIX = "_instant"

# Zapier's serialized function pointers: arity 2 (z, bundle) and 3 (request, z, bundle).
FUNCTION_2 = "$func$2$f$"
FUNCTION_3 = "$func$3$f$"

INPUT_TYPES = {
    "string": "string",
    "text": "text",
    "integer": "integer",
    "number": "number",
    "boolean": "boolean",
    "datetime": "datetime",
    "json": "json",
}

# Trigger labels read as events: "New <noun>" for new items, "Updated <noun>" for triggers that
# fire on changes. These replace the derived label where two triggers would share it or where
# the noun alone would not say what fires.
TRIGGER_LABELS = {
    "list_contacts_deprecated": "New Contact (Deprecated List)",
    "search_opportunities": "New Opportunity Matching Search",
    "get_contacts_by_business": "New Contact in Business",
    "search_contacts": "New Contact Matching Search",
    "get_duplicate_contact": "Updated Contact Matching Email or Phone",
    "get_contact_appointments": "New Contact Appointment",
    "get_contact_notes": "New Contact Note",
    "get_contact_note_by_id": "Updated Contact Note",
    "get_contact_tasks": "New Contact Task",
    "get_contact_task_by_id": "Updated Contact Task",
    "filter_users_by_email": "New User Matching Email",
    "search_users": "New User Matching Search",
    "download_transcription": "Updated Call Transcription File",
    "get_message_transcription": "Updated Call Transcription",
    "get_message_recording": "Updated Call Recording",
    "get_association_key": "Updated Association by Key Name",
    "get_association_by_keys": "Updated Association by Object Key",
    "check_blog_url_slug": "Updated Blog URL Slug Availability",
}

# Action labels are the catalog names (already imperatives) except these.
ACTION_LABELS = {
    "agent_typing_indicator": "Send Agent Typing Indicator",
    "bulk_business_update": "Set Business for Contacts",
    "upsert_contact": "Create or Update Contact",
    "upsert_opportunity": "Create or Update Opportunity",
    "api_request": "Send API Request",
}

# List triggers whose "new item" is configuration nobody automates on: they stay available to
# the dropdowns they serve and are hidden from the trigger list.
DROPDOWN_ONLY_TRIGGERS = ("list_pipelines", "list_workflows", "list_campaigns", "list_custom_fields")

# The first word of a trigger name that names its request (the seed's "Get Contact", "List
# Pipelines"); any other first word means the name says what fires ("New Order", "Invoice Paid").
REQUEST_VERBS = ("Get", "List", "Search", "Filter", "Find", "Check", "Download", "Fetch", "Read", "Retrieve",
                 "Export", "Lookup", "Look", "Query", "Count", "Validate", "Verify")

# Instant twins: list triggers (new items) of these nouns, i.e. things that appear and matter.
INSTANT_NOUNS = ("Contact", "Opportunity", "Appointment", "Note", "Task", "Conversation", "Message", "User",
                 "Business")
INSTANT_NOTE = (" Instant: this server checks GHL on its own schedule (every minute by default) and "
                "pushes what is new to Zapier.")

# Dynamic dropdowns: an input with one of these keys is filled from the list trigger named,
# showing its items' ``id`` and label field.
DROPDOWNS = {
    "pipelineId": ("list_pipelines", "name"),
    "pipeline_id": ("list_pipelines", "name"),
    "calendarId": ("list_calendars", "name"),
    "groupId": ("list_calendar_groups", "name"),
    "userId": ("list_users_by_location", "name"),
    "assignedTo": ("list_users_by_location", "name"),
    "assigned_to": ("list_users_by_location", "name"),
    "assignedUserId": ("list_users_by_location", "name"),
    "workflowId": ("list_workflows", "name"),
    "campaignId": ("list_campaigns", "name"),
    "businessId": ("list_businesses_by_location", "name"),
    "blogId": ("get_blogs_by_location", "name"),
    "author": ("get_blog_authors", "name"),
    "categories": ("get_blog_categories", "label"),
}
CUSTOM_FIELD_ID = re.compile(r"^custom_field_\d+_id$")
CUSTOM_FIELD_DROPDOWN = ("list_custom_fields", "name")
# Zapier fills a dropdown by running its trigger with the inputs of the step being set up, so
# an input the trigger shares with that step is passed on. Shared keys are allowed only where
# that is the intended chain (calendars within the step's calendar group).
CHAINED_INPUTS = {"list_calendars": {"groupId"}}

SEARCH_OR_CREATES = [("find_contact", "create_contact", "Find or Create Contact"),
                     ("find_opportunity", "create_opportunity", "Find or Create Opportunity")]

ISO_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")
WORD_BREAK = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|_+")
ACRONYMS = {"id": "ID", "ghl": "GHL", "url": "URL", "dnd": "DND", "html": "HTML", "ids": "IDs"}


def _label_from_key(key):
    words = [w for w in WORD_BREAK.split(key) if w]
    return " ".join(ACRONYMS.get(w.lower(), w[:1].upper() + w[1:]) for w in words) or key


def _sentence(text):
    text = (text or "").strip()
    return text if text.endswith((".", "!", "?")) else text + "."


def _choice_text(value):
    return json.dumps(value) if isinstance(value, bool) else str(value)


# ----------------------------------------------------------------------------- requests


def _inputs_template(record):
    return {field["key"]: "{{bundle.inputData.%s}}" % field["key"] for field in record["inputs"]}


def _post(url, record):
    return {"url": url, "method": "POST", "body": _inputs_template(record),
            "removeMissingValuesFrom": {"body": True}}


def request_template(connector_key_required):
    """Headers every request to this service carries (Zapier's app-wide ``requestTemplate``)."""
    headers = {
        "Authorization": "Bearer {{bundle.authData.token}}",
        "X-Location-Id": "{{bundle.authData.locationId}}",
        "Accept": "application/json",
    }
    if connector_key_required:
        headers["X-Connector-Key"] = "{{bundle.authData.connectorKey}}"
    return {"headers": headers}


def authentication(server_url, connector_key_required):
    fields = [
        {"key": "token", "label": "GHL Token", "type": "password", "required": True,
         "helpText": "A GHL **Private Integration token** (in the sub-account or agency: Settings > "
                     "Private Integrations, with the scopes of the operations you use) or an **OAuth "
                     "access token** (it expires in about a day and is not refreshed). This server "
                     "passes it on to GHL and keeps it, encrypted, only for instant triggers."},
        {"key": "locationId", "label": "Location ID", "type": "string", "required": True,
         "helpText": "The GHL sub-account (location) id: Settings > Business Profile, or the part after "
                     "`/location/` in the GHL address bar. Every Location ID field you leave blank uses "
                     "it, and the connection test reads this location with the token."},
    ]
    if connector_key_required:
        fields.append(
            {"key": "connectorKey", "label": "Connector Key", "type": "password", "required": True,
             "helpText": "The `CONNECTOR_KEY` this server was started with (ask whoever runs it). "
                         "The server refuses requests without it."})
    return {
        "type": "custom",
        "fields": fields,
        "test": {"url": f"{server_url}/auth/test", "method": "GET"},
        "connectionLabel": FUNCTION_2,
    }


# ----------------------------------------------------------------------------- fields


def _dropdown_for(field, record, catalog):
    """The ``dynamic`` reference for ``field`` of ``record``, or None."""
    key = field["key"]
    if field.get("choices") or field.get("location"):
        return None
    target = CUSTOM_FIELD_DROPDOWN if CUSTOM_FIELD_ID.match(key) else DROPDOWNS.get(key)
    if target is None:
        return None
    trigger_key, label_field = target
    trigger = catalog.get(trigger_key)
    if trigger is None or trigger["kind"] != "trigger" or trigger_key == record["key"]:
        return None
    passed_on = {f["key"] for f in trigger["inputs"] if not f.get("location")} - CHAINED_INPUTS.get(trigger_key, set())
    if passed_on & ({f["key"] for f in record["inputs"]} - {key}):
        return None
    return f"{trigger_key}.id.{label_field}"


def input_field(field, record, catalog):
    """One catalog input as a Zapier input field."""
    zapier = {"key": field["key"], "label": field["label"], "type": INPUT_TYPES[field.get("type", "string")]}
    # The service fills location inputs from the connection and blank inputs from their
    # defaults (or from the input named by ``default_input``), so none of them needs the user.
    zapier["required"] = (bool(field.get("required")) and not field.get("location") and field.get("default") is None
                          and not field.get("default_input"))
    if field.get("help_text"):
        zapier["helpText"] = field["help_text"][:1000]
    if field.get("list"):
        zapier["list"] = True
    if field.get("choices"):
        zapier["choices"] = [_choice_text(c) for c in field["choices"]]
    if field.get("default") is not None:
        zapier["default"] = _choice_text(field["default"])
    dynamic = _dropdown_for(field, record, catalog)
    if dynamic:
        zapier["dynamic"] = dynamic
    return zapier


def _output_type(value):
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str) and ISO_DATETIME.match(value):
        return "datetime"
    return "string"


def output_fields(sample, labels=None):
    """Output fields for the keys of an answered ``sample``: scalars, lists of scalars, and the
    scalars of nested objects (Zapier's ``parent__child``)."""
    labels = labels or {}
    fields = []

    def add(key, value, label):
        if isinstance(value, dict):
            for sub_key, sub_value in value.items():
                if not isinstance(sub_value, (dict, list)):
                    add(f"{key}__{sub_key}", sub_value, f"{label} {_label_from_key(sub_key)}")
            return
        field = {"key": key, "label": labels.get(key, label)}
        if isinstance(value, list):
            if not value or any(isinstance(v, (dict, list)) for v in value):
                return
            field["list"] = True
            value = value[0]
        if value is not None:
            field["type"] = _output_type(value)
        fields.append(field)

    for key, value in sample.items():
        add(key, value, _label_from_key(key))
    return fields


# ----------------------------------------------------------------------------- samples


def answered_sample(record):
    """The record's sample as the service answers it: shaped by the same code that shapes live answers."""
    sample = record["sample"]
    if record["kind"] == "trigger":
        return candidate_for(record, sample).item
    if record["kind"] == "search":
        found = shape_search_result(record, wrap(record["response"].get("items"), sample))
        return found[0] if found else dict(sample)
    return shape_action_result(record, wrap(record["response"].get("items"), sample))


def _trigger_output_labels(record):
    if record["response"].get("dedupe") == "changes":
        return {"id": "Change ID", "ghl_id": f"{record.get('noun', 'Record')} ID"}
    watch = record["response"].get("watch") or {}
    if watch and watch.get("event") != "created":
        return {"id": "Change ID", "ghl_id": "GHL ID"}
    return {"id": "ID", "ghl_id": "GHL ID"}


# ----------------------------------------------------------------------------- operations


def names_its_event(record):
    """Whether the trigger's name says what fires ("New Contact", "Opportunity Stage Changed")
    rather than which request it polls ("Get Contact", "List Pipelines")."""
    words = record["name"].split()
    return bool(words) and words[0] not in REQUEST_VERBS


def trigger_label(record, catalog=None):
    """The trigger's label: its name when that names the event, else "New <noun>" or "Updated
    <noun>" (or ``TRIGGER_LABELS``). A derived label that an event-named trigger of ``catalog``
    already has is followed by the trigger's own name, so no two triggers share a label."""
    if names_its_event(record):
        return record["name"]
    if record["key"] in TRIGGER_LABELS:
        return TRIGGER_LABELS[record["key"]]
    event = "Updated" if record["response"].get("dedupe") == "changes" else "New"
    label = f"{event} {record.get('noun') or record['name']}"
    if catalog is not None and any(names_its_event(r) and r["name"] == label for r in catalog.of_kind("trigger")):
        label = f"{label} ({record['name']})"
    return label


def wants_instant_twin(record):
    """List triggers of new items or changes get a REST hook twin: those of the nouns of things
    that appear, and every trigger named for its event (a change, a payment, a submission)."""
    response = record["response"]
    return (not response.get("single") and response.get("dedupe") == "new"
            and record["key"] not in DROPDOWN_ONLY_TRIGGERS
            and (record.get("noun") in INSTANT_NOUNS or names_its_event(record)))


def _display(label, description, hidden=False):
    display = {"label": label[:64], "description": _sentence(description)[:1000]}
    if hidden:
        display["hidden"] = True
    return display


def _fields(record, catalog):
    return [input_field(field, record, catalog) for field in record["inputs"]]


def polling_trigger(record, server_url, catalog):
    sample = answered_sample(record)
    return {
        "key": record["key"],
        "noun": record.get("noun") or record["name"],
        "display": _display(trigger_label(record, catalog), record["summary"],
                            hidden=record["key"] in DROPDOWN_ONLY_TRIGGERS),
        "operation": {
            "type": "polling",
            "perform": _post(f"{server_url}/triggers/{record['key']}", record),
            "inputFields": _fields(record, catalog),
            "sample": sample,
            "outputFields": output_fields(sample, _trigger_output_labels(record)),
        },
    }


def instant_trigger(record, server_url, catalog):
    """The REST hook twin of a polling trigger: same inputs, same items, pushed by the service."""
    polling = polling_trigger(record, server_url, catalog)
    key = record["key"] + INSTANT_SUFFIX
    subscribe_body = {
        "trigger": record["key"],
        "target_url": "{{bundle.targetUrl}}",
        "inputs": _inputs_template(record),
    }
    return {
        "key": key,
        "noun": polling["noun"],
        "display": _display(f"{trigger_label(record, catalog)} (Instant)", record["summary"] + INSTANT_NOTE),
        "operation": {
            "type": "hook",
            # index.js: the delivered JSON array is the list of items.
            "perform": FUNCTION_2,
            # index.js sends this request itself: Zapier leaves a nested {{curly}} unrendered when
            # its input is missing, so the function renders it and leaves missing inputs out.
            "performSubscribe": {"url": f"{server_url}/hooks", "method": "POST", "body": subscribe_body},
            "performUnsubscribe": {"url": server_url + "/hooks/{{bundle.subscribeData.id}}", "method": "DELETE"},
            # The service's sample of recent items, shaped exactly as deliveries are.
            "performList": {"url": f"{server_url}/hooks/sample/{record['key']}", "method": "GET",
                            "params": _inputs_template(record), "removeMissingValuesFrom": {"params": True}},
            "inputFields": polling["operation"]["inputFields"],
            "sample": polling["operation"]["sample"],
            "outputFields": polling["operation"]["outputFields"],
        },
    }


def action(record, server_url, catalog):
    """A search or a create on ``POST /actions/<key>``."""
    sample = answered_sample(record)
    label = ACTION_LABELS.get(record["key"], record["name"])
    return {
        "key": record["key"],
        "noun": record.get("noun") or record["name"],
        "display": _display(label, record["summary"]),
        "operation": {
            "perform": _post(f"{server_url}/actions/{record['key']}", record),
            "inputFields": _fields(record, catalog),
            "sample": sample,
            "outputFields": output_fields(sample),
        },
    }


def search_or_creates(searches, creates):
    combos = {}
    for search_key, create_key, label in SEARCH_OR_CREATES:
        if search_key in searches and create_key in creates:
            noun = searches[search_key]["noun"].lower()
            article = "an" if noun[:1] in "aeiou" else "a"
            combos[search_key] = {
                "key": search_key,
                "display": {"label": label,
                            "description": f"Finds {article} {noun}, and creates one when none matches."},
                "search": search_key,
                "create": create_key,
            }
    return combos


def zapier_app_definition(catalog, server_url, connector_key_required, version=DEFAULT_APP_VERSION):
    """The Zapier app definition (a JSON-ready dict) for the service at ``server_url``.

    ``connector_key_required``: the server has a CONNECTOR_KEY, so the connection asks for it
    and every request sends it. Functions are Zapier's placeholders; ``index.js`` fills them in.
    """
    server_url = server_url.rstrip("/")
    triggers, searches, creates = {}, {}, {}
    for record in catalog.of_kind("trigger"):
        triggers[record["key"]] = polling_trigger(record, server_url, catalog)
        if wants_instant_twin(record):
            twin = instant_trigger(record, server_url, catalog)
            triggers[twin["key"]] = twin
    for record in catalog.of_kind("search"):
        searches[record["key"]] = action(record, server_url, catalog)
    for record in catalog.of_kind("action"):
        creates[record["key"]] = action(record, server_url, catalog)
    creates[API_REQUEST["key"]] = action(API_REQUEST, server_url, catalog)
    for group in (triggers, searches, creates):
        for key in group:
            if not KEY_PATTERN.match(key):
                raise ValueError(f"{key!r} breaks Zapier's key rule")
    return {
        "version": version,
        "platformVersion": ZAPIER_PLATFORM_VERSION,
        "authentication": authentication(server_url, connector_key_required),
        "requestTemplate": request_template(connector_key_required),
        # index.js: adds X-Subscriber-Id (the Zap) and X-Poll-Mode (samples, dropdowns) to polls.
        "beforeRequest": [FUNCTION_3],
        "triggers": triggers,
        "searches": searches,
        "creates": creates,
        "searchOrCreates": search_or_creates(searches, creates),
    }
