"""Zapier's integration checks, judged offline on an app definition: ``run_checks(definition)``.

Sources (zapier/visual-builder, the markdown of platform.zapier.com):
- [ICR] ``docs/_publish/validation/integration-checks-reference.md``: the checks by code;
- [IPR] ``docs/_publish/launch-process/integration-publishing-requirements.md``: what review
  asks of copy, fields and samples (section numbers below);
- [BDG] ``docs/_publish/integration-brand-design-guidelines.md``: "How to design successful
  Zapier integrations".

Definition checks of [ICR] (all implemented; "visible" = not ``display.hidden``):
- D001 no trigger/search/create input asks for an API key, token or secret (credentials belong
  to authentication).
- D002 every pasted-key field of custom auth (type password, or a key/token/secret field) has
  help text with a markdown link to where the user finds it.
- D003 the connection label is set and tells connections apart (a template, function or
  request, not a fixed word) and shows no secret auth field.
- D004 no visible operation has an ID input without a dropdown: a field whose label ends in
  "ID"/"IDs" or whose key ends in ``Id``/``_id``/``Ids``/``_ids`` needs ``dynamic`` (or static
  ``choices``). Inputs loaded by a function are not seen offline.
- D005 a ``dynamic`` reference names an existing trigger (``triggerKey.idField[.labelField]``).
- D006 a REST hook trigger has ``performList``. (That it answers the delivery shape needs live
  runs: not judged.)
- D007 every request URL (``url`` / ``*Url`` values) and every markdown link is https.
- D008 links in descriptions and help texts are markdown links ``[text](https://...)`` or sit in
  backticks; no bare or broken link.
- D009 a search has at least one input field.
- D010 a polling trigger's static sample has ``id`` (or every ``primary`` output field).
- D011 a help text is not the same as its label (case, spacing and punctuation ignored).
- D012 every visible trigger, search and create has a non-empty static sample (hidden ones may
  go without, as Zapier's schema allows).
- D013 a search-powered field (``search: "<search key>.<field>"``) names an existing search.
- D014 a search-powered field also has a ``dynamic`` dropdown.
- D015 a search-or-create names an existing search and create (and update, if any).
- D016 the app is not only static webhooks.
- D017 a REST hook trigger has performSubscribe and performUnsubscribe (no static webhook).
- D018 trigger, search, create and search-or-create labels are in title case: every word
  capitalised but the small words ("a", "and", "by", "for", "in", "of", "or", "the", "to", ...)
  inside a label; longer prepositions ("from", "with") either way; words with capitals of their
  own (GHL, WhatsApp) as written. Zapier's exact title-casing is not published.
- D021 a trigger description starts with "Triggers when " and ends with "." (hidden triggers
  too: the reference exempts none).
- D022 a create has at least one static input field.
- D023 dates in static samples are ISO-8601 (a date, or a date-time with a time zone); no
  other date format and no epoch number in a date field.
- D024 a static sample respects its output fields: every ``required`` one is present and every
  value has the field's type.
- D019, D020: not in the published reference.

Publishing requirements judgeable from the definition, with codes of our own (visible
operations only; [IPR] section):
- P-NOUN (4.1, 5.1, 6.2) the noun is singular, one to three capitalised words (Zapier
  pluralises it: "No new <noun>s found").
- P-KEY (4.1, 5.1, 6.2) a descriptive key, not ``trigger_1`` / ``action_1``.
- P-SEARCH-LABEL (6.2) a search label starts with "Find" ("Use 'Find' over 'Get'").
- P-SEARCH-DESC (6.2; [BDG] "Finds a") a search description starts with "Finds " and ends with ".".
- P-CREATE-DESC (5.1) a create description starts with a third-person verb ("Creates") and
  ends with ".".
- P-DESC-APP-NAME (4.1, 5.1, 6.2) a description does not name the platform (GHL, HighLevel).
- P-DESC-NOUN-CAPS (4.1, 5.1, 6.2) a description does not capitalise the noun mid-sentence.
- P-GENERIC-UPDATE (4.9) no generic "Updated <object>" trigger (a status or stage change, or a
  qualified one such as "in"/"matching", is specific).
- P-DELETE-ACTION (5.7) no "Delete ..." action.
- P-HELP-REDUNDANT (4.2.2, 5.2.4, 6.3.2) a help text says something beyond its label (words
  other than the label's, the noun's and filler).
- P-COMMA-LIST (4.2.4, 5.2.6, 6.3.4; [BDG]) a field described as comma-separated is a
  ``list`` field.
- P-FIELD-ORDER (4.2.5, 5.2.2, 6.3.5) required fields come before optional ones.
- P-CHOICE-LABEL ([BDG] "Include the value name ... in lists and dropdown menus"; 1.4, 4.1:
  copy as in the product UI) static choices show human labels, not raw codes (``TYPE_CALL``,
  ``added_desc``, ``noshow``, ``DRAFT``).
- P-SAMPLE-PLACEHOLDER (4.7, 5.4, 6.5) sample values are representative, not "string"/"1234".
- P-SAMPLE-BOOLEAN (4.6.4, 5.3.2, 6.4.5) booleans in samples are true/false, not "true"/0/1.

Not judged offline (they need Zapier's records or live runs): A001, C001-C003 (compare with the
public version), L001-L004, M001-M007 (marketing data outside the definition), S001-S003,
T001-T006, U001, Z001, and D006's "same shape as deliveries". Publishing requirements that
need judgement or live data (copy matching the product UI, English, error messages, ordering
by importance, response content) are left to review.

Functions in the definition are placeholder strings ("$func$2$f$"): skipped wherever they
stand for a field list item, a label or a request. Pure: no I/O.
"""

