"""Dropdown choices: which list fills each id input of the Zapier app, and how its items read.

A *source* is data: the catalog record whose GHL list it reads, how an item becomes
``{"id", "name"}`` (a human label), and which of the Zap step's inputs narrow the list.
``GET /zapier/choices/<source>`` (``server/routes/zapier_choices.py``) serves it; the hidden
Zapier trigger ``choices_<source>`` (``choice_triggers``) calls it; ``dropdown_for`` gives an
input field its ``dynamic`` (and ``search``) reference. Pure: nothing here does I/O.

A source declares:
- ``record``: the catalog key of the GHL list read (one GHL page per call);
- ``noun``: what one choice is ("Contact");
- ``label``: templates tried in order, the first whose fields all have a value wins;
  ``{a.b}`` digs into the item (``parent.`` into the item holding a nested one), ``|date``
  shortens a timestamp, ``|code`` turns ``TYPE_CALL``/``assignedUser`` into words;
- ``id``: the item field holding the value chosen (default: the record's id field);
- ``items``: a list inside each item to offer instead (a pipeline's ``stages``);
- ``chain``: {step input: record input}: the step's value is passed on to GHL;
- ``filter``: {step input: item field}: the service keeps items whose field equals the value;
- ``requires``: step inputs of which one must be given (the list is of one contact, one
  calendar...): a step without any of them gets no dropdown, the Zapier field ``dependsOn`` it;
- ``depends``: step inputs the field ``dependsOn`` although the list works without them;
- ``fixed``: record inputs always given (the custom fields' ``model``); ``request``: GHL
  parameters always sent (a sort order, a page size GHL defaults low);
- ``page_param``: GHL's 1-based page parameter where the record pages by cursor but GHL
  also takes a page number (opportunities);
- ``sort``: ``name`` (default) or ``ghl`` (GHL's order: newest, or a pipeline's order);
- ``search``: the search that finds the id from something mappable ("map an email");
- ``enrich``: items get ``ghl.enrichment``'s keys first (an opportunity's ``stageName`` and
  ``pipelineName``), and ``outcome``, the status of one no longer open.

Besides ``CHOICE_SOURCES`` (hand-written), every generated GHL list that can fill a dropdown is
a source named by its record key (``zapier_app.list_dropdowns``), for the inputs no hand-written
source fills; ``sources(catalog)`` holds both.
"""

import functools
import re
import weakref

from catalog.pagination import pagination_style
from ghl.response_items import dig
from zapier_app import list_dropdowns

ROUTE_PREFIX = "/zapier/choices/"
TRIGGER_PREFIX = "choices_"
MAX_PAGE = 1000
MAX_LABEL_CHARS = 120

CONTACT_LABEL = ("{contactName} ({email})", "{firstName} {lastName} ({email})", "{firstName} ({email})",
                 "{name} ({email})", "{contactName} ({phone})", "{firstName} {lastName} ({phone})",
                 "{contactName}", "{firstName} {lastName}", "{email}", "{phone}", "{id}")
MESSAGE_LABEL = ("{messageType|code}, {direction}, {dateAdded|date}: {body}",
                 "{messageType|code}, {direction}, {dateAdded|date}", "{body}", "{id}")
EVENT_LABEL = ("{title} ({startTime|date})", "{title}", "{startTime|date}", "{id}")
NOTE_LABEL = ("{title}: {body}", "{body}", "{title}", "{id}")

