"""Change detection: triggers that watch fields of the records in a GHL list.

A trigger record with a ``response.watch`` block (format: ``catalog/operations/README.md``)
fires on what changed, not on what is new. Per scope the dedupe store keeps, for each GHL
record read, its *baseline*: the watched values seen last (small: values, or a hash of a
long one; never the whole item), the record's version (its updated-at time) and a change
counter. A poll compares what GHL lists with the baselines:

- The scope's first poll records the baselines and fires nothing.
- A record with a baseline fires when a watched value differs from it: ``changed`` gives one
  item per record, with ``previous`` values and ``changed_fields`` (and, for list fields,
  ``added``/``removed``); ``list_added``/``list_removed`` give one item per element added to
  or removed from the watched list (a contact and one tag).
- A record first seen later counts as changed from empty when it was created after the
  scope's first poll (a contact created with tag vip fires "tag added: vip"). One created
  before it was simply not on the pages read then: nothing says what changed, so it is
  baselined silently. ``created`` fires once for such a new record.

Identities are stable: ``<ghl_id>:<n>`` for the n-th change of a record in a scope (plus
``:+<element>``/``:-<element>`` for list events; a ``created`` item is the GHL id), so
Zapier fires once per change, a repeated answer never fires again, and a value flipping
A -> B -> A gets a new identity each time. A record first seen after the first poll counts on
from the scope's number of changes, so no identity is ever issued twice in a scope.

Pure: nothing here does I/O. ``ChangeBatch.resolve`` runs inside the dedupe store's write
transaction, so concurrent polls of a scope never detect a change twice.
"""

import hashlib
import json
from dataclasses import dataclass, field

from ghl.response_items import dig
from triggers.identity import Candidate, timestamp_of

CREATED = "created"
CHANGED = "changed"
LIST_ADDED = "list_added"
LIST_REMOVED = "list_removed"
LIST_EVENTS = (LIST_ADDED, LIST_REMOVED)

# A record created up to this long before a scope's first poll, and first seen after it,
# still counts as new: GHL's search index shows a record a few seconds after it is written,
# and GHL's clock is not ours. Firing once for a record created just before a Zap was
# turned on is better than missing one created just after.
CREATED_GRACE_SECONDS = 300
# Watched values whose JSON is longer than this are kept as a hash (so ``previous`` cannot
# show them); list elements longer than MAX_ELEMENT_CHARS are kept, and reported, as a hash.
MAX_VALUE_CHARS = 100
MAX_ELEMENT_CHARS = 64
HASH_PREFIX = "#"  # a long list element is kept as "#<digest>"; a long value as {"#": "<digest>"}

_SCALARS = (str, int, float, bool)


@dataclass(frozen=True)
class Watch:
    """A record's ``response.watch`` with the poll's inputs applied."""

    event: str
    fields: tuple
    filters: tuple  # ((field, wanted value), ...): only changes whose new value matches
    element: str  # list events: the item key that holds the added or removed element
    created_field: str
    version_field: str
    id_field: str
    ordered_by: str  # the field pages are sorted by (newest first) when that finds every change; else None
    request: dict = field(default_factory=dict)

    @property
    def list_field(self):
        return self.fields[0] if self.event in LIST_EVENTS else None


@dataclass
class Baseline:
    """What a scope remembers of one record: ``values``, its kept watched values as stored
    (``pack``), ``mark`` (the record's version, epoch ms when it is a time) and ``changes``
    (how many changes were detected)."""

    values: list
    mark: object = None
    changes: int = 0


@dataclass
class Resolution:
    candidates: list  # newest first, as the store records them
    baselines: dict  # ghl id -> Baseline to write (new or changed)
    unchanged: list  # ghl ids seen whose baseline stands (for retention)
    counted: int  # the scope's changes so far, this poll's included


def bound_inputs(record):
    """Keys of the inputs the watch block reads itself: never sent to GHL (a GHL-side filter
    would hide a record until after it changed, so the change could not be seen)."""
    watch = record["response"].get("watch") or {}
    keys = {f["input"] for f in watch.get("filters") or [] if "input" in f}
    if watch.get("fields_input"):
        keys.add(watch["fields_input"])
    return keys


def request_inputs(record, inputs):
    """``inputs`` without those the watch block binds."""
    bound = bound_inputs(record)
    return {k: v for k, v in inputs.items() if k not in bound}


