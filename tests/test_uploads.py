"""Uploads: a ``file`` input's URL is fetched by the service and sent to GHL as multipart/form-data.

Files are served on loopback by tests.test_file_fetch.FileServer, so the service runs with the
FILE_FETCH_ALLOW_LOOPBACK setting. What GHL receives is checked twice: byte for byte by a GHL
stand-in that parses the form (``FormRecorder``), and by the sandbox GHL with its spec check.
"""

import hashlib
import io
import re
import threading

import pytest
import requests
import responses
from flask import Flask, jsonify, request
from werkzeug.formparser import parse_form_data
from werkzeug.serving import make_server

from actions.execute import fetch_file_inputs
from catalog.inputs import InvalidInput, validate_inputs
from catalog.registry import load_catalog
from ghl.client import GhlClient
from ghl.errors import GhlError
from ghl.file_fetch import FetchedFile, FileFetcher
from ghl.request_builder import build_request
from server.app import create_app
from server.config import load_settings
from tests.conftest import LOCATION, SANDBOX_TOKEN, GunicornService
from tests.test_file_fetch import FileServer, send

CATALOG = load_catalog()
UPLOADS = [r for r in CATALOG.of_kind("action", "search") if r.get("body_format") == "multipart"]
PDF = b"%PDF-1.4\n" + bytes(range(256)) * 40 + b"\n%%EOF\n"
AUTH = {"Authorization": f"Bearer {SANDBOX_TOKEN}", "X-Location-Id": LOCATION}


def sha(data):
    return hashlib.sha256(data).hexdigest()


# ------------------------------------------------------------------------------ servers


class FormRecorder:
    """A GHL stand-in on loopback that records each request's multipart form (text fields, and
    each file part's name, filename, type, size and sha256) and answers from ``answers`` (a list
    of (status, body, headers) used up in order; then 201 with a media-like body)."""

    def __init__(self):
        self.received = []
        self.answers = []
        app = Flask("form-recorder")

        @app.route("/<path:path>", methods=["POST", "PUT", "PATCH"])
        def record(path):
            files = {}
            for name, storage in request.files.items(multi=True):
                data = storage.read()
                files.setdefault(name, []).append({"filename": storage.filename, "content_type": storage.mimetype,
                                                   "size": len(data), "sha256": sha(data)})
            self.received.append({
                "path": "/" + path, "query": request.args.to_dict(flat=False), "form": request.form.to_dict(flat=False),
                "files": files, "content_type": request.mimetype, "version": request.headers.get("Version"),
                "authorization": request.headers.get("Authorization"), "body_sha256": sha(request.get_data()),
            })
            if self.answers:
                status, body, headers = self.answers.pop(0)
                return jsonify(body), status, headers
            return jsonify({"fileId": "recorded-1", "url": "https://storage.example.com/recorded-1"}), 201

        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def files():
    server = FileServer({"/docs/Quarterly%20Report.pdf": send(PDF, "application/pdf"),
                         "/posts.csv": send(b"text,date\nHello,2024-05-01\n", "text/csv")})
    yield server
    server.stop()


@pytest.fixture
def recorder():
    running = FormRecorder()
    yield running
    running.stop()


def service(tmp_path, ghl_url, **settings):
    app = create_app({"ghl_base_url": ghl_url, "using_sandbox": True, "secret_key": "test-secret",
                      "database_path": str(tmp_path / "service.sqlite3"), "file_fetch_allow_loopback": True,
                      **settings})
    return app.test_client()


# ------------------------------------------------------------------------------ inputs


def sample_inputs(record, file_url):
    """Valid inputs for an upload record: the file URL, a part-naming id, plain text otherwise."""
    inputs = {}
    for field in record["inputs"]:
        if field.get("location"):
            continue  # filled from X-Location-Id
        if field["type"] == "file":
            inputs[field["key"]] = file_url
        elif field["in"] == "part_name":
            inputs[field["key"]] = "cf-field-9"
        elif field["type"] == "boolean":
            inputs[field["key"]] = False
        else:
            inputs[field["key"]] = f"v-{field['key']}"
    return inputs


