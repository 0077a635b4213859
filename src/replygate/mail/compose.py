"""Compose the mails replygate sends: requests, notices, and answers to approvers' replies.

Each ``compose_*`` function returns an ``OutboundEmail`` with a plain-text part that reads
well on its own and an HTML part rendered from autoescaped Jinja2 templates. The wording
of the instructions and the reference block is a contract with the reply parser, which
strips exactly this text from replies: change it only together with the parser.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from functools import cache
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markdown_it import MarkdownIt
from markupsafe import Markup, escape

from replygate.domain.model import (
    ApprovalRequest,
    Decision,
    Policy,
    PolicyKind,
    RequestState,
    Verdict,
)
from replygate.domain.tokens import ReplyToken
from replygate.mail.mime import (
    MAX_RECIPIENTS,
    MailKind,
    OutboundEmail,
    new_message_id,
    thread_references,
)

__all__ = [
    "INSTRUCTIONS",
    "REFERENCE_LINE",
    "IncomingReply",
    "MailContext",
    "compose_already_decided",
    "compose_cancelled",
    "compose_closed_notice",
    "compose_confirmation",
    "compose_could_not_read",
    "compose_outcome",
    "compose_reminder",
    "compose_request",
    "mailto_link",
    "reference_block",
    "subject_for",
]

REFERENCE_LINE = "--- Please keep this line and everything below it in your reply ---"
INSTRUCTIONS = "Reply with APPROVE or REJECT on the first line; anything after it is your comment."
MAX_SUBJECT = 200
MAX_TITLE = 1_000  # characters of a title shown in a body
MAX_VALUE = 2_000  # a metadata value, a reason, a quoted first line
MAX_COMMENT = 4_000
MAX_DETAILS = 20_000
MAX_METADATA = 50  # rows of metadata shown
MAX_LISTED_APPROVERS = 20  # the rest are counted ("and 12 more"); all are in To anyway

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# Bidirectional embeddings, overrides and isolates can reorder what a reader sees around
# them (the token tag included); right-to-left letters themselves are kept.
_BIDI_CONTROLS = dict.fromkeys(map(ord, "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"))
_LINE_BREAKS = re.compile(r"\r\n|[\r\v\f\x1c-\x1e\x85\u2028\u2029]")
_URL = re.compile(r"^https?://[^\s<>\"]+$", re.IGNORECASE)
# Lines of user text that could pass for our reference block in a quoted reply.
_LOOKALIKE_SEPARATOR = re.compile(r"(?im)^([\s>]*)-+\s*please keep this line\b.*$")
_LOOKALIKE_REFERENCE = re.compile(r"(?im)^([\s>]*)reference\s*:")


def one_line(value: str) -> str:
    """``value`` as a single line: control characters become spaces, runs of space one."""
    cleaned = "".join(
        " " if unicodedata.category(c) in ("Cc", "Zl", "Zp") else c
        for c in value.translate(_BIDI_CONTROLS)
    )
    return " ".join(cleaned.split())


def clip(value: str, limit: int) -> str:
    return value if len(value) <= limit else value[: limit - 1].rstrip() + "…"


def defuse(text: str) -> str:
    """Multi-line user text, minus anything that would pass for our reference block."""
    text = _LINE_BREAKS.sub("\n", text.translate(_BIDI_CONTROLS))
    text = "".join(" " if unicodedata.category(c) == "Cc" and c not in "\n\t" else c for c in text)
    text = _LOOKALIKE_SEPARATOR.sub(r"\1[reference line removed]", text)
    return _LOOKALIKE_REFERENCE.sub(r"\1Reference -", text)


def shown(value: str, limit: int = MAX_VALUE) -> str:
    """A single-line value as a mail body shows it: one line, defused, bounded."""
    return clip(defuse(one_line(value)), limit)


def format_time(moment: datetime, tz: tzinfo) -> str:
    """``Wed, 5 Mar 2025 10:12 UTC``, in English whatever the locale."""
    local = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(tz)
    label = local.tzname() or "UTC"
    return (
        f"{_DAYS[local.weekday()]}, {local.day} {_MONTHS[local.month - 1]} {local.year} "
        f"{local:%H:%M} {label}"
    )


def policy_text(policy: Policy, approver_count: int) -> str:
    """The policy in words: "any one approver", "all 3 approvers", "2 of 4 approvers"."""
    needed = policy.approvals_needed(approver_count)
    if approver_count == 1 or policy.kind is PolicyKind.ANY:
        words = "any one approver"
    elif policy.kind is PolicyKind.ALL:
        words = f"all {approver_count} approvers"
    else:
        words = f"{needed} of {approver_count} approvers"
    if policy.reject_vetoes and approver_count > 1:
        words += "; a single rejection rejects"
    return words


def approver_list(approvers: Sequence[str]) -> str:
    listed = ", ".join(approvers[:MAX_LISTED_APPROVERS])
    rest = len(approvers) - MAX_LISTED_APPROVERS
    return f"{listed} and {rest} more" if rest > 0 else listed


@dataclass(frozen=True, slots=True)
class Row:
    """A ``Label: value`` line; ``url`` (http/https only) makes the value a link in HTML."""

    label: str
    text: str
    url: str | None = None


def _label(key: str) -> str:
    label = shown(key, 60) or "(no name)"
    if label.replace("_", "").replace("-", "").isalnum() and label.islower():
        words = label.replace("_", " ").replace("-", " ").split()
        label = " ".join("URL" if w == "url" else w for w in words)
        label = label[:1].upper() + label[1:]
    # A metadata row must not read as the reference line of the reference block.
    return "Reference (metadata)" if label.casefold() == "reference" else label


def metadata_rows(metadata: Mapping[str, str]) -> list[Row]:
    """Key/value rows; ``X`` and ``X URL`` (or ``x_url``) become one row with a link."""
    items = [(k, one_line(v)) for k, v in list(metadata.items())[:MAX_METADATA]]
    folded = {k.strip().casefold(): v for k, v in items}
    rows: list[Row] = []
    paired: set[str] = set()
    for key, value in items:
        base = key.strip().casefold()
        for suffix in (" url", "_url", "-url", "url"):
            url = folded.get(base + suffix)
            if url is not None and _URL.match(url) and not base.endswith("url"):
                paired.add(base + suffix)
                rows.append(Row(_label(key), shown(value), url))
                break
        else:
            link = value if _URL.match(value) and len(value) <= MAX_VALUE else None
            rows.append(Row(_label(key), shown(value), link))
    return [r for r, (k, _) in zip(rows, items, strict=True) if k.strip().casefold() not in paired]


def _aligned(rows: Sequence[Row]) -> str:
    """Rows as text, values aligned; a link's URL on its own line under a named value."""
    width = min(max((len(r.label) for r in rows), default=0) + 1, 16)
    lines: list[str] = []
    for row in rows:
        lines.append(f"{row.label + ':':<{width}} {row.text}")
        if row.url is not None and row.url != row.text:
            lines.append(" " * (width + 1) + row.url)
    return "\n".join(lines)


