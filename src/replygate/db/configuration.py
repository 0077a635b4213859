"""Repositories for what admins configure: OAuth applications, token caches, Email Settings."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from replygate.db import leases
from replygate.db.tables import (
    EmailSettingsRow,
    MailFolderRow,
    OAuthApplicationRow,
    TokenCacheRow,
)
from replygate.services.ports import FolderState, OAuthApplication, SettingsVersion

_APP_FIELDS = tuple(f.name for f in fields(OAuthApplication))


def _to_record(row: OAuthApplicationRow) -> OAuthApplication:
    return OAuthApplication(**{name: getattr(row, name) for name in _APP_FIELDS})


class SqlOAuthApplications:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, app: OAuthApplication) -> OAuthApplication:
        row = OAuthApplicationRow(**{n: getattr(app, n) for n in _APP_FIELDS if n != "id"})
        self._session.add(row)
        self._session.flush()
        app.id = row.id
        return app

    def save(self, app: OAuthApplication) -> None:
        row = self._session.get_one(OAuthApplicationRow, app.id)
        for name in _APP_FIELDS:
            if name != "id":
                setattr(row, name, getattr(app, name))
        self._session.flush()

    def get(self, app_id: int) -> OAuthApplication | None:
        row = self._session.get(OAuthApplicationRow, app_id)
        return None if row is None else _to_record(row)

    def by_name(self, name: str) -> OAuthApplication | None:
        row = self._session.scalar(
            select(OAuthApplicationRow).where(
                func.lower(OAuthApplicationRow.name) == name.strip().lower()
            )
        )
        return None if row is None else _to_record(row)

    def list(self) -> Sequence[OAuthApplication]:
        query = select(OAuthApplicationRow).order_by(OAuthApplicationRow.name)
        return [_to_record(row) for row in self._session.scalars(query)]

    def remove(self, app_id: int) -> None:
        self._session.execute(delete(OAuthApplicationRow).where(OAuthApplicationRow.id == app_id))


class SqlTokenCaches:
    def __init__(self, session: Session) -> None:
        self._session = session

    def for_application(self, app_id: int) -> TokenCacheRow | None:
        return self._session.scalar(
            select(TokenCacheRow).where(TokenCacheRow.application_id == app_id)
        )

    def put(self, row: TokenCacheRow) -> TokenCacheRow:
        existing = self.for_application(row.application_id)
        if existing is not None:
            self._session.delete(existing)
            self._session.flush()
        self._session.add(row)
        self._session.flush()
        return row

    def remove(self, app_id: int) -> bool:
        result = self._session.execute(
            delete(TokenCacheRow).where(TokenCacheRow.application_id == app_id)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]


class SqlEmailSettings:
    """Versioned settings: each save adds a version; the highest is in force."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def current(self) -> SettingsVersion | None:
        row = self._latest()
        return None if row is None else _version(row)

    def _latest(self) -> EmailSettingsRow | None:
        return self._session.scalar(
            select(EmailSettingsRow).order_by(EmailSettingsRow.version.desc()).limit(1)
        )

    def add_version(
        self, data: dict[str, Any], password_encrypted: str | None, at: datetime, by: str
    ) -> SettingsVersion:
        latest = self._latest()
        row = EmailSettingsRow(
            version=(latest.version + 1) if latest else 1,
            data=data,
            password_encrypted=password_encrypted,
            created_at=at,
            created_by=by,
        )
        self._session.add(row)
        self._session.flush()
        return _version(row)

    def history(self, limit: int = 20) -> Sequence[SettingsVersion]:
        query = select(EmailSettingsRow).order_by(EmailSettingsRow.version.desc()).limit(limit)
        return [_version(row) for row in self._session.scalars(query)]


def _version(row: EmailSettingsRow) -> SettingsVersion:
    return SettingsVersion(
        row.version, dict(row.data), row.password_encrypted, row.created_at, row.created_by
    )


class SqlMailFolders:
    """Folders replygate reads; ``configured_at`` bounds which mail may ever be processed."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def get(self, mailbox: str, path: str) -> MailFolderRow | None:
        return self._session.scalar(
            select(MailFolderRow).where(
                MailFolderRow.mailbox == mailbox.lower(), MailFolderRow.path == path
            )
        )

    def ensure(self, mailbox: str, path: str, at: datetime) -> FolderState:
        """The folder, created with ``configured_at=at`` the first time it is named."""
        row = self.get(mailbox, path)
        if row is None:
            row = MailFolderRow(mailbox=mailbox.lower(), path=path, configured_at=at)
            self._session.add(row)
            self._session.flush()
        return FolderState(row.mailbox, row.path, row.configured_at, row.folder_id, row.cursor)

    def update(self, mailbox: str, path: str, **values: Any) -> None:
        self._session.execute(
            update(MailFolderRow)
            .where(MailFolderRow.mailbox == mailbox.lower(), MailFolderRow.path == path)
            .values(**values)
        )

    def try_lease(
        self, mailbox: str, path: str, owner: str, until: datetime, now: datetime
    ) -> bool:
        return leases.try_lease(self._session, mailbox, path, owner, until, now)

    def release(self, mailbox: str, path: str, owner: str) -> None:
        leases.release(self._session, mailbox, path, owner)

    def list(self) -> Sequence[MailFolderRow]:
        return list(self._session.scalars(select(MailFolderRow).order_by(MailFolderRow.id)))
