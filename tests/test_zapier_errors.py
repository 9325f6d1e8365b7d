"""What a Zap builder sees when something fails, and the functions index.js attaches to the
generated app (dynamic fields, creates and searches sending custom-field inputs, throttling),
run by Zapier's own runtime (``tests/zapier_harness.py``) against the live service and the
sandbox GHL, or against a small fake service where the exact request is what is checked.
"""

import json
import shutil
import threading

import pytest
import requests
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from tests.zapier_harness import AUTH_DATA, trigger

CONTACTS = "search_contacts"
FUNCTION_2 = "$func$2$f$"
# What a readable message must never carry: a URL, a JSON blob, a header, the token.
LEAKS = ("http", "{", "}", "content-type", "retry-after", "authorization", "x-location-id", "request")
# GHL's per-location burst limit (ghl-api-notes B1), as Zapier's app-level throttle.
THROTTLE = {"window": 10, "limit": 100, "key": "{{bundle.authData.locationId}}", "scope": ["account"]}


def assert_readable(message, token=AUTH_DATA["token"]):
    assert message and "\n" not in message and len(message) <= 560, message
    assert token not in message, message
    for leak in LEAKS:
        assert leak not in message.lower(), (leak, message)


def inject_faults(sandbox, faults):
    requests.post(f"{sandbox.url}/_sandbox/faults", json=faults, timeout=5).raise_for_status()


# ----------------------------------------------------------------------------- against the live service


def test_a_revoked_token_asks_the_user_to_reconnect_everywhere(zapier_runtime, app_dir, service, sandbox_reset,
                                                               tmp_path):
    revoked = "revoked-token-1234"
    results = zapier_runtime.run(app_dir, [
        {"name": "test", "path": "authentication.test"},
        {"name": "poll", "path": trigger(CONTACTS), "bundle": {"meta": {"zap": {"id": "zap-401"}}}},
        {"name": "create", "path": "creates.create_contact.operation.perform",
         "bundle": {"inputData": {"email": "revoked@example.com"}}},
        {"name": "search", "path": "searches.find_contact.operation.perform",
         "bundle": {"inputData": {"email": "ada.sample@example.com"}}},
        {"name": "subscribe", "path": f"triggers.{CONTACTS}_instant.operation.performSubscribe",
         "bundle": {"targetUrl": "http://127.0.0.1:9/hooks/standard/1/zap-401/", "inputData": {}}},
    ], tmp_path, bundle={"authData": {**AUTH_DATA, "token": revoked}})
    for name, result in results.items():
        error = result["error"]
        assert error["name"] == "ExpiredAuthError", (name, error)
        assert "reconnect the account in Zapier" in error["message"], error
        assert "Invalid token: access token is invalid" in error["message"], "GHL's reason"
        assert error["message"].endswith("(ghl_unauthorized)"), error
        assert_readable(error["message"], revoked)


@pytest.mark.spec_violations_expected
def test_a_ghl_422_on_a_create_reads_as_ghls_reason_and_the_code(zapier_runtime, app_dir, service, sandbox_reset,
                                                                  tmp_path):
    body = {"type": "Pigeon", "subType": "SMS", "status": "bogus", "contactId": "sandbox-contact-1"}
    results = zapier_runtime.run(app_dir, [
        {"name": "create", "path": "creates.api_request.operation.perform", "bundle": {"inputData": {
            "method": "POST", "path": "/conversations/messages", "version": "2021-04-15", "body": body}}},
    ], tmp_path)
    error = results["create"]["error"]
    assert error["name"] == "AppError" and error["code"] == "ghl_rejected_input" and error["status"] == 422, error
    assert error["message"].startswith("GHL rejected the input: type must be one of the following values: SMS")
    assert "; status must be one of the following values: " in error["message"], "every reason GHL listed"
    assert error["message"].endswith(" (ghl_rejected_input)")
    assert_readable(error["message"])


def test_a_ghl_5xx_reads_as_ghl_being_unavailable(zapier_runtime, app_dir, service, sandbox_reset, tmp_path):
    inject_faults(sandbox_reset, [{"status": 503, "times": 1, "path_prefix": "/contacts"}])
    results = zapier_runtime.run(app_dir, [
        {"name": "poll", "path": trigger("get_contact_notes"),  # a GET: a 5xx is retried, then reported
         "bundle": {"inputData": {"contactId": "sandbox-contact-1"}, "meta": {"zap": {"id": "zap-503"}}}},
    ], tmp_path)
    error = results["poll"]["error"]
    assert error["name"] == "AppError" and error["code"] == "ghl_unavailable" and error["status"] == 502, error
    assert error["message"] == ("GHL is unavailable right now (it answered 503: Service Unavailable); "
                                "try again later (ghl_unavailable)")


