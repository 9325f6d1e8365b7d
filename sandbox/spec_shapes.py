"""Answers in the spec's shape for the operations of generated records.

A generated record's ``sample`` holds a few fields (so does an upload's, see ``spec_shaped``); GHL's answer holds what the spec's success
schema (or example) says. At start-up ``attach_answer_shapes`` builds, for every served
operation whose records are all generated, the spec's whole answer (``envelope``: every
property, examples where they fit) from ``sandbox.spec_values``. ``dress`` then lays a generic
handler's answer over it: the stored items, ids and list totals win; each item is completed
from the spec's item at the record's ``response.items`` path, and the envelope keeps the keys
the handler does not know (``traceId``, ``meta``...).

Without the specs (``../shared`` absent) no shape is attached and answers stay as the
handlers build them from the store and the record's ``sample``.
"""

import copy
from dataclasses import dataclass
from typing import Any

from ghl.response_items import dig
from sandbox.spec_values import response_schema, value_for

ID_FIELDS = ("id", "_id")


@dataclass
class AnswerShape:
    envelope: Any  # the whole success answer, as the spec builds it
    item: dict  # one item, as the spec builds it ({} when the spec has none)


def spec_shaped(record):
    """Answered in the spec's shape: generated records, and uploads (whose records are hand-written
    only because the generator cannot write file inputs)."""
    return record.get("origin") == "generated" or record.get("body_format") == "multipart"


def shape_for(op, validator):
    """The AnswerShape of a routing.Operation, or None (hand-written records, no spec, no schema)."""
    if not validator.enabled or not all(map(spec_shaped, op.records)):
        return None
    spec = op.record.get("spec") or {}
    spec_op = validator.operation_named(spec.get("app"), spec.get("operation_id"))
    if spec_op is None:
        return None
    envelope = value_for(spec_op.doc, response_schema(spec_op), every_property=True)
    if envelope is None:
        return None
    found = dig(envelope, op.items_path)
    if isinstance(found, list):
        found = found[0] if found else {}
    return AnswerShape(envelope, found if isinstance(found, dict) else {})


def attach_answer_shapes(table, validator):
    """Set ``answer_shape`` on every operation of ``table``; how many got one."""
    count = 0
    for op in table.operations:
        op.answer_shape = shape_for(op, validator)
        count += op.answer_shape is not None
    return count


def dressed_item(template, item):
    """``item`` completed from the spec's ``template`` (its own fields win; ids kept consistent)."""
    if not isinstance(item, dict):
        return item
    result = merged(template, item)
    own_id = next((item[name] for name in ID_FIELDS if item.get(name) is not None), None)
    for name in ID_FIELDS:
        if name in template and name not in item and own_id is not None:
            result[name] = own_id
    return result


def merged(base, over):
    """``over`` laid on ``base``: objects merged key by key, anything else taken from ``over``."""
    if not (isinstance(base, dict) and isinstance(over, dict)):
        return copy.deepcopy(over)
    result = copy.deepcopy(base)
    for key, value in over.items():
        result[key] = merged(result[key], value) if isinstance(result.get(key), dict) else copy.deepcopy(value)
    return result


def dress(op, status, body):
    """A successful generic answer of ``op`` in the spec's shape; others unchanged."""
    shape = getattr(op, "answer_shape", None)
    if shape is None or status >= 300:
        return body
    found = dig(body, op.items_path) if op.items_path else body
    if isinstance(found, list):
        items = [dressed_item(shape.item, item) for item in found]
        if not op.items_path:
            return items
        return merged(shape.envelope, _replaced(body, op.items_path, items))
    if isinstance(found, dict) and op.items_path:
        body = _replaced(body, op.items_path, dressed_item(shape.item, found))
    return merged(shape.envelope, body)


def _replaced(body, dotted, value):
    """``body`` (an object) with ``value`` at ``dotted``."""
    body = dict(body) if isinstance(body, dict) else {}
    head, _, rest = dotted.partition(".")
    body[head] = _replaced(body.get(head), rest, value) if rest else value
    return body
