"""Typed table models. Every change to them comes with an Alembic migration.

Encrypted columns hold ``secretbox`` text; ``ENCRYPTED_COLUMNS`` lists them so that key
rotation re-encrypts every one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from replygate.db.base import Base

ADDRESS = 320  # RFC 5321 maximum path length


class InstanceMeta(Base):
    """Key/value facts about this database (e.g. the secret key's check value)."""

    __tablename__ = "instance_meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class ApprovalRequestRow(Base):
    __tablename__ = "approval_requests"
    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    instance: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(300))
    details: Mapped[str] = mapped_column(Text, default="")
    requester: Mapped[str] = mapped_column(String(ADDRESS))
    policy_kind: Mapped[str] = mapped_column(String(16))
    policy_quorum: Mapped[int | None] = mapped_column(Integer)
    reject_vetoes: Mapped[bool] = mapped_column(Boolean, default=True)
    allow_self_approval: Mapped[bool] = mapped_column(Boolean, default=False)
    allow_delegates: Mapped[bool] = mapped_column(Boolean, default=False)
    state: Mapped[str] = mapped_column(String(16), index=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)
    remind_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    closed_reason: Mapped[str] = mapped_column(String(200), default="")
    metadata_json: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    callback_url: Mapped[str | None] = mapped_column(String(2000))
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    created_by: Mapped[str | None] = mapped_column(String(200))
    message_id: Mapped[str | None] = mapped_column(String(998), index=True)
    # Bumped by every save; a save based on an older version is refused (see repositories).
    version: Mapped[int] = mapped_column(Integer, default=1)


class ApproverRow(Base):
    __tablename__ = "approvers"
    __table_args__ = (UniqueConstraint("request_id", "address"),)
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(
        ForeignKey("approval_requests.id", ondelete="CASCADE"), index=True
    )
    address: Mapped[str] = mapped_column(String(ADDRESS))
    position: Mapped[int] = mapped_column(Integer)
    delivery_state: Mapped[str] = mapped_column(String(16), default="pending")
    delivery_error: Mapped[str] = mapped_column(Text, default="")


class DecisionRow(Base):
    __tablename__ = "decisions"
    __table_args__ = (UniqueConstraint("request_id", "approver"),)
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(
        ForeignKey("approval_requests.id", ondelete="CASCADE"), index=True
    )
    approver: Mapped[str] = mapped_column(String(ADDRESS))
    verdict: Mapped[str] = mapped_column(String(16))
    comment: Mapped[str] = mapped_column(Text, default="")
    channel: Mapped[str] = mapped_column(String(16))
    decided_at: Mapped[datetime]
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    inbound_id: Mapped[int | None] = mapped_column(ForeignKey("inbound_ledger.id"))


class OutboxRow(Base):
    """Mail and webhooks to send, written in the transaction that caused them."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "state", "next_attempt_at"),)
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))
    request_id: Mapped[str | None] = mapped_column(
        ForeignKey("approval_requests.id", ondelete="SET NULL"), index=True
    )
    mailbox: Mapped[str | None] = mapped_column(String(ADDRESS))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    claimed_until: Mapped[datetime | None]
    draft_id: Mapped[str | None] = mapped_column(String(500))
    internet_message_id: Mapped[str | None] = mapped_column(String(998), index=True)
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]


class SendPaceRow(Base):
    """One row per sending mailbox, locked while a send slot is reserved (see db/pacing)."""

    __tablename__ = "send_pace"
    mailbox: Mapped[str] = mapped_column(String(ADDRESS), primary_key=True)


class SendSlotRow(Base):
    """A send from a mailbox; it counts against the mailbox's pace until ``frees_at``."""

    __tablename__ = "send_slots"
    __table_args__ = (Index("ix_send_slots_pace", "mailbox", "frees_at"),)
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    mailbox: Mapped[str] = mapped_column(String(ADDRESS))
    taken_at: Mapped[datetime]
    frees_at: Mapped[datetime]
    holder: Mapped[str] = mapped_column(String(200), default="")  # worker and outbox row


class InboundLedgerRow(Base):
    """One row per mail read: what it was, what was understood, which rules hit, what was done."""

    __tablename__ = "inbound_ledger"
    __table_args__ = (UniqueConstraint("mailbox", "message_key"),)
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    mailbox: Mapped[str] = mapped_column(String(ADDRESS))
    folder: Mapped[str] = mapped_column(String(500))
    message_key: Mapped[str] = mapped_column(String(998))  # internetMessageId or sha256 of MIME
    transport_id: Mapped[str | None] = mapped_column(String(500))
    received_at: Mapped[datetime | None]
    read_at: Mapped[datetime]
    sender: Mapped[str] = mapped_column(String(ADDRESS), default="")
    subject: Mapped[str] = mapped_column(String(1000), default="")
    request_id: Mapped[str | None] = mapped_column(
        ForeignKey("approval_requests.id", ondelete="SET NULL"), index=True
    )
    outcome: Mapped[str] = mapped_column(String(32))
    rules: Mapped[list[str]] = mapped_column(JSON, default=list)
    verdict: Mapped[str | None] = mapped_column(String(16))
    comment: Mapped[str] = mapped_column(Text, default="")
    size: Mapped[int] = mapped_column(Integer, default=0)
    raw_mime: Mapped[bytes | None] = mapped_column(LargeBinary)
    disposal: Mapped[str] = mapped_column(String(16), default="none")
    disposed_at: Mapped[datetime | None]


