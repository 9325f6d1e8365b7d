"""How the Zapier app presents each catalog operation: its role, labels, descriptions, noun and
input fields. Pure functions over catalog records; general rules first, then tables of overrides
where a rule cannot say it.

Sources for the rules (zapier/visual-builder, the markdown of platform.zapier.com): the
integration checks reference (D002 auth help links, D008 links, D011 help text, D018 title case,
D021 "Triggers when …."), and the publishing requirements: 4.1/5.1/6.2 (labels, singular nouns,
descriptions "Triggers when…", "Creates…", "Finds…" without the platform's name or a capitalised
noun; "Use 'Find' over 'Get'"), 4.2.1/5.2.1/6.3.1 (no "<Object> ID" fields where a dropdown
exists), 4.2.2 (help text that adds something), 4.4 (Zapier polls every 1 to 15 minutes by
plan), 4.9 (no generic "Updated <object>" trigger).

``role(record)`` decides how a record appears; each class, and why:

- ``trigger`` -- a list trigger of things that appear or change ("New Contact", "Contact Tag
  Added", "New Contact Note"): an event a Zap starts from. Event-named triggers and list
  triggers of records people act on may also get an instant twin (``wants_instant_twin``).
- ``search`` -- a single-record read ("Get Contact" is "Find Contact by ID"). As a trigger
  ("Updated Contact") it fired once with the record and again whenever that one record, picked
  while building the Zap, changed: a generic "Updated <object>" trigger, which the publishing
  requirements (4.9) advise against and which the location-wide change triggers (Contact Field
  Changed, Opportunity Stage/Status Changed, Appointment Status Changed) do better. What a Zap
  builder needs from it is a look-up: a trigger gives an id (an appointment's contactId), the
  step finds the record. Also the list triggers that are look-ups (``LOOKUP_TRIGGERS``): users
  by email or matching a search, and lists of one record named by an id no dropdown offers (an
  appointment's notes, a record's relations), which a trigger could only get typed in. The
  service runs these on ``POST /actions/<key>``.
- ``dropdown`` -- a list trigger of configuration (pipelines, workflows, calendars, tags, forms,
  custom fields...: ``CONFIGURATION_NOUNS``). A new pipeline is not an event anyone automates;
  the list matters as the choices of a dropdown. Hidden, not removed: Zapier keeps hidden
  triggers working for Zaps that already use them.
- ``omit`` -- not in the app (``OMITTED`` says why for each): answers that are neither an event
  nor a record to find (a slug's availability, a date-keyed map of free slots no Zap step can
  map), files the service cannot pass on, and duplicates of a better operation.
- ``create`` and ``search`` -- the catalog's actions and searches, as they are.
"""

import json
import re

from zapier_app import choices as dropdowns
from zapier_app.checks import title_case  # the rule the D018 check applies

# ----------------------------------------------------------------------------- words

CAMEL_BREAK = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|_+")
VOWEL_SOUND = re.compile(r"^(?:[aeio]|u(?!s[aeiou]|ni))", re.IGNORECASE)


def with_article(phrase):
    """``phrase`` after "a" or "an": "an opportunity", "a user"."""
    return ("an " if VOWEL_SOUND.match(phrase) else "a ") + phrase


def lower_noun(noun):
    """A noun as it reads inside a sentence: "Blog URL Slug" -> "blog URL slug"."""
    return " ".join(w if w.isupper() else w.lower() for w in noun.split())


def plural(word):
    if re.search(r"[^aeiou]y$", word):
        return word[:-1] + "ies"
    if re.search(r"(?:s|x|ch|sh)$", word):
        return word + "es"
    return word + "s"


def singular(word):
    lower = word.lower()
    if word.isupper() or not lower.endswith("s") or lower.endswith(("ss", "us", "is")) or lower == "business":
        return word
    if lower.endswith("ies"):
        return word[:-3] + "y"
    if re.search(r"(?:x|ch|sh|sses)es$", lower):
        return word[:-2]
    return word[:-1]


def _sentence(text):
    text = text.strip()
    return text if text.endswith((".", "!", "?")) else text + "."


# ----------------------------------------------------------------------------- roles

# The first word of a trigger name that names its request (the seed's "Get Contact", "List
# Pipelines"); any other first word means the name says what fires ("New Order", "Invoice Paid").
REQUEST_VERBS = ("Get", "List", "Search", "Filter", "Find", "Check", "Download", "Fetch", "Read", "Retrieve",
                 "Export", "Lookup", "Look", "Query", "Count", "Validate", "Verify")

# Items that are set-up of the location rather than records people act on: their list
# triggers only matter as dropdown choices.
CONFIGURATION_NOUNS = {"Pipeline", "Workflow", "Campaign", "Custom Field", "Tag", "Form", "Survey", "Lost Reason",
                       "Calendar", "Calendar Group", "Calendar Notification", "Calendar Resource", "Association",
                       "Blog", "Blog Author", "Blog Category", "Snapshot"}

# List triggers that are look-ups by what the user gives, not events.
LOOKUP_TRIGGERS = {
    "filter_users_by_email": "lists the agency's users with the emails given: a look-up by email",
    "search_users": "lists the users matching a text, type or role: a search, modelled as a trigger",
    # Lists of one record that a Zap can only name by an id typed in (no list offers it): as a
    # trigger, useless; as a search, the id comes from an earlier step.
    "list_appointment_notes": "the notes of one appointment, named by its id (GHL lists appointments only per "
                              "contact or calendar)",
    "get_relations_by_record": "the relations of one record of any object, named by its id",
}

