"""Liveness and the service's own OpenAPI description."""

from flask import Blueprint, jsonify

from server.app import services
from server.openapi import service_openapi

blueprint = Blueprint("health", __name__)


@blueprint.get("/healthz")
def healthz():
    shared = services()
    return jsonify({
        "status": "ok",
        "operations": len(shared.catalog),
        "ghl": "sandbox" if shared.settings.using_sandbox else "ghl",
    })


@blueprint.get("/openapi.json")
def openapi():
    return jsonify(service_openapi(services().catalog))
