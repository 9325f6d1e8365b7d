"""``poll_once``: the only polling code. The web endpoint and the REST-hook worker both call it.

One poll: fetch GHL (one page, or more while every item on a page is new: catch-up), turn
items into candidates with stable identities, and let the dedupe store decide the answer.
Nothing is recorded until every GHL request has succeeded, so a failed poll records nothing
and the next poll delivers the same items.
"""

import copy
import hashlib
import json
import time
from dataclasses import dataclass

from catalog.pagination import pagination_style
from ghl.request_builder import build_request
from ghl.response_items import dig, extract_items
from triggers.identity import candidate_for

LIVE = "live"
SAMPLE = "sample"


@dataclass(frozen=True)
class PollLimits:
    new_items: int = 100
    redelivery_seconds: int = 3600
    redelivery_items: int = 100
    catch_up_pages: int = 10
    sample_items: int = 100
    retention_seconds: int = 30 * 86400

    @classmethod
    def from_settings(cls, settings):
        return cls(
            new_items=settings.new_items_per_poll,
            redelivery_seconds=settings.redelivery_minutes * 60,
            redelivery_items=settings.redelivery_limit,
            catch_up_pages=settings.catch_up_pages,
            sample_items=settings.sample_items,
            retention_seconds=settings.retention_days * 86400,
        )


def scope_for(credential, key, inputs, subscriber=""):
    """The dedupe scope of polls of trigger ``key`` with ``inputs`` by ``credential``
    (``ghl.credentials.credential_id``); ``subscriber`` (the Zap, from ``X-Subscriber-Id``)
    separates Zaps within one credential. Two credentials never share a scope, whatever
    ``subscriber`` they send."""
    canonical = json.dumps(["v2", credential, subscriber, key, inputs], sort_keys=True, separators=(",", ":"),
                           default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _place(request, style):
    if style.get("send_in") == "body":
        if request.body is None:
            request.body = {}
        return request.body
    return request.query


def fetch_pages(client, record, inputs, token, max_pages, wants_next_page):
    """Items from up to ``max_pages`` pages, following the record's pagination style.

    Every page request carries all the original inputs (GHL answers 403 when page two drops
    ``locationId``). Stops on a short page, a repeated cursor, an empty page, or when
    ``wants_next_page(page_items)`` says the page held something already seen.
    """
    request = build_request(record, inputs)
    style = pagination_style(record["response"].get("pagination", "none"))
    kind = style["kind"]
    size = None
    if kind != "none":
        place = _place(request, style)
        size = int(place.get(style["size_param"]) or style["size"])
        place[style["size_param"]] = size
        if kind == "page":
            place.setdefault(style["param"], style["first"])
    items = []
    cursors = set()
    for page_number in range(max_pages):
        response = client.request(request.method, request.path, token, version=request.version,
                                  query=request.query, body=request.body, scopes=request.scopes)
        page = extract_items(record, response.body)
        items.extend(page)
        if kind == "none" or page_number + 1 >= max_pages or not page or len(page) < size:
            break
        if not wants_next_page(page):
            break
        request = copy.deepcopy(request)
        place = _place(request, style)
        if kind == "cursor":
            cursor = {param: dig(response.body, path) for param, path in style["cursor"].items()}
            key = tuple(sorted(cursor.items(), key=lambda kv: kv[0]))
            if any(v in (None, "") for v in cursor.values()) or key in cursors:
                break
            cursors.add(key)
            place.update(cursor)
        elif kind == "offset":
            place[style["param"]] = int(place.get(style["param"]) or 0) + len(page)
        elif kind == "page":
            place[style["param"]] = int(place[style["param"]]) + 1
        elif kind == "last_item":
            last = page[-1].get(style["item_field"])
            if last is None or last in cursors:
                break
            cursors.add(last)
            place[style["param"]] = last
    return items


def _newest_first(candidates):
    if all(c.sort_ts is not None for c in candidates):
        return sorted(candidates, key=lambda c: c.sort_ts, reverse=True)
    return candidates


def fetch_candidates(client, store, record, inputs, token, scope, limits):
    """Candidates from GHL for a live poll of ``scope``, newest first. Reads one page on a
    scope's first poll; later polls follow further pages while every item on a page is new."""

    def wants_next_page(page):
        identities = [candidate_for(record, item).identity for item in page]
        return not store.known(scope, identities)

    max_pages = limits.catch_up_pages if store.has_scope(scope) else 1
    items = fetch_pages(client, record, inputs, token, max_pages, wants_next_page)
    return _newest_first([candidate_for(record, item) for item in items])


def sample_items(client, record, inputs, token, limits):
    """GHL's newest items, shaped as live polls shape them; nothing is recorded."""
    items = fetch_pages(client, record, inputs, token, 1, lambda page: False)
    candidates = _newest_first([candidate_for(record, item) for item in items])
    unique = list({c.identity: c for c in candidates}.values())
    return [c.item for c in unique[:limits.sample_items]]


def poll_once(client, store, record, inputs, token, scope, limits, mode=LIVE, now=None):
    """The items to answer for one poll of trigger ``record``: a list of plain objects, newest first.

    Nothing stored for ``scope`` is answered or changed before GHL has answered 2xx to ``token``
    for ``inputs``: ``ghl.credentials`` relies on it to name OAuth connections by unverified claims."""
    if mode == SAMPLE:
        return sample_items(client, record, inputs, token, limits)
    now = time.time() if now is None else now
    candidates = fetch_candidates(client, store, record, inputs, token, scope, limits)
    answer = store.answer(scope, candidates, now, limits.new_items, limits.redelivery_seconds,
                          limits.redelivery_items)
    store.maybe_prune(now, limits.retention_seconds)
    return answer


def poll_into_backlog(client, store, record, inputs, token, scope, limits, seed=False, now=None):
    """Poll for a REST hook: new items join the scope's backlog (the outbox) instead of being
    answered. ``seed=True`` records what exists now as already delivered. Returns how many were new."""
    now = time.time() if now is None else now
    candidates = fetch_candidates(client, store, record, inputs, token, scope, limits)
    return store.record(scope, candidates, now, answered=seed)
