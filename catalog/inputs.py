"""Check and coerce a caller's inputs against an operation record. Pure: no I/O.

Every problem is collected, so the caller answers them all at once:
``InvalidInput.fields`` maps an input key to what is wrong with it.
"""

import math
import re
from datetime import datetime
from urllib.parse import urlsplit

from ghl.file_fetch import LOOPBACK_HOSTS, MAX_URL_CHARS, UNSAFE_URL_CHARACTERS
from server.request_limits import MAX_JSON_DEPTH, MAX_JSON_ITEMS, JsonRefused, parse_json

TRUE_WORDS = {"true", "yes", "1", "on"}
FALSE_WORDS = {"false", "no", "0", "off"}
UNSAFE_PATH_VALUES = {".", ".."}
MAX_PATH_VALUE_CHARS = 512
# An answer names at most this many problems (then how many more), each cut short.
MAX_LISTED_PROBLEMS = 25
MAX_KEY_CHARS = 64
MAX_PROBLEM_CHARS = 300


def _short(text, limit):
    """``text`` cut to ``limit`` characters in the middle, where keys differ least often."""
    text = str(text)
    if len(text) <= limit:
        return text
    tail = limit // 3
    return text[:limit - tail - 1] + "…" + text[-tail:]


class InvalidInput(ValueError):
    """``fields``: input key -> problem, the first MAX_LISTED_PROBLEMS of those given (in order);
    ``omitted``: how many more there were."""

    def __init__(self, fields, message=None):
        listed = list(fields.items())[:MAX_LISTED_PROBLEMS]
        self.fields = {_short(key, MAX_KEY_CHARS): _short(problem, MAX_PROBLEM_CHARS) for key, problem in listed}
        self.omitted = len(fields) - len(self.fields)
        names = ", ".join(f"{k} ({v})" for k, v in sorted(self.fields.items()))
        more = f", and {self.omitted:,} more" if self.omitted else ""
        super().__init__(message or f"Some inputs are missing or invalid: {names}{more}")


def _is_blank(value):
    return value is None or value == "" or value == [] or value == {}


def _as_string(value):
    if isinstance(value, bool) or isinstance(value, (dict, list)):
        raise ValueError("must be text")
    return str(value)


def _as_integer(value):
    if isinstance(value, bool):
        raise ValueError("must be a whole number")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    raise ValueError("must be a whole number")


def _as_number(value):
    if isinstance(value, bool):
        raise ValueError("must be a number")
    if isinstance(value, (int, float)) and math.isfinite(value):
        return value
    try:
        number = float(str(value).strip())
    except ValueError:
        raise ValueError("must be a number") from None
    if not math.isfinite(number):
        raise ValueError("must be a finite number")
    return int(number) if number.is_integer() and "." not in str(value) else number


def _as_boolean(value):
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueError("must be true or false")


def _as_datetime(value):
    if isinstance(value, bool):
        raise ValueError("must be a date and time (ISO 8601)")
    if isinstance(value, (int, float)):
        return value
    text = str(value).strip()
    try:
        datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError("must be a date and time (ISO 8601, such as 2024-05-01T09:30:00Z)") from None
    return text


# A ``file`` input is the URL of the file (what Zapier hands for a file); ghl.file_fetch fetches
# it, and its limits apply here already. http is accepted for its loopback hosts only; whether
# they are fetched from is the fetcher's setting.
FILE_URL_PROBLEM = "must be the https:// URL of a file"


def _as_file_url(value):
    if not isinstance(value, str):
        raise ValueError(FILE_URL_PROBLEM)
    text = value.strip()
    if len(text) > MAX_URL_CHARS:
        raise ValueError(f"must be a file URL of at most {MAX_URL_CHARS:,} characters")
    if UNSAFE_URL_CHARACTERS.search(text):
        raise ValueError(FILE_URL_PROBLEM + ", without spaces, control characters or backslashes")
    try:
        parts = urlsplit(text)
        host, port = parts.hostname, parts.port  # .port raises ValueError for one that is not a number
    except ValueError:
        raise ValueError(FILE_URL_PROBLEM) from None
    secure = parts.scheme == "https" or (parts.scheme == "http" and host in LOOPBACK_HOSTS)
    if not host or port == 0 or not secure:
        raise ValueError(FILE_URL_PROBLEM)
    return text


