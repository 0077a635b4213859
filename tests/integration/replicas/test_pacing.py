"""The send pace in the database: slots per mailbox per window, whichever replica asks."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta

from replygate.db.uow import SqlAlchemyUnitOfWork
from replygate.services.ports import SendSlot
from tests.conftest import FixedClock

BOX = "approvals@contoso.test"
WINDOW = timedelta(seconds=60)
Factory = Callable[[], SqlAlchemyUnitOfWork]


def reserve(make_uow: Factory, mailbox: str = BOX, limit: int = 3) -> SendSlot:
    with make_uow() as uow:
        slot = uow.pacing.reserve(mailbox, limit=limit, window=WINDOW, hold=WINDOW, holder="t")
        uow.commit()
    return slot


def settle(make_uow: Factory, slot: SendSlot) -> None:
    assert slot.slot_id is not None
    with make_uow() as uow:
        uow.pacing.settle(slot.slot_id, WINDOW)
        uow.commit()


def test_slots_up_to_the_limit_then_when_the_next_one_frees(
    make_uow: Factory, clock: FixedClock
) -> None:
    started = clock.now()
    for _ in range(3):
        settle(make_uow, reserve(make_uow))
        clock.advance(seconds=1)
    full = reserve(make_uow)
    assert full == SendSlot(None, started + WINDOW)  # the first settled send leaves the window
    clock.current = started + WINDOW
    assert reserve(make_uow).slot_id is not None
    assert reserve(make_uow).slot_id is None


def test_a_send_in_flight_counts_until_settled_or_a_window_longer(
    make_uow: Factory, clock: FixedClock
) -> None:
    started = clock.now()
    for _ in range(3):
        reserve(make_uow)  # never settled: the sender died mid-send
    clock.advance(seconds=90)
    assert reserve(make_uow) == SendSlot(None, started + 2 * WINDOW)
    clock.current = started + 2 * WINDOW  # a crash holds slots two windows, not forever
    assert reserve(make_uow).slot_id is not None


def test_mailboxes_have_their_own_pace_whatever_the_case(
    make_uow: Factory, clock: FixedClock
) -> None:
    for _ in range(3):
        assert reserve(make_uow, BOX).slot_id is not None
    assert reserve(make_uow, BOX.upper()).slot_id is None
    assert reserve(make_uow, "alerts@contoso.test").slot_id is not None


def test_concurrent_reservations_never_exceed_the_limit(
    make_uow: Factory, clock: FixedClock
) -> None:
    """Eight senders at once on a mailbox not seen before (its pace row does not exist
    yet): five slots in all, however the transactions interleave."""
    start = threading.Barrier(8)
    granted: list[int] = []
    errors: list[BaseException] = []

    def sender() -> None:
        try:
            start.wait()
            for _ in range(5):
                slot = reserve(make_uow, "new@contoso.test", limit=5)
                if slot.slot_id is not None:
                    granted.append(slot.slot_id)
        except BaseException as error:  # reported below, not lost in the thread
            errors.append(error)

    threads = [threading.Thread(target=sender) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert len(granted) == 5
