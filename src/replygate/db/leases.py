"""Folder leases: one reader per (mailbox, folder) across every replica.

A lease is the ``lease_owner``/``lease_until`` pair of the folder's row. It is taken or
renewed by one conditional UPDATE (free, expired, or already ours), so the database
decides the race on SQLite and PostgreSQL alike: no advisory locks, nothing held open
between rounds, and a reader that dies simply stops renewing and is replaced once
``lease_until`` passes.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.orm import Session

from replygate.db.tables import MailFolderRow


def _folder(mailbox: str, path: str) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
    return MailFolderRow.mailbox == mailbox.lower(), MailFolderRow.path == path


def try_lease(
    session: Session, mailbox: str, path: str, owner: str, until: datetime, now: datetime
) -> bool:
    """Take or renew the lease until ``until``; False while another owner's lease runs."""
    result = session.execute(
        update(MailFolderRow)
        .where(
            *_folder(mailbox, path),
            or_(
                MailFolderRow.lease_owner.is_(None),
                MailFolderRow.lease_owner == owner,
                MailFolderRow.lease_until.is_(None),
                MailFolderRow.lease_until < now,
            ),
        )
        .values(lease_owner=owner, lease_until=until)
        .execution_options(synchronize_session=False)
    )
    taken: int = result.rowcount  # type: ignore[attr-defined]
    return taken == 1


def release(session: Session, mailbox: str, path: str, owner: str) -> None:
    """Give the lease up at once (a clean stop), if ``owner`` still holds it."""
    session.execute(
        update(MailFolderRow)
        .where(*_folder(mailbox, path), MailFolderRow.lease_owner == owner)
        .values(lease_owner=None, lease_until=None)
        .execution_options(synchronize_session=False)
    )


def holder(session: Session, mailbox: str, path: str) -> tuple[str | None, datetime | None]:
    """Who holds the lease and until when (for health and tests)."""
    row = session.execute(
        select(MailFolderRow.lease_owner, MailFolderRow.lease_until).where(*_folder(mailbox, path))
    ).first()
    return (None, None) if row is None else (row[0], row[1])
