"""Custom fields in the sandbox: the location's definitions (one contact field of every GHL data
type, a few opportunity fields) and the write shapes GHL's spec gives for each type.

Contact and opportunity creates, updates and upserts go through ``prepare_write``: an entry that
does not fit its field's type is a 422, as GHL's validation answers; valid values are stored in
the read shape (contacts ``[{id, value}]``, opportunities ``[{id, fieldValue}]``), merged with the
record's other fields on an update. Entries naming no field of the location are dropped.
"""

import re

from sandbox import answers

# (id, name, fieldKey suffix, dataType, picklistOptions). The first three ids were the sandbox's
# only fields before; other tests use them.
CONTACT_FIELDS = [
    ("sandbox-field-1", "Favorite Color", "favorite_color", "TEXT", None),
    ("sandbox-field-2", "Shoe Size", "shoe_size", "NUMERICAL", None),
    ("sandbox-field-4", "Life Story", "life_story", "LARGE_TEXT", None),
    ("sandbox-field-5", "Office Phone", "office_phone", "PHONE", None),
    ("sandbox-field-6", "Lifetime Spend", "lifetime_spend", "MONETORY", None),
    ("sandbox-field-7", "Interests", "interests", "CHECKBOX", ["Hiking", "Cooking", "Chess"]),
    ("sandbox-field-8", "Membership Tier", "membership_tier", "SINGLE_OPTIONS", ["Bronze", "Silver", "Gold"]),
    ("sandbox-field-9", "Languages", "languages", "MULTIPLE_OPTIONS", ["English", "French", "Spanish"]),
    ("sandbox-field-10", "Renewal Date", "renewal_date", "DATE", None),
    ("sandbox-field-11", "Social Profiles", "social_profiles", "TEXTBOX_LIST", ["Profile 1", "Profile 2"]),
    ("sandbox-field-12", "Signed Contract", "signed_contract", "FILE_UPLOAD", None),
    ("sandbox-field-13", "Preferred Contact Time", "preferred_contact_time", "RADIO",
     ["Morning", "Afternoon", "Evening"]),
    ("sandbox-field-14", "Billing Email", "billing_email", "EMAIL", None),
]
OPPORTUNITY_FIELDS = [
    ("sandbox-field-3", "Deal Source", "deal_source", "SINGLE_OPTIONS", ["Referral", "Website", "Trade Show"]),
    ("sandbox-field-15", "Competitor", "competitor", "TEXT", None),
    ("sandbox-field-16", "Products of Interest", "products_of_interest", "MULTIPLE_OPTIONS",
     ["Widgets", "Gadgets", "Gizmos"]),
    ("sandbox-field-17", "Seats", "seats", "NUMERICAL", None),
    ("sandbox-field-18", "Requirements Met", "requirements_met", "CHECKBOX", ["Budget", "Authority", "Need", "Timing"]),
    ("sandbox-field-19", "Expected Close", "expected_close", "DATE", None),
]

STRING_TYPES = ("TEXT", "LARGE_TEXT", "PHONE", "EMAIL", "SINGLE_OPTIONS", "RADIO", "DATE")
NUMBER_TYPES = ("NUMERICAL", "MONETORY")
ARRAY_TYPES = ("CHECKBOX", "MULTIPLE_OPTIONS", "TEXTBOX_LIST")
# The date formats the contacts spec lists for dateOfBirth, GHL's other date-only field.
DATE_FORMATS = re.compile(r"^(\d{4}[-/._]\d{2}[-/._]\d{2}|\d{2}[-/._]\d{2}[-/._]\d{4})$")

WRITES = {
    ("POST", "/contacts"): "contact", ("PUT", "/contacts/{}"): "contact", ("POST", "/contacts/upsert"): "contact",
    ("POST", "/opportunities"): "opportunity", ("PUT", "/opportunities/{}"): "opportunity",
}
# The spec's opportunity upsert body has no customFields; GHL's whitelisting refuses the property.
REFUSED = {("POST", "/opportunities/upsert")}
READ_VALUE = {"contact": "value", "opportunity": "fieldValue"}
COLLECTIONS = {"contact": "/contacts", "opportunity": "/opportunities"}


def seed_definitions(location_id):
    """The definitions ``GET /locations/{id}/customFields`` lists, in GHL's shape."""
    fields = [(*f, "contact") for f in CONTACT_FIELDS] + [(*f, "opportunity") for f in OPPORTUNITY_FIELDS]
    fields.sort(key=lambda f: int(f[0].rsplit("-", 1)[1]))
    return [{"id": ident, "name": name, "fieldKey": f"{model}.{suffix}", "dataType": data_type,
             "picklistOptions": list(options or []), "model": model, "locationId": location_id,
             "position": n * 50, "placeholder": ""}
            for n, (ident, name, suffix, data_type, options, model) in enumerate(fields, start=1)]


