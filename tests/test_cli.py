"""The terminal way in: one trigger or action, run as a user would from a shell."""

import json
import os
import subprocess
import sys

from tests.conftest import LOCATION, ROOT, SANDBOX_TOKEN


def run_cli(sandbox, tmp_path, *args, token=SANDBOX_TOKEN):
    env = {**os.environ, "GHL_BASE_URL": sandbox.url, "DATABASE_PATH": str(tmp_path / "cli.sqlite3"),
           "SECRET_KEY": "test-secret", "GHL_TOKEN": token}
    return subprocess.run([sys.executable, "-m", "server.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


def test_action_then_trigger_from_the_terminal(sandbox_reset, tmp_path):
    created = run_cli(sandbox_reset, tmp_path, "action", "create_contact", f"locationId={LOCATION}",
                      "email=cli@example.com", 'tags=["cli"]')
    assert created.returncode == 0, created.stderr
    contact = json.loads(created.stdout)
    assert contact["email"] == "cli@example.com" and contact["tags"] == ["cli"]
    sample = run_cli(sandbox_reset, tmp_path, "trigger", "get_contact", f"contactId={contact['id']}")
    assert sample.returncode == 0 and json.loads(sample.stdout)[0]["ghl_id"] == contact["id"]
    live = [run_cli(sandbox_reset, tmp_path, "trigger", "list_contacts_deprecated", "--live",
                    "--location", LOCATION) for _ in range(2)]
    assert contact["id"] in {item["ghl_id"] for item in json.loads(live[0].stdout)}
    # The second live poll has nothing new: only repeats of what the first answered.
    assert {item["id"] for item in json.loads(live[1].stdout)} <= {item["id"] for item in json.loads(live[0].stdout)}


def test_bad_input_and_ghl_errors_are_reported_without_the_token(sandbox_reset, tmp_path):
    invalid = run_cli(sandbox_reset, tmp_path, "action", "create_contact", "dnd=maybe")
    assert invalid.returncode == 1 and "invalid_input" in invalid.stderr
    rejected = run_cli(sandbox_reset, tmp_path, "trigger", "get_contact", "contactId=x", token="secret-cli-token")
    assert rejected.returncode == 1 and "ghl_unauthorized" in rejected.stderr
    assert "secret-cli-token" not in rejected.stderr + rejected.stdout
    unknown = run_cli(sandbox_reset, tmp_path, "trigger", "nope")
    assert unknown.returncode == 2 and "server.cli list" in unknown.stderr
