"""GHL endpoints that do more than store and return records: the contacts list and its
cursor quirk, searches, upserts, duplicate checks, bulk tag updates, slugs, free slots and
sending a message.

Each function takes a ``handlers.Call`` and answers ``(status, body)``; ``SPECIAL_CASES``
maps (method, path shape) to them.
"""

from datetime import datetime, timedelta, timezone

from sandbox import activity, answers, commerce, custom_fields
from sandbox.filters import matches_params, matches_search_filter, matches_text, same_phone
from sandbox.handlers import CREATE_DEFAULTS
from sandbox.paging import PagingError, cursor_page, offset_page, sort_key
from sandbox.seed import LOCATION_ID
from sandbox.store import epoch_ms

CONTACTS = "/contacts"
OPPORTUNITIES = "/opportunities"
UPSERT_CONTROL_FIELDS = ("createNewIfDuplicateAllowed", "isRemoveAllFollowers", "followersActionType")


def _location_contacts(call, location_id):
    return [c for c in call.store.items(CONTACTS) if c.get("locationId") == location_id]


def contacts_list(call):
    """``GET /contacts/`` (deprecated, still what most pollers use): newest first, paged by
    (startAfter, startAfterId); ``sortBy=date_updated`` and ``order=asc`` as n8n sends them."""
    location_id = call.args.get("locationId")
    if not location_id:
        return answers.should_not_be_empty("locationId")
    contacts = _location_contacts(call, location_id)
    text = call.args.get("query")
    if text:
        contacts = [c for c in contacts if matches_text(c, text)]
    field = "dateUpdated" if call.args.get("sortBy") == "date_updated" else "dateAdded"
    descending = call.args.get("order", "desc").lower() != "asc"
    page = cursor_page(contacts, call.args, field, descending, default_limit=20, max_limit=100, url=call.url)
    return 200, {"contacts": page.items, "count": page.total, "meta": page.meta}


def _search_sort(body):
    """(field, descending) of a search's first ``sort`` entry; newest added first by default."""
    for entry in body.get("sort") or []:
        if isinstance(entry, dict) and entry.get("field"):
            return entry["field"], str(entry.get("direction", "desc")).lower() != "asc"
    return "dateAdded", True


def search_item(contact):
    """A contact as search answers carry it: with ``firstNameLowerCase``/``lastNameLowerCase``
    and ``address`` (GHL #314: search items say ``address``, not ``address1``)."""
    for name in ("firstName", "lastName"):
        if contact.get(name) is not None:
            contact[name + "LowerCase"] = str(contact[name]).lower()
    if "address" not in contact and contact.get("address1") is not None:
        contact["address"] = contact["address1"]
    return contact


def contacts_search(call):
    """``POST /contacts/search``: ``{contacts, total}``, each contact with its ``searchAfter``,
    sorted by the body's first ``sort`` entry (``dateAdded``, ``dateUpdated``...; newest added first by default)."""
    body = call.body_dict
    missing = [name for name in ("locationId", "pageLimit") if body.get(name) in (None, "")]
    if missing:
        return answers.should_not_be_empty(*missing)
    try:
        page_limit = int(body["pageLimit"])
    except (TypeError, ValueError):
        raise PagingError(["pageLimit must be a number conforming to the specified constraints"])
    if not 1 <= page_limit <= 500:
        raise PagingError([f"pageLimit must not be {'less than 1' if page_limit < 1 else 'greater than 500'}"])
    contacts = _location_contacts(call, body["locationId"])
    if body.get("query"):
        contacts = [c for c in contacts if matches_text(c, body["query"])]
    contacts = [c for c in contacts if all(matches_search_filter(c, f) for f in body.get("filters") or [])]
    field, descending = _search_sort(body)
    contacts.sort(key=lambda c: sort_key(c, field), reverse=descending)
    total = len(contacts)
    search_after = body.get("searchAfter")
    if search_after:
        cursor = (epoch_ms(search_after[0]) or 0, str(search_after[-1]))
        contacts = [c for c in contacts if (sort_key(c, field) < cursor if descending else sort_key(c, field) > cursor)]
        page_params = {"pageLimit": page_limit}
    else:
        page_params = body
    page = offset_page(contacts, page_params, size_param="pageLimit")
    for contact in page.items:
        search_item(contact)
        contact["searchAfter"] = list(sort_key(contact, field))
    return 200, {"contacts": page.items, "total": total, "traceId": answers.trace_id()}


