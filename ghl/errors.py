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


def ghl_message(body, fallback):
    """GHL's own error text: ``message`` may be a string or a list of strings (422)."""
    if isinstance(body, dict):
        message = body.get("message") or body.get("error") or body.get("msg")
        if isinstance(message, list):
            message = "; ".join(str(m) for m in message)
        if message:
            return str(message)
    return fallback


def error_for_status(status, body, retry_after=None, scopes=()):
    """The GhlError for a final (non-retried) GHL error answer."""
    message = ghl_message(body, f"GHL answered {status}")
    details = {}
    if isinstance(body, dict) and body.get("traceId"):
        details["trace_id"] = body["traceId"]
    if status in (400, 422):
        return GhlError(status, "ghl_rejected_input", message, ghl_status=status, details=details)
    if status in AUTH_HINTS:
        hint = AUTH_HINTS[status].format(scopes=", ".join(scopes) or "see the catalog")
        details["hint"] = hint
        code = "ghl_unauthorized" if status == 401 else "ghl_forbidden"
        return GhlError(status, code, f"{message}. {hint}", ghl_status=status, details=details)
    if status == 404:
        return GhlError(404, "ghl_not_found", message, ghl_status=status, details=details)
    if status == 429:
        wait = retry_after if retry_after is not None else 10
        return GhlError(429, "ghl_rate_limited",
                        f"GHL's rate limit was reached; try again in {wait} seconds.",
                        retry_after=wait, ghl_status=status, details=details)
    if status >= 500:
        return GhlError(502, "ghl_unavailable", f"GHL failed with {status}: {message}", ghl_status=status,
                        details=details)
    return GhlError(502, "ghl_unexpected_status", f"GHL answered {status}: {message}", ghl_status=status,
                    details=details)
