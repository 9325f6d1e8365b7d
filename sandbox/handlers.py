"""The generic handler: serves any catalog operation from the resource store.

Each operation's ``action`` (decided in ``sandbox.routing``) picks one function here; the
GHL endpoints that behave differently are in ``sandbox.ghl_behaviours``. Every function
takes a ``Call`` and answers ``(status, body)``.
"""

import re
from dataclasses import dataclass
from typing import Any

from sandbox import answers, custom_fields
from sandbox.filters import in_time_window, matches_params, matches_search_filter, select
from sandbox.paging import PagingError, cursor_page, last_item_page, offset_page
from sandbox.routing import (
    FILTERED_VIEWS,
    LOCATION_PARAMS,
    SHARED_ID_COLLECTIONS,
    SLOT,
    alias,
    fill,
    list_collection_shape,
    parent_shape,
    target_of,
)
from sandbox.seed import LOCATION_ID
from sandbox.spec_shapes import dress

CURSOR_STYLES = ("contacts_cursor", "opportunities_cursor")
# A part name made from other inputs (forms' upload: ``{customFieldId}_{file_id}``).
TEMPLATED_NAME = re.compile(r"{[^}]+}")
# Per-collection defaults GHL fills in on create.
CREATE_DEFAULTS = {"/contacts": {"tags": []}, "/opportunities": {"status": "open"}}


@dataclass
class Call:
    """One API request, as the handlers see it."""

    op: Any  # routing.Operation
    table: Any  # routing.RouteTable
    store: Any  # store.ResourceStore
    values: list  # path parameter values, in path order
    args: Any  # query parameters (a MultiDict)
    body: Any  # the parsed JSON body, or None
    url: str  # the request URL without its query string

    @property
    def params(self):
        """Path parameters by the record's names."""
        return dict(zip(self.op.param_names, self.values))

    @property
    def body_dict(self):
        return self.body if isinstance(self.body, dict) else {}

    def key(self, shape):
        """The concrete collection key of ``shape`` for this request."""
        return fill(shape, self.values)


# -- helpers ------------------------------------------------------------------------------

def missing_owner(call, collection_shape):
    """A 404 answer when the record owning a nested collection (the contact of
    ``/contacts/{id}/tasks``) does not exist; None when it does or cannot be known."""
    owner_shape, _ = target_of(collection_shape)
    if owner_shape is None or not call.table.is_stored(owner_shape):
        return None
    owner_index = collection_shape.count(SLOT) - 1
    if call.op.param_names[owner_index] in LOCATION_PARAMS:
        return None  # a location-scoped path (``/brand-boards/{locationId}/...``): see routing
    owner_id = call.values[owner_index]
    if call.store.get(call.key(owner_shape), owner_id) is None:
        return answers.not_found(f"{answers.noun_of(owner_shape)} not found")
    return None


def find(call, shape, item_id):
    """(collection key, record) of ``item_id`` in ``shape``'s collection (or one sharing its ids)."""
    for candidate in (shape,) + SHARED_ID_COLLECTIONS.get(shape, ()):
        key = call.key(candidate)
        record = call.store.get(key, item_id)
        if record is not None:
            return key, record
    return call.key(shape), None


def stored_record(call, shape, item_id):
    """(collection key, record, None) for ``item_id`` in ``shape``'s collection, or
    (key, None, a 404 answer) when it, or the record owning its collection, does not exist."""
    missing = missing_owner(call, shape)
    if missing:
        return None, None, missing
    key, record = find(call, shape, item_id)
    if record is None:
        return key, None, answers.not_found(f"{call.op.record.get('noun') or answers.noun_of(shape)} not found")
    return key, record, None


def acknowledgement(call, target=None, target_id=None):
    """The answer of an action that returns a flag: ``{"succeeded": true}`` plus the flags and
    fields the record's sample shows (``success``, ``succeded``, ``messageId``...)."""
    result = {"succeeded": True}
    for name, value in (call.op.record.get("sample") or {}).items():
        if value is True:
            result[name] = True
        elif target and name in target:
            result[name] = target[name]
        elif name == call.op.id_field and target_id is not None:
            result[name] = target_id
    return result


def required_inputs_missing(call):
    """GHL's 422 for query/body inputs that every record of the operation requires."""
    required = None
    for record in call.op.records:
        names = {((i.get("field") or i["key"]).split(".")[0], i["in"])
                 for i in record.get("inputs", []) if i.get("required") and i["in"] in ("query", "body")}
        # GHL requires the time range that the service now fills from a record's rolling window.
        window = record.get("window") or {}
        names |= {(window[end], "query") for end in ("start", "end") if window.get(end)}
        required = names if required is None else required & names
    missing = []
    for name, place in sorted(required or ()):
        if place == "query":
            present = call.args.get(name) not in (None, "")
        elif isinstance(call.body, dict) and TEMPLATED_NAME.search(name):
            pattern = re.compile(TEMPLATED_NAME.sub(".+", re.escape(name).replace(r"\{", "{").replace(r"\}", "}")))
            present = any(pattern.fullmatch(key) for key in call.body)
        elif isinstance(call.body, dict):
            present = call.body.get(name) not in (None, "", [])
        else:
            present = True
        if not present:
            missing.append(name)
    return answers.should_not_be_empty(*missing) if missing else None


