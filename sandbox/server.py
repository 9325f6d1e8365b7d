"""Run the sandbox on a loopback port in a background thread (test fixtures, benchmarks)."""

import threading

from werkzeug.serving import WSGIRequestHandler, make_server

from sandbox.app import create_sandbox_app

SANDBOX_TOKEN = "sandbox-token"


class QuietRequestHandler(WSGIRequestHandler):
    """No access-log line per request (tests and benchmarks send thousands)."""

    def log_request(self, *args, **kwargs):
        pass


class RunningSandbox:
    """A sandbox being served: ``url`` (no trailing slash), ``app``, ``token``; ``stop()``."""

    def __init__(self, app, host="127.0.0.1", port=0, quiet=True):
        self.app = app
        handler = QuietRequestHandler if quiet else None
        self._server = make_server(host, port, app, threaded=True, request_handler=handler)
        self.host, self.port = host, self._server.server_port
        self.url = f"http://{host}:{self.port}"
        self.token = app.extensions["sandbox"].tokens[0] if app.extensions["sandbox"].tokens else None
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"sandbox-{self.port}",
                                        daemon=True)
        self._thread.start()

    @property
    def state(self):
        """The app's state (store, faults, limiter, log), for direct inspection in tests."""
        return self.app.extensions["sandbox"]

    def stop(self):
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def serve_sandbox(host="127.0.0.1", port=0, quiet=True, **app_kwargs):
    """Start a sandbox (``create_sandbox_app(**app_kwargs)``) on ``host:port`` (0: a free port);
    ``quiet`` leaves out the per-request access log."""
    return RunningSandbox(create_sandbox_app(**app_kwargs), host, port, quiet)
