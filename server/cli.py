"""A terminal way in: run one trigger or action once and print the result as JSON.

    GHL_TOKEN=... .venv/bin/python -m server.cli trigger get_contact contactId=abc
    GHL_TOKEN=... .venv/bin/python -m server.cli action create_contact locationId=loc1 email=a@example.com
    .venv/bin/python -m server.cli list --kind trigger

Inputs are ``key=value`` pairs (a value that parses as JSON is used as JSON) or ``--json '{...}'``.
A trigger runs in sample mode (nothing recorded) unless ``--live`` is given, which polls
exactly as Zapier would under the subscriber ``--subscriber`` (default ``cli``).
The token is read from ``GHL_TOKEN`` so it stays out of shell history and process lists.
"""

import argparse
import json
import os
import sys

from actions.execute import run_operation
from catalog.inputs import InvalidInput, fill_location, validate_inputs
from ghl.custom_fields import resolve_custom_field_inputs
from catalog.registry import load_catalog
from ghl.client import client_from_settings
from ghl.credentials import credential_id
from ghl.errors import GhlError
from server.config import load_settings
from server.secrets import load_secret_key
from storage.backend import open_backend
from triggers.poll import LIVE, SAMPLE, PollLimits, poll_once, scope_for

SANDBOX_TOKEN = "sandbox-token"


def parse_inputs(pairs, raw_json):
    inputs = json.loads(raw_json) if raw_json else {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"inputs are key=value pairs, got {pair!r}")
        try:
            inputs[key] = json.loads(value)
        except ValueError:
            inputs[key] = value
    return inputs


def build_parser():
    parser = argparse.ArgumentParser(prog=".venv/bin/python -m server.cli", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("trigger", "action"):
        run = sub.add_parser(name, help=f"run one {name} once")
        run.add_argument("key")
        run.add_argument("inputs", nargs="*", metavar="key=value")
        run.add_argument("--json", help="inputs as a JSON object")
        run.add_argument("--location", help="location id, as the X-Location-Id header would give it")
        if name == "trigger":
            run.add_argument("--live", action="store_true", help="poll with dedupe, recording what is answered")
            run.add_argument("--subscriber", default="cli")
    listing = sub.add_parser("list", help="list catalog operations")
    listing.add_argument("--kind")
    listing.add_argument("--category")
    listing.add_argument("-q")
    return parser


def main(argv=None, out=sys.stdout):
    args = build_parser().parse_args(argv)
    settings = load_settings()
    catalog = load_catalog()
    if args.command == "list":
        for record in catalog.filter(kind=args.kind, category=args.category, q=args.q):
            print(f"{record['key']:40} {record['kind']:8} {record['method']:6} {record['path']}", file=out)
        return 0
    kinds = ("trigger",) if args.command == "trigger" else ("action", "search")
    record = catalog.get(args.key)
    if record is None or record["kind"] not in kinds:
        print(f"error: no {args.command} called {args.key!r}; try: .venv/bin/python -m server.cli list", file=sys.stderr)
        return 2
    token = os.environ.get("GHL_TOKEN") or (SANDBOX_TOKEN if settings.using_sandbox else "")
    if not token:
        print("error: set GHL_TOKEN to a GHL Private Integration or OAuth access token", file=sys.stderr)
        return 2
    try:
        inputs = validate_inputs(record, fill_location(record, parse_inputs(args.inputs, args.json), args.location))
        secret = load_secret_key(settings)
        backend = open_backend(settings)
        client = client_from_settings(settings, backend, secret=secret)
        inputs = resolve_custom_field_inputs(client, token, args.location, record, inputs)
        if args.command == "trigger":
            store = backend.dedupe_store()
            scope = scope_for(credential_id(secret, token), record["key"], inputs, subscriber=f"cli:{args.subscriber}")
            result = poll_once(client, store, record, inputs, token, scope, PollLimits.from_settings(settings),
                               mode=LIVE if args.live else SAMPLE, app_url=settings.ghl_app_url)
        else:
            result = run_operation(client, record, inputs, token, app_url=settings.ghl_app_url)
    except InvalidInput as exc:
        print(json.dumps({"error": {"code": "invalid_input", "message": str(exc), "fields": exc.fields}},
                         indent=2), file=sys.stderr)
        return 1
    except GhlError as exc:
        print(json.dumps(exc.to_json(), indent=2), file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2, default=str), file=out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
