"""Raw MIME bytes to an ``InboundMessage``: the parts and headers reading a reply needs.

Parsing never raises on content: mail is hostile input. Oversized messages keep their
headers only and are flagged ``too_large``; nesting and part counts are bounded; unknown
charsets and invalid bytes decode with replacement characters.
"""

from __future__ import annotations

import email
import email.policy
import re
from dataclasses import dataclass, field
from datetime import datetime
from email.errors import HeaderParseError
from email.header import decode_header, make_header
from email.message import Message
from email.utils import getaddresses, parsedate_to_datetime

from replygate.mail.flowed import unflow
from replygate.mail.html_text import html_to_text

MAX_SIZE = 25 * 1024 * 1024
MAX_DEPTH = 12
MAX_PARTS = 200
# HTML beyond this many characters is not converted: a reply's own text sits far above.
MAX_HTML_CHARS = 2_000_000
# Headers of an oversized message are read from its first bytes only.
_HEADER_WINDOW = 256 * 1024
_MSG_ID = re.compile(r"<[^<>\s]+>")


@dataclass(frozen=True, slots=True)
class Mailbox:
    name: str
    address: str


@dataclass(frozen=True, slots=True)
class Attachment:
    filename: str
    content_type: str
    size: int


@dataclass(slots=True)
class InboundMessage:
    """What one message says, decoded. Header names in ``headers`` are lower case."""

    size: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    from_: list[Mailbox] = field(default_factory=list)
    sender: list[Mailbox] = field(default_factory=list)
    reply_to: list[Mailbox] = field(default_factory=list)
    to: list[Mailbox] = field(default_factory=list)
    cc: list[Mailbox] = field(default_factory=list)
    subject: str = ""
    message_id: str | None = None
    in_reply_to: str | None = None
    references: list[str] = field(default_factory=list)
    date: datetime | None = None
    content_type: str = "text/plain"
    text: str | None = None
    html: str | None = None
    html_as_text: str | None = None
    attachments: list[Attachment] = field(default_factory=list)
    is_report: bool = False
    has_delivery_status: bool = False
    has_disposition_notification: bool = False
    too_large: bool = False
    truncated: bool = False
    # Raw parts a bounce reader needs: delivery-status text and the returned headers.
    delivery_status: str | None = None
    returned_headers: str | None = None

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or None."""
        wanted = name.lower()
        return next((value for key, value in self.headers if key == wanted), None)

    def header_all(self, name: str) -> list[str]:
        wanted = name.lower()
        return [value for key, value in self.headers if key == wanted]


def parse_message(raw: bytes, *, max_size: int = MAX_SIZE) -> InboundMessage:
    """Parse ``raw``; never raises for any bytes."""
    if len(raw) > max_size:
        head = _parse_bytes(_header_bytes(raw))
        message = InboundMessage(size=len(raw), too_large=True)
        _read_headers(head, message)
        return message
    parsed = _parse_bytes(raw)
    message = InboundMessage(size=len(raw))
    _read_headers(parsed, message)
    _Walker(message).walk(parsed, depth=0)
    if message.html is not None:
        message.html_as_text = html_to_text(message.html[:MAX_HTML_CHARS])
    return message


def decode_header_value(value: str) -> str:
    """RFC 2047 words decoded; anything malformed is kept as it was."""
    try:
        return str(make_header(decode_header(value)))
    except (ValueError, LookupError, UnicodeError, AssertionError, HeaderParseError):
        return value


def decode_bytes(payload: bytes, charset: str | None) -> str:
    """Bytes in ``charset`` to text; undeclared text is tried as UTF-8 then Windows-1252.

    Whatever does not decode strictly is decoded with replacement characters.
    """
    for candidate in (charset, "utf-8") if charset else ("utf-8", "cp1252"):
        try:
            return payload.decode(_charset_alias(candidate), errors="strict")
        except (LookupError, UnicodeError):
            continue
    try:
        return payload.decode(_charset_alias(charset or "utf-8"), errors="replace")
    except LookupError:
        return payload.decode("cp1252", errors="replace")


def _charset_alias(charset: str) -> str:
    # Mail calls Windows' code page "iso-8859-1" more often than not; cp1252 is a superset.
    lowered = charset.strip().strip('"').lower()
    return {"iso-8859-1": "cp1252", "latin1": "cp1252", "us-ascii": "cp1252"}.get(lowered, lowered)


def _parse_bytes(raw: bytes) -> Message:
    try:
        return email.message_from_bytes(raw, policy=email.policy.compat32)
    except Exception:  # the parser is forgiving; this is the last resort
        return Message()


def _header_bytes(raw: bytes) -> bytes:
    window = raw[:_HEADER_WINDOW]
    end = min((i for i in (window.find(b"\r\n\r\n"), window.find(b"\n\n")) if i >= 0), default=-1)
    return window if end < 0 else window[: end + 2]


def _read_headers(parsed: Message, message: InboundMessage) -> None:
    # Raw values keep 8-bit bytes (as surrogates) that items() would turn into Header objects.
    for name, value in parsed.raw_items():
        message.headers.append((str(name).strip().lower(), _header_text(value)))
    message.from_ = _mailboxes(message.header_all("from"))
    message.sender = _mailboxes(message.header_all("sender"))
    message.reply_to = _mailboxes(message.header_all("reply-to"))
    message.to = _mailboxes(message.header_all("to"))
    message.cc = _mailboxes(message.header_all("cc"))
    message.subject = _unfold(message.header("subject") or "")
    message.message_id = _first_id(message.header("message-id"))
    message.in_reply_to = _first_id(message.header("in-reply-to"))
    message.references = _MSG_ID.findall(" ".join(message.header_all("references")))
    message.date = _date(message.header("date"))
    message.content_type = _content_type(parsed)


def _header_text(value: object) -> str:
    if isinstance(value, str):
        return decode_header_value(_unfold(_undo_surrogates(value)))
    try:
        return str(make_header(value))  # type: ignore[arg-type]
    except Exception:  # a header object of unknown shape
        return str(value)


def _undo_surrogates(value: str) -> str:
    """Raw 8-bit header bytes (the parser keeps them as surrogates) decoded as UTF-8."""
    if not any("\udc80" <= char <= "\udcff" for char in value):
        return value
    return decode_bytes(value.encode("ascii", errors="surrogateescape"), None)


def _unfold(value: str) -> str:
    return re.sub(r"\s*\r?\n\s*", " ", value).strip()


def _mailboxes(values: list[str]) -> list[Mailbox]:
    try:
        pairs = getaddresses(values)
    except Exception:  # malformed address lists yield nothing
        return []
    return [Mailbox(_unfold(name), address.strip()) for name, address in pairs if "@" in address]


def _first_id(value: str | None) -> str | None:
    if not value:
        return None
    match = _MSG_ID.search(value)
    return match.group(0) if match else value.strip() or None


def _date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _content_type(part: Message) -> str:
    try:
        return part.get_content_type()
    except Exception:  # a malformed Content-Type reads as plain text
        return "text/plain"


class _Walker:
    """Depth-first walk over the MIME tree, filling ``message`` within the limits."""

    def __init__(self, message: InboundMessage) -> None:
        self.message = message
        self.parts_seen = 0

    def walk(self, part: Message, *, depth: int) -> None:
        self.parts_seen += 1
        if depth > MAX_DEPTH or self.parts_seen > MAX_PARTS:
            self.message.truncated = True
            return
        content_type = _content_type(part)
        self._note_report_types(part, content_type)
        if self.message.delivery_status is not None and content_type.endswith("delivery-status"):
            return
        if content_type in ("text/rfc822-headers", "message/rfc822-headers"):
            self.message.returned_headers = _payload_text(part)
            return
        if content_type == "message/rfc822":
            self._walk_returned_message(part, depth)
            return
        if part.is_multipart():
            children = part.get_payload()
            if isinstance(children, list):
                for child in children:
                    if isinstance(child, Message):
                        self.walk(child, depth=depth + 1)
            return
        self._leaf(part, content_type)

    def _note_report_types(self, part: Message, content_type: str) -> None:
        if content_type == "multipart/report":
            self.message.is_report = True
        elif content_type in ("message/delivery-status", "message/global-delivery-status"):
            self.message.has_delivery_status = True
            self.message.delivery_status = _fields_text(part)
        elif content_type in (
            "message/disposition-notification",
            "message/global-disposition-notification",
        ):
            self.message.has_disposition_notification = True

    def _walk_returned_message(self, part: Message, depth: int) -> None:
        # A returned original (bounce) is not the sender's text: keep its headers only.
        inner = part.get_payload()
        first = inner[0] if isinstance(inner, list) and inner else None
        if isinstance(first, Message):
            self.message.returned_headers = "".join(f"{k}: {v}\n" for k, v in first.items())
        self._attach(part, "message/rfc822")

    def _leaf(self, part: Message, content_type: str) -> None:
        disposition = (part.get("Content-Disposition") or "").split(";")[0].strip().lower()
        is_body = disposition != "attachment" and part.get_filename() is None
        if is_body and content_type == "text/plain" and self.message.text is None:
            self.message.text = _plain_text(part)
        elif is_body and content_type == "text/html" and self.message.html is None:
            self.message.html = _payload_text(part)
        elif not is_body or not content_type.startswith("text/"):
            self._attach(part, content_type)

    def _attach(self, part: Message, content_type: str) -> None:
        payload = _payload_bytes(part)
        name = decode_header_value(part.get_filename() or "")
        self.message.attachments.append(Attachment(name, content_type, len(payload)))


def _plain_text(part: Message) -> str:
    text = _payload_text(part)
    if str(part.get_param("format") or "").lower() != "flowed":
        return text
    return unflow(text, delete_space=str(part.get_param("delsp") or "").lower() == "yes")


def _fields_text(part: Message) -> str:
    """A delivery-status part as text: the parser reads it as blocks of header fields."""
    payload = part.get_payload()
    if isinstance(payload, list):
        blocks = [m for m in payload if isinstance(m, Message)]
        return "\n\n".join(
            "\n".join(f"{k}: {_unfold(str(v))}" for k, v in block.items()) for block in blocks
        )
    return _payload_text(part)


def _payload_bytes(part: Message) -> bytes:
    try:
        payload = part.get_payload(decode=True)
    except Exception:  # broken base64 or quoted-printable
        payload = None
    if isinstance(payload, bytes):
        return payload
    raw = part.get_payload()
    return raw.encode("utf-8", errors="replace") if isinstance(raw, str) else b""


def _payload_text(part: Message) -> str:
    try:
        charset = part.get_content_charset()
    except Exception:  # a malformed charset parameter
        charset = None
    return decode_bytes(_payload_bytes(part), charset)
