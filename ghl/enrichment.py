"""Extra keys on contact and opportunity items, and zoned times, so a Zap builder can read items
without GHL's docs.

On contacts and opportunities ``enrich_items`` adds, never changing anything GHL sent (a key GHL
already sent is left alone):

- ``custom_fields``: ``{<fieldKey without its "contact."/"opportunity." prefix>: value}`` for the
  item's ``customFields`` (``[{id, value}]`` on contacts, ``[{id, fieldValue}]`` on
  opportunities), named from the location's definitions (``ghl.custom_fields``). Zapier shows
  ``custom_fields__favorite_color``; ``/zapier/fields/<key>?for=output`` labels those keys.
- ``pipelineName`` and ``stageName`` on opportunities, from ``GET /opportunities/pipelines``.
- ``url``: the record in GHL's web app (``GHL_APP_URL``, white-labelled by agencies):
  ``/v2/location/<location>/contacts/detail/<id>`` for contacts and
  ``/v2/location/<location>/opportunities/list/<id>?tab=OpportunityDetails`` for opportunities.

and, for any record that declares ``response.local_times`` (fields GHL writes as the location's
wall-clock time without a zone, ``2021-07-16 11:00:00``), rewrites those fields to ISO 8601 with
the location's UTC offset at that moment (``2021-07-16T11:00:00-05:00``): a Zap cannot tell what
``11:00:00`` means, and Zapier's checks (D023) want a zone. The zone is the location's
``timezone`` (``GET /locations/{locationId}``). Values that carry a zone or do not parse stay.

Definitions, pipelines and time zones are cached in this process for about a minute per
(credential, location[, model]), and so is a failure to load them, so a poll or an action costs
at most one extra GHL call a minute per kind. A failure never fails the caller: the items go out
without the keys it would have given, and with GHL's zone-less times.

Callers enrich what they deliver *after* identities, versions and watched values were taken
from GHL's data (``triggers.poll``), so enrichment can never change dedupe or change detection.
"""

import logging
import re
from dataclasses import dataclass, field, replace
from datetime import datetime
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ghl.custom_fields import CACHE as CUSTOM_FIELD_DEFINITIONS
from ghl.custom_fields import CACHE_ENTRIES, CACHE_SECONDS, DefinitionCache, load_definitions
from ghl.response_items import dig

log = logging.getLogger(__name__)

DEFAULT_APP_URL = "https://app.gohighlevel.com"
CONTACT = "contact"
OPPORTUNITY = "opportunity"

# The web app's page for one record; {app}, {location} and {id} are filled in (quoted).
LINKS = {
    CONTACT: "{app}/v2/location/{location}/contacts/detail/{id}",
    OPPORTUNITY: "{app}/v2/location/{location}/opportunities/list/{id}?tab=OpportunityDetails",
}
# The catalog's ``list_pipelines`` request (a test keeps these equal to the record).
PIPELINES_PATH = "/opportunities/pipelines"
PIPELINES_VERSION = "2021-07-28"
PIPELINES_SCOPES = ("opportunities.readonly",)
MAX_PIPELINES = 500
MAX_STAGES = 200
# Items of one GHL answer belong to one location; more than this many in one call get no lookups.
MAX_LOCATIONS_PER_CALL = 5
VALUE_KEYS = ("value", "fieldValue", "field_value")

# The catalog's ``get_location`` request, which answers ``location.timezone`` (an IANA name).
LOCATION_PATH = "/locations/{}"
LOCATION_VERSION = "2021-07-28"
LOCATION_SCOPES = ("locations.readonly",)
# The zone static samples' wall-clock times are read in (a sample has no location to ask).
SAMPLE_TIMEZONE = "America/Chicago"
# GHL's zone-less wall-clock time: "2021-07-16 11:00:00" (or with a "T", or fractions of a second).
# What an IANA zone name looks like ("America/Argentina/Buenos_Aires", "Etc/GMT+5"); nothing else
# reaches the zone database's file lookup.
TIMEZONE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+){0,2}")
WALL_CLOCK = re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d{1,6})?")

PIPELINES = DefinitionCache(CACHE_SECONDS, CACHE_ENTRIES)
TIMEZONES = DefinitionCache(CACHE_SECONDS, CACHE_ENTRIES)
FAILURES = DefinitionCache(CACHE_SECONDS, CACHE_ENTRIES)


