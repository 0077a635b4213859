"""Webhooks: events queued with the change that caused them, delivered signed, retried.

Events (``Event``): request.created, request.sent, request.delivery_failed,
request.decision, request.closed. ``record_event`` is called inside the transaction of the
change, so an event exists exactly when its change was committed. Targets are the active
global subscriptions that want the event and the request's own callback URL.

The body is JSON: ``{"id": <event id>, "type": <event>, "created_at": <ISO 8601>,
"request": {...}, ...}``. Each POST carries::

    X-Replygate-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>

Receivers recompute the HMAC over the exact bytes received and refuse a ``t`` more than
``REPLAY_WINDOW`` (5 minutes) away from their clock; ``X-Replygate-Delivery`` (the event
id) lets them drop a retried event they already handled. A subscription's secret is shown
once when it is created; a request's callback secret is returned when the request is
created (it is derived from the instance's secret key, so rotating that key changes it).

Deliveries are claimed from their queue like the outbox (safe across replicas) and
retried with exponential backoff; every attempt is logged (status, duration, error).
URLs resolving to loopback, link-local (cloud metadata), private or otherwise non-global
addresses are refused, at subscription time and again before every POST, unless the
address is inside an allowed network (setting ``webhook_allow_networks``). Signing and URL
checks live in ``webhook_safety`` and are re-exported here.
"""

from __future__ import annotations

import json
import logging
import random
import secrets
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from replygate.domain.model import ApprovalRequest, Decision
from replygate.errors import Conflict, InvalidInput, NotFound
from replygate.services import changes
from replygate.services.ports import Clock, UnitOfWork
from replygate.services.webhook_ports import (
    Attempt,
    DeliveryItem,
    Event,
    Resolver,
    Sealer,
    Subscription,
    WebhookPoster,
)
from replygate.services.webhook_safety import REPLAY_WINDOW as REPLAY_WINDOW
from replygate.services.webhook_safety import Network
from replygate.services.webhook_safety import callback_secret as callback_secret
from replygate.services.webhook_safety import check_url as check_url
from replygate.services.webhook_safety import parse_networks as parse_networks
from replygate.services.webhook_safety import sign as sign
from replygate.services.webhook_safety import verify_signature as verify_signature

log = logging.getLogger(__name__)

SECRET_PURPOSE = "webhook secret"  # noqa: S105 - a purpose label, as in ENCRYPTED_COLUMNS
SIGNATURE_HEADER = "X-Replygate-Signature"
CLAIM_FOR = timedelta(minutes=2)
FIRST_RETRY = timedelta(seconds=10)
MAX_BACKOFF = timedelta(hours=1)
MAX_ATTEMPTS = 10


# -- events ------------------------------------------------------------------------------


def request_summary(request: ApprovalRequest) -> dict[str, Any]:
    return {
        "id": request.id,
        "title": request.title,
        "state": request.state.value,
        "requester": request.requester,
        "approvers": list(request.approvers),
        "policy": str(request.policy),
        "metadata": dict(request.metadata),
        "created_at": request.created_at.isoformat(),
        "expires_at": request.expires_at.isoformat(),
        "closed_at": request.closed_at.isoformat() if request.closed_at else None,
        "closed_reason": request.closed_reason,
        "decisions": [decision_summary(d) for d in request.decisions],
    }


def decision_summary(decision: Decision) -> dict[str, Any]:
    return {
        "approver": decision.approver,
        "verdict": decision.verdict.value,
        "comment": decision.comment,
        "channel": decision.channel.value,
        "decided_at": decision.decided_at.isoformat(),
    }


def record_event(
    uow: UnitOfWork, event: Event, request: ApprovalRequest | str | None, **data: Any
) -> int:
    """Queue ``event`` for every target, in the caller's transaction; return how many."""
    if request is None:
        return 0
    loaded = uow.requests.get(request) if isinstance(request, str) else request
    if loaded is None:
        return 0
    changes.publish(loaded.id)
    targets = uow.webhooks.targets(event.value, loaded.id)
    payload = {"request": request_summary(loaded), **data}
    event_id = f"evt_{uuid.uuid4().hex}"
    for target in targets:
        uow.webhooks.enqueue(
            target, event=event.value, event_id=event_id, payload=payload, request_id=loaded.id
        )
    return len(targets)


def record_decision(uow: UnitOfWork, request: ApprovalRequest, decision: Decision) -> None:
    """A decision, and the close it caused if it settled the request."""
    record_event(uow, Event.DECISION, request, decision=decision_summary(decision))
    if request.state.is_closed:
        record_event(uow, Event.CLOSED, request)


def record_mail_sent(uow: UnitOfWork, kind: str, request_id: str | None) -> None:
    """The outbox sent a mail: only the request mail itself is an event."""
    if kind == "request_mail":
        record_event(uow, Event.SENT, request_id)


def record_mail_failed(uow: UnitOfWork, kind: str, request_id: str | None, error: str) -> None:
    if kind == "request_mail":
        record_event(uow, Event.DELIVERY_FAILED, request_id, error=error[:2000])


# -- subscriptions -----------------------------------------------------------------------


def parse_events(values: Iterable[str]) -> frozenset[str]:
    try:
        return frozenset(Event(v).value for v in values)
    except ValueError:
        known = ", ".join(e.value for e in Event)
        raise InvalidInput(
            f"unknown webhook event in {sorted(values)}", fix=f"use {known}"
        ) from None


