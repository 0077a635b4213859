"""Expiry across replicas: each due request is closed, and its outcome mail queued, once."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from replygate.db.repositories import ConcurrentChange, SqlRequestRepository
from replygate.db.tables import OutboxRow
from replygate.db.uow import SqlAlchemyUnitOfWork
from replygate.domain.model import ApprovalRequest, Channel, Decision, Verdict
from replygate.services.requesting import (
    OutboxKind,
    RequestDraft,
    create_request,
    expire_due_requests,
)
from tests.conftest import FixedClock

Factory = Callable[[], SqlAlchemyUnitOfWork]


def make_requests(make_uow: Factory, clock: FixedClock, count: int) -> list[str]:
    draft = RequestDraft(
        title="Deploy",
        approvers=["alice@contoso.test"],
        requester="ci@contoso.test",
        expires_in=timedelta(minutes=5),
    )
    return [
        create_request(make_uow(), clock, "prod", draft, created_by="ci").request.id
        for _ in range(count)
    ]


def outcome_rows(make_uow: Factory) -> dict[str, int]:
    with make_uow() as uow:
        query = (
            select(OutboxRow.request_id, func.count())
            .where(OutboxRow.kind == OutboxKind.OUTCOME)
            .group_by(OutboxRow.request_id)
        )
        return {str(rid): int(n) for rid, n in uow.session.execute(query)}


def test_three_replicas_expire_each_request_once(make_uow: Factory, clock: FixedClock) -> None:
    ids = make_requests(make_uow, clock, 60)
    clock.advance(minutes=6)
    start = threading.Barrier(3)
    found: list[list[str]] = [[], [], []]
    failures: list[BaseException] = []

    def replica(index: int) -> None:
        try:
            start.wait()
            while batch := expire_due_requests(make_uow(), clock, limit=7):
                found[index].extend(batch)
        except BaseException as error:  # reported by the main thread
            failures.append(error)

    threads = [threading.Thread(target=replica, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert failures == []
    everything = [rid for batch in found for rid in batch]
    assert sorted(everything) == sorted(ids)  # each expired by exactly one replica
    assert outcome_rows(make_uow) == dict.fromkeys(ids, 1)


def test_a_concurrent_change_throws_the_batch_away_and_tries_again(
    make_uow: Factory, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = make_requests(make_uow, clock, 3)
    clock.advance(minutes=6)
    real_save = SqlRequestRepository.save
    calls: list[str] = []

    def save_once_too_late(self: SqlRequestRepository, request: ApprovalRequest) -> None:
        calls.append(request.id)
        if len(calls) == 2:  # another replica changed this request since it was read
            raise ConcurrentChange(f"request {request.id} changed since it was read; retry")
        real_save(self, request)

    monkeypatch.setattr(SqlRequestRepository, "save", save_once_too_late)
    assert sorted(expire_due_requests(make_uow(), clock)) == sorted(ids)
    assert outcome_rows(make_uow) == dict.fromkeys(ids, 1)  # the first try left nothing


def test_a_request_decided_before_expiry_runs_is_left_alone(
    make_uow: Factory, clock: FixedClock
) -> None:
    [rid] = make_requests(make_uow, clock, 1)
    clock.advance(minutes=6)
    with make_uow() as uow:
        request = uow.requests.get(rid)
        assert request is not None
        request.decide(
            Decision("alice@contoso.test", Verdict.APPROVE, "", Channel.EMAIL, clock.now())
        )
        uow.requests.save(request)
        uow.commit()
    assert expire_due_requests(make_uow(), clock) == []
    assert outcome_rows(make_uow) == {}