class UnknownTimeZone(Exception):
    """The location names no time zone this process knows (none, or not an IANA name)."""

    code = "unknown_time_zone"


@dataclass(frozen=True)
class Context:
    """Who asks (``client``, ``token``), the location the request named (items' own
    ``locationId`` wins), and the web app's base URL; ``lookups``: those already made for the
    items being enriched (``Prepared``), else None."""

    client: object
    token: str
    location_id: str = None
    app_url: str = DEFAULT_APP_URL
    lookups: object = field(default=None, compare=False, repr=False)

    @classmethod
    def for_request(cls, client, token, record, inputs, app_url=DEFAULT_APP_URL):
        location = next((inputs.get(f["key"]) for f in record.get("inputs") or []
                         if f.get("location") and isinstance(inputs.get(f["key"]), str)), None)
        return cls(client, token, location or None, (app_url or DEFAULT_APP_URL).rstrip("/"))


def record_kind(record):
    """CONTACT or OPPORTUNITY when ``record``'s items are contacts or opportunities, else None: the
    catalog says so in ``custom_fields.model`` (every contact and opportunity trigger, search and
    action: create, update, upsert, get, find...)."""
    model = (record.get("custom_fields") or {}).get("model")
    return model if model in LINKS else None


def local_time_fields(record):
    """The item fields GHL writes as the location's zone-less wall-clock time (``response.local_times``)."""
    return tuple((record.get("response") or {}).get("local_times") or ())


def zoned_time(value, zone):
    """``value`` ("2021-07-16 11:00:00") as ISO 8601 with ``zone``'s offset at that moment
    ("2021-07-16T11:00:00-05:00"); anything else (a zone already, not a time) as it is. A time the
    clocks skip or repeat when DST starts or ends takes the offset in force before the change."""
    if not isinstance(value, str) or not WALL_CLOCK.fullmatch(value):
        return value
    try:
        moment = datetime.fromisoformat(value.replace(" ", "T"))
    except ValueError:
        return value
    spec = "milliseconds" if moment.microsecond else "seconds"
    return moment.replace(tzinfo=zone).isoformat(timespec=spec)


def with_zoned_times(item, fields, zone):
    """``item`` with its ``fields`` read as wall-clock times in ``zone`` (``zoned_time``)."""
    changed = {f: zoned_time(item[f], zone) for f in fields if f in item}
    changed = {f: v for f, v in changed.items() if v != item[f]}
    return {**item, **changed} if changed else item


def custom_field_output_key(definition):
    """The key of a custom field in ``custom_fields``: its fieldKey without the model prefix
    (``contact.favorite_color`` -> ``favorite_color``), its id when it has no fieldKey."""
    key = definition.get("fieldKey") or ""
    prefix = f"{definition.get('model')}."
    if key.startswith(prefix):
        key = key[len(prefix):]
    return key or definition["id"]


def enriches(record):
    """Whether ``enrich_items`` may change ``record``'s items (a contact or opportunity record, or
    one with zone-less local times); when not, it returns them as they are."""
    return record_kind(record) is not None or bool(local_time_fields(record))


def enrich_items(context, record, items):
    """``items`` (plain objects) with the extra keys and zoned times of the module doc; others are
    returned as they are."""
    kind = record_kind(record)
    local_times = local_time_fields(record)
    if (kind is None and not local_times) or context is None or not items:
        return items
    lookups = context.lookups or _Lookups(context, kind)
    return [_enriched(item, kind, local_times, record, context, lookups) if isinstance(item, dict) else item
            for item in items]


class Prepared:
    """``enrich_items`` in two steps, for items that may never go out (a poll's items the store
    already knows): making it does every GHL lookup ``enrich_items(context, record, items)``
    would, in the same order; ``enrich(items)`` (those same items) then gives what that call
    gives, computing only, never calling GHL."""

    def __init__(self, context, record, items):
        self.record = record
        self.context = context
        kind, local_times = record_kind(record), local_time_fields(record)
        if (kind is None and not local_times) or context is None or not items:
            return
        lookups = _Lookups(context, kind)
        for item in items:
            if isinstance(item, dict):
                _load(item, kind, local_times, context, lookups)
        self.context = replace(context, lookups=lookups)

    def enrich(self, items):
        return enrich_items(self.context, self.record, items)


