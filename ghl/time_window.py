"""Time ranges GHL requires, computed at every request from relative inputs. Pure: no I/O.

Some GHL lists answer only within a time range the caller gives (``GET /calendars/events``
wants ``startTime``/``endTime``). A range typed as fixed dates when a Zap is built passes,
and the Zap goes silent. A record's ``window`` block instead names the two request
parameters that hold the range, their format, and the integer inputs that say how many whole
days before and after today it covers; the range is worked out afresh for each request from
the current time (``clock``, replaceable in tests)::

    "window": {"start": "startTime", "end": "endTime", "format": "epoch_ms",
               "back": "days_back", "ahead": "days_ahead", "max_days": 31}

The range is whole UTC days: from 00:00:00.000 of (today - back) to 23:59:59.999 of
(today + ahead). A parameter the caller gives explicitly (an old Zap's fixed value, through
an optional input that writes to it) is left as given. ``check_window`` checks a block.
"""

import time
from datetime import datetime, timezone

FORMATS = ("epoch_ms", "epoch_s", "date", "datetime")
WINDOW_FIELDS = ("start", "end", "format", "back", "ahead", "max_days")
# Where a relative input may say it goes: ``window`` once the registry knows that place;
# ``query`` until then (the request builder never sends an input the window consumes).
RELATIVE_INPUT_PLACES = ("window", "query")
SECONDS_PER_DAY = 86400
MS_PER_DAY = SECONDS_PER_DAY * 1000

# The current time in epoch seconds. Tests replace it (``monkeypatch.setattr``) to move "now".
clock = time.time


def current_time():
    return clock()


def relative_input_keys(record):
    """The keys of the inputs the record's window consumes (never sent to GHL as they are)."""
    window = record.get("window") or {}
    return {window[side] for side in ("back", "ahead") if window.get(side)}


def _ghl_name(field):
    return field.get("field", field["key"]).split(".")[0]


def explicit_inputs(record):
    """{GHL parameter: input key} of the inputs that write the window's parameters directly."""
    window = record.get("window") or {}
    wanted = {window.get("start"), window.get("end")}
    return {_ghl_name(f): f["key"] for f in record["inputs"]
            if f.get("in") == "query" and _ghl_name(f) in wanted}


