"""The Zapier app definition, generated from the catalog: ``zapier_app_definition``.

``python -m zapier_app`` writes it as a Zapier Platform CLI app; ``GET /zapier/app.json`` serves
the same definition.

The catalog keeps GHL's kinds; the app presents each record the way a Zap builder uses it
(``zapier_app.presentation.role``):
- ``trigger``: a polling trigger on ``POST /triggers/<key>``; list triggers of things that
  appear and triggers named for their event also get a REST hook twin on ``/hooks``, which this
  service's worker feeds (``presentation.wants_instant_twin``);
- ``search``: a trigger that is really a look-up ("Get Contact" by id, "Filter Users by
  Email") is a search on ``POST /actions/<key>``, which reads GHL once and records nothing;
- ``dropdown``: a hidden trigger (lists that only matter as choices); ``omit``: not in the app;
- searches and actions (plus the generic API Request) are searches and creates on
  ``POST /actions/<key>``, with Find or Create Contact and Find or Create Opportunity as
  search-or-creates.
Every id a user would otherwise type is a dropdown (``zapier_app.choices``: hidden triggers
``choices_<source>`` on ``/zapier/choices/<source>``), with a search where one finds the id;
custom fields are loaded from the connection's location (``zapier_app.fields``). Samples and
output fields are the record's sample as the service answers it.

Only hand-written records are steps of their own. The operations generated from GHL's specs are
reached through two generic steps, "Run a GHL Operation" and "New Item in a GHL List", whose
Operation dropdown offers them (``zapier_app.generic_steps``, ``zapier_app.operation_picker``).

Functions in the definition are Zapier's serialized placeholders (``$func$2$f$``); ``index.js``
replaces each with the real one and refuses to load if one is left over. Pure: no I/O.
"""

from actions.api_request import API_REQUEST
from actions.execute import shape_action_result, shape_search_result
from catalog.registry import KEY_PATTERN
from ghl.enrichment import enrich_sample
from ghl.response_items import wrap
from triggers.identity import candidate_for
from zapier_app import choices, generic_steps, presentation
from zapier_app.fields import body_template, input_fields, record_output_fields

ZAPIER_PLATFORM_VERSION = "19.1.0"
DEFAULT_APP_VERSION = "1.0.0"
INSTANT_SUFFIX = "_instant"

# Zapier's serialized function pointers: arity 2 (z, bundle) and 3 (request, z, bundle).
FUNCTION_2 = "$func$2$f$"
FUNCTION_3 = "$func$3$f$"

# GHL's burst limit is 100 requests per 10 seconds per location (/work/shared/ghl-api-notes.md,
# B1); Zapier holds runs of all the location's Zaps to it rather than letting GHL answer 429.
THROTTLE = {"window": 10, "limit": 100, "key": "{{bundle.authData.locationId}}", "scope": ["account"]}

SEARCH_OR_CREATES = [("find_contact", "create_contact", "Find or Create Contact"),
                     ("find_opportunity", "create_opportunity", "Find or Create Opportunity")]


def _post(url, record):
    return {"url": url, "method": "POST", "body": body_template(record), "removeMissingValuesFrom": {"body": True}}


def request_template(connector_key_required):
    """Headers every request to this service carries (Zapier's app-wide ``requestTemplate``)."""
    headers = {
        "Authorization": "Bearer {{bundle.authData.token}}",
        "X-Location-Id": "{{bundle.authData.locationId}}",
        "Accept": "application/json",
    }
    if connector_key_required:
        headers["X-Connector-Key"] = "{{bundle.authData.connectorKey}}"
    return {"headers": headers}


def authentication(server_url, connector_key_required):
    help_text = presentation.auth_fields_help(server_url)
    fields = [
        {"key": "token", "label": "GHL Token", "type": "password", "required": True, "helpText": help_text["token"]},
        {"key": "locationId", "label": "Location ID", "type": "string", "required": True,
         "helpText": help_text["locationId"]},
    ]
    if connector_key_required:
        fields.append({"key": "connectorKey", "label": "Connector Key", "type": "password", "required": True,
                       "helpText": help_text["connectorKey"]})
    return {
        "type": "custom",
        "fields": fields,
        "test": {"url": f"{server_url}/auth/test", "method": "GET"},
        "connectionLabel": FUNCTION_2,
    }


# ----------------------------------------------------------------------------- samples


def answered_sample(record, as_search=False):
    """The record's sample as the service answers it: shaped by the same code that shapes live
    answers (``as_search``: a trigger the app presents as a search)."""
    sample = record["sample"]
    if record["kind"] == "search" or as_search:
        found = shape_search_result(record, wrap(record["response"].get("items"), sample))
        shaped = found[0] if found else dict(sample)
    elif record["kind"] == "trigger":
        shaped = candidate_for(record, sample).item
    else:
        shaped = shape_action_result(record, wrap(record["response"].get("items"), sample))
    return enrich_sample(record, shaped)


def _trigger_output_labels(record):
    if record["response"].get("dedupe") == "changes":
        return {"id": "Change ID", "ghl_id": f"{presentation.noun(record)} ID"}
    watch = record["response"].get("watch") or {}
    if watch and watch.get("event") != "created":
        return {"id": "Change ID", "ghl_id": "GHL ID"}
    return {"id": "ID", "ghl_id": "GHL ID"}


# ----------------------------------------------------------------------------- operations


def _display(shown, hidden=False):
    display = {"label": shown["label"][:64], "description": shown["description"][:1000]}
    if hidden:
        display["hidden"] = True
    return display