CHOICE_SOURCES = {
    "contacts": {"record": "search_contacts", "noun": "Contact", "label": CONTACT_LABEL, "sort": "ghl",
                 "search": "find_contact"},
    "opportunities": {"record": "search_opportunities", "noun": "Opportunity", "sort": "ghl",
                      "label": ("{name} — {stageName} ({pipelineName}), {outcome}",
                                "{name} — {stageName} ({pipelineName})", "{name} — {status}", "{name}", "{id}"),
                      "enrich": True, "page_param": "page", "search": "find_opportunity"},
    "pipelines": {"record": "list_pipelines", "noun": "Pipeline", "label": ("{name}",)},
    "stages": {"record": "list_pipelines", "noun": "Pipeline Stage", "items": "stages", "sort": "ghl",
               "filter": {"pipelineId": "id", "pipeline_id": "id"}, "depends": ("pipelineId", "pipeline_id"),
               "label": ("{name} ({parent.name})", "{name}")},
    "users": {"record": "list_users_by_location", "noun": "User",
              "label": ("{name}", "{firstName} {lastName}", "{email}", "{id}")},
    "calendars": {"record": "list_calendars", "noun": "Calendar", "label": ("{name}", "{id}")},
    # Calendars of the step's group, where the group is a filter of the step (not a write).
    "group_calendars": {"record": "list_calendars", "noun": "Calendar", "label": ("{name}", "{id}"),
                        "chain": {"groupId": "groupId"}},
    "calendar_groups": {"record": "list_calendar_groups", "noun": "Calendar Group", "label": ("{name}", "{id}")},
    "workflows": {"record": "list_workflows", "noun": "Workflow", "label": ("{name}", "{id}")},
    "campaigns": {"record": "list_campaigns", "noun": "Campaign", "label": ("{name}", "{id}")},
    "contact_custom_fields": {"record": "list_custom_fields", "noun": "Contact Custom Field",
                              "fixed": {"model": "contact"}, "label": ("{name}", "{fieldKey}", "{id}")},
    "opportunity_custom_fields": {"record": "list_custom_fields", "noun": "Opportunity Custom Field",
                                  "fixed": {"model": "opportunity"}, "label": ("{name}", "{fieldKey}", "{id}")},
    "businesses": {"record": "list_businesses_by_location", "noun": "Business", "label": ("{name}", "{id}")},
    "blogs": {"record": "get_blogs_by_location", "noun": "Blog", "label": ("{name}", "{id}")},
    "blog_authors": {"record": "get_blog_authors", "noun": "Blog Author", "label": ("{name}", "{id}")},
    "blog_categories": {"record": "get_blog_categories", "noun": "Blog Category", "label": ("{label}", "{id}")},
    "blog_posts": {"record": "get_blog_posts", "noun": "Blog Post", "chain": {"blogId": "blogId"},
                   "requires": ("blogId",), "label": ("{title}", "{urlSlug}", "{id}")},
    "contact_appointments": {"record": "get_contact_appointments", "noun": "Appointment", "sort": "ghl",
                             "chain": {"contactId": "contactId"}, "requires": ("contactId",),
                             "label": EVENT_LABEL},
    "calendar_appointments": {"record": "list_calendar_events", "noun": "Appointment", "sort": "ghl",
                              "chain": {"calendarId": "calendarId"}, "requires": ("calendarId",),
                              "fixed": {"days_back": 90, "days_ahead": 365}, "label": EVENT_LABEL},
    "blocked_slots": {"record": "list_blocked_slots", "noun": "Blocked Slot", "sort": "ghl",
                      "chain": {"calendarId": "calendarId"}, "requires": ("calendarId",),
                      "fixed": {"days_back": 90, "days_ahead": 365}, "label": EVENT_LABEL},
    "contact_notes": {"record": "get_contact_notes", "noun": "Note", "sort": "ghl",
                      "chain": {"contactId": "contactId"}, "requires": ("contactId",), "label": NOTE_LABEL},
    "appointment_notes": {"record": "list_appointment_notes", "noun": "Appointment Note", "sort": "ghl",
                          "chain": {"appointmentId": "appointmentId"}, "requires": ("appointmentId",),
                          "label": NOTE_LABEL},
    "contact_tasks": {"record": "get_contact_tasks", "noun": "Task", "sort": "ghl",
                      "chain": {"contactId": "contactId"}, "requires": ("contactId",),
                      "label": ("{title} (due {dueDate|date})", "{title}", "{body}", "{id}")},
    "conversations": {"record": "search_conversations", "noun": "Conversation", "sort": "ghl",
                      "request": {"limit": 100},
                      "label": ("{fullName}: {lastMessageBody}", "{contactName}: {lastMessageBody}",
                                "{fullName}", "{contactName}", "{email}", "{phone}", "{id}")},
    # The location's latest messages (GHL lists messages outside a conversation only as an export).
    "messages": {"record": "new_inbound_message", "noun": "Message", "sort": "ghl",
                 "request": {"sortBy": "createdAt", "sortOrder": "desc"}, "label": MESSAGE_LABEL},
    "email_messages": {"record": "new_inbound_message", "noun": "Email Message", "sort": "ghl",
                       "fixed": {"channel": "Email"}, "request": {"sortBy": "createdAt", "sortOrder": "desc"},
                       "label": MESSAGE_LABEL},
    "calendar_notifications": {"record": "list_calendar_notifications", "noun": "Calendar Notification",
                               "chain": {"calendarId": "calendarId"}, "requires": ("calendarId",),
                               "label": ("{notificationType|code} by {channel|code} to {receiverType|code}: {subject}",
                                         "{notificationType|code} by {channel|code} to {receiverType|code}",
                                         "{subject}", "{id}")},
    "calendar_resources": {"record": "list_calendar_resources", "noun": "Calendar Resource",
                           "chain": {"resourceType": "resourceType"}, "requires": ("resourceType",),
                           "label": ("{name}", "{id}")},
    "associations": {"record": "find_associations", "noun": "Association",
                     "label": ("{key} ({firstObjectLabel} – {secondObjectLabel})", "{key}", "{id}")},
    # The agency of the connected location: GHL lists no agencies to a location's token.
    "agency": {"record": "find_location_by_id", "noun": "Agency", "id": "companyId",
               "label": ("Agency of {name}", "{companyId}")},
    "locations": {"record": "list_locations", "noun": "Location", "chain": {"companyId": "companyId"},
                  "label": ("{name}", "{id}")},
    "snapshots": {"record": "list_snapshots", "noun": "Snapshot", "chain": {"companyId": "companyId"},
                  "requires": ("companyId",), "label": ("{name}", "{id}")},
    # Lists GHL has that the catalog does not hold yet (PENDING_RECORDS): live once their record is.
    "tags": {"record": "list_tags", "noun": "Tag", "id": "name", "label": ("{name}",)},
    "forms": {"record": "list_forms", "noun": "Form", "label": ("{name}", "{id}")},
    "surveys": {"record": "list_surveys", "noun": "Survey", "label": ("{name}", "{id}")},
    "lost_reasons": {"record": "list_lost_reasons", "noun": "Lost Reason", "label": ("{name}", "{id}")},
}