OMITTED = {
    "check_blog_url_slug": ("answers whether a slug is taken ({exists: bool}): neither an event nor a record; "
                            "Create Blog Post reports a taken slug as its error"),
    "get_free_slots": ("answers a map keyed by date (2024-01-15 -> slots): the keys change every day, so no "
                       "later Zap step can map a slot, and a trigger fires merely because the days move on"),
    "get_message_recording": "GHL answers with an audio file, which the service cannot pass on (only its name)",
    "download_transcription": ("GHL answers with a text file, which the service cannot pass on (only its name); "
                               "Find Call Transcription gives the transcript itself"),
    "get_duplicate_contact": "the same request as the Find Contact search (email or phone)",
    "list_contacts_deprecated": "GHL deprecated this list; New Contact fires for the same contacts",
}


def names_its_event(record):
    """Whether the trigger's name says what fires ("New Contact", "Opportunity Stage Changed")
    rather than which request it polls ("Get Contact", "List Pipelines")."""
    words = record["name"].split()
    return bool(words) and words[0] not in REQUEST_VERBS


def role(record):
    """``trigger``, ``search``, ``dropdown``, ``omit`` or ``create`` (module docstring)."""
    if record["kind"] == "action":
        return "create"
    if record["kind"] == "search":
        return "search"
    if record["key"] in OMITTED:
        return "omit"
    if record["key"] in LOOKUP_TRIGGERS or record["response"].get("single"):
        return "search"
    watch = record["response"].get("watch")
    if not watch and not names_its_event(record) and noun(record) in CONFIGURATION_NOUNS:
        return "dropdown"
    return "trigger"


# ----------------------------------------------------------------------------- nouns

# An event trigger's noun names what changed ("Contact Tag Removal", "Opportunity Stage
# Change"); the item is the record, so the noun is the record's.
EVENT_NOUN = re.compile(r"^(?:Paid|Completed|Inbound) (.+)$|^(.+?) (?:in Location|Status Change|Stage Change"
                        r"|Tag Removal|Tag|Change)$")
NOUN_OVERRIDES = {
    "get_company": "Agency",  # GHL's companies are agencies; its CRM companies are Businesses
    "get_message_recording": "Call Recording",
    "get_message_transcription": "Call Transcription",
    "download_transcription": "Call Transcription",
    "get_email_by_id": "Email Message",
    "validate_group_slug": "Calendar Group Slug",
    "check_blog_url_slug": "Blog URL Slug",
    "import_courses": "Course",
    "delete_event": "Calendar Event",
}


def noun(record):
    """What one item is, singular and title case ("Contact", "Blog Post")."""
    if record["key"] in NOUN_OVERRIDES:
        return NOUN_OVERRIDES[record["key"]]
    text = (record.get("noun") or record["name"]).strip()
    match = EVENT_NOUN.match(text)
    if match:
        text = match.group(1) or match.group(2)
    words = text.split()
    words[-1] = singular(words[-1])
    return title_case(" ".join(words))


# ----------------------------------------------------------------------------- triggers

# Labels the rule ("New <noun>", or an event trigger's name) cannot give: a qualifier says
# what narrows the list, so no two triggers share a label.
TRIGGER_LABELS = {
    "contact_updated": "Contact Field Changed",  # fires for the fields chosen (4.9: no generic update)
    "get_contact_appointments": "New Appointment for Contact",
    "get_contact_notes": "New Contact Note",
    "get_contact_tasks": "New Contact Task",
    "get_contacts_by_business": "New Contact in Business",
    "search_contacts": "New Contact Matching Search",
    "search_opportunities": "New Opportunity Matching Search",
    "list_calendar_events": "New Calendar Event",
    "get_messages_by_conversation": "New Message in Conversation",
}

# "Triggers when …": concise, the noun in lower case, no platform name (4.1). The catalog's
# summaries describe what the request returns; records without copy here get a sentence made
# from their summary or noun (``_summary_as_trigger_description``).
TRIGGER_DESCRIPTIONS = {
    "new_contact": "Triggers when a contact is added.",
    "contact_tag_added": "Triggers when a tag (any tag, or the one you choose) is added to a contact.",
    "contact_tag_removed": "Triggers when a tag (any tag, or the one you choose) is removed from a contact.",
    "contact_updated": ("Triggers when one of the fields you choose (by default name, email, phone, address, "
                        "tags, owner and custom fields, among others) changes on a contact, with its previous "
                        "value."),
    "task_completed": "Triggers when a contact's task is marked complete.",
    "appointment_booked": "Triggers when an appointment is booked in the calendar, calendar group or user you choose.",
    "appointment_status_changed": ("Triggers when an appointment's status changes (to any status, or to the one "
                                   "you choose, such as confirmed or no-show)."),
    "new_opportunity": "Triggers when an opportunity is created (optionally: in the pipeline or stage you choose).",
    "opportunity_stage_changed": ("Triggers when an opportunity moves to another stage of a pipeline (or to the "
                                  "stage you choose)."),
    "opportunity_status_changed": ("Triggers when an opportunity's status changes to open, won, lost or abandoned "
                                   "(or to the status you choose)."),
    "new_inbound_message": ("Triggers when a contact sends a message (SMS, email, WhatsApp, call...) on any "
                            "channel, or on the one you choose."),
    "new_form_submission": "Triggers when a form is submitted (any form, or the one you choose).",
    "new_survey_submission": "Triggers when a survey is submitted (any survey, or the one you choose).",
    "new_order": "Triggers when an order is placed, such as a funnel or store checkout.",
    "new_payment": "Triggers when a payment is recorded, such as an order's charge or an invoice payment.",
    "invoice_paid": "Triggers when an invoice is paid in full (or, if you choose, partially).",
    "get_contact_appointments": "Triggers when an appointment is booked for the contact you choose.",
    "get_contact_notes": "Triggers when a note is added to the contact you choose.",
    "get_contact_tasks": "Triggers when a task is added to the contact you choose.",
    "get_contacts_by_business": "Triggers when a contact is linked to the business you choose.",
    "search_contacts": "Triggers when there is a new contact matching your search text or filters.",
    "list_blocked_slots": "Triggers when time is blocked off in the calendar, calendar group or user you choose.",
    "list_calendar_events": ("Triggers when an appointment appears in the calendar, calendar group or user you "
                             "choose, within a range of days that moves with time (yesterday to 30 days ahead, "
                             "unless you change it)."),
    "search_opportunities": ("Triggers when there is a new opportunity matching the pipeline, stage, status or "
                             "text you set."),
    "list_users_by_location": "Triggers when a user gets access to the location.",
    "get_messages_by_conversation": "Triggers when a message is added to the conversation you choose.",
    "search_conversations": ("Triggers when there is a new conversation matching the contact, assignee, status or "
                             "text you set."),
    "list_businesses_by_location": "Triggers when a business is added.",
    "list_locations": "Triggers when a sub-account (location) is added to the agency.",
    "get_blog_posts": "Triggers when a post is added to the blog you choose.",
}