def _matching_contact(call, location_id, email, phone):
    """GHL's duplicate rule: the same email, else the same phone, within the location."""
    contacts = _location_contacts(call, location_id)
    if email:
        for contact in contacts:
            if str(contact.get("email") or "").lower() == str(email).lower():
                return contact
    if phone:
        for contact in contacts:
            if same_phone(contact.get("phone"), phone):
                return contact
    return None


def contacts_upsert(call):
    """``POST /contacts/upsert``: update the contact with the same email (else phone) in the
    location, or create one; ``{new, contact, traceId}``."""
    body = {k: v for k, v in call.body_dict.items() if k not in UPSERT_CONTROL_FIELDS}
    if not body.get("locationId"):
        return answers.should_not_be_empty("locationId")
    existing = _matching_contact(call, body["locationId"], body.get("email"), body.get("phone"))
    if existing:
        contact = call.store.update(CONTACTS, existing["id"], custom_fields.merged_into(existing, body))
    else:
        contact = call.store.create(CONTACTS, {**CREATE_DEFAULTS[CONTACTS], **body})
    return 200, {"new": existing is None, "contact": contact, "traceId": answers.trace_id()}


def contacts_duplicate(call):
    """``GET /contacts/search/duplicate?locationId&email|number``: ``{contact}`` (null when none)."""
    location_id = call.args.get("locationId")
    if not location_id:
        return answers.should_not_be_empty("locationId")
    contact = _matching_contact(call, location_id, call.args.get("email"), call.args.get("number"))
    return 200, {"contact": contact, "traceId": answers.trace_id()}


def bulk_tags(call):
    """``POST /contacts/bulk/tags/update/{type}``: add (``type=add``) or remove tags on many contacts."""
    body = call.body_dict
    adding = call.values[-1] == "add"
    tags = list(body.get("tags") or [])
    responses, errors = [], 0
    for contact_id in body.get("contacts") or []:
        contact = call.store.get(CONTACTS, contact_id)
        if contact is None or contact.get("locationId") != body.get("locationId"):
            errors += 1
            responses.append({"contactId": contact_id, "succeeded": False, "message": "Contact not found"})
            continue
        current = list(contact.get("tags") or [])
        if adding:
            now = current + [t for t in dict.fromkeys(tags) if t not in current]
        else:
            now = [] if body.get("removeAllTags") else [t for t in current if t not in tags]
        call.store.update(CONTACTS, contact_id, {"tags": now})
        responses.append({"contactId": contact_id, "succeeded": True, "tags": now})
    return 201, {"succeeded": errors == 0, "succeded": errors == 0, "errorCount": errors, "responses": responses}


def bulk_business(call):
    """``POST /contacts/bulk/business``: set (or, with a null businessId, clear) contacts' business."""
    body = call.body_dict
    ids = list(body.get("ids") or [])
    for contact_id in ids:
        call.store.update(CONTACTS, contact_id, {"businessId": body.get("businessId")})
    return 200, {"success": True, "ids": ids}


def _search_contact(call, contact_id):
    """The contact as opportunity search items embed it (``SearchOpportunitiesContactResponseSchema``)."""
    contact = call.store.get(CONTACTS, contact_id) if contact_id else None
    if contact is None:
        return None
    name = contact.get("name") or " ".join(str(contact[f]) for f in ("firstName", "lastName") if contact.get(f))
    return {"id": contact["id"], "name": name or None, "companyName": contact.get("companyName"),
            "email": contact.get("email"), "phone": contact.get("phone"), "tags": list(contact.get("tags") or [])}


