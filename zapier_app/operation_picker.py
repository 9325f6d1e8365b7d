"""The generated catalog operations as the Zapier app offers them: chosen in a dropdown of two
generic steps ("Run a GHL Operation", "New Item in a GHL List"), never a step each.

The 431 operations generated from GHL's specs would bury the hand-written steps among hundreds
of look-alike entries, and most are rarely wanted; so one action runs any generated action or
search, one polling trigger watches any generated list with ids, and the fields of the chosen
operation load from its record (the same fields a first-class step of it would have).

``GET /zapier/operations`` (``server/routes/zapier_operations.py``) answers ``choices_page``;
``GET /zapier/operations/<key>/fields`` answers ``step_fields``. Pure: no I/O.
"""

import re

from zapier_app import fields, presentation

# The steps and which records each offers: ``run`` (the action) actions and searches, ``poll``
# (the trigger) lists whose items carry an id the service can dedupe on.
STEPS = ("run", "poll")
PAGE_SIZE = 100
MAX_PAGE = 20
MAX_QUERY_CHARS = 100
MAX_LABEL_CHARS = 200

# The inputs the two steps add themselves; a generated record must not use these keys.
OPERATION_KEY = "operation"
SEARCH_KEY = "operation_search"
SERVICE_KEY = "operation_service"
STEP_KEYS = (OPERATION_KEY, SEARCH_KEY, SERVICE_KEY)
NOTES_KEY = "operation_notes"

SERVICE_WORDS = {"saas": "SaaS", "api": "API", "ai": "AI", "isv": "ISV", "oauth": "OAuth"}
ACCESS_NOTES = {
    ("agency",): "agency token only",
    ("oauth",): "OAuth only",
    ("agency", "oauth"): "agency OAuth token only",
}
DEPRECATED_NAME = re.compile(r"\s*\(deprecated\)\s*$", re.IGNORECASE)


def step_of(record):
    """The step that offers ``record`` (``run`` or ``poll``), or None: hand-written records are
    steps of their own, and a list without item ids cannot fire once per item."""
    if record.get("origin") != "generated":
        return None
    if record["kind"] in ("action", "search"):
        return "run"
    response = record["response"]
    if record["kind"] == "trigger" and not response.get("single") and response.get("id_field"):
        return "poll"
    return None


def offered(catalog, step):
    return [record for record in catalog if step_of(record) == step]


def services(catalog, step):
    """The GHL services with operations the step offers, sorted."""
    return sorted({record["service"] for record in offered(catalog, step)})


def service_label(service):
    """``social-media-posting`` -> "Social Media Posting", ``saas-api`` -> "SaaS API"."""
    return " ".join(SERVICE_WORDS.get(word, word.capitalize()) for word in service.split("-") if word)


def service_choices(catalog, step):
    return [{"value": s, "sample": s, "label": service_label(s)} for s in services(catalog, step)]


def _access(record):
    return tuple(sorted(record.get("access") or ()))


def _replacement_name(record, catalog):
    replacement = catalog.get((record.get("deprecated") or {}).get("replacement") or "")
    if replacement is None:
        return None
    if step_of(replacement) is None and presentation.role(replacement) != "omit":
        return presentation.operation_label(replacement)  # the first-class step the user sees
    return DEPRECATED_NAME.sub("", replacement["name"])


def notes(record, catalog):
    """What the choice's label adds to its name: which tokens GHL accepts, and deprecation."""
    said = []
    if _access(record) in ACCESS_NOTES:
        said.append(ACCESS_NOTES[_access(record)])
    if record.get("deprecated") is not None:
        replacement = _replacement_name(record, catalog)
        said.append(f"deprecated: use {replacement}" if replacement else "deprecated")
    return said


def choice_label(record, catalog):
    """"Create Invoice (Invoices)", "Get Agency Plans (SaaS API; agency token only; deprecated: use …)"."""
    name = DEPRECATED_NAME.sub("", record["name"]) if record.get("deprecated") is not None else record["name"]
    service = service_label(record["service"])
    name = name.removesuffix(f" ({service})")  # "Update Product Reviews (Products)" says it twice otherwise
    label = f"{name} ({'; '.join([service, *notes(record, catalog)])})"
    return label if len(label) <= MAX_LABEL_CHARS else label[:MAX_LABEL_CHARS - 1] + "…"


def _matches(record, words):
    text = " ".join([record["name"], record["summary"], record["path"], record["key"], record["service"],
                     service_label(record["service"])]).lower()
    return all(word in text for word in words)


def matching(catalog, step, query="", service=None):
    """The step's records whose name, summary, path or service hold every word of ``query``,
    of ``service`` if given, sorted by service then name."""
    words = query.lower().split()
    found = [r for r in offered(catalog, step) if (not service or r["service"] == service) and _matches(r, words)]
    return sorted(found, key=lambda r: (r["service"], r["name"].lower(), r["key"]))


def choices_page(catalog, step, query="", service=None, page=0):
    """Zapier's dropdown page ``page`` (0-based): ``[{"id": catalog key, "name": label}]``;
    an empty page ends Zapier's "load more"."""
    found = matching(catalog, step, query, service)[page * PAGE_SIZE:(page + 1) * PAGE_SIZE]
    return [{"id": record["key"], "name": choice_label(record, catalog)} for record in found]


# ----------------------------------------------------------------------------- fields


def notes_field(record, catalog):
    """A ``copy`` field (text, no input) saying what the user must know before running the
    operation: the tokens GHL accepts, deprecation, what the spec leaves unsaid. None if nothing."""
    said = []
    _, needs = presentation.access_note(record)
    if needs:
        said.append(needs)
    if record.get("deprecated") is not None:
        replacement = _replacement_name(record, catalog)
        said.append(f"GHL has deprecated this operation; use {replacement} instead." if replacement
                    else "GHL has deprecated this operation.")
    unknown = (record.get("generated") or {}).get("unknown") or []
    if unknown:
        said.append("GHL's documentation does not say: " + "; ".join(unknown) + ".")
    if not said:
        return None
    return {"key": NOTES_KEY, "label": "About This Operation", "type": "copy",
            "helpText": presentation.in_code_spans(" ".join(said))[:1000]}


def input_fields(record, catalog):
    """The chosen operation's Zapier input fields: those a first-class step of it would have
    (custom-field loaders left out: generated records write none), after a note if it needs one."""
    kind = {"action": "create", "search": "search", "trigger": "trigger"}[record["kind"]]
    listed = [f for f in fields.input_fields(record, catalog, kind) if isinstance(f, dict)]
    note = notes_field(record, catalog)
    return ([note] if note else []) + listed


def output_fields(record, sample):
    """The output fields of the chosen operation's answer as the step returns it (``sample``:
    the record's sample as the service answers it): a search's list comes as ``count`` and the
    line items ``items``."""
    if record["kind"] == "trigger":
        return fields.output_fields(sample, {"id": "ID", "ghl_id": "GHL ID"})
    if record["kind"] == "action":
        return fields.output_fields(sample)
    items = [{**field, "key": f"items[]{field['key']}", "label": f"Items {field['label']}"}
             for field in fields.output_fields(sample)]
    return [{"key": "count", "label": "Number of Items", "type": "integer"}, *items]