def is_ordered(response):
    """Whether a poll may stop at a page holding nothing changed: pages come newest first by a
    field that moves with every change (the version), or, for ``created``, by creation time."""
    watch = response["watch"]
    sort_field = response.get("sort_field")
    if not sort_field:
        return False
    return sort_field == response.get("version_field") or (
        watch["event"] == CREATED and sort_field == watch.get("created_field"))


def watch_of(record, inputs):
    """The record's Watch for a poll with (validated) ``inputs``; None for other triggers."""
    response = record["response"]
    block = response.get("watch")
    if not block:
        return None
    fields = block.get("fields") or []
    chosen = inputs.get(block.get("fields_input")) if block.get("fields_input") else None
    if chosen:
        fields = chosen if isinstance(chosen, list) else [chosen]
    # A filter is bound to an input (applied when it has a value) or fixed (``value``: always).
    filters = tuple((f["field"], f["value"] if "value" in f else inputs[f["input"]])
                    for f in block.get("filters") or []
                    if "value" in f or inputs.get(f["input"]) not in (None, "", []))
    return Watch(
        event=block["event"],
        fields=tuple(dict.fromkeys(fields)),
        filters=filters,
        element=block.get("element"),
        created_field=block["created_field"],
        version_field=response.get("version_field"),
        id_field=response.get("id_field") or "id",
        ordered_by=response.get("sort_field") if is_ordered(response) else None,
        request=dict(block.get("request") or {}),
    )


# -- kept values ----------------------------------------------------------------------------