import re
import sys
from collections import defaultdict
from dataclasses import dataclass

GROUPS = ("triggers", "searches", "creates")
FUNCTION_PLACEHOLDER = re.compile(r"^\$func\$\d+\$f\$$")


@dataclass(frozen=True)
class Problem:
    """A broken rule: its code, a stable dotted path to what breaks it, and why."""

    code: str
    where: str
    message: str


# {code: {pattern: why the problem is accepted}}. A pattern is a ``where`` or a prefix of one
# (whole dotted segments); a ``*`` segment matches any one segment, so
# ``"*.*.inputFields.locationId"`` covers that input of every operation.
def _justified_exceptions():
    from zapier_app.choices import UNCOVERED
    id_inputs = {f"*.{record}.inputFields.{field}": f"no dropdown: {reason}" for (record, field), reason in UNCOVERED.items()}
    id_inputs["searches.find_location_by_id.inputFields.locationId"] = (
        "the location looked up: blank means the connection's own; GHL lists an agency's locations only "
        "to an agency token, which a location connection is not")
    filters_first = ("the optional Service and Search Operations inputs narrow the required Operation dropdown, "
                     "which Zapier fills from the inputs above it")
    return {
        "D004": id_inputs,
        "P-FIELD-ORDER": {"creates.run_ghl_operation.inputFields.operation": filters_first,
                          "triggers.new_ghl_list_item.inputFields.operation": filters_first},
        "P-DELETE-ACTION": {"creates.*.display.label": (
            "agencies automate clean-up (a contact who asks to be forgotten, a stale task or note); "
            "this is a private integration, and each delete says in its description that it is permanent")},
    }


JUSTIFIED_EXCEPTIONS: dict[str, dict[str, str]] = _justified_exceptions()

CHECKS = {}


def check(code):
    """Registers a check function under its published (or P-) code."""
    def register(function):
        CHECKS[code] = function
        return function
    return register


def run_checks(definition):
    """Every problem of ``definition`` (a Zapier app definition dict), check by check."""
    problems = []
    for code, function in CHECKS.items():
        problems.extend(Problem(code, where, message) for where, message in function(definition))
    return problems


def covers(pattern, where):
    """Whether an exception ``pattern`` covers the problem at ``where``."""
    wanted, segments = pattern.split("."), where.split(".")
    return len(wanted) <= len(segments) and all(w in ("*", s) for w, s in zip(wanted, segments))


def _excused_by(problem, exceptions):
    for pattern in exceptions.get(problem.code, {}):
        if covers(pattern, problem.where):
            return pattern
    return None


def unexcused(problems, exceptions=None):
    """``problems`` without those ``JUSTIFIED_EXCEPTIONS`` (or ``exceptions``) accept."""
    exceptions = JUSTIFIED_EXCEPTIONS if exceptions is None else exceptions
    return [p for p in problems if _excused_by(p, exceptions) is None]


def unused_exceptions(problems, exceptions=None):
    """``(code, where)`` entries of the exceptions that excuse none of ``problems`` (stale)."""
    exceptions = JUSTIFIED_EXCEPTIONS if exceptions is None else exceptions
    used = {(p.code, _excused_by(p, exceptions)) for p in problems}
    return [(code, where) for code, entries in exceptions.items() for where in entries if (code, where) not in used]


# ----------------------------------------------------------------------------- walking


def _is_function(value):
    return isinstance(value, str) and bool(FUNCTION_PLACEHOLDER.match(value))


def _operations(definition, visible_only=False):
    """``(group, key, entry, operation, where)`` for every trigger, search and create."""
    for group in GROUPS:
        for key, entry in (definition.get(group) or {}).items():
            if not isinstance(entry, dict):
                continue
            if visible_only and _hidden(entry):
                continue
            yield group, key, entry, entry.get("operation") or {}, f"{group}.{key}"


def _hidden(entry):
    return bool((entry.get("display") or {}).get("hidden"))


def _fields(fields, where):
    """``(field, where)`` for the static fields of a field list, children included."""
    if not isinstance(fields, list):
        return
    for field in fields:
        if not isinstance(field, dict) or "key" not in field:
            continue
        field_where = f"{where}.{field['key']}"
        yield field, field_where
        yield from _fields(field.get("children"), f"{field_where}.children")


def _input_fields(definition, visible_only=False):
    """``(group, entry, field, where)`` for every static input field of every operation."""
    for group, _key, entry, operation, where in _operations(definition, visible_only):
        for field, field_where in _fields(operation.get("inputFields"), f"{where}.inputFields"):
            yield group, entry, field, field_where


