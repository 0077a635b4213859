"""Send pacing shared by every replica: at most N sends per window per From mailbox.

Exchange Online accepts 30 messages per minute per mailbox, whichever replica sends them,
so the count lives in the database. A reservation locks the mailbox's ``send_pace`` row
(``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` already serialises
writers), counts the ``send_slots`` that still count and adds one, or says when the next
one frees. Nothing is held between transactions: a slot of a process that died simply
stops counting at its ``frees_at``.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from replygate.db.engine import insert_if_absent
from replygate.db.tables import SendPaceRow, SendSlotRow
from replygate.services.ports import Clock, SendSlot


class SqlSendPacing:
    """The ``SendPacing`` port: reserve a slot before a send, settle it once it is done."""

    def __init__(self, session: Session, clock: Clock) -> None:
        self._session = session
        self._clock = clock

    def reserve(
        self, mailbox: str, *, limit: int, window: timedelta, hold: timedelta, holder: str
    ) -> SendSlot:
        key = mailbox.lower()
        self._lock(key)
        # Read after the lock: under READ COMMITTED each statement sees what the previous
        # holder committed, so two replicas never both take the last slot.
        now = self._clock.now()
        self._session.execute(
            delete(SendSlotRow).where(SendSlotRow.mailbox == key, SendSlotRow.frees_at <= now)
        )
        counting = list(
            self._session.scalars(
                select(SendSlotRow.frees_at)
                .where(SendSlotRow.mailbox == key)
                .order_by(SendSlotRow.frees_at)
            )
        )
        if len(counting) >= limit:
            # enough of the earliest must free for one more to fit
            return SendSlot(None, counting[len(counting) - limit])
        # Until it is settled the send may still be in flight: it counts for `hold` more.
        slot = SendSlotRow(mailbox=key, taken_at=now, frees_at=now + hold + window, holder=holder)
        self._session.add(slot)
        self._session.flush()
        return SendSlot(slot.id)

    def settle(self, slot_id: int, window: timedelta) -> None:
        """The send is over: Microsoft saw it by now, so it counts one window from now."""
        self._session.execute(
            update(SendSlotRow)
            .where(SendSlotRow.id == slot_id)
            .values(frees_at=self._clock.now() + window)
        )

    def _lock(self, key: str) -> None:
        insert_if_absent(self._session, SendPaceRow, mailbox=key)
        self._session.execute(
            select(SendPaceRow.mailbox).where(SendPaceRow.mailbox == key).with_for_update()
        )
