"""Graph change notifications: the validation handshake, and a wake-up for the worker.

Graph proves the URL with ``?validationToken=...`` (echoed as text/plain within 10 s),
then POSTs notifications carrying the subscription's ``clientState``; only those with
ours wake the worker (constant-time comparison). Nothing in a notification is trusted
beyond "look now": the delta round reads the mail itself.
"""

from __future__ import annotations

import json
import logging

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response

from replygate.graph.subscriptions import genuine_notifications
from replygate.web.csrf import csrf_exempt
from replygate.worker import subscription

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)

MAX_BODY = 1_000_000


async def _payload(request: Request) -> dict[str, object] | None:
    body = await request.body()
    if len(body) > MAX_BODY:
        return None
    try:
        parsed = json.loads(body or b"{}")
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def _validation(request: Request) -> Response | None:
    token = request.query_params.get("validationToken")
    if token is None:
        return None
    return PlainTextResponse(token[:1024], status_code=200)


@router.post(subscription.NOTIFICATION_PATH)
@csrf_exempt
async def notifications(request: Request) -> Response:
    handshake = _validation(request)
    if handshake is not None:
        return handshake
    container = request.state.container
    payload = await _payload(request)
    stored = subscription.load(container)
    if payload is None or stored is None:
        return Response(status_code=202)  # accepted and ignored: never tell a prober more
    if genuine_notifications(payload, stored.client_state, {stored.id}):
        container.read_now.set()
    return Response(status_code=202)


@router.post(subscription.LIFECYCLE_PATH)
@csrf_exempt
async def lifecycle(request: Request) -> Response:
    handshake = _validation(request)
    if handshake is not None:
        return handshake
    container = request.state.container
    payload = await _payload(request)
    stored = subscription.load(container)
    if payload is None or stored is None:
        return Response(status_code=202)
    for event in genuine_notifications(payload, stored.client_state, {stored.id}):
        kind = event.get("lifecycleEvent")
        log.info("Graph lifecycle event %s for subscription %s", kind, stored.id)
        if kind in ("subscriptionRemoved", "reauthorizationRequired"):
            subscription.forget(container)  # the next round subscribes again
        container.read_now.set()  # "missed" and the others: a delta round catches up
    return Response(status_code=202)