def _definitions(store, location_id, model):
    return [d for d in store.items(f"/locations/{location_id}/customFields") if d.get("model") == model]


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


NUMBER_TEXT = re.compile(r"-?[0-9]+(\.[0-9]+)?")


def _is_number_text(value):
    return bool(NUMBER_TEXT.fullmatch(value.strip()))


def value_problem(data_type, value, model="contact"):
    """What is wrong with ``field_value`` for a field of ``data_type`` (None when it fits). The
    opportunities spec has no number shape: a number field's value is its text there."""
    if value is None:
        return None
    if model == "opportunity" and data_type in NUMBER_TYPES:
        return None if isinstance(value, str) and _is_number_text(value) else "must be a number as text"
    if data_type in STRING_TYPES:
        if not isinstance(value, str):
            return "must be a string"
        if data_type == "DATE" and not DATE_FORMATS.match(value.strip()):
            return "must be a valid date (YYYY-MM-DD)"
    elif data_type in NUMBER_TYPES:
        if not _is_number(value):
            return "must be a number"
    elif data_type in ARRAY_TYPES:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            return "must be an array of strings"
    elif data_type == "FILE_UPLOAD":
        if not isinstance(value, dict) or not value or not all(
                isinstance(f, dict) and isinstance(f.get("url"), str) and isinstance(f.get("meta"), dict)
                for f in value.values()):
            return "must be an object of files, each {meta, url}"
    return None


def _checked(entries, definitions, model):
    """([(definition, value)], [problems]) for a body's ``customFields``."""
    if not isinstance(entries, list):
        return [], ["customFields must be an array"]
    by_id = {d["id"]: d for d in definitions}
    by_key = {d["fieldKey"]: d for d in definitions}
    accepted, problems = [], []
    for n, entry in enumerate(entries):
        where = f"customFields.{n}"
        if not isinstance(entry, dict):
            problems.append(f"{where} must be an object")
            continue
        value = entry.get("field_value")
        ident = entry.get("id")
        # Contacts: every write variant requires id. Opportunities: a string value may name the key instead.
        key_allowed = model == "opportunity" and (value is None or isinstance(value, str))
        if not (isinstance(ident, str) and ident) and not (key_allowed and isinstance(entry.get("key"), str)):
            problems.append(f"{where}.id must be a string" if ident is not None else f"{where}.id should not be empty")
            continue
        definition = by_id.get(ident) if ident else by_key.get(entry["key"])
        if definition is None:
            continue
        problem = value_problem(definition.get("dataType"), value, model)
        if problem:
            problems.append(f"{where}.field_value {problem}")
            continue
        accepted.append((definition, value))
    return accepted, problems


def _merged(existing, accepted, model):
    """The stored read-shape list: ``existing`` entries, overwritten by the accepted ones."""
    name = READ_VALUE[model]
    merged = {e["id"]: e for e in existing or [] if isinstance(e, dict) and e.get("id")}
    for definition, value in accepted:
        merged[definition["id"]] = {"id": definition["id"], name: value}
    return list(merged.values())


def prepare_write(call, location_id):
    """None when ``call`` is no custom-field write or its ``customFields`` fit (the body is then
    rewritten to the stored shape); else GHL's 422 answer."""
    route = (call.op.method, call.op.shape)
    body = call.body_dict
    if "customFields" not in body:
        return None
    if route in REFUSED:
        return answers.unprocessable(["property customFields should not exist"])
    model = WRITES.get(route)
    if model is None:
        return None
    existing = call.store.get(COLLECTIONS[model], call.values[-1]) if call.op.method == "PUT" else None
    location_id = body.get("locationId") or (existing or {}).get("locationId") or location_id
    accepted, problems = _checked(body["customFields"], _definitions(call.store, location_id, model), model)
    if problems:
        return answers.unprocessable(problems)
    call.body = {**body, "customFields": _merged((existing or {}).get("customFields"), accepted, model)}
    return None


def merged_into(existing, body):
    """An upsert's ``body`` with its (already stored-shape) customFields merged over ``existing``'s."""
    if not existing or not isinstance(body.get("customFields"), list):
        return body
    current = {e["id"]: e for e in existing.get("customFields") or [] if isinstance(e, dict) and e.get("id")}
    current.update((e["id"], e) for e in body["customFields"])
    return {**body, "customFields": list(current.values())}
