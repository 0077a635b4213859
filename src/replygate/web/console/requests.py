"""Dashboard, the list of approval requests, and one request's page (cancel, approve, reject,
send failed mail again)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from replygate.domain.model import ApprovalRequest, Decision, RequestState, Verdict
from replygate.errors import NotFound
from replygate.mail.compose import details as render_details
from replygate.services import changes, deciding, querying, requesting, resending
from replygate.services.account_ports import Role
from replygate.services.query_ports import RequestFilter
from replygate.web.auth import Principal, client_address
from replygate.web.console.common import (
    Admin,
    Requester,
    Viewer,
    ago,
    container_of,
    notify,
    take_notice,
)
from replygate.web.health import HealthRegistry
from replygate.web.templating import render

router = APIRouter(include_in_schema=False)
STATES = [state.value for state in RequestState]
PAGE = 25


@router.get("/")
def dashboard(request: Request, who: Viewer) -> Response:
    container = container_of(request)
    registry: HealthRegistry = request.state.health
    checks = registry.run(container)
    pending = querying.list_requests(container.uow(), RequestFilter(state="pending"), limit=20)
    recent = querying.list_requests(container.uow(), RequestFilter(), limit=50)
    decisions: list[tuple[ApprovalRequest, Decision]] = sorted(
        ((view.request, d) for view in recent.items for d in view.request.decisions),
        key=lambda pair: pair[1].decided_at,
        reverse=True,
    )[:10]
    context = {
        "title": "Dashboard",
        "problems": [c for c in checks if c.status != "ok"],
        "pending": pending,
        "decisions": decisions,
        "now": container.clock.now(),
        "ago": ago,
        "notice": take_notice(request),
    }
    return render(request, "console/dashboard.html", context)


@router.get("/requests")
def request_list(request: Request, who: Viewer, state: str = "", offset: int = 0) -> Response:
    container = container_of(request)
    chosen = state if state in STATES else None
    page = querying.list_requests(
        container.uow(), RequestFilter(state=chosen), limit=PAGE, offset=max(0, offset)
    )
    context = {
        "title": "Approval requests",
        "page": page,
        "state": chosen or "",
        "states": STATES,
        "now": container.clock.now(),
        "ago": ago,
    }
    return render(request, "console/requests.html", context)


def _may_cancel(who: Principal, created_by: str | None) -> bool:
    return who.role is Role.ADMIN or (who.role.includes(Role.REQUESTER) and created_by == who.name)


@router.get("/requests/{request_id}")
def request_page(request: Request, request_id: str, who: Viewer) -> Response:
    container = container_of(request)
    detail = querying.request_detail(container.uow(), request_id)
    req = detail.request
    email = who.user.email
    mine = email is not None and req.is_approver(email) and req.decision_of(email) is None
    # Only admins fix what made mail fail (Send As, the mailbox), so only they send it again.
    failed = (
        resending.failed_mail(container.uow(), req.id)
        if who.role is Role.ADMIN and not req.state.is_closed
        else []
    )
    context = {
        "title": req.title,
        "detail": detail,
        "req": req,
        "token": f"RG-{detail.facts.instance}-{req.id}",
        "details_html": render_details(req.details)[1] if req.details.strip() else "",
        "may_cancel": not req.state.is_closed and _may_cancel(who, detail.facts.created_by),
        "may_decide": mine and not req.state.is_closed,
        "self_approval_blocked": mine
        and email is not None
        and email.lower() == req.requester
        and not req.policy.allow_self_approval,
        "failed_mail": failed,
        "now": container.clock.now(),
        "ago": ago,
        "notice": take_notice(request),
    }
    return render(request, "console/request.html", context)


@router.post("/requests/{request_id}/cancel")
def cancel(
    request: Request,
    request_id: str,
    who: Requester,
    reason: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    container = container_of(request)
    view = querying.request_view(container.uow(), request_id)
    if not _may_cancel(who, view.facts.created_by):
        raise NotFound(f"no approval request {request_id} of yours")
    requesting.cancel_request(
        container.uow(), container.clock, view.request.id, by=who.name, reason=reason.strip()
    )
    changes.publish(view.request.id)
    notify(request, "The request was cancelled; its approvers are told by mail.")
    return RedirectResponse(f"/requests/{view.request.id}", status_code=303)


@router.post("/requests/{request_id}/resend")
def resend(request: Request, request_id: str, who: Admin) -> Response:
    """Queue the request's failed mail again, after the cause was fixed."""
    container = container_of(request)
    rid = querying.normalise_id(request_id)
    count = resending.resend_failed(container.uow(), container.clock, rid, by=who.name)
    changes.publish(rid)
    notify(request, f"{count} mail{'s' if count != 1 else ''} queued to be sent again.")
    return RedirectResponse(f"/requests/{rid}", status_code=303)


@router.post("/requests/{request_id}/decide")
def decide(
    request: Request,
    request_id: str,
    who: Viewer,
    verdict: Annotated[Verdict, Form()],
    comment: Annotated[str, Form(max_length=deciding.MAX_COMMENT)] = "",
) -> Response:
    """Approve or reject as the signed-in approver: always a POST (mail scanners GET links)."""
    container = container_of(request)
    done = deciding.decide_on_web(
        container.uow(),
        container.clock,
        querying.normalise_id(request_id),
        approver=who.user.email,
        verdict=verdict,
        comment=comment,
        user=who.name,
        ip=client_address(request),
    )
    changes.publish(done.id)
    word = "approved" if verdict is Verdict.APPROVE else "rejected"
    outcome = "" if done.state is RequestState.PENDING else f" The request is now {done.state}."
    notify(request, f"You {word} this request.{outcome}")
    return RedirectResponse(f"/requests/{done.id}", status_code=303)
