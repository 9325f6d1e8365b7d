"""REST hook subscriptions (``/hooks``): Zapier's performSubscribe, performUnsubscribe and
performList for instant triggers. The worker (``triggers.hooks_worker``) does the pushing.

A subscription belongs to the credential (``ghl.credentials``) of the token that made it; one
credential holds at most ``HOOK_MAX_PER_CREDENTIAL``. Anyone else is told it does not exist.
"""

import hmac
import time

from flask import Blueprint, current_app, jsonify

from catalog.inputs import fill_location, validate_inputs
from ghl.credentials import credential_id
from ghl.errors import GhlError
from server.app import services
from server.errors import ApiError
from server.routes.caller import bearer_token, json_body_object, location_header, operation, request_inputs
from triggers.hook_delivery import InvalidTargetUrl, check_target_url
from triggers.hooks_store import (HookLimitReached, TokenCipher, TokenUnreadable, iso_time,
                                  new_hook_id, scope_for_hook)
from triggers.poll import PollLimits, poll_into_backlog, sample_items

blueprint = Blueprint("hooks", __name__)


def _secret_key():
    """Hooks store tokens, so they need a real SECRET_KEY, not the development key file."""
    secret = services().settings.secret_key
    if not secret:
        raise ApiError(503, "secret_key_missing",
                       "REST hooks are disabled: this server has no SECRET_KEY to encrypt stored tokens with. "
                       "Set SECRET_KEY and restart (make run sets one for local development).")
    return secret


def _hook_store(secret):
    stores = current_app.extensions.setdefault("ghl_zapier_hooks", {})
    if "store" not in stores:
        stores["store"] = services().backend.hook_store(TokenCipher(secret))
    return stores["store"]


def _json_object():
    return json_body_object('The request body must be a JSON object: {"trigger", "target_url", "inputs"}.',
                            required=True)


def _trigger_inputs(record, raw):
    return validate_inputs(record, fill_location(record, raw, location_header()))


def _unknown_hook():
    return ApiError(404, "unknown_hook", "There is no hook subscription with this id for this token.")


def _hook_limit_reached(limit):
    return ApiError(403, "hook_limit_reached",
                    f"This connection already has {limit} REST hook subscriptions, the most this server allows "
                    f"per credential (HOOK_MAX_PER_CREDENTIAL={limit}). Turn off an instant Zap you no longer "
                    "need, or ask the server's operator to raise HOOK_MAX_PER_CREDENTIAL.", limit=limit)


def _holds_stored_token(hooks, subscription, token):
    try:
        stored = hooks.token(subscription)
    except TokenUnreadable:
        return False
    return hmac.compare_digest(stored.encode("utf-8"), token.encode("utf-8"))


def _ghl_accepts(subscription, token):
    """True when GHL answers 2xx to ``token`` for the subscription's trigger and inputs (one page)."""
    shared = services()
    record = shared.catalog.get(subscription.trigger)
    if record is None:
        return False
    try:
        sample_items(shared.client, record, subscription.inputs, token, PollLimits.from_settings(shared.settings))
    except GhlError:
        return False
    return True


def _owned_subscription(hook_id, secret, token):
    """The subscription ``hook_id`` if the caller may manage it; None when it does not exist.

    The caller may when it presents the very token stored with it, or, with another token of
    the same credential (an OAuth connection whose token was refreshed), once GHL accepts that
    token for the subscription's trigger and inputs: an OAuth credential id comes from the
    token's unverified claims, so here, unlike in a poll, nothing else proves the token genuine.
    Anyone else is answered 404, as if the subscription did not exist."""
    hooks = _hook_store(secret)
    subscription = hooks.get(hook_id)
    if subscription is None:
        return None
    if not hmac.compare_digest(subscription.owner, credential_id(secret, token)):
        raise _unknown_hook()
    if not _holds_stored_token(hooks, subscription, token) and not _ghl_accepts(subscription, token):
        raise _unknown_hook()
    return subscription


