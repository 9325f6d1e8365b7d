"""Item identities: what makes two polled items "the same" for dedupe and for Zapier.

- ``dedupe: new``: the identity is the GHL id, so an item fires once when it appears.
- ``dedupe: changes`` (single objects, "updated" triggers): the identity is the GHL id plus a
  version, the record's updated-at field or else a hash of its content, so an item fires
  once per change.
An item with no id at all is identified by a hash of its content.

Change triggers (``response.watch``) identify their items themselves (``triggers.changes``:
``<ghl_id>:<n>`` for the n-th change of a record); an item they made keeps its identity here.

The emitted item carries the identity as ``id`` (Zapier's dedupe key) and the GHL id in
``ghl_id``, so users can still map the real id. A candidate makes that copy only when its
``item`` is read: a poll whose items are all known already reads none (``triggers.poll``).
"""

import hashlib
import json
from datetime import datetime
from functools import partial


class Candidate:
    """An item as a poll may answer it: its ``identity``, the ``item`` as emitted and its order
    key ``sort_ts``. ``make`` (instead of ``item``): a function that makes the item the first
    time ``item`` is read, so work spent on items nobody answers is never done."""

    __slots__ = ("identity", "sort_ts", "_item", "_make")

    def __init__(self, identity, item=None, sort_ts=None, make=None):
        self.identity = identity
        self.sort_ts = sort_ts
        self._item = item
        self._make = make

    @property
    def item(self):
        if self._make is not None:
            self._item = self._make()
            self._make = None
        return self._item

    @item.setter
    def item(self, value):
        self._item, self._make = value, None

    def source(self):
        """A function giving the item as it is now (made, or still to be made), without making it
        here: ``later`` builds on it."""
        if self._make is not None:
            return self._make
        item = self._item
        return lambda: item

    def __eq__(self, other):
        if not isinstance(other, Candidate):
            return NotImplemented
        return (self.identity, self.item, self.sort_ts) == (other.identity, other.item, other.sort_ts)

    __hash__ = None

    def __repr__(self):
        return f"Candidate(identity={self.identity!r}, item={self.item!r}, sort_ts={self.sort_ts!r})"


def later(candidates, change):
    """Replace the items of ``candidates`` by ``change(list of their items)`` (as many items, in
    the same order), worked out once, when any of their items is first read; never if none is."""
    candidates = list(candidates)
    sources = [candidate.source() for candidate in candidates]
    changed = []

    def item(index):
        if not changed:
            changed.append(change([source() for source in sources]))
        return changed[0][index]

    for index, candidate in enumerate(candidates):
        candidate._make = partial(item, index)


# Fields GHL adds per answer, not per record: hashing them would make every poll a "change".
VOLATILE_FIELDS = ("traceId",)


def content_hash(item):
    item = {k: v for k, v in item.items() if k not in VOLATILE_FIELDS} if isinstance(item, dict) else item
    canonical = json.dumps(item, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:20]


# ISO-8601 times with a zone already read (a steady-state poll reads the same items' times every
# time): text -> seconds. Bounded; emptied when full.
_ZONED_TIMES = {}
MAX_ZONED_TIMES = 4096


def timestamp_of(value):
    """Seconds since the epoch for an ISO-8601 string or an epoch number (s or ms); None if neither."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value / 1000.0 if value > 1e11 else float(value)
    text = str(value).strip()
    if text.isdigit():
        return timestamp_of(int(text))
    found = _ZONED_TIMES.get(text)
    if found is not None:
        return found
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        seconds = moment.timestamp()
    except ValueError:
        return None
    if moment.tzinfo is not None:  # a zone-less time depends on the process's zone: never kept
        if len(_ZONED_TIMES) >= MAX_ZONED_TIMES:
            _ZONED_TIMES.clear()
        _ZONED_TIMES[text] = seconds
    return seconds


def candidate_for(record, item):
    response = record["response"]
    if response.get("watch") and "ghl_id" in item and item.get("id") not in (None, ""):
        # Made by a change trigger (its sample, say): already identified.
        version = item.get(response.get("version_field") or "")
        return Candidate(str(item["id"]), sort_ts=timestamp_of(version), make=partial(dict, item))
    id_field = response.get("id_field")
    ghl_id = item.get(id_field) if id_field else None
    if ghl_id is None or isinstance(ghl_id, (dict, list)):
        identity = content_hash(item)
    elif response.get("dedupe") == "changes":
        version_field = response.get("version_field")
        version = item.get(version_field) if version_field else None
        identity = f"{ghl_id}:{version if version not in (None, '') else content_hash(item)}"
    else:
        identity = str(ghl_id)
    sort_field = response.get("sort_field")
    return Candidate(identity, sort_ts=timestamp_of(item.get(sort_field)) if sort_field else None,
                     make=partial(_emitted, item, ghl_id, identity))


def _emitted(item, ghl_id, identity):
    emitted = dict(item)
    emitted["ghl_id"] = ghl_id
    emitted["id"] = identity
    return emitted
