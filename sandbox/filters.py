"""Select records the way GHL list and search endpoints do: query-param equality, free text,
and the ``filters`` of ``POST /contacts/search``."""

import re

from ghl.response_items import dig
from sandbox.store import epoch_ms

# Query params that page, sort or shape a list rather than select records by a field.
NON_FILTER_PARAMS = {
    "limit", "skip", "offset", "page", "pageLimit", "startAfter", "startAfterId", "lastMessageId",
    "sortBy", "sort", "order", "sortDirection", "sortOrder", "query", "q", "searchTerm",
    "startTime", "endTime", "startDate", "endDate", "date", "startAt", "endAt", "type", "ids",
    "getTasks", "getNotes", "getCalendarEvents", "timezone", "isRemoveAllFollowers", "projection",
}
TEXT_PARAMS = ("query", "q", "searchTerm")
# A filter value meaning "no filter" (``status=all`` on opportunities, ``model=all`` on custom fields).
WILDCARDS = {"all"}


def camel(name):
    """``location_id`` -> ``locationId`` (GET /opportunities/search takes snake_case)."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _same(value, wanted):
    if isinstance(value, list):
        return any(_same(v, wanted) for v in value)
    if isinstance(value, bool):
        return str(value).lower() == str(wanted).lower()
    return value is not None and str(value).lower() == str(wanted).lower()


def matches_params(record, params):
    """Whether ``record`` agrees with every selecting query param it has a field for.

    A record without the field passes (GHL filters on what it stores); a list field
    matches when it contains the value, and ``userId=`` also matches a ``userIds`` list.
    """
    for name, wanted in params.items():
        if name in NON_FILTER_PARAMS or wanted in (None, "") or str(wanted).lower() in WILDCARDS:
            continue
        field = camel(name)
        for candidate in (field, field + "s"):
            if candidate in record:
                if not _same(record[candidate], wanted):
                    return False
                break
    return True


def text_of(value):
    if isinstance(value, dict):
        return " ".join(text_of(v) for v in value.values())
    if isinstance(value, list):
        return " ".join(text_of(v) for v in value)
    return "" if value is None else str(value)


def matches_text(record, text):
    """Free-text search: every word of ``text`` appears somewhere in the record."""
    haystack = text_of(record).lower()
    return all(word in haystack for word in str(text).lower().split())


def text_query(params):
    return next((params.get(p) for p in TEXT_PARAMS if params.get(p)), None)


def select(records, params, by_params=True):
    """``records`` narrowed by the query params and the free-text query in ``params``."""
    text = text_query(params)
    return [r for r in records
            if (not by_params or matches_params(r, params)) and (not text or matches_text(r, text))]


def in_time_window(record, params, field="startTime"):
    """``GET /calendars/events``: startTime within [startTime, endTime] (epoch ms) when both are given."""
    low, high = epoch_ms(params.get("startTime")), epoch_ms(params.get("endTime"))
    at = epoch_ms(record.get(field))
    if low is None or high is None or at is None:
        return True
    return low <= at <= high


def _digits(value):
    return re.sub(r"\D", "", str(value or ""))


def same_phone(a, b):
    """Phones match on their last 10 digits (``+1 555-010-0001`` == ``5550100001``)."""
    a, b = _digits(a), _digits(b)
    return bool(a and b) and a[-10:] == b[-10:]


def _field_value(record, field):
    if field.endswith("LowerCase"):
        field = field[: -len("LowerCase")]
    return dig(record, field)


def matches_search_filter(record, spec):
    """One entry of a search ``filters`` list: ``{field, operator, value}`` or ``{group, filters}``."""
    if "group" in spec:
        results = [matches_search_filter(record, f) for f in spec.get("filters") or []]
        return any(results) if str(spec["group"]).upper() == "OR" else all(results)
    value = _field_value(record, spec.get("field", ""))
    wanted = spec.get("value")
    operator = spec.get("operator", "eq")
    if operator in ("eq", "not_eq"):
        wanted_list = wanted if isinstance(wanted, list) else [wanted]
        hit = any(_same(value, w) or (spec.get("field") == "phone" and same_phone(value, w))
                  for w in wanted_list)
        return hit if operator == "eq" else not hit
    if operator in ("contains", "not_contains"):
        hit = str(wanted).lower() in text_of(value).lower()
        return hit if operator == "contains" else not hit
    if operator == "exists":
        return value not in (None, "", [])
    if operator == "not_exists":
        return value in (None, "", [])
    if operator == "range":
        bounds = wanted if isinstance(wanted, dict) else {}
        at = epoch_ms(value) if not isinstance(value, (int, float)) else value
        if at is None:
            return False
        checks = {"gt": lambda b: at > b, "gte": lambda b: at >= b, "lt": lambda b: at < b, "lte": lambda b: at <= b}
        return all(checks[k](epoch_ms(b) if not isinstance(b, (int, float)) else b)
                   for k, b in bounds.items() if k in checks)
    return True
