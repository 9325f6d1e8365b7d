"""``poll_once``: the only polling code. The web endpoint and the REST-hook worker both call it.

One poll: fetch GHL (one page, or more while every item on a page is new: catch-up; every page
up to the cap where the record says GHL's order is unknown), turn
items into candidates with stable identities, and let the dedupe store decide the answer.
Nothing is recorded until every GHL request has succeeded, so a failed poll records nothing
and the next poll delivers the same items.

Change triggers (a record with ``response.watch``, see ``triggers.changes``) read pages the
same way but hand the store a ``ChangeBatch``: what the records hold, compared with the
scope's baselines inside the store's write transaction. Where pages come newest-updated
first, a poll reads on while a page still holds anything changed (one page on the scope's
first poll). Where GHL's order says nothing about changes (undocumented, or by creation),
or a page turns out not to be in the order the record declares (logged), it scans: up to
the catch-up cap of pages per poll, each poll going on where the last stopped and starting
over after the last page, so every record is compared in turn and new ones are seen even
at the end of an oldest-first list.

What a poll, a REST-hook poll or a sample answers carries ``ghl.enrichment``'s extra keys
(custom fields by name, pipeline and stage names, a link to the record in GHL's web app),
added once identities and watched values were taken from GHL's data, so they never change
what is new or what changed.
"""

import copy
import hashlib
import json
import logging
import time
from dataclasses import dataclass

from catalog.pagination import pagination_style
from ghl import enrichment
from ghl.request_builder import build_request
from ghl.response_items import dig, extract_items
from triggers import changes, identity
from triggers.identity import candidate_for, timestamp_of

log = logging.getLogger(__name__)

LIVE = "live"
SAMPLE = "sample"
# ``response.order`` of a list whose order nobody documents (catalog/operations/README.md).
UNKNOWN_ORDER = "unknown"


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


def _takes_body(method):
    return method in ("POST", "PUT", "PATCH")


def iter_pages(client, record, inputs, token, start=None, fixed=None):
    """GHL's pages for ``record``, following its pagination style: yields ``(items, position)``
    per page, ``position`` being the paging parameters of the next page, or None when this
    page was the last (a short or empty page, a missing or repeated cursor).

    Every page request carries all the original inputs (GHL answers 403 when page two drops
    ``locationId``), plus ``fixed`` parameters (a watch's sort order: in the body for methods
    that take one, else in the query), starting at ``start`` (a position) when given.
    """
    request = build_request(record, inputs)
    if fixed:
        if _takes_body(request.method):
            request.body = {**(request.body or {}), **copy.deepcopy(fixed)}
        else:
            request.query.update(fixed)
    style = pagination_style(record["response"].get("pagination", "none"))
    kind = style["kind"]
    size = None
    if kind != "none":
        place = _place(request, style)
        size = int(place.get(style["size_param"]) or style["size"])
        place[style["size_param"]] = size
        if kind == "page":
            place.setdefault(style["param"], style["first"])
        if start:
            place.update(start)
    cursors = set()
    while True:
        response = client.request(request.method, request.path, token, version=request.version,
                                  query=request.query, body=request.body, scopes=request.scopes)
        page = extract_items(record, response.body)
        position = None
        if kind != "none" and page and len(page) >= size:
            position = _next_position(style, _place(request, style), response.body, page, cursors)
        yield page, position
        if position is None:
            return
        request = copy.deepcopy(request)
        _place(request, style).update(position)


def _next_position(style, place, body, page, cursors):
    """The paging parameters of the page after ``page``; None when there is no sound one."""
    kind = style["kind"]
    if kind == "cursor":
        cursor = {param: dig(body, path) for param, path in style["cursor"].items()}
        key = tuple(sorted(cursor.items(), key=lambda kv: kv[0]))
        if any(v in (None, "") for v in cursor.values()) or key in cursors:
            return None
        cursors.add(key)
        return cursor
    if kind == "offset":
        return {style["param"]: int(place.get(style["param"]) or 0) + len(page)}
    if kind == "page":
        return {style["param"]: int(place[style["param"]]) + 1}
    if kind == "last_item":
        last = page[-1].get(style["item_field"])
        if last is None or last in cursors:
            return None
        cursors.add(last)
        return {style["param"]: last}
    return None


