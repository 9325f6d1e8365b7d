"""``python -m bench.sandbox_server --port P``: the sandbox GHL in a process of its own.

The benchmark and the drill run the sandbox outside their own process, so the load generator
and the simulated GHL do not share one interpreter lock. Two ways to serve it:

- ``--server gunicorn`` (default): one gunicorn ``gthread`` worker with many threads. One
  process, because the sandbox keeps its state in memory; threads, because every answer
  sleeps the configured latency. Connections are kept alive between requests, as GHL's are.
- ``--server werkzeug``: ``sandbox.server.serve_sandbox`` (threaded werkzeug, a thread per
  connection). Werkzeug answers every request with ``Connection: close``, so each GHL call
  opens a new TCP connection; kept for comparison.

The daily request budget is raised along with the burst limit (a benchmark sends more than
GHL's 200,000 a day through one token), and ``--tokens N`` accepts ``bench-token-0`` ...
``bench-token-<N-1>`` besides ``sandbox-token``.
"""

import argparse
import signal
import sys
import threading

from sandbox.app import create_sandbox_app
from sandbox.server import SANDBOX_TOKEN

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def bench_tokens(count):
    return tuple(f"bench-token-{n}" for n in range(count))


def build_app(args):
    app = create_sandbox_app(tokens=(SANDBOX_TOKEN,) + bench_tokens(args.tokens), latency_ms=args.latency_ms,
                             burst_limit=args.burst_limit, burst_window_s=args.burst_window_s)
    if args.daily_limit is not None:
        app.extensions["sandbox"].limiter.daily_limit = args.daily_limit
    return app


def serve_with_werkzeug(args, app):
    from sandbox.server import RunningSandbox
    running = RunningSandbox(app, args.host, args.port, quiet=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print(f"sandbox (werkzeug) on {running.url}", flush=True)
    stop.wait()
    running.stop()


def serve_with_gunicorn(args, app):
    from gunicorn.app.base import BaseApplication

    class SandboxApplication(BaseApplication):
        def load_config(self):
            settings = {
                "bind": f"{args.host}:{args.port}",
                "workers": 1,
                "worker_class": "gthread",
                "threads": args.threads,
                "keepalive": 30,
                "timeout": 120,
                "graceful_timeout": 2,
                "accesslog": None,
                "loglevel": "warning",
            }
            for key, value in settings.items():
                self.cfg.set(key, value)

        def load(self):
            return app

    print(f"sandbox (gunicorn gthread x{args.threads}) on http://{args.host}:{args.port}", flush=True)
    SandboxApplication().run()


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.sandbox_server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--server", choices=("gunicorn", "werkzeug"), default="gunicorn")
    parser.add_argument("--threads", type=int, default=160, help="gunicorn threads (concurrent requests)")
    parser.add_argument("--latency-ms", type=float, default=0)
    parser.add_argument("--burst-limit", type=int, default=100)
    parser.add_argument("--burst-window-s", type=float, default=10)
    parser.add_argument("--daily-limit", type=int, default=None)
    parser.add_argument("--tokens", type=int, default=0, help="extra accepted tokens bench-token-<n>")
    args = parser.parse_args(argv)
    if args.host not in LOOPBACK:
        parser.error("the benchmark sandbox serves loopback only")
    app = build_app(args)
    if args.server == "werkzeug":
        serve_with_werkzeug(args, app)
    else:
        serve_with_gunicorn(args, app)
    return 0


if __name__ == "__main__":
    sys.exit(main())
