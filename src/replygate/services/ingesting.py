"""The reader loop's use case for one message: understand, screen, decide, record, answer.

Everything a message causes (its ledger row, the decision, the answer mail) is committed
in one transaction; only afterwards may the message be disposed of, so a crash leaves
either nothing (the message is read again) or the whole outcome with its disposal still
pending (the message is found in the ledger and only disposed of).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from replygate.domain.model import (
    ApprovalRequest,
    Channel,
    Decision,
    DecisionRefused,
    normalise_address,
)
from replygate.domain.tokens import InvalidToken, ReplyToken
from replygate.mail.screening import (
    AnswerKind,
    Outcome,
    RequestView,
    ScreeningContext,
    ScreeningResult,
    screen,
)
from replygate.mail.understanding import Understanding, understand
from replygate.services.ports import Clock, LedgerEntry, UnitOfWork
from replygate.services.requesting import OutboxKind
from replygate.services.webhook_ports import Event
from replygate.services.webhooks import record_decision, record_event

MAX_COMMENT = 10_000


@dataclass(frozen=True)
class IngestContext:
    instance: str
    mailbox: str  # the Approval Reply Address
    folder: str  # the Email Reply Folder path
    clock: Clock
    internal_domains: frozenset[str] = frozenset()
    exchange_authserv_ids: frozenset[str] = frozenset()
    keep_raw_bytes: int = 1_000_000  # raw MIME kept for audit up to this size


@dataclass(frozen=True)
class Arrival:
    """The message as the mailbox reports it, beside its raw MIME."""

    raw: bytes
    transport_id: str | None = None
    internet_message_id: str | None = None
    received_at: datetime | None = None
    is_draft: bool = False


@dataclass(frozen=True)
class IngestResult:
    ledger_id: int
    outcome: str
    dispose: bool  # ours: move or delete it now (its outcome is committed)
    request_id: str | None = None
    hits: list[str] = field(default_factory=list)


def message_key(arrival: Arrival, understood: Understanding) -> str:
    found = arrival.internet_message_id or understood.message.message_id
    if found:
        return found.strip()
    return "sha256:" + hashlib.sha256(arrival.raw).hexdigest()


def ingest_message(
    uow_factory: Callable[[], UnitOfWork],
    ctx: IngestContext,
    arrival: Arrival,
    folder_configured_at: datetime | None,
) -> IngestResult:
    understood = understand(arrival.raw, instance=ctx.instance)
    key = message_key(arrival, understood)
    with uow_factory() as uow:
        earlier = uow.ledger.find(ctx.mailbox, key)
        if earlier is not None and earlier.id is not None:
            # Read again (a crash before disposal, or a re-delivered copy): nothing new happens.
            return IngestResult(
                earlier.id,
                earlier.outcome,
                earlier.disposal == "pending",
                earlier.request_id,
                ["duplicate"],
            )
        request = _match_request(uow, ctx, understood)
        sender = _sole_sender(understood)
        result = screen(
            understood,
            _context(uow, ctx, arrival, understood, request, sender, folder_configured_at),
        )
        decision = _apply(uow, ctx, understood, request, sender, result, key)
        entry = uow.ledger.add(
            _ledger_entry(ctx, arrival, understood, key, request, sender, result, decision)
        )
        if request is not None and understood.bounce is not None:
            for failed in understood.bounce.recipients:
                why = failed.diagnostic or failed.status or "bounced"
                uow.requests.mark_delivery_failed(request.id, failed.address, why)
                record_event(uow, Event.DELIVERY_FAILED, request, address=failed.address, error=why)
        if result.answer is not None and request is not None and sender is not None:
            uow.outbox.add(
                OutboxKind.ANSWER,
                _answer_payload(result.answer, understood, sender, decision),
                request_id=request.id,
            )
        uow.commit()
    assert entry.id is not None  # set by add()
    return IngestResult(
        entry.id, result.outcome.value, result.dispose, request.id if request else None, result.hits
    )


def _match_request(
    uow: UnitOfWork, ctx: IngestContext, understood: Understanding
) -> ApprovalRequest | None:
    """In-Reply-To/References naming our sent mail, else our token (subject, reference block)."""
    message = understood.message
    bounced = understood.bounce.original_message_id if understood.bounce else None
    for message_id in [message.in_reply_to, *message.references, bounced]:
        if message_id:
            found = uow.requests.find_by_message_id(message_id.strip())
            if found is not None:
                return found
    if understood.token is None:
        return None
    try:
        token = ReplyToken.parse(understood.token)
    except InvalidToken:
        return None
    if token.instance != ctx.instance:
        return None  # another instance's mail: never ours to touch
    return uow.requests.get(token.request_id)


def _sole_sender(understood: Understanding) -> str | None:
    senders = understood.message.from_
    return normalise_address(senders[0].address) if len(senders) == 1 else None


def _context(
    uow: UnitOfWork,
    ctx: IngestContext,
    arrival: Arrival,
    understood: Understanding,
    request: ApprovalRequest | None,
    sender: str | None,
    folder_configured_at: datetime | None,
) -> ScreeningContext:
    view = None
    asked_before = False
    if request is not None:
        view = RequestView(
            id=request.id,
            state=request.state,
            approvers=request.approvers,
            requester=request.requester,
            allow_self_approval=request.policy.allow_self_approval,
            allow_delegates=request.policy.allow_delegates,
            decisions={d.approver: d.verdict for d in request.decisions},
        )
        if sender is not None:
            asked_before = uow.ledger.count_outcomes(request.id, sender, Outcome.GRAMMAR.value) > 0
    own_id = understood.message.message_id
    return ScreeningContext(
        instance=ctx.instance,
        request=view,
        folder_configured_at=folder_configured_at,
        received_at=arrival.received_at,
        is_draft=arrival.is_draft,
        own_message=bool(own_id) and uow.outbox.was_sent_by_us(own_id or ""),
        internal_domains=ctx.internal_domains,
        exchange_authserv_ids=ctx.exchange_authserv_ids,
        ask_again_already_sent=asked_before,
    )


def _apply(
    uow: UnitOfWork,
    ctx: IngestContext,
    understood: Understanding,
    request: ApprovalRequest | None,
    sender: str | None,
    result: ScreeningResult,
    key: str,
) -> Decision | None:
    if result.outcome is not Outcome.DECIDED or request is None or sender is None:
        return None
    assert understood.decision is not None  # screening decides only with a verdict
    decision = Decision(
        approver=sender,
        verdict=understood.decision,
        comment=understood.comment[:MAX_COMMENT],
        channel=Channel.EMAIL,
        decided_at=ctx.clock.now(),
        evidence={
            "message_id": key,
            "mailbox": ctx.mailbox,
            "subject": understood.message.subject[:300],
        },
    )
    try:
        request.decide(decision)
    except DecisionRefused:
        return None  # screening saw the same state; refused only in a race, and then safely
    uow.requests.save(request)
    record_decision(uow, request, decision)
    return decision


def _ledger_entry(
    ctx: IngestContext,
    arrival: Arrival,
    understood: Understanding,
    key: str,
    request: ApprovalRequest | None,
    sender: str | None,
    result: ScreeningResult,
    decision: Decision | None,
) -> LedgerEntry:
    raw = arrival.raw if len(arrival.raw) <= ctx.keep_raw_bytes else None
    return LedgerEntry(
        mailbox=ctx.mailbox,
        folder=ctx.folder,
        message_key=key[:998],
        read_at=ctx.clock.now(),
        outcome=result.outcome.value,
        rules=result.hits + understood.reasons,
        transport_id=arrival.transport_id,
        received_at=arrival.received_at,
        sender=sender or "",
        subject=understood.message.subject[:1000],
        request_id=request.id if request is not None else None,
        verdict=decision.verdict.value if decision else None,
        comment=decision.comment if decision else "",
        size=len(arrival.raw),
        raw_mime=raw,
        disposal="pending" if result.dispose else "none",
    )


def _answer_payload(
    answer: AnswerKind, understood: Understanding, sender: str, decision: Decision | None
) -> dict[str, object]:
    first_line = next(
        (line.strip() for line in understood.new_text.splitlines() if line.strip()), ""
    )
    reason = next((r.split(":", 1)[1] for r in understood.reasons if r.startswith("decision:")), "")
    if not first_line:
        reason = "empty"
    return {
        "answer": answer.value,
        "to": sender,
        "message_id": understood.message.message_id,
        "references": list(understood.message.references)[-10:],
        "first_line": first_line[:200],
        "reason": reason,
        "verdict": decision.verdict.value if decision else None,
    }
