"""``/api/v1/webhooks``: global webhook subscriptions (admins) and their delivery log."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from replygate.errors import NotFound
from replygate.services import webhooks
from replygate.services.account_ports import Scope
from replygate.web.api.common import container_of, problems
from replygate.web.api.schemas import (
    DeliveryRead,
    WebhookCreate,
    WebhookCreated,
    WebhookRead,
    delivery_read,
    webhook_read,
)
from replygate.web.auth import Principal, require_scope

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"])
Reader = Annotated[Principal, Depends(require_scope(Scope.SETTINGS_READ))]
Writer = Annotated[Principal, Depends(require_scope(Scope.SETTINGS_WRITE))]
WebhookId = Annotated[int, Path(ge=1, le=2**31 - 1)]


@router.get("", response_model=list[WebhookRead], responses=problems(401, 403))
def list_webhooks(request: Request, _: Reader) -> list[dict[str, Any]]:
    """Every global subscription (secrets are never shown again)."""
    with container_of(request).uow() as uow:
        return [webhook_read(s) for s in uow.webhooks.subscriptions()]


@router.post(
    "",
    status_code=201,
    response_model=WebhookCreated,
    responses=problems(400, 401, 403, 409, 422),
    description="Subscribe a URL to events. The answer holds the signing secret, shown once. "
    "URLs that resolve to loopback, link-local, metadata or private addresses are refused "
    "unless REPLYGATE_WEBHOOK_ALLOW_NETWORKS allows them.",
)
def create_webhook(body: WebhookCreate, request: Request, who: Writer) -> dict[str, Any]:
    from replygate.worker.webhook_http import resolve

    container = container_of(request)
    subscription, secret = webhooks.subscribe(
        container.uow(),
        container.secrets,
        name=body.name,
        url=body.url,
        events=body.events,
        by=who.name,
        resolve=resolve,
        allowed=webhooks.parse_networks(container.settings.webhook_allow_networks),
    )
    return {**webhook_read(subscription), "secret": secret}


@router.delete("/{webhook_id}", status_code=204, responses=problems(401, 403, 404, 422))
def delete_webhook(request: Request, webhook_id: WebhookId, who: Writer) -> Response:
    """Remove a subscription and its queued deliveries."""
    webhooks.unsubscribe(container_of(request).uow(), webhook_id, by=who.name)
    return Response(status_code=204)


@router.get(
    "/{webhook_id}/deliveries",
    response_model=list[DeliveryRead],
    responses=problems(401, 403, 404, 422),
)
def list_deliveries(
    request: Request,
    webhook_id: WebhookId,
    _: Reader,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[dict[str, Any]]:
    """The delivery log: each event sent to this webhook, with every attempt."""
    with container_of(request).uow() as uow:
        if uow.webhooks.get_subscription(webhook_id) is None:
            raise NotFound(f"there is no webhook {webhook_id}")
        return [
            delivery_read(d)
            for d in uow.webhooks.deliveries(subscription_id=webhook_id, limit=limit)
        ]