# List triggers of these nouns get an instant twin besides every event-named trigger: things
# that appear and that Zaps react to.
INSTANT_NOUNS = ("Contact", "Opportunity", "Appointment", "Note", "Task", "Conversation", "Message", "User",
                 "Business")
# The service's worker checks each subscription this often by default (HOOK_POLL_SECONDS).
DEFAULT_HOOK_POLL_SECONDS = 60
# Zapier polls a polling trigger every 1 to 15 minutes, by the user's plan ([IPR] 4.4).
ZAPIER_POLLING = "every 1 to 15 minutes, depending on your Zapier plan"
MAX_LABEL = 64

PLATFORM_NAME = re.compile(r"\s*\b(?:in |from |by )?GHL(?:'s)?\b", re.IGNORECASE)


def trigger_label(record, catalog=None):
    """The label a trigger is listed under (also for hidden ones). With ``catalog``, one that
    another trigger already has is followed by the record's own name."""
    if record["key"] in TRIGGER_LABELS:
        label = TRIGGER_LABELS[record["key"]]
    elif names_its_event(record):
        label = title_case(record["name"])
    else:
        label = f"New {noun(record)}"
    if catalog is not None:
        # Generated records are no triggers of the app (``zapier_app.operation_picker``).
        others = [r for r in catalog.of_kind("trigger") if r["key"] != record["key"]
                  and r.get("origin") != "generated" and role(r) in ("trigger", "dropdown")]
        if any(trigger_label(r) == label for r in others):
            label = f"{label} ({record['name']})"
    return label[:MAX_LABEL]


def _summary_as_trigger_description(record):
    """The fallback: the record's summary, reworded to start "Triggers when"."""
    summary = PLATFORM_NAME.sub("", record.get("summary") or "").strip()
    event = re.match(r"Fires when (.+)$", summary)
    if event:
        return _sentence("Triggers when " + event.group(1))
    item = lower_noun(noun(record))
    if record["response"].get("dedupe") == "changes":
        return f"Triggers when {with_article(item)} changes."
    return f"Triggers when there is a new {item}."


def trigger_display(record, catalog=None):
    """``{"label", "description"}`` of a trigger (D018 title case, D021 "Triggers when ….")."""
    description = TRIGGER_DESCRIPTIONS.get(record["key"]) or _summary_as_trigger_description(record)
    return {"label": trigger_label(record, catalog), "description": with_access_note(record, description)}


def wants_instant_twin(record):
    """Whether a trigger also gets a REST hook twin (``<key>_instant``): visible list triggers of
    new items or changes, named for their event or of the nouns of things that appear."""
    response = record["response"]
    return (role(record) == "trigger" and not response.get("single") and response.get("dedupe") == "new"
            and (names_its_event(record) or noun(record) in INSTANT_NOUNS))


def _every(seconds):
    if seconds % 60:
        return f"Every {seconds} Seconds"
    minutes = seconds // 60
    return "Every Minute" if minutes == 1 else f"Every {minutes} Minutes"


def instant_display(record, catalog=None, poll_seconds=DEFAULT_HOOK_POLL_SECONDS):
    """``{"label", "description"}`` of a trigger's REST hook twin, saying how fast it really is:
    this service's worker reads the location every ``poll_seconds`` (HOOK_POLL_SECONDS) and
    pushes what is new to Zapier at once, on every Zapier plan."""
    polling = trigger_display(record, catalog)
    suffix = f" (Checked {_every(poll_seconds)})"
    label = polling["label"][:MAX_LABEL - len(suffix)].rstrip() + suffix
    every = _every(poll_seconds).lower()
    description = (f"{polling['description']} This version is checked by the integration's server {every} and "
                   f"sent to Zapier straight away, on any Zapier plan; the other version is checked by Zapier "
                   f"{ZAPIER_POLLING}.")
    return {"label": label, "description": description}


# ----------------------------------------------------------------------------- searches and creates

SEARCH_LABELS = {
    "find_contact_appointments": "Find Contact Appointment",
    "get_contact": "Find Contact by ID",
    "get_opportunity": "Find Opportunity by ID",
    "get_user": "Find User by ID",
    "get_contact_note_by_id": "Find Contact Note",
    "get_contact_task_by_id": "Find Contact Task",
    "get_association_key": "Find Association by Key",
    "get_association_by_keys": "Find Association by Object Key",
    "filter_users_by_email": "Find Agency User by Email",
    "search_users": "Find Agency User",
    "list_appointment_notes": "Find Appointment Note",
    "get_relations_by_record": "Find Relation of Record",
}

