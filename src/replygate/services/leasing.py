"""The reader lease of one folder, as the worker holds it across rounds.

Only the holder reads the folder (safety rule 4 across replicas: one reader at a time,
so a message is never disposed of by two). The holder renews while it works, at most
every third of the period, so a renewal costs one small UPDATE now and then; a holder
that dies stops renewing and another worker takes over once the period has run out.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from replygate.services.ports import Clock, UnitOfWork

log = logging.getLogger(__name__)

DEFAULT_LEASE = timedelta(seconds=60)


@dataclass
class FolderLease:
    uow_factory: Callable[[], UnitOfWork]
    clock: Clock
    mailbox: str
    folder: str
    owner: str
    period: timedelta = DEFAULT_LEASE
    _renewed_at: datetime | None = None

    @property
    def held(self) -> bool:
        """Held as far as this process knows (the last take or renewal is still running)."""
        return self._renewed_at is not None and self.clock.now() < self._renewed_at + self.period

    def acquire(self) -> bool:
        """Take or renew the lease now; False (and forgotten) while another owner holds it."""
        now = self.clock.now()
        with self.uow_factory() as uow:
            uow.folders.ensure(self.mailbox, self.folder, now)
            taken = uow.folders.try_lease(
                self.mailbox, self.folder, self.owner, now + self.period, now
            )
            uow.commit()
        if taken and self._renewed_at is None:
            log.info("%s now reads %s/%s", self.owner, self.mailbox, self.folder)
        self._renewed_at = now if taken else None
        return taken

    def keep(self) -> bool:
        """Renew when a third of the period has passed; False once the lease is lost."""
        if self.held:
            assert self._renewed_at is not None  # held says so
            if self.clock.now() - self._renewed_at < self.period / 3:
                return True
        if not self.acquire():
            log.warning("%s lost the lease of %s/%s", self.owner, self.mailbox, self.folder)
            return False
        return True

    def release(self) -> None:
        """Hand the folder over at once (a clean stop) instead of after the period."""
        if self._renewed_at is None:
            return
        self._renewed_at = None
        with self.uow_factory() as uow:
            uow.folders.release(self.mailbox, self.folder, self.owner)
            uow.commit()