def _auth_fields(definition):
    auth = definition.get("authentication") or {}
    yield from _fields(auth.get("fields"), "authentication.fields")


def _static_fields(fields):
    return [f for f in fields or [] if isinstance(f, dict) and f.get("type") != "copy"]


def _texts(definition):
    """``(where, text)`` for every description and help text a user reads."""
    for _group, _key, entry, operation, where in _operations(definition):
        description = (entry.get("display") or {}).get("description")
        if isinstance(description, str):
            yield f"{where}.display.description", description
        for field, field_where in _fields(operation.get("inputFields"), f"{where}.inputFields"):
            if isinstance(field.get("helpText"), str):
                yield f"{field_where}.helpText", field["helpText"]
    for field, field_where in _auth_fields(definition):
        if isinstance(field.get("helpText"), str):
            yield f"{field_where}.helpText", field["helpText"]
    for key, combo in (definition.get("searchOrCreates") or {}).items():
        description = (combo.get("display") or {}).get("description")
        if isinstance(description, str):
            yield f"searchOrCreates.{key}.display.description", description


def _words(text):
    return re.findall(r"[a-z0-9]+", (text or "").lower())


# ----------------------------------------------------------------------------- D: definition checks

CREDENTIAL_WORDS = re.compile(
    r"api[\s_-]?key|apikey|api[\s_-]?secret|access[\s_-]?token|auth(?:entication|orization)?[\s_-]?token"
    r"|bearer|client[\s_-]?secret|secret[\s_-]?key|private[\s_-]?integration[\s_-]?token|refresh[\s_-]?token",
    re.IGNORECASE)
CAMEL_BREAK = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def _spaced_key(key):
    return CAMEL_BREAK.sub(" ", str(key))


@check("D001")
def api_key_in_operation_fields(definition):
    for _group, _entry, field, where in _input_fields(definition):
        if CREDENTIAL_WORDS.search(_spaced_key(field["key"])) or CREDENTIAL_WORDS.search(field.get("label") or ""):
            yield where, f"input {field['key']!r} asks for a credential; credentials belong to authentication"


MARKDOWN_LINK = re.compile(r"\[([^\[\]]+)\]\(([^()\s]+)\)")
PASTED_KEY = re.compile(r"key|token|secret", re.IGNORECASE)


@check("D002")
def auth_fields_link_to_their_key(definition):
    auth = definition.get("authentication") or {}
    if auth.get("type") != "custom":
        return
    for field, where in _auth_fields(definition):
        if field.get("type") != "password" and not PASTED_KEY.search(f"{field['key']} {field.get('label', '')}"):
            continue
        links = [target for _text, target in MARKDOWN_LINK.findall(field.get("helpText") or "")]
        if not any(target.startswith("https://") for target in links):
            yield f"{where}.helpText", (f"auth field {field.get('label') or field['key']!r} has no markdown link to "
                                        "where the user finds it")


@check("D003")
def connection_label_set(definition):
    auth = definition.get("authentication")
    if not auth:
        return
    label = auth.get("connectionLabel")
    where = "authentication.connectionLabel"
    if not label:
        yield where, "no connection label: connected accounts cannot be told apart"
        return
    if isinstance(label, str) and not _is_function(label):
        if "{{" not in label:
            yield where, f"connection label {label!r} is the same for every connection"
        secret_keys = {f["key"] for f, _w in _auth_fields(definition) if f.get("type") == "password"}
        for key in secret_keys:
            if re.search(r"authData\.%s\b" % re.escape(key), label):
                yield where, f"connection label shows the secret auth field {key!r}"


ID_KEY_CAMEL = re.compile(r"(?:^|_)(?:id|ids|ID|IDs|Id|Ids)$|[a-z0-9](?:Id|ID|Ids|IDs)$")
ID_LABEL = re.compile(r"\bIDs?$", re.IGNORECASE)


def is_id_input(field):
    """Whether a user would type an id into ``field`` (its label or key says ID)."""
    label = (field.get("label") or "").strip().rstrip(")").strip()
    return bool(ID_LABEL.search(label) or ID_KEY_CAMEL.search(str(field["key"])))


@check("D004")
def id_inputs_have_dropdowns(definition):
    for _group, _entry, field, where in _input_fields(definition, visible_only=True):
        if field.get("type") == "copy" or field.get("dynamic") or field.get("choices"):
            continue
        if is_id_input(field):
            yield where, f"ID input {field.get('label') or field['key']!r} has no dynamic dropdown"


@check("D005")
def dropdowns_name_existing_triggers(definition):
    triggers = definition.get("triggers") or {}
    for _group, _entry, field, where in _input_fields(definition):
        dynamic = field.get("dynamic")
        if not isinstance(dynamic, str):
            continue
        parts = dynamic.split(".")
        if len(parts) < 2 or not all(parts):
            yield f"{where}.dynamic", f"dynamic {dynamic!r} is not 'triggerKey.idField[.labelField]'"
        elif parts[0] not in triggers:
            yield f"{where}.dynamic", f"dynamic {dynamic!r} names no trigger of the app"


