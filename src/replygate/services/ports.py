"""The ports use cases depend on; adapters (db, graph, smtp, imap) implement them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Protocol, Self

from replygate.domain.model import ApprovalRequest
from replygate.services.webhook_ports import WebhookRepository


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, aware, in UTC."""
        ...


class RequestRepository(Protocol):
    def add(self, request: ApprovalRequest, *, instance: str, **extra: Any) -> None: ...

    def get(self, request_id: str) -> ApprovalRequest | None: ...

    def find_by_idempotency_key(self, key: str) -> ApprovalRequest | None: ...

    def due_for_expiry(self, now: datetime, limit: int = 100) -> Sequence[str]: ...

    def save(self, request: ApprovalRequest) -> None: ...

    def set_message_id(self, request_id: str, message_id: str) -> None: ...

    def find_by_message_id(self, message_id: str) -> ApprovalRequest | None: ...

    def mark_delivery_failed(self, request_id: str, address: str, error: str) -> bool: ...

    def list(
        self, *, state: str | None = None, limit: int = 50, offset: int = 0
    ) -> Sequence[ApprovalRequest]: ...


@dataclass(frozen=True)
class OutboxItem:
    """A claimed outbox row: what to send, and how far an earlier attempt got."""

    id: int
    kind: str
    request_id: str | None
    payload: dict[str, Any]
    attempts: int
    mailbox: str | None = None
    draft_id: str | None = None
    internet_message_id: str | None = None


@dataclass(frozen=True)
class FailedMail:
    """An outbox row of a request that failed for good, and why."""

    id: int
    kind: str
    error: str


@dataclass
class LedgerEntry:
    """One mail read: what it was, what was understood, which rules hit, what was done."""

    mailbox: str
    folder: str
    message_key: str  # internetMessageId, else the SHA-256 of the raw message
    read_at: datetime
    outcome: str
    rules: list[str]
    transport_id: str | None = None
    received_at: datetime | None = None
    sender: str = ""
    subject: str = ""
    request_id: str | None = None
    verdict: str | None = None
    comment: str = ""
    size: int = 0
    raw_mime: bytes | None = None
    disposal: str = "none"  # none | pending | moved | deleted | kept | failed
    disposed_at: datetime | None = None
    id: int | None = None


@dataclass(frozen=True)
class FolderState:
    """A read folder: when it was first configured, its resolved id and its delta cursor."""

    mailbox: str
    path: str
    configured_at: datetime
    folder_id: str | None = None
    cursor: str | None = None


class FolderRepository(Protocol):
    def ensure(self, mailbox: str, path: str, at: datetime) -> FolderState: ...

    def update(self, mailbox: str, path: str, **values: Any) -> None: ...

    def try_lease(
        self, mailbox: str, path: str, owner: str, until: datetime, now: datetime
    ) -> bool:
        """Take or renew the folder's reader lease; False while another owner holds it."""
        ...

    def release(self, mailbox: str, path: str, owner: str) -> None: ...


@dataclass
class OAuthApplication:
    """A registered application as stored: credentials only in encrypted form."""

    name: str = ""
    tenant: str = ""
    client_id: str = ""
    mode: str = "delegated"
    cloud: str = "global"
    credential_kind: str = "secret"
    created_at: datetime | None = None
    updated_at: datetime | None = None
    authority_host: str | None = None
    graph_url: str | None = None
    secret_encrypted: str | None = None
    secret_expires_at: datetime | None = None
    certificate_encrypted: str | None = None
    certificate_thumbprint: str | None = None
    certificate_expires_at: datetime | None = None
    id: int | None = None

    @property
    def credential_expires_at(self) -> datetime | None:
        return (
            self.secret_expires_at
            if self.credential_kind == "secret"
            else self.certificate_expires_at
        )


class ApplicationRepository(Protocol):
    def add(self, app: OAuthApplication) -> OAuthApplication: ...

    def save(self, app: OAuthApplication) -> None: ...

    def get(self, app_id: int) -> OAuthApplication | None: ...

    def by_name(self, name: str) -> OAuthApplication | None: ...

    def list(self) -> Sequence[OAuthApplication]: ...

    def remove(self, app_id: int) -> None: ...


class TokenCacheRepository(Protocol):
    def remove(self, app_id: int) -> bool:
        """Drop the application's authorised account; False when it had none."""
        ...