SEARCH_DESCRIPTIONS = {
    "find_contact_appointments": "Finds a contact's appointment, in any calendar of the location.",
    "find_location_by_id": "Finds the connected sub-account (location), or another one, and its details.",
    "get_contact_note_by_id": "Finds a note of a contact by ID.",
    "get_contact_task_by_id": "Finds a task of a contact by ID.",
    "get_calendar_notification": "Finds a notification of a calendar (reminder, confirmation...) by ID.",
    "get_calendar_resource": "Finds a room or piece of equipment by ID.",
    "get_message_transcription": "Finds the transcription of a recorded call, sentence by sentence with timings.",
    "get_email_by_id": "Finds an email message (subject, body, sender, recipients, status) by ID.",
    "get_message_by_id": "Finds a message of any channel (SMS, call, chat...) by ID.",
    "get_company": "Finds an agency by ID (with an agency token).",
    "get_association_key": "Finds the association with a given key name, such as student_teacher.",
    "get_association_by_keys": "Finds the association defined for an object key, such as contact or custom_objects.car.",
    "filter_users_by_email": "Finds an agency's user by email address (with an agency token).",
    "search_users": "Finds a user of the agency, or of one location, by name, email, phone, type or role.",
    "list_appointment_notes": "Finds a note of an appointment.",
    "get_relations_by_record": "Finds a record's relation to another record, optionally of the associations you choose.",
}

CREATE_LABELS = {
    "agent_typing_indicator": "Show Agent Typing Indicator",
    "bulk_business_update": "Add Contacts to Business",
    "upsert_contact": "Create or Update Contact",
    "upsert_opportunity": "Create or Update Opportunity",
    "add_followers": "Add Opportunity Followers",
    "remove_followers": "Remove Opportunity Followers",
    "remove_from_campaign": "Remove Contact from Campaign",
    "remove_from_all_campaigns": "Remove Contact from All Campaigns",
    "remove_from_workflow": "Remove Contact from Workflow",
    "create_block_slot": "Create Blocked Slot",
    "update_block_slot": "Update Blocked Slot",
    "delete_event": "Delete Calendar Event",
    "update_notification": "Update Calendar Notification",
    "delete_notification": "Delete Calendar Notification",
    "update_group_status": "Update Calendar Group Status",
    "validate_group_slug": "Check Calendar Group Slug",
    "api_request": "Send API Request",
}

CREATE_DESCRIPTIONS = {
    "delete_user": "Removes a team member; the removal takes effect within minutes.",
    "api_request": "Sends a request to any endpoint of the API v2 with your connection, for what the other actions do not cover.",
    "validate_group_slug": "Checks whether a booking-page slug is still free for a new calendar group.",
}


# What a step whose record has ``access`` says of the token it needs (GHL refuses the others).
ACCESS_NOTES = {
    ("agency",): ("agency token", "Needs an agency token; a sub-account's token is refused."),
    ("oauth",): ("oauth", "Needs an OAuth connection; Private Integration tokens are refused."),
    ("agency", "oauth"): ("agency", "Needs an agency's OAuth connection; other tokens are refused."),
}


def access_note(record):
    """(what a text says when it already names the token, the sentence saying which token the
    step needs) for a record with ``access``; (None, None) for any token."""
    return ACCESS_NOTES.get(tuple(sorted(record.get("access") or ())), (None, None))


def with_access_note(record, description):
    """``description``, plus the token the step needs where its record has ``access`` (unless it says so)."""
    said, note = access_note(record)
    return f"{description} {note}" if note and said not in description.lower() else description


def search_display(record):
    """``{"label", "description"}`` of a search ("Find …", "Finds …."), also for a trigger the app
    presents as a search."""
    key = record["key"]
    if key in SEARCH_LABELS:
        label = SEARCH_LABELS[key]
    elif record["kind"] == "search":
        label = title_case(record["name"])
    else:
        label = f"Find {noun(record)}"
    if key in SEARCH_DESCRIPTIONS:
        description = SEARCH_DESCRIPTIONS[key]
    elif record["kind"] == "search":
        description = _sentence(re.sub(r"^Looks up\b", "Finds", PLATFORM_NAME.sub("", record["summary"]).strip()))
    else:
        description = f"Finds {with_article(lower_noun(noun(record)))} by ID."
    return {"label": label[:MAX_LABEL], "description": with_access_note(record, description)}


def operation_label(record):
    """The label the app lists ``record`` under, whatever its role ("" when omitted)."""
    shown = role(record)
    if shown in ("trigger", "dropdown"):
        return trigger_label(record)
    if shown == "search":
        return search_display(record)["label"]
    return create_display(record)["label"] if shown == "create" else ""


def create_display(record):
    """``{"label", "description"}`` of an action: an imperative label, a description that starts
    with what it does ("Creates …", "Deletes … permanently.")."""
    key = record["key"]
    label = CREATE_LABELS.get(key) or title_case(record["name"])
    description = CREATE_DESCRIPTIONS.get(key)
    if description is None:
        description = PLATFORM_NAME.sub("", record["summary"]).strip()
        # "Permanently deletes a contact." -> "Deletes a contact permanently."
        adverb = re.match(r"^([A-Z][a-z]+ly) ([a-z]+s) (.+?)\.?$", description)
        if adverb:
            description = f"{adverb.group(2).capitalize()} {adverb.group(3)} {adverb.group(1).lower()}"
        description = _sentence(description)
    return {"label": label[:MAX_LABEL], "description": with_access_note(record, description)}


# ----------------------------------------------------------------------------- input fields

# Where a dropdown shows names, the label names the thing, not its id (4.2.1, 5.2.1, 6.3.1).
ID_LABEL = re.compile(r"^(.*?)\s+IDs?$")
DROPDOWN_LABELS = {
    "Assigned To (User ID)": "Assigned User",
    "Assigned User IDs": "Assigned User",  # one user; GHL also takes "unassigned"
    "Company (Agency) ID": "Agency",
    "Follower User IDs": "Followers",
    "Author User ID": "Author",
    "Author ID": "Author",
    "Group ID": "Calendar Group",
    "Owner User ID": "Owner",
}

