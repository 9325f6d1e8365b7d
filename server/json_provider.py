"""Flask's JSON written and read by orjson: the service's answers carry whole GHL records (a
trigger's page, a list action's items), and the standard library spent more time on them than
the rest of the answer. Anything orjson refuses goes through Flask's own provider, unchanged."""

import orjson
from flask.json.provider import DefaultJSONProvider

from storage import fast_json


class FastJsonProvider(DefaultJSONProvider):
    sort_keys = False  # GHL's field order is kept, as it was received

    def dumps(self, obj, **kwargs):
        if not kwargs.get("indent") and not kwargs.get("sort_keys"):
            try:
                return orjson.dumps(obj, default=self.default).decode()
            except TypeError:  # orjson.JSONEncodeError is a TypeError
                pass
        return super().dumps(obj, **kwargs)

    def loads(self, s, **kwargs):
        return super().loads(s, **kwargs) if kwargs else fast_json.loads(s)
