"""``/api/v1/approvals``: create, list, get, cancel, resend and wait for approval requests."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response

from replygate.domain.model import InvalidRequest, Policy
from replygate.errors import Conflict, InvalidInput, NotFound
from replygate.services import changes, querying, requesting, resending, webhooks
from replygate.services.account_ports import Role, Scope
from replygate.services.query_ports import RequestFilter
from replygate.web.api.common import container_of, problems
from replygate.web.api.schemas import (
    ApprovalCreate,
    ApprovalCreated,
    ApprovalDetail,
    ApprovalList,
    ApprovalRead,
    Cancel,
    Resent,
    State,
    approval_detail,
    approval_read,
)
from replygate.web.api.waiting import WaitHub
from replygate.web.auth import Principal, require_scope

router = APIRouter(prefix="/api/v1/approvals", tags=["approvals"])
Reader = Annotated[Principal, Depends(require_scope(Scope.APPROVALS_READ))]
Writer = Annotated[Principal, Depends(require_scope(Scope.APPROVALS_WRITE))]
Admin = Annotated[Principal, Depends(require_scope(Scope.SETTINGS_WRITE))]
RequestId = Annotated[
    str,
    Path(
        min_length=1,
        max_length=80,
        description="The request id, or its whole reply token RG-<instance>-<id>.",
    ),
]
MAX_WAIT = 300.0


def _draft(body: ApprovalCreate, who: Principal, key: str | None) -> requesting.RequestDraft:
    try:
        policy = Policy.parse(
            body.policy,
            allow_self_approval=body.allow_self_approval,
            allow_delegates=body.allow_delegates,
        )
    except InvalidRequest as error:
        raise InvalidInput(str(error)) from None
    requester = body.requester or who.user.email
    if not requester:
        raise InvalidInput(
            f"requester: none given, and the user {who.name} has no email address",
            fix="send `requester` (an email address)",
        )
    return requesting.RequestDraft(
        title=body.title,
        approvers=body.approvers,
        requester=requester,
        policy=policy,
        details=body.details,
        metadata=body.metadata,
        expires_in=timedelta(seconds=body.expires_in_seconds),
        remind_after=(
            timedelta(seconds=body.remind_after_seconds) if body.remind_after_seconds else None
        ),
        callback_url=body.callback_url,
        # Keys are the caller's own: another user's key never returns their request.
        idempotency_key=f"{who.user.id}:{key}" if key else None,
    )


def _check_callback(request: Request, url: str | None) -> None:
    if url is None:
        return
    from replygate.worker.webhook_http import resolve

    settings = container_of(request).settings
    webhooks.check_url(url, resolve, webhooks.parse_networks(settings.webhook_allow_networks))


@router.post(
    "",
    status_code=201,
    response_model=ApprovalCreated,
    summary="Create an approval request",
    description="Stores the request and queues its mail. With an `Idempotency-Key`, a retry "
    "with the same key answers 200 with the request made the first time.",
    responses={
        200: {"model": ApprovalCreated, "description": "Replayed"},
        **problems(400, 401, 403, 409, 422),
    },
)
def create_approval(
    body: ApprovalCreate,
    request: Request,
    response: Response,
    who: Writer,
    idempotency_key: Annotated[
        str | None, Header(alias="Idempotency-Key", min_length=1, max_length=150)
    ] = None,
) -> dict[str, Any]:
    container = container_of(request)
    _check_callback(request, body.callback_url)
    draft = _draft(body, who, idempotency_key)
    created = requesting.create_request(
        container.uow(), container.clock, container.settings.instance, draft, created_by=who.name
    )
    if created.replayed and (
        created.request.title != body.title.strip()
        or set(created.request.approvers) != {a.strip().lower() for a in body.approvers}
    ):
        raise Conflict(
            "this Idempotency-Key was used for a different request",
            fix="use a new key for a new request",
        )
    response.status_code = 200 if created.replayed else 201
    response.headers["Location"] = f"/api/v1/approvals/{created.request.id}"
    changes.publish(created.request.id)
    view = querying.request_view(container.uow(), created.request.id)
    body_out = approval_read(view, container.settings.instance)
    if body.callback_url:
        body_out["callback_secret"] = webhooks.callback_secret(
            container.secrets.key, created.request.id
        )
    return body_out


@router.get(
    "",
    response_model=ApprovalList,
    summary="List approval requests",
    description="Newest first. Filters combine; `metadata` is repeatable as `key=value`.",
    responses=problems(401, 403, 422),
)
def list_approvals(
    request: Request,
    _: Reader,
    state: State | None = None,
    requester: Annotated[str | None, Query(max_length=320)] = None,
    metadata: Annotated[list[str], Query(max_length=20, description="key=value")] = [],  # noqa: B006
    limit: Annotated[int, Query(ge=1, le=querying.MAX_PAGE)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> dict[str, Any]:
    container = container_of(request)
    where = RequestFilter(state, requester, querying.parse_metadata_filters(metadata))
    page = querying.list_requests(container.uow(), where, limit=limit, offset=offset)
    return {
        "items": [approval_read(v, container.settings.instance) for v in page.items],
        "total": page.total,
        "limit": page.limit,
        "offset": page.offset,
        "next_offset": page.next_offset,
    }


@router.get(
    "/{request_id}",
    response_model=ApprovalDetail,
    summary="An approval request with its approvers, decisions and timeline",
    responses=problems(401, 403, 404, 422),
)
def get_approval(request: Request, request_id: RequestId, _: Reader) -> dict[str, Any]:
    container = container_of(request)
    detail = querying.request_detail(container.uow(), request_id)
    return approval_detail(detail, container.settings.instance)


@router.post(
    "/{request_id}/cancel",
    response_model=ApprovalRead,
    summary="Cancel a pending approval request",
    description="Its approvers are told. Requesters cancel requests they created; admins any.",
    responses=problems(400, 401, 403, 404, 409, 422),
)
def cancel_approval(
    request: Request, request_id: RequestId, who: Writer, body: Cancel | None = None
) -> dict[str, Any]:
    container = container_of(request)
    view = querying.request_view(container.uow(), request_id)
    if who.role is not Role.ADMIN and view.facts.created_by != who.name:
        raise NotFound(f"no approval request {request_id} of yours")
    requesting.cancel_request(
        container.uow(),
        container.clock,
        view.request.id,
        by=who.name,
        reason=body.reason if body else "",
    )
    changes.publish(view.request.id)
    view = querying.request_view(container.uow(), view.request.id)
    return approval_read(view, container.settings.instance)


@router.post(
    "/{request_id}/resend",
    response_model=Resent,
    summary="Send a pending request's failed mail again",
    description="After fixing what made its mail fail for good (Send As missing, a recipient "
    "refused), queue every failed mail of the request again. Needs the settings:write scope "
    "(admins). 409 when the request is closed or has no failed mail.",
    responses=problems(401, 403, 404, 409, 422),
)
def resend_approval(request: Request, request_id: RequestId, who: Admin) -> dict[str, Any]:
    container = container_of(request)
    rid = querying.normalise_id(request_id)
    count = resending.resend_failed(container.uow(), container.clock, rid, by=who.name)
    changes.publish(rid)
    return {"resent": count}


def _hub(request: Request) -> WaitHub:
    hub: WaitHub | None = getattr(request.app.state, "wait_hub", None)
    if hub is None or not hub.serves(asyncio.get_running_loop()):
        container = container_of(request)
        hub = WaitHub(lambda ids: querying.states(container.uow(), ids))
        request.app.state.wait_hub = hub
        changes.subscribe(hub)
    return hub


@router.get(
    "/{request_id}/wait",
    response_model=ApprovalRead,
    summary="Wait until the request closes, or the timeout passes",
    description="Answers at once when the request is closed, else when it closes or after "
    f"`timeout` seconds (at most {int(MAX_WAIT)}), with the request as it is then: check "
    "`state` and call again while it is `pending`.",
    responses=problems(401, 403, 404, 422),
)
async def wait_for_approval(
    request: Request,
    request_id: RequestId,
    _: Reader,
    timeout: Annotated[float, Query(ge=0, le=MAX_WAIT, description="Seconds")] = 30.0,
) -> dict[str, Any]:
    container = container_of(request)
    view = await asyncio.to_thread(querying.request_view, container.uow(), request_id)
    if not view.request.state.is_closed and timeout > 0:
        await _hub(request).wait_closed(view.request.id, timeout)
        view = await asyncio.to_thread(querying.request_view, container.uow(), view.request.id)
    return approval_read(view, container.settings.instance)