def _day_index(now):
    if isinstance(now, datetime):
        now = now.timestamp()
    return int(now // SECONDS_PER_DAY)


def _date_of(day):
    return datetime.fromtimestamp(day * SECONDS_PER_DAY, tz=timezone.utc).strftime("%Y-%m-%d")


def format_edge(day, fmt, edge):
    """The first (``edge="start"``) or last (``"end"``) moment of UTC day number ``day``
    (days since 1970-01-01) written in ``fmt``."""
    last = edge == "end"
    if fmt == "epoch_ms":
        return (day + 1) * MS_PER_DAY - 1 if last else day * MS_PER_DAY
    if fmt == "epoch_s":
        return (day + 1) * SECONDS_PER_DAY - 1 if last else day * SECONDS_PER_DAY
    if fmt == "date":
        return _date_of(day)
    if fmt == "datetime":
        return _date_of(day) + ("T23:59:59.999Z" if last else "T00:00:00.000Z")
    raise ValueError(f"unknown window format {fmt!r}")


def _days(inputs, key):
    if not key:
        return 0
    value = inputs.get(key)
    return int(value) if value is not None else 0


def compute_window(window, inputs, now):
    """{start parameter: value, end parameter: value} for ``window`` at ``now`` (epoch seconds
    or an aware datetime) with the validated ``inputs``."""
    today = _day_index(now)
    first = today - _days(inputs, window.get("back"))
    last = today + _days(inputs, window.get("ahead"))
    return {window["start"]: format_edge(first, window["format"], "start"),
            window["end"]: format_edge(last, window["format"], "end")}


def window_params(record, inputs, now=None):
    """The query parameters to add to ``record``'s request: its window's start and end, each
    unless the caller gave it explicitly. {} for a record without a window."""
    window = record.get("window")
    if not window:
        return {}
    now = current_time() if now is None else now
    given = {name for name, key in explicit_inputs(record).items() if inputs.get(key) is not None}
    return {name: value for name, value in compute_window(window, inputs, now).items() if name not in given}


# -- checking a declaration -------------------------------------------------------------

def _fail(record, message, error=ValueError):
    raise error(f"{record.get('key') or record.get('name') or '?'}: window: {message}")


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _check_relative_input(record, side, key, inputs):
    field = inputs.get(key)
    if field is None:
        _fail(record, f"{side} names input {key!r}, which the record does not declare")
    if field.get("type") != "integer" or field.get("list"):
        _fail(record, f"input {key} must be a single integer (a number of days)")
    if field.get("in") not in RELATIVE_INPUT_PLACES:
        _fail(record, f"input {key} must have 'in' one of {RELATIVE_INPUT_PLACES}")
    if field.get("location"):
        _fail(record, f"input {key} cannot be the location input")
    low, default, high = field.get("min"), field.get("default"), field.get("max")
    if not all(_is_int(v) for v in (low, default, high)):
        _fail(record, f"input {key} needs integer min, default and max")
    if not 0 <= low <= default <= high:
        _fail(record, f"input {key} needs 0 <= min <= default <= max (has {low}, {default}, {high})")
    return high


def check_window(record, error=ValueError):
    """Raise ``error`` (a ValueError subclass, e.g. the registry's CatalogError), naming the
    record and the problem, unless ``record``'s ``window`` block (when it has one) follows the
    format in the module docstring."""
    try:
        _check_window(record)
    except ValueError as exc:
        if error is ValueError or isinstance(exc, error):
            raise
        raise error(str(exc)) from None


def _check_window(record):
    window = record.get("window")
    if window is None:
        return
    if not isinstance(window, dict):
        _fail(record, "must be an object")
    unknown = sorted(set(window) - set(WINDOW_FIELDS))
    if unknown:
        _fail(record, f"unknown field(s) {', '.join(unknown)}; allowed: {', '.join(WINDOW_FIELDS)}")
    for side in ("start", "end"):
        if not isinstance(window.get(side), str) or not window[side]:
            _fail(record, f"{side} must name the GHL query parameter that holds the range's {side}")
    if window["start"] == window["end"]:
        _fail(record, "start and end must be different parameters")
    if window.get("format") not in FORMATS:
        _fail(record, f"format must be one of {', '.join(FORMATS)}, not {window.get('format')!r}")
    if not window.get("back") and not window.get("ahead"):
        _fail(record, "needs back and/or ahead: the input(s) giving the range in days from today")
    if window.get("back") and window.get("back") == window.get("ahead"):
        _fail(record, "back and ahead must be different inputs")
    inputs = {f.get("key"): f for f in record.get("inputs", []) if isinstance(f, dict)}
    span = 1
    for side in ("back", "ahead"):
        if window.get(side):
            if not isinstance(window[side], str):
                _fail(record, f"{side} must be an input key")
            span += _check_relative_input(record, side, window[side], inputs)
    for name in (window["start"], window["end"]):
        for field in inputs.values():
            if _ghl_name(field) != name or field.get("in") == "path":
                continue
            if field.get("in") != "query":
                _fail(record, f"input {field['key']} writes {name}, which the window sends in the query")
            if field.get("required"):
                _fail(record, f"input {field['key']} gives {name} explicitly and must not be required")
            if field["key"] in relative_input_keys(record):
                _fail(record, f"input {field['key']} cannot both give {name} and count days")
    max_days = window.get("max_days")
    if max_days is not None:
        if not _is_int(max_days) or max_days < 1:
            _fail(record, "max_days must be a positive integer")
        if span > max_days:
            _fail(record, f"the inputs' max values allow {span} days, more than max_days {max_days}")
