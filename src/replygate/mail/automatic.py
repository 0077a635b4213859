"""Is this automatic mail? REPLY-GRAMMAR.md section 1: it never decides and is never answered.

Strong signals make a message automatic on their own; weak signals are recorded for the
admin but never decide (a person may reply through a list, or suppress others' replies).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from replygate.domain.decisions import strip_reply_prefixes
from replygate.mail.inbound import InboundMessage

AutomaticKind = Literal["auto_reply", "bounce", "receipt"]

_AUTO_REPLY_SUBJECT = re.compile(
    r"^(?:automatic reply|auto|out of office|autosvar|abwesenheitsnotiz|automatische antwort|"
    r"réponse automatique|respuesta automática|automatisch antwoord|"
    r"risposta automatica|resposta automática|autoreply|auto-reply)\s*:",
    re.IGNORECASE,
)
_BOUNCE_SUBJECT = re.compile(
    r"^\s*(?:undeliverable\s*:|undelivered mail returned to sender|delivery status notification|"
    r"delivery has failed|mail delivery failed|failure notice|returned mail|"
    r"unzustellbar\s*:|non remis\s*:|no se puede entregar\s*:|onbestelbaar\s*:|"
    r"delivery failure|mail delivery failure|undelivered mail|non recapitabile\s*:|"
    r"kan niet worden bezorgd|ej levererat|ikke leveret)",
    re.IGNORECASE,
)
_DAEMON = re.compile(r"^(?:mailer-daemon|postmaster)@", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class AutomaticVerdict:
    automatic: bool
    kind: AutomaticKind | None
    reasons: list[str] = field(default_factory=list)
    weak_signals: list[str] = field(default_factory=list)


def classify_automatic(msg: InboundMessage) -> AutomaticVerdict:
    """Strong signals in the order of the grammar; the first one names the kind."""
    found: list[tuple[AutomaticKind, str]] = [
        *_auto_submitted(msg),
        *_bounce(msg),
        *_receipt(msg),
        *_auto_reply(msg),
    ]
    weak = _weak_signals(msg)
    if not found:
        return AutomaticVerdict(False, None, [], weak)
    kind = _kind_of(found)
    return AutomaticVerdict(True, kind, [reason for _, reason in found], weak)


def _kind_of(found: list[tuple[AutomaticKind, str]]) -> AutomaticKind:
    # A bounce or receipt can also carry Auto-Submitted: the more specific kind wins.
    kinds = [kind for kind, _ in found]
    for specific in ("bounce", "receipt"):
        if specific in kinds:
            return specific
    return kinds[0]


def _value(msg: InboundMessage, name: str) -> str:
    return (msg.header(name) or "").strip().lower()


def _auto_submitted(msg: InboundMessage) -> list[tuple[AutomaticKind, str]]:
    value = _value(msg, "auto-submitted")
    if msg.header("auto-submitted") is None or value.split(";")[0].strip() == "no":
        return []
    return [("auto_reply", "auto_submitted")]


def _bounce(msg: InboundMessage) -> list[tuple[AutomaticKind, str]]:
    found: list[tuple[AutomaticKind, str]] = []
    if msg.is_report and not msg.has_disposition_notification:
        found.append(("bounce", "multipart_report"))
    if msg.has_delivery_status:
        found.append(("bounce", "delivery_status"))
    if _BOUNCE_SUBJECT.match(strip_reply_prefixes(msg.subject)):
        null_sender = _value(msg, "return-path") in ("<>", "")
        if null_sender and msg.header("return-path") is not None:
            found.append(("bounce", "null_sender_bounce_subject"))
        if any(_DAEMON.match(box.address) for box in msg.from_ + msg.sender):
            found.append(("bounce", "mailer_daemon_bounce_subject"))
    return found


def _receipt(msg: InboundMessage) -> list[tuple[AutomaticKind, str]]:
    if msg.has_disposition_notification:
        return [("receipt", "disposition_notification")]
    return []


def _auto_reply(msg: InboundMessage) -> list[tuple[AutomaticKind, str]]:
    found: list[tuple[AutomaticKind, str]] = []
    if _AUTO_REPLY_SUBJECT.match(strip_reply_prefixes(msg.subject)):
        found.append(("auto_reply", "auto_reply_subject"))
    if msg.header("x-autoreply") is not None:
        found.append(("auto_reply", "x_autoreply"))
    if msg.header("x-autorespond") is not None:
        found.append(("auto_reply", "x_autorespond"))
    precedence = _value(msg, "precedence")
    if precedence in ("auto_reply", "bulk", "junk"):
        found.append(("auto_reply", f"precedence_{precedence}"))
    return found


def _weak_signals(msg: InboundMessage) -> list[str]:
    weak: list[str] = []
    if msg.header("x-auto-response-suppress") is not None:
        weak.append("x_auto_response_suppress")
    if _value(msg, "precedence") == "list":
        weak.append("precedence_list")
    if msg.header("list-id") is not None:
        weak.append("list_id")
    if msg.header("auto-submitted") is not None and _value(msg, "auto-submitted") == "no":
        weak.append("auto_submitted_no")
    return weak
