"""Run one action or search: validated inputs -> the exact GHL request -> a Zapier-shaped result.

An upload's ``file`` inputs are URLs; their files are fetched first (``fetch_file_inputs``,
with the client's ``ghl.file_fetch.FileFetcher``) and a file that cannot be fetched is an
invalid input, answered 400 before GHL is called.
"""

import time

from catalog.inputs import InvalidInput
from ghl import enrichment
from ghl.errors import GhlError
from ghl.file_fetch import FetchBusy, FileFetchError
from ghl.request_builder import build_request
from ghl.response_items import dig, extract_items


def shape_action_result(record, body):
    """One object: GHL's answer with the record lifted to the top level, so its id can be mapped.

    ``{"contact": {...}, "new": true}`` becomes ``{...contact fields, "new": true}``.
    """
    if body is None or body == "":
        return {"succeeded": True}
    if isinstance(body, list) and record.get("body_as_list") and body and isinstance(body[0], dict):
        body = body[0]
    if not isinstance(body, dict):
        return {"result": body}
    items_path = record["response"].get("items")
    found = dig(body, items_path) if items_path else body
    if not isinstance(found, dict):
        return dict(body)
    result = {k: v for k, v in body.items() if k != items_path.split(".")[0]} if items_path else {}
    result.update(found)
    id_field = record["response"].get("id_field")
    if id_field and id_field != "id" and "id" not in result and result.get(id_field) is not None:
        result["id"] = result[id_field]
    return result


def _normalized(value):
    return str(value).strip().lower() if isinstance(value, (str, int, float)) and not isinstance(value, bool) else None


def best_match_first(record, items, inputs):
    """``items`` with those that match the search exactly moved first, each group in GHL's order.

    ``response.best_match`` ``{"input", "fields"}``: an item matches when one of ``fields``
    (dotted paths allowed) equals the input's value, ignoring case and surrounding spaces.
    GHL's own order (by name, by date) says nothing about how well an item matches."""
    spec = record["response"].get("best_match")
    wanted = _normalized((inputs or {}).get(spec["input"])) if spec else None
    if not wanted:
        return items
    exact = [item for item in items if any(_normalized(dig(item, f)) == wanted for f in spec["fields"])]
    return exact + [item for item in items if not any(item is e for e in exact)]


def shape_search_result(record, body, inputs=None):
    """A list, best match first; [] when nothing matched."""
    items = extract_items(record, body)
    id_field = record["response"].get("id_field")
    shaped = []
    for item in items:
        if not item:
            continue
        item = dict(item)
        if id_field and id_field != "id" and "id" not in item and item.get(id_field) is not None:
            item["id"] = item[id_field]
        shaped.append(item)
    return best_match_first(record, shaped, inputs)


# When every file-fetch slot of the process is taken (ghl.file_fetch.MAX_CONCURRENT_FETCHES).
BUSY_RETRY_SECONDS = 5


def fetch_file_inputs(fetcher, record, inputs):
    """``inputs`` with each ``file`` input's URL (or list of URLs) replaced by the fetched file(s).

    All of one request's files together stay within the fetcher's ``max_bytes``. Raises
    InvalidInput naming every input whose file could not be fetched."""
    fetched, problems = dict(inputs), {}
    room = fetcher.max_bytes
    for spec in record["inputs"]:
        if spec.get("type") != "file" or spec["key"] not in inputs:
            continue
        value = inputs[spec["key"]]
        files = []
        try:
            for url in value if isinstance(value, list) else [value]:
                if room <= 0:
                    raise FileFetchError("the files together are larger than this service uploads in one request")
                files.append(fetcher.fetch(url, max_bytes=room))
                room -= len(files[-1].content)
        except FileFetchError as exc:
            problems[spec["key"]] = str(exc)
            continue
        except FetchBusy as exc:
            raise GhlError(503, "busy", f"{exc}.", retry_after=BUSY_RETRY_SECONDS) from None
        fetched[spec["key"]] = files if isinstance(value, list) else files[0]
    if problems:
        raise InvalidInput(problems)
    return fetched


def run_operation(client, record, inputs, token, app_url=enrichment.DEFAULT_APP_URL):
    """Call GHL for an action or search with validated ``inputs``; raises GhlError on failure.
    A trigger record runs as a search: one read of GHL, its items best match first, nothing
    recorded (the Zapier app presents look-ups such as Get Contact that way).
    Contacts and opportunities come back with ``ghl.enrichment``'s extra keys (``app_url``:
    GHL's web app, ``GHL_APP_URL``, for their links)."""
    searching = record["kind"] in ("search", "trigger")
    started = time.monotonic()
    sent_inputs = fetch_file_inputs(client.file_fetcher, record, inputs)
    request = build_request(record, sent_inputs)
    try:
        response = client.request(request.method, request.path, token, version=request.version,
                                   query=request.query, body=request.body, scopes=request.scopes,
                                   multipart=request.multipart, spent_seconds=time.monotonic() - started)
    except GhlError as error:
        if searching and error.status == 404:
            return []
        raise
    context = enrichment.Context.for_request(client, token, record, inputs, app_url)
    if searching:
        return enrichment.enrich_items(context, record, shape_search_result(record, response.body, inputs))
    return enrichment.enrich_items(context, record, [shape_action_result(record, response.body)])[0]
