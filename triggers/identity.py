"""Item identities: what makes two polled items "the same" for dedupe and for Zapier.

- ``dedupe: new``: the identity is the GHL id, so an item fires once when it appears.
- ``dedupe: changes`` (single objects, "updated" triggers): the identity is the GHL id plus a
  version, the record's updated-at field or else a hash of its content, so an item fires
  once per change.
An item with no id at all is identified by a hash of its content.

Change triggers (``response.watch``) identify their items themselves (``triggers.changes``:
``<ghl_id>:<n>`` for the n-th change of a record); an item they made keeps its identity here.

The emitted item carries the identity as ``id`` (Zapier's dedupe key) and the GHL id in
``ghl_id``, so users can still map the real id.
"""

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime


@dataclass
class Candidate:
    identity: str
    item: dict
    sort_ts: float = None


# Fields GHL adds per answer, not per record: hashing them would make every poll a "change".
VOLATILE_FIELDS = ("traceId",)


def content_hash(item):
    item = {k: v for k, v in item.items() if k not in VOLATILE_FIELDS} if isinstance(item, dict) else item
    canonical = json.dumps(item, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:20]


def timestamp_of(value):
    """Seconds since the epoch for an ISO-8601 string or an epoch number (s or ms); None if neither."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value / 1000.0 if value > 1e11 else float(value)
    text = str(value).strip()
    if text.isdigit():
        return timestamp_of(int(text))
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def candidate_for(record, item):
    response = record["response"]
    if response.get("watch") and "ghl_id" in item and item.get("id") not in (None, ""):
        # Made by a change trigger (its sample, say): already identified.
        version = item.get(response.get("version_field") or "")
        return Candidate(str(item["id"]), dict(item), timestamp_of(version))
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
    emitted = dict(item)
    emitted["ghl_id"] = ghl_id
    emitted["id"] = identity
    sort_field = response.get("sort_field")
    return Candidate(identity, emitted, timestamp_of(item.get(sort_field)) if sort_field else None)