def _hook_triggers(definition):
    for group, key, entry, operation, where in _operations(definition):
        if group == "triggers" and operation.get("type") == "hook":
            yield key, entry, operation, where


@check("D006")
def hook_triggers_have_perform_list(definition):
    for _key, _entry, operation, where in _hook_triggers(definition):
        if not operation.get("performList"):
            yield f"{where}.performList", "REST hook trigger has no performList for samples in the Zap editor"


URL_KEY = re.compile(r"^(?:url|[A-Za-z]+Url|[A-Za-z]+URL)$")


def _request_urls(value, where):
    """``(where, url)`` of every request URL below ``value``, samples and output fields aside."""
    if isinstance(value, dict):
        for key, sub in value.items():
            if key in ("sample", "outputFields"):
                continue
            sub_where = where if key == "operation" else f"{where}.{key}" if where else str(key)
            if isinstance(sub, str) and URL_KEY.match(str(key)):
                yield sub_where, sub
            else:
                yield from _request_urls(sub, sub_where)
    elif isinstance(value, list):
        for index, sub in enumerate(value):
            yield from _request_urls(sub, f"{where}.{index}")


@check("D007")
def urls_are_https(definition):
    for where, url in _request_urls(definition, ""):
        if url.startswith("{{") or _is_function(url):
            continue
        if not url.lower().startswith("https://"):
            yield where, f"URL {url!r} is not https"
    for where, text in _texts(definition):
        for _text, target in MARKDOWN_LINK.findall(text):
            if target.lower().startswith("http://"):
                yield where, f"link {target!r} is not https"


CODE_SPAN = re.compile(r"`[^`]*`")
AUTOLINK = re.compile(r"<https?://[^>\s]+>")
BARE_URL = re.compile(r"https?://\S+|\bwww\.[a-z0-9-]+\.\S+", re.IGNORECASE)
LINK_TARGET = re.compile(r"^(?:https?://|mailto:)\S+$")


def link_problem(text):
    """Why ``text`` breaks D008 (a bare or broken link), or None."""
    text = CODE_SPAN.sub("", text)
    for _label, target in MARKDOWN_LINK.findall(text):
        if not LINK_TARGET.match(target):
            return f"markdown link target {target!r} is not a full URL"
    text = AUTOLINK.sub("", MARKDOWN_LINK.sub("", text))
    bare = BARE_URL.search(text)
    if bare:
        return f"{bare.group(0)!r} is neither a markdown link nor in backticks"
    if re.search(r"\]\s*\(|\[[^\]]*\([a-z]+://", text):
        return "broken markdown link"
    return None


@check("D008")
def links_are_valid_markdown(definition):
    for where, text in _texts(definition):
        problem = link_problem(text)
        if problem:
            yield where, problem


@check("D009")
def searches_have_a_search_field(definition):
    for group, _key, _entry, operation, where in _operations(definition):
        fields = operation.get("inputFields") or []
        if group == "searches" and not any(_is_function(f) for f in fields) and not _static_fields(fields):
            yield f"{where}.inputFields", "search has no field to search by"


@check("D010")
def polling_samples_have_id(definition):
    for group, _key, _entry, operation, where in _operations(definition):
        if group != "triggers" or operation.get("type", "polling") != "polling":
            continue
        sample = operation.get("sample")
        if not isinstance(sample, dict) or not sample:
            continue
        primary = [f["key"] for f, _w in _fields(operation.get("outputFields"), "") if f.get("primary")]
        if "id" in sample or (primary and all(key in sample for key in primary)):
            continue
        yield f"{where}.sample", "polling trigger's sample has no 'id' for the deduper"


def _same_text(a, b):
    return _words(a) == _words(b)


@check("D011")
def help_text_not_the_label(definition):
    for field, where in _all_fields(definition):
        help_text, label = field.get("helpText"), field.get("label") or field["key"]
        if isinstance(help_text, str) and _same_text(help_text, label):
            yield f"{where}.helpText", f"help text {help_text!r} repeats the label {label!r}"


def _all_fields(definition):
    for _group, _entry, field, where in _input_fields(definition):
        yield field, where
    yield from _auth_fields(definition)


@check("D012")
def operations_have_samples(definition):
    for _group, _key, _entry, operation, where in _operations(definition, visible_only=True):
        if not operation.get("sample"):
            yield f"{where}.sample", "no static sample"


@check("D013")
def search_fields_name_existing_searches(definition):
    searches = definition.get("searches") or {}
    for _group, _entry, field, where in _input_fields(definition):
        search = field.get("search")
        if isinstance(search, str) and search.split(".")[0] not in searches:
            yield f"{where}.search", f"search {search!r} names no search of the app"


@check("D014")
def search_fields_have_dropdowns(definition):
    for _group, _entry, field, where in _input_fields(definition):
        if field.get("search") and not field.get("dynamic"):
            yield f"{where}.search", "search-powered field has no dynamic dropdown, so Zapier shows no search step"


