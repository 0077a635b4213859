"""The API's request and response bodies (they are the OpenAPI document's schemas)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from replygate.services.querying import RequestDetail, RequestView
from replygate.services.webhook_ports import DeliveryLog, Subscription

State = Literal["pending", "approved", "rejected", "expired", "cancelled"]
Address = Annotated[str, Field(min_length=3, max_length=320, examples=["ann@contoso.com"])]


class Problem(BaseModel):
    """RFC 9457 problem details: every error of the API."""

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    fix: str | None = None


class ApprovalCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=300, description="One line: what to approve.")
    approvers: list[Address] = Field(min_length=1, max_length=500)
    policy: str = Field(
        "any",
        pattern=r"^(?i:any|all|quorum[:= ]?\d{1,3})$",
        description="`any` (one approval), `all`, or `quorum:N`. One reject rejects.",
    )
    details: str = Field("", max_length=20_000, description="Markdown shown in the mail.")
    metadata: dict[Annotated[str, Field(min_length=1, max_length=100)], str] = Field(
        default_factory=dict,
        description="Free key/value pairs (pipeline URL, environment, version...); "
        "filterable in the list.",
        max_length=50,
    )
    expires_in_seconds: int = Field(86_400, gt=0, le=90 * 86_400)
    remind_after_seconds: int | None = Field(None, gt=0, le=90 * 86_400)
    requester: Address | None = Field(
        None, description="Who asks; default: the email of the token's user."
    )
    allow_self_approval: bool = False
    allow_delegates: bool = False
    callback_url: str | None = Field(
        None,
        max_length=2000,
        description="Receives this request's webhook events, signed with `callback_secret`.",
    )


class Cancel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field("", max_length=500)


class Resent(BaseModel):
    resent: int = Field(ge=1, description="How many failed mails were queued to be sent again.")


class DecisionRead(BaseModel):
    approver: str
    verdict: Literal["approve", "reject"]
    comment: str
    channel: str
    decided_at: datetime
    evidence: dict[str, Any] = Field(description="Where the decision came from (mail ids...).")


class ApproverRead(BaseModel):
    address: str
    delivery_state: str = Field(description="`pending`, or `failed` when the mail bounced.")
    delivery_error: str
    decision: DecisionRead | None


class ApprovalRead(BaseModel):
    id: str
    token: str = Field(description="The reply token in the mail's subject: RG-<instance>-<id>.")
    title: str
    details: str
    state: State
    requester: str
    policy: str
    approvals_needed: int
    approvers: list[ApproverRead]
    decisions: list[DecisionRead]
    metadata: dict[str, str]
    created_at: datetime
    expires_at: datetime
    closed_at: datetime | None
    closed_reason: str
    created_by: str | None
    callback_url: str | None


class ApprovalCreated(ApprovalRead):
    callback_secret: str | None = Field(
        None, description="Signs this request's callbacks; returned only on create."
    )


class TimelineRead(BaseModel):
    at: datetime
    kind: str
    summary: str
    details: dict[str, Any]


class AttemptRead(BaseModel):
    at: datetime
    status_code: int | None
    duration_ms: int
    error: str


class DeliveryRead(BaseModel):
    id: int
    url: str
    event: str
    event_id: str
    state: str
    attempts: int
    created_at: datetime
    next_attempt_at: datetime
    delivered_at: datetime | None
    last_status: int | None
    last_error: str
    request_id: str | None
    subscription_id: int | None
    log: list[AttemptRead]


class ApprovalDetail(ApprovalRead):
    timeline: list[TimelineRead]
    webhooks: list[DeliveryRead]


class ApprovalList(BaseModel):
    items: list[ApprovalRead]
    total: int
    limit: int
    offset: int
    next_offset: int | None = Field(description="Pass as `offset` for the next page; null: done.")


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    url: str = Field(min_length=8, max_length=2000)
    events: list[str] = Field(
        default_factory=list, description="Events to receive; empty: all of them."
    )


class WebhookRead(BaseModel):
    id: int
    name: str
    url: str
    events: list[str]
    active: bool
    created_at: datetime
    created_by: str


class WebhookCreated(WebhookRead):
    secret: str = Field(description="Signs every delivery; shown only now.")


def approval_read(view: RequestView, instance: str) -> dict[str, Any]:
    request = view.request
    decisions = [decision_read(d) for d in request.decisions]
    return {
        "id": request.id,
        "token": f"RG-{view.facts.instance or instance}-{request.id}",
        "title": request.title,
        "details": request.details,
        "state": request.state.value,
        "requester": request.requester,
        "policy": str(request.policy),
        "approvals_needed": request.approvals_needed,
        "approvers": [
            {
                "address": a.address,
                "delivery_state": a.delivery_state,
                "delivery_error": a.delivery_error,
                "decision": decision_read(a.decision) if a.decision else None,
            }
            for a in view.approvers
        ],
        "decisions": decisions,
        "metadata": dict(request.metadata),
        "created_at": request.created_at,
        "expires_at": request.expires_at,
        "closed_at": request.closed_at,
        "closed_reason": request.closed_reason,
        "created_by": view.facts.created_by,
        "callback_url": view.facts.callback_url,
    }


def decision_read(decision: Any) -> dict[str, Any]:
    return {
        "approver": decision.approver,
        "verdict": decision.verdict.value,
        "comment": decision.comment,
        "channel": decision.channel.value,
        "decided_at": decision.decided_at,
        "evidence": dict(decision.evidence),
    }


def delivery_read(log: DeliveryLog) -> dict[str, Any]:
    return {
        "id": log.id,
        "url": log.url,
        "event": log.event,
        "event_id": log.event_id,
        "state": log.state,
        "attempts": log.attempts,
        "created_at": log.created_at,
        "next_attempt_at": log.next_attempt_at,
        "delivered_at": log.delivered_at,
        "last_status": log.last_status,
        "last_error": log.last_error,
        "request_id": log.request_id,
        "subscription_id": log.subscription_id,
        "log": [
            {
                "at": a.at,
                "status_code": a.status_code,
                "duration_ms": a.duration_ms,
                "error": a.error,
            }
            for a in log.log
        ],
    }


def approval_detail(detail: RequestDetail, instance: str) -> dict[str, Any]:
    body = approval_read(detail, instance)
    body["timeline"] = [
        {"at": e.at, "kind": e.kind, "summary": e.summary, "details": dict(e.details)}
        for e in detail.timeline
    ]
    body["webhooks"] = [delivery_read(d) for d in detail.webhooks]
    return body


def webhook_read(subscription: Subscription) -> dict[str, Any]:
    return {
        "id": subscription.id,
        "name": subscription.name,
        "url": subscription.url,
        "events": sorted(subscription.events),
        "active": subscription.active,
        "created_at": subscription.created_at,
        "created_by": subscription.created_by,
    }
