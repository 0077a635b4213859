"""RFC 5322 messages to and from Graph's message properties.

Building follows what Exchange Online writes for a Graph send (sample MIME in
https://learn.microsoft.com/graph/outlook-get-mime-message): Message-ID on the
`prod.outlook.com` host, Thread-Topic, Thread-Index, `multipart/alternative` for HTML.
Parsing follows https://learn.microsoft.com/graph/api/resources/message: the HTML part
is the body when there is one, `bodyPreview` is 255 characters of text.
"""

from __future__ import annotations

import base64
import email
import email.policy
import hashlib
import html
import re
import secrets
import struct
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.header import decode_header, make_header
from email.headerregistry import Address
from email.message import EmailMessage, Message
from email.utils import format_datetime, getaddresses, parsedate_to_datetime
from typing import Any

EXCHANGE_HOST = "PH0PR11MB4823.namprd11.prod.outlook.com"
_FILETIME_EPOCH = 116444736000000000  # 1601-01-01 -> 1970-01-01 in 100 ns ticks


def new_message_id() -> str:
    return f"<PH0PR11MB{secrets.token_hex(8).upper()}@{EXCHANGE_HOST}>"


def new_thread_index(now: datetime) -> bytes:
    """22-byte conversation index header: 0x01, 5 bytes of FILETIME, a GUID (MS-OXOMSG)."""
    ticks = int(now.timestamp() * 10_000_000) + _FILETIME_EPOCH
    return b"\x01" + struct.pack(">Q", ticks)[:5] + secrets.token_bytes(16)


def child_thread_index(parent: bytes) -> bytes:
    """A reply appends one 5-byte block to its parent's index."""
    return parent + secrets.token_bytes(5)


def conversation_id(index: bytes) -> str:
    """Exchange derives conversationId from the GUID in the index (MS-OXOMSG 2.2.1.3)."""
    guid = index[6:22] if len(index) >= 22 else hashlib.sha256(index).digest()[:16]
    return "AAQkAGI2" + base64.urlsafe_b64encode(guid).decode("ascii")


def thread_topic(subject: str) -> str:
    return re.sub(r"^\s*((re|fw|fwd|aw|sv|wg)\s*:\s*)+", "", subject, flags=re.IGNORECASE)


def recipient(name: str, address: str) -> dict[str, Any]:
    return {"emailAddress": {"name": name or address, "address": address}}


def _addr(value: dict[str, Any]) -> tuple[str, str]:
    ea = value.get("emailAddress") or {}
    return str(ea.get("name") or ""), str(ea.get("address") or "")


def _format_addresses(values: list[dict[str, Any]]) -> str:
    return ", ".join(format_recipient(v) for v in values)


def format_recipient(value: dict[str, Any]) -> str:
    name, address = _addr(value)
    return str(Address(display_name=name if name != address else "", addr_spec=address))


@dataclass
class Outgoing:
    """Everything the MIME builder needs beyond the Graph message JSON."""

    message: dict[str, Any]
    from_: dict[str, Any]
    sender: dict[str, Any] | None  # only when sending on behalf of another mailbox
    message_id: str
    date: datetime
    thread_index: bytes
    in_reply_to: str | None = None
    references: list[str] = field(default_factory=list)


def html_to_text(content: str) -> str:
    text = re.sub(r"(?is)<(script|style|head).*?</\1>", "", content)
    text = re.sub(r"(?i)<br\s*/?>|</p>|</div>|</tr>|</h\d>", "\n", text)
    text = re.sub(r"<[^>]+>", "", text)
    return html.unescape(text)


def build_mime(out: Outgoing) -> bytes:
    msg = out.message
    em = EmailMessage(policy=email.policy.SMTP)
    em["From"] = format_recipient(out.from_)
    if out.sender is not None:
        em["Sender"] = format_recipient(out.sender)
    if msg.get("toRecipients"):
        em["To"] = _format_addresses(msg["toRecipients"])
    if msg.get("ccRecipients"):
        em["CC"] = _format_addresses(msg["ccRecipients"])
    if msg.get("bccRecipients"):
        em["Bcc"] = _format_addresses(msg["bccRecipients"])
    if msg.get("replyTo"):
        em["Reply-To"] = _format_addresses(msg["replyTo"])
    subject = str(msg.get("subject") or "")
    em["Subject"] = subject
    em["Thread-Topic"] = thread_topic(subject)
    em["Thread-Index"] = base64.b64encode(out.thread_index).decode("ascii")
    em["Date"] = format_datetime(out.date.astimezone(UTC))
    em["Message-ID"] = out.message_id
    if out.in_reply_to:
        em["In-Reply-To"] = out.in_reply_to
    if out.references:
        em["References"] = " ".join(out.references)
    for header in msg.get("internetMessageHeaders") or []:
        em[str(header["name"])] = str(header["value"])
    em["Content-Language"] = "en-US"
    em["X-MS-Has-Attach"] = "yes" if msg.get("attachments") else ""
    em["X-MS-TNEF-Correlator"] = ""
    body = msg.get("body") or {}
    content = str(body.get("content") or "")
    if str(body.get("contentType") or "text").lower() == "html":
        em.set_content(html_to_text(content), subtype="plain", charset="utf-8")
        em.add_alternative(content, subtype="html", charset="utf-8")
    else:
        em.set_content(content, subtype="plain", charset="utf-8")
    for att in msg.get("attachments") or []:
        data = base64.b64decode(str(att.get("contentBytes") or ""))
        maintype, _, subtype = str(att.get("contentType") or "application/octet-stream").partition(
            "/"
        )
        em.add_attachment(
            data, maintype=maintype, subtype=subtype or "octet-stream", filename=att.get("name")
        )
    return em.as_bytes()