@check("D015")
def search_or_creates_name_existing_operations(definition):
    groups = {"search": "searches", "create": "creates", "update": "creates"}
    for key, combo in (definition.get("searchOrCreates") or {}).items():
        for part, group in groups.items():
            if part == "update" and part not in combo:
                continue
            if combo.get(part) not in (definition.get(group) or {}):
                yield f"searchOrCreates.{key}.{part}", f"{part} {combo.get(part)!r} is not in {group}"


def _static_hook(operation):
    return operation.get("type") == "hook" and not (operation.get("performSubscribe")
                                                     and operation.get("performUnsubscribe"))


@check("D016")
def not_only_static_webhooks(definition):
    visible = [operation for _g, _k, _e, operation, _w in _operations(definition, visible_only=True)]
    if visible and all(_static_hook(operation) for operation in visible):
        yield "triggers", "the app is only static webhooks (Webhooks by Zapier does that)"


@check("D017")
def hooks_subscribe(definition):
    for _key, _entry, operation, where in _hook_triggers(definition):
        for part in ("performSubscribe", "performUnsubscribe"):
            if not operation.get(part):
                yield f"{where}.{part}", f"REST hook trigger has no {part}: a static webhook"


# Inside a title these stay lower case (the small words of the ``titlecase`` convention); the
# longer prepositions may be written either way, as style guides differ on them.
SMALL_WORDS = {"a", "an", "and", "as", "at", "but", "by", "en", "for", "if", "in", "nor", "of", "on", "or",
               "the", "to", "v", "via", "vs"}
EITHER_CASE_WORDS = {"from", "into", "onto", "over", "per", "than", "up", "upon", "off", "out", "with", "within",
                     "without", "so", "yet"}
WORD_CORE = re.compile(r"^([^A-Za-z0-9]*)(.*?)([^A-Za-z0-9]*)$")


def title_case(label):
    """``label`` in title case: each word capitalised except small words inside the label;
    a word with capitals of its own (GHL, iPhone, WhatsApp) and a lower-case preposition such
    as "from" are left as written."""
    words = label.split()
    out = []
    for index, word in enumerate(words):
        lead, core, trail = WORD_CORE.match(word).groups()
        if not core or not core[0].isalpha() or any(c.isupper() for c in core[1:]):
            out.append(word)
            continue
        inner = 0 < index < len(words) - 1 and not lead and not out[-1].endswith(":")
        if inner and core.lower() in SMALL_WORDS:
            core = core.lower()
        elif not (inner and core in EITHER_CASE_WORDS):
            core = core[0].upper() + core[1:]
        out.append(lead + core + trail)
    return " ".join(out)


def _labelled(definition):
    for _group, _key, entry, _operation, where in _operations(definition):
        yield f"{where}.display.label", (entry.get("display") or {}).get("label")
    for key, combo in (definition.get("searchOrCreates") or {}).items():
        yield f"searchOrCreates.{key}.display.label", (combo.get("display") or {}).get("label")


@check("D018")
def labels_in_title_case(definition):
    for where, label in _labelled(definition):
        if isinstance(label, str) and label != title_case(label):
            yield where, f"label {label!r} is not in title case: {title_case(label)!r}"


@check("D021")
def trigger_descriptions(definition):
    for group, _key, entry, _operation, where in _operations(definition):
        if group != "triggers":
            continue
        description = (entry.get("display") or {}).get("description") or ""
        if not (description.startswith("Triggers when ") and description.endswith(".")):
            yield f"{where}.display.description", (f"trigger description {description!r} does not start with "
                                                   "'Triggers when ' and end with '.'")


@check("D022")
def creates_have_static_fields(definition):
    for group, _key, _entry, operation, where in _operations(definition):
        if group == "creates" and not _static_fields(operation.get("inputFields")):
            yield f"{where}.inputFields", "create has no static input field for Zap templates"


ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
DATETIME_START = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")
ISO_DATETIME_ZONED = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})$")
ISO_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?$")
MONTH = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?"
OTHER_DATE = re.compile(
    r"^(?:\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}\b"
    rf"|(?:(?:mon|tue|wed|thu|fri|sat|sun)[a-z]*,?\s+)?\d{{1,2}}\s+{MONTH}\s+\d{{4}}\b"
    rf"|(?:(?:mon|tue|wed|thu|fri|sat|sun)[a-z]*,?\s+)?{MONTH}\s+\d{{1,2}},?\s+\d{{4}}\b)",
    re.IGNORECASE)
DATE_KEY = re.compile(r"[Dd]ate|[Tt]imestamp|_at$|[a-z0-9]At$|^(?:at|time)$|_time$|[a-z0-9]Time$")
EPOCH_RANGE = (10**9, 10**13)


def date_problem(key, value):
    """Why a sample ``value`` under ``key`` breaks D023, or None."""
    if isinstance(value, str):
        if DATETIME_START.match(value):
            if ISO_DATETIME_ZONED.match(value):
                return None
            if ISO_DATETIME.match(value):
                return f"date-time {value!r} has no time zone"
            return f"date-time {value!r} is not ISO-8601"
        if OTHER_DATE.match(value):
            return f"date {value!r} is not ISO-8601"
        if DATE_KEY.search(str(key)) and re.fullmatch(r"\d{10}|\d{13}", value):
            return f"date {value!r} is an epoch timestamp, not ISO-8601"
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        if DATE_KEY.search(str(key)) and EPOCH_RANGE[0] <= value < EPOCH_RANGE[1]:
            return f"date {value!r} is an epoch timestamp, not ISO-8601"
    return None