class _SafeMarkdown(MarkdownIt):
    def validateLink(self, url: str) -> bool:  # markdown-it's name
        # Only absolute web and mail links: no javascript:, data:, file: or relative ones.
        return url.strip().lower().startswith(("https://", "http://", "mailto:"))


@cache
def _markdown() -> MarkdownIt:
    md = _SafeMarkdown("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.disable("image")  # a remote image is a read receipt, and mail clients block them
    return md


def details(source: str) -> tuple[str, Markup]:
    """The request's details: Markdown kept as text, rendered (HTML disabled) for HTML."""
    text = defuse(source).strip("\n")
    if len(text) > MAX_DETAILS:
        omitted = len(text) - MAX_DETAILS
        text = f"{text[:MAX_DETAILS].rstrip()}\n\n[details shortened: {omitted} more characters]"
    return text, Markup(_markdown().render(text))  # noqa: S704 (html disabled: escaped)


def comment(value: str) -> str:
    return clip(defuse(value).strip(), MAX_COMMENT)


def _who(decisions: Sequence[Decision], verdict: Verdict) -> str:
    return ", ".join(d.approver for d in decisions if d.verdict is verdict)


def outcome_sentence(request: ApprovalRequest, tz: tzinfo) -> str:
    """How a closed request ended, by whom and when, as one sentence."""
    when = format_time(request.closed_at or request.expires_at, tz)
    state = request.state
    if state is RequestState.APPROVED:
        return f"Approved by {_who(request.decisions, Verdict.APPROVE)} on {when}."
    if state is RequestState.REJECTED:
        who = _who(request.decisions, Verdict.REJECT)
        if request.policy.reject_vetoes and who:
            return f"Rejected by {who} on {when}."
        return f"Rejected on {when}: the policy can no longer be met."
    if state is RequestState.EXPIRED:
        got, needed = request.count(Verdict.APPROVE), request.approvals_needed
        return f"Expired on {when} without enough approvals ({got} of {needed})."
    if state is RequestState.CANCELLED:
        reason = shown(request.closed_reason) or "cancelled"
        return f"Cancelled on {when} ({reason})."
    return "Still waiting for approvals."


def status_sentence(request: ApprovalRequest, tz: tzinfo) -> str:
    if request.state.is_closed:
        return f"The request is closed. {outcome_sentence(request, tz)}"
    missing = request.approvals_needed - request.count(Verdict.APPROVE)
    return f"The request still needs {missing} more approval{'s' if missing != 1 else ''}."


def decision_lines(decisions: Sequence[Decision]) -> list[str]:
    lines = []
    for d in decisions:
        said = shown(d.comment)
        verb = "approved" if d.verdict is Verdict.APPROVE else "rejected"
        lines.append(f"{d.approver} {verb}" + (f": {said}" if said else ""))
    return lines


def _lines_br(value: str) -> Markup:
    """Multi-line text in HTML: each line escaped, joined by ``<br>``."""
    return Markup("<br>\n").join(escape(line) for line in value.split("\n"))


@cache
def _templates() -> Environment:
    env = Environment(
        loader=PackageLoader("replygate.mail", "templates"),
        autoescape=select_autoescape(["html"]),  # .txt templates are plain text
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,
    )
    env.filters["aligned"] = _aligned
    env.filters["lines_br"] = _lines_br
    return env


def render(name: str, view: Mapping[str, object]) -> tuple[str, str]:
    """Render ``<name>.txt`` and ``<name>.html``; the text loses its extra blank lines."""
    env = _templates()
    text = env.get_template(f"{name}.txt").render(view)
    text = re.sub(r"\n[ \t]*\n(?:[ \t]*\n)+", "\n\n", text).strip("\n") + "\n"
    return text, env.get_template(f"{name}.html").render(view)


@dataclass(frozen=True, slots=True)
class MailContext:
    """What the deployment contributes to every mail."""

    from_address: str
    from_name: str = "Release Gate"
    reply_address: str | None = None  # the Approval Reply Address; None: the From address
    public_url: str | None = None  # console base URL, or a URL with "{request_id}" in it
    requester_name: str | None = None  # display name of the requester, if known
    timezone: tzinfo = UTC
    sender_address: str | None = None  # "on behalf of" sending; None for Send As

    @property
    def replies_to(self) -> str:
        return self.reply_address or self.from_address

    def request_url(self, request_id: str) -> str | None:
        """The read-only console page of a request (never a link that changes state)."""
        if not self.public_url or not self.public_url.lower().startswith(("https://", "http://")):
            return None
        if "{request_id}" in self.public_url:
            return self.public_url.replace("{request_id}", quote(request_id, safe=""))
        return f"{self.public_url.rstrip('/')}/requests/{quote(request_id, safe='')}"


@dataclass(frozen=True, slots=True)
class IncomingReply:
    """The approver's message an answer is about: where it goes and what it threads to."""

    from_address: str
    message_id: str | None = None
    references: tuple[str, ...] = field(default_factory=tuple)


def subject_for(token: ReplyToken, title: str) -> str:
    """``[<token>] <title>`` on one line, at most ``MAX_SUBJECT`` characters."""
    tag = f"[{token}] "
    return tag + clip(one_line(title) or "(no title)", MAX_SUBJECT - len(tag))


def reference_block(token: ReplyToken, newline: str = "\n") -> str:
    return f"{REFERENCE_LINE}{newline}Reference: {token}"


def mailto_link(address: str, subject: str, body: str = "") -> str:
    """An RFC 6068 ``mailto:`` URI; every reserved character of the fields is %-encoded."""
    uri = f"mailto:{quote(address.strip(), safe='@')}?subject={quote(subject, safe='')}"
    return uri + (f"&body={quote(body, safe='')}" if body else "")


def _answer_links(request: ApprovalRequest, token: ReplyToken, ctx: MailContext) -> dict[str, str]:
    subject = subject_for(token, request.title)
    # The body carries the reference block, so even a reply stripped of its subject and
    # threading headers still names the request (CRLF line breaks, as RFC 6068 asks).
    body = "\r\n\r\n" + reference_block(token, "\r\n")
    return {
        "approve_link": mailto_link(ctx.replies_to, f"APPROVE {subject}", body),
        "reject_link": mailto_link(ctx.replies_to, f"REJECT {subject}", body),
    }


def _common(request: ApprovalRequest, token: ReplyToken, ctx: MailContext) -> dict[str, object]:
    return {
        "token": str(token),
        "title": shown(request.title, MAX_TITLE) or "(no title)",
        "requester": shown(ctx.requester_name or request.requester),
        "public_url": ctx.request_url(request.id),
        "reference_line": REFERENCE_LINE,
        "instructions": INSTRUCTIONS,
    }


def _headers(kind: MailKind, token: ReplyToken) -> dict[str, str]:
    if kind.is_answer:
        # RFC 3834: an answer to a person's mail is auto-replied, and asks for no
        # automatic answer back, so no loop can start between two responders.
        return {
            "Auto-Submitted": "auto-replied",
            "X-Auto-Response-Suppress": "All",
            "X-Replygate-Token": str(token),
        }
    # Out-of-office replies stay quiet, delivery failures still come back.
    return {
        "Auto-Submitted": "auto-generated",
        "X-Auto-Response-Suppress": "OOF, AutoReply",
        "X-Replygate-Token": str(token),
    }


def _build(
    kind: MailKind,
    template: str,
    request: ApprovalRequest,
    token: ReplyToken,
    ctx: MailContext,
    view: Mapping[str, object],
    *,
    to: tuple[str, ...],
    subject: str,
    reply: IncomingReply | None = None,
) -> OutboundEmail:
    if len(to) > MAX_RECIPIENTS:
        raise ValueError(f"{len(to)} recipients; Exchange accepts {MAX_RECIPIENTS} per message")
    full_view = {**_common(request, token, ctx), "subject": subject, **view}
    text, html = render(template, full_view)
    reply_to = () if ctx.replies_to.lower() == ctx.from_address.lower() else (ctx.replies_to,)
    return OutboundEmail(
        kind=kind,
        request_id=request.id,
        from_address=ctx.from_address,
        from_name=one_line(ctx.from_name),
        sender=ctx.sender_address,
        reply_to=reply_to,
        to=to,
        subject=subject,
        text=text,
        html=html,
        message_id=new_message_id(str(token), kind, ctx.from_address),
        in_reply_to=reply.message_id if reply is not None else None,
        references=(
            thread_references(reply.message_id, reply.references) if reply is not None else ()
        ),
        headers=_headers(kind, token),
    )


def _request_view(request: ApprovalRequest, ctx: MailContext) -> dict[str, object]:
    details_text, details_html = details(request.details)
    rows = [
        *metadata_rows(request.metadata),
        Row("Approvers", approver_list(request.approvers)),
        Row("Policy", policy_text(request.policy, len(request.approvers))),
        Row("Expires", format_time(request.expires_at, ctx.timezone)),
    ]
    return {"details_text": details_text, "details_html": details_html, "rows": rows}


def compose_request(request: ApprovalRequest, token: ReplyToken, ctx: MailContext) -> OutboundEmail:
    """The approval request: one message, every approver in To."""
    view = {**_request_view(request, ctx), **_answer_links(request, token, ctx), "reminder": False}
    return _build(
        MailKind.REQUEST,
        "request",
        request,
        token,
        ctx,
        view,
        to=request.approvers,
        subject=subject_for(token, request.title),
    )


def compose_reminder(
    request: ApprovalRequest,
    token: ReplyToken,
    ctx: MailContext,
    *,
    to: tuple[str, ...] | None = None,
    mark_subject: bool = False,
) -> OutboundEmail:
    """The request again, marked as a reminder; ``to`` defaults to every approver.

    The subject keeps the ``[<token>] <title>`` tag intact (``mark_subject`` only puts
    ``Reminder: `` in front of it), so replies to either mail are matched alike.
    """
    view = {**_request_view(request, ctx), **_answer_links(request, token, ctx), "reminder": True}
    subject = subject_for(token, request.title)
    return _build(
        MailKind.REMINDER,
        "request",
        request,
        token,
        ctx,
        view,
        to=to if to is not None else request.approvers,
        subject=f"Reminder: {subject}" if mark_subject else subject,
    )


def compose_cancelled(
    request: ApprovalRequest,
    token: ReplyToken,
    ctx: MailContext,
    *,
    cancelled_by: str | None = None,
    reason: str = "",
) -> OutboundEmail:
    """Tell every approver that the request was cancelled and nothing is needed."""
    who = shown(cancelled_by or ctx.requester_name or request.requester)
    view = {"cancelled_by": who, "reason": shown(reason)}
    return _build(
        MailKind.CANCELLED,
        "cancelled",
        request,
        token,
        ctx,
        view,
        to=request.approvers,
        subject=subject_for(token, request.title),
    )


def compose_outcome(request: ApprovalRequest, token: ReplyToken, ctx: MailContext) -> OutboundEmail:
    """Tell every approver how a closed request ended (approved, rejected, expired)."""
    if not request.state.is_closed:
        raise ValueError("an outcome notice needs a closed request")
    view = {
        "state": request.state.value,
        "outcome": outcome_sentence(request, ctx.timezone),
        "decisions": decision_lines(request.decisions),
    }
    return _build(
        MailKind.OUTCOME,
        "outcome",
        request,
        token,
        ctx,
        view,
        to=request.approvers,
        subject=subject_for(token, request.title),
    )


def _answer(
    kind: MailKind,
    template: str,
    request: ApprovalRequest,
    token: ReplyToken,
    ctx: MailContext,
    reply: IncomingReply,
    view: Mapping[str, object],
) -> OutboundEmail:
    return _build(
        kind,
        template,
        request,
        token,
        ctx,
        view,
        to=(reply.from_address.strip(),),
        subject=f"RE: {subject_for(token, request.title)}",
        reply=reply,
    )


def compose_confirmation(
    request: ApprovalRequest,
    token: ReplyToken,
    ctx: MailContext,
    reply: IncomingReply,
    decision: Decision,
) -> OutboundEmail:
    """Confirm a recorded decision to its approver, threaded under their reply."""
    view = {
        "noun": "approval" if decision.verdict is Verdict.APPROVE else "rejection",
        "verdict": decision.verdict.value,
        "comment": comment(decision.comment),
        "status": status_sentence(request, ctx.timezone),
    }
    return _answer(MailKind.CONFIRMATION, "confirmation", request, token, ctx, reply, view)


def compose_could_not_read(
    request: ApprovalRequest,
    token: ReplyToken,
    ctx: MailContext,
    reply: IncomingReply,
    *,
    reason: str,
    first_line: str,
) -> OutboundEmail:
    """Ask again, once: say what was read and how to answer."""
    view = {
        "reason": shown(reason).rstrip(". "),
        "first_line": shown(first_line),
        **_answer_links(request, token, ctx),
    }
    return _answer(MailKind.COULD_NOT_READ, "could_not_read", request, token, ctx, reply, view)


def compose_already_decided(
    request: ApprovalRequest,
    token: ReplyToken,
    ctx: MailContext,
    reply: IncomingReply,
    earlier: Decision,
) -> OutboundEmail:
    """The approver decided before; only the first decision counts."""
    view = {
        "earlier": "approved" if earlier.verdict is Verdict.APPROVE else "rejected",
        "decided_at": format_time(earlier.decided_at, ctx.timezone),
        "comment": comment(earlier.comment),
        "status": status_sentence(request, ctx.timezone),
    }
    return _answer(MailKind.ALREADY_DECIDED, "already_decided", request, token, ctx, reply, view)


def compose_closed_notice(
    request: ApprovalRequest, token: ReplyToken, ctx: MailContext, reply: IncomingReply
) -> OutboundEmail:
    """A reply reached a closed request: tell the approver the outcome, change nothing."""
    view = {"outcome": outcome_sentence(request, ctx.timezone)}
    return _answer(MailKind.CLOSED_NOTICE, "closed_notice", request, token, ctx, reply, view)
