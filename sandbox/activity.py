"""GHL behaviours of appointments, inbound messages and tasks, where they differ from the generic handlers.

``SPECIAL_CASES`` maps (method, path shape) to a handler, as in ``sandbox.ghl_behaviours``,
which merges it into the sandbox's table. A handler is used only where a catalog record
serves its route.

- ``GET /calendars/events``: one of ``calendarId``/``userId``/``groupId`` (GHL's parameter
  descriptions say so), appointments starting in [startTime, endTime] (epoch ms), all in one
  answer ``{events}``, ordered by start time (GHL documents no order).
- ``POST /calendars/events/appointments`` books (status ``confirmed`` unless given, the
  calendar's group, an end one slot after the start); ``PUT .../appointments/{eventId}``
  refuses a status outside GHL's list.
- ``GET /contacts/{contactId}/appointments``: the contact's appointments in ``{events}``, their
  times as GHL's spec shows them there (GetEventSchema, ``2021-07-16 11:00:00``): the
  location's wall-clock time, without a zone.
- ``GET /conversations/messages/export``: newest first by default (``sortBy`` createdAt or
  updatedAt, ``sortOrder``), an opaque keyset ``cursor`` / ``nextCursor`` (null at the end),
  ``limit`` 10 to 500, ``channel``; without a channel every type except email.
- ``POST /conversations/messages/inbound`` (and ``/_sandbox/messages/<direction>``, see
  ``add_message``): a message in a conversation, which takes it as its last message.
- ``POST /locations/{locationId}/tasks/search``: every task of the location's contacts, as rows
  with ``_id`` (third-party clients read them so), filtered by the body, paged by
  ``skip``/``limit`` (default 25) or the last row's ``searchAfter``, by due date (GHL documents
  no order), answered 201 as GHL does.
"""

import base64
import binascii
import json
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from sandbox import answers
from sandbox.filters import in_time_window, matches_text
from sandbox.handlers import filtered_view
from sandbox.handlers import update as generic_update
from sandbox.paging import PagingError, sort_key
from sandbox.store import epoch_ms, iso_from_ms

EVENTS = "/calendars/events"
LOCATIONS = "/locations"
CALENDARS = "/calendars"
CONTACTS = "/contacts"
CONVERSATIONS = "/conversations"
MESSAGES = "/conversations/messages"
USERS = "/users"

APPOINTMENT_STATUSES = ("new", "confirmed", "cancelled", "showed", "noshow", "invalid")
DEFAULT_STATUS = "confirmed"
DEFAULT_SLOT_MINUTES = 30

# GetMessageResponseDto.messageType, in the order of GHL's numeric ``type`` (1 = call, 10 =
# voicemail, as the spec's attachments note says); TYPE_RCS, newer, is left out of the count.
MESSAGE_TYPES = (
    "TYPE_CALL", "TYPE_SMS", "TYPE_EMAIL", "TYPE_SMS_REVIEW_REQUEST", "TYPE_WEBCHAT", "TYPE_SMS_NO_SHOW_REQUEST",
    "TYPE_CAMPAIGN_SMS", "TYPE_CAMPAIGN_CALL", "TYPE_CAMPAIGN_EMAIL", "TYPE_CAMPAIGN_VOICEMAIL", "TYPE_FACEBOOK",
    "TYPE_CAMPAIGN_FACEBOOK", "TYPE_CAMPAIGN_MANUAL_CALL", "TYPE_CAMPAIGN_MANUAL_SMS", "TYPE_GMB",
    "TYPE_CAMPAIGN_GMB", "TYPE_REVIEW", "TYPE_INSTAGRAM", "TYPE_WHATSAPP", "TYPE_CUSTOM_SMS", "TYPE_CUSTOM_EMAIL",
    "TYPE_CUSTOM_PROVIDER_SMS", "TYPE_CUSTOM_PROVIDER_EMAIL", "TYPE_IVR_CALL", "TYPE_ACTIVITY_CONTACT",
    "TYPE_ACTIVITY_INVOICE", "TYPE_ACTIVITY_PAYMENT", "TYPE_ACTIVITY_OPPORTUNITY", "TYPE_LIVE_CHAT",
    "TYPE_LIVE_CHAT_INFO_MESSAGE", "TYPE_ACTIVITY_APPOINTMENT",
)
TYPE_NUMBERS = {name: n for n, name in enumerate(MESSAGE_TYPES, start=1)}
# ProcessMessageBodyDto.type (what the inbound/outbound endpoints take) -> messageType.
BODY_TYPES = {"SMS": "TYPE_SMS", "RCS": "TYPE_RCS", "Email": "TYPE_EMAIL", "WhatsApp": "TYPE_WHATSAPP",
              "GMB": "TYPE_GMB", "IG": "TYPE_INSTAGRAM", "FB": "TYPE_FACEBOOK", "Custom": "TYPE_CUSTOM_SMS",
              "WebChat": "TYPE_WEBCHAT", "Live_Chat": "TYPE_LIVE_CHAT", "Call": "TYPE_CALL",
              "IVR_Call": "TYPE_IVR_CALL", "Campaign_Call": "TYPE_CAMPAIGN_CALL",
              "Campaign_VoiceMail": "TYPE_CAMPAIGN_VOICEMAIL"}
