"""How a catalog path maps onto the resource store, decided once per operation at start-up.

Paths are compared as *shapes*: no trailing slash and every ``{param}`` written ``{}``
(``/contacts/{contactId}/tasks/{taskId}`` -> ``/contacts/{}/tasks/{}``), so records that
name the same parameter differently still share a collection.

An operation acts on a *collection*: its shape without a trailing ``{}``, with the other
parameters filled from the request (``/contacts/{}/tasks`` -> ``/contacts/abc/tasks``).
A few GHL endpoints keep their items under another path; the tables below say where.
"""

import re
from dataclasses import dataclass, field

PATH_PARAM = re.compile(r"{([^}]+)}")
SLOT = "{}"

# Endpoints whose records GHL keeps in another endpoint's collection.
COLLECTION_ALIASES = {
    "/calendars/events/appointments": "/calendars/events",
    "/calendars/events/block-slots": "/calendars/blocked-slots",
    "/conversations/messages/inbound": "/conversations/messages",
    "/conversations/messages/outbound": "/conversations/messages",
    # Uploaded files and new folders are what ``GET /medias/files`` lists.
    "/medias/upload-file": "/medias/files",
    "/medias/folder": "/medias/files",
}

# Lists (or single look-ups) that select, from another collection, the records whose
# field (any of those named) equals the path's last parameter.
FILTERED_VIEWS = {
    "/contacts/{}/appointments": ("/calendars/events", ("contactId",)),
    "/contacts/business/{}": ("/contacts", ("businessId",)),
    "/conversations/{}/messages": ("/conversations/messages", ("conversationId",)),
    "/associations/relations/{}": ("/associations/relations", ("firstRecordId", "secondRecordId")),
    "/associations/key/{}": ("/associations", ("key",)),
    "/associations/objectKey/{}": ("/associations", ("firstObjectKey", "secondObjectKey")),
}

# An id looked up in the first collection and missing there is also looked up in these
# (``DELETE /calendars/events/{eventId}`` deletes appointments and blocked slots alike).
SHARED_ID_COLLECTIONS = {"/calendars/events": ("/calendars/blocked-slots",)}

# Path parameters that name the location (``/saas/pause/{locationId}``). GHL scopes such a path
# by the location itself: an operation ending in one acts on the location's settings, not on a
# record stored under that id (except under ``/locations``, which holds the locations).
LOCATION_PARAMS = ("locationId", "location_id")
LOCATIONS = "/locations"
# A trailing static segment that names a list (``search``, ``all``) rather than a resource.
LIST_SUFFIXES = ("search", "all")
# Sub-paths that add to (POST) or remove from (DELETE) a list field of the record before them.
LIST_FIELD_ACTIONS = ("tags", "followers")
# ``DELETE /contacts/{id}/campaigns/removeAll``: empty the collection before it.
CLEAR_ALL_SEGMENT = "removeAll"


def shape_of(path):
    """``/contacts/{contactId}/`` -> ``/contacts/{}``."""
    shape = PATH_PARAM.sub(SLOT, path).rstrip("/")
    return shape or "/"


def parent_shape(shape):
    return shape.rsplit("/", 1)[0] or "/"


def last_segment(shape):
    return shape.rsplit("/", 1)[-1]


def alias(shape):
    return COLLECTION_ALIASES.get(shape, shape)


def list_collection_shape(shape):
    """The collection a GET list reads: ``/users/search`` and ``/blogs/posts/all`` read their parent."""
    if last_segment(shape) in LIST_SUFFIXES:
        shape = parent_shape(shape)
    return alias(shape)


def fill(shape, values):
    """The concrete key for ``shape``: each ``{}`` replaced, in order, by the next of ``values``."""
    values = iter(values)
    return "/".join(next(values) if part == SLOT else part for part in shape.split("/")) or "/"


def target_of(shape):
    """For a path that ends in static segments after a parameter (``/contacts/{}/tags``):
    (the shape of the collection holding the target record, the static tail), or (None, tail)."""
    parts = shape.split("/")
    if SLOT not in parts:
        return None, parts[-1]
    last = len(parts) - 1 - parts[::-1].index(SLOT)
    return alias("/".join(parts[:last]) or "/"), "/".join(parts[last + 1:])


