"""The neutral outbound message and its RFC 5322 / MIME form.

``OutboundEmail`` is what composing produces and what every transport takes: Graph maps
its fields to a message resource (choosing which ``headers`` it may set), SMTP sends the
bytes of ``to_mime``. Nothing here touches the network.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email.charset import QP, Charset
from email.header import Header
from email.message import Message
from email.mime.nonmultipart import MIMENonMultipart
from email.policy import compat32
from email.utils import format_datetime, formataddr
from enum import StrEnum

# Exchange Online accepts at most 500 recipients (To + Cc + Bcc) per message.
MAX_RECIPIENTS = 500
# References grow with every reply; keep the root and the most recent ids (RFC 5322 3.6.4
# allows trimming, and Exchange refuses headers past 256 KB in total).
MAX_REFERENCES = 20

# Headers the MIME builder writes itself; a transport-neutral ``headers`` dict must not
# override them.
_STRUCTURAL = frozenset(
    {
        "from",
        "sender",
        "reply-to",
        "to",
        "cc",
        "bcc",
        "subject",
        "date",
        "message-id",
        "in-reply-to",
        "references",
        "mime-version",
        "content-type",
        "content-transfer-encoding",
    }
)
_HEADER_NAME = re.compile(r"^[!-9;-~]+$")  # RFC 5322 ftext: printable ASCII except ':'
_MSG_ID = re.compile(r"^<[^<>\s@]+@[^<>\s@]+>$")


class MailKind(StrEnum):
    """Why a mail is sent; answers to an approver's reply are ``is_answer``."""

    REQUEST = "request"
    REMINDER = "reminder"
    CANCELLED = "cancelled"
    OUTCOME = "outcome"
    CONFIRMATION = "confirmation"
    COULD_NOT_READ = "could_not_read"
    CLOSED_NOTICE = "closed_notice"
    ALREADY_DECIDED = "already_decided"

    @property
    def is_answer(self) -> bool:
        return self in _ANSWERS


_ANSWERS = frozenset(
    {
        MailKind.CONFIRMATION,
        MailKind.COULD_NOT_READ,
        MailKind.CLOSED_NOTICE,
        MailKind.ALREADY_DECIDED,
    }
)


@dataclass(frozen=True, slots=True)
class OutboundEmail:
    """One message to send, independent of the transport.

    ``headers`` holds the extra headers (``X-Auto-Response-Suppress``, ``Auto-Submitted``,
    ``X-Replygate-Token``...); a transport that cannot set some of them (Graph only takes
    ``x-`` headers, at most five) drops those, the rest of the message is unchanged.
    """

    kind: MailKind
    request_id: str
    from_address: str
    from_name: str
    to: tuple[str, ...]
    subject: str
    text: str
    html: str
    message_id: str
    reply_to: tuple[str, ...] = ()
    cc: tuple[str, ...] = ()
    sender: str | None = None
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def recipients(self) -> tuple[str, ...]:
        return self.to + self.cc


def domain_of(address: str) -> str:
    """The domain of an address, IDNA-encoded so it can stand in a Message-ID."""
    domain = address.rpartition("@")[2].strip().rstrip(".").lower()
    if not domain:
        raise ValueError(f"not an email address: {address!r}")
    try:
        return domain.encode("idna").decode("ascii")
    except UnicodeError as error:
        raise ValueError(f"cannot use the domain of {address!r} in a Message-ID") from error


def new_message_id(token: str, kind: MailKind, from_address: str) -> str:
    """A unique ``<token.kind.random@domain>``: replies name it in In-Reply-To/References."""
    local = re.sub(r"[^A-Za-z0-9-]", "", token) or "replygate"
    unique = f"{local}.{kind.value.replace('_', '-')}.{secrets.token_hex(10)}"
    return f"<{unique}@{domain_of(from_address)}>"


def random_message_id(from_address: str) -> str:
    """A unique ``<rg.random@domain>`` for mail that is not about one request."""
    return f"<rg.{secrets.token_hex(12)}@{domain_of(from_address)}>"


def thread_references(message_id: str | None, references: tuple[str, ...]) -> tuple[str, ...]:
    """References for a reply to a message with ``message_id`` and ``references``."""
    ids = [r for r in references if _MSG_ID.match(r)]
    if message_id is not None and _MSG_ID.match(message_id) and message_id not in ids:
        ids.append(message_id)
    if len(ids) > MAX_REFERENCES:
        ids = ids[:1] + ids[-(MAX_REFERENCES - 1) :]
    return tuple(ids)