def fetch_pages(client, record, inputs, token, max_pages, wants_next_page, convert=None):
    """Items from up to ``max_pages`` pages, following the record's pagination style, each
    made ``convert(item)`` when given.

    Stops on a short page, a repeated cursor, an empty page, or when
    ``wants_next_page(page)`` (the page's converted items) says not to read on.
    """
    items = []
    for number, (page, position) in enumerate(iter_pages(client, record, inputs, token)):
        if convert is not None:
            page = [convert(item) for item in page]
        items.extend(page)
        if position is None or number + 1 >= max_pages or not wants_next_page(page):
            break
    return items


def _newest_first(candidates):
    if all(c.sort_ts is not None for c in candidates):
        return sorted(candidates, key=lambda c: c.sort_ts, reverse=True)
    return candidates


def _in_order(page, field, newer_than):
    """(whether ``page`` runs newest first by ``field``, after an item at ``newer_than``; the
    last time seen). Items without a readable time are not judged."""
    last = newer_than
    for item in page:
        at = timestamp_of(dig(item, field))
        if at is None:
            continue
        if last is not None and at > last:
            return False, at
        last = at
    return True, last


def fetch_changes(client, store, record, watch, inputs, token, scope, limits):
    """A ChangeBatch of the records a live poll of a change trigger reads (see the module doc)."""
    state = store.watch_scope(scope)
    scan_from = state.scan_from if state is not None else None
    ghl_inputs = changes.request_inputs(record, inputs)
    if not watch.ordered_by:
        return changes.ChangeBatch(watch, *_scan(client, record, watch, ghl_inputs, token, scan_from,
                                                 limits.catch_up_pages))
    items, last = [], None
    pages = iter_pages(client, record, ghl_inputs, token, fixed=watch.request)
    for number, (page, position) in enumerate(pages, start=1):
        items.extend(page)
        in_order, last = _in_order(page, watch.ordered_by, last)
        if not in_order:
            # Never assume newest first: scan this poll, going on where the last scan stopped.
            log.warning("trigger %s: GHL's answer is not newest first by %s; scanning instead",
                        record["key"], watch.ordered_by)
            if position is None:
                return changes.ChangeBatch(watch, items, scan_from=None)  # read to the end already
            more, position = _scan(client, record, watch, ghl_inputs, token, scan_from or position,
                                   limits.catch_up_pages - number)
            return changes.ChangeBatch(watch, items + more, scan_from=position)
        if position is None or number >= limits.catch_up_pages or state is None:
            break  # the end, the cap, or the scope's first poll (one page of baselines)
        known = store.baselines(scope, [changes.ghl_id_of(watch, item) for item in page])
        if all(changes.settled(watch, known.get(changes.ghl_id_of(watch, item)), item) for item in page):
            break
    return changes.ChangeBatch(watch, items)


def _scan(client, record, watch, inputs, token, start, budget):
    """(items, where the next poll starts): up to ``budget`` pages from ``start`` (where the last
    poll stopped; None: the first page), going round to the first page after the last one and
    never reading a page twice."""
    items, position, pages, wrapped = [], start, 0, False
    while budget > 0:
        for page, position in iter_pages(client, record, inputs, token, start=position, fixed=watch.request):
            items.extend(page)
            pages += 1
            if position is None or pages >= budget or (wrapped and position == start):
                break
        if position is None and start is not None and not wrapped and pages < budget:
            wrapped = True  # the end of the list: go round to its first page
            continue
        break
    return items, position


def _enriched(context, record, fetched):
    """``fetched`` (a ChangeBatch whose watched values and versions were taken when it was made)
    with its items enriched: change detection never sees the extra keys."""
    if context is None:
        return fetched
    ghl_ids = list(fetched.records)
    fetched.records = dict(zip(ghl_ids, enrichment.enrich_items(context, record, list(fetched.records.values()))))
    return fetched


def _enrich_candidates(context, record, candidates):
    """``candidates`` whose items get ``ghl.enrichment``'s extra keys when first read, computed
    for all of them at once, as ``enrich_items`` of all their items. The store reads only the
    items it keeps (never those it knows already), so a steady-state poll enriches nothing.
    Every GHL lookup the enrichment may need is made here, before the store's transaction;
    reading an item only computes."""
    if context is None or not candidates or not enrichment.enriches(record):
        return candidates
    prepared = enrichment.Prepared(context, record, [c.item for c in candidates])
    identity.later(candidates, prepared.enrich)
    return candidates