# Inputs the service fills when they are left out, which a Zap builder has no reason to set.
PAGING_KEYS = {"skip", "limit", "offset"}
ORDER_KEYS = {"sort", "sortDirection", "sortBy", "order"}
HIDDEN_INPUTS = {
    ("send_message", "status"): ("GHL's spec asks every message for a status; pending (the default) is a "
                                 "message being sent, the others record what a custom provider did"),
    ("filter_users_by_email", "projection"): "which fields GHL returns; the default, all, is what a Zap needs",
}

# Help texts no rule can write: the catalog's text names raw codes the dropdown now labels, an
# operation the app shows under another name (or not at all), or says what the label says.
HELP_TEXTS = {
    ("appointment_status_changed", "status"): "Fire only when an appointment changes to this status. Leave "
                                              "blank for any change.",
    ("invoice_paid", "status"): ("Paid (the default) fires when an invoice is paid in full; Partially paid "
                                 "fires on a payment that leaves some of it due."),
    ("find_opportunity", "order"): "Which opportunity comes first when several match.",
    ("find_user", "companyId"): "The agency the location belongs to (GHL requires it).",
    ("send_message", "type"): ("How the message is sent. Email needs a Subject, and an HTML Body or a Message; "
                               "every other channel needs a Message or Attachments. Custom sends through your own "
                               "conversation provider. The Email fields below apply to email only."),
    ("search_conversations", "assignedTo"): "Only conversations assigned to this user; type `unassigned` for "
                                            "conversations assigned to nobody.",
    ("agent_typing_indicator", "isTyping"): None,
    ("create_blog_post", "urlSlug"): "The post's URL slug, such as `my-first-post`; it must not be taken yet.",
    ("update_blog_post", "urlSlug"): "The post's URL slug, such as `my-first-post`; it must not be taken by "
                                     "another post.",
    ("delete_relation", "relationId"): "The relation to delete: the New Relation for Record trigger shows them.",
    ("update_appointment", "eventId"): ("The appointment, or one occurrence of a recurring one (map the master "
                                        "event's id to change the whole series)."),
    ("list_custom_fields", "model"): "Which custom fields to list: the contacts', the opportunities', or all.",
}

# Words that add nothing to a label, besides its own words and the noun's ([IPR] 4.2.2).
FILLER_WORDS = {"a", "an", "the", "of", "for", "this", "that", "these", "your", "its", "it", "s", "to", "be", "is",
                "are", "and", "or", "in", "on", "with", "by", "enter", "provide", "specify", "set", "optional",
                "required", "here", "value", "field", "you", "want", "use", "used", "which", "record", "item",
                "new", "address", "number", "current", "one", "more", "give", "given"}

JSON_START = re.compile(r"[\[{](?=\s*[\[{\"\]}])")  # an empty [] or {} too: "[] (x)" is no link
BARE_URL = re.compile(r"(?<![`(<])\bhttps?://[^\s`)]+?(?=[.,;:!?)]?(?:\s|$))")
PLACEHOLDER = re.compile(r"(?<!`){{[^{}]+}}(?!`)")
TRIGGER_SHOWS = re.compile(r"\s*\((?:the )?[^()]*?\btrigger shows[^()]*\)|\s*(?:^|(?<=[.;] ))[^.;]*?\btrigger "
                           r"shows[^.]*\.")
ID_OF = re.compile(r"\b(?:([Tt])he [Ii]|(I))ds? (?:\(_id\) )?of (?:(the |an? )|(?=[a-z]))|\s*\((?:its|their) ids?\)")


def _words(text):
    return re.findall(r"[a-z0-9]+", (text or "").lower())


def adds_information(help_text, label, key="", *context):
    """Whether ``help_text`` says something that its ``label``, its input ``key`` and the
    ``context`` (the operation's noun and name, the field's choices) do not."""
    known = set(_words(label)) | set(_words(CAMEL_BREAK.sub(" ", key))) | FILLER_WORDS
    for text in context:
        known |= set(_words(CAMEL_BREAK.sub(" ", str(text))))
    return bool(set(_words(help_text)) - known)


def _json_end(text, start):
    """The index after the bracket that closes the one at ``start`` (strings respected), or None."""
    depth, quoted, escaped = 0, False, False
    for index in range(start, len(text)):
        char = text[index]
        if quoted:
            escaped, quoted = (not escaped and char == "\\"), quoted and not (char == '"' and not escaped)
            continue
        if char == '"':
            quoted = True
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
            if depth == 0:
                return index + 1
    return None


def in_code_spans(text):
    """``text`` with JSON examples, URLs and ``{{placeholders}}`` in backticks: shown as code, and
    never a bare link (D008)."""
    out, position = [], 0
    for match in JSON_START.finditer(text):
        if match.start() < position or text[:match.start()].count("`") % 2:
            continue
        end = _json_end(text, match.start())
        if end is None:
            continue
        out.append(text[position:match.start()] + "`" + text[match.start():end] + "`")
        position = end
    text = "".join(out) + text[position:]
    parts = text.split("`")
    for index in range(0, len(parts), 2):  # outside code spans
        parts[index] = PLACEHOLDER.sub(lambda m: f"`{m.group(0)}`", BARE_URL.sub(lambda m: f"`{m.group(0)}`",
                                                                                 parts[index]))
    return "`".join(parts)


