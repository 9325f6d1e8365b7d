"""The sandbox's starting data: one obviously fake location with a little of everything.

Deterministic: fixed ids and timestamps (January 2024), so tests and benchmarks see the
same data on every start and after every reset. Records created later get current times
and so always sort after these.
"""

from sandbox.custom_fields import seed_definitions
from sandbox.store import iso_from_ms

LOCATION_ID = "sandbox-location"
COMPANY_ID = "sandbox-company"
PIPELINE_ID = "sandbox-pipeline-1"
CALENDAR_ID = "sandbox-calendar-1"
SEED_START_MS = 1704099600000  # 2024-01-01T09:00:00.000Z


def _people():
    return [
        ("Ada", "Sample", "ada.sample@example.com", "+15550100001", ["customer", "vip"]),
        ("Ben", "Example", "ben.example@example.com", "+15550100002", ["lead"]),
        ("Cleo", "Testwell", "cleo.testwell@example.com", "+15550100003", ["lead", "newsletter"]),
        ("Dev", "Placeholder", "dev.placeholder@example.com", "+15550100004", []),
        ("Eve", "Fakename", "eve.fakename@example.com", "+15550100005", ["customer"]),
    ]


def seed_collections():
    """{collection key: (id field, [records])}, each record with its id and, where GHL has
    them, location fields. Timestamps are added by ``seed_store``."""
    contacts = [
        {"id": f"sandbox-contact-{n}", "locationId": LOCATION_ID, "firstName": first, "lastName": last,
         "contactName": f"{first} {last}", "email": email, "phone": phone, "tags": tags,
         "source": "sandbox", "type": "lead", "country": "US", "timezone": "America/New_York",
         "customFields": [], "dnd": False, "followers": [],
         **({"businessId": "sandbox-business-1"} if n == 2 else {})}
        for n, (first, last, email, phone, tags) in enumerate(_people(), start=1)
    ]
    stages = [{"id": f"sandbox-stage-{n}", "name": name, "position": n - 1}
              for n, name in enumerate(["New Lead", "Contacted", "Proposal Sent", "Won"], start=1)]
    users = [
        {"id": "sandbox-user-1", "name": "Alex Admin", "firstName": "Alex", "lastName": "Admin",
         "email": "alex.admin@example.com", "phone": "+15550100101", "companyId": COMPANY_ID,
         "roles": {"type": "account", "role": "admin", "locationIds": [LOCATION_ID]}, "deleted": False},
        {"id": "sandbox-user-2", "name": "Uma User", "firstName": "Uma", "lastName": "User",
         "email": "uma.user@example.com", "phone": "+15550100102", "companyId": COMPANY_ID,
         "roles": {"type": "account", "role": "user", "locationIds": [LOCATION_ID]}, "deleted": False},
    ]
    return {
        "/locations": ("id", [{
            "id": LOCATION_ID, "companyId": COMPANY_ID, "name": "Sandbox Location",
            "email": "owner@example.com", "phone": "+15550100000", "address": "1 Example Street",
            "city": "Exampleville", "state": "CA", "country": "US", "postalCode": "90000",
            "website": "https://sandbox.example.com", "timezone": "America/New_York"}]),
        "/companies": ("id", [{"id": COMPANY_ID, "name": "Sandbox Agency", "email": "agency@example.com",
                               "phone": "+15550100009", "website": "https://agency.example.com"}]),
        "/users": ("id", users),
        "/contacts": ("id", contacts),
        "/contacts/sandbox-contact-1/tasks": ("id", [{
            "id": "sandbox-task-1", "contactId": "sandbox-contact-1", "title": "Call Ada back",
            "body": "Ask about the sample order.", "dueDate": "2024-02-01T15:00:00.000Z",
            "completed": False, "assignedTo": "sandbox-user-1"}]),
        "/contacts/sandbox-contact-1/notes": ("id", [{
            "id": "sandbox-note-1", "contactId": "sandbox-contact-1", "userId": "sandbox-user-1",
            "body": "Met at the example.com trade fair."}]),
        "/businesses": ("id", [{"id": "sandbox-business-1", "locationId": LOCATION_ID, "name": "Example Widgets",
                                "email": "hello@widgets.example.com", "phone": "+15550100201"}]),
        "/opportunities/pipelines": ("id", [{"id": PIPELINE_ID, "name": "Sandbox Sales", "stages": stages,
                                             "locationId": LOCATION_ID, "showInFunnel": True}]),
        "/opportunities": ("id", [
            {"id": f"sandbox-opportunity-{n}", "name": name, "locationId": LOCATION_ID,
             "pipelineId": PIPELINE_ID, "pipelineStageId": stage, "status": "open", "monetaryValue": value,
             "contactId": contact, "assignedTo": "sandbox-user-1", "source": "sandbox", "followers": []}
            for n, (name, stage, value, contact) in enumerate([
                ("Ada's sample order", "sandbox-stage-2", 1200, "sandbox-contact-1"),
                ("Ben's trial", "sandbox-stage-1", 300, "sandbox-contact-2")], start=1)]),
        "/calendars/groups": ("id", [{"id": "sandbox-group-1", "locationId": LOCATION_ID, "name": "Sandbox Team",
                                      "description": "Sandbox calendars", "slug": "sandbox-team",
                                      "isActive": True}]),
        "/calendars": ("id", [{"id": CALENDAR_ID, "locationId": LOCATION_ID, "groupId": "sandbox-group-1",
                               "name": "Sandbox Consultations", "description": "A fake calendar",
                               "slug": "sandbox-consultations", "calendarType": "round_robin",
                               "slotDuration": 30, "isActive": True}]),
        "/calendars/events": ("id", [{
            "id": "sandbox-appointment-1", "calendarId": CALENDAR_ID, "locationId": LOCATION_ID,
            "contactId": "sandbox-contact-1", "title": "Consultation with Ada", "appointmentStatus": "confirmed",
            "assignedUserId": "sandbox-user-1", "startTime": "2024-02-01T15:00:00.000Z",
            "endTime": "2024-02-01T15:30:00.000Z"}]),
        "/calendars/resources/rooms": ("id", [{
            "id": "sandbox-room-1", "locationId": LOCATION_ID, "name": "Example Room", "resourceType": "rooms",
            "isActive": True, "description": "A fake meeting room", "quantity": 1, "outOfService": 0,
            "capacity": 6, "calendarIds": [CALENDAR_ID]}]),
        "/workflows": ("id", [{"id": f"sandbox-workflow-{n}", "name": name, "status": "published",
                               "version": 1, "locationId": LOCATION_ID}
                              for n, name in enumerate(["Welcome Sequence", "Appointment Reminder"], start=1)]),
        "/campaigns": ("id", [{"id": f"sandbox-campaign-{n}", "name": name, "status": "published",
                               "locationId": LOCATION_ID}
                              for n, name in enumerate(["Spring Newsletter", "Re-engagement"], start=1)]),
        # One contact field of every GHL data type and a few opportunity fields (sandbox.custom_fields).
        f"/locations/{LOCATION_ID}/customFields": ("id", seed_definitions(LOCATION_ID)),
        f"/locations/{LOCATION_ID}/tags": ("id", [{"id": f"sandbox-tag-{n}", "name": name, "locationId": LOCATION_ID}
                                                  for n, name in enumerate(["customer", "lead", "vip"], start=1)]),
        "/forms": ("id", [{"id": "sandbox-form-1", "name": "Contact Us", "locationId": LOCATION_ID}]),
        "/surveys": ("id", [{"id": "sandbox-survey-1", "name": "Customer Feedback", "locationId": LOCATION_ID}]),
        "/opportunities/lost-reason": ("id", [{"id": "sandbox-lost-reason-1", "name": "Went with a competitor",
                                               "locationId": LOCATION_ID}]),
        "/snapshots": ("id", [{"id": "sandbox-snapshot-1", "name": "Sandbox Starter", "type": "own",
                               "companyId": COMPANY_ID}]),
        "/conversations": ("id", [{"id": "sandbox-conversation-1", "locationId": LOCATION_ID,
                                   "contactId": "sandbox-contact-1", "type": "TYPE_PHONE", "unreadCount": 1,
                                   "lastMessageBody": "Sounds good, see you then!", "fullName": "Ada Sample",
                                   "email": "ada.sample@example.com", "phone": "+15550100001"}]),
        "/conversations/messages": ("id", [
            {"id": f"sandbox-message-{n}", "conversationId": "sandbox-conversation-1", "locationId": LOCATION_ID,
             "contactId": "sandbox-contact-1", "body": body, "direction": direction, "messageType": "TYPE_SMS",
             "contentType": "text/plain", "status": "delivered"}
            for n, (body, direction) in enumerate([("Hi Ada, this is a sandbox message.", "outbound"),
                                                   ("Sounds good, see you then!", "inbound")], start=1)]),
        "/conversations/messages/email": ("id", [{
            "id": "sandbox-email-1", "conversationId": "sandbox-conversation-1", "locationId": LOCATION_ID,
            "contactId": "sandbox-contact-1", "subject": "Your sandbox order", "body": "<p>Thanks, Ada!</p>",
            "from": "owner@example.com", "to": ["ada.sample@example.com"], "direction": "outbound",
            "status": "delivered"}]),
        "/associations": ("id", [{"id": "sandbox-association-1", "locationId": LOCATION_ID,
                                  "key": "contact_business", "firstObjectKey": "contact",
                                  "firstObjectLabel": "employee", "secondObjectKey": "business",
                                  "secondObjectLabel": "employer", "associationType": "USER_DEFINED"}]),
        "/associations/relations": ("id", [{"id": "sandbox-relation-1", "locationId": LOCATION_ID,
                                            "associationId": "sandbox-association-1",
                                            "firstRecordId": "sandbox-contact-2",
                                            "secondRecordId": "sandbox-business-1"}]),
        "/blogs/site": ("_id", [{"_id": "sandbox-blog-1", "name": "Sandbox Blog", "locationId": LOCATION_ID}]),
        "/blogs/authors": ("_id", [{"_id": "sandbox-author-1", "name": "Alex Admin", "locationId": LOCATION_ID}]),
        "/blogs/categories": ("_id", [{"_id": "sandbox-category-1", "label": "News", "urlSlug": "news",
                                       "locationId": LOCATION_ID}]),
        "/blogs/posts": ("_id", [{"_id": "sandbox-post-1", "title": "Hello from the sandbox", "blogId": "sandbox-blog-1",
                                  "locationId": LOCATION_ID, "urlSlug": "hello-sandbox", "status": "PUBLISHED",
                                  "author": "sandbox-author-1", "categories": ["sandbox-category-1"],
                                  "description": "A fake post.", "publishedAt": "2024-01-05T12:00:00.000Z"}]),
    }


def seed_store(store):
    """Fill ``store`` with the seed records, one minute apart in a fixed order."""
    minute = 0
    for key, (id_field, records) in seed_collections().items():
        for record in records:
            stamp = iso_from_ms(SEED_START_MS + minute * 60_000)
            minute += 1
            store.create(key, {**record, "dateAdded": stamp, "dateUpdated": stamp,
                               "createdAt": stamp, "updatedAt": stamp}, id_field=id_field)
