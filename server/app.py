"""The application factory. Nothing is created at import: ``create_app`` builds it all."""

import hmac

from flask import Flask, request

from catalog.registry import load_catalog
from ghl.client import client_from_settings
from server.config import load_settings
from server.errors import error_response, register_error_handlers
from server.json_provider import FastJsonProvider
from server.log_setup import configure_logging
from server.secrets import load_secret_key
from storage.backend import open_backend

# Paths anyone may read even when CONNECTOR_KEY is set.
PUBLIC_PREFIXES = ("/catalog", "/static/")
PUBLIC_PATHS = {"/", "/healthz", "/openapi.json"}


class Services:
    """What the blueprints share, kept in ``app.extensions["ghl_zapier"]``."""

    def __init__(self, settings, catalog, client, backend, secret_key):
        self.settings = settings
        self.catalog = catalog
        self.client = client
        self.backend = backend
        self.store = backend.dedupe_store()
        self.secret_key = secret_key


def services():
    from flask import current_app
    return current_app.extensions["ghl_zapier"]


def _require_connector_key(app):
    @app.before_request
    def check_connector_key():
        expected = app.extensions["ghl_zapier"].settings.connector_key
        path = request.path
        if not expected or path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES):
            return None
        given = request.headers.get("X-Connector-Key", "")
        if not hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8")):
            return error_response(401, "connector_key_required",
                                  "This server requires its connector key in the X-Connector-Key header.")
        return None


def create_app(test_config=None, environ=None):
    """Build the Flask app: settings from the environment, then ``test_config`` overrides."""
    settings = load_settings(environ).with_overrides(test_config)
    configure_logging(settings.log_level, "%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = Flask(__name__)
    app.json = FastJsonProvider(app)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    catalog = load_catalog()
    secret_key = load_secret_key(settings)
    backend = open_backend(settings)
    app.extensions["ghl_zapier"] = Services(
        settings=settings,
        catalog=catalog,
        client=client_from_settings(settings, backend, secret=secret_key),
        backend=backend,
        secret_key=secret_key,
    )
    register_error_handlers(app, backend)
    _require_connector_key(app)

    from server.routes import (actions, catalog_pages, health, hooks, triggers, zapier, zapier_choices, zapier_fields,
                               zapier_operations)
    for module in (health, catalog_pages, triggers, actions, hooks, zapier, zapier_fields, zapier_choices,
                   zapier_operations):
        app.register_blueprint(module.blueprint)
    return app