def _without_id_wording(text):
    """Help of a dropdown field, without the ids and the triggers that used to list them."""
    text = TRIGGER_SHOWS.sub("", text).strip()

    def name_the_thing(match):
        if match.group(0).lstrip().startswith("("):
            return ""
        article = match.group(3) or ""
        capital = bool(match.group(2)) or match.group(1) == "T"
        if not article and match.group(2):
            return ""  # "Ids of users to add" -> "users to add", capitalised below
        article = article or "the "
        return article[0].upper() + article[1:] if capital else article

    text = ID_OF.sub(name_the_thing, text)
    return text[:1].upper() + text[1:]


def field_label(record, field):
    """The label of an input: where a dropdown will show names, without "ID"."""
    label = field["label"]
    if dropdowns.declared_source(record, field) is None:
        return label
    if label in DROPDOWN_LABELS:
        return DROPDOWN_LABELS[label]
    if label in ("ID", "IDs"):
        # A bare id of what the record is about (generated lists fill those: zapier_app.list_dropdowns).
        return noun(record) if label == "ID" else plural(noun(record))
    match = ID_LABEL.match(label)
    if not match:
        return label
    words = match.group(1).split()
    if label.endswith("IDs"):
        words[-1] = plural(words[-1])
    return " ".join(words)


def field_help(record, field, label=None):
    """The help text of an input, or None when it would add nothing to the label (D011, 4.2.2)."""
    label = label or field_label(record, field)
    where = (record["key"], field["key"])
    if where in HELP_TEXTS:
        text = HELP_TEXTS[where]
    else:
        text = (field.get("help_text") or "").strip()
        if dropdowns.declared_source(record, field) is not None:
            text = _without_id_wording(text)
        if record["kind"] == "trigger" and role(record) == "search":
            text = re.sub(r"\bto watch\b", "to find", text)
        text = re.sub(r"^Optional\b[.:,]?\s*", "", text).strip()  # Zapier marks optional fields itself
        text = text[:1].upper() + text[1:]
    if not text:
        return None
    text = in_code_spans(_sentence(text))
    context = [noun(record), record["name"], operation_label(record), *(field.get("choices") or [])]
    return text if adds_information(text, label, field["key"], *context) else None


def internal_setting(record, field):
    """Why a Zap builder should not see ``field`` (the service's default applies when it is left
    out), or None."""
    key = field["key"]
    if field.get("required") and field.get("default") is None and not field.get("default_input"):
        return None
    if (record["key"], key) in HIDDEN_INPUTS:
        return HIDDEN_INPUTS[(record["key"], key)]
    if field.get("default_input"):
        return f"left blank, it takes the value of {field['default_input']}"
    window = record.get("window") or {}
    if key in (window.get("start"), window.get("end")):
        return "a fixed range from Zaps made before the moving range; Days Back and Days Ahead set it"
    choices = field.get("choices") or []
    if len(choices) == 1 and field.get("default") is not None:
        return "it has one possible value"
    if record["kind"] == "trigger" and key in PAGING_KEYS:
        return "paging: the trigger pages by itself"
    if record["kind"] == "trigger" and key in ORDER_KEYS:
        return "the order the trigger relies on to see new items first"
    return None


def field_presentation(record, field):
    """How the app shows a catalog input: ``{"label", "helpText"}`` (helpText None: show none),
    plus ``"choices": [{"value", "sample", "label"}]`` for a fixed list and ``"hidden": True`` for
    internal settings. Inputs with ``location: True`` are left out by the generator anyway."""
    label = field_label(record, field)
    shown = {"label": label, "helpText": field_help(record, field, label)}
    if field.get("choices"):
        shown["choices"] = choice_list(field)
    if internal_setting(record, field):
        shown["hidden"] = True
    return shown


# ----------------------------------------------------------------------------- choices

CODE_WORDS = {"sms": "SMS", "mms": "MMS", "rcs": "RCS", "gmb": "Google Business Profile", "ivr": "IVR",
              "url": "URL", "whatsapp": "WhatsApp", "tiktok": "TikTok", "noshow": "no-show", "webchat": "web chat",
              "followup": "follow-up", "mins": "minutes", "gmeet": "Google Meet", "ms": "Microsoft", "dnd": "DND",
              "html": "HTML", "id": "ID", "ig": "Instagram", "fb": "Facebook Messenger", "facebook": "Facebook",
              "instagram": "Instagram", "google": "Google", "zoom": "Zoom"}

LANGUAGE_NAMES = {"en_US": "English (US)", "es": "Spanish", "fr_CA": "French (Canada)", "fr_FR": "French (France)",
                  "nl": "Dutch", "de": "German", "pt_PT": "Portuguese (Portugal)", "pt_BR": "Portuguese (Brazil)",
                  "it": "Italian", "sv": "Swedish", "da": "Danish", "fi": "Finnish", "no": "Norwegian"}

# Labels by input key where the code's words do not say it.
CHOICE_LABELS = {
    "order": {"added_desc": "Newest first", "added_asc": "Oldest first", "asc": "Oldest first",
              "desc": "Newest first"},
    "sort": {"asc": "Oldest first", "desc": "Newest first"},
    "sortDirection": {"asc": "Ascending", "desc": "Descending"},
    "isTyping": {"true": "Show the indicator", "false": "Hide the indicator"},
    "version": {"2021-07-28": "2021-07-28 (most endpoints)", "2021-04-15": "2021-04-15 (calendars, conversations)"},
    "method": {"GET": "GET (read)", "POST": "POST (create)", "PUT": "PUT (replace)", "PATCH": "PATCH (change)",
               "DELETE": "DELETE (delete)"},
    "fields": {"firstNameLowerCase": "First name", "lastNameLowerCase": "Last name",
               "assignedTo": "Owner (assigned user)", "dnd": "Do Not Disturb"},
    "eventType": {"RoundRobin_OptimizeForAvailability": "Optimize for availability",
                  "RoundRobin_OptimizeForEqualDistribution": "Optimize for equal distribution"},
    "formSubmitType": {"RedirectURL": "Redirect to a URL", "ThankYouMessage": "Show a thank-you message"},
    "guestType": {"count_only": "Count guests only", "collect_detail": "Collect guest details"},
    "calendarType": {"collective": "Collective booking", "class_booking": "Class booking", "event": "Event",
                     "personal": "Personal booking", "service_booking": "Service booking"},
    "channel": {"inApp": "In-app"},
    "resourceType": {"equipments": "Equipment", "rooms": "Rooms"},
    "type": {"Live_Chat": "Live chat", "Custom": "Custom provider", "TIKTOK": "TikTok", "IG": "Instagram",
             "FB": "Facebook Messenger"},
    "meetingLocationType": {"ms_teams": "Microsoft Teams"},
    "status": {"recents": "Recent"},
    "platformLanguage": LANGUAGE_NAMES,
}