def polling_trigger(record, server_url, catalog, hidden=False):
    sample = answered_sample(record)
    return {
        "key": record["key"],
        "noun": presentation.noun(record),
        "display": _display(presentation.trigger_display(record, catalog), hidden=hidden),
        "operation": {
            "type": "polling",
            "perform": _post(f"{server_url}/triggers/{record['key']}", record),
            "inputFields": input_fields(record, catalog, "trigger"),
            "sample": sample,
            "outputFields": record_output_fields(record, sample, _trigger_output_labels(record)),
        },
    }


def instant_trigger(record, polling, server_url, catalog):
    """The REST hook twin of ``polling``, the record's polling trigger: same inputs, same items,
    pushed by the service."""
    subscribe_body = {
        "trigger": record["key"],
        "target_url": "{{bundle.targetUrl}}",
        "inputs": body_template(record),
    }
    return {
        "key": record["key"] + INSTANT_SUFFIX,
        "noun": polling["noun"],
        "display": _display(presentation.instant_display(record, catalog)),
        "operation": {
            "type": "hook",
            # index.js: the delivered JSON array is the list of items.
            "perform": FUNCTION_2,
            # index.js sends this request itself: Zapier leaves a nested {{curly}} unrendered when
            # its input is missing, so the function renders it and leaves missing inputs out.
            "performSubscribe": {"url": f"{server_url}/hooks", "method": "POST", "body": subscribe_body},
            "performUnsubscribe": {"url": server_url + "/hooks/{{bundle.subscribeData.id}}", "method": "DELETE"},
            # The service's sample of recent items, shaped exactly as deliveries are.
            "performList": {"url": f"{server_url}/hooks/sample/{record['key']}", "method": "GET",
                            "params": body_template(record), "removeMissingValuesFrom": {"params": True}},
            "inputFields": polling["operation"]["inputFields"],
            "sample": polling["operation"]["sample"],
            "outputFields": polling["operation"]["outputFields"],
        },
    }


def action(record, server_url, catalog, kind):
    """A search or a create (``kind``) on ``POST /actions/<key>``."""
    sample = answered_sample(record, as_search=kind == "search")
    shown = presentation.search_display(record) if kind == "search" else presentation.create_display(record)
    return {
        "key": record["key"],
        "noun": presentation.noun(record),
        "display": _display(shown),
        "operation": {
            "perform": _post(f"{server_url}/actions/{record['key']}", record),
            "inputFields": input_fields(record, catalog, kind),
            "sample": sample,
            "outputFields": record_output_fields(record, sample),
        },
    }


def search_or_creates(searches, creates):
    combos = {}
    for search_key, create_key, label in SEARCH_OR_CREATES:
        if search_key in searches and create_key in creates:
            noun = searches[search_key]["noun"].lower()
            article = "an" if noun[:1] in "aeiou" else "a"
            combos[search_key] = {
                "key": search_key,
                "display": {"label": label,
                            "description": f"Finds {article} {noun}, and creates one when none matches."},
                "search": search_key,
                "create": create_key,
            }
    return combos


def _hand_written(catalog, kind):
    return [record for record in catalog.of_kind(kind) if record.get("origin") != "generated"]


def _new_keys(group, added):
    taken = set(group) & set(added)
    if taken:
        raise ValueError(f"{sorted(taken)} are catalog keys and generic step keys at once")
    return added


def zapier_app_definition(catalog, server_url, connector_key_required, version=DEFAULT_APP_VERSION):
    """The Zapier app definition (a JSON-ready dict) for the service at ``server_url``.

    ``connector_key_required``: the server has a CONNECTOR_KEY, so the connection asks for it
    and every request sends it. Functions are Zapier's placeholders; ``index.js`` fills them in.
    """
    server_url = server_url.rstrip("/")
    triggers, searches, creates = {}, {}, {}
    for record in _hand_written(catalog, "trigger"):
        role = presentation.role(record)
        if role == "search":
            searches[record["key"]] = action(record, server_url, catalog, "search")
        elif role in ("trigger", "dropdown"):
            polling = triggers[record["key"]] = polling_trigger(record, server_url, catalog, hidden=role == "dropdown")
            if role == "trigger" and presentation.wants_instant_twin(record):
                twin = instant_trigger(record, polling, server_url, catalog)
                triggers[twin["key"]] = twin
    triggers.update(choices.choice_triggers(server_url, catalog))
    triggers.update(_new_keys(triggers, generic_steps.generic_triggers(server_url, catalog)))
    for record in _hand_written(catalog, "search"):
        searches[record["key"]] = action(record, server_url, catalog, "search")
    for record in _hand_written(catalog, "action"):
        creates[record["key"]] = action(record, server_url, catalog, "create")
    creates[API_REQUEST["key"]] = action(API_REQUEST, server_url, catalog, "create")
    creates.update(_new_keys(creates, generic_steps.generic_creates(server_url, catalog)))
    for group in (triggers, searches, creates):
        for key in group:
            if not KEY_PATTERN.match(key):
                raise ValueError(f"{key!r} breaks Zapier's key rule")
    return {
        "version": version,
        "platformVersion": ZAPIER_PLATFORM_VERSION,
        "authentication": authentication(server_url, connector_key_required),
        "requestTemplate": request_template(connector_key_required),
        # index.js: adds X-Subscriber-Id (the Zap) and X-Poll-Mode (samples, dropdowns) to polls,
        # and turns the service's errors into Zapier's (afterResponse).
        "beforeRequest": [FUNCTION_3],
        "throttle": THROTTLE,
        "triggers": triggers,
        "searches": searches,
        "creates": creates,
        "searchOrCreates": search_or_creates(searches, creates),
    }
