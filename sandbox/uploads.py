"""Multipart uploads as the sandbox receives them (``POST /medias/upload-file`` and the other four).

GHL takes five operations as ``multipart/form-data``: text fields plus file parts. The sandbox
keeps what each upload carried, without the bytes: ``{"form": {name: [values]}, "files":
{part name: [{"filename", "content_type", "size", "sha256"}]}}`` (``received_upload``), shown in
the request log and at ``GET /_sandbox/uploads``. Handlers see the text fields and the file
part names as the body (``form_fields``), so a record's required inputs are checked as for JSON.
``GET /_sandbox/files/<name>`` serves ``file_bytes(name)``: a file a test can hand an upload as its URL.
"""

import hashlib

MULTIPART = "multipart/form-data"


def _described(storage):
    data = storage.read()
    storage.seek(0)
    return {"filename": storage.filename, "content_type": storage.mimetype or None, "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest()}


def received_upload(request):
    """What a multipart request carried: its text fields and a description of each file part."""
    files = {}
    for name in request.files:
        files[name] = [_described(storage) for storage in request.files.getlist(name)]
    return {"form": request.form.to_dict(flat=False), "files": files}


def form_fields(request):
    """The body a handler sees for an upload: each text field (its last value) and each file part's name."""
    body = {name: values[-1] for name, values in request.form.to_dict(flat=False).items()}
    for name in request.files:
        body[name] = request.files[name].filename or name
    return body


def file_bytes(name):
    """The bytes ``/_sandbox/files/<name>`` serves: fixed for a name, so a test knows their digest."""
    return f"sandbox file {name}\n".encode() * 8
