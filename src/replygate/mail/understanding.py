"""One raw message to what replygate understands of it: automatic or not, which request
token it carries, which part was read, the new text, the decision and the comment.

Pure: no database, no network. Matching the token (or ``In-Reply-To``) to a request, and
everything that depends on the request, is screening's job.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from replygate.domain.decisions import ParsedDecision, parse_decision, strip_reply_prefixes
from replygate.domain.model import Verdict
from replygate.domain.tokens import ReplyToken, TokenOwner, find_tokens
from replygate.mail.automatic import AutomaticVerdict, classify_automatic
from replygate.mail.bounces import BounceReport, read_bounce
from replygate.mail.inbound import InboundMessage, parse_message
from replygate.mail.quotes import DEFAULT_MARKERS, ServiceMarkers, new_text

# The reference block's token line, quoted or not: "> Reference: RG-prod-7KQ2M9XW4D".
_REFERENCE_LINE = re.compile(r"^[ \t>]*reference[ \t]*:[ \t]*(\S+)", re.IGNORECASE | re.MULTILINE)
_TOKEN_TAG = re.compile(r"\[\s*RG-[^\]]*\]", re.IGNORECASE)
# The grammar reads at most this much of a part: new text sits at the top, or under a
# quote of the request; hostile bodies of many megabytes must stay cheap to read.
MAX_TEXT_CHARS = 300_000
# A text part that only points at the HTML part.
_STUB = re.compile(
    r"^\W*(?:this (?:message|email|e-mail) (?:requires|needs|is in|contains) html|"
    r"(?:your|this) (?:e-?mail )?(?:client|program|viewer) does not support html|"
    r"to view this (?:message|email)|view this (?:message|email) in (?:a|your) browser)",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class Understanding:
    message: InboundMessage
    decision: Verdict | None
    comment: str
    automatic: bool
    token: str | None
    reasons: list[str] = field(default_factory=list)
    new_text: str = ""
    automatic_detail: AutomaticVerdict | None = None
    bounce: BounceReport | None = None
    token_source: str | None = None


def understand(raw: bytes, *, instance: str | None = None) -> Understanding:
    """What ``raw`` says. Never raises for any bytes."""
    message = parse_message(raw)
    reasons = _size_reasons(message)
    verdict = classify_automatic(message)
    reasons += [f"automatic:{name}" for name in verdict.reasons]
    reasons += [f"weak:{name}" for name in verdict.weak_signals]
    bounce = read_bounce(message) if verdict.kind == "bounce" else None
    token, source = _find_token(message, bounce)
    reasons.append(f"token:{source or 'none'}")
    if token is not None and instance is not None and token.owner(instance) is TokenOwner.FOREIGN:
        reasons.append("token:foreign")
    token_text = None if token is None else str(token)
    if verdict.automatic or message.too_large:
        # Automatic mail never decides, and an oversized body is not read at all.
        return Understanding(
            message=message,
            decision=None,
            comment="",
            automatic=verdict.automatic,
            token=token_text,
            reasons=reasons,
            automatic_detail=verdict,
            bounce=bounce,
            token_source=source,
        )
    parsed, text, part_reasons = _read_body(message)
    reasons += [*part_reasons, f"decision:{parsed.reason}"]
    if parsed.from_subject:
        reasons.append("decision:subject")
    return Understanding(
        message=message,
        decision=parsed.verdict,
        comment=parsed.comment,
        automatic=False,
        token=token_text,
        reasons=reasons,
        new_text=text,
        automatic_detail=verdict,
        token_source=source,
    )


def _size_reasons(message: InboundMessage) -> list[str]:
    reasons = []
    if message.too_large:
        reasons.append("message:too_large")
    if message.truncated:
        reasons.append("message:truncated")
    return reasons


# --- the token -----------------------------------------------------------------------


def _find_token(
    message: InboundMessage, bounce: BounceReport | None
) -> tuple[ReplyToken | None, str | None]:
    """The subject's token, else the reference block's; never one from the new text."""
    in_subject = find_tokens(message.subject)
    if in_subject:
        return in_subject[0], "subject"
    for body in (message.text, message.html_as_text):
        for match in _REFERENCE_LINE.finditer(body or ""):
            found = find_tokens(match.group(1))
            if found:
                return found[0], "reference_block"
    if bounce is not None and bounce.token is not None:
        return ReplyToken.parse(bounce.token), "returned_message"
    return None, None


# --- the body ------------------------------------------------------------------------------


def _read_body(message: InboundMessage) -> tuple[ParsedDecision, str, list[str]]:
    markers = replace(DEFAULT_MARKERS, title=_title(message.subject))
    text_part = message.text if message.text is not None and not _is_stub(message.text) else None
    html_part = message.html_as_text
    if any(len(part or "") > MAX_TEXT_CHARS for part in (text_part, html_part)):
        text_part = text_part[:MAX_TEXT_CHARS] if text_part is not None else None
        html_part = html_part[:MAX_TEXT_CHARS] if html_part is not None else None
        parsed, text, reasons = _read_parts(message.subject, text_part, html_part, markers)
        return parsed, text, ["part:truncated", *reasons]
    return _read_parts(message.subject, text_part, html_part, markers)


def _read_parts(
    subject: str, text_part: str | None, html_part: str | None, markers: ServiceMarkers
) -> tuple[ParsedDecision, str, list[str]]:
    if text_part is None and html_part is None:
        parsed = parse_decision("", subject)
        return parsed, "", ["part:none"]
    if text_part is None or html_part is None:
        chosen = text_part if text_part is not None else html_part
        name = "part:text" if text_part is not None else "part:html"
        text = new_text(chosen or "", service_markers=markers)
        return parse_decision(text, subject), text, [name]
    from_text = new_text(text_part, service_markers=markers)
    from_html = new_text(html_part, service_markers=markers)
    parsed_text = parse_decision(from_text, subject)
    parsed_html = parse_decision(from_html, subject)
    if parsed_text.verdict != parsed_html.verdict:
        return ParsedDecision(None, "", "parts_disagree"), from_text, ["part:conflict"]
    return parsed_text, from_text, ["part:text"]


def _is_stub(text: str) -> bool:
    stripped = text.strip()
    return not stripped or bool(_STUB.match(stripped))


def _title(subject: str) -> str | None:
    """The request's title: what follows the token tag in the subject."""
    text = strip_reply_prefixes(subject)
    tag = _TOKEN_TAG.search(text)
    if tag is None:
        return None
    return text[tag.end() :].strip() or None