@dataclass
class Operation:
    """One served route: a method and path, for one or more catalog records."""

    method: str
    path: str
    records: list
    shape: str = ""
    param_names: list = field(default_factory=list)
    action: str = ""
    answer_shape: object = None  # spec_shapes.AnswerShape: the spec's answer, for generated records

    def __post_init__(self):
        self.shape = shape_of(self.path)
        self.param_names = PATH_PARAM.findall(self.path)

    @property
    def record(self):
        return self.records[0]

    @property
    def response(self):
        return self.record.get("response") or {}

    @property
    def items_path(self):
        return self.response.get("items")

    @property
    def single(self):
        return bool(self.response.get("single"))

    @property
    def id_field(self):
        return self.response.get("id_field") or "id"

    @property
    def pagination(self):
        for record in self.records:
            style = (record.get("response") or {}).get("pagination")
            if style and style != "none":
                return style
        return "none"

    @property
    def versions(self):
        """The accepted Version headers; empty when some record declares none."""
        versions = {r.get("version") for r in self.records}
        return set() if None in versions else versions

    @property
    def trailing_param(self):
        return self.shape.endswith("/" + SLOT)

    @property
    def location_scoped(self):
        """Ends in the location's id, outside ``/locations`` (``PUT /saas/update-saas-subscription/{locationId}``)."""
        return (self.trailing_param and self.param_names[-1] in LOCATION_PARAMS
                and parent_shape(self.shape) != LOCATIONS)

    @property
    def flask_rule(self):
        """The Flask URL rule, with positional variable names (record names need not be identifiers)."""
        counter = iter(range(len(self.param_names)))
        rule = PATH_PARAM.sub(lambda _: f"<p{next(counter)}>", self.path)
        return rule if rule == "/" else rule.rstrip("/")


@dataclass
class RouteTable:
    """The served operations, and the collection shapes whose records are stored."""

    operations: list
    stored_shapes: set

    def is_stored(self, shape):
        return shape in self.stored_shapes


def build_route_table(catalog, special_cases=()):
    """One Operation per distinct (method, shape), in catalog order; those whose
    (method, shape) is in ``special_cases`` get the action ``special``."""
    grouped = {}
    for record in catalog:
        key = (record["method"].upper(), shape_of(record["path"]))
        if key in grouped:
            grouped[key].records.append(record)
        else:
            grouped[key] = Operation(record["method"].upper(), record["path"], [record])
    operations = list(grouped.values())
    stored = classify([op for op in operations if (op.method, op.shape) not in special_cases])
    for op in operations:
        if (op.method, op.shape) in special_cases:
            op.action = "special"
    return RouteTable(operations, stored)


def classify(operations):
    """Set each operation's ``action`` (what the generic handler does); answer the stored shapes.

    Collections named by a GET list, or holding items that a trailing-parameter operation
    addresses, are *stored*: a missing id there is a 404. A POST to ``.../{id}`` that is
    neither is a *membership* (enrol a contact in a campaign): it records the id, and its
    DELETE succeeds whether or not the id was recorded, as GHL's does.
    """
    list_shapes = {list_collection_shape(op.shape) for op in operations
                   if op.method == "GET" and not op.single and op.shape not in FILTERED_VIEWS}
    item_parents = {alias(parent_shape(op.shape)) for op in operations
                    if op.trailing_param and op.method != "POST" and op.shape not in FILTERED_VIEWS
                    and not op.location_scoped
                    and not (op.method == "GET" and not op.single)}
    for op in operations:
        op.action = _action_for(op, list_shapes, item_parents)
    memberships = {alias(parent_shape(op.shape)) for op in operations if op.action == "membership_add"}
    stored = {alias(op.shape) for op in operations if op.action == "create"} | list_shapes | item_parents
    stored |= {source for source, _ in FILTERED_VIEWS.values()}
    return stored - memberships


def _action_for(op, list_shapes, item_parents):
    tail = last_segment(op.shape)
    if op.shape in FILTERED_VIEWS and op.method == "GET":
        return "filtered_view"
    if op.method == "GET":
        if not op.single:
            return "list"
        return "read" if op.trailing_param and not op.location_scoped else "virtual"
    if op.location_scoped and op.method in ("PUT", "PATCH", "DELETE"):
        return "acknowledge"
    if op.method == "POST":
        if tail == "search":
            return "search"
        if op.trailing_param:
            return "create" if op.shape in list_shapes | item_parents else "membership_add"
        if tail in LIST_FIELD_ACTIONS and parent_shape(op.shape).endswith(SLOT):
            return "list_field_add"
        return "create"
    if op.method in ("PUT", "PATCH"):
        return "update" if op.trailing_param else "sub_update"
    if op.method == "DELETE":
        if op.trailing_param:
            return "delete"
        if tail in LIST_FIELD_ACTIONS:
            return "list_field_remove"
        if tail == CLEAR_ALL_SEGMENT:
            return "clear_all"
        return "acknowledge"
    return "virtual"