def enrich_sample(record, sample):
    """A record's static sample with the keys live items get, with obviously fake values, and its
    wall-clock times read in ``SAMPLE_TIMEZONE``. Pure."""
    if not isinstance(sample, dict):
        return sample
    local_times = local_time_fields(record)
    if local_times:
        sample = with_zoned_times(sample, local_times, ZoneInfo(SAMPLE_TIMEZONE))
    kind = record_kind(record)
    if kind is None:
        return sample
    extra = {"custom_fields": {"sample_field": "Sample value"}}
    if kind == OPPORTUNITY:
        extra.update(pipelineName="Sample Pipeline", stageName="Sample Stage")
    location = sample.get("locationId") if isinstance(sample.get("locationId"), str) else "sample-location-1"
    record_id = _ghl_id(sample, record) or f"sample-{kind}-1"
    extra["url"] = record_link(DEFAULT_APP_URL, kind, location, record_id)
    return {**sample, **{k: v for k, v in extra.items() if k not in sample}}


def record_link(app_url, kind, location_id, record_id):
    return LINKS[kind].format(app=app_url, location=quote(str(location_id), safe=""),
                              id=quote(str(record_id), safe=""))


def _ghl_id(item, record):
    """The record's GHL id: a trigger item's ``ghl_id`` (its ``id`` is the dedupe identity), else its id field."""
    if "ghl_id" in item:
        value = item["ghl_id"]
    else:
        value = item.get((record.get("response") or {}).get("id_field") or "id")
    return value if isinstance(value, (str, int)) and not isinstance(value, bool) and value != "" else None


def _location(item, context):
    location = item.get("locationId") if isinstance(item.get("locationId"), str) else None
    return location or context.location_id


def _zoned(item, location, local_times, lookups):
    if local_times and location and any(isinstance(item.get(f), str) and WALL_CLOCK.fullmatch(item[f])
                                        for f in local_times):
        zone = lookups.zone(location)
        if zone is not None:
            item = with_zoned_times(item, local_times, zone)
    return item


def _load(item, kind, local_times, context, lookups):
    """The lookups ``_enriched(item, ...)`` asks ``lookups`` for, asked in its order."""
    location = _location(item, context)
    item = _zoned(item, location, local_times, lookups)
    if kind is None or not location:
        return
    entries = item.get("customFields")
    if isinstance(entries, list) and entries:
        lookups.definitions(location)
    if kind == OPPORTUNITY and isinstance(item.get("pipelineId"), str):
        lookups.pipelines(location)


def _enriched(item, kind, local_times, record, context, lookups):
    location = _location(item, context)
    item = _zoned(item, location, local_times, lookups)
    if kind is None:
        return item
    extra = {}
    record_id = _ghl_id(item, record)
    if location and record_id is not None:
        extra["url"] = record_link(context.app_url, kind, location, record_id)
    entries = item.get("customFields")
    if location and isinstance(entries, list) and entries:
        definitions = lookups.definitions(location)
        if definitions is not None:
            named = _named_values(entries, definitions)
            if named:
                extra["custom_fields"] = named
    if kind == OPPORTUNITY and location and isinstance(item.get("pipelineId"), str):
        pipelines = lookups.pipelines(location)
        pipeline = pipelines.get(item.get("pipelineId")) if pipelines is not None else None
        if pipeline is not None:
            extra["pipelineName"] = pipeline["name"]
            stage_id = item.get("pipelineStageId")
            stage = pipeline["stages"].get(stage_id) if isinstance(stage_id, str) else None
            if stage is not None:
                extra["stageName"] = stage
    if not extra:
        return item
    return {**item, **{k: v for k, v in extra.items() if k not in item}}


def _entry_value(entry):
    for key in VALUE_KEYS:
        if key in entry:
            return entry[key]
    # Some answers split the value by type (fieldValueString, fieldValueArray...).
    return next((v for k, v in entry.items() if k.startswith("fieldValue")), None)


def _file_urls(value):
    """A file field's value as its URLs (GHL keys each file by an id that differs per record)."""
    files = value.values() if isinstance(value, dict) else value if isinstance(value, list) else []
    urls = [f["url"] for f in files if isinstance(f, dict) and isinstance(f.get("url"), str)]
    return urls or value


