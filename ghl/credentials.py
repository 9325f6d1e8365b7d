"""Credential identity: a stable, keyed name for whoever holds a GHL token, never the token.

``credential_id(secret, token)`` names the *credential* a token belongs to. Dedupe scopes and
REST-hook ownership are bound to it, so two credentials never share state.

- A Private Integration token, or any token that is not a GHL OAuth access token, is its own
  credential: ``"t:" + HMAC-SHA256(secret, token)[:32]``.
- A GHL OAuth access token is a JWT naming the app (``oauthMeta.client``, else ``sourceId``),
  the kind of account it is for (``authClass``: ``Location`` or ``Company``) and that account's
  id (``authClassId``). It changes on every daily refresh, but the connection it belongs to does
  not, so its credential is ``"o:" + HMAC-SHA256(secret, canonical(client, authClass,
  authClassId))[:32]``.

The JWT's signature is not verified here (the service has no key to verify it with), and
for dedupe it need not be: a poll reads or changes stored state only after GHL has answered
2xx to that very token for those inputs (``triggers.poll``), and GHL rejects a forged JWT, so
a forged token claiming someone else's connection never reaches their scope. Where nothing
else proves a token genuine (managing a REST hook with a refreshed token) the caller must
have GHL accept the token first.
"""

import base64
import binascii
import hashlib
import hmac
import json
import re

TOKEN_PREFIX = "t:"
OAUTH_PREFIX = "o:"
# GHL access tokens are about 1-2 KB; anything far larger is not one of them.
MAX_JWT_LENGTH = 8192
MAX_CLAIM_LENGTH = 256
_SEGMENT = re.compile(r"^[A-Za-z0-9_-]+$")


def credential_id(secret, token):
    """The credential ``token`` belongs to, keyed by ``secret``: ``"o:<32 hex>"`` for a GHL OAuth
    access token (the same for every refresh of one connection), ``"t:<32 hex>"`` for any other
    token. Never raises on any string token; reveals nothing about the token."""
    claims = oauth_connection_claims(token)
    if claims is None:
        return TOKEN_PREFIX + _keyed_digest(secret, token)
    canonical = json.dumps(["ghl-oauth", *claims], separators=(",", ":"))
    return OAUTH_PREFIX + _keyed_digest(secret, canonical)


def oauth_connection_claims(token):
    """``(client, authClass, authClassId)`` when ``token`` is shaped like a GHL OAuth access
    token (a JWT whose payload carries all three as non-empty strings); None otherwise."""
    payload = _jwt_payload(token)
    if payload is None:
        return None
    meta = payload.get("oauthMeta")
    client = meta.get("client") if isinstance(meta, dict) else None
    if not _is_claim(client):
        client = payload.get("sourceId")
    auth_class, auth_class_id = payload.get("authClass"), payload.get("authClassId")
    if not all(_is_claim(value) for value in (client, auth_class, auth_class_id)):
        return None
    return client, auth_class, auth_class_id


def _jwt_payload(token):
    """The decoded payload object of a three-segment base64url JWT; None for any other shape."""
    if not isinstance(token, str) or len(token) > MAX_JWT_LENGTH:
        return None
    segments = token.split(".")
    if len(segments) != 3 or not all(_SEGMENT.match(segment) for segment in segments):
        return None
    encoded = segments[1]
    try:
        raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        payload = json.loads(raw.decode("utf-8"))
    except (binascii.Error, ValueError, RecursionError):
        # ValueError covers bad UTF-8 and bad JSON alike.
        return None
    return payload if isinstance(payload, dict) else None


def _is_claim(value):
    return isinstance(value, str) and 0 < len(value) <= MAX_CLAIM_LENGTH


def _keyed_digest(secret, text):
    message = text.encode("utf-8", "surrogatepass")
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()[:32]
