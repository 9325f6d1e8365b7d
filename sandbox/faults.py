"""Injected faults: error answers, delays and dropped connections for the next matching requests."""

import socket
import threading

FAULT_MESSAGES = {
    429: "Too many requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


class FaultError(ValueError):
    """A fault description that cannot be used."""


class DroppedConnection(ConnectionError):
    """Raised where no socket can be closed (Flask's test client): the request has no answer."""


def parse_fault(spec):
    """A checked fault: ``{status, times, path_prefix, method, delay_ms, drop, message}``; ``message``
    (a string or a list of strings, as GHL's 422s carry) replaces the status's usual text."""
    if not isinstance(spec, dict):
        raise FaultError("each fault is an object")
    status = spec.get("status")
    if status is not None and (not isinstance(status, int) or not 400 <= status <= 599):
        raise FaultError("status must be an HTTP error code (429, 500, 502, 503...)")
    times = spec.get("times", 1)
    if not isinstance(times, int) or times < 1:
        raise FaultError("times must be a positive integer")
    delay_ms = spec.get("delay_ms", 0)
    if not isinstance(delay_ms, (int, float)) or delay_ms < 0:
        raise FaultError("delay_ms must be a non-negative number")
    drop = bool(spec.get("drop", False))
    message = spec.get("message")
    if message is not None and not (isinstance(message, str) or (
            isinstance(message, list) and all(isinstance(m, str) for m in message))):
        raise FaultError("message must be a string or a list of strings")
    if status is None and not drop and not delay_ms:
        raise FaultError("a fault needs a status, drop or delay_ms")
    return {
        "status": status,
        "times": times,
        "path_prefix": spec.get("path_prefix") or "/",
        "method": (spec.get("method") or "").upper() or None,
        "delay_ms": delay_ms,
        "drop": drop,
        "message": message,
    }


class FaultInjector:
    def __init__(self):
        self._lock = threading.Lock()
        self._faults = []

    def add(self, specs):
        faults = [parse_fault(s) for s in specs]
        with self._lock:
            self._faults.extend(faults)
        return faults

    def clear(self):
        with self._lock:
            self._faults.clear()

    def pending(self):
        with self._lock:
            return [dict(f) for f in self._faults]

    def take(self, method, path):
        """The first fault matching the request, with one of its ``times`` used up; or None."""
        with self._lock:
            for fault in self._faults:
                if fault["method"] not in (None, method) or not path.startswith(fault["path_prefix"]):
                    continue
                fault["times"] -= 1
                if fault["times"] == 0:
                    self._faults.remove(fault)
                return dict(fault)
        return None


def fault_body(status, message=None):
    return {"statusCode": status, "message": message if message is not None else FAULT_MESSAGES.get(status, "Error")}


def drop_connection(environ):
    """Close the client's socket before any byte of an answer is sent, so the client sees a
    connection error. Works under werkzeug's server and gunicorn's sync workers; elsewhere
    raises ``DroppedConnection``."""
    sock = environ.get("werkzeug.socket") or environ.get("gunicorn.socket")
    if sock is None:
        raise DroppedConnection("the sandbox dropped this connection (injected fault)")
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