def _canonical(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def _digest(text):
    return HASH_PREFIX + hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _is_scalar_list(value):
    return isinstance(value, list) and all(isinstance(v, _SCALARS) or v is None for v in value)


def element_key(element):
    """How a list element is kept and compared: itself when a short string, else its hash."""
    text = element if isinstance(element, str) else _canonical(element)
    return text if len(text) <= MAX_ELEMENT_CHARS else _digest(_canonical(element))


def kept_value(value):
    """The form a watched value is kept and compared in: None when empty; a list of scalars
    as its sorted, distinct element keys (order does not matter); anything else itself when
    its JSON is short, else ``{"#": digest}``."""
    if value in (None, "", [], {}):
        return None
    if _is_scalar_list(value):
        keys = sorted({element_key(v) for v in value if v not in (None, "")})
        return keys or None
    text = _canonical(value)
    if len(text) <= MAX_VALUE_CHARS:
        return value
    return {HASH_PREFIX: _digest(text)[len(HASH_PREFIX):]}


def is_hashed(kept):
    return isinstance(kept, dict) and set(kept) == {HASH_PREFIX}


def observe(watch, item):
    """The kept values of ``item``'s watched fields."""
    return {name: kept_value(dig(item, name)) for name in watch.fields}


def fields_signature(fields):
    return hashlib.sha256("\n".join(fields).encode("utf-8")).hexdigest()[:6]


def pack(watch, values):
    """Kept values as stored: ``[signature of the field list, value, ...]`` in field order (no
    field names: they would be most of the row)."""
    if not watch.fields:
        return []
    return [fields_signature(watch.fields)] + [values.get(name) for name in watch.fields]


def unpack(watch, packed):
    """{field: kept value}; empty (every field unknown, so adopted silently) when the values
    were stored for another field list, i.e. the record's watched fields changed since."""
    if not watch.fields or not packed or packed[0] != fields_signature(watch.fields):
        return {}
    return dict(zip(watch.fields, packed[1:]))


def mark_of(watch, item):
    """The record's version as kept: epoch ms when its version field is a time, else its text."""
    if not watch.version_field or watch.event == CREATED:
        return None
    value = dig(item, watch.version_field)
    if value in (None, ""):
        return None
    seconds = timestamp_of(value)
    return int(round(seconds * 1000)) if seconds is not None else str(value)


def _older(mark, than):
    return isinstance(mark, int) and isinstance(than, int) and mark < than


def ghl_id_of(watch, item):
    ghl_id = dig(item, watch.id_field)
    if ghl_id in (None, "") or isinstance(ghl_id, (dict, list)):
        return None
    return str(ghl_id)


def settled(watch, baseline, item):
    """True when ``item`` holds nothing new against ``baseline``: known, same version, same values.
    Pages of a list sorted by version stop being read at a page of settled records."""
    if baseline is None:
        return False
    if watch.event == CREATED:
        return True
    old = unpack(watch, baseline.values)
    return mark_of(watch, item) == baseline.mark and _same_values(old, observe(watch, item)) and bool(old)


def _same_values(old, new):
    return all(name not in old or old[name] == value for name, value in new.items())


# -- what changed -----------------------------------------------------------------------------

def _matches(value, wanted):
    """Whether a record's value (or any element of a list value) is ``wanted``, ignoring case."""
    if isinstance(value, list):
        return any(_matches(v, wanted) for v in value)
    if value is None:
        return False
    wanted = wanted if isinstance(wanted, list) else [wanted]
    return any(str(value).casefold() == str(w).casefold()
               or element_key(value).casefold() == element_key(w).casefold() for w in wanted)


def _filters_pass(watch, item, skip=None):
    return all(_matches(dig(item, name), wanted) for name, wanted in watch.filters if name != skip)


def _element_passes(watch, key):
    return all(_matches(key, wanted) for name, wanted in watch.filters if name == watch.list_field)


def _as_keys(kept):
    """The element keys of a kept list value ([] for empty); None for any other value."""
    if kept is None:
        return []
    return kept if isinstance(kept, list) else None


def describe(old, new, fields):
    """(changed_fields, previous, added, removed) between two kept-value dicts: fields missing
    from ``old`` are unknown, not changed."""
    changed = [name for name in fields if name in old and old[name] != new.get(name)]
    previous, added, removed = {}, {}, {}
    for name in changed:
        if not is_hashed(old[name]):
            previous[name] = old[name]
        before, after = _as_keys(old[name]), _as_keys(new.get(name))
        listed = isinstance(old[name], list) or isinstance(new.get(name), list)
        if listed and before is not None and after is not None:
            added[name] = [k for k in after if k not in before]
            removed[name] = [k for k in before if k not in after]
    return changed, previous, added, removed


def _original_element(item, list_field, key):
    """The element of the record's list whose key is ``key`` (keeps GHL's spelling)."""
    value = dig(item, list_field)
    for element in value if isinstance(value, list) else []:
        if element_key(element) == key:
            return element
    return key


def change_items(watch, ghl_id, item, old, new, number):
    """The items one detected change fires (possibly none: the trigger's filters decide),
    as (identity, emitted item) pairs."""
    changed, previous, added, removed = describe(old, new, watch.fields)
    if not changed:
        return []
    base = dict(item)
    base.update({"id": f"{ghl_id}:{number}", "ghl_id": ghl_id, "changed_fields": changed, "previous": previous})
    if added or removed:
        base["added"], base["removed"] = added, removed
    if watch.event == CHANGED:
        return [(base["id"], base)] if _filters_pass(watch, item) else []
    list_field = watch.list_field
    keys = (added if watch.event == LIST_ADDED else removed).get(list_field) or []
    if not keys or not _filters_pass(watch, item, skip=list_field):
        return []
    sign = "+" if watch.event == LIST_ADDED else "-"
    found = []
    for key in keys:
        if not _element_passes(watch, key):
            continue
        emitted = dict(base)
        emitted["id"] = f"{ghl_id}:{number}:{sign}{key}"
        emitted[watch.element] = _original_element(item, list_field, key) if sign == "+" else key
        found.append((emitted["id"], emitted))
    return found


def created_item(watch, ghl_id, item):
    if not _filters_pass(watch, item):
        return None
    emitted = dict(item)
    emitted.update({"id": ghl_id, "ghl_id": ghl_id})
    return emitted


def _created_after(watch, item, moment):
    created = timestamp_of(dig(item, watch.created_field))
    return created is not None and created >= moment - CREATED_GRACE_SECONDS


def _order_ts(watch, item):
    name = watch.created_field if watch.event == CREATED else (watch.version_field or watch.created_field)
    return timestamp_of(dig(item, name))


def latest_per_record(watch, items):
    """{ghl id: item}, one per record: a list read page by page while it changes can show a
    record twice; the newest version wins (the first seen on a tie)."""
    chosen = {}
    for item in items:
        ghl_id = ghl_id_of(watch, item)
        if ghl_id is None:
            continue
        held = chosen.get(ghl_id)
        if held is None or _older(mark_of(watch, held) or 0, mark_of(watch, item) or 0):
            chosen[ghl_id] = item
    return chosen


KEEP_POSITION = object()


class ChangeBatch:
    """The records one poll read, to be compared with the scope's baselines by the dedupe store,
    inside its write transaction (``resolve``). ``scan_from`` is where the next poll of a
    scanning trigger starts reading (None: at the first page; KEEP_POSITION: unchanged)."""

    def __init__(self, watch, items, scan_from=KEEP_POSITION):
        self.watch = watch
        self.records = latest_per_record(watch, items)
        self.scan_from = scan_from
        # Worked out here, before the store's write transaction, to keep that short.
        self.observed = {ghl_id: (observe(watch, item) if watch.event != CREATED else {}, mark_of(watch, item))
                         for ghl_id, item in self.records.items()}

    @property
    def ghl_ids(self):
        return list(self.records)

    def writes_nothing(self, baselines, last_seen, first_poll, now, counted, scan_from, stale_before):
        """True when resolving this batch would leave its scope as it is: the scanning position
        ``scan_from`` (decoded) stays, nothing fires, no baseline is new or changed, the change
        count stays ``counted`` and no unchanged record was last seen (``last_seen``: epoch
        seconds by GHL id) before ``stale_before``. The stores' read-only path for change triggers."""
        if self.scan_from is not KEEP_POSITION and (scan_from or None) != (self.scan_from or None):
            return False
        resolution = self.resolve(baselines, first_poll, now, counted)
        return not (resolution.candidates or resolution.baselines or resolution.counted != counted
                    or any(last_seen[ghl_id] < stale_before for ghl_id in resolution.unchanged))

    def resolve(self, baselines, first_poll, now, counted=0):
        """What changed against ``baselines`` ({ghl id: Baseline}); ``first_poll`` is when the
        scope was first polled, None when this is its first poll; ``counted``: how many changes
        the scope has detected so far.

        A new baseline counts on from ``counted``, not from 0: a record whose baseline was
        pruned and is made again never gets an identity it had before (Zapier would drop it).
        On the first poll ``counted`` is 0, so identities read ``<id>:1``, ``<id>:2``..."""
        watch = self.watch
        found = []  # (order ts, identity, item), newest record first
        written, unchanged = {}, []
        for ghl_id, item in self.records.items():
            base = baselines.get(ghl_id)
            new_values, mark = self.observed[ghl_id]
            if base is None:
                written[ghl_id] = Baseline(pack(watch, new_values), mark, counted)
                if first_poll is None or not _created_after(watch, item, first_poll):
                    continue  # the first poll's baseline, or a record we cannot know the past of
                if watch.event == CREATED:
                    emitted = created_item(watch, ghl_id, item)
                    if emitted is not None:
                        found.append((_order_ts(watch, item), ghl_id, emitted))
                    continue
                old_values, count = {name: None for name in watch.fields}, counted
            elif watch.event == CREATED or _older(mark, base.mark):
                unchanged.append(ghl_id)  # known; or a stale read, older than one already compared
                continue
            else:
                old_values, count = unpack(watch, base.values), base.changes
            if _same_values(old_values, new_values):
                if base is not None and (mark != base.mark or set(new_values) != set(old_values)):
                    written[ghl_id] = Baseline(pack(watch, new_values), mark, count)
                elif base is not None:
                    unchanged.append(ghl_id)
                continue
            count += 1
            counted += 1
            written[ghl_id] = Baseline(pack(watch, new_values), mark, count)
            items = change_items(watch, ghl_id, item, old_values, new_values, count)
            # The store numbers candidates oldest first by reversing them: reverse a record's
            # items here so that they keep their order (the order of the tags, say).
            found.extend((_order_ts(watch, item), identity, emitted) for identity, emitted in reversed(items))
        found.sort(key=lambda f: f[0] if f[0] is not None else now, reverse=True)
        candidates = [Candidate(identity, emitted, ts) for ts, identity, emitted in found]
        return Resolution(candidates, written, unchanged, counted)


def sample_items(watch, items):
    """Items shaped as live polls shape them, for GHL's newest records, each as if first seen
    from empty (identities ``<ghl_id>:0...``, never a live one); nothing is recorded."""
    answered = []
    for ghl_id, item in latest_per_record(watch, items).items():
        if watch.event == CREATED:
            emitted = created_item(watch, ghl_id, item)
            if emitted is not None:
                answered.append(emitted)
            continue
        answered.extend(emitted for _, emitted in change_items(
            watch, ghl_id, item, {name: None for name in watch.fields}, observe(watch, item), 0))
    return answered