def expected_form(record, inputs):
    """(text fields, {file input key: part name pattern}), written out from the record."""
    texts, parts = {}, {}
    for field in record["inputs"]:
        value = inputs.get(field["key"], LOCATION if field.get("location") else None)
        if field["in"] != "body" or value is None:
            continue
        name = field.get("field", field["key"])
        if field["type"] == "file":
            pattern = re.escape(name).replace(re.escape("{file_id}"), "[0-9a-f]{32}")
            for slot in re.findall(r"{([^}]+)}", name):
                pattern = pattern.replace(re.escape("{" + slot + "}"), re.escape(str(inputs.get(slot, ""))))
            parts[field["key"]] = pattern
        else:
            texts[name] = ["true" if value is True else "false" if value is False else str(value)]
    return texts, parts


def test_the_five_upload_records_are_in_the_catalog():
    assert {(r["method"], r["path"]) for r in UPLOADS} == {
        ("POST", "/conversations/messages/upload"), ("POST", "/forms/upload-custom-files"),
        ("POST", "/locations/{locationId}/customFields/upload"), ("POST", "/medias/upload-file"),
        ("POST", "/social-media-posting/{locationId}/csv")}


FILE_RECORD = {"key": "upload", "inputs": [{"key": "file", "type": "file", "in": "body", "field": "file"}]}


@pytest.mark.parametrize("url", ["https://files.example.com/a.pdf", "  https://x.example/a?sig=1  ",
                                 "http://127.0.0.1:8123/a.csv", "http://localhost/a.csv", "http://[::1]:9/a"])
def test_a_file_input_takes_an_https_url_or_a_loopback_http_one(url):
    assert validate_inputs(FILE_RECORD, {"file": url}) == {"file": url.strip()}


@pytest.mark.parametrize("value, problem", [
    ("http://files.example.com/a.pdf", "https:// URL"),
    ("ftp://files.example.com/a.pdf", "https:// URL"),
    ("files.example.com/a.pdf", "https:// URL"),
    ("https://", "https:// URL"),
    ("https://x.example/a b.pdf", "without spaces"),
    ("https://x.example:port/a.pdf", "https:// URL"),
    ("https://x.example/" + "a" * 2100, "at most 2,048 characters"),
    (42, "https:// URL"),
    ({"url": "https://x.example/a"}, "https:// URL"),
])
def test_a_file_input_that_is_not_an_https_url_is_refused_naming_it(value, problem):
    with pytest.raises(InvalidInput) as refused:
        validate_inputs(FILE_RECORD, {"file": value})
    assert list(refused.value.fields) == ["file"] and problem in refused.value.fields["file"]


# ------------------------------------------------------------------------------ the request


MEDIA = next((r for r in UPLOADS if r["path"] == "/medias/upload-file"), None)
FORMS = next((r for r in UPLOADS if r["path"] == "/forms/upload-custom-files"), None)
FETCHED = FetchedFile("Quarterly Report.pdf", "application/pdf", PDF)


def test_an_upload_request_is_a_form_of_text_fields_and_file_parts():
    record = {"method": "POST", "path": "/medias/upload-file", "version": "2021-07-28", "body_format": "multipart",
              "inputs": [{"key": "file", "type": "file", "in": "body", "field": "file"},
                         {"key": "hosted", "type": "boolean", "in": "body"},
                         {"key": "size", "type": "integer", "in": "body"},
                         {"key": "meta", "type": "json", "in": "body"},
                         {"key": "tags", "type": "string", "in": "body", "list": True},
                         {"key": "altId", "type": "string", "in": "query"}]}
    built = build_request(record, {"file": FETCHED, "hosted": False, "size": 3, "meta": {"a": [1, "é"]},
                                   "tags": ["x", "y"], "altId": "loc"})
    assert built.body is None and built.query == {"altId": "loc"}
    assert built.form == {"hosted": "false", "size": "3", "meta": '{"a":[1,"é"]}', "tags": '["x","y"]'}
    assert built.multipart == [("hosted", "false"), ("size", "3"), ("meta", '{"a":[1,"é"]}'), ("tags", '["x","y"]'),
                               ("file", ("Quarterly Report.pdf", PDF, "application/pdf"))]


