"""What can go wrong talking to GHL, already translated into what the caller should answer."""


class GhlError(Exception):
    """A GHL call that did not succeed.

    ``status`` is the HTTP status this service should answer with, ``code`` a stable
    machine-readable name, ``message`` text for the Zapier user (never a token),
    ``retry_after`` seconds for a 429, and ``ghl_status`` what GHL itself answered (None when
    GHL never answered).
    """

    def __init__(self, status, code, message, retry_after=None, ghl_status=None, details=None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after
        self.ghl_status = ghl_status
        self.details = details or {}

    def to_json(self):
        error = {"code": self.code, "message": self.message}
        if self.ghl_status is not None:
            error["ghl_status"] = self.ghl_status
        if self.retry_after is not None:
            error["retry_after"] = self.retry_after
        error.update(self.details)
        return {"error": error}


AUTH_HINTS = {
    401: "GHL rejected the token: reconnect the account in Zapier (Private Integration tokens can be "
         "rotated or expired in GHL; OAuth access tokens last about a day).",
    403: "GHL refused access: check that the token belongs to this location and has the scopes this "
         "operation needs ({scopes}).",
}
# GHL's reason is quoted, bounded, in a message a Zapier user reads.
MAX_REASON_CHARS = 300


def _reason_text(value):
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return ""  # an object would reach the user as a blob
    return " ".join(str(value).split())


def ghl_message(body, fallback):
    """GHL's own error text, one line: ``message`` may be a string or a list of strings (422);
    some answers only name the ``error`` ("Bad Request")."""
    if isinstance(body, dict):
        for name in ("message", "error", "msg"):
            value = body.get(name)
            parts = value if isinstance(value, list) else [value]
            text = "; ".join(t for t in (_reason_text(p) for p in parts) if t)
            if text:
                return text if len(text) <= MAX_REASON_CHARS else text[:MAX_REASON_CHARS - 1] + "…"
    return fallback


def _with_reason(sentence, reason):
    """``sentence`` with GHL's ``reason`` in parentheses when GHL gave one."""
    return f"{sentence} ({reason})" if reason else sentence


def error_for_status(status, body, retry_after=None, scopes=()):
    """The GhlError for a final (non-retried) GHL error answer; its message is one sentence with
    GHL's reason (never the URL, headers or token)."""
    reason = ghl_message(body, "")
    details = {}
    if isinstance(body, dict) and isinstance(body.get("traceId"), str):
        details["trace_id"] = body["traceId"][:100]
    if status in (400, 422):
        # GHL's reason alone: the Zapier app says "GHL rejected the input: <reason>".
        return GhlError(status, "ghl_rejected_input", reason or f"GHL refused the request ({status})",
                        ghl_status=status, details=details)
    if status in AUTH_HINTS:
        hint = AUTH_HINTS[status].format(scopes=", ".join(scopes) or "see the catalog")
        details["hint"] = hint
        code = "ghl_unauthorized" if status == 401 else "ghl_forbidden"
        head, _, rest = hint.partition(": ")
        return GhlError(status, code, f"{_with_reason(head, reason)}: {rest}", ghl_status=status, details=details)
    if status == 404:
        return GhlError(404, "ghl_not_found", _with_reason("GHL found no such record", reason) + ".",
                        ghl_status=status, details=details)
    if status == 429:
        wait = retry_after if retry_after is not None else 10
        return GhlError(429, "ghl_rate_limited",
                        f"GHL's rate limit was reached; try again in {wait} seconds.",
                        retry_after=wait, ghl_status=status, details=details)
    if status >= 500:
        answered = f"it answered {status}: {reason}" if reason else f"it answered {status}"
        return GhlError(502, "ghl_unavailable", f"GHL is unavailable right now ({answered}); try again later.",
                        ghl_status=status, details=details)
    unexpected = _with_reason(f"GHL answered {status}, which this service does not expect", reason)
    return GhlError(502, "ghl_unexpected_status", unexpected + ".", ghl_status=status, details=details)