# The GHL lists behind sources whose catalog record is still to be added, for the reason a
# field waits for it.
PENDING_RECORDS = {
    "list_tags": "GET /locations/{locationId}/tags",
    "list_forms": "GET /forms/",
    "list_surveys": "GET /surveys/",
    "list_lost_reasons": "GET /opportunities/lost-reason",
}

# Inputs by key, whatever the record: the source that fills them.
INPUT_SOURCES = {
    "contactId": "contacts", "contact_id": "contacts", "contactIds": "contacts",
    "opportunityId": "opportunities",
    "pipelineId": "pipelines", "pipeline_id": "pipelines",
    "pipelineStageId": "stages", "pipeline_stage_id": "stages", "stageId": "stages",
    "userId": "users", "userIds": "users", "assignedTo": "users", "assigned_to": "users",
    "assignedUserId": "users", "followers": "users",
    "calendarId": "calendars", "calendarIds": "calendars",
    "groupId": "calendar_groups", "workflowId": "workflows", "campaignId": "campaigns",
    "businessId": "businesses", "blogId": "blogs", "postId": "blog_posts", "taskId": "contact_tasks",
    "conversationId": "conversations",
    "messageId": "messages", "replyMessageId": "email_messages",
    "notificationId": "calendar_notifications", "resourceId": "calendar_resources",
    "associationId": "associations", "associationIds": "associations",
    "companyId": "agency", "locationIds": "locations", "snapshotId": "snapshots",
    "formId": "forms", "surveyId": "surveys", "lostReasonId": "lost_reasons",
}

# Inputs of one record: (record key, input key) -> source.
RECORD_KEY_SOURCES = {("search_users", "ids"): "users", ("create_custom_object_record", "owner"): "users",
                      ("update_custom_object_record", "owner"): "users",
                      ("upload_file_to_contact_custom_field", "customFieldId"): "contact_custom_fields"}