# -- parsing --------------------------------------------------------------------------------


def _text_of(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    charset = part.get_content_charset() or "utf-8"
    try:
        return payload.decode(charset, errors="replace")
    except LookupError:  # an unknown charset name: Exchange shows the bytes as best it can
        return payload.decode("latin-1")


def _decode_words(value: str) -> str:
    try:
        return str(make_header(decode_header(value)))
    except (LookupError, ValueError, UnicodeDecodeError):  # broken encoded words stay as sent
        return value


def _addresses(msg: Message, header: str) -> list[dict[str, Any]]:
    values = [str(v) for v in msg.get_all(header, [])]
    return [recipient(_decode_words(n), a) for n, a in getaddresses(values) if a]


def _header(msg: Message, name: str) -> str:
    value = msg.get(name)
    return str(value).strip() if value is not None else ""


def _ids(value: str) -> list[str]:
    return re.findall(r"<[^<>\s]+>", value)


_QUOTE_MARKERS = re.compile(
    r"(?im)^(>|-{3,}\s*original message|_{10,}|from:\s.+|on .{4,200} wrote:\s*$)"
)
_HTML_QUOTE = re.compile(
    r'(?is)(<div id="?(divRplyFwdMsg|appendonsend|mail-editor-reference-message-container)'
    r"|<blockquote|<hr\b)"
)


def unique_part(content: str, content_type: str) -> str:
    """Approximates Exchange's `uniqueBody`: the body without the quoted conversation."""
    pattern = _HTML_QUOTE if content_type == "html" else _QUOTE_MARKERS
    match = pattern.search(content)
    return content[: match.start()].rstrip() if match else content


def preview(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()[:255]


def parse_mime(raw: bytes) -> dict[str, Any]:
    """Graph message properties of an RFC 5322 message (ids and folder set by the caller)."""
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    html_part: Message | None = None
    text_part: Message | None = None
    has_attachments = False
    for part in msg.walk():
        if part.is_multipart():
            continue
        disposition = (part.get("Content-Disposition") or "").lower()
        if disposition.startswith("attachment"):
            has_attachments = True
            continue
        ctype = part.get_content_type()
        if ctype == "text/html" and html_part is None:
            html_part = part
        elif ctype == "text/plain" and text_part is None:
            text_part = part
    if html_part is not None:
        content, ctype = _text_of(html_part), "html"
        text = _text_of(text_part) if text_part is not None else html_to_text(content)
    else:
        content = _text_of(text_part) if text_part is not None else ""
        ctype, text = "text", content
    frm = _addresses(msg, "From")
    sender = _addresses(msg, "Sender") or frm
    sent = _sent_date(_header(msg, "Date"))
    subject = _decode_words(_header(msg, "Subject"))
    index_b64 = _header(msg, "Thread-Index")
    headers = [
        {"name": k, "value": re.sub(r"\r?\n[ \t]+", " ", str(v)).strip()} for k, v in msg.items()
    ]
    return {
        "subject": subject,
        "from": frm[0] if frm else None,
        "sender": sender[0] if sender else None,
        "toRecipients": _addresses(msg, "To"),
        "ccRecipients": _addresses(msg, "Cc"),
        "bccRecipients": _addresses(msg, "Bcc"),
        "replyTo": _addresses(msg, "Reply-To"),
        "sentDateTime": sent,
        "internetMessageId": _header(msg, "Message-ID") or new_message_id(),
        "body": {"contentType": ctype, "content": content},
        "uniqueBody": {"contentType": ctype, "content": unique_part(content, ctype)},
        "bodyPreview": preview(unique_part(text, "text") or text),
        "hasAttachments": has_attachments,
        "internetMessageHeaders": headers,
        "isDraft": False,
        "isRead": False,
        "importance": "normal",
        "_threadIndex": index_b64,
        "_inReplyTo": _ids(_header(msg, "In-Reply-To")),
        "_references": _ids(_header(msg, "References")),
    }


def _sent_date(value: str) -> str | None:
    if not value:
        return None
    try:
        dt = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def prepend_headers(raw: bytes, headers: list[tuple[str, str]]) -> bytes:
    """Trace headers go on top, as each transport hop adds them (RFC 5321 4.4)."""
    block = "".join(f"{k}: {v}\r\n" for k, v in headers).encode("utf-8")
    return block + raw


def complete_headers(raw: bytes, now: datetime, from_header: str) -> bytes:
    """Exchange adds Message-ID, Date and From to a submitted MIME message lacking them."""
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0].lower()
    missing = []
    if not re.search(rb"(^|\n)message-id:", head):
        missing.append(("Message-ID", new_message_id()))
    if not re.search(rb"(^|\n)date:", head):
        missing.append(("Date", format_datetime(now.astimezone(UTC))))
    if not re.search(rb"(^|\n)from:", head):
        missing.append(("From", from_header))
    return prepend_headers(raw, missing)


def strip_bcc(raw: bytes) -> bytes:
    head, sep, body = raw.partition(b"\r\n\r\n")
    lines = re.split(rb"\r\n(?![ \t])", head)
    kept = [ln for ln in lines if not ln.lower().startswith(b"bcc:")]
    return b"\r\n".join(kept) + sep + body
