"""The gunicorn worker the Procfile runs: gevent's, with its own error pages as JSON.

gunicorn answers a request it cannot parse (a request line too long, too many headers,
malformed HTTP) itself, before the app sees it, with an HTML page that repeats the offending
text. This worker answers the service's JSON error instead and never repeats what was sent.
"""

import json
import traceback
from ssl import SSLError

from gunicorn import util
from gunicorn.http import errors
from gunicorn.workers.ggevent import GeventWorker

REASONS = {400: "Bad Request", 403: "Forbidden", 414: "URI Too Long", 417: "Expectation Failed",
           431: "Request Header Fields Too Large", 500: "Internal Server Error", 501: "Not Implemented"}


def describe_error(exc, cfg):
    """(status, code, message) for an error gunicorn met while reading or answering a request."""
    if isinstance(exc, errors.LimitRequestLine):
        return 414, "request_line_too_long", (
            f"The request line (method, path and query string) is longer than {cfg.limit_request_line} bytes.")
    if isinstance(exc, errors.LimitRequestHeaders):
        return 431, "headers_too_large", (
            f"The request has more than {cfg.limit_request_fields} headers, or one longer than "
            f"{cfg.limit_request_field_size} bytes.")
    if isinstance(exc, errors.UnsupportedTransferCoding):
        return 501, "unsupported_transfer_coding", "The request uses a transfer coding this service does not support."
    if isinstance(exc, errors.ExpectationFailed):
        return 417, "expectation_failed", "The request's Expect header cannot be met."
    if isinstance(exc, errors.ForbiddenProxyRequest):
        return 403, "forbidden", "Proxy requests are not allowed from this address."
    app_fault = (errors.ConfigurationProblem, errors.InvalidResponseHeader, errors.InvalidResponseHeaderName)
    if isinstance(exc, (errors.ParseException, SSLError)) and not isinstance(exc, app_fault):
        return 400, "malformed_request", f"The request is not valid HTTP/1.1 ({type(exc).__name__})."
    return 500, "internal_error", "Something went wrong inside the service; it has been logged."


def json_error_response(status, code, message):
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    head = (f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}\r\nConnection: close\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
    return head.encode("latin-1") + body


class JsonErrorGeventWorker(GeventWorker):
    def handle_error(self, req, client, addr, exc):
        status, code, message = describe_error(exc, self.cfg)
        # The class and where it was raised, never its text: gunicorn's repeats the request line,
        # query string included, and neither the client's address nor its data belong in the log.
        if status < 500:
            self.log.warning("Invalid request refused with %s: %s", status, type(exc).__name__)
        else:
            self.log.error("Error handling request: %s\n%s", type(exc).__name__,
                           "".join(traceback.format_tb(exc.__traceback__)).rstrip())
        try:
            util.write_nonblock(client, json_error_response(status, code, message))
        except Exception:
            self.log.debug("Failed to send error message.")
