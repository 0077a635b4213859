"""Sending a request's failed mail again, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from replygate.db.uow import SqlAlchemyUnitOfWork
from replygate.errors import Conflict, NotFound
from replygate.services.requesting import (
    OutboxKind,
    RequestDraft,
    cancel_request,
    create_request,
)
from replygate.services.resending import failed_mail, resend_failed
from tests.conftest import FixedClock

UowFactory = Callable[[], SqlAlchemyUnitOfWork]


def new_request(make_uow: UowFactory, clock: FixedClock) -> str:
    draft = RequestDraft(
        title="Deploy payments-api",
        approvers=["alice@contoso.test", "bob@contoso.test"],
        requester="ci@contoso.test",
    )
    return create_request(make_uow(), clock, "prod", draft, created_by="t").request.id


def fail_request_mail(make_uow: UowFactory, request_id: str, error: str) -> int:
    with make_uow() as uow:
        (row,) = [r for r in uow.outbox.list() if r.request_id == request_id]
        assert row.kind == OutboxKind.REQUEST
        uow.outbox.mark_failed(row.id, error)
        uow.commit()
        return row.id


def test_failed_request_mail_is_queued_again_and_audited(
    make_uow: UowFactory, clock: FixedClock
) -> None:
    request_id = new_request(make_uow, clock)
    other_id = new_request(make_uow, clock)
    row_id = fail_request_mail(make_uow, request_id, "Send As missing")
    other_row = fail_request_mail(make_uow, other_id, "recipient refused")
    with make_uow() as uow:
        uow.outbox._set(row_id, attempts=12)  # it had given up after many attempts
        uow.commit()
    assert [(m.id, m.error) for m in failed_mail(make_uow(), request_id)] == [
        (row_id, "Send As missing")
    ]
    clock.advance(hours=3)

    assert resend_failed(make_uow(), clock, request_id, by="root") == 1

    assert failed_mail(make_uow(), request_id) == []
    with make_uow() as uow:
        row = uow.outbox.get(row_id)
        assert row is not None
        assert (row.state, row.last_error, row.attempts) == ("pending", "", 0)
        assert row.next_attempt_at.replace(tzinfo=None) == clock.now().replace(tzinfo=None)
        due = uow.outbox.claim_due("w1", clock.now(), limit=10)
        assert [item.id for item in due] == [row_id]  # due now; the other request's stays
        other = uow.outbox.get(other_row)
        assert other is not None
        assert other.state == "failed"
        audit = [(e.actor, e.action, e.target, e.details) for e in uow.audit.recent()]
    assert ("root", "outbox.retry", request_id, {"rows": [row_id], "count": 1}) in audit


def test_nothing_failed_is_refused(make_uow: UowFactory, clock: FixedClock) -> None:
    request_id = new_request(make_uow, clock)
    with pytest.raises(Conflict, match="no mail that could not be sent"):
        resend_failed(make_uow(), clock, request_id, by="root")
    with pytest.raises(NotFound):
        resend_failed(make_uow(), clock, "NOSUCHREQUEST", by="root")


def test_a_closed_request_is_refused(make_uow: UowFactory, clock: FixedClock) -> None:
    request_id = new_request(make_uow, clock)
    row_id = fail_request_mail(make_uow, request_id, "Send As missing")
    cancel_request(make_uow(), clock, request_id, by="ci")
    with pytest.raises(Conflict, match="already cancelled"):
        resend_failed(make_uow(), clock, request_id, by="root")
    with make_uow() as uow:
        row = uow.outbox.get(row_id)
        assert row is not None
        assert row.state == "failed"
