"""The sender loop's use case: send due outbox mail exactly once.

Per row: compose the mail from the request as it is now; take a send slot of the From
mailbox's pace, shared by every replica through the database (Exchange Online accepts 30
messages per minute per mailbox, whoever sends them); step 1 creates a draft and its ids
are committed to the row; step 2 sends the draft; then the row is marked sent, and for a
request mail the sent Message-ID is stored so replies can be matched by ``In-Reply-To``.
After a crash the stored ids are resumed (the transport checks whether the draft still
exists or was already sent), so nothing is sent twice. Permanent errors mark the row
failed with the transport's plain reason and are never retried in a loop; transient ones
are retried with jittered backoff, after ``Retry-After`` when given.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta

from replygate.domain.model import ApprovalRequest
from replygate.domain.tokens import ReplyToken
from replygate.errors import AuthorizationNeeded, ConfigurationError, ReplygateError, UserError
from replygate.mail.compose import (
    IncomingReply,
    MailContext,
    compose_already_decided,
    compose_cancelled,
    compose_closed_notice,
    compose_confirmation,
    compose_could_not_read,
    compose_outcome,
    compose_reminder,
    compose_request,
)
from replygate.mail.mime import OutboundEmail
from replygate.services.mail_ports import (
    DraftFinder,
    MailSender,
    OutboundMail,
    SendOutcome,
    SendPace,
    SendProgress,
    SendResult,
)
from replygate.services.ports import Clock, OutboxItem, SendSlot, UnitOfWork
from replygate.services.requesting import OutboxKind
from replygate.services.webhooks import record_mail_failed, record_mail_sent

log = logging.getLogger(__name__)

CLAIM_FOR = timedelta(minutes=5)
MAX_BACKOFF = timedelta(hours=1)
MAX_ATTEMPTS = 12
REAUTHORISATION_WAIT = timedelta(minutes=2)
# A send slot that frees this soon is waited for; a later one sends the row back to the
# queue until then (a long wait would hold the worker's round and its claims).
PACE_WAIT = timedelta(seconds=10)
PACE_MARGIN = 0.02  # of the window, as the in-process window: absorbs clock differences


@dataclass
class SendReport:
    sent: list[int] = field(default_factory=list)
    retrying: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class SendingContext:
    instance: str
    mail: MailContext
    sender: MailSender
    clock: Clock
    worker: str = "worker"
    # The transport's pace per From mailbox, kept across every replica; None: unpaced.
    pacing: SendPace | None = None
    sleep: Callable[[float], None] = time.sleep


def to_outbound(email: OutboundEmail) -> OutboundMail:
    """The transport-neutral form of a composed mail."""
    return OutboundMail(
        from_address=email.from_address,
        from_name=email.from_name,
        to=email.to,
        cc=email.cc,
        reply_to=email.reply_to,
        subject=email.subject,
        text=email.text,
        html=email.html,
        headers=tuple(email.headers.items()),
        in_reply_to=email.in_reply_to,
        references=email.references,
        message_id=email.message_id,
    )


def compose_for(
    kind: str,
    request: ApprovalRequest,
    token: ReplyToken,
    ctx: MailContext,
    payload: dict[str, object],
) -> OutboundEmail | None:
    """The mail an outbox row stands for, or None when it no longer makes sense."""
    if kind == OutboxKind.REQUEST:
        return compose_request(request, token, ctx)
    if kind == OutboxKind.REMINDER:
        if request.state.is_closed:
            return None  # nobody needs reminding of a closed request
        undecided = tuple(a for a in request.approvers if request.decision_of(a) is None)
        return compose_reminder(request, token, ctx, to=undecided) if undecided else None
    if kind == OutboxKind.CANCELLED:
        return compose_cancelled(request, token, ctx, cancelled_by=str(payload.get("by") or ""))
    if kind == OutboxKind.OUTCOME:
        return compose_outcome(request, token, ctx)
    if kind == OutboxKind.ANSWER:
        return compose_answer(request, token, ctx, payload)
    raise ValueError(f"unknown outbox kind {kind!r}")


def compose_answer(
    request: ApprovalRequest, token: ReplyToken, ctx: MailContext, payload: dict[str, object]
) -> OutboundEmail | None:
    """An answer to one approver's reply (screening chose whom and what; see ingesting)."""
    to = str(payload.get("to") or "")
    if not to:
        return None
    references = payload.get("references")
    reply = IncomingReply(
        from_address=to,
        message_id=str(payload["message_id"]) if payload.get("message_id") else None,
        references=tuple(str(r) for r in references) if isinstance(references, list) else (),
    )
    answer = payload.get("answer")
    if answer == "confirm":
        decision = request.decision_of(to)
        return compose_confirmation(request, token, ctx, reply, decision) if decision else None
    if answer == "already_decided":
        earlier = request.decision_of(to)
        return compose_already_decided(request, token, ctx, reply, earlier) if earlier else None
    if answer == "tell_outcome":
        return (
            compose_closed_notice(request, token, ctx, reply) if request.state.is_closed else None
        )
    if answer == "ask_again":
        return compose_could_not_read(
            request,
            token,
            ctx,
            reply,
            reason=READ_FAILURES.get(str(payload.get("reason")), "no decision was found"),
            first_line=str(payload.get("first_line") or ""),
        )
    return None


