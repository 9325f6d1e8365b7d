"""The OpenAPI description of this service's own endpoints (not GHL's)."""

from zapier_app.choices import available, sources
from zapier_app.presentation import role

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
        }
    },
}


def _error(description):
    return {"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _json(description, schema):
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def service_openapi(catalog):
    trigger_keys = [r["key"] for r in catalog.of_kind("trigger")]
    all_keys = [r["key"] for r in catalog.of_kind("trigger", "action", "search")]
    choice_sources = [name for name in sources(catalog) if available(name, catalog)]
    action_keys = [r["key"] for r in catalog.of_kind("action", "search", "trigger")
                   if r["kind"] != "trigger" or role(r) == "search"] + ["api_request"]
    auth_params = [
        {"name": "X-Location-Id", "in": "header", "required": False, "schema": {"type": "string"},
         "description": "Fills the operation's location input when the inputs leave it out."},
    ]
    common_errors = {
        "400": _error("Invalid inputs"),
        "401": _error("Missing or rejected token"),
        "403": _error("GHL refused access"),
        "404": _error("Unknown operation, or GHL found nothing"),
        "422": _error("GHL rejected the inputs"),
        "429": _error("GHL's rate limit; see Retry-After"),
        "502": _error("GHL failed or could not be reached"),
        "504": _error("GHL did not answer in time"),
    }
    inputs_body = {"content": {"application/json": {"schema": {"type": "object"}}}, "required": False}
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "GHL for Zapier",
            "version": "1.0.0",
            "description": "GoHighLevel API v2 operations as Zapier polling triggers, actions and searches.",
        },
        "components": {
            "schemas": {"Error": ERROR_SCHEMA},
            "securitySchemes": {
                "ghlToken": {"type": "http", "scheme": "bearer",
                             "description": "A GHL Private Integration token or OAuth access token."},
                "connectorKey": {"type": "apiKey", "in": "header", "name": "X-Connector-Key"},
            },
        },
        "paths": {
            "/healthz": {"get": {"summary": "Liveness", "responses": {"200": _json("OK", {"type": "object"})}}},
            "/auth/test": {"get": {
                "summary": "Check the token and location with GHL (Zapier's connection test)",
                "security": [{"ghlToken": []}],
                "parameters": [{"name": "X-Location-Id", "in": "header", "required": True, "schema": {"type": "string"}}],
                "responses": {"200": _json("Who the connection is", {"type": "object", "required": ["location_id"]}),
                              **common_errors},
            }},
            "/zapier/app.json": {"get": {
                "summary": "The Zapier app definition generated from the catalog",
                "responses": {"200": _json("A Zapier Platform app definition", {"type": "object"})},
            }},
            "/zapier/fields/{key}": {"get": {
                "summary": "The location's custom fields of an operation, as Zapier input or output fields",
                "security": [{"ghlToken": []}],
                "parameters": [
                    {"name": "key", "in": "path", "required": True, "schema": {"type": "string", "enum": all_keys}},
                    {"name": "for", "in": "query", "schema": {"type": "string", "enum": ["input", "output"]}},
                    *auth_params,
                ],
                "responses": {"200": _json("Zapier field descriptors", {"type": "array", "items": {
                    "type": "object", "required": ["key"]}}), **common_errors},
            }},
            "/zapier/choices/{source}": {"get": {
                "summary": "Dropdown choices read from the location (Zapier dynamic dropdowns)",
                "security": [{"ghlToken": []}],
                "parameters": [
                    {"name": "source", "in": "path", "required": True,
                     "schema": {"type": "string", "enum": choice_sources}},
                    {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 0}},
                    *auth_params,
                ],
                "responses": {"200": _json("Choices", {"type": "array", "items": {
                    "type": "object", "required": ["id", "name"]}}), **common_errors},
            }},
            "/catalog": {"get": {
                "summary": "List operations",
                "parameters": [
                    {"name": "kind", "in": "query", "description": "Empty means every kind.",
                     "schema": {"type": "string", "enum": ["trigger", "action", "search", ""]}},
                    {"name": "category", "in": "query", "schema": {"type": "string", "maxLength": 100}},
                    {"name": "service", "in": "query", "description": "A GHL service (spec file), such as invoices.",
                     "schema": {"type": "string", "maxLength": 100}},
                    {"name": "origin", "in": "query", "description": "Empty means both.",
                     "schema": {"type": "string", "enum": ["hand-written", "generated", ""]}},
                    {"name": "q", "in": "query", "schema": {"type": "string", "maxLength": 200}},
                ],
                "responses": {"200": _json("Operations", {
                    "type": "object", "required": ["operations", "categories", "counts"],
                    "properties": {"operations": {"type": "array"}, "categories": {"type": "array"},
                                   "services": {"type": "array"}, "origins": {"type": "array"},
                                   "filters": {"type": "object"}, "counts": {"type": "object"}}}),
                    "400": _error("Bad filter")},
            }},
            "/catalog/{key}": {"get": {
                "summary": "One operation",
                "parameters": [{"name": "key", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {"200": _json("The record", {"type": "object"}), "404": _error("Unknown key")},
            }},
            "/triggers/{key}": {
                method: {
                    "summary": "Poll a trigger: new items, newest first",
                    "security": [{"ghlToken": []}],
                    "parameters": [
                        {"name": "key", "in": "path", "required": True, "schema": {"type": "string", "enum": trigger_keys}},
                        {"name": "X-Poll-Mode", "in": "header", "schema": {"type": "string", "enum": ["live", "sample"]}},
                        {"name": "X-Subscriber-Id", "in": "header", "schema": {"type": "string"}},
                        *auth_params,
                    ],
                    **({"requestBody": inputs_body} if method == "post" else {}),
                    "responses": {"200": _json("Items", {"type": "array", "items": {
                        "type": "object", "required": ["id"]}}), **common_errors},
                }
                for method in ("get", "post")
            },
            "/hooks": {"post": {
                "summary": "Subscribe a REST hook (Zapier's performSubscribe)",
                "security": [{"ghlToken": []}],
                "parameters": auth_params,
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["trigger", "target_url"],
                    "properties": {"trigger": {"type": "string", "enum": trigger_keys},
                                   "target_url": {"type": "string"}, "inputs": {"type": "object"}}}}}},
                "responses": {"201": _json("The subscription", {"type": "object", "required": ["id"]}),
                              "503": _error("SECRET_KEY is not configured"), **common_errors},
            }},
            "/hooks/{id}": {
                "get": {
                    "summary": "A subscription's state (never its token)",
                    "security": [{"ghlToken": []}],
                    "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
                    "responses": {"200": _json("State", {"type": "object"}), "401": _error("Missing token"),
                                  "404": _error("No such subscription for this token"),
                                  "503": _error("SECRET_KEY is not configured")},
                },
                "delete": {
                    "summary": "Unsubscribe (idempotent)",
                    "security": [{"ghlToken": []}],
                    "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
                    "responses": {"200": _json("Removed", {"type": "object"}), "401": _error("Missing token"),
                                  "404": _error("The subscription belongs to another token"),
                                  "503": _error("SECRET_KEY is not configured")},
                },
            },
            "/hooks/sample/{trigger}": {
                method: {
                    "summary": "Recent items shaped as deliveries (Zapier's performList)",
                    "security": [{"ghlToken": []}],
                    "parameters": [
                        {"name": "trigger", "in": "path", "required": True,
                         "schema": {"type": "string", "enum": trigger_keys}},
                        *auth_params,
                    ],
                    **({"requestBody": inputs_body} if method == "post" else {}),
                    "responses": {"200": _json("Items", {"type": "array", "items": {
                        "type": "object", "required": ["id"]}}), **common_errors},
                }
                for method in ("get", "post")
            },
            "/actions/{key}": {"post": {
                "summary": "Run an action (one object) or a search (a list)",
                "security": [{"ghlToken": []}],
                "parameters": [
                    {"name": "key", "in": "path", "required": True, "schema": {"type": "string", "enum": action_keys}},
                    *auth_params,
                ],
                "requestBody": inputs_body,
                "responses": {"200": _json("Result", {"oneOf": [{"type": "object"}, {"type": "array"}]}),
                              **common_errors},
            }},
        },
    }