# Display names are bounded so an encoded name never makes a header line too long.
MAX_DISPLAY_NAME = 64
_LONG_HEADER = 900


def _address(addr_spec: str, display_name: str = "") -> str:
    if any(c in addr_spec for c in '\r\n\t ,<>"') or addr_spec.count("@") != 1:
        raise ValueError(f"not a single address: {addr_spec!r}")
    name = _one_line(display_name)
    if len(name) > MAX_DISPLAY_NAME:
        name = name[: MAX_DISPLAY_NAME - 1].rstrip() + "…"
    local, _, _ = addr_spec.strip().rpartition("@")
    if not local.isascii():
        # An internationalised local part needs SMTPUTF8, which this ASCII form cannot carry.
        raise ValueError(f"a non-ASCII mailbox name cannot be sent: {addr_spec!r}")
    return formataddr((name, f"{local}@{domain_of(addr_spec)}"), charset="utf-8")


def _one_line(value: str) -> str:
    return " ".join(value.split())


def _text_header(value: str) -> str | Header:
    """An unstructured header value; RFC 2047 words when not ASCII or very long."""
    value = _one_line(value)
    if value.isascii() and len(value) < _LONG_HEADER:
        return value
    return Header(value, "utf-8")


def _part(body: str, subtype: str) -> MIMENonMultipart:
    charset = Charset("utf-8")
    charset.body_encoding = QP  # readable in source, and no line exceeds 998 octets
    part = MIMENonMultipart("text", subtype)
    part.set_payload(body, charset)
    del part["MIME-Version"]  # only the top level carries it
    return part


def to_mime(email: OutboundEmail, date: datetime) -> bytes:
    """The message as RFC 5322 bytes: multipart/alternative, text then HTML, UTF-8.

    Built with the ``compat32`` API on purpose: the newer header folder of Python 3.11
    drops the space between two RFC 2047 encoded words (a subject like "é é" comes back
    as "éé"), while ``email.header.Header`` encodes it faithfully.
    """
    if date.tzinfo is None:
        raise ValueError("the Date of a message needs a time zone")
    if not email.to:
        raise ValueError("a message needs at least one recipient")
    if len(email.recipients) > MAX_RECIPIENTS:
        raise ValueError(
            f"{len(email.recipients)} recipients; Exchange accepts {MAX_RECIPIENTS} per message"
        )
    headers: list[tuple[str, str | Header]] = [
        ("Date", format_datetime(date)),
        ("From", _address(email.from_address, email.from_name)),
    ]
    if email.sender is not None and email.sender.lower() != email.from_address.lower():
        headers.append(("Sender", _address(email.sender)))
    if email.reply_to:
        headers.append(("Reply-To", ", ".join(_address(a) for a in email.reply_to)))
    headers.append(("To", ", ".join(_address(a) for a in email.to)))
    if email.cc:
        headers.append(("Cc", ", ".join(_address(a) for a in email.cc)))
    headers += [("Subject", _text_header(email.subject)), ("Message-ID", _msg_id(email.message_id))]
    if email.in_reply_to is not None:
        headers.append(("In-Reply-To", _msg_id(email.in_reply_to)))
    if email.references:
        headers.append(("References", " ".join(_msg_id(r) for r in email.references)))
    for name, extra in email.headers.items():
        if not _HEADER_NAME.match(name) or name.lower() in _STRUCTURAL:
            raise ValueError(f"cannot set the header {name!r} as an extra header")
        headers.append((name, _text_header(extra)))
    msg: Message[str, str | Header] = Message()
    for name, value in headers:
        msg[name] = value
    msg["MIME-Version"] = "1.0"
    msg["Content-Type"] = "multipart/alternative"  # the generator adds the boundary
    msg.attach(_part(email.text, "plain"))
    msg.attach(_part(email.html, "html"))
    return msg.as_bytes(policy=compat32.clone(linesep="\r\n"))


def _msg_id(value: str) -> str:
    if not _MSG_ID.match(value.strip()):
        raise ValueError(f"not a Message-ID: {value!r}")
    return value.strip()