@dataclass(frozen=True)
class SettingsVersion:
    version: int
    data: dict[str, Any]
    password_encrypted: str | None
    created_at: datetime
    created_by: str


class EmailSettingsRepository(Protocol):
    def current(self) -> SettingsVersion | None: ...

    def add_version(
        self, data: dict[str, Any], password_encrypted: str | None, at: datetime, by: str
    ) -> SettingsVersion: ...

    def history(self, limit: int = 20) -> Sequence[SettingsVersion]: ...


class InboundLedger(Protocol):
    def find(self, mailbox: str, message_key: str) -> LedgerEntry | None: ...

    def add(self, entry: LedgerEntry) -> LedgerEntry: ...

    def mark_disposed(self, ledger_id: int, disposal: str, at: datetime) -> None: ...

    def count_outcomes(self, request_id: str, sender: str, outcome: str) -> int: ...

    def purge_raw_mime(self, read_before: datetime) -> int: ...

    def owed_disposals(self, mailbox: str, limit: int = 100) -> list[tuple[int, str]]:
        """(ledger id, transport id) of our messages whose disposal is pending or failed."""
        ...


class OutboxRepository(Protocol):
    def claim_due(
        self, worker: str, lease_until: datetime, limit: int = 10
    ) -> list[OutboxItem]: ...

    def record_plan(self, outbox_id: int, mailbox: str, internet_message_id: str) -> None:
        """The Message-ID a draft is about to be created with (before it exists)."""
        ...

    def record_progress(
        self, outbox_id: int, mailbox: str, draft_id: str, internet_message_id: str
    ) -> None: ...

    def defer(self, outbox_id: int, at: datetime) -> None:
        """Back to the queue until ``at`` without counting an attempt (send pace full)."""
        ...

    def mark_sent(self, outbox_id: int, internet_message_id: str | None, at: datetime) -> None: ...

    def reschedule(self, outbox_id: int, at: datetime, error: str) -> None: ...

    def retry_waiting_now(self, now: datetime) -> int:
        """Make every waiting row due now: an admin fixed what held the mail back."""
        ...

    def mark_failed(self, outbox_id: int, error: str) -> None: ...

    def failed_for(self, request_id: str) -> list[FailedMail]:
        """The request's rows that failed for good, oldest first."""
        ...

    def retry_failed_for(self, request_id: str, now: datetime) -> list[int]:
        """Queue the request's failed rows again, due ``now`` with fresh attempts; their ids."""
        ...

    def mark_skipped(self, outbox_id: int, reason: str) -> None: ...

    def was_sent_by_us(self, internet_message_id: str) -> bool: ...

    def add(
        self,
        kind: str,
        payload: dict[str, Any],
        *,
        request_id: str | None = None,
        mailbox: str | None = None,
        due: datetime | None = None,
    ) -> int: ...


@dataclass(frozen=True)
class SendSlot:
    """A reserved send (``slot_id``), or none free before ``free_at``."""

    slot_id: int | None
    free_at: datetime | None = None


class SendPacing(Protocol):
    """Sends per mailbox per window, counted across every process on the database."""

    def reserve(
        self, mailbox: str, *, limit: int, window: timedelta, hold: timedelta, holder: str
    ) -> SendSlot: ...

    def settle(self, slot_id: int, window: timedelta) -> None: ...


class AuditLog(Protocol):
    def record(
        self, actor: str, action: str, target: str = "", details: dict[str, Any] | None = None
    ) -> None: ...


class Scope(Protocol):
    """``with uow:`` opens a unit of work and closes it; the ports below share this."""

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class Transaction(Scope, Protocol):
    """One transaction: nothing is kept unless ``commit`` is called before the block ends."""

    def commit(self) -> None: ...


class UnitOfWork(Transaction, Protocol):
    """Every repository the services use, in one transaction."""

    @property
    def requests(self) -> RequestRepository: ...

    @property
    def outbox(self) -> OutboxRepository: ...

    @property
    def pacing(self) -> SendPacing: ...

    @property
    def ledger(self) -> InboundLedger: ...

    @property
    def folders(self) -> FolderRepository: ...

    @property
    def audit(self) -> AuditLog: ...

    @property
    def applications(self) -> ApplicationRepository: ...

    @property
    def token_caches(self) -> TokenCacheRepository: ...

    @property
    def email_settings(self) -> EmailSettingsRepository: ...

    @property
    def webhooks(self) -> WebhookRepository: ...

    def rollback(self) -> None: ...