# An input that only names a multipart file part (``{key}`` in a file input's ``field``, beside
# ``{file_id}``, a fresh random id per upload): never sent as a value of its own. Its value (a
# custom field's id) is nothing a header could choke on.
PART_NAME_PLACE = "part_name"
PART_NAME_SLOT = re.compile(r"{([^}]*)}")
FILE_ID_SLOT = "file_id"
PART_NAME_VALUE = re.compile(r"[A-Za-z0-9_-]{1,64}")

JSON_PROBLEMS = {
    "json_too_deep": f"must be JSON nested at most {MAX_JSON_DEPTH} levels deep",
    "too_many_items": f"must be JSON of at most {MAX_JSON_ITEMS:,} keys and list items",
}


def _as_json(value):
    if isinstance(value, (dict, list)):
        return value
    if isinstance(value, str):
        try:
            parsed = parse_json(value)
        except JsonRefused as refused:
            raise ValueError(JSON_PROBLEMS.get(refused.code, "must be JSON")) from None
        if isinstance(parsed, (dict, list)):
            return parsed
    raise ValueError("must be a JSON object or list")


COERCE = {
    "string": _as_string,
    "text": _as_string,
    "integer": _as_integer,
    "number": _as_number,
    "boolean": _as_boolean,
    "datetime": _as_datetime,
    "json": _as_json,
    "file": _as_file_url,
}


def _range_problem(low, high):
    if low is not None and high is not None:
        return f"must be from {low} to {high}"
    return f"must be at least {low}" if low is not None else f"must be at most {high}"


def _coerce(field, value):
    convert = COERCE[field["type"]]
    if field.get("list"):
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        elif not isinstance(value, list):
            value = [value]
        values = [convert(v) for v in value if not _is_blank(v)]
    else:
        if isinstance(value, list) and field["type"] != "json":
            if len(value) != 1:
                raise ValueError("takes one value, not a list")
            value = value[0]
        values = [convert(value)]
    choices = field.get("choices")
    if choices:
        allowed = {str(c) for c in choices}
        for v in values:
            if str(v) not in allowed:
                raise ValueError("must be one of: " + ", ".join(str(c) for c in choices))
    low, high = field.get("min"), field.get("max")
    if field["type"] in ("integer", "number") and (low is not None or high is not None):
        for v in values:
            if (low is not None and v < low) or (high is not None and v > high):
                raise ValueError(_range_problem(low, high))
    if field["in"] == PART_NAME_PLACE:
        for v in values:
            if not PART_NAME_VALUE.fullmatch(str(v)):
                raise ValueError("must be an id of letters, digits, _ and - (at most 64)")
    if field["in"] == "path":
        for v in values:
            if str(v).strip() in UNSAFE_PATH_VALUES:
                raise ValueError("is not a valid id")
            if len(str(v)) > MAX_PATH_VALUE_CHARS:
                raise ValueError(f"must be at most {MAX_PATH_VALUE_CHARS} characters")
    return values if field.get("list") else values[0]


def fill_location(record, inputs, location_id):
    """Inputs with the record's location input filled from ``location_id`` when left out."""
    if not location_id:
        return inputs
    filled = dict(inputs)
    for field in record["inputs"]:
        if field.get("location") and _is_blank(filled.get(field["key"])):
            filled[field["key"]] = location_id
    return filled


