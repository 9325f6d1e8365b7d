"""GHL behaviours of appointments, inbound messages and tasks, where they differ from the generic handlers.

``SPECIAL_CASES`` maps (method, path shape) to a handler, as in ``sandbox.ghl_behaviours``,
which merges it into the sandbox's table.
"""

SPECIAL_CASES = {}
