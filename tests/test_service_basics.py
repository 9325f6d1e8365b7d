"""Health, OpenAPI, catalog JSON, errors as JSON, the connector key, configuration."""

import sqlite3
import time
from pathlib import Path

import json
from collections import Counter
from types import SimpleNamespace

import pytest
from gunicorn.http.errors import InvalidHeader, InvalidRequestLine, LimitRequestHeaders, LimitRequestLine

from catalog.registry import load_catalog, snake_key
from server.app import create_app
from server.gunicorn_worker import describe_error, json_error_response
from server.config import REAL_GHL_BASE_URL, load_settings
from server.routes.health import PROBE_EVERY_SECONDS
from tests.ghl_spec import SPEC_DIR


@pytest.fixture
def bare_app(tmp_path):
    return create_app({"database_path": str(tmp_path / "s.sqlite3"), "secret_key": "k"}, environ={})


@pytest.fixture
def keyed_app(tmp_path):
    return create_app({"database_path": str(tmp_path / "s.sqlite3"), "secret_key": "k",
                       "connector_key": "the-connector-key"}, environ={})


def test_healthz_and_openapi(bare_app):
    client = bare_app.test_client()
    assert client.get("/healthz").json == {"status": "ok", "operations": len(load_catalog()), "ghl": "sandbox"}
    spec = client.get("/openapi.json").json
    assert spec["openapi"].startswith("3.") and "/triggers/{key}" in spec["paths"]
    enum = spec["paths"]["/actions/{key}"]["post"]["parameters"][0]["schema"]["enum"]
    assert "create_contact" in enum and "find_contact" in enum and "api_request" in enum


def test_catalog_lists_all_seed_operations_with_counts(bare_app):
    body = bare_app.test_client().get("/catalog").json
    records = list(load_catalog())
    kinds = Counter(record["kind"] for record in records)
    assert body["counts"] == {"operations": len(records), "triggers": kinds["trigger"], "actions": kinds["action"] + kinds["search"],
                              "searches": kinds["search"], "categories": len({r["category"] for r in records})}
    assert len(body["operations"]) == len(records) >= 125
    seed_keys = {snake_key(op["name"]) for op in json.loads((SPEC_DIR.parent / "catalog-seed.json").read_text())}
    assert seed_keys <= {record["key"] for record in body["operations"]}


def test_catalog_filters(bare_app):
    client = bare_app.test_client()
    triggers = client.get("/catalog?kind=trigger").json["operations"]
    assert triggers and all(r["kind"] == "trigger" for r in triggers)
    blogs = client.get("/catalog?category=Blogs").json["operations"]
    assert blogs and all(r["category"] == "Blogs" for r in blogs)
    found = client.get("/catalog?q=/opportunities/").json["operations"]
    assert found and all("/opportunities/" in r["path"] for r in found)
    assert client.get("/catalog?kind=banana").status_code == 400


def test_catalog_record_and_unknown_key(bare_app):
    client = bare_app.test_client()
    record = client.get("/catalog/get_contact").json
    assert record["method"] == "GET" and record["path"] == "/contacts/{contactId}"
    missing = client.get("/catalog/nope")
    assert missing.status_code == 404 and missing.json["error"]["code"] == "unknown_operation"


@pytest.mark.parametrize("method, path, status", [
    ("GET", "/no/such/page", 404),
    ("DELETE", "/catalog", 405),
    ("PUT", "/actions/create_contact", 405),
])
def test_http_errors_are_json(bare_app, method, path, status):
    response = bare_app.test_client().open(path, method=method)
    assert response.status_code == status
    assert response.is_json and set(response.json["error"]) >= {"code", "message"}
    if status == 405:
        assert "GET" in response.headers["Allow"] or "POST" in response.headers["Allow"]


def test_bad_json_body_is_a_400_not_a_500(bare_app):
    response = bare_app.test_client().post("/actions/create_contact", data="{not json",
                                           headers={"Authorization": "Bearer t", "Content-Type": "application/json"})
    assert response.status_code == 400 and response.json["error"]["code"] == "invalid_json"
    listed = bare_app.test_client().post("/actions/create_contact", json=[1, 2], headers={"Authorization": "Bearer t"})
    assert listed.status_code == 400