def with_path_fields(call, fields):
    """``fields`` plus the path parameters (a task created under a contact gets ``contactId``)."""
    merged = dict(call.params)
    merged.update(fields)
    return merged


def list_answer(call, records):
    """A list answer for ``records``: selected by query params and free text, paged by the
    operation's pagination style, wrapped at its items path with ``total``/``meta``.
    Cursor-paged lists come newest first, as GHL's do; the others oldest first."""
    op = call.op
    records = [r for r in select(records, call.args) if in_time_window(r, call.args)]
    style = op.pagination
    if style in CURSOR_STYLES:
        page = cursor_page(records, call.args, "dateAdded", descending=True,
                           default_limit=20, max_limit=100, url=call.url)
    elif style == "last_message_id":
        page = last_item_page(records, call.args, id_field=op.id_field)
    else:
        page = offset_page(records, call.args)
    body = answers.wrap(op.items_path, page.items)
    holder = answers.container(body, op.items_path)
    if holder is not None:
        if style in CURSOR_STYLES:
            holder["meta"] = page.meta
        elif style == "last_message_id":
            holder.update(page.meta)
        else:
            holder["total"] = holder["count"] = page.total
    return 200, body


def sample_answer(call):
    """An endpoint with nothing stored behind it (a recording, a transcription): the record's
    sample, with the request's path parameters filled in."""
    sample = dict(call.op.record.get("sample") or {})
    sample.update({k: v for k, v in call.params.items() if k in sample})
    value = sample if call.op.single else [sample]
    return 200, answers.wrap(call.op.items_path, value)


# -- the actions --------------------------------------------------------------------------

def read(call):
    shape = alias(parent_shape(call.op.shape))
    if not call.table.is_stored(shape):
        return sample_answer(call)
    _, record, failure = stored_record(call, shape, call.values[-1])
    if failure:
        return failure
    return 200, answers.wrap(call.op.items_path, record)


def list_records(call):
    shape = list_collection_shape(call.op.shape)
    missing = missing_owner(call, shape)
    if missing:
        return missing
    return list_answer(call, call.store.items(call.key(shape)))


def filtered_view(call):
    source, fields = FILTERED_VIEWS[call.op.shape]
    if not call.op.shape.endswith(SLOT):
        missing = missing_owner(call, call.op.shape)
        if missing:
            return missing
    wanted = call.values[-1]
    records = [r for r in call.store.items(source) if any(str(r.get(f)) == wanted for f in fields)]
    if call.op.single:
        records = [r for r in records if matches_params(r, call.args)]
        if not records:
            return answers.not_found(f"{answers.noun_of(source)} not found")
        return 200, answers.wrap(call.op.items_path, records[0])
    return list_answer(call, records)


def create(call):
    shape = alias(call.op.shape)
    missing = missing_owner(call, shape)
    if missing:
        return missing
    key = call.key(shape)
    id_field = call.store.id_field(key, call.op.id_field)
    bodies = call.body if isinstance(call.body, list) else [call.body_dict]
    created = []
    for fields in bodies:
        fields = with_path_fields(call, fields if isinstance(fields, dict) else {"value": fields})
        fields = {**CREATE_DEFAULTS.get(key, {}), **fields}
        created.append(call.store.create(key, fields, id_field=id_field))
    value = created[0] if call.op.single and not isinstance(call.body, list) else created
    return 201, answers.wrap(call.op.items_path, value)


def membership_add(call):
    shape = alias(parent_shape(call.op.shape))
    missing = missing_owner(call, shape)
    if missing:
        return missing
    key, item_id = call.key(shape), call.values[-1]
    if call.store.update(key, item_id, call.body_dict) is None:
        call.store.create(key, with_path_fields(call, call.body_dict), item_id=item_id)
    return 201, answers.wrap_unless_present(call.op.items_path, acknowledgement(call))


def update(call):
    shape = alias(parent_shape(call.op.shape))
    key, _, failure = stored_record(call, shape, call.values[-1])
    if failure:
        return failure
    updated = call.store.update(key, call.values[-1], call.body_dict)
    return 200, answers.wrap(call.op.items_path, updated)


