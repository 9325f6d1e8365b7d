"""No personal data or secrets in logs at any level, and files only their owner can read.

End to end: the service under the Procfile's gunicorn and the hook worker, both at
LOG_LEVEL=DEBUG, serve a contact search by email and by phone, a create with a name, an email
and a phone, a read by id, and a REST hook that delivers to a target whose path is secret. Their
logs hold none of those values, nor the token.
"""

import json
import os
import stat
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from ghl.client import loggable_path
from server.config import Settings
from server.secrets import dev_key_path, load_secret_key
from storage.sqlite import SqliteConnections
from tests.conftest import LOCATION, ROOT, SANDBOX_TOKEN, GunicornService, free_port

AUTH = {"Authorization": f"Bearer {SANDBOX_TOKEN}", "X-Location-Id": LOCATION}
FIRST, LAST = "Zanzibarina", "Quixotova"
EMAIL = "zanzibarina.quixotova@example.com"
PHONE = "+15557654321"
HOOK_PATH = "/hooks/catch/8675309/s3cr3tCapabilityPath/"


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("path, logged", [
    ("/contacts/search/duplicate", "/contacts/search/duplicate"),
    ("/contacts/ve9EPM428h8vShlRW1KT", "/contacts/*"),
    ("/locations/sandbox-location/customFields", "/locations/sandbox-location/customFields"),
    ("/locations/Ab12cd/customFields/xYzAbC", "/locations/*/customFields/*"),
    ("/calendars/free-slots", "/calendars/free-slots"),
    ("/contacts/ada%40example.com/tags", "/contacts/*/tags"),
    ("/contacts/+15550100001", "/contacts/*"),
    ("/users/AdaLovelace", "/users/*"),
    ("/", "/"),
])
def test_the_ghl_log_line_masks_path_segments_that_are_not_words(path, logged):
    assert loggable_path(path) == logged


def test_the_dev_key_file_is_private_and_an_existing_databases_mode_is_kept(tmp_path):
    settings = Settings(database_path=str(tmp_path / "var" / "db.sqlite3"))
    assert load_secret_key(settings)
    assert mode(dev_key_path(settings)) == 0o600 and mode(tmp_path / "var") == 0o700

    existing = tmp_path / "existing.sqlite3"
    existing.touch(mode=0o644)
    existing.chmod(0o644)
    SqliteConnections(str(existing)).migrate("CREATE TABLE t (x)")
    assert mode(existing) == 0o644  # an operator's choice is left alone


class Receiver:
    """Stands in for hooks.zapier.com: keeps every JSON body POSTed to it."""

    def __init__(self):
        self.bodies = []
        received = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, condition, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(condition(item) for body in self.bodies for item in body):
                return True
            time.sleep(0.1)
        return False


@pytest.fixture
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.server.shutdown()


def test_debug_logs_hold_no_personal_data_and_the_database_is_private(tmp_path, sandbox_reset, receiver):
    database = tmp_path / "var" / "service.sqlite3"
    env = {
        "GHL_BASE_URL": sandbox_reset.url, "DATABASE_PATH": str(database), "SECRET_KEY": "test-secret",
        "LOG_LEVEL": "DEBUG", "HOOK_ALLOW_HTTP": "1", "HOOK_TARGET_HOSTS": "127.0.0.1",
        "HOOK_POLL_SECONDS": "5", "HOOK_TICK_SECONDS": "0.2",
    }
    service_log, worker_log = tmp_path / "service.log", tmp_path / "worker.log"
    service = GunicornService(env, workers=2, log_path=service_log).start()
    with open(worker_log, "ab") as log:
        worker = subprocess.Popen([sys.executable, "-m", "triggers.hooks_worker"], cwd=ROOT,
                                  env={**os.environ, **env}, stdout=log, stderr=log)
    try:
        hook = requests.post(f"{service.url}/hooks", headers=AUTH, timeout=30, json={
            "trigger": "list_contacts_deprecated", "target_url": receiver.url + HOOK_PATH, "inputs": {}})
        assert hook.status_code == 201, hook.text
        created = requests.post(f"{service.url}/actions/create_contact", headers=AUTH, timeout=30, json={
            "firstName": FIRST, "lastName": LAST, "email": EMAIL, "phone": PHONE})
        assert created.status_code == 200, created.text
        contact_id = created.json()["id"]
        for search in ({"email": EMAIL}, {"phone": PHONE}):
            found = requests.post(f"{service.url}/actions/find_contact", headers=AUTH, json=search, timeout=30)
            assert [c["id"] for c in found.json()] == [contact_id], (search, found.text)
        read = requests.post(f"{service.url}/triggers/get_contact", headers=AUTH, json={"contactId": contact_id},
                             timeout=30)
        assert read.status_code == 200 and read.json()[0]["ghl_id"] == contact_id
        assert receiver.wait_for(lambda item: item.get("ghl_id") == contact_id, timeout=20), receiver.bodies

        assert mode(database.parent) == 0o700
        for suffix in ("", "-wal", "-shm"):
            assert mode(f"{database}{suffix}") == 0o600, suffix
    finally:
        worker.terminate()
        worker.wait(10)
        service.stop()

    logs = service_log.read_text() + worker_log.read_text()
    assert "ghl GET /contacts/search/duplicate -> 200" in logs and "ghl GET /contacts/* -> 200" in logs
    assert "delivered 1 items" in logs
    for secret in (FIRST, LAST, EMAIL, "%40example", PHONE[2:], contact_id, SANDBOX_TOKEN, "8675309",
                   "s3cr3tCapabilityPath"):
        assert secret.lower() not in logs.lower(), secret