# The export's ``channel`` -> the message types it selects.
CHANNELS = {
    "Call": {"TYPE_CALL", "TYPE_IVR_CALL", "TYPE_CUSTOM_CALL", "TYPE_CAMPAIGN_CALL", "TYPE_CAMPAIGN_MANUAL_CALL",
             "TYPE_CAMPAIGN_VOICEMAIL"},
    "SMS": {"TYPE_SMS", "TYPE_CUSTOM_SMS", "TYPE_CUSTOM_PROVIDER_SMS", "TYPE_CAMPAIGN_SMS",
            "TYPE_CAMPAIGN_MANUAL_SMS", "TYPE_SMS_REVIEW_REQUEST", "TYPE_SMS_NO_SHOW_REQUEST"},
    "Email": {"TYPE_EMAIL", "TYPE_CUSTOM_EMAIL", "TYPE_CUSTOM_PROVIDER_EMAIL", "TYPE_CAMPAIGN_EMAIL"},
    "WhatsApp": {"TYPE_WHATSAPP"},
    "Instagram": {"TYPE_INSTAGRAM", "TYPE_INSTAGRAM_COMMENT"},
    "Facebook": {"TYPE_FACEBOOK", "TYPE_FACEBOOK_COMMENT", "TYPE_CAMPAIGN_FACEBOOK"},
}
EXPORT_LIMITS = (10, 500, 100)  # min, max, default
# Store stamps that GHL's message items do not carry (they have dateAdded only).
MESSAGE_HIDDEN = ("createdAt", "updatedAt", "dateUpdated")
# GetEventSchema's times, which GHL writes as the location's wall-clock time.
WALL_CLOCK_FIELDS = ("startTime", "endTime", "dateAdded", "dateUpdated")


# -- appointments ---------------------------------------------------------------------------------

def _owned_by(event, call, calendars):
    """Whether ``event`` belongs to the calendar, user and group the query names."""
    args = call.args
    if args.get("calendarId") and event.get("calendarId") != args["calendarId"]:
        return False
    if args.get("userId") and args["userId"] != event.get("assignedUserId") and \
            args["userId"] not in (event.get("users") or []):
        return False
    if args.get("groupId"):
        calendar = calendars.get(event.get("calendarId")) or {}
        if args["groupId"] not in (event.get("groupId"), calendar.get("groupId")):
            return False
    return True


def calendar_events(call):
    """``GET /calendars/events?locationId&startTime&endTime&calendarId|userId|groupId``: the
    location's appointments starting in the range, in one answer, by start time."""
    if not any(call.args.get(name) for name in ("calendarId", "userId", "groupId")):
        return answers.unprocessable(["Either of calendarId, userId or groupId is required"])
    calendars = {c["id"]: c for c in call.store.items(CALENDARS)}
    events = [e for e in call.store.items(EVENTS)
              if e.get("locationId") == call.args.get("locationId") and in_time_window(e, call.args)
              and _owned_by(e, call, calendars)]
    events.sort(key=lambda e: sort_key(e, "startTime"))
    return 200, {"events": events, "traceId": answers.trace_id()}


def _wall_clock(value, zone):
    ms = epoch_ms(value)
    if ms is None:
        return value
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")