class MailFolderRow(Base):
    """A folder replygate reads: its delta cursor, when it was configured, and its lease."""

    __tablename__ = "mail_folders"
    __table_args__ = (UniqueConstraint("mailbox", "path"),)
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    mailbox: Mapped[str] = mapped_column(String(ADDRESS))
    path: Mapped[str] = mapped_column(String(500))
    folder_id: Mapped[str | None] = mapped_column(String(500))
    configured_at: Mapped[datetime]
    cursor: Mapped[str | None] = mapped_column(Text)
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_until: Mapped[datetime | None]
    last_read_at: Mapped[datetime | None]
    last_error: Mapped[str] = mapped_column(Text, default="")


class OAuthApplicationRow(Base):
    __tablename__ = "oauth_applications"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    tenant: Mapped[str] = mapped_column(String(200))
    client_id: Mapped[str] = mapped_column(String(100))
    mode: Mapped[str] = mapped_column(String(16))  # delegated | app-only
    cloud: Mapped[str] = mapped_column(String(16))  # global | usgov | china | custom
    authority_host: Mapped[str | None] = mapped_column(String(500))  # custom cloud only
    graph_url: Mapped[str | None] = mapped_column(String(500))  # custom cloud only
    credential_kind: Mapped[str] = mapped_column(String(16))  # secret | certificate
    secret_encrypted: Mapped[str | None] = mapped_column(Text)
    secret_expires_at: Mapped[datetime | None]
    certificate_encrypted: Mapped[str | None] = mapped_column(Text)
    certificate_thumbprint: Mapped[str | None] = mapped_column(String(64))
    certificate_expires_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class TokenCacheRow(Base):
    """MSAL's serialised token cache for one application and its authorised account."""

    __tablename__ = "token_caches"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    application_id: Mapped[int] = mapped_column(
        ForeignKey("oauth_applications.id", ondelete="CASCADE"), unique=True
    )
    username: Mapped[str] = mapped_column(String(ADDRESS))
    object_id: Mapped[str] = mapped_column(String(64))
    tenant_id: Mapped[str] = mapped_column(String(64))
    cache_encrypted: Mapped[str] = mapped_column(Text)
    authorised_at: Mapped[datetime]
    last_refresh_at: Mapped[datetime | None]
    state: Mapped[str] = mapped_column(String(32), default="ok")
    last_error: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[datetime]


class EmailSettingsRow(Base):
    """Versioned Email Settings: the newest version is in force; older ones are history."""

    __tablename__ = "email_settings"
    version: Mapped[int] = mapped_column(primary_key=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    password_encrypted: Mapped[str | None] = mapped_column(Text)  # SMTP/IMAP basic password
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(200))


class UserRow(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(200), unique=True)
    email: Mapped[str | None] = mapped_column(String(ADDRESS))
    password_hash: Mapped[str | None] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))  # admin | requester | viewer
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]


class ApiTokenRow(Base):
    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    token_hash: Mapped[str] = mapped_column(String(128), unique=True)
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]


class AuditEventRow(Base):
    __tablename__ = "audit_events"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(index=True)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(100))
    target: Mapped[str] = mapped_column(String(500), default="")
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class OAuthFlowRow(Base):
    """A started Authorize: MSAL's flow (with the PKCE verifier), kept server-side by state.

    Kept in the database, not a cookie, so the callback works whatever the browser's
    SameSite rules are and whichever replica receives it.
    """

    __tablename__ = "oauth_flows"
    state: Mapped[str] = mapped_column(String(200), primary_key=True)
    application_id: Mapped[int] = mapped_column(
        ForeignKey("oauth_applications.id", ondelete="CASCADE")
    )
    flow_encrypted: Mapped[str] = mapped_column(Text)
    started_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(index=True)


class WebhookSubscriptionRow(Base):
    """A global webhook an admin subscribed: its URL, the events it wants, its signing secret."""

    __tablename__ = "webhook_subscriptions"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    url: Mapped[str] = mapped_column(String(2000))
    events: Mapped[list[str]] = mapped_column(JSON, default=list)
    secret_encrypted: Mapped[str] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(200))


class WebhookDeliveryRow(Base):
    """One event to POST to one URL: queued in the transaction of the change, then claimed
    and retried with backoff like the outbox (kept apart so the mail sender never sees it)."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_due", "state", "next_attempt_at"),)
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    subscription_id: Mapped[int | None] = mapped_column(
        ForeignKey("webhook_subscriptions.id", ondelete="CASCADE"), index=True
    )
    request_id: Mapped[str | None] = mapped_column(
        ForeignKey("approval_requests.id", ondelete="SET NULL"), index=True
    )
    url: Mapped[str] = mapped_column(String(2000))
    event: Mapped[str] = mapped_column(String(32))
    event_id: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    claimed_until: Mapped[datetime | None]
    created_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None]
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str] = mapped_column(Text, default="")


class WebhookAttemptRow(Base):
    """The delivery log: one row per POST tried."""

    __tablename__ = "webhook_attempts"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    delivery_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime]
    status_code: Mapped[int | None] = mapped_column(Integer)
    duration_ms: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str] = mapped_column(Text, default="")


# (table model, column attribute, purpose used as associated data)
ENCRYPTED_COLUMNS: tuple[tuple[type[Base], str, str], ...] = (
    (OAuthApplicationRow, "secret_encrypted", "client secret"),
    (OAuthApplicationRow, "certificate_encrypted", "certificate private key"),
    (TokenCacheRow, "cache_encrypted", "token cache"),
    (EmailSettingsRow, "password_encrypted", "mail password"),
    (OAuthFlowRow, "flow_encrypted", "authorization flow"),
    (WebhookSubscriptionRow, "secret_encrypted", "webhook secret"),
)