def opportunities_search(call):
    """``GET /opportunities/search?location_id``: snake_case filters, newest first, cursor meta.

    Items embed their contact; ``q`` matches the opportunity's name and its contact's name,
    email, phone and company (every word somewhere there), as GHL's search does."""
    if not call.args.get("location_id"):
        return answers.should_not_be_empty("location_id")
    records = [o for o in call.store.items(OPPORTUNITIES) if o.get("locationId") == call.args["location_id"]]
    records = [r for r in records if matches_params(r, {k: v for k, v in call.args.items() if k != "location_id"})]
    contacts = {}

    def embed(record):
        contact_id = record.get("contactId")
        if contact_id not in contacts:
            contacts[contact_id] = _search_contact(call, contact_id)
        if contacts[contact_id]:
            record["contact"] = contacts[contact_id]
        return record

    text = call.args.get("q")
    if text:
        records = [r for r in map(embed, records)
                   if matches_text({"name": r.get("name"), "contact": r.get("contact")}, text)]
    descending = not str(call.args.get("order", "")).endswith("_asc")
    page = cursor_page(records, call.args, "dateAdded", descending, default_limit=20, max_limit=100, url=call.url)
    for record in page.items:
        embed(record)
    return 200, {"opportunities": page.items, "meta": page.meta, "aggregations": {},
                 "traceId": answers.trace_id()}


def opportunities_upsert(call):
    """``POST /opportunities/upsert``: update by ``id``, else by (pipeline, contact) in the
    location, else create; ``{opportunity, new}``."""
    body = {k: v for k, v in call.body_dict.items() if k not in UPSERT_CONTROL_FIELDS}
    existing = call.store.get(OPPORTUNITIES, body["id"]) if body.get("id") else None
    if existing is None and body.get("contactId"):
        existing = call.store.find(OPPORTUNITIES, lambda o: o.get("locationId") == body.get("locationId")
                                   and o.get("pipelineId") == body.get("pipelineId")
                                   and o.get("contactId") == body["contactId"])
    if existing:
        opportunity = call.store.update(OPPORTUNITIES, existing["id"], body)
    else:
        opportunity = call.store.create(OPPORTUNITIES, {**CREATE_DEFAULTS[OPPORTUNITIES], **body})
    return 200, {"opportunity": opportunity, "new": existing is None, "traceId": answers.trace_id()}


def users_by_email(call):
    """``POST /users/search/filter-by-email``: users of the company with one of ``emails``."""
    body = call.body_dict
    emails = {str(e).lower() for e in body.get("emails") or []}
    users = [u for u in call.store.items("/users")
             if str(u.get("email", "")).lower() in emails and matches_params(u, {"companyId": body.get("companyId")})]
    page = offset_page(users, body)
    return 200, {"users": page.items, "count": page.total}


USER_SEARCH_TEXT_FIELDS = ("name", "firstName", "lastName", "email", "phone")


def users_search(call):
    """``GET /users/search?companyId``: the company's users, narrowed by ``locationId`` (users
    with access to it), ``query`` (full name, email or phone), ``role``, ``type`` and ``ids``;
    sorted by name unless ``sort``/``sortDirection`` say otherwise; ``skip``/``limit`` (25);
    ``{users, count}``."""
    args = call.args
    users = [u for u in call.store.items("/users") if not u.get("deleted")
             and str(u.get("companyId")) == str(args.get("companyId"))]
    if args.get("locationId"):
        users = [u for u in users if args["locationId"] in ((u.get("roles") or {}).get("locationIds") or [])]
    for name in ("role", "type"):
        if args.get(name):
            users = [u for u in users if str((u.get("roles") or {}).get(name, "")).lower() == args[name].lower()]
    if args.get("ids"):
        wanted = {i.strip() for i in args["ids"].split(",") if i.strip()}
        users = [u for u in users if u.get("id") in wanted]
    if args.get("query"):
        users = [u for u in users if matches_text({f: u.get(f) for f in USER_SEARCH_TEXT_FIELDS}, args["query"])]
    field = args.get("sort") or "name"
    descending = str(args.get("sortDirection", "asc")).lower() == "desc"
    if field in ("dateAdded", "dateUpdated", "createdAt", "updatedAt"):
        users.sort(key=lambda u: sort_key(u, field), reverse=descending)
    else:
        users.sort(key=lambda u: str(u.get(field) or "").lower(), reverse=descending)
    page = offset_page(users, {"skip": args.get("skip"), "limit": args.get("limit") or 25})
    return 200, {"users": page.items, "count": page.total, "traceId": answers.trace_id()}