def _sample_values(value, where, key=""):
    """``(where, key, value)`` for every scalar of a sample, nested ones included."""
    if isinstance(value, dict):
        for sub_key, sub in value.items():
            yield from _sample_values(sub, f"{where}.{sub_key}", sub_key)
    elif isinstance(value, list):
        for index, sub in enumerate(value):
            yield from _sample_values(sub, f"{where}.{index}", key)
    else:
        yield where, key, value


def _samples(definition, visible_only=False):
    """``(operation, sample, where)`` for every static sample; ``where`` is the operation's."""
    for _group, _key, _entry, operation, where in _operations(definition, visible_only):
        if isinstance(operation.get("sample"), dict):
            yield operation, operation["sample"], where


@check("D023")
def sample_dates_are_iso(definition):
    for _operation, sample, where in _samples(definition):
        for value_where, key, value in _sample_values(sample, f"{where}.sample"):
            problem = date_problem(key, value)
            if problem:
                yield value_where, problem


MISSING = object()


def sample_value(sample, key):
    """The sample's value for an output field key (``a__b`` nested, ``a[]b`` line items), or MISSING."""
    if key in sample:
        return sample[key]
    if "[]" in key:
        parent, child = key.split("[]", 1)
        items = sample_value(sample, parent)
        if not isinstance(items, list):
            return MISSING
        values = [sample_value(item, child) for item in items if isinstance(item, dict)]
        return [v for v in values if v is not MISSING] or MISSING
    if "__" in key:
        parent, child = key.split("__", 1)
        nested = sample.get(parent)
        return sample_value(nested, child) if isinstance(nested, dict) else MISSING
    return MISSING


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


TYPE_TESTS = {
    "string": lambda v: isinstance(v, str),
    "text": lambda v: isinstance(v, str),
    "password": lambda v: isinstance(v, str),
    "file": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": _is_number,
    "boolean": lambda v: isinstance(v, bool),
    "datetime": lambda v: isinstance(v, str) and bool(ISO_DATE.match(v) or ISO_DATETIME.match(v)),
}


def type_problem(field, value):
    """Why ``value`` does not fit output ``field``'s type, or None (null fits every type)."""
    test = TYPE_TESTS.get(field.get("type"))
    if test is None or value is None:
        return None
    values = value if isinstance(value, list) else [value]
    wrong = [v for v in values if v is not None and not test(v)]
    if wrong:
        return f"sample value {wrong[0]!r} does not fit the output type {field['type']!r}"
    return None


@check("D024")
def samples_respect_output_fields(definition):
    for operation, sample, operation_where in _samples(definition):
        for field, where in _fields(operation.get("outputFields"), f"{operation_where}.outputFields"):
            value = sample_value(sample, str(field["key"]))
            if value is MISSING:
                if field.get("required"):
                    yield where, f"required output field {field['key']!r} is not in the sample"
                continue
            problem = type_problem(field, value)
            if problem:
                yield where, problem


# ----------------------------------------------------------------------------- P: publishing requirements

SINGULAR_ENDING_IN_S = {"news", "series", "species", "status", "alias", "canvas", "gas", "bus", "lens", "atlas",
                        "bonus", "campus", "census", "corpus", "thesis", "analysis", "chassis", "basis", "axis",
                        "address", "business", "process", "access", "class", "campus", "virus", "radius"}


def is_plural(word):
    lower = word.lower()
    if word.isupper() or not lower.endswith("s") or lower in SINGULAR_ENDING_IN_S:
        return False
    return not lower.endswith(("ss", "us", "is", "ics"))


@check("P-NOUN")
def nouns_are_singular_words(definition):
    for _group, _key, entry, _operation, where in _operations(definition, visible_only=True):
        noun = entry.get("noun")
        if not isinstance(noun, str) or not noun.strip():
            yield f"{where}.noun", "no noun"
            continue
        words = noun.split()
        if is_plural(words[-1]):
            yield f"{where}.noun", f"noun {noun!r} is plural; Zapier pluralises it itself"
        elif len(words) > 3:
            yield f"{where}.noun", f"noun {noun!r} is a phrase, not a noun of one to three words"
        elif any(not w[:1].isupper() and not w[:1].isdigit() for w in words):
            yield f"{where}.noun", f"noun {noun!r} is a phrase, not a capitalised noun (Zapier writes 'No new {noun}s found')"


GENERIC_KEY = re.compile(r"^(?:trigger|action|search|create|operation|step)_?\d+$", re.IGNORECASE)


@check("P-KEY")
def keys_are_descriptive(definition):
    for _group, key, _entry, _operation, where in _operations(definition, visible_only=True):
        if GENERIC_KEY.match(str(key)):
            yield where, f"key {key!r} does not say what the operation does"