# Why a reply was not understood, in the approver's words (keys: the grammar's reasons).
READ_FAILURES = {
    "empty": "your reply had no text above the quoted request",
    "condition": "the first line put a condition on the decision (approve if/once/after...)",
    "hedged": "the first line sounded unsure",
    "question": "the first line ended the decision word with a question mark",
    "conflict": "the first line held both an approval and a rejection",
    "no_decision_word": "the first line did not begin with APPROVE or REJECT",
    "parts_disagree": "the plain-text and HTML versions of your mail said different things",
}


def backoff(attempts: int, retry_after: float | None) -> timedelta:
    if retry_after is not None:
        return timedelta(seconds=max(retry_after, 1.0))
    base = timedelta(seconds=30) * (1 << min(attempts, 10))
    jitter = random.uniform(0.8, 1.2)  # noqa: S311 - spreading retries, not security
    return min(base * jitter, MAX_BACKOFF)


def send_due(
    uow_factory: Callable[[], UnitOfWork], ctx: SendingContext, limit: int = 10
) -> SendReport:
    """Claim due rows and send each; every state change is committed before the next step."""
    report = SendReport()
    with uow_factory() as uow:
        items = uow.outbox.claim_due(ctx.worker, ctx.clock.now() + CLAIM_FOR, limit)
        uow.commit()
    for item in items:
        _send_one(uow_factory, ctx, item, report)
    return report


def _send_one(
    uow_factory: Callable[[], UnitOfWork], ctx: SendingContext, item: OutboxItem, report: SendReport
) -> None:
    email = _compose(uow_factory, ctx, item)
    if email is None:
        with uow_factory() as uow:
            uow.outbox.mark_skipped(item.id, "nothing to send any more (request closed or gone)")
            uow.commit()
        report.skipped.append(item.id)
        return
    pacing = ctx.pacing
    if pacing is None:
        _send_composed(uow_factory, ctx, item, email, report)
        return
    slot = _take_slot(uow_factory, ctx, pacing, item, item.mailbox or email.from_address)
    if slot.slot_id is None:  # the row went back to the queue until a slot frees
        report.retrying.append(item.id)
        return
    try:
        _send_composed(uow_factory, ctx, item, email, report)
    finally:
        _settle(uow_factory, pacing, slot.slot_id)


def _send_composed(
    uow_factory: Callable[[], UnitOfWork],
    ctx: SendingContext,
    item: OutboxItem,
    email: OutboundEmail,
    report: SendReport,
) -> None:
    try:
        result = _transmit(uow_factory, ctx, item, email)
    except (AuthorizationNeeded, ConfigurationError) as error:
        # Not the mail's fault (the sign-in, the app's secret, the SMTP login): wait for an
        # admin to fix it, however long it takes (the request's expiry still closes it);
        # health reports the state meanwhile. Faults of the mail itself are UserErrors.
        with uow_factory() as uow:
            uow.outbox.reschedule(item.id, ctx.clock.now() + REAUTHORISATION_WAIT, str(error))
            uow.commit()
        report.retrying.append(item.id)
        return
    except UserError as error:  # permanent: Send As missing, recipients refused, too large
        _fail(uow_factory, item, str(error), report)
        return
    except ReplygateError as error:  # transient: throttled, Graph down, re-authorisation pending
        if item.attempts >= MAX_ATTEMPTS:
            _fail(uow_factory, item, f"gave up after {item.attempts} attempts: {error}", report)
            return
        retry_after = getattr(error, "retry_after", None)
        when = ctx.clock.now() + backoff(item.attempts, retry_after)
        with uow_factory() as uow:
            uow.outbox.reschedule(item.id, when, str(error))
            uow.commit()
        log.warning("outbox %s: will retry at %s: %s", item.id, when.isoformat(), error)
        report.retrying.append(item.id)
        return
    if result.outcome is SendOutcome.LOST:
        _fail(
            uow_factory,
            item,
            "the draft vanished and no sent copy was found; retry with `replygate outbox retry` "
            "after checking the From mailbox's Sent Items",
            report,
        )
        return
    with uow_factory() as uow:
        uow.outbox.mark_sent(item.id, result.internet_message_id, ctx.clock.now())
        if item.kind == OutboxKind.REQUEST and item.request_id and result.internet_message_id:
            uow.requests.set_message_id(item.request_id, result.internet_message_id)
        record_mail_sent(uow, item.kind, item.request_id)
        uow.commit()
    report.sent.append(item.id)


def _pace_window(pacing: SendPace) -> timedelta:
    return timedelta(seconds=pacing.per_seconds * (1 + PACE_MARGIN))