def _location_zone(location):
    try:
        return ZoneInfo(location.get("timezone") or "UTC")
    except (ValueError, OSError, LookupError):  # a zone a test made up: GHL would not store it
        return timezone.utc


def contact_appointments(call):
    """``GET /contacts/{contactId}/appointments``: ``{events}`` with zone-less local times."""
    status, body = filtered_view(call)
    events = body.get("events") if status == 200 and isinstance(body, dict) else None
    for event in events if isinstance(events, list) else []:
        zone = _location_zone(call.store.get(LOCATIONS, event.get("locationId")) or {})
        event.update({f: _wall_clock(event[f], zone) for f in WALL_CLOCK_FIELDS if f in event})
    return status, body


def _bad_status(body):
    status = body.get("appointmentStatus")
    if status is not None and status not in APPOINTMENT_STATUSES:
        return answers.unprocessable(["appointmentStatus must be one of the following values: "
                                      + ", ".join(APPOINTMENT_STATUSES)])
    return None


def book_appointment(call):
    """``POST /calendars/events/appointments``: the stored appointment, as GHL answers it (201)."""
    body = call.body_dict
    refused = _bad_status(body)
    if refused:
        return refused
    calendar = call.store.get(CALENDARS, body.get("calendarId")) or {}
    start = epoch_ms(body.get("startTime"))
    fields = {"title": "", "appointmentStatus": DEFAULT_STATUS, "isRecurring": bool(body.get("rrule")),
              "users": [body["assignedUserId"]] if body.get("assignedUserId") else [], **body}
    if calendar.get("groupId") and not fields.get("groupId"):
        fields["groupId"] = calendar["groupId"]
    for name in ("startTime", "endTime"):  # epoch ms are accepted, ISO-8601 is what GHL answers
        if isinstance(fields.get(name), (int, float)) or str(fields.get(name) or "").isdigit():
            fields[name] = iso_from_ms(epoch_ms(fields[name]))
    if not fields.get("endTime") and start is not None:
        minutes = calendar.get("slotDuration") or DEFAULT_SLOT_MINUTES
        fields["endTime"] = iso_from_ms(start + int(minutes) * 60_000)
    for control in ("ignoreFreeSlotValidation", "ignoreDateRange", "toNotify", "overrideLocationConfig"):
        fields.pop(control, None)
    return 201, call.store.create(EVENTS, fields)


def edit_appointment(call):
    """``PUT /calendars/events/appointments/{eventId}``: GHL refuses a status outside its list (422)."""
    return _bad_status(call.body_dict) or generic_update(call)


# -- messages -------------------------------------------------------------------------------------

def _conversation_for(store, fields):
    """(conversation, None) for a message's ``conversationId`` (else the contact's conversation
    in the location, made when it has none), or (None, a 404 answer)."""
    if fields.get("conversationId"):
        conversation = store.get(CONVERSATIONS, fields["conversationId"])
        if conversation is None:
            return None, answers.not_found("Conversation not found")
        return conversation, None
    contact = store.get(CONTACTS, fields.get("contactId")) if fields.get("contactId") else None
    if contact is None:
        return None, answers.not_found("Contact not found")
    location_id = fields.get("locationId") or contact.get("locationId")
    found = store.find(CONVERSATIONS, lambda c: c.get("contactId") == contact["id"]
                       and c.get("locationId") == location_id)
    if found:
        return found, None
    name = " ".join(p for p in (contact.get("firstName"), contact.get("lastName")) if p)
    return store.create(CONVERSATIONS, {"locationId": location_id, "contactId": contact["id"], "type": "TYPE_PHONE",
                                        "unreadCount": 0, "fullName": name, "email": contact.get("email"),
                                        "phone": contact.get("phone")}), None


