"""The Zapier app definition (``GET /zapier/app.json``) and the connection test (``GET /auth/test``)."""

from urllib.parse import quote

from flask import Blueprint, jsonify, request

from zapier_app.definition import zapier_app_definition
from server.app import services
from server.errors import ApiError
from server.routes.caller import bearer_token, location_header

blueprint = Blueprint("zapier", __name__)

LOCATION_VERSION = "2021-07-28"
LOCATION_SCOPES = ("locations.readonly",)


def _public_url():
    """The URL Zapier reaches this service at: a configured ``public_url``, else this request's host."""
    settings = services().settings
    configured = settings.public_url
    return (configured or request.host_url).rstrip("/")


@blueprint.get("/zapier/app.json")
def app_definition():
    """The definition ``python -m zapier_app`` writes, for this server (functions are
    Zapier's placeholders; the exported app's index.js fills them in)."""
    shared = services()
    return jsonify(zapier_app_definition(shared.catalog, _public_url(), bool(shared.settings.connector_key)))


@blueprint.get("/auth/test")
def auth_test():
    """Zapier's connection test: the token reads the connection's location at GHL.

    Answers ``{"location_id", "name", "company_id", "timezone"}`` (the connection label is built
    from it); GHL's refusal comes back as its mapped error (401 with a reconnect hint, 403, 404).
    """
    token = bearer_token()
    location_id = location_header()
    if not location_id or location_id in (".", ".."):
        raise ApiError(400, "missing_location",
                       "Send the location id in the X-Location-Id header (the connection's Location ID field).")
    response = services().client.request("GET", "/locations/" + quote(location_id, safe=""), token,
                                         version=LOCATION_VERSION, scopes=LOCATION_SCOPES)
    body = response.body if isinstance(response.body, dict) else {}
    location = body.get("location") if isinstance(body.get("location"), dict) else body
    return jsonify({
        "location_id": location.get("id") or location_id,
        "name": location.get("name") or "",
        "company_id": location.get("companyId"),
        "timezone": location.get("timezone"),
    })
