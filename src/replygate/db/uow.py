"""The SQLAlchemy unit of work: one session, one transaction, committed in one place."""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Self

from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from replygate.db.accounts import SqlApiTokenRepository, SqlUserRepository
from replygate.db.configuration import (
    SqlEmailSettings,
    SqlMailFolders,
    SqlOAuthApplications,
    SqlTokenCaches,
)
from replygate.db.pacing import SqlSendPacing
from replygate.db.repositories import (
    SqlAuditLog,
    SqlInboundLedger,
    SqlInstanceMeta,
    SqlOutboxRepository,
    SqlRequestQueries,
    SqlRequestRepository,
)
from replygate.db.webhooks import SqlWebhookRepository
from replygate.errors import StorageFailure
from replygate.services.ports import Clock


class SqlAlchemyUnitOfWork:
    """``with uow: ...; uow.commit()``. Leaving the block without commit rolls back."""

    session: Session
    requests: SqlRequestRepository
    outbox: SqlOutboxRepository
    pacing: SqlSendPacing
    ledger: SqlInboundLedger
    audit: SqlAuditLog
    meta: SqlInstanceMeta
    applications: SqlOAuthApplications
    token_caches: SqlTokenCaches
    email_settings: SqlEmailSettings
    folders: SqlMailFolders
    users: SqlUserRepository
    api_tokens: SqlApiTokenRepository
    queries: SqlRequestQueries
    webhooks: SqlWebhookRepository

    def __init__(self, session_factory: Callable[[], Session], clock: Clock) -> None:
        self._session_factory = session_factory
        self._clock = clock

    def __enter__(self) -> Self:
        self.session = self._session_factory()
        self.requests = SqlRequestRepository(self.session)
        self.outbox = SqlOutboxRepository(self.session, self._clock)
        self.pacing = SqlSendPacing(self.session, self._clock)
        self.ledger = SqlInboundLedger(self.session)
        self.audit = SqlAuditLog(self.session, self._clock)
        self.meta = SqlInstanceMeta(self.session)
        self.users = SqlUserRepository(self.session, self._clock)
        self.api_tokens = SqlApiTokenRepository(self.session, self._clock)
        self.applications = SqlOAuthApplications(self.session)
        self.token_caches = SqlTokenCaches(self.session)
        self.email_settings = SqlEmailSettings(self.session)
        self.folders = SqlMailFolders(self.session)
        self.queries = SqlRequestQueries(self.session)
        self.webhooks = SqlWebhookRepository(self.session, self._clock)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.session.rollback()
        finally:
            self.session.close()

    def commit(self) -> None:
        try:
            self.session.commit()
        except OperationalError as error:
            raise StorageFailure(f"the database refused the commit: {error.orig}") from error

    def rollback(self) -> None:
        self.session.rollback()


def session_factory(engine: Engine) -> Callable[[], Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)