def validate_inputs(record, raw):
    """The cleaned inputs for ``record``: blanks dropped, types coerced. Raises InvalidInput."""
    if not isinstance(raw, dict):
        raise InvalidInput({}, "The inputs must be a JSON object.")
    problems = {}
    declared = {f["key"]: f for f in record["inputs"]}
    clean = {}
    for key, field in declared.items():
        value = raw.get(key)
        if _is_blank(value) and field.get("default") is not None:
            value = field["default"]
        if _is_blank(value):
            # ``default_input``: a blank input takes another input's value, filled in below.
            if field.get("required") and not field.get("default_input"):
                problems[key] = "required"
            continue
        try:
            clean[key] = _coerce(field, value)
        except ValueError as exc:
            problems[key] = str(exc)
    for key, field in declared.items():
        source = field.get("default_input")
        if not source or key in clean or key in problems:
            continue
        if source in clean:
            try:
                clean[key] = _coerce(field, clean[source])
            except ValueError as exc:
                problems[key] = str(exc)
        elif field.get("required") and source not in problems:
            problems[key] = "required"
    problems.update(requirement_problems(record, clean, problems))
    for n in range(1, record.get("custom_field_slots", 0) + 1):
        id_key, value_key = f"custom_field_{n}_id", f"custom_field_{n}_value"
        if (id_key in clean) != (value_key in clean) and id_key not in problems and value_key not in problems:
            missing = value_key if id_key in clean else id_key
            problems[missing] = "required when the other half of this custom field is given"
    taken = set(declared)
    if (record.get("custom_fields") or {}).get("write"):
        taken |= custom_field_inputs(record, raw, clean, problems)
    # After the declared inputs' problems, so a flood of unknown keys cannot hide them.
    problems.update((key, "unknown input") for key in raw if key not in taken)
    if problems:
        raise InvalidInput(problems)
    return clean


# ----------------------------------------------------------------------------- custom fields
#
# A record with ``custom_fields.write`` also takes custom field values: ``cf_<field id>`` keys
# (the Zapier app's dynamic fields) and a ``customFields`` object {field id or fieldKey: value}.
# Only their shape and size are checked here; ``ghl.custom_fields.resolve_custom_field_inputs``
# checks them against the location's definitions and builds GHL's write list.

CUSTOM_FIELD_INPUT = re.compile(r"^cf_([A-Za-z0-9_-]{1,64})$")
CUSTOM_FIELD_PREFIX = "cf_"
CUSTOM_FIELDS_OBJECT = "customFields"
MAX_CUSTOM_FIELDS = 100
MAX_CUSTOM_FIELD_NAME_CHARS = 128
MAX_CUSTOM_FIELD_TEXT_CHARS = 10_000
MAX_CUSTOM_FIELD_LIST_ITEMS = 100
CUSTOM_FIELD_COUNT_PROBLEM = f"at most {MAX_CUSTOM_FIELDS} custom fields per request"


def _custom_field_value_problem(value):
    """None when ``value`` is a text, number, true/false, or a list of those, within bounds."""
    values = value if isinstance(value, list) else [value]
    if isinstance(value, list) and len(value) > MAX_CUSTOM_FIELD_LIST_ITEMS:
        return f"takes at most {MAX_CUSTOM_FIELD_LIST_ITEMS} values"
    for item in values:
        if item is not None and not isinstance(item, (str, int, float, bool)):
            return "must be text, a number, or a list of those"
        if isinstance(item, str) and len(item) > MAX_CUSTOM_FIELD_TEXT_CHARS:
            return f"must be at most {MAX_CUSTOM_FIELD_TEXT_CHARS:,} characters"
    return None


def custom_field_inputs(record, raw, clean, problems):
    """The raw keys that are custom field inputs of ``record``; their bounded values go to
    ``clean`` (blanks dropped) and their problems to ``problems``."""
    taken = {key for key in raw if isinstance(key, str) and key.startswith(CUSTOM_FIELD_PREFIX)}
    given = raw.get(CUSTOM_FIELDS_OBJECT)
    if given is not None:
        taken.add(CUSTOM_FIELDS_OBJECT)
    slots = sum(1 for n in range(1, record.get("custom_field_slots", 0) + 1) if f"custom_field_{n}_id" in clean)
    count = len(taken - {CUSTOM_FIELDS_OBJECT}) + (len(given) if isinstance(given, dict) else 0) + slots
    if count > MAX_CUSTOM_FIELDS:
        problems[CUSTOM_FIELDS_OBJECT] = CUSTOM_FIELD_COUNT_PROBLEM
        return taken
    for key in sorted(taken - {CUSTOM_FIELDS_OBJECT}):
        if not CUSTOM_FIELD_INPUT.match(key):
            problems[key] = "is not a custom field input (cf_ then a field id of letters, digits, _ or -)"
            continue
        problem = _custom_field_value_problem(raw[key])
        if problem:
            problems[key] = problem
        elif not _is_blank(raw[key]):
            clean[key] = raw[key]
    if given is None:
        return taken
    if not isinstance(given, dict):
        problems[CUSTOM_FIELDS_OBJECT] = "must be an object of {custom field id or key: value}"
        return taken
    values = {}
    for name, value in given.items():
        label = f"{CUSTOM_FIELDS_OBJECT}.{name}"
        if not name or len(name) > MAX_CUSTOM_FIELD_NAME_CHARS:
            problems[label] = f"is not a custom field id or key (1 to {MAX_CUSTOM_FIELD_NAME_CHARS} characters)"
            continue
        problem = _custom_field_value_problem(value)
        if problem:
            problems[label] = problem
        elif not _is_blank(value):
            values[name] = value
    if values:
        clean[CUSTOM_FIELDS_OBJECT] = values
    return taken


