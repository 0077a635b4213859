"""Mail flow: sending builds real MIME, delivers to tenant mailboxes, logs outside mail.

What Exchange Online does on a Graph send (https://learn.microsoft.com/graph/api/user-sendmail,
https://learn.microsoft.com/graph/api/message-send): the sender's copy goes to Sent Items
unless `saveToSentItems` is false; each recipient gets its own copy with transport headers
(`Received`, `X-MS-Exchange-Organization-*`), Bcc removed, after the recipient's inbox
rules ran (https://learn.microsoft.com/graph/api/resources/messagerule).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from m365emu import rules
from m365emu.mailstore import Mailbox, MailStore, StoredMessage, iso
from m365emu.mime import (
    Outgoing,
    build_mime,
    child_thread_index,
    complete_headers,
    conversation_id,
    format_recipient,
    html_to_text,
    new_message_id,
    new_thread_index,
    parse_mime,
    prepend_headers,
    recipient,
    strip_bcc,
)
from m365emu.transport import internal_trace

# Properties a client may set on a message it creates (message resource, writable ones).
WRITABLE = (
    "subject",
    "body",
    "toRecipients",
    "ccRecipients",
    "bccRecipients",
    "replyTo",
    "from",
    "importance",
    "isRead",
    "categories",
    "internetMessageHeaders",
    "attachments",
    "isDeliveryReceiptRequested",
    "isReadReceiptRequested",
    "flag",
)


def _addresses(fields: dict[str, Any], *keys: str) -> Iterable[str]:
    for key in keys:
        for r in fields.get(key) or []:
            addr = str((r.get("emailAddress") or {}).get("address") or "")
            if addr:
                yield addr


class MailService:
    """Mail operations shared by the Graph routes, the control API and the web view."""

    def __init__(self, store: MailStore) -> None:
        self.store = store

    @property
    def now(self) -> datetime:
        return self.store.now()

    # -- inbound ---------------------------------------------------------------------------

    def deliver_raw(
        self, mb: Mailbox, raw: bytes, folder: str = "inbox", apply_rules: bool = True
    ) -> StoredMessage:
        """Store an RFC 5322 message as delivered mail; `$value` returns `raw` unchanged."""
        fields = parse_mime(raw)
        target = mb.folder(folder) or self.store.ensure_path(mb, folder)
        actions: dict[str, Any] = {}
        if apply_rules and target.well_known == "inbox":
            actions = rules.evaluate(mb.rules, fields)
            dest = mb.folder(str(actions.get("moveToFolder") or ""))
            if dest is not None:
                target = dest
            if actions.get("delete"):
                target = mb.folder("deleteditems") or target
            if actions.get("markAsRead"):
                fields["isRead"] = True
        self._thread(mb, fields)
        fields["receivedDateTime"] = iso(self.now)
        fields["sentDateTime"] = fields.get("sentDateTime") or fields["receivedDateTime"]
        fields["createdDateTime"] = fields["receivedDateTime"]
        return self.store.add_message(mb, target.id, fields, raw)

    def _thread(self, mb: Mailbox, fields: dict[str, Any]) -> None:
        """conversationId from Thread-Index, else from a message it references, else new."""
        index = b""
        try:
            index = base64.b64decode(str(fields.get("_threadIndex") or ""), validate=True)
        except (binascii.Error, ValueError):
            index = b""
        if len(index) >= 22:
            fields["conversationId"] = conversation_id(index)
            fields["conversationIndex"] = base64.b64encode(index).decode("ascii")
            self._remember(mb, fields)
            return
        refs = [*(fields.get("_inReplyTo") or []), *(fields.get("_references") or [])]
        known = next((mb.conversations[r] for r in refs if r in mb.conversations), None)
        if known is not None:
            fields["conversationId"], fields["conversationIndex"] = known
        else:
            seed = hashlib.sha256(str(fields.get("internetMessageId")).encode()).digest()
            index = b"\x01" + seed[:21]
            fields["conversationId"] = conversation_id(index)
            fields["conversationIndex"] = base64.b64encode(index).decode("ascii")
        self._remember(mb, fields)

    @staticmethod
    def _remember(mb: Mailbox, fields: dict[str, Any]) -> None:
        """Index Message-ID -> conversation so that replies join it without a scan."""
        mid = str(fields.get("internetMessageId") or "")
        if mid and fields.get("conversationId"):
            mb.conversations[mid] = (fields["conversationId"], fields.get("conversationIndex"))

    # -- drafts ----------------------------------------------------------------------------

    def create_draft(self, mb: Mailbox, folder_id: str, message: dict[str, Any]) -> StoredMessage:
        """A draft as Graph creates it: internetMessageId and conversation assigned at once."""
        fields = {k: message[k] for k in WRITABLE if k in message}
        now = iso(self.now)
        index = new_thread_index(self.now)
        owner = recipient(mb.display_name, mb.address)
        fields.setdefault("from", owner)
        fields.setdefault("sender", fields["from"])
        for key in ("toRecipients", "ccRecipients", "bccRecipients", "replyTo"):
            fields.setdefault(key, [])
        fields.setdefault("body", {"contentType": "text", "content": ""})
        fields["body"] = {
            "contentType": str(fields["body"].get("contentType") or "text").lower(),
            "content": str(fields["body"].get("content") or ""),
        }
        fields.update(
            isDraft=True,
            isRead=True,
            internetMessageId=new_message_id(),
            conversationId=conversation_id(index),
            conversationIndex=base64.b64encode(index).decode("ascii"),
            receivedDateTime=now,
            sentDateTime=now,
            createdDateTime=now,
            hasAttachments=bool(fields.get("attachments")),
            importance=fields.get("importance", "normal"),
        )
        fields["bodyPreview"] = _preview(fields["body"])
        fields["uniqueBody"] = dict(fields["body"])
        self._remember(mb, fields)
        return self.store.add_message(mb, folder_id, fields, b"")

    def draft_mime(self, mb: Mailbox, msg: StoredMessage) -> bytes:
        """Exchange renders a draft's MIME on request; so do we."""
        return build_mime(self._outgoing(mb, msg.fields, None, msg.fields["internetMessageId"]))

    def send_draft(
        self, mb: Mailbox, msg: StoredMessage, sender: dict[str, Any] | None
    ) -> StoredMessage:
        """Sends and moves the draft to Sent Items (same immutable id, new REST id).

        A draft created from MIME goes out as submitted (every part and header kept), with
        the Sender header added when sending on behalf; a JSON draft is rendered."""
        if msg.raw:
            raw = msg.raw
            if sender is not None:
                raw = prepend_headers(raw, [("Sender", format_recipient(sender))])
            date = self.now
        else:
            out = self._outgoing(mb, msg.fields, sender, str(msg.fields["internetMessageId"]))
            raw, date = build_mime(out), out.date
        self._dispatch(raw, msg.fields)
        sent = parse_mime(raw)
        sent.update(
            isRead=True,
            conversationId=msg.fields.get("conversationId"),
            conversationIndex=msg.fields.get("conversationIndex"),
            sentDateTime=iso(date),
            receivedDateTime=iso(date),
            createdDateTime=msg.fields.get("createdDateTime"),
        )
        self.store.update_message(mb, msg, sent)
        msg.raw = raw
        sent_folder = mb.folder("sentitems")
        if sent_folder is not None:
            self.store.move_message(mb, msg, sent_folder.id)
        return msg

    # -- sending ---------------------------------------------------------------------------

    def send_new(
        self,
        mb: Mailbox,
        message: dict[str, Any],
        sender: dict[str, Any] | None,
        save_to_sent: bool = True,
        in_reply_to: StoredMessage | None = None,
    ) -> bytes:
        """sendMail: build, deliver, and keep a copy in `mb`'s Sent Items if asked."""
        fields = {k: message[k] for k in WRITABLE if k in message}
        parent = in_reply_to.fields if in_reply_to is not None else None
        out = self._outgoing(mb, fields, sender, new_message_id(), parent)
        raw = build_mime(out)
        self._dispatch(raw, fields)
        if save_to_sent:
            sent_folder = mb.folder("sentitems")
            if sent_folder is not None:
                copy = parse_mime(raw)
                copy["isRead"] = True
                self._thread(mb, copy)
                copy["receivedDateTime"] = copy["createdDateTime"] = iso(out.date)
                self.store.add_message(mb, sent_folder.id, copy, raw)
        return raw

    def send_raw(self, mb: Mailbox, raw: bytes, save_to_sent: bool = True) -> bytes:
        """sendMail with a MIME body: the message goes out as submitted (plus missing ids)."""
        raw = complete_headers(raw, self.now, f"{mb.display_name} <{mb.address}>")
        fields = parse_mime(raw)
        self._dispatch(raw, fields)
        sent_folder = mb.folder("sentitems")
        if save_to_sent and sent_folder is not None:
            fields["isRead"] = True
            self._thread(mb, fields)
            fields["receivedDateTime"] = fields["createdDateTime"] = iso(self.now)
            self.store.add_message(mb, sent_folder.id, fields, strip_bcc(raw))
        return raw

    def draft_from_mime(self, mb: Mailbox, folder_id: str, raw: bytes) -> StoredMessage:
        raw = complete_headers(raw, self.now, f"{mb.display_name} <{mb.address}>")
        fields = parse_mime(raw)
        self._thread(mb, fields)
        fields.update(isDraft=True, isRead=True)
        fields["receivedDateTime"] = fields["createdDateTime"] = iso(self.now)
        return self.store.add_message(mb, folder_id, fields, raw)

    def _outgoing(
        self,
        mb: Mailbox,
        fields: dict[str, Any],
        sender: dict[str, Any] | None,
        message_id: str,
        parent: dict[str, Any] | None = None,
    ) -> Outgoing:
        now = self.now
        index = base64.b64decode(str(fields.get("conversationIndex") or "")) or b""
        references: list[str] = []
        in_reply_to = None
        if parent is not None:
            parent_index = base64.b64decode(str(parent.get("conversationIndex") or ""))
            index = child_thread_index(parent_index) if parent_index else new_thread_index(now)
            in_reply_to = str(parent.get("internetMessageId") or "") or None
            references = [*parent.get("_references", []), *([in_reply_to] if in_reply_to else [])]
        return Outgoing(
            message=fields,
            from_=fields.get("from") or recipient(mb.display_name, mb.address),
            sender=sender,
            message_id=message_id,
            date=now,
            thread_index=index if len(index) >= 22 else new_thread_index(now),
            in_reply_to=in_reply_to,
            references=references,
        )

    def _dispatch(self, raw: bytes, fields: dict[str, Any]) -> None:
        """Delivers to every tenant recipient; outside recipients go to the outbound log."""
        now = self.now
        trace = internal_trace(now)
        delivered = prepend_headers(strip_bcc(raw), trace)
        external: list[str] = []
        seen: set[str] = set()
        for addr in _addresses(fields, "toRecipients", "ccRecipients", "bccRecipients"):
            if addr.lower() in seen:
                continue
            seen.add(addr.lower())
            target = self.store.mailbox_for(addr)
            if target is None:
                external.append(addr)
            else:
                self.deliver_raw(target, delivered, "inbox")
        if external:
            self.store.log_outbound(
                {"at": iso(now), "recipients": external, "raw": strip_bcc(raw).decode("utf-8")}
            )

    # -- replies (web view) -----------------------------------------------------------------

    def reply(self, mb: Mailbox, original: StoredMessage, text: str) -> bytes:
        """Reply as Outlook would: to Reply-To (else From), RE: subject, quoted original."""
        f = original.fields
        to = f.get("replyTo") or ([f["from"]] if f.get("from") else [])
        subject = str(f.get("subject") or "")
        if not subject.lower().startswith("re:"):
            subject = "RE: " + subject
        orig_from = (f.get("from") or {}).get("emailAddress") or {}
        orig_to = "; ".join(
            str((r.get("emailAddress") or {}).get("address")) for r in f.get("toRecipients") or []
        )
        body = str((f.get("body") or {}).get("content") or "")
        if (f.get("body") or {}).get("contentType") == "html":
            body = html_to_text(body)
        quoted = (
            f"{text}\r\n\r\n________________________________\r\n"
            f"From: {orig_from.get('name', '')} <{orig_from.get('address', '')}>\r\n"
            f"Sent: {_outlook_date(str(f.get('sentDateTime') or ''))}\r\nTo: {orig_to}\r\n"
            f"Subject: {f.get('subject', '')}\r\n\r\n{body}"
        )
        message = {
            "subject": subject,
            "body": {"contentType": "text", "content": quoted},
            "toRecipients": to,
        }
        return self.send_new(mb, message, None, True, original)


def _outlook_date(value: str) -> str:
    """Outlook's header block date: `Monday, January 5, 2026 9:00 AM`."""
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        return value
    hour = dt.hour % 12 or 12
    return f"{dt:%A, %B} {dt.day}, {dt.year} {hour}:{dt:%M %p}"


def body_changes(body: Any) -> dict[str, Any]:
    """`body`, `bodyPreview` and `uniqueBody` for a draft whose body a client sets."""
    raw = body if isinstance(body, dict) else {}
    norm = {
        "contentType": str(raw.get("contentType") or "text").lower(),
        "content": str(raw.get("content") or ""),
    }
    return {"body": norm, "bodyPreview": _preview(norm), "uniqueBody": dict(norm)}


def _preview(body: dict[str, Any]) -> str:
    content = str(body.get("content") or "")
    text = html_to_text(content) if body.get("contentType") == "html" else content
    return " ".join(text.split())[:255]
