"""Dropdowns backed by generated GHL lists: which generated list triggers can fill a dropdown,
and which inputs (of any record) they fill. Pure: nothing here does I/O.

A generated list *can fill a dropdown* (``usable_lists``) when the connection alone reads it:
it is a generated trigger of items with ids (as "New Item in a GHL List" offers it), usable by
any location token (no ``access`` limit, not deprecated), its required inputs are only the
location, inputs with defaults, the paging inputs the service fills, and at most one parent id
in its path (the prices *of a product*); and its sample item has a name-like field to label a
choice with.

A list of noun N (service S, resource path P: its path without a trailing ``/``, ``/search`` or
``/list``) *fills an input* (``list_for_input``) of a record when no hand-written source does
(``zapier_app.choices``) and the input is not in ``NOT_THE_LIST`` and:
- the input's key is N's id key (``Shipping Zone`` -> ``shippingZoneId``, or ``…Ids``), the
  record is of service S (or ``ACROSS_SERVICES`` names the pair), and a path input sits right
  under P (``/store/shipping-zone/{shippingZoneId}``; not ``/invoices/estimate/template/
  {templateId}`` for the invoice templates at ``/invoices/template``); or
- the input is ``id``, the record is about N in S (its ``noun``), and the input sits right under
  P (a path input) or the record's path is P (a query or body input: ``/payments/coupon?id=``);
("Right under P": the path up to the input is P, or P then ``/id``.) And the record has the
list's parent input, if any (passed on to GHL; the field depends on it).
Where two lists of one service qualify, the one with the shorter path wins (``/links/`` over
``/links/search``). Anything else gets no dropdown: a wrong dropdown is worse than none.
"""

import re
import weakref

from catalog.pagination import pagination_style

# Name-like item fields, best first; ``{noun}Name`` (``agentName``) comes after these.
LABEL_FIELDS = ("name", "title", "label", "displayName", "fullName")
PERSON_LABEL = ("{firstName} {lastName} ({email})", "{firstName} {lastName}", "{firstName} ({email})",
                "{email}")
RESOURCE_SUFFIXES = ("/search", "/list")

# Inputs of another service that hold ids of a list: (service, input key) -> list key.
ACROSS_SERVICES = {
    ("payments", "productIds"): "list_products",  # a coupon's products
    ("voice-ai", "numberPoolId"): "list_number_pools",  # the phone system's number pools
}

# Inputs the rule would match that hold ids of something else: (record key, input key) -> what.
NOT_THE_LIST = {
    ("preview_estimate_template", "templateId"): "an estimate template (GET /invoices/estimate/template), "
                                                 "not an invoice template",
}

_SOURCES = weakref.WeakKeyDictionary()


def id_key(noun):
    """``Shipping Zone`` -> ``shippingZoneId``; ``FAQ`` -> ``faqId``."""
    words = [w for w in re.split(r"[^A-Za-z0-9]+", noun) if w]
    if not words:
        return None
    return words[0].lower() + "".join(w[:1].upper() + w[1:].lower() for w in words[1:]) + "Id"


def resource_path(path):
    """``/payments/coupon/list`` -> ``/payments/coupon``; ``/links/`` -> ``/links``."""
    path = path.rstrip("/")
    for suffix in RESOURCE_SUFFIXES:
        if path.endswith(suffix):
            return path[:-len(suffix)]
    return path


def _filled_by_service(field, style):
    """Whether a required input needs nobody: the location, a default, or paging."""
    return bool(field.get("location") or field.get("default") is not None or field.get("default_input")
                or field["key"] in (style.get("param"), style.get("size_param")))


def _paging_inputs(record, style):
    """Values of the required paging inputs, for the first page (later pages start elsewhere)."""
    fixed = {}
    for field in record["inputs"]:
        if not field.get("required") or field.get("default") is not None:
            continue
        if field["key"] == style.get("size_param"):
            fixed[field["key"]] = style["size"]
        elif field["key"] == style.get("param"):
            fixed[field["key"]] = style.get("first", 0)
    return fixed