def _reads_as_code(label):
    label = str(label).strip()
    if not label or re.fullmatch(r"[-+]?\d+(?:\.\d+)?", label):
        return False
    if "_" in label or (label[0].isalpha() and label[0].islower()):
        return True
    return label.isupper() and len(label) > 4 and " " not in label


def code_label(value):
    """A code as words: ``TYPE_ACTIVITY_INVOICE`` -> "Invoice activity", ``noshow`` -> "No-show"."""
    text = str(value)
    if not _reads_as_code(text):
        return text
    text = text.removeprefix("TYPE_")
    words = [CODE_WORDS.get(w.lower(), w.lower()) for w in CAMEL_BREAK.split(text.replace("-", "_")) if w]
    if words[0] == "activity" and len(words) > 1:
        words = words[1:] + ["activity"]
    label = " ".join(words).replace("no show", "no-show")
    return label[:1].upper() + label[1:]


def choice_label(field, value):
    """The label a user sees for ``value`` of ``field``'s fixed choices."""
    text = json.dumps(value) if isinstance(value, bool) else str(value)
    table = COUNTRY_NAMES if field["key"] == "country" else CHOICE_LABELS.get(field["key"], {})
    return table.get(text) or code_label(text)


def choice_list(field):
    """``field``'s fixed choices as Zapier's labelled choices, in the catalog's order."""
    listed = []
    for value in field["choices"]:
        text = json.dumps(value) if isinstance(value, bool) else str(value)
        listed.append({"value": text, "sample": text, "label": choice_label(field, value)})
    return listed