@check("P-SEARCH-LABEL")
def search_labels_say_find(definition):
    for group, _key, entry, _operation, where in _operations(definition, visible_only=True):
        label = (entry.get("display") or {}).get("label") or ""
        if group == "searches" and not label.startswith("Find "):
            yield f"{where}.display.label", f"search label {label!r} does not start with 'Find'"


@check("P-SEARCH-DESC")
def search_descriptions_say_finds(definition):
    for group, _key, entry, _operation, where in _operations(definition, visible_only=True):
        description = (entry.get("display") or {}).get("description") or ""
        if group == "searches" and not (description.startswith("Finds ") and description.endswith(".")):
            yield f"{where}.display.description", (f"search description {description!r} does not start with "
                                                   "'Finds ' and end with '.'")


@check("P-CREATE-DESC")
def create_descriptions_start_with_a_verb(definition):
    for group, _key, entry, _operation, where in _operations(definition, visible_only=True):
        if group != "creates":
            continue
        description = (entry.get("display") or {}).get("description") or ""
        first = description.split(" ", 1)[0]
        third_person = first[:1].isupper() and first.endswith("s") and not first.endswith("ss") and " " in description
        if not (third_person and description.endswith(".")):
            yield f"{where}.display.description", (f"create description {description!r} does not start with a verb "
                                                   "such as 'Creates' and end with '.'")


APP_NAME = re.compile(r"\bGHL\b|\b(?:Go)?HighLevel\b|\bLeadConnector\b|\bHigh Level\b", re.IGNORECASE)


def _descriptions(definition):
    for group, _key, entry, _operation, where in _operations(definition, visible_only=True):
        description = (entry.get("display") or {}).get("description")
        if isinstance(description, str):
            yield entry, f"{where}.display.description", description


@check("P-DESC-APP-NAME")
def descriptions_do_not_name_the_app(definition):
    for _entry, where, description in _descriptions(definition):
        name = APP_NAME.search(description)
        if name:
            yield where, f"description names the platform ({name.group(0)!r})"


@check("P-DESC-NOUN-CAPS")
def descriptions_do_not_capitalise_the_noun(definition):
    for entry, where, description in _descriptions(definition):
        rest = description.split(" ", 1)[1] if " " in description else ""
        for word in (entry.get("noun") or "").split():
            if word[:1].isupper() and not word.isupper() and not any(c.isupper() for c in word[1:]):
                # A capital after a sentence end is the start of a sentence, not the noun.
                if re.search(r"(?<![.!?:]\s)(?<![.!?:])\b%s\b" % re.escape(word), rest):
                    yield where, f"description capitalises the noun {word!r} mid-sentence"
                    break


UPDATED_LABEL = re.compile(r"^Updated (.+)$|^(.+) Updated$")
SPECIFIC_UPDATE = re.compile(r"\b(?:in|by|with|for|matching|to|from|on|of|status|stage)\b", re.IGNORECASE)


@check("P-GENERIC-UPDATE")
def no_generic_update_triggers(definition):
    for group, _key, entry, _operation, where in _operations(definition, visible_only=True):
        label = (entry.get("display") or {}).get("label") or ""
        match = UPDATED_LABEL.match(label)
        if group == "triggers" and match and not SPECIFIC_UPDATE.search(match.group(1) or match.group(2)):
            yield f"{where}.display.label", f"{label!r} is a generic update trigger; say which change fires it"


@check("P-DELETE-ACTION")
def no_delete_actions(definition):
    for group, _key, entry, _operation, where in _operations(definition, visible_only=True):
        label = (entry.get("display") or {}).get("label") or ""
        if group == "creates" and label.startswith("Delete "):
            yield f"{where}.display.label", f"{label!r} deletes data; Zapier asks for a less permanent action"


FILLER_WORDS = {"a", "an", "the", "of", "for", "this", "that", "these", "your", "its", "it", "s", "to", "be", "is",
                "are", "and", "or", "in", "on", "with", "by", "enter", "provide", "specify", "set", "optional",
                "required", "here", "value", "field", "you", "want", "use", "used", "which", "record", "item"}


@check("P-HELP-REDUNDANT")
def help_text_adds_something(definition):
    nouns = {}
    for _group, _key, entry, operation, where in _operations(definition):
        nouns[where] = set(_words(entry.get("noun")))
    for field, where in _all_fields(definition):
        help_text, label = field.get("helpText"), field.get("label") or str(field["key"])
        if not isinstance(help_text, str) or _same_text(help_text, label):
            continue  # D011 reports an identical one
        operation_where = ".".join(where.split(".")[:2])
        known = set(_words(label)) | set(_words(_spaced_key(field["key"]))) | nouns.get(operation_where, set())
        if set(_words(help_text)) <= known | FILLER_WORDS:
            yield f"{where}.helpText", f"help text {help_text!r} says nothing the label {label!r} does not"


COMMA_LIST = re.compile(r"comma[\s-]*(?:separated|delimited)|separated by commas?", re.IGNORECASE)


@check("P-COMMA-LIST")
def multiple_values_use_list_fields(definition):
    for _group, _entry, field, where in _input_fields(definition, visible_only=True):
        text = f"{field.get('label') or ''} {field.get('helpText') or ''}"
        if COMMA_LIST.search(text) and not field.get("list"):
            yield where, f"input {field.get('label') or field['key']!r} asks for a comma-separated list; use list: true"


