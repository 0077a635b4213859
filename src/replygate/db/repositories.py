"""Repositories: every query lives here; they never commit (the unit of work does)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from replygate.db.claims import claim_due
from replygate.db.tables import (
    ApprovalRequestRow,
    ApproverRow,
    AuditEventRow,
    DecisionRow,
    InboundLedgerRow,
    InstanceMeta,
    OutboxRow,
)
from replygate.domain.model import (
    ApprovalRequest,
    Channel,
    Decision,
    Policy,
    PolicyKind,
    RequestState,
    Verdict,
)
from replygate.errors import Conflict
from replygate.services.ports import Clock, FailedMail, LedgerEntry, OutboxItem
from replygate.services.query_ports import (
    ApproverDelivery,
    RequestFacts,
    RequestFilter,
    TimelineEntry,
)


class ConcurrentChange(Conflict):
    """The row changed in the database since it was read; the use case should retry."""


class SqlRequestRepository:
    """Approval requests as domain objects, mapped to and from their rows."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._loaded_versions: dict[str, int] = {}

    def add(self, request: ApprovalRequest, *, instance: str, **extra: Any) -> None:
        row = ApprovalRequestRow(id=request.id, instance=instance, **extra)
        _copy_to_row(request, row)
        row.version = 1
        self._loaded_versions[request.id] = 1
        self._session.add(row)
        for position, address in enumerate(request.approvers):
            self._session.add(
                ApproverRow(request_id=request.id, address=address, position=position)
            )
        self._session.flush()

    def get(self, request_id: str) -> ApprovalRequest | None:
        row = self._session.get(ApprovalRequestRow, request_id.upper())
        return None if row is None else self._to_domain(row)

    def get_for_update(self, request_id: str) -> ApprovalRequest | None:
        """Like ``get``, locking the row on PostgreSQL (SQLite serialises writers anyway)."""
        row = self._session.get(ApprovalRequestRow, request_id.upper(), with_for_update=True)
        return None if row is None else self._to_domain(row)

    def find_by_idempotency_key(self, key: str) -> ApprovalRequest | None:
        row = self._session.scalar(
            select(ApprovalRequestRow).where(ApprovalRequestRow.idempotency_key == key)
        )
        return None if row is None else self._to_domain(row)

    def find_by_message_id(self, message_id: str) -> ApprovalRequest | None:
        row = self._session.scalar(
            select(ApprovalRequestRow).where(ApprovalRequestRow.message_id == message_id)
        )
        return None if row is None else self._to_domain(row)

    def mark_delivery_failed(self, request_id: str, address: str, error: str) -> bool:
        result = self._session.execute(
            update(ApproverRow)
            .where(ApproverRow.request_id == request_id, ApproverRow.address == address.lower())
            .values(delivery_state="failed", delivery_error=error[:2000])
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def set_message_id(self, request_id: str, message_id: str) -> None:
        row = self._session.get_one(ApprovalRequestRow, request_id)
        row.message_id = message_id

    def save(self, request: ApprovalRequest) -> None:
        """Write state changes and new decisions.

        Raises ``ConcurrentChange`` when the request changed in the database since it was
        loaded (another worker decided meanwhile), so no decision is silently lost.
        """
        loaded = self._loaded_versions[request.id]
        bumped = self._session.execute(
            update(ApprovalRequestRow)
            .where(ApprovalRequestRow.id == request.id, ApprovalRequestRow.version == loaded)
            .values(version=loaded + 1)
            .execution_options(synchronize_session=False)
        )
        if bumped.rowcount != 1:  # type: ignore[attr-defined]
            raise ConcurrentChange(f"request {request.id} changed since it was read; retry")
        self._loaded_versions[request.id] = loaded + 1
        row = self._session.get_one(ApprovalRequestRow, request.id)
        _copy_to_row(request, row)
        row.version = loaded + 1
        known = set(
            self._session.scalars(
                select(DecisionRow.approver).where(DecisionRow.request_id == request.id)
            )
        )
        for decision in request.decisions:
            if decision.approver not in known:
                self._session.add(_decision_row(request.id, decision))
        self._session.flush()

    def list(
        self, *, state: str | None = None, limit: int = 50, offset: int = 0
    ) -> Sequence[ApprovalRequest]:
        query = select(ApprovalRequestRow).order_by(
            ApprovalRequestRow.created_at.desc(), ApprovalRequestRow.id
        )
        if state is not None:
            query = query.where(ApprovalRequestRow.state == state)
        rows = self._session.scalars(query.limit(limit).offset(offset)).all()
        return [self._to_domain(row) for row in rows]

    def due_for_expiry(self, now: datetime, limit: int = 100) -> Sequence[str]:
        """Pending requests past expiry, locked until commit; rows another replica is
        expiring (or deciding) are skipped on PostgreSQL. SQLite has one writer anyway."""
        query = (
            select(ApprovalRequestRow.id)
            .where(
                ApprovalRequestRow.state == RequestState.PENDING.value,
                ApprovalRequestRow.expires_at <= now,
            )
            .order_by(ApprovalRequestRow.expires_at, ApprovalRequestRow.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return list(self._session.scalars(query))

    def _to_domain(self, row: ApprovalRequestRow) -> ApprovalRequest:
        self._loaded_versions[row.id] = row.version
        approvers = self._session.scalars(
            select(ApproverRow.address)
            .where(ApproverRow.request_id == row.id)
            .order_by(ApproverRow.position)
        ).all()
        decisions = self._session.scalars(
            select(DecisionRow).where(DecisionRow.request_id == row.id).order_by(DecisionRow.id)
        ).all()
        request = ApprovalRequest(
            id=row.id,
            title=row.title,
            requester=row.requester,
            approvers=tuple(approvers),
            policy=Policy(
                kind=PolicyKind(row.policy_kind),
                quorum=row.policy_quorum,
                reject_vetoes=row.reject_vetoes,
                allow_self_approval=row.allow_self_approval,
                allow_delegates=row.allow_delegates,
            ),
            created_at=row.created_at,
            expires_at=row.expires_at,
            details=row.details,
            metadata=dict(row.metadata_json),
        )
        # State and decisions are restored as stored, not replayed: a policy read
        # back must never re-decide a closed request.
        request.state = RequestState(row.state)
        request.closed_at = row.closed_at
        request.closed_reason = row.closed_reason
        request.decisions = [
            Decision(
                approver=d.approver,
                verdict=Verdict(d.verdict),
                comment=d.comment,
                channel=Channel(d.channel),
                decided_at=d.decided_at,
                evidence=dict(d.evidence),
            )
            for d in decisions
        ]
        return request


def _copy_to_row(request: ApprovalRequest, row: ApprovalRequestRow) -> None:
    row.title = request.title
    row.details = request.details
    row.requester = request.requester
    row.policy_kind = request.policy.kind.value
    row.policy_quorum = request.policy.quorum
    row.reject_vetoes = request.policy.reject_vetoes
    row.allow_self_approval = request.policy.allow_self_approval
    row.allow_delegates = request.policy.allow_delegates
    row.state = request.state.value
    row.created_at = request.created_at
    row.expires_at = request.expires_at
    row.closed_at = request.closed_at
    row.closed_reason = request.closed_reason
    row.metadata_json = dict(request.metadata)


def _decision_row(request_id: str, decision: Decision) -> DecisionRow:
    return DecisionRow(
        request_id=request_id,
        approver=decision.approver,
        verdict=decision.verdict.value,
        comment=decision.comment,
        channel=decision.channel.value,
        decided_at=decision.decided_at,
        evidence=dict(decision.evidence),
    )


# A failed row sent again: its attempts counted afresh (a row that gave up after too many
# would otherwise fail at its first hiccup); its planned Message-ID and draft stay, so
# nothing goes out twice.
_REQUEUED: dict[str, Any] = {
    "state": "pending",
    "last_error": "",
    "attempts": 0,
    "claimed_until": None,
}


class SqlOutboxRepository:
    """Work to send after commit. Claiming is a conditional update, safe across replicas."""

    def __init__(self, session: Session, clock: Clock) -> None:
        self._session = session
        self._clock = clock

    def add(
        self,
        kind: str,
        payload: dict[str, Any],
        *,
        request_id: str | None = None,
        mailbox: str | None = None,
        due: datetime | None = None,
    ) -> int:
        now = self._clock.now()
        row = OutboxRow(
            kind=kind,
            payload=payload,
            request_id=request_id,
            mailbox=mailbox,
            state="pending",
            attempts=0,
            next_attempt_at=due or now,
            created_at=now,
        )
        self._session.add(row)
        self._session.flush()
        return row.id

    def get(self, outbox_id: int) -> OutboxRow | None:
        return self._session.get(OutboxRow, outbox_id)

    def claim_due(self, worker: str, lease_until: datetime, limit: int = 10) -> list[OutboxItem]:
        """Claim pending rows that are due, or whose claim expired (a worker died)."""
        rows = claim_due(
            self._session,
            OutboxRow,
            worker=worker,
            lease_until=lease_until,
            now=self._clock.now(),
            limit=limit,
        )
        return [
            OutboxItem(
                id=row.id,
                kind=row.kind,
                request_id=row.request_id,
                payload=dict(row.payload),
                attempts=row.attempts,
                mailbox=row.mailbox,
                draft_id=row.draft_id,
                internet_message_id=row.internet_message_id,
            )
            for row in rows
        ]

    def _set(self, outbox_id: int, **values: Any) -> None:
        self._session.execute(update(OutboxRow).where(OutboxRow.id == outbox_id).values(**values))

    def record_plan(self, outbox_id: int, mailbox: str, internet_message_id: str) -> None:
        """The planned Message-ID, with no draft id yet: a retry looks for it first."""
        self._set(
            outbox_id, mailbox=mailbox, draft_id=None, internet_message_id=internet_message_id
        )

    def record_progress(
        self, outbox_id: int, mailbox: str, draft_id: str, internet_message_id: str
    ) -> None:
        self._set(
            outbox_id, mailbox=mailbox, draft_id=draft_id, internet_message_id=internet_message_id
        )

    def defer(self, outbox_id: int, at: datetime) -> None:
        self._session.execute(
            update(OutboxRow)
            .where(OutboxRow.id == outbox_id)
            .values(
                state="pending",
                next_attempt_at=at,
                claimed_until=None,
                attempts=OutboxRow.attempts - 1,  # the claim counted one; waiting is not one
            )
        )

    def mark_sent(self, outbox_id: int, internet_message_id: str | None, at: datetime) -> None:
        values: dict[str, Any] = {"state": "sent", "sent_at": at, "claimed_until": None}
        if internet_message_id:
            values["internet_message_id"] = internet_message_id
        self._set(outbox_id, **values)

    def reschedule(self, outbox_id: int, at: datetime, error: str) -> None:
        self._set(
            outbox_id, state="pending", next_attempt_at=at, last_error=error, claimed_until=None
        )

    def mark_failed(self, outbox_id: int, error: str) -> None:
        self._set(outbox_id, state="failed", last_error=error, claimed_until=None)

    def mark_skipped(self, outbox_id: int, reason: str) -> None:
        self._set(outbox_id, state="skipped", last_error=reason, claimed_until=None)

    def retry_waiting_now(self, now: datetime) -> int:
        """Make every pending row due now (after an admin authorised again)."""
        result = self._session.execute(
            update(OutboxRow)
            .where(OutboxRow.state == "pending", OutboxRow.next_attempt_at > now)
            .values(next_attempt_at=now)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]

    def was_sent_by_us(self, internet_message_id: str) -> bool:
        query = select(OutboxRow.id).where(OutboxRow.internet_message_id == internet_message_id)
        return self._session.scalar(query.limit(1)) is not None

    def retry(self, outbox_id: int) -> bool:
        """Put a failed row back in the queue (operators: ``replygate outbox retry``)."""
        result = self._session.execute(
            update(OutboxRow)
            .where(OutboxRow.id == outbox_id, OutboxRow.state == "failed")
            .values(next_attempt_at=self._clock.now(), **_REQUEUED)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def failed_for(self, request_id: str) -> list[FailedMail]:
        rows = self._session.execute(
            select(OutboxRow.id, OutboxRow.kind, OutboxRow.last_error)
            .where(OutboxRow.request_id == request_id.upper(), OutboxRow.state == "failed")
            .order_by(OutboxRow.id)
        )
        return [FailedMail(row_id, kind, error) for row_id, kind, error in rows]

    def retry_failed_for(self, request_id: str, now: datetime) -> list[int]:
        """Every failed row of the request back in the queue, due ``now`` (see _REQUEUED)."""
        result = self._session.execute(
            update(OutboxRow)
            .where(OutboxRow.request_id == request_id.upper(), OutboxRow.state == "failed")
            .values(next_attempt_at=now, **_REQUEUED)
            .returning(OutboxRow.id)
        )
        return sorted(result.scalars())

    def cancel(self, outbox_id: int) -> bool:
        result = self._session.execute(
            update(OutboxRow)
            .where(OutboxRow.id == outbox_id, OutboxRow.state.in_(("pending", "failed")))
            .values(state="cancelled")
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def list(self, *, state: str | None = None, limit: int = 100) -> Sequence[OutboxRow]:
        query = select(OutboxRow).order_by(OutboxRow.id.desc()).limit(limit)
        if state is not None:
            query = query.where(OutboxRow.state == state)
        return list(self._session.scalars(query))


_LEDGER_FIELDS = tuple(f.name for f in fields(LedgerEntry))


class SqlInboundLedger:
    def __init__(self, session: Session) -> None:
        self._session = session

    def find(self, mailbox: str, message_key: str) -> LedgerEntry | None:
        row = self._session.scalar(
            select(InboundLedgerRow).where(
                InboundLedgerRow.mailbox == mailbox.lower(),
                InboundLedgerRow.message_key == message_key,
            )
        )
        if row is None:
            return None
        return LedgerEntry(**{name: getattr(row, name) for name in _LEDGER_FIELDS})

    def add(self, entry: LedgerEntry) -> LedgerEntry:
        entry.mailbox = entry.mailbox.lower()
        row = InboundLedgerRow(**{n: getattr(entry, n) for n in _LEDGER_FIELDS if n != "id"})
        self._session.add(row)
        self._session.flush()
        entry.id = row.id
        return entry

    def mark_disposed(self, ledger_id: int, disposal: str, at: datetime) -> None:
        self._session.execute(
            update(InboundLedgerRow)
            .where(InboundLedgerRow.id == ledger_id)
            .values(disposal=disposal, disposed_at=at)
        )

    def count_outcomes(self, request_id: str, sender: str, outcome: str) -> int:
        query = select(func.count()).where(
            InboundLedgerRow.request_id == request_id,
            InboundLedgerRow.sender == sender.lower(),
            InboundLedgerRow.outcome == outcome,
        )
        return int(self._session.scalar(query) or 0)

    def purge_raw_mime(self, read_before: datetime) -> int:
        """Drop the raw MIME of messages read before ``read_before`` (their rows stay)."""
        result = self._session.execute(
            update(InboundLedgerRow)
            .where(InboundLedgerRow.read_at < read_before, InboundLedgerRow.raw_mime.is_not(None))
            .values(raw_mime=None)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]

    def owed_disposals(self, mailbox: str, limit: int = 100) -> list[tuple[int, str]]:
        query = (
            select(InboundLedgerRow.id, InboundLedgerRow.transport_id)
            .where(
                InboundLedgerRow.mailbox == mailbox.lower(),
                InboundLedgerRow.disposal.in_(("pending", "failed")),
                InboundLedgerRow.transport_id.is_not(None),
            )
            .order_by(InboundLedgerRow.id)
            .limit(limit)
        )
        return [
            (row_id, str(transport_id)) for row_id, transport_id in self._session.execute(query)
        ]

    def list(
        self, *, outcome: str | None = None, limit: int = 100, offset: int = 0
    ) -> Sequence[InboundLedgerRow]:
        query = select(InboundLedgerRow).order_by(InboundLedgerRow.id.desc())
        if outcome is not None:
            query = query.where(InboundLedgerRow.outcome == outcome)
        return list(self._session.scalars(query.limit(limit).offset(offset)))


class SqlAuditLog:
    def __init__(self, session: Session, clock: Clock) -> None:
        self._session = session
        self._clock = clock

    def record(
        self, actor: str, action: str, target: str = "", details: dict[str, Any] | None = None
    ) -> None:
        self._session.add(
            AuditEventRow(
                at=self._clock.now(),
                actor=actor,
                action=action,
                target=target,
                details=details or {},
            )
        )

    def recent(self, limit: int = 100) -> Sequence[AuditEventRow]:
        query = select(AuditEventRow).order_by(AuditEventRow.id.desc()).limit(limit)
        return list(self._session.scalars(query))


class SqlInstanceMeta:
    def __init__(self, session: Session) -> None:
        self._session = session

    def get(self, key: str) -> str | None:
        row = self._session.get(InstanceMeta, key)
        return None if row is None else row.value

    def put(self, key: str, value: str) -> None:
        self._session.merge(InstanceMeta(key=key, value=value))


class SqlRequestQueries:
    """Read-only queries for the API, CLI and console (``services.querying``)."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._requests = SqlRequestRepository(session)

    def get(self, request_id: str) -> ApprovalRequest | None:
        return self._requests.get(request_id)

    def _where(self, query: Any, where: RequestFilter) -> Any:
        if where.state is not None:
            query = query.where(ApprovalRequestRow.state == where.state)
        if where.requester is not None:
            query = query.where(ApprovalRequestRow.requester == where.requester.strip().lower())
        for key, value in where.metadata.items():
            query = query.where(ApprovalRequestRow.metadata_json[key].as_string() == value)
        return query

    def search(self, where: RequestFilter, *, limit: int, offset: int) -> Sequence[ApprovalRequest]:
        query = self._where(select(ApprovalRequestRow), where).order_by(
            ApprovalRequestRow.created_at.desc(), ApprovalRequestRow.id
        )
        rows = self._session.scalars(query.limit(limit).offset(offset)).all()
        return [self._requests._to_domain(row) for row in rows]

    def count(self, where: RequestFilter) -> int:
        query = self._where(select(func.count()).select_from(ApprovalRequestRow), where)
        return int(self._session.scalar(query) or 0)

    def states(self, request_ids: Sequence[str]) -> dict[str, str]:
        query = select(ApprovalRequestRow.id, ApprovalRequestRow.state).where(
            ApprovalRequestRow.id.in_([i.upper() for i in request_ids])
        )
        return {row_id: state for row_id, state in self._session.execute(query)}

    def facts(self, request_id: str) -> RequestFacts | None:
        row = self._session.get(ApprovalRequestRow, request_id.upper())
        if row is None:
            return None
        return RequestFacts(row.instance, row.created_by, row.callback_url, row.message_id)

    def approver_deliveries(self, request_id: str) -> Sequence[ApproverDelivery]:
        rows = self._session.scalars(
            select(ApproverRow)
            .where(ApproverRow.request_id == request_id.upper())
            .order_by(ApproverRow.position)
        )
        return [ApproverDelivery(r.address, r.delivery_state, r.delivery_error) for r in rows]

    def timeline(self, request_id: str) -> Sequence[TimelineEntry]:
        """Audit events, mail sent or failing, and replies read, in time order."""
        rid = request_id.upper()
        entries: list[TimelineEntry] = []
        audits = select(AuditEventRow).where(AuditEventRow.target == rid)
        for a in self._session.scalars(audits.order_by(AuditEventRow.id)):
            entries.append(TimelineEntry(a.at, a.action, f"{a.action} by {a.actor}", a.details))
        mails = select(OutboxRow).where(OutboxRow.request_id == rid).order_by(OutboxRow.id)
        for m in self._session.scalars(mails):
            if m.state == "sent":
                entries.append(TimelineEntry(m.sent_at or m.created_at, "mail_sent", m.kind))
            elif m.state == "failed":
                entries.append(
                    TimelineEntry(m.created_at, "mail_failed", m.kind, {"error": m.last_error})
                )
            elif m.state in ("pending", "claimed"):
                entries.append(
                    TimelineEntry(m.created_at, "mail_queued", m.kind, {"attempts": m.attempts})
                )
        replies = select(InboundLedgerRow).where(InboundLedgerRow.request_id == rid)
        for r in self._session.scalars(replies.order_by(InboundLedgerRow.id)):
            details = {"sender": r.sender, "outcome": r.outcome, "rules": list(r.rules)}
            if r.verdict:
                details["verdict"] = r.verdict
            entries.append(TimelineEntry(r.read_at, "reply", f"reply from {r.sender}", details))
        entries.sort(key=lambda e: e.at)
        return entries