@blueprint.route("/hooks", methods=["POST"])
def subscribe():
    secret = _secret_key()
    body = _json_object()
    trigger = body.get("trigger")
    if not isinstance(trigger, str) or not trigger:
        raise ApiError(400, "invalid_trigger", "Give the trigger's key in 'trigger'.")
    record = operation(trigger, ("trigger",))
    token = bearer_token()
    shared = services()
    try:
        target_url = check_target_url(body.get("target_url"), shared.settings.hook_target_hosts,
                                      shared.settings.hook_allow_http)
    except InvalidTargetUrl as exc:
        raise ApiError(400, "invalid_target_url", str(exc)) from None
    raw_inputs = body.get("inputs")
    if raw_inputs is None:
        raw_inputs = {}
    if not isinstance(raw_inputs, dict):
        raise ApiError(400, "invalid_input", "'inputs' must be a JSON object.")
    inputs = _trigger_inputs(record, raw_inputs)

    hooks = _hook_store(secret)
    owner = credential_id(secret, token)
    limit = shared.settings.hook_max_per_credential
    # Checked before seeding spends GHL requests; checked again, atomically, by create.
    if hooks.count_owned(owner) >= limit:
        raise _hook_limit_reached(limit)
    hook_id = new_hook_id()
    now = time.time()
    # Seeding: what GHL holds now counts as delivered. A GHL error propagates, and nothing was recorded.
    poll_into_backlog(shared.client, shared.store, record, inputs, token, scope_for_hook(hook_id),
                      PollLimits.from_settings(shared.settings), seed=True, now=now)
    try:
        subscription = hooks.create(hook_id, trigger, inputs, token, owner, target_url,
                                    shared.settings.hook_poll_seconds, now, max_per_owner=limit)
    except HookLimitReached:
        shared.store.forget_scope(scope_for_hook(hook_id))
        raise _hook_limit_reached(limit) from None
    except Exception:
        shared.store.forget_scope(scope_for_hook(hook_id))
        raise
    response = jsonify({"id": subscription.id, "trigger": subscription.trigger,
                        "target_url": subscription.target_url})
    response.status_code = 201
    return response


@blueprint.route("/hooks/<hook_id>", methods=["DELETE"])
def unsubscribe(hook_id):
    secret = _secret_key()
    token = bearer_token()
    subscription = _owned_subscription(hook_id, secret, token)
    if subscription is not None:
        _hook_store(secret).delete(hook_id)
        services().store.forget_scope(subscription.scope)
    return jsonify({"id": hook_id, "deleted": True})


@blueprint.route("/hooks/<hook_id>", methods=["GET"])
def state(hook_id):
    secret = _secret_key()
    token = bearer_token()
    subscription = _owned_subscription(hook_id, secret, token)
    if subscription is None:
        raise _unknown_hook()
    return jsonify({
        "id": subscription.id,
        "trigger": subscription.trigger,
        "inputs": subscription.inputs,
        "target_url": subscription.target_url,
        "interval_seconds": subscription.interval_seconds,
        "created_at": iso_time(subscription.created_at),
        "last_poll_at": iso_time(subscription.last_poll_at),
        "next_poll_at": iso_time(subscription.next_poll_at),
        "last_delivery_at": iso_time(subscription.last_delivery_at),
        "last_error": subscription.last_error,
        "last_error_at": iso_time(subscription.last_error_at),
        "delivery_failures": subscription.delivery_failures,
        "next_delivery_at": iso_time(subscription.next_delivery_at),
        "pending": services().store.backlog(subscription.scope),
    })


@blueprint.route("/hooks/sample/<trigger>", methods=["GET", "POST"])
def sample(trigger):
    """performList: GHL's newest items, shaped exactly as deliveries shape them; nothing is recorded."""
    record = operation(trigger, ("trigger",))
    token = bearer_token()
    inputs = _trigger_inputs(record, request_inputs())
    shared = services()
    return jsonify(sample_items(shared.client, record, inputs, token, PollLimits.from_settings(shared.settings),
                                app_url=shared.settings.ghl_app_url))