def _target(call):
    """(collection key, id, record, error answer) of the record a sub-path acts on
    (the task of ``.../tasks/{taskId}/completed``); record is None where nothing is stored."""
    shape, _ = target_of(call.op.shape)
    if shape is None or not call.table.is_stored(shape):
        return None, None, None, None
    missing = missing_owner(call, shape)
    if missing:
        return None, None, None, missing
    if call.op.param_names[shape.count(SLOT)] in LOCATION_PARAMS:
        return None, None, None, None
    item_id = call.values[shape.count(SLOT)]
    key, record = find(call, shape, item_id)
    if record is None:
        return key, item_id, None, answers.not_found(f"{answers.noun_of(shape)} not found")
    return key, item_id, record, None


def sub_update(call):
    key, item_id, record, failure = _target(call)
    if failure:
        return failure
    if record is None:
        return sample_answer(call)
    updated = call.store.update(key, item_id, call.body_dict)
    if call.op.items_path:
        return 200, answers.wrap(call.op.items_path, updated)
    return 200, acknowledgement(call, updated, item_id)


def _listed(value):
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return list(value or [])


def list_field_change(call, adding):
    """``POST``/``DELETE .../{id}/tags`` (or ``followers``): add to or remove from that list field."""
    key, item_id, record, failure = _target(call)
    if failure:
        return failure
    _, field = target_of(call.op.shape)
    if record is None:
        return sample_answer(call)
    current = _listed(record.get(field))
    given = _listed(call.body_dict.get(field))
    if adding:
        changed = [v for v in dict.fromkeys(given) if v not in current]
        now = current + changed
        delta_name = field + "Added"
    else:
        remove_all = str(call.args.get("isRemoveAllFollowers", "")).lower() == "true"
        changed = [v for v in current if remove_all or v in given]
        now = [v for v in current if v not in changed]
        delta_name = field + "Removed"
    call.store.update(key, item_id, {field: now})
    result = {field: now, delta_name: changed}
    return (201 if adding else 200), answers.wrap_unless_present(call.op.items_path, result)


def list_field_add(call):
    return list_field_change(call, adding=True)


def list_field_remove(call):
    return list_field_change(call, adding=False)


def delete(call):
    shape = alias(parent_shape(call.op.shape))
    item_id = call.values[-1]
    if not call.table.is_stored(shape):
        # A membership (a contact's campaign): removing one that is not there still succeeds.
        call.store.delete(call.key(shape), item_id)
        return 200, answers.wrap_unless_present(call.op.items_path, acknowledgement(call, target_id=item_id))
    key, record, failure = stored_record(call, shape, item_id)
    if failure:
        return failure
    call.store.delete(key, item_id)
    return 200, answers.wrap_unless_present(call.op.items_path, acknowledgement(call, record, item_id))


def clear_all(call):
    """``DELETE /contacts/{id}/campaigns/removeAll``: empty the collection before ``removeAll``."""
    shape = alias(parent_shape(call.op.shape))
    missing = missing_owner(call, shape)
    if missing:
        return missing
    call.store.clear(call.key(shape))
    return 200, answers.wrap_unless_present(call.op.items_path, acknowledgement(call))


def acknowledge(call):
    _, item_id, _, failure = _target(call)
    if failure:
        return failure
    return 200, answers.wrap_unless_present(call.op.items_path, acknowledgement(call, target_id=item_id))


def search(call):
    """``POST .../search``: the parent collection selected by the body's fields, free-text
    ``query`` and ``filters``, paged by ``page``/``pageLimit`` (or ``limit``/``skip``)."""
    shape = alias(parent_shape(call.op.shape))
    body = call.body_dict
    scalars = {k: v for k, v in body.items() if isinstance(v, (str, int, float, bool))}
    records = select(call.store.items(call.key(shape)), scalars)
    records = [r for r in records if all(matches_search_filter(r, f) for f in body.get("filters") or [])]
    size_param = "pageLimit" if "pageLimit" in body else "limit"
    page = offset_page(records, body, size_param=size_param)
    result = answers.wrap(call.op.items_path, page.items)
    holder = answers.container(result, call.op.items_path)
    if holder is not None:
        holder["total"] = page.total
    return 200, result


GENERIC_ACTIONS = {
    "read": read,
    "list": list_records,
    "filtered_view": filtered_view,
    "create": create,
    "membership_add": membership_add,
    "update": update,
    "sub_update": sub_update,
    "list_field_add": list_field_add,
    "list_field_remove": list_field_remove,
    "delete": delete,
    "clear_all": clear_all,
    "acknowledge": acknowledge,
    "search": search,
    "virtual": sample_answer,
}


def handle(call, special=None):
    """Answer ``call``: required inputs first (422), then the special or generic action."""
    missing = required_inputs_missing(call)
    if missing:
        return missing
    try:
        with call.store.lock:
            rejected = custom_fields.prepare_write(call, LOCATION_ID)
            if rejected:
                return rejected
            if special:
                return special(call)
            status, body = GENERIC_ACTIONS[call.op.action](call)
            return status, dress(call.op, status, body)
    except PagingError as exc:
        return answers.unprocessable(exc.messages)