# Inputs whose list depends on what the record is about: (input key, path prefix) -> source
# (None: no list); the longest matching prefix wins over INPUT_SOURCES.
RECORD_INPUT_SOURCES = {
    ("contacts", "/contacts"): "contacts",
    ("author", "/blogs"): "blog_authors",
    ("categories", "/blogs"): "blog_categories",
    ("tags", "/contacts"): "tags",
    ("tag", "/contacts"): "tags",
    ("noteId", "/contacts/"): "contact_notes",
    ("noteId", "/calendars/appointments/"): "appointment_notes",
    ("appointmentId", "/conversations/messages"): "contact_appointments",
    ("appointmentId", "/calendars/appointments/"): "calendar_appointments",
    ("eventId", "/calendars/events/"): "calendar_appointments",
    ("eventId", "/calendars/events/appointments"): "calendar_appointments",
    ("eventId", "/calendars/events/block-slots"): "blocked_slots",
}

# A list of one parent (the appointments of a calendar) for a step that does not ask for the
# parent: the Zapier app adds a field of its own to pick the parent from, which narrows the
# dropdown and is never sent to the service. Parent input key -> (label, its source).
PICKER_PARENTS = {"calendarId": ("Calendar", "calendars")}

# The calendars of a group where the group filters the step (a query), not where it is written.
FILTER_PLACES = ("path", "query")

# Why a visible id input of the app has no dropdown: (record key, input key) -> reason.
NO_LIST_OF_MESSAGES_IN_STEP = ("GHL lists a message's email ids only inside the message; map it from a "
                               "trigger or a Get Message step")
ANY_RECORD = ("a record of any object (contact, business, custom object) depending on the association; "
              "map it from a trigger or search")
UNCOVERED = {
                            ("get_email_by_id", "emailMessageId"): NO_LIST_OF_MESSAGES_IN_STEP,
    ("update_message_status", "emailMessageId"): NO_LIST_OF_MESSAGES_IN_STEP,
    ("get_relations_by_record", "recordId"): ANY_RECORD,
    ("create_relation", "firstRecordId"): ANY_RECORD,
    ("create_relation", "secondRecordId"): ANY_RECORD,
    ("delete_relation", "relationId"): ("GHL lists relations only per record; map the id from the relations "
                                        "trigger or the Create Relation step"),
    ("agent_typing_indicator", "visitorId"): "a live-chat visitor's id, which only the chat widget knows",
    ("send_message", "threadId"): "GHL has no list of email threads; map it from a message",
    ("send_message", "conversationProviderId"): "GHL has no list of conversation providers for a location",
    ("send_message", "templateId"): ("GHL lists templates only by origin (originId), which the connection "
                                     "does not know"),
    ("create_calendar_notification", "templateId"): ("GHL lists templates only by origin (originId), which "
                                                     "the connection does not know"),
    ("update_notification", "templateId"): ("GHL lists templates only by origin (originId), which the "
                                            "connection does not know"),
    ("create_appointment", "meetingLocationId"): ("GHL has no list of a calendar's meeting locations; left "
                                                  "blank, the calendar's default is used"),
    ("update_appointment", "meetingLocationId"): ("GHL has no list of a calendar's meeting locations; left "
                                                  "blank, the calendar's default is used"),
    ("create_calendar_notification", "additionalEmailIds"): "email addresses, not GHL ids",
    ("update_notification", "additionalEmailIds"): "email addresses, not GHL ids",
    ("update_custom_object_record", "id"): ("a record of the custom object the step names by its key, which a "
                                            "dropdown cannot know beforehand; map it from a trigger or search"),
    ("upload_media_file", "parentId"): ("a folder of the media library, which GHL lists only among its files; "
                                        "left blank, the file goes to the library's top level"),
    ("upload_custom_field_file", "id"): ("a contact's, an opportunity's or a custom field's id, by the field the "
                                         "file is for; map it from a trigger or search"),
}


@functools.lru_cache(maxsize=1)
def _default_catalog():
    from catalog.registry import load_catalog
    return load_catalog()


def _catalog(catalog):
    return _default_catalog() if catalog is None else catalog


def sources(catalog=None):
    """{name: source}: the hand-written sources, then the generated lists that fill an input
    (a list no input asks for gets no hidden trigger)."""
    catalog = _catalog(catalog)
    generated = list_dropdowns.usable_lists(catalog)
    used = _used_lists(catalog)
    return {**CHOICE_SOURCES, **{name: generated[name] for name in generated
                                 if name in used and name not in CHOICE_SOURCES}}


