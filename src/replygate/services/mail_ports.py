"""Ports for sending mail and reading replies; Graph, SMTP and IMAP adapters implement them.

The values here are transport-neutral: services build an `OutboundMail`, persist the
`SendProgress` an adapter returns before asking it to send, and read `RemoteMessage`s page
by page with an opaque cursor they store after each page is committed.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol, runtime_checkable

from replygate.mail.mime import MailKind, OutboundEmail, to_mime


@dataclass(frozen=True)
class OutboundMail:
    """One message to send. Addresses are bare (`a@b.c`); names are optional."""

    from_address: str
    to: tuple[str, ...]
    subject: str
    text: str
    html: str | None = None
    cc: tuple[str, ...] = ()
    reply_to: tuple[str, ...] = ()
    from_name: str | None = None
    # Extra internet headers; every transport sends them in the MIME form.
    headers: tuple[tuple[str, str], ...] = ()
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    # The composer's Message-ID (it names the request's token, so a reply's In-Reply-To
    # leads back to it); transports that assign their own report theirs in SendProgress.
    message_id: str | None = None

    def to_mime(self, message_id: str, date: datetime) -> bytes:
        """The RFC 5322 form both MIME transports send (SMTP, and Graph's MIME drafts).

        Raises ValueError for an address or header the MIME form cannot carry."""
        return to_mime(
            OutboundEmail(
                kind=MailKind.REQUEST,  # not used by the MIME form
                request_id="",
                from_address=self.from_address,
                from_name=self.from_name or "",
                to=self.to,
                cc=self.cc,
                reply_to=self.reply_to,
                subject=self.subject,
                text=self.text,
                html=self.html or f"<pre>{html.escape(self.text)}</pre>",
                message_id=message_id,
                in_reply_to=self.in_reply_to,
                references=self.references,
                headers=dict(self.headers),
            ),
            date,
        )


@dataclass(frozen=True)
class SendProgress:
    """What the outbox stores after step 1 (draft created), before step 2 (send)."""

    mailbox: str
    draft_id: str
    internet_message_id: str


class SendOutcome(StrEnum):
    SENT = "sent"  # sent by this call
    ALREADY_SENT = "already_sent"  # found in Sent Items: an earlier attempt got through
    LOST = "lost"  # neither a draft nor a sent message exists: the caller decides


@dataclass(frozen=True)
class SendResult:
    outcome: SendOutcome
    internet_message_id: str
    message_id: str | None = None


class MailSender(Protocol):
    """Exactly-once sending in two steps; persist `SendProgress` between them."""

    def create_draft(self, mail: OutboundMail) -> SendProgress: ...

    def send_draft(self, progress: SendProgress) -> SendResult: ...

    def resume(self, progress: SendProgress) -> SendResult: ...

    def send(self, mail: OutboundMail, *, resume: SendProgress | None = None) -> SendResult:
        """Both steps at once (no persistence between them), or `resume` a stored one."""
        ...


@runtime_checkable
class DraftFinder(Protocol):
    """A sender whose drafts live in the mailbox (Graph) finds one by the Message-ID it was
    planned with, so a crash between creating a draft and storing its id leaves no orphan."""

    def find_planned(
        self, mailbox: str, internet_message_id: str
    ) -> SendProgress | SendResult | None:
        """The draft to send (progress), its sent copy (ALREADY_SENT), or None: not made yet."""
        ...


class SendPace(Protocol):
    """How many messages a mailbox may send per window (the transports' ``Pacing``)."""

    @property
    def messages(self) -> int: ...

    @property
    def per_seconds(self) -> float: ...


@dataclass(frozen=True)
class Address:
    address: str
    name: str = ""


@dataclass(frozen=True)
class RemoteMessage:
    """A message as listed by a reader; enough to screen and parse without a second request
    when `headers` is not None. When it is None, fetch the raw MIME to see the headers."""

    id: str
    internet_message_id: str | None
    subject: str
    from_: tuple[Address, ...]
    sender: Address | None
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    reply_to: tuple[Address, ...]
    received_at: datetime | None
    is_draft: bool
    headers: tuple[tuple[str, str], ...] | None
    body_html: str | None = None
    body_text: str | None = None


@dataclass(frozen=True)
class ChangesPage:
    messages: list[RemoteMessage]
    removed_ids: list[str] = field(default_factory=list)
    # Store after the page's messages are committed; `more` says whether to call again now.
    next_cursor: str = ""
    more: bool = False


class DisposalKind(StrEnum):
    MOVE = "move"
    DELETE = "delete"  # to Deleted Items, visible to the user
    PURGE = "purge"  # permanent delete


@dataclass(frozen=True)
class Disposal:
    message_id: str
    kind: DisposalKind
    folder_id: str | None = None  # for MOVE


@dataclass(frozen=True)
class DisposalResult:
    message_id: str
    done: bool
    new_id: str | None = None
    error_code: str | None = None
    message: str = ""


class ReplyMailbox(Protocol):
    """One mailbox's reply folder, as the reader loop sees it (bound to the mailbox)."""

    mailbox: str

    def resolve_folder(self, path: str) -> str:
        """The id of a folder path such as `Inbox/Approvals` (case-insensitive)."""
        ...

    def changes(
        self, folder_id: str, cursor: str | None, *, since: datetime | None = None
    ) -> ChangesPage:
        """One page of changes; `since` (first round) skips mail received before it."""
        ...

    def fetch_mime(self, message_id: str) -> bytes: ...

    def dispose(self, items: Sequence[Disposal]) -> list[DisposalResult]: ...
