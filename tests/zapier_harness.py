"""Zapier's own runtime and the live service, for the tests of the generated Zapier app.

Zapier's runtime is zapier-platform-core's ``createAppTester`` (the harness Zapier's CLI tests
use), driven from here through ``tests/zapier/run_app_tester.js``: each test writes a scenario
(steps naming a function or shorthand request of the generated app, with their bundles), node
runs it with ``NODE_ENV=test`` (so Zapier's result checks throw), and the results come back as
JSON. Node and npm come from the machine; the first run installs the pinned packages of
``tests/zapier/package.json`` into ``tests/zapier/node_modules`` (git-ignored).

``tests/conftest.py`` makes the fixtures ``zapier_runtime``, ``service`` and ``app_dir`` available to every test module.
"""

import json
import os
import shutil
import subprocess
import sys
import threading
import time

import pytest
from werkzeug.serving import make_server

from server.app import create_app
from tests.conftest import LOCATION, ROOT, SANDBOX_TOKEN

HARNESS = ROOT / "tests" / "zapier"
NODE_MODULES = HARNESS / "node_modules"
AUTH_DATA = {"token": SANDBOX_TOKEN, "locationId": LOCATION}


# ----------------------------------------------------------------------------- Zapier's runtime


def _installed(package):
    try:
        return json.loads((NODE_MODULES / package / "package.json").read_text())["version"]
    except (OSError, ValueError, KeyError):
        return None


class ZapierRuntime:
    """Zapier's npm packages, run with the machine's node."""

    def __init__(self, node):
        self.node = node
        self.env = {**os.environ, "NODE_ENV": "test", "NODE_PATH": str(NODE_MODULES)}

    def _node(self, args, stdin=None):
        done = subprocess.run([self.node, *args], input=stdin, capture_output=True, text=True, cwd=HARNESS,
                              env=self.env, timeout=60)
        assert done.returncode == 0, f"node {' '.join(args)} failed:\n{done.stderr}"
        return done.stdout

    def validate(self, app_dir):
        return json.loads(self._node([str(HARNESS / "validate.js"), str(app_dir)]))

    def run(self, app_dir, steps, tmp_path, bundle=None):
        """Run ``steps`` with createAppTester; returns ``{step name: result}`` (``ok``, ``result`` or ``error``)."""
        results_file = tmp_path / f"results-{time.monotonic_ns()}.json"
        scenario = {"bundle": {"authData": AUTH_DATA, **(bundle or {})}, "steps": steps}
        self._node([str(HARNESS / "run_app_tester.js"), str(app_dir), str(results_file)], json.dumps(scenario))
        return {result["name"]: result for result in json.loads(results_file.read_text())}


@pytest.fixture(scope="session")
def zapier_runtime():
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        pytest.fail("The Zapier app tests run Zapier's own packages: install Node.js (20+) and npm.")
    wanted = json.loads((HARNESS / "package.json").read_text())["dependencies"]
    if any(_installed(package) != version for package, version in wanted.items()):
        done = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--loglevel=error"], cwd=HARNESS,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"npm install in {HARNESS} failed:\n{done.stdout}\n{done.stderr}"
    return ZapierRuntime(node)


# ----------------------------------------------------------------------------- the live service


class ThreadedService:
    """The service (the app factory) on a loopback port, served from a thread of this process.
    ``received`` lists the Zapier-specific headers of every request, as the service saw them."""

    HEADERS = ("X-Subscriber-Id", "X-Poll-Mode", "X-Location-Id")

    def __init__(self, app):
        self.app = app
        self.received = []

        def recording(environ, start_response):
            headers = {name: environ.get("HTTP_" + name.upper().replace("-", "_")) for name in self.HEADERS}
            self.received.append({"path": environ.get("PATH_INFO"), **headers})
            return app(environ, start_response)

        self.server = make_server("127.0.0.1", 0, recording, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def service(sandbox, tmp_path_factory):
    """One GHL try per call (a 429 comes straight back), no shared reads, hooks allowed to
    deliver to loopback over http, and hook subscriptions due for a poll one second after the last."""
    folder = tmp_path_factory.mktemp("zapier-service")
    app = create_app({
        "ghl_base_url": sandbox.url,
        "using_sandbox": True,
        "database_path": str(folder / "service.sqlite3"),
        "secret_key": "test-secret",
        "connector_key": "",
        "log_level": "WARNING",
        "ghl_max_tries": 1,
        "poll_share_seconds": 0,
        "hook_target_hosts": ("127.0.0.1",),
        "hook_allow_http": True,
        "hook_poll_seconds": 1,
    })
    running = ThreadedService(app)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def app_dir(service, tmp_path_factory):
    """The app as ``python -m zapier_app`` writes it, for the live service's URL."""
    folder = tmp_path_factory.mktemp("zapier-app")
    done = subprocess.run(
        [sys.executable, "-m", "zapier_app", "--server-url", service.url, "--out", str(folder),
         "--no-connector-key-required"],
        cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return folder


def trigger(key):
    return f"triggers.{key}.operation.perform"