def _used_lists(catalog):
    try:
        return _USED_LISTS[catalog]
    except (KeyError, TypeError):
        pass
    used = {list_dropdowns.list_for_input(record, field, catalog) for record in catalog
            for field in record["inputs"] if not field.get("choices") and not field.get("location")
            and _record_about(record, field) is None}
    used.discard(None)
    try:
        _USED_LISTS[catalog] = used
    except TypeError:
        pass
    return used


_USED_LISTS = weakref.WeakKeyDictionary()


def find_source(name, catalog=None):
    """Source ``name`` (hand-written or a generated list), or None."""
    if name in CHOICE_SOURCES:
        return CHOICE_SOURCES[name]
    return sources(catalog).get(name) if isinstance(name, str) else None


def available(name, catalog=None):
    """Whether source ``name`` exists and its catalog record is loaded."""
    found = find_source(name, catalog)
    return found is not None and _catalog(catalog).get(found["record"]) is not None


def step_keys(source):
    """The step inputs a source's trigger passes on: chained, filtering and required ones."""
    keys = list(source.get("chain", {})) + list(source.get("filter", {}))
    keys += [k for k in source.get("requires", ()) + source.get("depends", ()) if k not in keys]
    return list(dict.fromkeys(keys))


# ----------------------------------------------------------------------------- which source fills an input

CUSTOM_FIELD_SLOT = re.compile(r"^custom_field_\d+_id$")


def _record_about(record, field):
    """The hand-written source (declared, maybe not yet available) for ``field`` of ``record``, or None."""
    key = field["key"]
    if CUSTOM_FIELD_SLOT.match(key):
        model = (record.get("custom_fields") or {}).get("model")
        if model is None:
            model = "opportunity" if record["path"].startswith("/opportunities") else "contact"
        return f"{model}_custom_fields"
    if (record["key"], key) in RECORD_KEY_SOURCES:
        return RECORD_KEY_SOURCES[(record["key"], key)]
    matches = [(len(prefix), name) for (input_key, prefix), name in RECORD_INPUT_SOURCES.items()
               if input_key == key and record["path"].startswith(prefix)]
    if matches:
        return max(matches, key=lambda match: match[0])[1]
    return INPUT_SOURCES.get(key)


def declared_source(record, field, catalog=None):
    """The source meant for ``field`` of ``record``, whether or not its record is in the catalog;
    None when no list fits, or the step lacks the input the list is of."""
    if field.get("choices") or field.get("location"):
        return None
    name = _record_about(record, field)
    if name is None:
        return list_dropdowns.list_for_input(record, field, _catalog(catalog))
    found = CHOICE_SOURCES.get(name)
    if found is None or found["record"] == record["key"]:
        return None
    inputs = {f["key"]: f for f in record["inputs"]}
    if found.get("requires") and not any(k in inputs for k in found["requires"]) \
            and not any(k in PICKER_PARENTS for k in found["requires"]):
        return None
    if name == "calendars" and inputs.get("groupId", {}).get("in") in FILTER_PLACES:
        return "group_calendars"
    return name


def source_for_input(record, field, catalog=None):
    """The source that fills ``field`` (a catalog input) of ``record``, or None."""
    name = declared_source(record, field, catalog)
    return name if name is not None and available(name, catalog) else None


def uncovered_reason(record, field, catalog=None):
    """Why ``field`` of ``record`` has no dropdown (None when it has one, or no reason is known)."""
    if source_for_input(record, field, catalog):
        return None
    name = declared_source(record, field, catalog)
    if name is not None:
        pending = find_source(name, catalog)["record"]
        return (f"GHL lists them ({PENDING_RECORDS.get(pending, pending)}), but the catalog has no record "
                f"{pending} yet")
    return UNCOVERED.get((record["key"], field["key"]))


# ----------------------------------------------------------------------------- the Zapier side


def _pages(source, record):
    if source.get("items") or source.get("filter") or record is None:
        return False
    kind = pagination_style(record["response"].get("pagination", "none"))["kind"]
    return kind in ("page", "offset") or bool(source.get("page_param"))


def pages(name, catalog=None):
    """Whether source ``name`` answers further pages for Zapier's "load more"."""
    found = find_source(name, catalog)
    return _pages(found, _catalog(catalog).get(found["record"]))