@pytest.mark.skipif(FORMS is None, reason="the forms upload record is not in the catalog")
def test_a_part_name_is_built_from_its_input_and_a_fresh_id_per_file():
    inputs = {"contactId": "c1", "locationId": "loc", "customFieldId": "cf9", "file": FETCHED}
    names = [build_request(FORMS, inputs).files[0][0] for _ in range(2)]
    assert all(re.fullmatch(r"cf9_[0-9a-f]{32}", name) for name in names) and names[0] != names[1]
    assert "customFieldId" not in build_request(FORMS, inputs).form


def test_a_file_input_must_be_fetched_before_the_request_is_built():
    record = {"method": "POST", "path": "/x", "body_format": "multipart",
              "inputs": [{"key": "file", "type": "file", "in": "body"}]}
    with pytest.raises(ValueError, match="fetched"):
        build_request(record, {"file": "https://files.example.com/a.pdf"})


def test_the_files_of_one_request_share_the_size_limit(files):
    record = {"inputs": [{"key": "a", "type": "file", "in": "body"}, {"key": "b", "type": "file", "in": "body"},
                         {"key": "note", "type": "string", "in": "body"}]}
    url = files.url("/docs/Quarterly%20Report.pdf")
    fetcher = FileFetcher(allow_loopback=True, max_bytes=len(PDF) * 2)
    fetched = fetch_file_inputs(fetcher, record, {"a": url, "b": url, "note": "n"})
    assert fetched["a"].content == PDF and fetched["b"].content == PDF and fetched["note"] == "n"
    with pytest.raises(InvalidInput) as refused:
        fetch_file_inputs(FileFetcher(allow_loopback=True, max_bytes=len(PDF) + 10), record, {"a": url, "b": url})
    assert list(refused.value.fields) == ["b"] and "larger than" in refused.value.fields["b"]


# ------------------------------------------------------------------------------ the client (responses)


GHL = "https://services.example.test"
PARTS = [("name", "Report"), ("file", ("Quarterly Report.pdf", PDF, "application/pdf"))]


def parse_form(prepared):
    """(text fields, {part name: (filename, content type, bytes)}) of a multipart request sent through ``responses``."""
    environ = {"REQUEST_METHOD": "POST", "CONTENT_TYPE": prepared.headers["Content-Type"],
               "CONTENT_LENGTH": str(len(prepared.body)), "wsgi.input": io.BytesIO(prepared.body)}
    _, form, found = parse_form_data(environ)
    return form.to_dict(), {name: (f.filename, f.mimetype, f.read()) for name, f in found.items()}


@responses.activate
def test_the_client_sends_multipart_with_the_version_and_the_token():
    responses.post(f"{GHL}/medias/upload-file", json={"fileId": "f1"}, status=201)
    client = GhlClient(GHL, max_tries=1)
    answer = client.request("POST", "/medias/upload-file", "tok-1", version="2021-07-28", multipart=PARTS)
    assert answer.body == {"fileId": "f1"}
    sent = responses.calls[0].request
    assert sent.headers["Version"] == "2021-07-28" and sent.headers["Authorization"] == "Bearer tok-1"
    assert sent.headers["Content-Type"].startswith("multipart/form-data; boundary=")
    assert parse_form(sent) == ({"name": "Report"}, {"file": ("Quarterly Report.pdf", "application/pdf", PDF)})


@responses.activate
def test_a_retried_upload_sends_the_same_bytes(monkeypatch):
    monkeypatch.setattr("ghl.client.time.sleep", lambda seconds: None)
    responses.post(f"{GHL}/medias/upload-file", json={"message": "slow down"}, status=429,
                   headers={"Retry-After": "0"})
    responses.post(f"{GHL}/medias/upload-file", json={"fileId": "f1"}, status=201)
    GhlClient(GHL, max_tries=3).request("POST", "/medias/upload-file", "tok", version="2021-07-28", multipart=PARTS)
    first, second = (call.request for call in responses.calls)
    assert len(responses.calls) == 2
    assert first.body == second.body and first.headers["Content-Type"] == second.headers["Content-Type"]
    assert parse_form(second)[1]["file"][2] == PDF