def test_a_429_stays_zapiers_throttled_error_with_the_services_delay(zapier_runtime, app_dir, service,
                                                                     sandbox_reset, tmp_path):
    inject_faults(sandbox_reset, [{"status": 429, "times": 1, "path_prefix": "/contacts"}])
    results = zapier_runtime.run(app_dir, [
        {"name": "create", "path": "creates.create_contact.operation.perform",
         "bundle": {"inputData": {"email": "throttled@example.com"}}},
    ], tmp_path)
    error = results["create"]["error"]
    assert error["name"] == "ThrottledError", error
    assert isinstance(error["delay"], int) and error["delay"] >= 1, error


def test_invalid_inputs_are_listed_by_their_labels_and_bounded(zapier_runtime, app_dir, service, sandbox_reset,
                                                               tmp_path):
    labels = {f["key"]: f["label"] for f in json.loads((app_dir / "app-definition.json").read_text())
              ["creates"]["send_message"]["operation"]["inputFields"]}
    email = {"type": "Email", "contactId": "sandbox-contact-1", "message": "Hi"}
    # Custom-field inputs are sent for every create; an operation without custom fields refuses them.
    flood = {f"cf_field{n:02d}": "x" for n in range(12)}
    results = zapier_runtime.run(app_dir, [
        {"name": "one", "path": "creates.send_message.operation.perform", "bundle": {"inputData": email}},
        {"name": "many", "path": "creates.send_message.operation.perform",
         "bundle": {"inputData": {**email, **flood}}},
    ], tmp_path)
    one = results["one"]["error"]
    assert one["name"] == "AppError" and one["code"] == "invalid_input" and one["status"] == 400, one
    assert one["message"] == (f"Some inputs are missing or invalid: {labels['subject']}: "
                              "required when Channel is Email (invalid_input)")
    many = results["many"]["error"]["message"]
    assert many.startswith(f"Some inputs are missing or invalid: {labels['subject']}: required when Channel is "
                           "Email; cf_field00: unknown input; ")
    assert many.endswith("; and 8 more (invalid_input)") and many.count(": unknown input") == 4, many
    assert_readable(many)


def test_the_live_services_dynamic_fields_reach_zapier_as_answered(zapier_runtime, app_dir, service,
                                                                  sandbox_reset, tmp_path):
    app = tmp_path / "app"
    definition = copy_app(app_dir, app)
    create = definition["creates"]["create_contact"]["operation"]
    create["inputFields"].append(FUNCTION_2)
    create["outputFields"].append(FUNCTION_2)
    write_definition(app, definition)
    operation = "creates.create_contact.operation"
    results = zapier_runtime.run(app, [
        {"name": "input", "path": f"{operation}.inputFields.{len(create['inputFields']) - 1}"},
        {"name": "output", "path": f"{operation}.outputFields.{len(create['outputFields']) - 1}"},
    ], tmp_path)
    headers = {"Authorization": f"Bearer {AUTH_DATA['token']}", "X-Location-Id": AUTH_DATA["locationId"]}
    for purpose in ("input", "output"):
        answered = requests.get(f"{service.url}/zapier/fields/create_contact", params={"for": purpose},
                                headers=headers, timeout=5)
        assert answered.status_code == 200, answered.text
        assert results[purpose]["result"] == answered.json(), purpose


# ----------------------------------------------------------------------------- against a fake service


