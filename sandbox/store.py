"""The sandbox's in-memory resource store: collections of JSON records, keyed by id.

A collection key is a concrete path without a trailing slash (``/contacts``,
``/contacts/abc/tasks``). Records are plain dicts; callers get copies, never the stored
objects. One re-entrant lock guards everything, so a handler can hold it across several
calls (find-then-create in an upsert) while the app is served threaded.
"""

import copy
import random
import string
import threading
import time
from datetime import datetime, timezone

TIMESTAMP_FIELDS = ("dateAdded", "dateUpdated", "createdAt", "updatedAt")
# Per collection, fields whose change GHL stamps in another field (an opportunity's stage
# and status: ``lastStageChangeAt``, ``lastStatusChangeAt``); set on create too.
CHANGE_STAMPS = {"/opportunities": {"pipelineStageId": "lastStageChangeAt", "status": "lastStatusChangeAt"}}
ID_ALPHABET = string.ascii_letters + string.digits


def iso_from_ms(ms):
    """ISO-8601 UTC with milliseconds, as GHL writes it: ``2024-01-01T09:00:00.000Z``."""
    moment = datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def epoch_ms(value):
    """Epoch milliseconds of an ISO string or a number; None when it is neither."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return int(value)
    text = str(value).strip()
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp() * 1000)


class ResourceStore:
    """Collections of records with generated ids and strictly increasing timestamps."""

    def __init__(self, id_seed=20240101):
        self.lock = threading.RLock()
        self._collections = {}
        self._id_fields = {}
        self._last_ms = 0
        # Seeded so that ids, like everything else, repeat from one run (or reset) to the next.
        self._random = random.Random(id_seed)

    # -- clock and ids -------------------------------------------------------------------
    def now(self):
        """The current time as ISO-8601; each call is at least 1 ms after the one before."""
        with self.lock:
            self._last_ms = max(int(time.time() * 1000), self._last_ms + 1)
            return iso_from_ms(self._last_ms)

    def new_id(self):
        """A 20-character id like GHL's (``ocQHyuzHvysMo5N5VsXc``)."""
        with self.lock:
            return "".join(self._random.choice(ID_ALPHABET) for _ in range(20))

    # -- collections ----------------------------------------------------------------------
    def has_collection(self, key):
        with self.lock:
            return key in self._collections

    def id_field(self, key, default="id"):
        """The id field the records of ``key`` carry (``id``; blogs and notifications use ``_id``)."""
        with self.lock:
            return self._id_fields.get(key, default)

    def items(self, key):
        """Copies of the records of ``key``, oldest first."""
        with self.lock:
            records = list(self._collections.get(key, {}).values())
            records.sort(key=lambda r: epoch_ms(r.get("dateAdded")) or 0)
            return copy.deepcopy(records)

    def get(self, key, item_id):
        with self.lock:
            found = self._collections.get(key, {}).get(str(item_id))
            return copy.deepcopy(found)

    def find(self, key, predicate):
        """The first record of ``key`` (oldest first) for which ``predicate`` holds, or None."""
        for record in self.items(key):
            if predicate(record):
                return record
        return None

    def create(self, key, fields, id_field="id", item_id=None):
        """Store a new record in ``key``: ``fields`` plus an id and timestamps; returns a copy.

        Timestamps already in ``fields`` are kept (bulk loads of old records); missing ones
        are filled from one ``now()``.
        """
        with self.lock:
            id_field = self._id_fields.setdefault(key, id_field or "id")
            record_id = str(item_id or fields.get(id_field) or self.new_id())
            record = {id_field: record_id, **copy.deepcopy(dict(fields))}
            record[id_field] = record_id
            stamp = None
            given = next((record[f] for f in TIMESTAMP_FIELDS if record.get(f)), None)
            for name in TIMESTAMP_FIELDS:
                if not record.get(name):
                    stamp = stamp or given or self.now()
                    record[name] = stamp
            for watched, stamp_field in CHANGE_STAMPS.get(key, {}).items():
                if record.get(watched) is not None and not record.get(stamp_field):
                    record[stamp_field] = record["dateAdded"]
            self._collections.setdefault(key, {})[record_id] = record
            return copy.deepcopy(record)

    def update(self, key, item_id, fields):
        """Merge ``fields`` into a record and bump dateUpdated/updatedAt; None when missing."""
        with self.lock:
            record = self._collections.get(key, {}).get(str(item_id))
            if record is None:
                return None
            id_field = self._id_fields.get(key, "id")
            before = dict(record)
            for name, value in fields.items():
                if name not in (id_field, "dateAdded", "createdAt"):
                    record[name] = copy.deepcopy(value)
            record["dateUpdated"] = record["updatedAt"] = self.now()
            for watched, stamp_field in CHANGE_STAMPS.get(key, {}).items():
                if record.get(watched) != before.get(watched):
                    record[stamp_field] = record["dateUpdated"]
            return copy.deepcopy(record)

    def delete(self, key, item_id):
        """Remove a record and the collections nested under it (a contact's tasks); True when it was there."""
        with self.lock:
            nested = f"{key}/{item_id}/"
            for child in [k for k in self._collections if k.startswith(nested)]:
                del self._collections[child]
            return self._collections.get(key, {}).pop(str(item_id), None) is not None

    def clear(self, key):
        """Remove every record of ``key``; how many there were."""
        with self.lock:
            return len(self._collections.pop(key, {}))