SEND_TYPES = ("SMS", "RCS", "Email", "WhatsApp", "IG", "FB", "Custom", "Live_Chat", "TIKTOK")
MESSAGE_TYPES = {"SMS": "TYPE_SMS", "RCS": "TYPE_RCS", "Email": "TYPE_EMAIL", "WhatsApp": "TYPE_WHATSAPP",
                 "IG": "TYPE_INSTAGRAM", "FB": "TYPE_FACEBOOK", "Custom": "TYPE_CUSTOM_PROVIDER_SMS",
                 "Live_Chat": "TYPE_LIVE_CHAT", "TIKTOK": "TYPE_TIKTOK"}
CONVERSATION_TYPES = {"Email": "TYPE_EMAIL", "FB": "TYPE_FB_MESSENGER"}
MESSAGE_STATUSES = ("delivered", "failed", "pending", "read")


def send_message(call):
    """``POST /conversations/messages``: an outbound message in the contact's conversation
    (made when the contact has none), kept where ``GET /conversations/messages/{id}`` and the
    conversation's messages read it; an email also under ``/conversations/messages/email``.
    ``{conversationId, messageId, emailMessageId (Email), msg, status}``. A contact the sandbox
    does not hold is accepted (its conversation is in the sandbox location), as other creates are."""
    body = call.body_dict
    problems = []
    if body.get("type") not in SEND_TYPES:
        problems.append("type must be one of the following values: " + ", ".join(SEND_TYPES))
    if body.get("status") not in MESSAGE_STATUSES:
        problems.append("status must be one of the following values: " + ", ".join(MESSAGE_STATUSES))
    for name in ("attachments", "emailCc", "emailBcc"):
        if name in body and not (isinstance(body[name], list) and all(isinstance(v, str) for v in body[name])):
            problems.append(f"{name} must be an array of strings")
    if problems:
        return answers.unprocessable(problems)
    kind, contact_id = body["type"], str(body.get("contactId"))
    contact = call.store.get(CONTACTS, contact_id) or {}
    location_id = contact.get("locationId") or LOCATION_ID
    text = body.get("message") or ""
    conversation = call.store.find("/conversations", lambda c: c.get("contactId") == contact_id
                                   and c.get("locationId") == location_id)
    summary = {"lastMessageBody": text or body.get("subject") or "", "lastMessageType": MESSAGE_TYPES[kind],
               "lastMessageDirection": "outbound", "lastMessageDate": epoch_ms(call.store.now())}
    if conversation is None:
        conversation = call.store.create("/conversations", {
            "locationId": location_id, "contactId": contact_id, "type": CONVERSATION_TYPES.get(kind, "TYPE_PHONE"),
            "unreadCount": 0, "fullName": contact.get("contactName") or contact.get("name"),
            "email": contact.get("email"), "phone": contact.get("phone"), **summary})
    else:
        call.store.update("/conversations", conversation["id"], summary)
    message = {
        "conversationId": conversation["id"], "locationId": location_id, "contactId": contact_id,
        "type": SEND_TYPES.index(kind) + 1, "messageType": MESSAGE_TYPES[kind], "direction": "outbound",
        "status": body["status"], "body": text if kind != "Email" else (text or body.get("html") or ""),
        "contentType": "text/html" if kind == "Email" and body.get("html") else "text/plain",
        "attachments": list(body.get("attachments") or []), "source": "api",
    }
    for name in ("templateId", "threadId", "replyMessageId", "scheduledTimestamp", "fromNumber", "toNumber",
                 "conversationProviderId", "appointmentId"):
        if body.get(name) not in (None, ""):
            message[name] = body[name]
    answer = {"conversationId": conversation["id"]}
    if kind == "Email":
        email = call.store.create("/conversations/messages/email", {
            "conversationId": conversation["id"], "locationId": location_id, "contactId": contact_id,
            "subject": body.get("subject"), "body": body.get("html") or text, "altBody": text or None,
            "from": body.get("emailFrom") or "owner@example.com", "to": [body.get("emailTo") or contact.get("email")],
            "cc": list(body.get("emailCc") or []), "bcc": list(body.get("emailBcc") or []),
            "attachments": list(body.get("attachments") or []), "direction": "outbound",
            "status": body["status"], "threadId": body.get("threadId")})
        message["meta"] = {"email": {"messageIds": [email["id"]], "subject": body.get("subject")}}
        answer["emailMessageId"] = email["id"]
    stored = call.store.create("/conversations/messages", message)
    answer.update({"messageId": stored["id"], "msg": "Message queued successfully.", "status": body["status"]})
    return 200, answer