class FakeService:
    """Answers ``answers[(method, path)]`` (JSON) and records every request it gets."""

    def __init__(self, answers):
        self.answers = answers
        self.requests = []

        @Request.application
        def serve(request):
            body = request.get_json(silent=True)
            self.requests.append({"method": request.method, "path": request.path, "args": request.args.to_dict(),
                                  "json": body, "authorization": request.headers.get("Authorization"),
                                  "location": request.headers.get("X-Location-Id")})
            status, answer = self.answers.get((request.method, request.path), (404, {"error": {
                "code": "unknown_operation", "message": "There is no such operation."}}))
            return Response(json.dumps(answer), status=status, content_type="application/json")

        self.server = make_server("127.0.0.1", 0, serve, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_service():
    running = []

    def start(answers):
        running.append(FakeService(answers))
        return running[-1]

    yield start
    for service in running:
        service.stop()


def copy_app(app_dir, out):
    out.mkdir()
    for name in ("index.js", "package.json", "app-definition.json"):
        shutil.copy(app_dir / name, out / name)
    return json.loads((out / "app-definition.json").read_text())


def write_definition(app, definition):
    (app / "app-definition.json").write_text(json.dumps(definition))


def pointed_at(definition, old_url, new_url):
    """The definition with every request to ``old_url`` sent to ``new_url`` instead."""
    return json.loads(json.dumps(definition).replace(old_url, new_url))


def test_dynamic_field_markers_load_the_operations_fields_from_the_service(zapier_runtime, app_dir, service,
                                                                          fake_service, tmp_path):
    fields = [{"key": "cf_colour", "label": "Favourite Colour", "choices": ["red", "blue"]}]
    outputs = [{"key": "custom_fields__favourite_colour", "label": "Favourite Colour"}]
    fake = fake_service({
        ("GET", "/zapier/fields/create_contact"): (200, fields),
        ("GET", "/zapier/fields/new_contact"): (200, {"not": "a list"}),
        ("GET", "/zapier/fields/find_contact"): (200, outputs),
    })
    app = tmp_path / "app"
    definition = pointed_at(copy_app(app_dir, app), service.url, fake.url)
    create = definition["creates"]["create_contact"]["operation"]["inputFields"]
    instant = definition["triggers"]["new_contact_instant"]["operation"]["inputFields"]
    create.append(FUNCTION_2)
    instant.append(FUNCTION_2)
    definition["searches"]["find_contact"]["operation"]["outputFields"].insert(0, FUNCTION_2)
    write_definition(app, definition)
    assert zapier_runtime.validate(app)["appErrors"] == []
    results = zapier_runtime.run(app, [
        {"name": "create", "path": f"creates.create_contact.operation.inputFields.{len(create) - 1}"},
        {"name": "instant", "path": f"triggers.new_contact_instant.operation.inputFields.{len(instant) - 1}"},
        {"name": "search", "path": "searches.find_contact.operation.outputFields.0"},
    ], tmp_path)
    assert results["create"]["result"] == fields
    assert results["instant"]["result"] == [], "an answer that is not a list is no fields"
    assert results["search"]["result"] == outputs
    assert [(r["path"], r["args"]) for r in fake.requests] == [
        ("/zapier/fields/create_contact", {"for": "input"}),
        ("/zapier/fields/new_contact", {"for": "input"}),  # the instant twin's fields are its trigger's
        ("/zapier/fields/find_contact", {"for": "output"})]
    assert {(r["authorization"], r["location"]) for r in fake.requests} == {
        (f"Bearer {AUTH_DATA['token']}", AUTH_DATA["locationId"])}


def test_creates_and_searches_send_the_custom_field_inputs_beside_the_static_ones(zapier_runtime, app_dir,
                                                                                 service, fake_service, tmp_path):
    created = {"id": "c1", "email": "zed@example.com"}
    found = [{"id": "c1"}]
    fake = fake_service({("POST", "/actions/create_contact"): (200, created),
                         ("POST", "/actions/find_contact"): (200, found)})
    app = tmp_path / "app"
    write_definition(app, pointed_at(copy_app(app_dir, app), service.url, fake.url))
    inputs = {"email": "zed@example.com", "firstName": "", "tags": ["a", "b"], "cf_colour": ["red", "blue"],
              "cf_ABC-123_x": 7, "cf_": "no id", "cf_bad key": "x", "notAnInput": "x"}
    results = zapier_runtime.run(app, [
        {"name": "create", "path": "creates.create_contact.operation.perform", "bundle": {"inputData": inputs}},
        {"name": "search", "path": "searches.find_contact.operation.perform",
         "bundle": {"inputData": {"email": "zed@example.com", "cf_colour": "red"}}},
    ], tmp_path)
    assert results["create"]["result"] == created and results["search"]["result"] == found
    sent = {r["path"]: r["json"] for r in fake.requests}
    assert sent["/actions/create_contact"] == {"email": "zed@example.com", "tags": ["a", "b"],
                                               "cf_colour": ["red", "blue"], "cf_ABC-123_x": 7}
    assert sent["/actions/find_contact"] == {"email": "zed@example.com", "cf_colour": "red"}


def test_an_error_without_a_description_still_reads_as_one_sentence(zapier_runtime, app_dir, service,
                                                                     fake_service, tmp_path):
    fake = fake_service({
        ("POST", "/actions/create_contact"): (500, ["<html>proxy error</html>"]),
        ("POST", "/actions/find_contact"): (403, {"error": {"code": "ghl_forbidden", "message":
                                                          f"Echoed {AUTH_DATA['token']} by mistake."}}),
    })
    app = tmp_path / "app"
    write_definition(app, pointed_at(copy_app(app_dir, app), service.url, fake.url))
    results = zapier_runtime.run(app, [
        {"name": "create", "path": "creates.create_contact.operation.perform",
         "bundle": {"inputData": {"email": "x@example.com"}}},
        {"name": "search", "path": "searches.find_contact.operation.perform",
         "bundle": {"inputData": {"email": "x@example.com"}}},
    ], tmp_path)
    assert results["create"]["error"]["message"] == "The service answered 500 without saying why (http_500)"
    assert results["search"]["error"]["message"] == "Echoed :censored: by mistake (ghl_forbidden)"


def test_zapiers_schema_accepts_the_app_level_throttle(zapier_runtime, app_dir, tmp_path):
    app = tmp_path / "app"
    definition = copy_app(app_dir, app)
    definition["throttle"] = THROTTLE
    write_definition(app, definition)
    assert zapier_runtime.validate(app) | {"ms": None} == {"definitionErrors": [], "appErrors": [], "ms": None}
    definition["throttle"] = {**THROTTLE, "per": "location"}
    write_definition(app, definition)
    assert zapier_runtime.validate(app)["definitionErrors"], "the schema checks the throttle object"
