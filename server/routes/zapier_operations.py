"""``/zapier/operations``: the generated operations for the Operation dropdowns of "Run a GHL
Operation" and "New Item in a GHL List", and the fields of the one chosen
(``zapier_app.operation_picker``). Reads the catalog only: nothing reaches GHL.

- ``GET /zapier/operations?step=run|poll&q=<words>&service=<service>&page=<n>``:
  ``[{"id": <catalog key>, "name": <label>}]``, 100 a page (``page`` from 0, Zapier's "load more").
- ``GET /zapier/operations/<key>/fields?for=input|output``: Zapier field descriptors of a
  generated operation the steps offer; 404 for any other key.
"""

import re

from flask import Blueprint, jsonify, request

from server.app import services
from server.errors import ApiError
from server.routes.caller import bearer_token
from zapier_app import operation_picker as picker
from zapier_app.definition import answered_sample

blueprint = Blueprint("zapier_operations", __name__)

DROPDOWN_PARAMS = ("step", "q", "service", "page")
PAGE_PATTERN = re.compile(r"^[0-9]{1,4}$")
PURPOSES = ("input", "output")


def _one(name):
    """The query parameter ``name`` once, stripped ("" when absent); given twice is a 400."""
    values = request.args.getlist(name)
    if len(values) > 1:
        raise ApiError(400, "invalid_input", f"Give {name} once.", fields={name: "takes one value"})
    return values[0].strip() if values else ""


def _dropdown_params():
    unknown = sorted(key[:64] for key in request.args if key not in DROPDOWN_PARAMS)[:10]
    if unknown:
        raise ApiError(400, "invalid_input", "Unknown parameters: " + ", ".join(unknown) + ".",
                       fields={key: "unknown parameter" for key in unknown})
    step = _one("step")
    if step not in picker.STEPS:
        raise ApiError(400, "invalid_input", "Say which step's operations with ?step=run or ?step=poll.",
                       fields={"step": "must be run or poll"})
    query = _one("q")
    if len(query) > picker.MAX_QUERY_CHARS or not query.isprintable():
        raise ApiError(400, "invalid_input",
                       f"The search text must be at most {picker.MAX_QUERY_CHARS} printable characters.",
                       fields={"q": f"at most {picker.MAX_QUERY_CHARS} printable characters"})
    service = _one("service")
    if service and service not in picker.services(services().catalog, step):
        raise ApiError(400, "invalid_input", f"There is no service called {service[:64]!r} with such operations.",
                       fields={"service": "unknown service"})
    page = _one("page") or "0"
    if not PAGE_PATTERN.match(page) or int(page) > picker.MAX_PAGE:
        raise ApiError(400, "invalid_page", f"page must be a whole number from 0 to {picker.MAX_PAGE}.",
                       fields={"page": f"a whole number from 0 to {picker.MAX_PAGE}"})
    return step, query, service or None, int(page)


@blueprint.get("/zapier/operations")
def operation_choices():
    bearer_token()
    step, query, service, page = _dropdown_params()
    return jsonify(picker.choices_page(services().catalog, step, query, service, page))


@blueprint.get("/zapier/operations/<key>/fields")
def operation_fields(key):
    bearer_token()
    catalog = services().catalog
    record = catalog.get(key)
    if record is None or picker.step_of(record) is None:
        raise ApiError(404, "unknown_operation",
                       f"There is no operation called {key[:64]!r} among those Run a GHL Operation and "
                       "New Item in a GHL List offer.")
    purpose = _one("for")
    if purpose not in PURPOSES:
        raise ApiError(400, "invalid_input", "Say which fields with ?for=input or ?for=output.",
                       fields={"for": "must be input or output"})
    if purpose == "input":
        return jsonify(picker.input_fields(record, catalog))
    return jsonify(picker.output_fields(record, answered_sample(record)))