def picker_fields(record, field, catalog=None):
    """Zapier-only fields for ``field``: the parents its list is of that the step does not ask for
    (``PICKER_PARENTS``), each a dropdown of its own. Their values fill the dropdown (Zapier
    passes the step's values to it) and are never sent: the request body holds only the record's
    inputs. Optional, so they follow the required fields; no ``dependsOn``, which would keep a
    mapped value out until the parent is picked."""
    name = source_for_input(record, field, catalog)
    if name is None:
        return []
    requires = find_source(name, catalog).get("requires", ())
    inputs = {f["key"] for f in record["inputs"]}
    if not requires or any(k in inputs for k in requires):
        return []
    pickers = []
    for key in requires:
        if key in PICKER_PARENTS and available(PICKER_PARENTS[key][1], catalog):
            label, parent = PICKER_PARENTS[key]
            pickers.append({"key": key, "label": label, "type": "string", "required": False,
                            "dynamic": f"{TRIGGER_PREFIX}{parent}.id.name",
                            "helpText": f"Pick it to fill the {field['label']} dropdown with that "
                                        f"{label.lower()}'s entries; it is not sent to GHL, and not needed "
                                        f"when you map the {field['label']} from an earlier step."})
    return pickers


def dropdown_for(record, field, catalog=None, kind=None):
    """The Zapier field properties that make ``field`` of ``record`` a dropdown (and, where a
    search finds the id, a search-powered field), or None. ``kind``: how the app presents the
    record (``trigger``, ``search``, ``create``); default its catalog kind. Zapier offers a
    search step only on actions, so triggers get no ``search``."""
    name = source_for_input(record, field, catalog)
    if name is None:
        return None
    found = find_source(name, catalog)
    properties = {"dynamic": f"{TRIGGER_PREFIX}{name}.id.name"}
    search = found.get("search")
    if search and search != record["key"] and (kind or record["kind"]) != "trigger" \
            and _catalog(catalog).get(search) is not None:
        properties["search"] = f"{search}.id"
    inputs = {f["key"] for f in record["inputs"]}
    depends = [k for k in found.get("requires", ()) + found.get("depends", ()) if k in inputs and k != field["key"]]
    if depends:
        properties["dependsOn"] = depends
    return properties


def _sample(source):
    return {"id": f"sample-{source['noun'].lower().replace(' ', '-')}-1", "name": f"Sample {source['noun']}"}


SERVICE_WORDS = {"saas": "SaaS", "api": "API", "ai": "AI", "isv": "ISV", "oauth": "OAuth"}


def _display(name, found):
    """A generated list's trigger is named by its noun and service ("Agent Dropdown (Voice AI)"):
    two services list agents."""
    if found.get("generated"):
        service = " ".join(SERVICE_WORDS.get(w, w.capitalize()) for w in found["service"].split("-") if w)
        return (f"{found['noun']} Dropdown ({service})",
                f"Triggers when Zapier loads the {found['noun'].lower()} choices ({service}) for a dropdown.")
    title = name.replace("_", " ")
    return f"{title.title()} Dropdown", f"Triggers when Zapier loads the {title} to choose from in a dropdown."



def choice_trigger(name, server_url, catalog=None):
    """The hidden polling trigger ``choices_<name>``, which fills dropdowns of source ``name``."""
    found = find_source(name, catalog)
    noun = found["noun"]
    params = {key: "{{bundle.inputData.%s}}" % key for key in step_keys(found)}
    params["page"] = "{{bundle.meta.page}}"
    operation = {
        "type": "polling",
        "perform": {"url": f"{server_url.rstrip('/')}{ROUTE_PREFIX}{name}", "method": "GET", "params": params,
                    "removeMissingValuesFrom": {"params": True}},
        "sample": _sample(found),
        "outputFields": [{"key": "id", "label": f"{noun} ID", "type": "string"},
                         {"key": "name", "label": noun, "type": "string"}],
    }
    if pages(name, catalog):
        operation["canPaginate"] = True
    label, description = _display(name, found)
    return {
        "key": TRIGGER_PREFIX + name,
        "noun": noun,
        "display": {"label": label, "description": description, "hidden": True},
        "operation": operation,
    }


