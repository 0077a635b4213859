"""Use cases of approval requests: create, cancel, expire, remind.

Each writes the request change and the mail it causes (an outbox row) in one
transaction, so a crash never leaves a request without its mail or a mail without its
request. The mail itself is composed and sent later by the sender loop.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from email_validator import EmailNotValidError, validate_email

from replygate.domain.model import ApprovalRequest, DecisionRefused, InvalidRequest, Policy
from replygate.domain.tokens import ReplyToken, new_request_id
from replygate.errors import Conflict, InvalidInput, NotFound
from replygate.services.ports import Clock, UnitOfWork
from replygate.services.webhook_ports import Event
from replygate.services.webhooks import record_event

MAX_TITLE = 300
MAX_DETAILS = 20_000
MAX_APPROVERS = 500  # Exchange Online: 500 recipients per message
MAX_METADATA_KEYS = 50
MAX_METADATA_VALUE = 2_000
MAX_EXPIRY = timedelta(days=90)
DEFAULT_EXPIRY = timedelta(hours=24)


class OutboxKind:
    """What an outbox row sends; the sender loop composes the mail from the request."""

    REQUEST = "request_mail"
    REMINDER = "reminder_mail"
    CANCELLED = "cancelled_mail"
    OUTCOME = "outcome_mail"
    ANSWER = "answer_mail"  # to one approver's reply: confirm, ask again, tell the outcome


@dataclass(frozen=True)
class RequestDraft:
    """What a pipeline, the CLI or the console asks for."""

    title: str
    approvers: Sequence[str]
    requester: str
    policy: Policy = field(default_factory=Policy)
    details: str = ""
    metadata: Mapping[str, str] = field(default_factory=dict)
    expires_in: timedelta = DEFAULT_EXPIRY
    remind_after: timedelta | None = None
    callback_url: str | None = None
    idempotency_key: str | None = None


@dataclass(frozen=True)
class Created:
    request: ApprovalRequest
    token: ReplyToken
    replayed: bool  # True when the idempotency key matched an earlier request


def valid_address(address: str, field_name: str) -> str:
    try:
        # test_environment admits the reserved .test domain that the emulator's tenant uses;
        # deliverability is Exchange's business, not a DNS lookup's.
        checked = validate_email(address.strip(), check_deliverability=False, test_environment=True)
        return checked.normalized.lower()
    except EmailNotValidError as error:
        raise InvalidInput(f"{field_name}: {address!r} is not an email address ({error})") from None


def _check_sizes(draft: RequestDraft) -> None:
    if len(draft.title) > MAX_TITLE:
        raise InvalidInput(f"title: at most {MAX_TITLE} characters ({len(draft.title)} given)")
    if "\n" in draft.title or "\r" in draft.title:
        raise InvalidInput("title: must be one line")
    if len(draft.details) > MAX_DETAILS:
        raise InvalidInput(f"details: at most {MAX_DETAILS} characters")
    if len(draft.approvers) > MAX_APPROVERS:
        raise InvalidInput(f"approvers: at most {MAX_APPROVERS} (Exchange's per-message limit)")
    if len(draft.metadata) > MAX_METADATA_KEYS:
        raise InvalidInput(f"metadata: at most {MAX_METADATA_KEYS} keys")
    for key, value in draft.metadata.items():
        if not key.strip() or len(key) > 100:
            raise InvalidInput(f"metadata: key {key[:40]!r} must be 1 to 100 characters")
        if len(str(value)) > MAX_METADATA_VALUE:
            raise InvalidInput(f"metadata: {key} is longer than {MAX_METADATA_VALUE} characters")
    if draft.expires_in <= timedelta(0):
        raise InvalidInput("expires_in: must be in the future")
    if draft.expires_in > MAX_EXPIRY:
        raise InvalidInput(f"expires_in: at most {MAX_EXPIRY.days} days")
    if draft.remind_after is not None and not timedelta(0) < draft.remind_after < draft.expires_in:
        raise InvalidInput("remind_after: must be after creation and before the expiry")


def create_request(
    uow: UnitOfWork,
    clock: Clock,
    instance: str,
    draft: RequestDraft,
    *,
    created_by: str,
    new_id: Callable[[], str] = new_request_id,
) -> Created:
    """Validate ``draft``, store the request and its request mail in one transaction."""
    _check_sizes(draft)
    approvers = tuple(valid_address(a, "approvers") for a in draft.approvers)
    requester = valid_address(draft.requester, "requester")
    now = clock.now()
    with uow:
        if draft.idempotency_key:
            earlier = uow.requests.find_by_idempotency_key(draft.idempotency_key)
            if earlier is not None:
                return Created(earlier, ReplyToken(instance, earlier.id), replayed=True)
        try:
            request = ApprovalRequest(
                id=new_id(),
                title=draft.title.strip(),
                requester=requester,
                approvers=approvers,
                policy=draft.policy,
                created_at=now,
                expires_at=now + draft.expires_in,
                details=draft.details,
                metadata={str(k): str(v) for k, v in draft.metadata.items()},
            )
        except InvalidRequest as error:
            raise InvalidInput(str(error)) from None
        uow.requests.add(
            request,
            instance=instance,
            idempotency_key=draft.idempotency_key,
            callback_url=draft.callback_url,
            created_by=created_by,
            remind_at=now + draft.remind_after if draft.remind_after else None,
        )
        uow.outbox.add(OutboxKind.REQUEST, {}, request_id=request.id)
        if draft.remind_after is not None:
            uow.outbox.add(
                OutboxKind.REMINDER, {}, request_id=request.id, due=now + draft.remind_after
            )
        uow.audit.record(created_by, "request.create", request.id, {"title": request.title})
        record_event(uow, Event.CREATED, request)
        uow.commit()
    return Created(request, ReplyToken(instance, request.id), replayed=False)


def _load(uow: UnitOfWork, request_id: str) -> ApprovalRequest:
    request = uow.requests.get(request_id)
    if request is None:
        raise NotFound(f"no approval request {request_id}")
    return request


def cancel_request(
    uow: UnitOfWork, clock: Clock, request_id: str, *, by: str, reason: str = ""
) -> ApprovalRequest:
    """Cancel a pending request and tell its approvers, in one transaction."""
    with uow:
        request = _load(uow, request_id)
        try:
            request.cancel(clock.now(), reason or f"cancelled by {by}")
        except DecisionRefused as refused:
            raise Conflict(f"request {request_id} cannot be cancelled: {refused}") from None
        uow.requests.save(request)
        uow.outbox.add(OutboxKind.CANCELLED, {"by": by}, request_id=request.id)
        uow.audit.record(by, "request.cancel", request.id, {"reason": reason})
        record_event(uow, Event.CLOSED, request)
        uow.commit()
    return request


EXPIRY_ATTEMPTS = 3


def expire_due_requests(uow: UnitOfWork, clock: Clock, limit: int = 100) -> list[str]:
    """Close every pending request past its expiry and notify; return their ids.

    Safe with several replicas: the due rows are claimed with ``FOR UPDATE SKIP LOCKED``
    (another replica skips them), and a request decided meanwhile fails the save's version
    check, so the batch is thrown away and tried again from what is now stored.
    """
    for attempt in range(1, EXPIRY_ATTEMPTS + 1):
        try:
            return _expire_batch(uow, clock, limit)
        except Conflict:  # ConcurrentChange: changed since read (a decision, another replica)
            if attempt == EXPIRY_ATTEMPTS:
                raise
    return []  # not reached


def _expire_batch(uow: UnitOfWork, clock: Clock, limit: int) -> list[str]:
    now = clock.now()
    expired: list[str] = []
    with uow:
        for request_id in uow.requests.due_for_expiry(now, limit):
            request = _load(uow, request_id)
            if request.expire(now):
                uow.requests.save(request)
                uow.outbox.add(OutboxKind.OUTCOME, {}, request_id=request.id)
                uow.audit.record("system", "request.expire", request.id)
                record_event(uow, Event.CLOSED, request)
                expired.append(request.id)
        uow.commit()
    return expired
