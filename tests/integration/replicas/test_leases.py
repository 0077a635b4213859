"""Folder leases: one reader at a time, renewed by the holder, taken over after expiry."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from replygate.db import leases
from replygate.db.uow import SqlAlchemyUnitOfWork
from replygate.services.leasing import FolderLease
from tests.conftest import FixedClock

BOX, FOLDER = "approvals@contoso.test", "Inbox/Approvals"
Factory = Callable[[], SqlAlchemyUnitOfWork]


def lease(make_uow: Factory, clock: FixedClock, owner: str, seconds: float = 60) -> FolderLease:
    return FolderLease(make_uow, clock, BOX, FOLDER, owner, timedelta(seconds=seconds))


def holder(make_uow: Factory) -> str | None:
    with make_uow() as uow:
        return leases.holder(uow.session, BOX, FOLDER)[0]


def test_one_holder_at_a_time_until_the_lease_runs_out(
    make_uow: Factory, clock: FixedClock
) -> None:
    first, second = lease(make_uow, clock, "a"), lease(make_uow, clock, "b")
    assert first.acquire()
    assert not second.acquire()
    clock.advance(seconds=59)
    assert first.acquire()  # renewed: runs until 59 + 60
    clock.advance(seconds=59)
    assert not second.acquire()
    assert holder(make_uow) == "a"
    clock.advance(seconds=61)  # "a" died: nobody renewed for a whole period
    assert second.acquire()
    assert holder(make_uow) == "b"
    assert not first.keep()  # the old holder learns it lost the folder


def test_keep_renews_only_after_a_third_of_the_period(make_uow: Factory, clock: FixedClock) -> None:
    held = lease(make_uow, clock, "a", seconds=30)
    assert held.acquire()
    with make_uow() as uow:
        until = leases.holder(uow.session, BOX, FOLDER)[1]
    clock.advance(seconds=5)
    assert held.keep()
    with make_uow() as uow:
        assert leases.holder(uow.session, BOX, FOLDER)[1] == until  # no write needed yet
    clock.advance(seconds=6)
    assert held.keep()
    with make_uow() as uow:
        assert leases.holder(uow.session, BOX, FOLDER)[1] == clock.now() + timedelta(seconds=30)


def test_release_hands_over_at_once(make_uow: Factory, clock: FixedClock) -> None:
    first, second = lease(make_uow, clock, "a"), lease(make_uow, clock, "b")
    assert first.acquire()
    second.release()  # not the holder: changes nothing
    assert holder(make_uow) == "a"
    first.release()
    assert holder(make_uow) is None
    assert second.acquire()


def test_leases_of_other_folders_are_independent(make_uow: Factory, clock: FixedClock) -> None:
    assert lease(make_uow, clock, "a").acquire()
    other = FolderLease(make_uow, clock, BOX, "Inbox", "b", timedelta(seconds=60))
    assert other.acquire()
