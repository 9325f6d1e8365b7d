"""Pagination styles of the GHL API, defined once and referenced by name from records.

Each style is data: where the next page's parameters come from and where they go.
The polling code (``triggers.poll``) interprets these; nothing here does I/O.

Kinds:
- ``none``: the endpoint returns everything (or one object) in one answer.
- ``cursor``: the next page is asked for with values copied from the previous answer
  (``cursor`` maps request parameter -> dotted path in the response). Every value is
  sent together: GHL's contact list repeats page one forever when only one of its two
  cursors is sent.
- ``offset``: ``param`` counts items skipped; it grows by the page size.
- ``page``: ``param`` counts pages from ``first``.
- ``last_item``: the next page is asked for with a value taken from the last item.

``send_in`` says whether paging parameters go in the query string or the JSON body,
``size_param`` names the page-size parameter and ``size`` the size we ask for.
"""

PAGINATION_STYLES = {
    "none": {"kind": "none"},
    "contacts_cursor": {
        "kind": "cursor",
        "send_in": "query",
        "size_param": "limit",
        "size": 100,
        "cursor": {"startAfter": "meta.startAfter", "startAfterId": "meta.startAfterId"},
    },
    "opportunities_cursor": {
        "kind": "cursor",
        "send_in": "query",
        "size_param": "limit",
        "size": 100,
        "cursor": {"startAfter": "meta.startAfter", "startAfterId": "meta.startAfterId"},
    },
    "skip_limit": {"kind": "offset", "send_in": "query", "param": "skip", "size_param": "limit", "size": 100},
    "offset_limit": {"kind": "offset", "send_in": "query", "param": "offset", "size_param": "limit", "size": 100},
    "page_limit": {"kind": "page", "send_in": "query", "param": "page", "first": 1, "size_param": "limit", "size": 100},
    "search_body_page": {
        "kind": "page",
        "send_in": "body",
        "param": "page",
        "first": 1,
        "size_param": "pageLimit",
        "size": 100,
    },
    # GET /conversations/messages/export: the next page is asked for with the answer's opaque
    # ``nextCursor`` (null on the last page); ``limit`` 10 to 500, default 100.
    "messages_export_cursor": {
        "kind": "cursor",
        "send_in": "query",
        "size_param": "limit",
        "size": 100,
        "cursor": {"cursor": "nextCursor"},
    },
    # POST /locations/{locationId}/tasks/search: ``skip``/``limit`` in the JSON body (limit default 25).
    "search_body_skip_limit": {"kind": "offset", "send_in": "body", "param": "skip", "size_param": "limit",
                               "size": 100},
    "last_message_id": {
        "kind": "last_item",
        "send_in": "query",
        "param": "lastMessageId",
        "item_field": "id",
        "size_param": "limit",
        "size": 100,
    },
}


def pagination_style(name):
    """The style called ``name``; KeyError when no such style is defined."""
    return PAGINATION_STYLES[name]
