"""Find items in GHL's answers, following an operation record's ``response`` block."""


def dig(body, dotted):
    """The value at ``dotted`` (``meta.startAfter``) in ``body``, or None; ``None``/"" = the body."""
    if not dotted:
        return body
    node = body
    for part in dotted.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def wrap(dotted, value):
    """``value`` placed at ``dotted`` (``contact`` -> ``{"contact": value}``); bare when empty: ``dig``'s inverse."""
    if not dotted:
        return value
    body = value
    for part in reversed(dotted.split(".")):
        body = {part: body}
    return body


def extract_items(record, body):
    """The list of items (plain objects) in GHL's answer for ``record``.

    A single-object answer is one item; an answer with nothing at the items path is none.
    Scalars in a list (e.g. a list of time-zone names) become ``{"value": ...}`` objects.
    """
    found = dig(body, record["response"].get("items"))
    if found is None:
        return []
    if isinstance(found, dict):
        return [found]
    if isinstance(found, list):
        return [item if isinstance(item, dict) else {"value": item} for item in found]
    return [{"value": found}]
