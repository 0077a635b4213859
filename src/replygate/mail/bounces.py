"""What a bounce says: which recipients failed, why, and which request mail it returns.

Read from the RFC 3464 ``message/delivery-status`` part and the returned headers when
present, else from the human-readable text of an Exchange non-delivery report, so a
request can show "delivery to X failed".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from replygate.domain.tokens import find_tokens
from replygate.mail.inbound import InboundMessage

_ADDRESS = r"[^\s<>;,\"']+@[^\s<>;,\"']+\.[A-Za-z]{2,}"
_EXCHANGE_RECIPIENT = re.compile(rf"(?:message to|delivery to)\s+<?({_ADDRESS})>?", re.I)
_STATUS_IN_TEXT = re.compile(r"\b([245]\d\d)[ -]([245]\.\d{1,3}\.\d{1,3})\b")
_DIAGNOSTIC_IN_TEXT = re.compile(
    r"^\s*(?:Error|Diagnostic[- ]Code|Remote server returned)\s*:?\s*(.+)$", re.I | re.M
)
_MSG_ID = re.compile(r"<[^<>\s]+>")


@dataclass(frozen=True, slots=True)
class FailedRecipient:
    address: str
    status: str | None = None
    diagnostic: str | None = None
    action: str | None = None


@dataclass(frozen=True, slots=True)
class BounceReport:
    recipients: list[FailedRecipient] = field(default_factory=list)
    original_message_id: str | None = None
    token: str | None = None


def read_bounce(msg: InboundMessage) -> BounceReport:
    """The failed recipients and the original message of a bounce; never raises."""
    recipients = _from_delivery_status(msg.delivery_status or "")
    if not recipients:
        recipients = _from_report_text("\n".join(filter(None, (msg.text, msg.html_as_text))))
    returned = _fields(msg.returned_headers or "")
    original_id = _first_id(returned.get("message-id")) or msg.in_reply_to
    tokens = find_tokens(returned.get("subject", "")) or find_tokens(msg.subject)
    return BounceReport(recipients, original_id, str(tokens[0]) if tokens else None)


def _from_delivery_status(text: str) -> list[FailedRecipient]:
    failed: list[FailedRecipient] = []
    for block in re.split(r"\n\s*\n", text):
        fields = _fields(block)
        recipient = fields.get("final-recipient") or fields.get("original-recipient")
        if not recipient:
            continue
        action = fields.get("action", "").lower() or None
        if action in ("delivered", "relayed", "expanded"):
            continue
        failed.append(
            FailedRecipient(
                address=recipient.split(";", 1)[-1].strip().strip("<>"),
                status=fields.get("status"),
                diagnostic=_diagnostic(fields.get("diagnostic-code")),
                action=action,
            )
        )
    return failed


def _from_report_text(text: str) -> list[FailedRecipient]:
    """Exchange's readable NDR: "Your message to X couldn't be delivered." and its error."""
    addresses = list(dict.fromkeys(m.group(1) for m in _EXCHANGE_RECIPIENT.finditer(text)))
    if not addresses:
        return []
    status = _STATUS_IN_TEXT.search(text)
    diagnostic = _DIAGNOSTIC_IN_TEXT.search(text)
    return [
        FailedRecipient(
            address=address,
            status=status.group(2) if status else None,
            diagnostic=diagnostic.group(1).strip() if diagnostic else None,
            action="failed",
        )
        for address in addresses
    ]


def _fields(block: str) -> dict[str, str]:
    """``Name: value`` lines (continuations unfolded) to a dict of lower-case names."""
    fields: dict[str, str] = {}
    last: str | None = None
    for line in block.splitlines():
        if line[:1] in (" ", "\t") and last is not None:
            fields[last] = f"{fields[last]} {line.strip()}"
            continue
        name, colon, value = line.partition(":")
        if colon and name.strip() and " " not in name.strip():
            last = name.strip().lower()
            fields.setdefault(last, value.strip())
    return fields


def _diagnostic(value: str | None) -> str | None:
    if not value:
        return None
    kind, semicolon, text = value.partition(";")
    return (text if semicolon and " " not in kind.strip() else value).strip()


def _first_id(value: str | None) -> str | None:
    match = _MSG_ID.search(value or "")
    return match.group(0) if match else None