def choice_triggers(server_url, catalog=None):
    """{trigger key: trigger}: one hidden trigger per source whose catalog record is loaded."""
    return {TRIGGER_PREFIX + name: choice_trigger(name, server_url, catalog)
            for name in sources(catalog) if available(name, catalog)}


# ----------------------------------------------------------------------------- items as choices

PLACEHOLDER = re.compile(r"{([A-Za-z0-9_.]+)(?:\|(date|code))?}")
WORD_BREAK = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|_+")
CODE_WORDS = {"sms": "SMS", "mms": "MMS", "gmb": "Google Business", "ivr": "IVR", "rcs": "RCS"}


def _as_words(code):
    """``TYPE_CALL`` -> ``call``, ``assignedUser`` -> ``assigned user``, ``sms`` -> ``SMS``."""
    text = str(code)
    if text.startswith("TYPE_"):
        text = text[len("TYPE_"):]
    return " ".join(CODE_WORDS.get(w.lower(), w.lower()) for w in WORD_BREAK.split(text) if w)


def _text(value, style):
    if value is None or value == "" or isinstance(value, (dict, list)):
        return None
    # Cut before cleaning: a label shows MAX_LABEL_CHARS, and GHL text can be anyone's (an email body).
    text = " ".join(re.sub(r"<[^<>]*>", " ", str(value)[:4 * MAX_LABEL_CHARS]).split())
    if style == "date":
        text = text.replace("T", " ")[:16]
    elif style == "code":
        text = _as_words(text)
    return text or None


def render_label(templates, item):
    """The first of ``templates`` whose placeholders all have a value in ``item``, filled in."""
    for template in templates:
        values = {}
        for match in PLACEHOLDER.finditer(template):
            text = _text(dig(item, match.group(1)), match.group(2))
            if text is None:
                break
            values[match.group(0)] = text
        else:
            label = PLACEHOLDER.sub(lambda m: values[m.group(0)], template)
            if re.match(r"{[^}]*\|code}", template):
                label = label[:1].upper() + label[1:]  # words of a code start the sentence
            return label if len(label) <= MAX_LABEL_CHARS else label[:MAX_LABEL_CHARS - 1] + "…"
    return None


def choices_from(name, items, record, step_inputs, catalog=None):
    """``items`` (one GHL page for source ``name``'s ``record``) as ``[{"id", "name"}]``, filtered
    by ``step_inputs``, without repeats, sorted as the source says."""
    source = find_source(name, catalog)
    filtered = False
    for step_key, item_field in source.get("filter", {}).items():
        wanted = step_inputs.get(step_key)
        if wanted not in (None, ""):
            items = [item for item in items if str(dig(item, item_field)) == str(wanted)]
            filtered = True
    if source.get("items"):
        # Items of one chosen parent need not name it; those of every parent do ("{parent.name}").
        items = [{**child, "parent": None if filtered else parent} for parent in items
                 for child in (dig(parent, source["items"]) or []) if isinstance(child, dict)]
    id_fields = [source["id"]] if source.get("id") else [record["response"].get("id_field") or "id", "id", "_id"]
    choices, seen = [], set()
    for item in items:
        if source.get("enrich") and item.get("status") not in (None, "open"):
            item = {**item, "outcome": item["status"]}
        ident = next((item.get(f) for f in id_fields if item.get(f) not in (None, "")), None)
        if ident is None or isinstance(ident, (dict, list)) or str(ident) in seen:
            continue
        seen.add(str(ident))
        choices.append({"id": str(ident), "name": render_label(source["label"], item) or str(ident)})
    if source.get("sort", "name") == "name":
        choices.sort(key=lambda choice: (choice["name"].casefold(), choice["id"]))
    return choices


def start_position(name, record, page, catalog=None):
    """The paging parameters of Zapier's page ``page`` (0-based) of source ``name``; None when
    the source has no such page (it answers one page only)."""
    source = find_source(name, catalog)
    style = pagination_style(record["response"].get("pagination", "none"))
    if page == 0:
        return {}
    if not _pages(source, record):
        return None
    if source.get("page_param"):
        return {source["page_param"]: page + 1}
    if style["kind"] == "page":
        return {style["param"]: style["first"] + page}
    size = next((f.get("default") for f in record["inputs"] if f["key"] == style["size_param"]), None)
    return {style["param"]: page * int(size or style["size"])}
