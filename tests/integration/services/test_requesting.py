"""Request use cases on SQLite and PostgreSQL: the request and its mail in one transaction."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from replygate.db.uow import SqlAlchemyUnitOfWork
from replygate.domain.model import Policy, PolicyKind, RequestState
from replygate.errors import Conflict, InvalidInput, NotFound
from replygate.services.requesting import (
    OutboxKind,
    RequestDraft,
    cancel_request,
    create_request,
    expire_due_requests,
)
from tests.conftest import FixedClock

UowFactory = Callable[[], SqlAlchemyUnitOfWork]


def draft(**changes: object) -> RequestDraft:
    values: dict[str, object] = {
        "title": "Deploy payments-api 2.3.1 to production",
        "approvers": ["Alice@Contoso.test", "bob@contoso.test"],
        "requester": "ci@contoso.test",
        "metadata": {"environment": "production"},
    }
    values.update(changes)
    return RequestDraft(**values)  # type: ignore[arg-type]


def outbox_kinds(make_uow: UowFactory) -> list[tuple[str, str | None]]:
    with make_uow() as uow:
        return sorted((row.kind, row.request_id) for row in uow.outbox.list())


def test_create_writes_request_and_its_mail_together(
    make_uow: UowFactory, clock: FixedClock
) -> None:
    created = create_request(make_uow(), clock, "prod", draft(), created_by="api:ci")
    assert str(created.token) == f"RG-prod-{created.request.id}"
    assert created.request.approvers == ("alice@contoso.test", "bob@contoso.test")
    assert outbox_kinds(make_uow) == [(OutboxKind.REQUEST, created.request.id)]
    with make_uow() as uow:
        stored = uow.requests.get(created.request.id)
        assert stored is not None
        assert stored.expires_at == clock.now() + timedelta(hours=24)
        assert [e.action for e in uow.audit.recent()] == ["request.create"]


def test_idempotency_key_returns_the_first_request(make_uow: UowFactory, clock: FixedClock) -> None:
    first = create_request(
        make_uow(), clock, "prod", draft(idempotency_key="run-42"), created_by="a"
    )
    again = create_request(
        make_uow(), clock, "prod", draft(idempotency_key="run-42"), created_by="a"
    )
    assert again.replayed
    assert again.request.id == first.request.id
    assert len(outbox_kinds(make_uow)) == 1


def test_reminder_is_scheduled(make_uow: UowFactory, clock: FixedClock) -> None:
    created = create_request(
        make_uow(), clock, "prod", draft(remind_after=timedelta(hours=2)), created_by="a"
    )
    with make_uow() as uow:
        reminder = next(r for r in uow.outbox.list() if r.kind == OutboxKind.REMINDER)
        assert reminder.next_attempt_at == clock.now() + timedelta(hours=2)
        assert reminder.request_id == created.request.id


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"approvers": ["not-an-address"]}, "approvers: 'not-an-address' is not an email address"),
        ({"approvers": []}, "at least one approver"),
        ({"title": "x" * 301}, "title: at most 300"),
        ({"title": "two\nlines"}, "title: must be one line"),
        ({"policy": Policy(PolicyKind.QUORUM, 3)}, "needs 3 approvals"),
        ({"expires_in": timedelta(seconds=-1)}, "expires_in: must be in the future"),
        ({"expires_in": timedelta(days=91)}, "expires_in: at most 90 days"),
        ({"remind_after": timedelta(days=2)}, "remind_after"),
        ({"metadata": {"k": "v" * 2001}}, "metadata: k is longer"),
        ({"approvers": [f"a{i}@x.test" for i in range(501)]}, "at most 500"),
    ],
)
def test_invalid_drafts_are_refused_and_nothing_is_stored(
    make_uow: UowFactory, clock: FixedClock, changes: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        create_request(make_uow(), clock, "prod", draft(**changes), created_by="a")
    assert outbox_kinds(make_uow) == []


def test_cancel_notifies_and_closed_cannot_be_cancelled(
    make_uow: UowFactory, clock: FixedClock
) -> None:
    created = create_request(make_uow(), clock, "prod", draft(), created_by="a")
    cancelled = cancel_request(make_uow(), clock, created.request.id, by="alice")
    assert cancelled.state is RequestState.CANCELLED
    assert (OutboxKind.CANCELLED, created.request.id) in outbox_kinds(make_uow)
    with pytest.raises(Conflict, match="cannot be cancelled"):
        cancel_request(make_uow(), clock, created.request.id, by="alice")
    with pytest.raises(NotFound):
        cancel_request(make_uow(), clock, "ZZZZZZZZZZ", by="alice")


def test_expiry_closes_and_notifies_once(make_uow: UowFactory, clock: FixedClock) -> None:
    created = create_request(
        make_uow(), clock, "prod", draft(expires_in=timedelta(hours=1)), created_by="a"
    )
    assert expire_due_requests(make_uow(), clock) == []
    clock.advance(hours=1)
    assert expire_due_requests(make_uow(), clock) == [created.request.id]
    assert expire_due_requests(make_uow(), clock) == []
    with make_uow() as uow:
        request = uow.requests.get(created.request.id)
        assert request is not None
        assert request.state is RequestState.EXPIRED
    assert outbox_kinds(make_uow).count((OutboxKind.OUTCOME, created.request.id)) == 1