def _named_values(entries, definitions):
    by_id = {d["id"]: d for d in definitions}
    named = {}
    for entry in entries:
        ident = entry.get("id") if isinstance(entry, dict) else None
        definition = by_id.get(ident) if isinstance(ident, str) else None
        if definition is None:
            continue
        value = _entry_value(entry)
        if value in (None, "", [], {}):
            continue
        if definition.get("dataType") == "FILE_UPLOAD":
            value = _file_urls(value)
        named[custom_field_output_key(definition)] = value
    return named


class _Lookups:
    """Definitions and pipelines for one ``enrich_items`` call, each loaded once per location."""

    def __init__(self, context, kind):
        self.context = context
        self.kind = kind
        self.found = {}

    def definitions(self, location):
        return self._once(("definitions", location),
                          lambda: load_definitions(self.context.client, self.context.token, location, self.kind,
                                                   quick=True))

    def pipelines(self, location):
        return self._once(("pipelines", location),
                          lambda: load_pipelines(self.context.client, self.context.token, location))

    def zone(self, location):
        return self._once(("time zone", location),
                          lambda: load_location_zone(self.context.client, self.context.token, location))

    def _once(self, key, load):
        if key not in self.found:
            locations = {location for _, location in self.found}
            if key[1] not in locations and len(locations) >= MAX_LOCATIONS_PER_CALL:
                return None
            self.found[key] = self._guarded(key, load)
        return self.found[key]

    def _guarded(self, key, load):
        what, location = key
        try:
            failure_key = (what, self.context.client.token_owner(self.context.token), location, self.kind)
            if FAILURES.get(failure_key):
                return None
            try:
                return load()
            except Exception:
                FAILURES.put(failure_key, True)
                raise
        except Exception as exc:
            # Never the token or the items: what failed, for which location, and GHL's error code.
            log.warning("enrichment: %s of location %s unavailable (%s); items go out without them for a minute",
                        what, location, getattr(exc, "code", None) or type(exc).__name__)
            return None


def clear_caches():
    """Forget every cached definition, pipeline, time zone and failure (tests that count GHL requests)."""
    for cache in (CUSTOM_FIELD_DEFINITIONS, PIPELINES, TIMEZONES, FAILURES):
        cache.clear()


def load_pipelines(client, token, location_id):
    """``{pipeline id: {"name", "stages": {stage id: name}}}`` of the location's opportunity
    pipelines, cached in this process for about a minute per (credential, location)."""
    key = (client.token_owner(token), location_id)
    cached = PIPELINES.get(key)
    if cached is not None:
        return cached
    response = client.request("GET", PIPELINES_PATH, token, version=PIPELINES_VERSION,
                              query={"locationId": location_id}, scopes=PIPELINES_SCOPES, quick=True)
    names = _pipeline_names(response.body)
    PIPELINES.put(key, names)
    return names


def _pipeline_names(body):
    names = {}
    listed = dig(body, "pipelines") if isinstance(body, dict) else None
    for pipeline in (listed if isinstance(listed, list) else [])[:MAX_PIPELINES]:
        if not isinstance(pipeline, dict) or not isinstance(pipeline.get("id"), str):
            continue
        stages = pipeline.get("stages")
        names[pipeline["id"]] = {
            "name": pipeline["name"] if isinstance(pipeline.get("name"), str) else pipeline["id"],
            "stages": {stage["id"]: stage["name"] for stage in (stages if isinstance(stages, list) else [])[:MAX_STAGES]
                       if isinstance(stage, dict) and isinstance(stage.get("id"), str)
                       and isinstance(stage.get("name"), str)},
        }
    return names


def load_location_zone(client, token, location_id):
    """The location's time zone (``location.timezone`` of ``GET /locations/{locationId}``), its
    name cached in this process for about a minute per (credential, location). Raises
    UnknownTimeZone when the location names none this process knows."""
    key = (client.token_owner(token), location_id)
    name = TIMEZONES.get(key)
    if name is None:
        response = client.request("GET", LOCATION_PATH.format(quote(location_id, safe="")), token,
                                  version=LOCATION_VERSION, scopes=LOCATION_SCOPES, quick=True)
        location = dig(response.body, "location") if isinstance(response.body, dict) else None
        name = location.get("timezone") if isinstance(location, dict) else None
        name = name if isinstance(name, str) else ""
        TIMEZONES.put(key, name)
    if not TIMEZONE_NAME.fullmatch(name):
        raise UnknownTimeZone()
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:  # "America" is a directory: OSError
        raise UnknownTimeZone() from exc