def subscribe(
    uow: UnitOfWork,
    sealer: Sealer,
    *,
    name: str,
    url: str,
    events: Iterable[str],
    by: str,
    resolve: Resolver,
    allowed: Sequence[Network] = (),
) -> tuple[Subscription, str]:
    """Add a global subscription; return it with its secret (shown once)."""
    label = name.strip()
    if not label or len(label) > 200:
        raise InvalidInput("name: 1 to 200 characters")
    if len(url) > 2000:
        raise InvalidInput("url: at most 2000 characters")
    check_url(url, resolve, allowed)
    wanted = parse_events(events)
    secret = "whsec_" + secrets.token_hex(32)
    with uow:
        if any(s.name == label for s in uow.webhooks.subscriptions()):
            raise Conflict(f"a webhook named {label!r} exists already")
        subscription = uow.webhooks.add_subscription(
            name=label,
            url=url,
            events=wanted,
            secret_encrypted=sealer.encrypt(secret, SECRET_PURPOSE),
            by=by,
        )
        uow.audit.record(by, "webhook.subscribe", f"webhook:{subscription.id}", {"url": url})
        uow.commit()
    return subscription, secret


def unsubscribe(uow: UnitOfWork, subscription_id: int, *, by: str) -> None:
    with uow:
        if not uow.webhooks.remove_subscription(subscription_id):
            raise NotFound(f"there is no webhook {subscription_id}")
        uow.audit.record(by, "webhook.unsubscribe", f"webhook:{subscription_id}")
        uow.commit()


# -- delivery ----------------------------------------------------------------------------


@dataclass(frozen=True)
class DeliveryContext:
    clock: Clock
    sealer: Sealer
    callback_key: bytes
    poster: WebhookPoster
    resolve: Resolver
    allowed: Sequence[Network] = ()
    worker: str = "worker"
    user_agent: str = "replygate"


@dataclass
class DeliveryReport:
    delivered: list[int] = field(default_factory=list)
    retrying: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)


def backoff(attempts: int) -> timedelta:
    """10 s, 20 s, 40 s ... up to an hour, spread by up to 20% so retries do not bunch."""
    base = FIRST_RETRY * (1 << min(max(attempts - 1, 0), 12))
    return min(base, MAX_BACKOFF) * random.uniform(1.0, 1.2)  # noqa: S311 - spreading, not security


def body_of(item: DeliveryItem) -> bytes:
    document = {"id": item.event_id, "type": item.event, "created_at": item.created_at.isoformat()}
    document.update(item.payload)
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


def deliver_due(
    uow_factory: Callable[[], UnitOfWork], ctx: DeliveryContext, limit: int = 20
) -> DeliveryReport:
    report = DeliveryReport()
    with uow_factory() as uow:
        items = uow.webhooks.claim_due(ctx.worker, ctx.clock.now() + CLAIM_FOR, limit)
        uow.commit()
    for item in items:
        _deliver_one(uow_factory, ctx, item, report)
    return report


def _secret_for(ctx: DeliveryContext, item: DeliveryItem) -> str:
    if item.secret_encrypted:
        return ctx.sealer.decrypt(item.secret_encrypted, SECRET_PURPOSE)
    return callback_secret(ctx.callback_key, item.request_id or "")


def _deliver_one(
    uow_factory: Callable[[], UnitOfWork],
    ctx: DeliveryContext,
    item: DeliveryItem,
    report: DeliveryReport,
) -> None:
    now = ctx.clock.now()
    status: int | None = None
    duration = 0
    error = ""
    permanent = False
    try:
        vetted = check_url(item.url, ctx.resolve, ctx.allowed)
        body = body_of(item)  # the same bytes on every attempt; only the signature changes
    except InvalidInput as refused:
        error, permanent = refused.message, True
    else:
        headers = {
            "Content-Type": "application/json",
            "User-Agent": ctx.user_agent,
            "X-Replygate-Event": item.event,
            "X-Replygate-Delivery": item.event_id,
            SIGNATURE_HEADER: sign(_secret_for(ctx, item), body, int(now.timestamp())),
        }
        try:
            # Pinned to a vetted address: a second lookup could answer differently (rebinding).
            result = ctx.poster.post(item.url, body, headers, connect_to=vetted[0])
            status, duration = result.status_code, result.duration_ms
            if not 200 <= status < 300:
                error = f"the receiver answered {status}"
        except OSError as failure:
            error = f"no answer: {failure}"[:2000]
    with uow_factory() as uow:
        uow.webhooks.record_attempt(item.id, Attempt(now, status, duration, error))
        if not error:
            uow.webhooks.mark_delivered(item.id, now, status or 200)
            report.delivered.append(item.id)
        elif permanent or item.attempts >= MAX_ATTEMPTS:
            uow.webhooks.mark_failed(item.id, status, error)
            report.failed.append(item.id)
        else:
            uow.webhooks.reschedule(item.id, now + backoff(item.attempts), status, error)
            report.retrying.append(item.id)
        uow.commit()
    if error:
        log.warning("webhook delivery %s to %s: %s", item.id, _host(item.url), error)


def _host(url: str) -> str:
    return urlsplit(url).hostname or "?"  # never the path or query: they may carry secrets
