"""The two steps that reach every generated operation (``zapier_app.operation_picker``):
"Run a GHL Operation" (a create) and "New Item in a GHL List" (a polling trigger), with the
hidden triggers that fill their Operation dropdowns.

Each step's inputs: an optional Service and Search text that narrow the dropdown, the
Operation dropdown (``altersDynamicFields``: choosing one loads its fields), then the chosen
operation's fields, loaded from ``/zapier/operations/<key>/fields``. ``perform`` posts the
inputs (without the step's own) to ``/actions/<key>`` or ``/triggers/<key>``, so validation,
dedupe and errors are the service's, as for first-class steps. The functions are Zapier
placeholders that ``index.js`` fills in (``GENERIC_STEPS`` there names these keys).
"""

from zapier_app import operation_picker as picker

FUNCTION_2 = "$func$2$f$"

RUN_KEY = "run_ghl_operation"
POLL_KEY = "new_ghl_list_item"
DROPDOWN_KEYS = {"run": "run_operation_choices", "poll": "list_operation_choices"}
ROUTE = "/zapier/operations"

SAMPLE_ITEM = {"id": "6578278e879ad2646715ba9c", "name": "Spring Sale"}
SAMPLE_OUTPUTS = [{"key": "id", "label": "ID", "type": "string"}, {"key": "name", "label": "Name", "type": "string"}]


def dropdown_trigger(step, server_url):
    """The hidden trigger listing the operations ``step`` offers, 100 a page, narrowed by the
    step's Service and Search inputs."""
    noun = "Operation" if step == "run" else "List Operation"
    what = "operations to run" if step == "run" else "lists to watch"
    return {
        "key": DROPDOWN_KEYS[step],
        "noun": noun,
        "display": {"label": "Operations to Run Dropdown" if step == "run" else "Lists to Watch Dropdown",
                    "description": f"Triggers when Zapier loads the {what} to choose from in a dropdown.",
                    "hidden": True},
        "operation": {
            "type": "polling",
            "perform": {"url": server_url + ROUTE, "method": "GET", "removeMissingValuesFrom": {"params": True},
                        "params": {"step": step, "q": "{{bundle.inputData.%s}}" % picker.SEARCH_KEY,
                                   "service": "{{bundle.inputData.%s}}" % picker.SERVICE_KEY,
                                   "page": "{{bundle.meta.page}}"}},
            "canPaginate": True,
            "sample": {"id": "create_invoice", "name": "Create Invoice (Invoices)"},
            "outputFields": [{"key": "id", "label": f"{noun} Key", "type": "string"},
                             {"key": "name", "label": noun, "type": "string"}],
        },
    }


def _step_inputs(step, catalog):
    """The step's own inputs. The optional filters come before the required dropdown they narrow
    (checks.JUSTIFIED_EXCEPTIONS, P-FIELD-ORDER): Zapier fills a dropdown from the inputs above it."""
    kinds = "actions and look-ups" if step == "run" else "lists"
    return [
        {"key": picker.SERVICE_KEY, "label": "Service", "required": False,
         "choices": picker.service_choices(catalog, step),
         "helpText": "Only list the operations of this part of the API in Operation below."},
        {"key": picker.SEARCH_KEY, "label": "Search Operations", "required": False,
         "helpText": "Only list the operations whose name, description or path holds all of these words, "
                     "such as `invoice send`, in Operation below."},
        {"key": picker.OPERATION_KEY, "label": "Operation", "required": True, "altersDynamicFields": True,
         "dynamic": f"{DROPDOWN_KEYS[step]}.id.name",
         "helpText": (f"One of the {kinds} without a step of their own; its fields appear once you choose it. "
                      "Service and Search Operations above narrow the list.")},
        FUNCTION_2,
    ]


def run_step(server_url, catalog):
    """"Run a GHL Operation": a create on ``POST /actions/<operation>``."""
    return {
        "key": RUN_KEY,
        "noun": "Operation",
        "display": {"label": "Run a GHL Operation",
                    "description": ("Runs any action or look-up of the API v2 that has no step of its own (invoices, "
                                    "products, social media posts, payments...): choose it, and its fields appear.")},
        "operation": {
            # index.js: posts the inputs to /actions/<operation>; a look-up's list comes as
            # {count, items} (a create answers one object).
            "perform": FUNCTION_2,
            "inputFields": _step_inputs("run", catalog),
            "sample": SAMPLE_ITEM,
            "outputFields": [*SAMPLE_OUTPUTS, FUNCTION_2],
        },
    }


def poll_step(server_url, catalog):
    """"New Item in a GHL List": a polling trigger on ``POST /triggers/<operation>``."""
    return {
        "key": POLL_KEY,
        "noun": "Item",
        "display": {"label": "New Item in a GHL List",
                    "description": ("Triggers when a new item appears in the list you choose, from any list of the "
                                    "API v2 without a trigger of its own (products, invoice schedules, shipping "
                                    "zones...).")},
        "operation": {
            "type": "polling",
            # index.js: posts the inputs to /triggers/<operation>, whose dedupe is scoped by the
            # operation and its inputs.
            "perform": FUNCTION_2,
            "inputFields": _step_inputs("poll", catalog),
            "sample": SAMPLE_ITEM,
            "outputFields": [*SAMPLE_OUTPUTS, FUNCTION_2],
        },
    }


def generic_triggers(server_url, catalog):
    """The trigger and the dropdowns of the steps the catalog has operations for (none without
    generated records)."""
    steps = [step for step in picker.STEPS if picker.offered(catalog, step)]
    triggers = {DROPDOWN_KEYS[step]: dropdown_trigger(step, server_url) for step in steps}
    if "poll" in steps:
        triggers[POLL_KEY] = poll_step(server_url, catalog)
    return triggers


def generic_creates(server_url, catalog):
    return {RUN_KEY: run_step(server_url, catalog)} if picker.offered(catalog, "run") else {}
