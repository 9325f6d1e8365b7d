"""The sandbox GHL: a local, stateful simulator of the GoHighLevel API v2.

    from sandbox import serve_sandbox
    with serve_sandbox(burst_limit=5) as sandbox:
        requests.get(sandbox.url + "/contacts/", params={"locationId": "sandbox-location"},
                     headers={"Authorization": "Bearer sandbox-token", "Version": "2021-07-28"})

``python -m sandbox`` serves it on a port of your choice.
"""

from sandbox.app import create_sandbox_app
from sandbox.seed import COMPANY_ID, LOCATION_ID
from sandbox.server import SANDBOX_TOKEN, RunningSandbox, serve_sandbox

__all__ = ["create_sandbox_app", "serve_sandbox", "RunningSandbox", "SANDBOX_TOKEN", "LOCATION_ID", "COMPANY_ID"]
