"""Repositories on SQLite and PostgreSQL: the same behaviour on both."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy.exc import IntegrityError

from replygate.db.repositories import ConcurrentChange
from replygate.db.uow import SqlAlchemyUnitOfWork
from replygate.domain.model import (
    ApprovalRequest,
    Channel,
    Decision,
    Policy,
    PolicyKind,
    RequestState,
    Verdict,
)
from replygate.services.ports import LedgerEntry
from tests.conftest import FixedClock

UowFactory = Callable[[], SqlAlchemyUnitOfWork]


def new_request(clock: FixedClock, request_id: str = "7KQ2M9XW4D") -> ApprovalRequest:
    return ApprovalRequest(
        id=request_id,
        title="Deploy payments-api 2.3.1",
        requester="ci@contoso.test",
        approvers=("alice@contoso.test", "Bob@Contoso.test", "carol@contoso.test"),
        policy=Policy(PolicyKind.QUORUM, 2),
        created_at=clock.now(),
        expires_at=clock.now() + timedelta(hours=4),
        details="**Release notes** in the pipeline",
        metadata={"environment": "production", "version": "2.3.1"},
    )


def test_request_round_trip_with_decisions(make_uow: UowFactory, clock: FixedClock) -> None:
    with make_uow() as uow:
        uow.requests.add(new_request(clock), instance="prod", idempotency_key="run-1")
        uow.commit()
    with make_uow() as uow:
        request = uow.requests.get("7kq2m9xw4d")
        assert request is not None
        assert request.approvers == ("alice@contoso.test", "bob@contoso.test", "carol@contoso.test")
        assert request.metadata == {"environment": "production", "version": "2.3.1"}
        assert request.created_at == clock.now()
        decision = Decision(
            "alice@contoso.test", Verdict.APPROVE, "ok", Channel.EMAIL, clock.now(), {"m": "<id@x>"}
        )
        request.decide(decision)
        uow.requests.save(request)
        uow.commit()
    with make_uow() as uow:
        request = uow.requests.get("7KQ2M9XW4D")
        assert request is not None
        assert request.state is RequestState.PENDING
        assert [(d.approver, d.verdict, d.evidence) for d in request.decisions] == [
            ("alice@contoso.test", Verdict.APPROVE, {"m": "<id@x>"})
        ]
        request.decide(Decision("bob@contoso.test", Verdict.APPROVE, "", Channel.WEB, clock.now()))
        uow.requests.save(request)
        uow.commit()
    with make_uow() as uow:
        closed = uow.requests.get("7KQ2M9XW4D")
        assert closed is not None
        assert closed.state is RequestState.APPROVED
        assert closed.closed_at == clock.now()
        assert uow.requests.find_by_idempotency_key("run-1") is not None
        assert [r.id for r in uow.requests.list(state="approved")] == ["7KQ2M9XW4D"]
        assert uow.requests.list(state="pending") == []


def test_uncommitted_work_is_rolled_back(make_uow: UowFactory, clock: FixedClock) -> None:
    with make_uow() as uow:
        uow.requests.add(new_request(clock), instance="prod")
    with make_uow() as uow:
        assert uow.requests.get("7KQ2M9XW4D") is None


@pytest.mark.postgres  # SQLite serialises writers, so this interleaving cannot happen there
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_concurrent_decisions_are_detected_not_lost(
    make_uow: UowFactory, clock: FixedClock
) -> None:
    with make_uow() as uow:
        uow.requests.add(new_request(clock), instance="prod")
        uow.commit()
    # Two workers load the same pending request and decide for the same approver.
    first, second = make_uow(), make_uow()
    with first, second:
        a = first.requests.get("7KQ2M9XW4D")
        b = second.requests.get("7KQ2M9XW4D")
        assert a is not None
        assert b is not None
        vote = Decision("alice@contoso.test", Verdict.APPROVE, "", Channel.EMAIL, clock.now())
        a.decide(vote)
        first.requests.save(a)
        first.commit()
        b.decide(vote)
        with pytest.raises(ConcurrentChange):
            second.requests.save(b)
    with make_uow() as uow:
        request = uow.requests.get("7KQ2M9XW4D")
        assert request is not None
        assert len(request.decisions) == 1


def test_expiry_query(make_uow: UowFactory, clock: FixedClock) -> None:
    with make_uow() as uow:
        uow.requests.add(new_request(clock, "AAAAAAAAAA"), instance="prod")
        uow.commit()
    with make_uow() as uow:
        assert uow.requests.due_for_expiry(clock.now()) == []
        assert uow.requests.due_for_expiry(clock.now() + timedelta(hours=4)) == ["AAAAAAAAAA"]


def test_outbox_claims_due_rows_once_and_reclaims_abandoned(
    make_uow: UowFactory, clock: FixedClock
) -> None:
    with make_uow() as uow:
        first = uow.outbox.add("request_mail", {"n": 1})
        uow.outbox.add("request_mail", {"n": 2}, due=clock.now() + timedelta(minutes=5))
        uow.commit()
    lease = clock.now() + timedelta(minutes=1)
    with make_uow() as uow:
        claimed = uow.outbox.claim_due("worker-a", lease)
        assert [row.id for row in claimed] == [first]
        uow.commit()
    with make_uow() as uow:
        assert uow.outbox.claim_due("worker-b", lease) == []  # claimed, not yet abandoned
    clock.advance(minutes=2)
    with make_uow() as uow:
        again = uow.outbox.claim_due("worker-b", clock.now() + timedelta(minutes=1))
        assert [row.id for row in again] == [first]
        assert again[0].attempts == 2  # the abandoned claim counts as an attempt


def test_ledger_is_unique_per_mailbox_and_message(make_uow: UowFactory, clock: FixedClock) -> None:
    def row(mailbox: str) -> LedgerEntry:
        return LedgerEntry(
            mailbox=mailbox,
            folder="Inbox/Approvals",
            message_key="<a@b>",
            read_at=clock.now(),
            outcome="not_ours",
            rules=["not_ours"],
        )

    with make_uow() as uow:
        uow.ledger.add(row("Approvals@Contoso.test"))
        uow.commit()
    with make_uow() as uow:
        found = uow.ledger.find("approvals@contoso.test", "<a@b>")
        assert found is not None
        assert found.rules == ["not_ours"]
        uow.ledger.add(row("other@contoso.test"))  # another mailbox: its own key space
        uow.commit()
    with make_uow() as uow, pytest.raises(IntegrityError):
        uow.ledger.add(row("approvals@contoso.test"))


def test_audit_log_records_in_order(make_uow: UowFactory) -> None:
    with make_uow() as uow:
        uow.audit.record("admin", "settings.update", "email", {"version": 2})
        uow.audit.record("admin", "oauth.authorize", "app 1")
        uow.commit()
    with make_uow() as uow:
        assert [e.action for e in uow.audit.recent()] == ["oauth.authorize", "settings.update"]


def test_decisions_are_unique_per_approver_in_the_schema(
    make_uow: UowFactory, clock: FixedClock
) -> None:
    from replygate.db.tables import DecisionRow

    with make_uow() as uow:
        uow.requests.add(new_request(clock), instance="prod")
        uow.commit()
    with make_uow() as uow:
        for _ in range(2):
            uow.session.add(
                DecisionRow(
                    request_id="7KQ2M9XW4D",
                    approver="alice@contoso.test",
                    verdict="approve",
                    channel="email",
                    decided_at=clock.now(),
                    comment="",
                    evidence={},
                )
            )
        with pytest.raises(IntegrityError):
            uow.session.flush()