def test_connector_key_guards_everything_but_the_public_pages(keyed_app):
    client = keyed_app.test_client()
    for public in ("/", "/healthz", "/openapi.json", "/catalog", "/catalog/get_contact"):
        assert client.get(public).status_code == 200, public
    denied = client.post("/triggers/get_contact", json={"contactId": "x"}, headers={"Authorization": "Bearer t"})
    assert denied.status_code == 401 and denied.json["error"]["code"] == "connector_key_required"
    wrong = client.post("/actions/create_contact", json={}, headers={"X-Connector-Key": "nope"})
    assert wrong.status_code == 401
    allowed = client.post("/actions/create_contact", json={},
                          headers={"X-Connector-Key": "the-connector-key", "Authorization": "Bearer t"})
    assert allowed.status_code == 400 and allowed.json["error"]["code"] == "invalid_input"


def test_settings_come_from_the_environment_in_one_place(tmp_path):
    settings = load_settings({"GHL_BASE_URL": REAL_GHL_BASE_URL + "/", "DATABASE_PATH": str(tmp_path / "x.db"),
                              "CONNECTOR_KEY": "ck", "PORT": "9000", "LOG_LEVEL": "debug"})
    assert settings.ghl_base_url == REAL_GHL_BASE_URL and not settings.using_sandbox
    assert (settings.database_path, settings.connector_key, settings.port, settings.log_level) == (
        str(tmp_path / "x.db"), "ck", 9000, "DEBUG")
    assert load_settings({}).using_sandbox


def _probed_at(path):
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT probed_at FROM health_probe").fetchone()[0]


def test_healthz_writes_to_the_database_at_most_once_a_second(bare_app, tmp_path):
    client = bare_app.test_client()
    assert client.get("/healthz").status_code == 200
    first = _probed_at(tmp_path / "s.sqlite3")
    for _ in range(5):
        assert client.get("/healthz").status_code == 200
    assert _probed_at(tmp_path / "s.sqlite3") == first
    time.sleep(PROBE_EVERY_SECONDS + 0.05)
    assert client.get("/healthz").status_code == 200
    assert _probed_at(tmp_path / "s.sqlite3") > first


def test_healthz_answers_503_while_the_database_cannot_be_written(bare_app, tmp_path):
    client = bare_app.test_client()
    assert client.get("/healthz").status_code == 200
    database = tmp_path / "s.sqlite3"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    database.mkdir()  # SQLite cannot open the database path any more
    time.sleep(PROBE_EVERY_SECONDS + 0.05)
    failing = client.get("/healthz")
    assert failing.status_code == 503 and failing.json["error"]["code"] == "storage_unavailable"
    assert int(failing.headers["Retry-After"]) > 0
    database.rmdir()
    time.sleep(PROBE_EVERY_SECONDS + 0.05)
    assert client.get("/healthz").json["status"] == "ok"


@pytest.mark.parametrize("error, status, code", [
    (LimitRequestLine(9000, 8190), 414, "request_line_too_long"),
    (LimitRequestHeaders("more than 100 headers"), 431, "headers_too_large"),
    (InvalidRequestLine("GET /contacts?token=secret-token"), 400, "malformed_request"),
    (InvalidHeader("X-Token: secret-token"), 400, "malformed_request"),
    (RuntimeError("secret-token"), 500, "internal_error"),
])
def test_gunicorns_error_pages_are_json_and_never_repeat_the_request(error, status, code):
    cfg = SimpleNamespace(limit_request_line=8190, limit_request_fields=100, limit_request_field_size=8190)
    raw = json_error_response(*describe_error(error, cfg))
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(f"HTTP/1.1 {status} ".encode()) and b"\r\nContent-Type: application/json" in head
    assert f"Content-Length: {len(body)}".encode() in head and b"Connection: close" in head
    assert json.loads(body)["error"]["code"] == code and b"secret-token" not in raw
