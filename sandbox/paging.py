"""Page a list of records the ways GHL does: offset/page/limit, keyset cursors, last item id."""

from dataclasses import dataclass
from urllib.parse import urlencode

from sandbox.store import epoch_ms

CURSOR_PARAMS = ("startAfter", "startAfterId")


class PagingError(ValueError):
    """A paging parameter GHL would reject with 422; ``messages`` are its class-validator lines."""

    def __init__(self, messages):
        super().__init__("; ".join(messages))
        self.messages = messages


@dataclass
class Page:
    items: list
    total: int
    meta: dict


def _int_param(params, name, default=None, minimum=0, maximum=None):
    raw = params.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise PagingError([f"{name} must be a number conforming to the specified constraints"])
    if value < minimum:
        raise PagingError([f"{name} must not be less than {minimum}"])
    if maximum is not None and value > maximum:
        raise PagingError([f"{name} must not be greater than {maximum}"])
    return value


def offset_page(items, params, size_param="limit"):
    """Slice by ``skip``/``offset`` or ``page`` (from 1) and ``limit``; everything when no limit."""
    limit = _int_param(params, size_param, minimum=1)
    start = _int_param(params, "skip") or _int_param(params, "offset") or 0
    page = _int_param(params, "page", minimum=1)
    if page and limit and not start:
        start = (page - 1) * limit
    chosen = items[start:start + limit] if limit else items[start:]
    more = start + len(chosen) < len(items)
    return Page(chosen, len(items), {"total": len(items), "hasMore": more})


def sort_key(record, field, id_field="id"):
    """The keyset of a record: (epoch ms of ``field``, id)."""
    return (epoch_ms(record.get(field)) or 0, str(record.get(id_field, "")))


def cursor_page(items, params, field, descending, default_limit, max_limit, url, id_field="id"):
    """GHL's keyset paging (``GET /contacts/``, ``GET /opportunities/search``).

    The next page starts after (``startAfter``, ``startAfterId``), the sort value in epoch ms
    and the id of the last item seen. Both are needed: with only one of them GHL answers
    the first page again, which is what made other integrations loop, so this does too.
    """
    limit = _int_param(params, "limit", default_limit, minimum=1, maximum=max_limit)
    ordered = sorted(items, key=lambda r: sort_key(r, field, id_field), reverse=descending)
    start = 0
    after, after_id = params.get("startAfter"), params.get("startAfterId")
    if after not in (None, "") and after_id not in (None, ""):
        cursor = (epoch_ms(after) or 0, str(after_id))
        beyond = (lambda key: key < cursor) if descending else (lambda key: key > cursor)
        start = next((n for n, r in enumerate(ordered) if beyond(sort_key(r, field, id_field))), len(ordered))
    else:
        page_number = _int_param(params, "page", minimum=1)
        if page_number:
            start = (page_number - 1) * limit
    chosen = ordered[start:start + limit]
    more = start + len(chosen) < len(ordered)
    current = start // limit + 1
    meta = {
        "total": len(ordered),
        "currentPage": current,
        "nextPage": current + 1 if more else None,
        "prevPage": current - 1 if current > 1 else None,
        "startAfter": None,
        "startAfterId": None,
        "nextPageUrl": None,
    }
    if chosen:
        meta["startAfter"], meta["startAfterId"] = sort_key(chosen[-1], field, id_field)
    if more and chosen:
        query = {k: v for k, v in params.items() if k not in CURSOR_PARAMS + ("page",)}
        query.update({"startAfter": meta["startAfter"], "startAfterId": meta["startAfterId"],
                      "page": current + 1})
        meta["nextPageUrl"] = f"{url}?{urlencode(query)}"
    return Page(chosen, len(ordered), meta)


def last_item_page(items, params, id_field="id", param="lastMessageId"):
    """``GET /conversations/{id}/messages``: the page after the item whose id is ``lastMessageId``."""
    limit = _int_param(params, "limit", 20, minimum=1)
    start = 0
    last = params.get(param)
    if last:
        ids = [str(r.get(id_field)) for r in items]
        start = ids.index(last) + 1 if last in ids else len(items)
    chosen = items[start:start + limit]
    more = start + len(chosen) < len(items)
    last_id = chosen[-1].get(id_field) if chosen else None
    return Page(chosen, len(items), {param: last_id, "nextPage": more})
