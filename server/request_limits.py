"""What one request may cost: JSON read strictly (orjson: no NaN or Infinity, UTF-8 only) and
only after a cheap look at its shape (how deep, how many keys and items) refuses the costly ones
before any Python object is built for them. Pure: no Flask, no I/O.
"""

import re

import orjson

MAX_JSON_DEPTH = 32
MAX_JSON_ITEMS = 10_000

_ESCAPE = re.compile(rb"\\.", re.DOTALL)
# Linear: with escapes gone every quote delimits a string, and ``[^"]*`` cannot backtrack into one.
_STRING = re.compile(rb'"[^"]*"')
_NOT_BRACKET = bytes(set(range(256)) - set(b"[]{}"))


class JsonRefused(ValueError):
    def __init__(self, status, code, message):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def json_shape(data):
    """(items, depth) of JSON text ``data``: members and list items in all, and the deepest
    nesting. Exact for valid JSON (an empty container counts as one item); never an
    under-count, so invalid text can only pass here to be refused by the parser."""
    bare = _STRING.sub(b"", _ESCAPE.sub(b"", data))
    items = bare.count(b",") + bare.count(b"[") + bare.count(b"{")
    if items > MAX_JSON_ITEMS:
        return items, None
    depth = deepest = 0
    for bracket in bare.translate(None, _NOT_BRACKET):
        depth += 1 if bracket in b"[{" else -1
        deepest = max(deepest, depth)
    return items, deepest


def parse_json(data, what="The request body"):
    """The value of JSON text ``data`` (bytes or str) within the limits; JsonRefused otherwise."""
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    items, depth = json_shape(data)
    if depth is None:
        raise JsonRefused(413, "too_many_items",
                          f"{what} holds more than {MAX_JSON_ITEMS:,} keys and list items in all.")
    if depth > MAX_JSON_DEPTH:
        raise JsonRefused(400, "json_too_deep", f"{what} is nested more than {MAX_JSON_DEPTH} levels deep.")
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        raise JsonRefused(400, "invalid_json",
                          f"{what} is not valid JSON (UTF-8, with no NaN or Infinity).") from None
