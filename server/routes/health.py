"""Liveness and the service's own OpenAPI description.

``/healthz`` answers 503 while this process cannot write its database, so a platform restarts
the process or routes around it. The write probe runs at most once a second per process;
requests in between get its last result.
"""

import threading
import time

from flask import Blueprint, jsonify

from server.app import services
from server.errors import STORAGE_RETRY_AFTER_SECONDS, error_response
from server.openapi import service_openapi

PROBE_EVERY_SECONDS = 1.0

blueprint = Blueprint("health", __name__)
_PROBE_LOCK = threading.Lock()


class WriteProbe:
    """Whether ``backend`` can be written, probed at most every ``every`` seconds."""

    def __init__(self, backend, every=PROBE_EVERY_SECONDS):
        self.backend = backend
        self.every = every
        self._lock = threading.Lock()
        self._probed_at = None
        self._writable = True

    def writable(self):
        if self._fresh():
            return self._writable
        with self._lock:
            if not self._fresh():
                self._writable = self.backend.writable()
                self._probed_at = time.monotonic()
        return self._writable

    def _fresh(self):
        return self._probed_at is not None and time.monotonic() - self._probed_at < self.every


def _probe_for(shared):
    probe = getattr(shared, "write_probe", None)
    if probe is None:
        with _PROBE_LOCK:
            probe = shared.__dict__.setdefault("write_probe", WriteProbe(shared.backend))
    return probe


@blueprint.get("/healthz")
def healthz():
    shared = services()
    if not _probe_for(shared).writable():
        return error_response(503, "storage_unavailable",
                              "The service cannot write its database; it should recover once storage does.",
                              headers={"Retry-After": str(STORAGE_RETRY_AFTER_SECONDS)})
    return jsonify({
        "status": "ok",
        "operations": len(shared.catalog),
        "ghl": "sandbox" if shared.settings.using_sandbox else "ghl",
    })


@blueprint.get("/openapi.json")
def openapi():
    return jsonify(service_openapi(services().catalog))