@responses.activate
@pytest.mark.parametrize("spent_seconds, calls", [(0.0, 2), (4.5, 1)])
def test_time_spent_fetching_counts_in_the_call_budget(monkeypatch, spent_seconds, calls):
    monkeypatch.setattr("ghl.client.time.sleep", lambda seconds: None)
    responses.post(f"{GHL}/medias/upload-file", json={"message": "slow down"}, status=429,
                   headers={"Retry-After": "1"})
    responses.post(f"{GHL}/medias/upload-file", json={"fileId": "f1"}, status=201)
    client = GhlClient(GHL, max_tries=3, max_seconds=5.0)
    try:
        client.request("POST", "/medias/upload-file", "tok", multipart=PARTS, spent_seconds=spent_seconds)
    except GhlError as error:
        assert error.status == 429
    assert len(responses.calls) == calls


def test_the_fetch_settings_come_from_the_environment():
    fetcher = FileFetcher.from_settings(load_settings({
        "FILE_FETCH_MAX_BYTES": "4096", "FILE_FETCH_TOTAL_SECONDS": "3.5", "FILE_FETCH_ALLOW_LOOPBACK": "1"}))
    assert (fetcher.max_bytes, fetcher.total_seconds, fetcher.allow_loopback) == (4096, 3.5, True)
    default = FileFetcher.from_settings(load_settings({}))
    assert default.allow_loopback is False and default.max_bytes == 25 * 1024 * 1024


@responses.activate
def test_an_upload_is_not_repeated_after_a_5xx():
    responses.post(f"{GHL}/medias/upload-file", json={"message": "boom"}, status=502)
    with pytest.raises(GhlError) as failed:
        GhlClient(GHL, max_tries=3).request("POST", "/medias/upload-file", "tok", multipart=PARTS)
    assert failed.value.code == "outcome_unknown" and len(responses.calls) == 1


# ------------------------------------------------------------------------------ through the service


@pytest.mark.parametrize("record", UPLOADS, ids=[r["key"] for r in UPLOADS])
def test_every_upload_sends_the_fetched_bytes_and_the_other_inputs_as_a_form(record, tmp_path, files, recorder):
    inputs = sample_inputs(record, files.url("/docs/Quarterly%20Report.pdf?X-Amz-Signature=abc"))
    answer = service(tmp_path, recorder.url).post(f"/actions/{record['key']}", json=inputs, headers=AUTH)
    assert answer.status_code == 200, answer.json
    assert [r["path"] for r in recorder.received] == [record["path"].replace("{locationId}", LOCATION)]
    got = recorder.received[0]
    texts, parts = expected_form(record, inputs)
    assert got["content_type"] == "multipart/form-data" and got["version"] == record["version"]
    assert got["authorization"] == f"Bearer {SANDBOX_TOKEN}"
    assert got["form"] == texts
    assert len(got["files"]) == len(parts)
    for key, pattern in parts.items():
        matching = [part for name, found in got["files"].items() if re.fullmatch(pattern, name) for part in found]
        assert matching == [{"filename": "Quarterly Report.pdf", "content_type": "application/pdf", "size": len(PDF),
                             "sha256": sha(PDF)}], (key, got["files"])


@pytest.mark.skipif(MEDIA is None, reason="the media upload record is not in the catalog")
def test_a_retried_upload_through_the_service_resends_the_same_bytes(tmp_path, files, recorder, monkeypatch):
    monkeypatch.setattr("ghl.client.time.sleep", lambda seconds: None)
    recorder.answers = [(429, {"message": "Too many requests"}, {"Retry-After": "0"})]
    answer = service(tmp_path, recorder.url).post("/actions/upload_media_file", headers=AUTH, json={
        "file": files.url("/docs/Quarterly%20Report.pdf"), "name": "Q1"})
    assert answer.status_code == 200, answer.json
    assert answer.json["id"] == "recorded-1"
    first, second = recorder.received
    assert first["body_sha256"] == second["body_sha256"]
    assert second["files"]["file"][0]["sha256"] == sha(PDF) and second["form"] == {"name": ["Q1"]}


