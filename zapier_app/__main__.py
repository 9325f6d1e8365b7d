"""``python -m zapier_app --server-url https://my.host --out zapier-app/``: writes the Zapier
Platform CLI app for this service: ``package.json`` (pinning zapier-platform-core),
``app-definition.json`` (the whole app as data, from ``zapier_app.definition``) and ``index.js``
(the functions Zapier cannot take as data, copied from this package)."""

import argparse
import json
import os
import re
import sys
from pathlib import Path

from catalog.registry import load_catalog
from zapier_app.definition import DEFAULT_APP_VERSION, ZAPIER_PLATFORM_VERSION, zapier_app_definition

INDEX_JS = Path(__file__).with_name("index.js")


def package_json(server_url, version=DEFAULT_APP_VERSION):
    return {
        "name": "ghl-zapier",
        "version": version,
        "description": f"GoHighLevel (GHL) API v2 for Zapier, through the service at {server_url.rstrip('/')}.",
        "main": "index.js",
        "private": True,
        "engines": {"node": ">=20"},
        "dependencies": {"zapier-platform-core": ZAPIER_PLATFORM_VERSION},
    }


def write_app(out_dir, catalog, server_url, connector_key_required, version=DEFAULT_APP_VERSION):
    """Write the CLI app into ``out_dir``; returns the definition."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    definition = zapier_app_definition(catalog, server_url, connector_key_required, version)
    (out / "app-definition.json").write_text(json.dumps(definition, indent=2) + "\n", encoding="utf-8")
    (out / "index.js").write_text(INDEX_JS.read_text(encoding="utf-8"), encoding="utf-8")
    (out / "package.json").write_text(json.dumps(package_json(server_url, version), indent=2) + "\n",
                                      encoding="utf-8")
    return definition


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m zapier_app",
        description="Write the Zapier Platform CLI app for this service, generated from the catalog.")
    parser.add_argument("--server-url", required=True,
                        help="the public URL Zapier calls this service at, e.g. https://ghl-zapier.example.com")
    parser.add_argument("--out", default="zapier-app", help="the folder to write (default: zapier-app)")
    parser.add_argument("--connector-key-required", action=argparse.BooleanOptionalAction,
                        default=bool(os.environ.get("CONNECTOR_KEY", "").strip()),
                        help="ask for the server's CONNECTOR_KEY when connecting (default: whether "
                             "CONNECTOR_KEY is set here)")
    parser.add_argument("--version", default=DEFAULT_APP_VERSION, help="the app version (default 1.0.0)")
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if not re.match(r"^https?://[^/\s]+", args.server_url):
        parser.error("--server-url must be an http(s) URL")
    definition = write_app(args.out, load_catalog(), args.server_url, args.connector_key_required, args.version)
    print(f"Wrote {args.out}: {len(definition['triggers'])} triggers, {len(definition['searches'])} searches, "
          f"{len(definition['creates'])} creates for {args.server_url.rstrip('/')} "
          f"(connector key {'required' if args.connector_key_required else 'not required'}).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
