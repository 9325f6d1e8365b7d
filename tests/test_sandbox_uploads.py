"""Multipart uploads in the sandbox GHL: accepted, kept for tests to read, and checked against the spec."""

import hashlib

import pytest
import requests

from sandbox import LOCATION_ID
from sandbox.spec_validator import SpecValidator
from sandbox.uploads import file_bytes
from tests import ghl_spec

HEADERS = {"Authorization": "Bearer sandbox-token", "Version": "2021-07-28"}
needs_specs = pytest.mark.skipif(not (ghl_spec.SPEC_DIR / "apps").is_dir(), reason="no GHL OpenAPI specs")


@pytest.fixture
def ghl(sandbox_reset):
    yield sandbox_reset
    requests.delete(sandbox_reset.url + "/_sandbox/violations")


def violations(ghl):
    return [text for v in requests.get(ghl.url + "/_sandbox/violations").json()["violations"] for text in v["violations"]]


def test_an_upload_is_answered_kept_and_listed_with_the_files(ghl):
    data = b"%PDF-1.4 sandbox\n" * 10
    answer = requests.post(ghl.url + "/medias/upload-file", headers=HEADERS,
                           files={"file": ("brochure.pdf", data, "application/pdf")}, data={"name": "Brochure"})
    assert answer.status_code == 201, answer.text
    file_id = answer.json()["fileId"]
    uploads = requests.get(ghl.url + "/_sandbox/uploads").json()["uploads"]
    assert uploads == [{"method": "POST", "path": "/medias/upload-file", "form": {"name": ["Brochure"]},
                        "files": {"file": [{"filename": "brochure.pdf", "content_type": "application/pdf",
                                            "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}]}}]
    logged = requests.get(ghl.url + "/_sandbox/requests").json()["requests"][-1]
    assert logged["content_type"] == "multipart/form-data" and logged["json"] is None
    assert logged["files"] == uploads[0]["files"] and logged["form"] == {"name": ["Brochure"]}
    listed = requests.get(ghl.url + "/medias/files", headers=HEADERS,
                          params={"altId": LOCATION_ID, "altType": "location", "sortBy": "createdAt",
                                  "sortOrder": "asc", "type": "file"}).json()["files"]
    assert [f["name"] for f in listed if f.get("fileId") == file_id] == ["Brochure"]
    requests.delete(ghl.url + "/_sandbox/uploads").raise_for_status()
    assert requests.get(ghl.url + "/_sandbox/uploads").json()["uploads"] == []


@pytest.mark.spec_violations_expected  # leaves the required part out on purpose
def test_a_required_file_part_left_out_is_a_422(ghl):
    answer = requests.post(ghl.url + f"/social-media-posting/{LOCATION_ID}/csv", headers=HEADERS,
                           files={"other": ("x.txt", b"x")})
    assert answer.status_code == 422 and answer.json()["message"] == ["file should not be empty"]


def test_the_sandbox_serves_a_file_to_hand_an_upload_as_its_url(ghl):
    served = requests.get(ghl.url + "/_sandbox/files/report.csv")
    assert served.status_code == 200 and served.content == file_bytes("report.csv")
    assert served.headers["Content-Type"].startswith("text/csv")


@needs_specs
@pytest.mark.spec_violations_expected
def test_the_spec_check_reads_multipart_parts(ghl):
    requests.post(ghl.url + f"/social-media-posting/{LOCATION_ID}/csv", headers=HEADERS,
                  files={"file": ("posts.csv", b"a,b")})
    assert violations(ghl) == []
    requests.post(ghl.url + f"/social-media-posting/{LOCATION_ID}/csv", headers=HEADERS,
                  files={"file": ("posts.csv", b"a,b"), "extra": ("x.txt", b"x")})
    assert violations(ghl) == ["unknown part 'extra'"]
    requests.delete(ghl.url + "/_sandbox/violations")
    requests.post(ghl.url + "/medias/upload-file", headers=HEADERS, json={"name": "x"})
    assert violations(ghl) == ["sends a JSON body where the spec takes a multipart/form-data body"]


@needs_specs
def test_multipart_validation_required_unknown_and_typed_parts():
    spec = SpecValidator(ghl_spec.SPEC_DIR)

    def check(path, fields=None, files=None, version="2021-07-28"):
        return spec.violations("POST", path, {}, {"Version": version}, None,
                               form={"form": fields or {}, "files": files or {}})

    one_file = {"file": [{"filename": "a", "size": 1}]}
    assert check("/medias/upload-file", {"name": ["a"], "hosted": ["false"]}, one_file) == []
    assert check("/medias/upload-file", {"hosted": ["maybe"]}) == ["part 'hosted'='maybe' is not true or false"]
    assert check("/medias/upload-file", {"file": ["not a file"]}) == ["part 'file' should be a file, not a text field"]
    assert check("/medias/upload-file", {"colour": ["red"]}) == ["unknown part 'colour'"]
    assert check("/conversations/messages/upload", {"conversationId": ["c"], "contactId": ["k"]},
                 {"fileAttachment": [{"filename": "a", "size": 1}]}, "2021-04-15") == [
        "missing required part 'locationId'"]  # attachmentUrls: spec_validator.ALLOWANCES says why
    assert check("/contacts/", {"a": ["b"]}) == ["sends a multipart body where the spec takes a application/json body"]
    assert spec.violations("POST", "/medias/upload-file", {}, {"Version": "2021-07-28"}) == [
        "missing body (the spec requires a multipart/form-data body)"]
