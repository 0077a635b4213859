"""Decisions given on the web: an approver, signed in, approves or rejects on the request page.

The same domain rules as a reply by mail (``ApprovalRequest.decide``): only an approver of
the request, once, while it is pending, and not the requester approving their own request
unless the policy allows it. Channel ``web``; the evidence is the signed-in user and the
address the decision came from. Decision, webhook events, the outcome mail when the
request closes, and the audit record are one transaction.
"""

from __future__ import annotations

from replygate.domain.model import (
    ApprovalRequest,
    Channel,
    Decision,
    DecisionRefused,
    RefusalReason,
    Verdict,
)
from replygate.errors import Conflict, NotFound
from replygate.services.accounts import PermissionDenied
from replygate.services.ports import Clock, UnitOfWork
from replygate.services.requesting import OutboxKind
from replygate.services.webhooks import record_decision

MAX_COMMENT = 2000


def decide_on_web(
    uow: UnitOfWork,
    clock: Clock,
    request_id: str,
    *,
    approver: str | None,
    verdict: Verdict,
    comment: str = "",
    user: str,
    ip: str,
) -> ApprovalRequest:
    """Record ``approver``'s verdict (the signed-in user's email address) and return the request."""
    if not approver:
        raise PermissionDenied(
            f"{user} has no email address, so replygate cannot tell whether they are an approver",
            fix="ask an administrator to set your email address",
        )
    with uow:
        request = uow.requests.get(request_id)
        if request is None:
            raise NotFound(f"no approval request {request_id}")
        decision = Decision(
            approver=approver,
            verdict=verdict,
            comment=comment.strip()[:MAX_COMMENT],
            channel=Channel.WEB,
            decided_at=clock.now(),
            evidence={"user": user, "ip": ip},
        )
        try:
            request.decide(decision)
        except DecisionRefused as refused:
            if refused.reason is RefusalReason.NOT_AN_APPROVER:
                raise PermissionDenied(str(refused)) from None
            raise Conflict(f"not recorded: {refused}") from None
        uow.requests.save(request)
        record_decision(uow, request, request.decisions[-1])
        if request.state.is_closed:
            uow.outbox.add(OutboxKind.OUTCOME, {}, request_id=request.id)
        uow.audit.record(
            user,
            "request.decide",
            request.id,
            {"verdict": verdict.value, "approver": approver, "channel": "web", "ip": ip},
        )
        uow.commit()
    return request
