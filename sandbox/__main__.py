"""``python -m sandbox --host 127.0.0.1 --port 8100 [--latency-ms N] [--token T ...]``"""

import argparse

from werkzeug.serving import run_simple

from sandbox.app import create_sandbox_app
from sandbox.seed import LOCATION_ID
from sandbox.server import SANDBOX_TOKEN


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m sandbox", description="Serve the sandbox GHL.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--latency-ms", type=float, default=0, help="delay every API answer")
    parser.add_argument("--token", action="append", dest="tokens", metavar="T",
                        help=f"an accepted bearer token (repeatable; default {SANDBOX_TOKEN})")
    parser.add_argument("--burst-limit", type=int, default=100)
    parser.add_argument("--burst-window-s", type=float, default=10)
    parser.add_argument("--no-seed", action="store_true", help="start with no data")
    args = parser.parse_args(argv)
    tokens = tuple(args.tokens or (SANDBOX_TOKEN,))
    app = create_sandbox_app(tokens=tokens, seed=not args.no_seed, latency_ms=args.latency_ms,
                             burst_limit=args.burst_limit, burst_window_s=args.burst_window_s)
    print(f"Sandbox GHL on http://{args.host}:{args.port}", flush=True)
    print(f"  token: {tokens[0]}   location: {LOCATION_ID}   controls: /_sandbox/", flush=True)
    run_simple(args.host, args.port, app, threaded=True)


if __name__ == "__main__":
    main()
