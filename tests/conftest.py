"""Shared fixtures: a real sandbox GHL on loopback, and the service under gunicorn or in-process."""

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
import requests

from bench.harness import Receiver, free_port, procfile_web_command, wait_until_up
from server.app import create_app

ROOT = Path(__file__).resolve().parent.parent
SANDBOX_TOKEN = "sandbox-token"
LOCATION = "sandbox-location"


def wait_for(condition, timeout, what):
    """``condition()``'s first truthy value, checked every 0.05 s; AssertionError after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class GunicornService:
    """The service as the Procfile runs it: gunicorn on the app factory, on a loopback port."""

    def __init__(self, env, workers=4, log_path=None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, **env}
        self.workers = workers
        self.log_path = log_path
        self.process = None

    def start(self):
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        # Exactly the Procfile's web: line (gevent workers), bound to loopback.
        argv = procfile_web_command(self.port, workers=self.workers) + ["--graceful-timeout", "5"]
        self.process = subprocess.Popen(argv, cwd=ROOT, env=self.env, stdout=log, stderr=log,
                                        start_new_session=True)
        wait_until_up(self.url + "/healthz", self.process)
        return self

    def stop(self):
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()

    def restart(self):
        self.stop()
        return self.start()


def pytest_configure(config):
    config.addinivalue_line("markers", "spec_violations_expected: the test sends GHL requests that break "
                            "GHL's spec on purpose, so the suite's spec check leaves it alone")


@pytest.fixture(autouse=True)
def no_spec_violations(request):
    """Every request a sandbox in this process receives during a test must fit GHL's specs
    (``sandbox.spec_validator``): a test whose requests break them fails, unless it is marked
    ``spec_violations_expected``."""
    from sandbox.spec_validator import take_violations
    take_violations()  # what module fixtures or earlier tests left
    yield
    found = take_violations()
    if found and not request.node.get_closest_marker("spec_violations_expected"):
        pytest.fail("requests broke GHL's spec:\n" + "\n".join(
            f"{v['method']} {v['path']}: {problem}" for v in found for problem in v["violations"]), pytrace=False)


@pytest.fixture(scope="session")
def postgres_server():
    """A real PostgreSQL server (Debian's binaries, a temporary directory, loopback), shared by
    the session and deleted after it; ``dsn`` connects to it."""
    from bench.postgres_server import PostgresServer
    with PostgresServer() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgres"])
def backend_settings(request, tmp_path):
    """Settings of a fresh, empty store on each backend: a SQLite file, or a new database on
    the session's PostgreSQL server. Tests of the store contract run once per backend."""
    from server.config import load_settings
    overrides = {"database_path": str(tmp_path / "store.sqlite3")}
    if request.param == "postgres":
        overrides["database_url"] = request.getfixturevalue("postgres_server").fresh_database()
    return load_settings({}).with_overrides(overrides)


@pytest.fixture
def backend(backend_settings):
    """An opened store (``storage.backend.open_backend``) on each backend; closed after the test."""
    from storage.backend import open_backend
    opened = open_backend(backend_settings)
    yield opened
    opened.close()


@pytest.fixture(scope="session")
def sandbox():
    """The sandbox GHL on a loopback port, shared by the session; reset it with ``sandbox_reset``."""
    from sandbox.server import serve_sandbox
    with serve_sandbox(burst_limit=10_000) as running:
        yield running


def operation_requests(sandbox):
    """What the sandbox GHL received since its request log was cleared, without the cached lookups
    (pipelines, custom-field definitions) that name things in the service's answers."""
    log = requests.get(f"{sandbox.url}/_sandbox/requests", timeout=5).json()["requests"]
    found = [r for r in log if not LOOKUP_PATH.match(r["path"])]
    # The location's time zone lookup, unless the operation itself reads the location.
    others = [r for r in found if not (r["method"] == "GET" and LOCATION_LOOKUP.match(r["path"]))]
    return others or found


LOOKUP_PATH = re.compile(r"^/(opportunities/pipelines|locations/[^/]+/customFields)$")
LOCATION_LOOKUP = re.compile(r"^/locations/[^/]+$")


@pytest.fixture(scope="module")
def receiver():
    """A local hook receiver (``bench.harness.Receiver``), started for the test module."""
    running = Receiver().start()
    yield running
    running.stop()


@pytest.fixture(autouse=True)
def fresh_lookup_caches():
    """The in-process caches of custom-field definitions and pipelines start empty in every test,
    so what a test counts of GHL's requests does not depend on the tests before it."""
    from ghl.enrichment import clear_caches
    clear_caches()


@pytest.fixture
def sandbox_reset(sandbox):
    requests.post(sandbox.url + "/_sandbox/reset", timeout=5).raise_for_status()
    return sandbox


@pytest.fixture
def app(tmp_path, sandbox_reset):
    """The service in-process, talking to the real sandbox over loopback."""
    return create_app({
        "ghl_base_url": sandbox_reset.url,
        "using_sandbox": True,
        "database_path": str(tmp_path / "service.sqlite3"),
        "secret_key": "test-secret",
    })


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def auth():
    return {"Authorization": f"Bearer {SANDBOX_TOKEN}", "X-Location-Id": LOCATION}


def store_env(kind, directory, request):
    """Environment selecting a fresh store of ``kind``: a SQLite file in ``directory``, or a new
    database on the session's PostgreSQL server (``DATABASE_URL``)."""
    env = {"DATABASE_PATH": str(directory / "service.sqlite3")}
    if kind == "postgres":
        env["DATABASE_URL"] = request.getfixturevalue("postgres_server").fresh_database()
    return env


@pytest.fixture
def store_kind():
    """The store ``gunicorn_service`` runs on; a module overrides this fixture, parametrized, to
    run its tests on both backends."""
    return "sqlite"


@pytest.fixture
def gunicorn_service(tmp_path, sandbox_reset, store_kind, request):
    """The service under gunicorn with 4 workers against the sandbox; stopped after the test."""
    service = GunicornService({
        "GHL_BASE_URL": sandbox_reset.url,
        **store_env(store_kind, tmp_path, request),
        "SECRET_KEY": "test-secret",
        "LOG_LEVEL": "WARNING",
    }, workers=4, log_path=tmp_path / "gunicorn.log")
    service.start()
    yield service
    service.stop()


# The Zapier app's fixtures (Zapier's runtime, the live service, the exported app), for every test module.
from tests.zapier_harness import app_dir, service, zapier_runtime  # noqa: E402,F401