def fetch_candidates(client, store, record, inputs, token, scope, limits, enrich=None):
    """Candidates from GHL for a live poll of ``scope``, newest first. Reads one page on a
    scope's first poll; later polls follow further pages while every item on a page is new.
    For a change trigger: a ChangeBatch (``fetch_changes``). ``enrich``: an
    ``enrichment.Context`` for the items' extra keys (None: none; ``_enrich_candidates``).

    The store is asked what it knows of a page only when the page is full and under the cap
    (whether to read on), and whether the scope was ever polled only when such a page held
    nothing known (a scope's first poll reads one page, a later one catches up)."""
    watch = changes.watch_of(record, inputs)
    if watch is not None:
        return _enriched(enrich, record, fetch_changes(client, store, record, watch, inputs, token, scope, limits))

    # Nobody knows where GHL puts a new item of a list in unknown order: every poll reads every
    # page up to the cap, the first one too, so that what it remembers is the whole list.
    unknown_order = record["response"].get("order") == UNKNOWN_ORDER
    polled_before = []  # asked once, when first needed

    def wants_next_page(page):
        if unknown_order:
            return True
        if store.known(scope, [c.identity for c in page]):
            return False  # caught up
        if not polled_before:
            polled_before.append(store.has_scope(scope))
        return polled_before[0]  # a scope's first poll reads one page

    candidates = fetch_pages(client, record, inputs, token, limits.catch_up_pages, wants_next_page,
                             convert=lambda item: candidate_for(record, item))
    return _enrich_candidates(enrich, record, _newest_first(candidates))


def sample_items(client, record, inputs, token, limits, app_url=enrichment.DEFAULT_APP_URL):
    """GHL's newest items, shaped as live polls shape them; nothing is recorded. A change
    trigger answers its items as if each record on GHL's first page had just been created."""
    context = enrichment.Context.for_request(client, token, record, inputs, app_url)
    watch = changes.watch_of(record, inputs)
    if watch is not None:
        page, _ = next(iter_pages(client, record, changes.request_inputs(record, inputs), token,
                                  fixed=watch.request))
        items = changes.sample_items(watch, page)[:limits.sample_items]
    else:
        found = fetch_pages(client, record, inputs, token, 1, lambda page: False)
        candidates = _newest_first([candidate_for(record, item) for item in found])
        unique = list({c.identity: c for c in candidates}.values())
        items = [c.item for c in unique[:limits.sample_items]]
    return enrichment.enrich_items(context, record, items)


def poll_once(client, store, record, inputs, token, scope, limits, mode=LIVE, now=None,
              app_url=enrichment.DEFAULT_APP_URL):
    """The items to answer for one poll of trigger ``record``: a list of plain objects, newest first.
    ``app_url``: GHL's web app (``GHL_APP_URL``), for the items' links.

    Nothing stored for ``scope`` is answered or changed before GHL has answered 2xx to ``token``
    for ``inputs``: ``ghl.credentials`` relies on it to name OAuth connections by unverified claims."""
    if mode == SAMPLE:
        return sample_items(client, record, inputs, token, limits, app_url=app_url)
    now = time.time() if now is None else now
    context = enrichment.Context.for_request(client, token, record, inputs, app_url)
    candidates = fetch_candidates(client, store, record, inputs, token, scope, limits, enrich=context)
    answer = store.answer(scope, candidates, now, limits.new_items, limits.redelivery_seconds,
                          limits.redelivery_items)
    store.maybe_prune(now, limits.retention_seconds)
    return answer


def poll_into_backlog(client, store, record, inputs, token, scope, limits, seed=False, now=None,
                      app_url=enrichment.DEFAULT_APP_URL):
    """Poll for a REST hook: new items join the scope's backlog (the outbox) instead of being
    answered, enriched as polls enrich them. ``seed=True`` records what exists now as already
    delivered (never delivered, so not enriched). Returns how many were new."""
    now = time.time() if now is None else now
    context = None if seed else enrichment.Context.for_request(client, token, record, inputs, app_url)
    candidates = fetch_candidates(client, store, record, inputs, token, scope, limits, enrich=context)
    return store.record(scope, candidates, now, answered=seed)