def slug_exists(call):
    """``GET /blogs/posts/url-slug-exists``: whether another post of the location has the slug."""
    slug, post_id = call.args.get("urlSlug"), call.args.get("postId")
    found = call.store.find("/blogs/posts", lambda p: p.get("urlSlug") == slug and p.get("_id") != post_id
                            and matches_params(p, {"locationId": call.args.get("locationId")}))
    return 200, {"exists": found is not None}


def validate_group_slug(call):
    """``POST /calendars/groups/validate-slug``: available unless a group of the location has it."""
    body = call.body_dict
    taken = call.store.find("/calendars/groups", lambda g: g.get("slug") == body.get("slug")
                            and matches_params(g, {"locationId": body.get("locationId")}))
    return 200, {"available": taken is None}


def free_slots(call):
    """``GET /calendars/{id}/free-slots?startDate&endDate`` (epoch ms): half-hour slots from
    09:00 to 17:00 UTC on each day (at most 31), less the calendar's booked start times."""
    calendar_id = call.values[-1]
    if call.store.get("/calendars", calendar_id) is None:
        return answers.not_found("Calendar not found")
    start, end = epoch_ms(call.args.get("startDate")), epoch_ms(call.args.get("endDate"))
    if start is None or end is None:
        return answers.unprocessable([f"{name} must be epoch milliseconds" for name in ("startDate", "endDate")
                                      if epoch_ms(call.args.get(name)) is None])
    booked = {epoch_ms(e.get("startTime")) for e in call.store.items("/calendars/events")
              if e.get("calendarId") == calendar_id}
    day = datetime.fromtimestamp(start / 1000, tz=timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    last = datetime.fromtimestamp(end / 1000, tz=timezone.utc)
    body = {}
    for _ in range(31):
        if day > last:
            break
        slots = []
        for half_hours in range(18, 34):
            moment = day + timedelta(minutes=30 * half_hours)
            ms = int(moment.timestamp() * 1000)
            if start <= ms <= end and ms not in booked:
                slots.append(moment.strftime("%Y-%m-%dT%H:%M:%S+00:00"))
        if slots:
            body[day.strftime("%Y-%m-%d")] = {"slots": slots}
        day += timedelta(days=1)
    body["traceId"] = answers.trace_id()
    return 200, body


def agent_typing(call):
    return 201, {"success": True}


def location_timezones(call):
    return 200, {"timeZones": ["America/New_York", "America/Chicago", "America/Denver",
                               "America/Los_Angeles", "Europe/London", "UTC"]}


SPECIAL_CASES = {
    ("GET", "/contacts"): contacts_list,
    ("POST", "/contacts/search"): contacts_search,
    ("POST", "/contacts/upsert"): contacts_upsert,
    ("GET", "/contacts/search/duplicate"): contacts_duplicate,
    ("POST", "/contacts/bulk/tags/update/{}"): bulk_tags,
    ("POST", "/contacts/bulk/business"): bulk_business,
    ("GET", "/opportunities/search"): opportunities_search,
    ("POST", "/opportunities/upsert"): opportunities_upsert,
    ("POST", "/users/search/filter-by-email"): users_by_email,
    ("GET", "/users/search"): users_search,
    ("POST", "/conversations/messages"): send_message,
    ("GET", "/blogs/posts/url-slug-exists"): slug_exists,
    ("POST", "/calendars/groups/validate-slug"): validate_group_slug,
    ("GET", "/calendars/{}/free-slots"): free_slots,
    ("POST", "/conversations/providers/live-chat/typing"): agent_typing,
    ("GET", "/locations/{}/timezones"): location_timezones,
}
SPECIAL_CASES.update(commerce.SPECIAL_CASES)
SPECIAL_CASES.update(activity.SPECIAL_CASES)