# ----------------------------------------------------------------------------- requires_when
#
# A record's ``requires_when`` says which inputs are needed together, by the value of another:
#     {"input": "type", "values": ["Email"], "requires": [["subject"], ["html", "message"]]}
# When the input ``type`` is one of ``values`` (a rule without ``input`` always applies), each
# group in ``requires`` needs at least one of its inputs. A group left empty is reported on its
# first input. Format in ``catalog/operations/README.md``.

REQUIRES_WHEN_KEYS = {"input", "values", "requires"}


def _label(record, key):
    field = next((f for f in record["inputs"] if f["key"] == key), None)
    return field["label"] if field else key


def requirement_problems(record, clean, problems=None):
    """{input key: problem} for the ``requires_when`` groups that ``clean`` leaves empty.

    A rule whose input has a problem, and a group with an input that has one, are skipped:
    the earlier problem is what to fix first."""
    problems = problems or {}
    found = {}
    for rule in record.get("requires_when") or ():
        source = rule.get("input")
        if source is not None:
            if source in problems or source not in clean:
                continue
            if str(clean[source]) not in {str(v) for v in rule["values"]}:
                continue
            when = f"when {_label(record, source)} is {clean[source]}"
        else:
            when = None
        for group in rule["requires"]:
            if any(key in clean for key in group) or any(key in problems for key in group):
                continue
            first, others = group[0], group[1:]
            problem = "required" + (f" {when}" if when else "")
            if others:
                problem += " (or give " + " or ".join(_label(record, k) for k in others) + ")"
            found.setdefault(first, problem)
    return found


def check_requires_when(record):
    """None when the record's ``requires_when`` and ``default_input`` follow the format, else what is wrong."""
    inputs = {f["key"]: f for f in record.get("inputs", [])}
    for field in inputs.values():
        source = field.get("default_input")
        if source is not None and (source not in inputs or source == field["key"]):
            return f"input {field['key']}: default_input {source!r} is not another input"
        if source is not None and inputs[source].get("default_input"):
            return f"input {field['key']}: default_input {source!r} has a default_input itself"
    rules = record.get("requires_when")
    if rules is None:
        return None
    if not isinstance(rules, list) or not rules:
        return "requires_when must be a non-empty list"
    for rule in rules:
        if not isinstance(rule, dict) or not set(rule) <= REQUIRES_WHEN_KEYS or "requires" not in rule:
            return 'each requires_when rule is {"input", "values", "requires"} ("input" and "values" optional together)'
        if ("input" in rule) != ("values" in rule):
            return "a requires_when rule names both input and values, or neither"
        if "input" in rule:
            source = inputs.get(rule["input"])
            if source is None:
                return f"requires_when input {rule['input']!r} is not an input"
            if not isinstance(rule["values"], list) or not rule["values"]:
                return f"requires_when on {rule['input']}: values must be a non-empty list"
            choices = source.get("choices")
            if choices and not {str(v) for v in rule["values"]} <= {str(c) for c in choices}:
                return f"requires_when on {rule['input']}: values must be among its choices"
        groups = rule["requires"]
        if not isinstance(groups, list) or not groups:
            return "requires_when requires must be a non-empty list of groups"
        for group in groups:
            if not isinstance(group, list) or not group or not all(isinstance(k, str) for k in group):
                return "each requires_when group is a non-empty list of input keys"
            unknown = [k for k in group if k not in inputs]
            if unknown:
                return f"requires_when names unknown input(s) {', '.join(unknown)}"
            if any(inputs[k].get("required") for k in group):
                return f"requires_when group {group} holds a required input, which is always needed anyway"
    return None