@check("P-FIELD-ORDER")
def required_fields_first(definition):
    for _group, _key, _entry, operation, where in _operations(definition, visible_only=True):
        seen_optional = None
        for field in operation.get("inputFields") or []:
            if not isinstance(field, dict) or field.get("type") == "copy":
                continue
            if field.get("required") and seen_optional:
                yield f"{where}.inputFields.{field['key']}", (f"required input {field['key']!r} comes after the "
                                                             f"optional {seen_optional!r}")
                break
            if not field.get("required"):
                seen_optional = seen_optional or field["key"]


SHORT_ACRONYM = re.compile(r"^[A-Z0-9]{1,4}$")


def raw_code(label):
    """Whether a choice label reads as an API code rather than words a user knows."""
    label = str(label).strip()
    if not label or re.fullmatch(r"[-+]?\d+(?:\.\d+)?", label):
        return False
    if "_" in label:
        return True
    if label[0].isalpha() and label[0].islower():
        return True
    return label.isupper() and not SHORT_ACRONYM.match(label) and " " not in label


def choice_labels(choices):
    """The labels a user sees for static ``choices`` (list of strings or dicts, or a dict)."""
    if isinstance(choices, dict):
        return [str(label) for label in choices.values()]
    if isinstance(choices, list):
        return [str(c.get("label", c.get("value"))) if isinstance(c, dict) else str(c) for c in choices]
    return []


@check("P-CHOICE-LABEL")
def choices_have_human_labels(definition):
    for _group, _entry, field, where in _input_fields(definition, visible_only=True):
        codes = [label for label in choice_labels(field.get("choices")) if raw_code(label)]
        if codes:
            yield f"{where}.choices", f"dropdown shows raw codes: {', '.join(codes[:4])}" + (
                f" (+{len(codes) - 4})" if len(codes) > 4 else "")


PLACEHOLDER_VALUES = {"string", "str", "text", "value", "example", "foo", "bar", "baz", "test", "xxx", "abc",
                      "1234", "12345", "lorem ipsum", "placeholder", "todo", "tbd", "sample"}


@check("P-SAMPLE-PLACEHOLDER")
def samples_are_representative(definition):
    for _operation, sample, where in _samples(definition, visible_only=True):
        for value_where, _key, value in _sample_values(sample, f"{where}.sample"):
            if isinstance(value, str) and value.strip().lower() in PLACEHOLDER_VALUES:
                yield value_where, f"sample value {value!r} is a placeholder, not representative data"


BOOLEAN_KEY = re.compile(r"^(?:is|has|can|should)(?:[A-Z_]|$)")


@check("P-SAMPLE-BOOLEAN")
def sample_booleans_are_booleans(definition):
    for _operation, sample, where in _samples(definition, visible_only=True):
        for value_where, key, value in _sample_values(sample, f"{where}.sample"):
            if isinstance(value, str) and value.strip().lower() in ("true", "false"):
                yield value_where, f"boolean written as the string {value!r}"
            elif BOOLEAN_KEY.match(str(key)) and value in (0, 1) and not isinstance(value, bool):
                yield value_where, f"boolean written as the number {value!r}"


# ----------------------------------------------------------------------------- report


def grouped(problems):
    """``{code: [problem, ...]}`` in check order."""
    groups = defaultdict(list)
    for problem in problems:
        groups[problem.code].append(problem)
    order = list(CHECKS)
    return dict(sorted(groups.items(), key=lambda item: order.index(item[0]) if item[0] in order else len(order)))


def report(problems, examples=3):
    """Problems as text, grouped by code with counts and up to ``examples`` of each (None: all)."""
    lines = []
    for code, items in grouped(problems).items():
        lines.append(f"{code}: {len(items)}")
        for problem in items[:examples] if examples is not None else items:
            lines.append(f"  {problem.where}: {problem.message}")
    return "\n".join(lines)


def main(argv=None):
    import argparse

    from catalog.registry import load_catalog
    from zapier_app.definition import zapier_app_definition

    parser = argparse.ArgumentParser(prog="python -m zapier_app.checks",
                                     description="Zapier's offline integration checks on the generated app.")
    parser.add_argument("--server-url", default="https://ghl.example.com")
    parser.add_argument("--all", action="store_true", help="list every problem, not three of each code")
    parser.add_argument("--excused", action="store_true", help="include problems JUSTIFIED_EXCEPTIONS excuses")
    args = parser.parse_args(argv)
    catalog = load_catalog()
    problems = {}
    for connector_key_required in (False, True):
        problems.update(dict.fromkeys(run_checks(zapier_app_definition(catalog, args.server_url,
                                                                       connector_key_required))))
    problems = list(problems)
    open_problems = unexcused(problems)
    shown = problems if args.excused else open_problems
    print(report(shown, None if args.all else 3) or "no problems")
    print(f"{len(open_problems)} unexcused, {len(problems) - len(open_problems)} excused")
    return 1 if open_problems else 0


if __name__ == "__main__":
    sys.exit(main())