# ISO 3166 codes GHL takes for a location's country, by English name.
COUNTRY_NAMES = {
    "AF": "Afghanistan", "AX": "Åland Islands", "AL": "Albania", "DZ": "Algeria", "AS": "American Samoa",
    "AD": "Andorra", "AO": "Angola", "AI": "Anguilla", "AQ": "Antarctica", "AG": "Antigua and Barbuda",
    "AR": "Argentina", "AM": "Armenia", "AW": "Aruba", "AU": "Australia", "AT": "Austria",
    "AZ": "Azerbaijan", "BS": "Bahamas", "BH": "Bahrain", "BD": "Bangladesh", "BB": "Barbados",
    "BY": "Belarus", "BE": "Belgium", "BZ": "Belize", "BJ": "Benin", "BM": "Bermuda", "BT": "Bhutan",
    "BO": "Bolivia", "BA": "Bosnia and Herzegovina", "BW": "Botswana", "BV": "Bouvet Island", "BR": "Brazil",
    "IO": "British Indian Ocean Territory", "BN": "Brunei", "BG": "Bulgaria", "BF": "Burkina Faso",
    "BI": "Burundi", "KH": "Cambodia", "CM": "Cameroon", "CA": "Canada", "CV": "Cape Verde",
    "KY": "Cayman Islands", "CF": "Central African Rep.", "TD": "Chad", "CL": "Chile", "CN": "China",
    "CX": "Christmas Island", "CC": "Cocos (Keeling) Islands", "CO": "Colombia", "KM": "Comoros",
    "CG": "Congo", "CD": "Congo (Democratic Republic)", "CK": "Cook Islands", "CR": "Costa Rica",
    "CI": "Côte d'Ivoire", "HR": "Croatia", "CU": "Cuba", "CY": "Cyprus", "CZ": "Czech Republic",
    "DK": "Denmark", "DJ": "Djibouti", "DM": "Dominica", "DO": "Dominican Republic", "EC": "Ecuador",
    "EG": "Egypt", "SV": "El Salvador", "GQ": "Equatorial Guinea", "ER": "Eritrea", "EE": "Estonia",
    "ET": "Ethiopia", "FK": "Falkland Islands", "FO": "Faroe Islands", "FJ": "Fiji", "FI": "Finland",
    "FR": "France", "GF": "French Guiana", "PF": "French Polynesia", "TF": "French Southern Territories",
    "GA": "Gabon", "GM": "Gambia", "GE": "Georgia", "DE": "Germany", "GH": "Ghana", "GI": "Gibraltar",
    "GR": "Greece", "GL": "Greenland", "GD": "Grenada", "GP": "Guadeloupe", "GU": "Guam", "GT": "Guatemala",
    "GG": "Guernsey", "GN": "Guinea", "GW": "Guinea-Bissau", "GY": "Guyana", "HT": "Haiti",
    "HM": "Heard Island and McDonald Islands", "VA": "Vatican City", "HN": "Honduras", "HK": "Hong Kong",
    "HU": "Hungary", "IS": "Iceland", "IN": "India", "ID": "Indonesia", "IR": "Iran", "IQ": "Iraq",
    "IE": "Ireland", "IM": "Isle of Man", "IL": "Israel", "IT": "Italy", "JM": "Jamaica", "JP": "Japan",
    "JE": "Jersey", "JO": "Jordan", "KZ": "Kazakhstan", "KE": "Kenya", "KI": "Kiribati", "KP": "North Korea",
    "KR": "South Korea", "XK": "Kosovo", "KW": "Kuwait", "KG": "Kyrgyzstan", "LA": "Laos", "LV": "Latvia",
    "LB": "Lebanon", "LS": "Lesotho", "LR": "Liberia", "LY": "Libya", "LI": "Liechtenstein",
    "LT": "Lithuania", "LU": "Luxembourg", "MO": "Macau", "MK": "North Macedonia", "MG": "Madagascar",
    "MW": "Malawi", "MY": "Malaysia", "MV": "Maldives", "ML": "Mali", "MT": "Malta",
    "MH": "Marshall Islands", "MQ": "Martinique", "MR": "Mauritania", "MU": "Mauritius", "YT": "Mayotte",
    "MX": "Mexico", "FM": "Micronesia", "MD": "Moldova", "MC": "Monaco", "MN": "Mongolia",
    "ME": "Montenegro", "MS": "Montserrat", "MA": "Morocco", "MZ": "Mozambique", "MM": "Myanmar",
    "NA": "Namibia", "NR": "Nauru", "NP": "Nepal", "NL": "Netherlands", "AN": "Netherlands Antilles",
    "NC": "New Caledonia", "NZ": "New Zealand", "NI": "Nicaragua", "NE": "Niger", "NG": "Nigeria",
    "NU": "Niue", "NF": "Norfolk Island", "MP": "Northern Mariana Islands", "NO": "Norway", "OM": "Oman",
    "PK": "Pakistan", "PW": "Palau", "PS": "Palestine", "PA": "Panama", "PG": "Papua New Guinea",
    "PY": "Paraguay", "PE": "Peru", "PH": "Philippines", "PN": "Pitcairn", "PL": "Poland", "PT": "Portugal",
    "PR": "Puerto Rico", "QA": "Qatar", "RE": "Réunion", "RO": "Romania", "RU": "Russia", "RW": "Rwanda",
    "SH": "Saint Helena", "KN": "Saint Kitts and Nevis", "LC": "Saint Lucia",
    "MF": "Saint Martin (French part)", "PM": "Saint Pierre and Miquelon",
    "VC": "Saint Vincent and the Grenadines", "WS": "Samoa", "SM": "San Marino",
    "ST": "Sao Tome and Principe", "SA": "Saudi Arabia", "SN": "Senegal", "RS": "Serbia", "SC": "Seychelles",
    "SL": "Sierra Leone", "SG": "Singapore", "SX": "Sint Maarten (Dutch part)", "SK": "Slovakia",
    "SI": "Slovenia", "SB": "Solomon Islands", "SO": "Somalia", "ZA": "South Africa",
    "GS": "South Georgia and the South Sandwich Islands", "ES": "Spain", "LK": "Sri Lanka", "SD": "Sudan",
    "SR": "Suriname", "SJ": "Svalbard and Jan Mayen", "SZ": "Eswatini", "SE": "Sweden", "CH": "Switzerland",
    "SY": "Syria", "TW": "Taiwan", "TJ": "Tajikistan", "TZ": "Tanzania", "TH": "Thailand",
    "TL": "East Timor", "TG": "Togo", "TK": "Tokelau", "TO": "Tonga", "TT": "Trinidad and Tobago",
    "TN": "Tunisia", "TR": "Turkey", "TM": "Turkmenistan", "TC": "Turks and Caicos Islands", "TV": "Tuvalu",
    "UG": "Uganda", "GB": "United Kingdom", "UA": "Ukraine", "AE": "United Arab Emirates",
    "US": "United States", "UM": "US Minor Outlying Islands", "UY": "Uruguay", "UZ": "Uzbekistan",
    "VU": "Vanuatu", "VE": "Venezuela", "VN": "Vietnam", "VG": "British Virgin Islands",
    "VI": "US Virgin Islands", "WF": "Wallis and Futuna", "EH": "Western Sahara", "YE": "Yemen",
    "ZM": "Zambia", "ZW": "Zimbabwe",
}


# ----------------------------------------------------------------------------- connection

PRIVATE_INTEGRATIONS_HELP = ("https://help.gohighlevel.com/support/solutions/articles/"
                             "155000003054-private-integrations-everything-you-need-to-know")
BUSINESS_PROFILE_HELP = "https://help.gohighlevel.com/support/solutions/articles/155000006223-business-profile-settings"


def auth_fields_help(server_url=None):
    """Help texts of the connection fields (``token``, ``locationId``, ``connectorKey``), each
    with a markdown link to where the user finds the value (D002). ``server_url``: the service
    the app talks to, which the connector key comes from; without it that help has no link."""
    server = f"[the server]({server_url.rstrip('/')}/)" if server_url else "the server"
    return {
        "token": ("A **Private Integration token** of the sub-account (or of the agency): in GHL, Settings > "
                  "Private Integrations > Create new integration, with the scopes of the steps you use "
                  f"([how to create one]({PRIVATE_INTEGRATIONS_HELP})). An OAuth access token also works, but it "
                  "expires in about a day and Zapier cannot refresh it. It is passed on to GHL, and kept "
                  "(encrypted) only for instant triggers."),
        "locationId": ("The sub-account's Location ID: in GHL, Settings > Business Profile shows it "
                       f"([where to find it]({BUSINESS_PROFILE_HELP})); it is also the part after `/location/` "
                       "in the address of any page of the sub-account. Every step uses this location."),
        "connectorKey": ("The key the server was started with (its `CONNECTOR_KEY` setting); ask whoever runs "
                         f"{server}. Without it, the server refuses every request."),
    }


AUTH_FIELDS_HELP = auth_fields_help()