def add_message(store, fields, direction):
    """Store one message in its conversation as GHL's inbound/outbound endpoints do; (the
    message as the export lists it, None) or (None, an error answer). ``fields`` are
    ProcessMessageBodyDto's: ``type`` (SMS, Email, WhatsApp, Call...), ``message``,
    ``conversationId`` (or ``contactId``), optional ``date``, ``attachments``, ``subject``."""
    with store.lock:
        conversation, failure = _conversation_for(store, fields)
        if failure:
            return None, failure
        kind = fields.get("type") or "SMS"
        if kind not in BODY_TYPES:
            return None, answers.unprocessable(["type must be one of the following values: "
                                                + ", ".join(BODY_TYPES)])
        message_type = BODY_TYPES[kind]
        record = {
            "type": TYPE_NUMBERS.get(message_type, 0), "messageType": message_type,
            "locationId": conversation["locationId"], "contactId": conversation["contactId"],
            "conversationId": conversation["id"], "body": fields.get("message") or fields.get("html") or "",
            "direction": direction, "status": "delivered", "contentType": "text/plain",
            "attachments": list(fields.get("attachments") or []),
        }
        if fields.get("subject"):
            record["meta"] = {"email": {"subject": fields["subject"]}}
        if fields.get("conversationProviderId"):
            record["conversationProviderId"] = fields["conversationProviderId"]
        if direction == "outbound":
            record["source"] = "api"
        if fields.get("date"):
            record["dateAdded"] = iso_from_ms(epoch_ms(fields["date"]) or 0)
        message = store.create(MESSAGES, record)
        unread = (conversation.get("unreadCount") or 0) + (1 if direction == "inbound" else 0)
        store.update(CONVERSATIONS, conversation["id"], {
            "lastMessageBody": record["body"], "lastMessageType": message_type, "lastMessageDirection": direction,
            "lastMessageDate": epoch_ms(message["dateAdded"]), "unreadCount": unread})
        return export_item(message), None


def export_item(message):
    return {k: v for k, v in message.items() if k not in MESSAGE_HIDDEN}


def inbound_message(call):
    """``POST /conversations/messages/inbound``: ProcessMessageResponseDto."""
    body = call.body_dict
    missing = [n for n in ("type", "conversationId", "contactId", "conversationProviderId") if not body.get(n)]
    if missing:
        return answers.should_not_be_empty(*missing)
    message, failure = add_message(call.store, body, "inbound")
    if failure:
        return failure
    return 200, {"success": True, "conversationId": message["conversationId"], "messageId": message["id"],
                 "message": "Message added", "contactId": message["contactId"], "dateAdded": message["dateAdded"],
                 "traceId": answers.trace_id()}


def _encode_cursor(message, field):
    text = json.dumps({"pitId": "sandbox", "lastSort": [epoch_ms(message.get(field)) or 0],
                       "lastId": message["id"]}, separators=(",", ":"))
    return base64.b64encode(text.encode()).decode()


def _decode_cursor(cursor):
    try:
        decoded = json.loads(base64.b64decode(cursor, validate=True))
        return int(decoded["lastSort"][0]), str(decoded["lastId"])
    except (binascii.Error, ValueError, KeyError, IndexError, TypeError):
        raise PagingError(["cursor is invalid"]) from None


def _export_limit(args):
    low, high, default = EXPORT_LIMITS
    raw = args.get("limit")
    if raw in (None, ""):
        return default
    try:
        limit = int(float(raw))
    except ValueError:
        raise PagingError(["limit must be a number conforming to the specified constraints"]) from None
    if not low <= limit <= high:
        raise PagingError([f"limit must not be {'less' if limit < low else 'greater'} than "
                           f"{low if limit < low else high}"])
    return limit


def _one_of(args, name, allowed, default):
    value = args.get(name) or default
    if value not in allowed:
        raise PagingError([f"{name} must be one of the following values: {', '.join(allowed)}"])
    return value


def export_messages(call):
    """``GET /conversations/messages/export``: ``{messages, nextCursor, total}``."""
    args = call.args
    limit = _export_limit(args)
    field = {"createdAt": "dateAdded", "updatedAt": "dateUpdated"}[
        _one_of(args, "sortBy", ("createdAt", "updatedAt"), "createdAt")]
    descending = _one_of(args, "sortOrder", ("asc", "desc"), "desc") == "desc"
    channel = args.get("channel")
    if channel and channel not in CHANNELS:
        raise PagingError([f"channel must be one of the following values: {', '.join(CHANNELS)}"])
    types = CHANNELS[channel] if channel else None
    low, high = epoch_ms(args.get("startDate")), epoch_ms(args.get("endDate"))
    messages = []
    for message in call.store.items(MESSAGES):
        if message.get("locationId") != args.get("locationId"):
            continue
        if any(args.get(n) and message.get(n) != args[n] for n in ("conversationId", "contactId")):
            continue
        kind = message.get("messageType")
        if (kind not in types) if types else (kind in CHANNELS["Email"]):
            continue  # without a channel GHL leaves email out
        at = epoch_ms(message.get("dateAdded")) or 0
        if (low is not None and at < low) or (high is not None and at > high):
            continue
        messages.append(message)
    messages.sort(key=lambda m: sort_key(m, field), reverse=descending)
    total = len(messages)
    if args.get("cursor"):
        after = _decode_cursor(args["cursor"])
        messages = [m for m in messages if (sort_key(m, field) < after if descending else sort_key(m, field) > after)]
    page = messages[:limit]
    more = len(messages) > limit
    return 200, {"messages": [export_item(m) for m in page],
                 "nextCursor": _encode_cursor(page[-1], field) if more else None, "total": total}