def _label(sample, noun):
    fields = [*LABEL_FIELDS, id_key(noun)[:-2] + "Name"]
    for name in fields:
        if isinstance(sample.get(name), str):
            return ("{%s}" % name,)
    if isinstance(sample.get("firstName"), str) or isinstance(sample.get("email"), str):
        return PERSON_LABEL
    return None


def list_source(record):
    """The choice source of ``record`` (see ``zapier_app.choices``), or None when it cannot fill
    a dropdown from the connection alone."""
    response = record["response"]
    if (record.get("origin") != "generated" or record["kind"] != "trigger" or response.get("single")
            or not response.get("id_field") or record.get("access") or record.get("deprecated") is not None):
        return None
    noun = record.get("noun") or ""
    key = id_key(noun) if noun else None
    sample = record.get("sample") if isinstance(record.get("sample"), dict) else {}
    label = _label(sample, noun) if key else None
    if label is None:
        return None
    style = pagination_style(response.get("pagination", "none"))
    needed = [f for f in record["inputs"] if f.get("required") and not _filled_by_service(f, style)]
    if len(needed) > 1 or any(f.get("in") != "path" or not f["key"].endswith("Id") for f in needed):
        return None
    # Where items carry a field named like the input (a document's ``documentId`` beside its
    # ``_id``), that is the value GHL's other operations take.
    ident = key if sample.get(key) not in (None, "") else response["id_field"]
    source = {"record": record["key"], "noun": noun, "label": label, "id": ident, "service": record["service"],
              "generated": True}
    if needed:
        parent = needed[0]["key"]
        source.update(chain={parent: parent}, requires=(parent,))
    fixed = _paging_inputs(record, style)
    if fixed:
        source["fixed"] = fixed
    return source


def usable_lists(catalog):
    """{list record key: choice source} of every generated list that can fill a dropdown."""
    try:
        return _SOURCES[catalog]
    except (KeyError, TypeError):
        pass
    found = {}
    for record in sorted(catalog, key=lambda r: (len(r["path"]), r["key"])):
        source = list_source(record)
        if source is not None:
            found[record["key"]] = source
    try:
        _SOURCES[catalog] = found
    except TypeError:
        pass  # a catalog that cannot be weakly referenced is computed each time
    return found


def _under(record, key, resource):
    """Whether path input ``key`` of ``record`` sits right under ``resource`` (``/links/{linkId}``,
    or ``/links/id/{linkId}``)."""
    marker = "{%s}" % key
    if marker not in record["path"]:
        return False
    prefix = record["path"].split(marker)[0].rstrip("/")
    return prefix.removesuffix("/id") == resource


def _fills(record, field, source, catalog):
    listed = catalog.get(source["record"])
    resource = resource_path(listed["path"])
    key, place = field["key"], field.get("in")
    if key == "id":
        if source["id"] != listed["response"]["id_field"] or record.get("noun") != source["noun"] \
                or record.get("service") != source["service"]:
            return False
        return _under(record, key, resource) if place == "path" else record["path"].rstrip("/") == resource
    noun_key = id_key(source["noun"])
    if key not in (noun_key, noun_key + "s"):
        return False
    if ACROSS_SERVICES.get((record.get("service"), key)) == source["record"]:
        return True
    if record.get("service") != source["service"]:
        return False
    return place != "path" or _under(record, key, resource)


def list_for_input(record, field, catalog):
    """The key of the generated list that fills ``field`` of ``record``, or None."""
    if field.get("type", "string") != "string" or (record["key"], field["key"]) in NOT_THE_LIST:
        return None
    inputs = {f["key"] for f in record["inputs"]}
    for name, source in usable_lists(catalog).items():
        if name == record["key"] or not all(k in inputs for k in source.get("requires", ())):
            continue
        if _fills(record, field, source, catalog):
            return name
    return None