def _take_slot(
    uow_factory: Callable[[], UnitOfWork],
    ctx: SendingContext,
    pacing: SendPace,
    item: OutboxItem,
    mailbox: str,
) -> SendSlot:
    """A send slot of ``mailbox``, waited for (no transaction open while sleeping) when
    one frees within ``PACE_WAIT``; otherwise the row is deferred until one does."""
    window = _pace_window(pacing)
    deadline = ctx.clock.now() + PACE_WAIT
    while True:
        with uow_factory() as uow:
            slot = uow.pacing.reserve(
                mailbox,
                limit=pacing.messages,
                window=window,
                hold=window,  # a send still in flight counts one window longer
                holder=f"{ctx.worker} outbox {item.id}"[:200],
            )
            if slot.free_at is not None and slot.free_at > deadline:
                uow.outbox.defer(item.id, slot.free_at)
                uow.commit()
                log.info("outbox %s: %s sends no more until %s", item.id, mailbox, slot.free_at)
                return slot
            uow.commit()
        if slot.free_at is None:
            return slot
        ctx.sleep(max((slot.free_at - ctx.clock.now()).total_seconds(), 0.01))


def _settle(uow_factory: Callable[[], UnitOfWork], pacing: SendPace, slot_id: int) -> None:
    try:
        with uow_factory() as uow:
            uow.pacing.settle(slot_id, _pace_window(pacing))
            uow.commit()
    except Exception:  # the slot then counts one window longer than needed; nothing worse
        log.warning("could not settle send slot %s", slot_id, exc_info=True)


def _compose(
    uow_factory: Callable[[], UnitOfWork], ctx: SendingContext, item: OutboxItem
) -> OutboundEmail | None:
    if item.request_id is None:
        return None
    with uow_factory() as uow:
        request = uow.requests.get(item.request_id)
    if request is None:
        return None
    return compose_for(
        item.kind, request, ReplyToken(ctx.instance, request.id), ctx.mail, item.payload
    )


def _transmit(
    uow_factory: Callable[[], UnitOfWork],
    ctx: SendingContext,
    item: OutboxItem,
    email: OutboundEmail,
) -> SendResult:
    mail = to_outbound(email)
    if item.draft_id and item.internet_message_id and item.mailbox:
        # An earlier attempt created the draft: the transport finds out whether it was sent
        # (Graph), or sends the same message again with the same Message-ID (SMTP keeps no
        # draft across a restart, so at-least-once is the best it can do).
        progress = SendProgress(item.mailbox, item.draft_id, item.internet_message_id)
        return ctx.sender.send(mail, resume=progress)
    if isinstance(ctx.sender, DraftFinder):
        planned = _planned(uow_factory, ctx.sender, item, mail)
        if isinstance(planned, SendResult):
            return planned
        if isinstance(planned, SendProgress):
            return _record_and_send(uow_factory, ctx, item, planned)
        mail = planned
    return _record_and_send(uow_factory, ctx, item, ctx.sender.create_draft(mail))


def _planned(
    uow_factory: Callable[[], UnitOfWork], finder: DraftFinder, item: OutboxItem, mail: OutboundMail
) -> OutboundMail | SendProgress | SendResult:
    """Drafts that live in the mailbox: the Message-ID is stored before the draft exists.

    First attempt: store it (one write) and return the mail to draft. A row that has one
    but no draft id died between creating the draft and recording it (or its draft request
    failed, perhaps after Graph made the draft): the draft made then (to send) or its sent
    copy is looked for by that Message-ID; when neither exists, the mail is drafted again
    with the same Message-ID. Only these retries cost lookups, never a first attempt."""
    if item.internet_message_id and item.mailbox:
        found = finder.find_planned(item.mailbox, item.internet_message_id)
        return found if found is not None else replace(mail, message_id=item.internet_message_id)
    if mail.message_id:
        with uow_factory() as uow:
            uow.outbox.record_plan(item.id, mail.from_address, mail.message_id)
            uow.commit()
    return mail


def _record_and_send(
    uow_factory: Callable[[], UnitOfWork],
    ctx: SendingContext,
    item: OutboxItem,
    progress: SendProgress,
) -> SendResult:
    with uow_factory() as uow:
        uow.outbox.record_progress(
            item.id, progress.mailbox, progress.draft_id, progress.internet_message_id
        )
        uow.commit()
    return ctx.sender.send_draft(progress)


def _fail(
    uow_factory: Callable[[], UnitOfWork], item: OutboxItem, error: str, report: SendReport
) -> None:
    with uow_factory() as uow:
        uow.outbox.mark_failed(item.id, error)
        record_mail_failed(uow, item.kind, item.request_id, error)
        uow.audit.record(
            "system", "outbox.failed", str(item.id), {"error": error, "request": item.request_id}
        )
        uow.commit()
    log.error("outbox %s failed for good: %s", item.id, error)
    report.failed.append(item.id)