# -- tasks ----------------------------------------------------------------------------------------

def _person(record, id_name):
    if not record:
        return None
    return {id_name: record.get("id"), "firstName": record.get("firstName"), "lastName": record.get("lastName")}


def task_row(task, contact, location_id, users):
    """A task as the location search lists it: ``_id`` and the per-contact fields, with the
    location, ``deleted``, the times, and the contact's and assignee's names."""
    row = {"_id": task["id"]}
    row.update({k: v for k, v in task.items() if k not in ("id", "createdAt", "updatedAt")})
    row.update({"locationId": location_id, "deleted": False, "contactId": contact["id"],
                "contactDetails": _person(contact, "_id"),
                "assignedToUserDetails": _person(users.get(task.get("assignedTo")), "id")})
    row["searchAfter"] = [epoch_ms(task.get("dueDate")) or 0, task["id"]]
    return row


def _listed(value):
    if value in (None, ""):
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _body_int(body, name, default, minimum):
    raw = body.get(name)
    if raw in (None, ""):
        return default
    if isinstance(raw, bool) or not isinstance(raw, (int, float, str)) or not str(raw).strip().isdigit():
        raise PagingError([f"{name} must be a number conforming to the specified constraints"])
    if int(raw) < minimum:
        raise PagingError([f"{name} must not be less than {minimum}"])
    return int(raw)


def search_tasks(call):
    """``POST /locations/{locationId}/tasks/search``: ``{tasks}`` (no total), 201."""
    location_id = call.values[0]
    body = call.body_dict
    limit = _body_int(body, "limit", 25, 1)
    skip = _body_int(body, "skip", 0, 0)
    contacts = [c for c in call.store.items(CONTACTS) if c.get("locationId") == location_id]
    if body.get("businessId"):
        contacts = [c for c in contacts if c.get("businessId") == body["businessId"]]
    wanted_contacts, assignees = _listed(body.get("contactId")), _listed(body.get("assignedTo"))
    users = {u["id"]: u for u in call.store.items(USERS)}
    rows = []
    for contact in contacts:
        if wanted_contacts and contact["id"] not in wanted_contacts:
            continue
        for task in call.store.items(f"{CONTACTS}/{contact['id']}/tasks"):
            if assignees and str(task.get("assignedTo")) not in assignees:
                continue
            if isinstance(body.get("completed"), bool) and bool(task.get("completed")) != body["completed"]:
                continue
            if body.get("query") and not matches_text({"t": task.get("title"), "b": task.get("body")}, body["query"]):
                continue
            rows.append(task_row(task, contact, location_id, users))
    rows.sort(key=lambda r: (r["searchAfter"][0], r["_id"]))
    search_after = body.get("searchAfter")
    if isinstance(search_after, list) and len(search_after) == 2:
        after = (epoch_ms(search_after[0]) or 0, str(search_after[1]))
        rows = [r for r in rows if (r["searchAfter"][0], r["_id"]) > after]
        skip = 0
    return 201, {"tasks": rows[skip:skip + limit], "traceId": answers.trace_id()}


SPECIAL_CASES = {
    ("GET", "/calendars/events"): calendar_events,
    ("POST", "/calendars/events/appointments"): book_appointment,
    ("PUT", "/calendars/events/appointments/{}"): edit_appointment,
    ("GET", "/contacts/{}/appointments"): contact_appointments,
    ("GET", "/conversations/messages/export"): export_messages,
    ("POST", "/conversations/messages/inbound"): inbound_message,
    ("POST", "/locations/{}/tasks/search"): search_tasks,
}