@pytest.mark.skipif(MEDIA is None, reason="the media upload record is not in the catalog")
@pytest.mark.parametrize("url, problem", [
    ("https://10.0.0.7/secret.pdf", "private or local network address"),
    ("https://169.254.169.254/latest/meta-data/", "private or local network address"),
    ("{files}/missing.pdf", "404 (not found)"),
    ("{files}/docs/Quarterly%20Report.pdf", "larger than"),
    ("http://files.example.com/a.pdf", "https:// URL"),
])
def test_a_file_that_cannot_be_fetched_is_a_400_naming_the_input_and_ghl_is_not_called(
        tmp_path, files, recorder, url, problem):
    client = service(tmp_path, recorder.url, file_fetch_max_bytes=1024)
    answer = client.post("/actions/upload_media_file", headers=AUTH, json={
        "file": url.replace("{files}", files.url("").rstrip("/")), "name": "x"})
    assert answer.status_code == 400
    error = answer.json["error"]
    assert error["code"] == "invalid_input" and list(error["fields"]) == ["file"] and problem in error["fields"]["file"]
    assert recorder.received == []


def test_without_the_loopback_setting_a_local_file_is_refused(tmp_path, files, recorder):
    client = service(tmp_path, recorder.url, file_fetch_allow_loopback=False)
    answer = client.post(f"/actions/{UPLOADS[0]['key']}", headers=AUTH,
                         json=sample_inputs(UPLOADS[0], files.url("/posts.csv")))
    assert answer.status_code == 400 and "https://" in answer.json["error"]["fields"]["file"]
    assert files.seen == [] and recorder.received == []


# ------------------------------------------------------------------------------ against the sandbox


def sandbox_log(sandbox):
    return requests.get(f"{sandbox.url}/_sandbox/requests", timeout=5).json()["requests"]


@pytest.mark.parametrize("record", UPLOADS, ids=[r["key"] for r in UPLOADS])
def test_every_upload_is_accepted_by_the_sandbox_within_the_spec(record, tmp_path, files, sandbox_reset):
    requests.delete(f"{sandbox_reset.url}/_sandbox/violations", timeout=5)
    inputs = sample_inputs(record, files.url("/posts.csv"))
    answer = service(tmp_path, sandbox_reset.url).post(f"/actions/{record['key']}", json=inputs, headers=AUTH)
    log = [r for r in sandbox_log(sandbox_reset) if r["method"] == "POST"]
    assert len(log) == 1 and log[0]["path"] == record["path"].replace("{locationId}", LOCATION)
    assert log[0]["version"] == record["version"] and log[0]["auth"] is True and log[0]["json"] is None
    assert log[0]["content_type"] == "multipart/form-data"
    assert answer.status_code == 200, answer.json
    violations = requests.get(f"{sandbox_reset.url}/_sandbox/violations", timeout=5).json()
    assert violations["violations"] == []
    texts, parts = expected_form(record, inputs)
    assert log[0]["form"] == texts
    csv = b"text,date\nHello,2024-05-01\n"
    for key, pattern in parts.items():
        matching = [p for name, found in log[0]["files"].items() if re.fullmatch(pattern, name) for p in found]
        assert [(p["filename"], p["size"], p["sha256"]) for p in matching] == [("posts.csv", len(csv), sha(csv))]


@pytest.mark.skipif(MEDIA is None, reason="the media upload record is not in the catalog")
def test_an_upload_through_gunicorn_with_the_setting_from_the_environment(tmp_path, files, sandbox_reset):
    running = GunicornService({"GHL_BASE_URL": sandbox_reset.url, "DATABASE_PATH": str(tmp_path / "s.sqlite3"),
                               "SECRET_KEY": "test-secret", "LOG_LEVEL": "WARNING", "FILE_FETCH_ALLOW_LOOPBACK": "1"},
                              workers=1, log_path=tmp_path / "gunicorn.log").start()
    try:
        answer = requests.post(f"{running.url}/actions/upload_media_file", headers=AUTH, timeout=30, json={
            "file": files.url("/docs/Quarterly%20Report.pdf"), "name": "Q1"})
    finally:
        running.stop()
    assert answer.status_code == 200, answer.text
    assert answer.json()["id"]
    log = [r for r in sandbox_log(sandbox_reset) if r["path"] == "/medias/upload-file"]
    assert len(log) == 1 and log[0]["json"] is None
    assert [s["path"] for s in files.seen] == ["/docs/Quarterly%20Report.pdf"]
    assert log[0]["files"]["file"][0]["sha256"] == sha(PDF)
