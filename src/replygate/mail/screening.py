"""Which mail is ours, and who may decide: DESIGN.md "Screening" as an ordered rule table.

Every rule is evaluated and every hit is returned (the ledger stores them all); the first
rule that fires, in table order, decides the outcome. Pure: the service fills a
``ScreeningContext`` from the database and acts on the ``ScreeningResult``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from replygate.domain.model import RequestState, Verdict, normalise_address
from replygate.domain.tokens import ReplyToken
from replygate.mail.understanding import Understanding


class Outcome(StrEnum):
    NOT_OURS = "not_ours"
    BEFORE_FOLDER_CONFIGURED = "before_folder_configured"
    NOT_DELIVERED_BY_TRANSPORT = "not_delivered_by_transport"
    DUPLICATE = "duplicate"
    TOO_LARGE = "too_large"
    AUTOMATIC = "automatic"
    REQUEST_CLOSED = "request_closed"
    SENDER = "sender"
    ALREADY_DECIDED = "already_decided"
    GRAMMAR = "grammar"  # ours, allowed, but the text holds no decision
    DECIDED = "decided"  # no rule fired: record the decision


class AnswerKind(StrEnum):
    CONFIRM = "confirm"
    ASK_AGAIN = "ask_again"
    TELL_OUTCOME = "tell_outcome"
    ALREADY_DECIDED = "already_decided"


@dataclass(frozen=True, slots=True)
class RequestView:
    """The matched request, as much as screening needs of it."""

    id: str
    state: RequestState
    approvers: tuple[str, ...]
    requester: str
    allow_self_approval: bool = False
    allow_delegates: bool = False
    decisions: Mapping[str, Verdict] = field(default_factory=dict)  # approver -> verdict


@dataclass(frozen=True, slots=True)
class ScreeningContext:
    instance: str
    request: RequestView | None
    folder_configured_at: datetime | None = None
    received_at: datetime | None = None  # the mailbox's arrival time; else the Date header
    already_in_ledger: bool = False
    is_draft: bool = False
    own_message: bool = False  # a Message-ID we sent, coming back
    internal_domains: frozenset[str] = frozenset()
    # Authentication-Results authserv-ids of the tenant's own Exchange hosts, besides
    # Exchange Online's, whose headers carry no authserv-id or a *.outlook.com one.
    exchange_authserv_ids: frozenset[str] = frozenset()
    ask_again_already_sent: bool = False  # never loop: the sender was asked once already


@dataclass(frozen=True, slots=True)
class ScreeningResult:
    outcome: Outcome
    hits: list[str]
    answer: AnswerKind | None
    dispose: bool


Rule = Callable[[Understanding, ScreeningContext], list[str]]


def screen(message: Understanding, context: ScreeningContext) -> ScreeningResult:
    hits: list[str] = []
    outcome = Outcome.DECIDED
    for name, rule in RULES:
        fired = rule(message, context)
        if fired and outcome is Outcome.DECIDED:
            outcome = name
        hits += fired
    return ScreeningResult(
        outcome, hits, _answer(outcome, message, context, hits), _dispose(outcome)
    )


# --- the rules, in DESIGN.md's order ------------------------------------------------


def _not_ours(message: Understanding, context: ScreeningContext) -> list[str]:
    if context.own_message:
        return ["not_ours:own_message"]
    if context.request is not None:
        return []
    if message.token is None:
        return ["not_ours:no_token"]
    if ReplyToken.parse(message.token).instance != context.instance.lower():
        return ["not_ours:foreign_token"]
    return ["not_ours:never_issued"]


def _before_folder_configured(message: Understanding, context: ScreeningContext) -> list[str]:
    if context.folder_configured_at is None:
        return []
    arrived = context.received_at or message.message.date
    if arrived is None:
        return ["before_folder_configured:unknown_arrival"]
    if arrived.tzinfo is None or context.folder_configured_at.tzinfo is None:
        return ["before_folder_configured:naive_time"]
    # Graph's receivedDateTime and IMAP's INTERNALDATE are whole seconds, so a reply that
    # arrives in the second the folder was named reads as earlier; compare whole seconds.
    configured = context.folder_configured_at.replace(microsecond=0)
    return ["before_folder_configured"] if arrived < configured else []


def _not_delivered(message: Understanding, context: ScreeningContext) -> list[str]:
    if context.is_draft:
        return ["not_delivered_by_transport:draft"]
    if message.message.header("received") is None:
        return ["not_delivered_by_transport:no_received_header"]
    return []


def _duplicate(message: Understanding, context: ScreeningContext) -> list[str]:
    return ["duplicate"] if context.already_in_ledger else []


def _too_large(message: Understanding, context: ScreeningContext) -> list[str]:
    return ["too_large"] if message.message.too_large else []


def _automatic(message: Understanding, context: ScreeningContext) -> list[str]:
    if not message.automatic:
        return []
    kind = message.automatic_detail.kind if message.automatic_detail else None
    return [f"automatic:{kind or 'yes'}"]


def _request_closed(message: Understanding, context: ScreeningContext) -> list[str]:
    request = context.request
    if request is None or not request.state.is_closed:
        return []
    return [f"request_closed:{request.state.value}"]


def _sender(message: Understanding, context: ScreeningContext) -> list[str]:
    hits = _authentication_hits(message, context)
    mailboxes = message.message.from_
    if len(mailboxes) != 1:
        return [*hits, "sender:from_not_single"]
    request = context.request
    if request is None:
        return hits
    sender = normalise_address(mailboxes[0].address)
    approvers = {normalise_address(a) for a in request.approvers}
    if sender not in approvers:
        hits.append("sender:not_an_approver")
    if _is_delegate(message, sender) and not request.allow_delegates:
        hits.append("sender:delegate")
    is_requester = sender == normalise_address(request.requester)
    if is_requester and message.decision is Verdict.APPROVE and not request.allow_self_approval:
        hits.append("sender:self_approval")
    return hits


def _already_decided(message: Understanding, context: ScreeningContext) -> list[str]:
    request = context.request
    sender = _single_sender(message)
    if request is None or sender is None:
        return []
    decided = {normalise_address(a) for a in request.decisions}
    return ["already_decided"] if sender in decided else []


def _grammar(message: Understanding, context: ScreeningContext) -> list[str]:
    return [] if message.decision is not None else ["grammar:no_decision"]


RULES: tuple[tuple[Outcome, Rule], ...] = (
    (Outcome.NOT_OURS, _not_ours),
    (Outcome.BEFORE_FOLDER_CONFIGURED, _before_folder_configured),
    (Outcome.NOT_DELIVERED_BY_TRANSPORT, _not_delivered),
    (Outcome.DUPLICATE, _duplicate),
    (Outcome.TOO_LARGE, _too_large),
    (Outcome.AUTOMATIC, _automatic),
    (Outcome.REQUEST_CLOSED, _request_closed),
    (Outcome.SENDER, _sender),
    (Outcome.ALREADY_DECIDED, _already_decided),
    (Outcome.GRAMMAR, _grammar),
)


# --- sender details -------------------------------------------------------------------

_FAIL = re.compile(r"\b(?:dmarc|compauth)\s*=\s*fail\b", re.IGNORECASE)
_METHOD_FIRST = re.compile(r"^\s*(?:spf|dkim|dmarc|compauth|arc)\s*=", re.IGNORECASE)
_EXCHANGE_ONLINE_HOST = re.compile(r"\.(?:prod|protection)\.outlook\.com$", re.IGNORECASE)


def _authentication_hits(message: Understanding, context: ScreeningContext) -> list[str]:
    hits: list[str] = []
    for value in message.message.header_all("authentication-results"):
        if _added_by_exchange(value, context) and _FAIL.search(value):
            hits.append("sender:failed_authentication")
            break
    auth_as = (message.message.header("x-ms-exchange-organization-authas") or "").strip()
    domains = {domain.lower() for domain in context.internal_domains}
    claims_internal = any(
        box.address.rpartition("@")[2].lower() in domains for box in message.message.from_
    )
    if auth_as.lower() == "anonymous" and claims_internal:
        hits.append("sender:external_claims_internal_domain")
    return hits


def _added_by_exchange(value: str, context: ScreeningContext) -> bool:
    """Exchange Online writes no authserv-id ("spf=pass ..."); other hosts write theirs."""
    if _METHOD_FIRST.match(value):
        return True
    authserv_id = value.split(";", 1)[0].strip().split()[0].lower() if value.strip() else ""
    own = {host.lower() for host in context.exchange_authserv_ids}
    return authserv_id in own or bool(_EXCHANGE_ONLINE_HOST.search(authserv_id))


def _is_delegate(message: Understanding, sender: str) -> bool:
    senders = message.message.sender
    return bool(senders) and normalise_address(senders[0].address) != sender


def _single_sender(message: Understanding) -> str | None:
    mailboxes = message.message.from_
    return normalise_address(mailboxes[0].address) if len(mailboxes) == 1 else None


# --- what to answer, and whether to dispose ----------------------------------------------

_ANSWERS: Mapping[Outcome, AnswerKind] = {
    Outcome.REQUEST_CLOSED: AnswerKind.TELL_OUTCOME,
    Outcome.ALREADY_DECIDED: AnswerKind.ALREADY_DECIDED,
    Outcome.GRAMMAR: AnswerKind.ASK_AGAIN,
    Outcome.DECIDED: AnswerKind.CONFIRM,
}
_UNTOUCHED = frozenset({Outcome.NOT_OURS, Outcome.BEFORE_FOLDER_CONFIGURED, Outcome.TOO_LARGE})
_NO_ANSWER_HITS = ("automatic:", "sender:failed_authentication", "sender:external_claims")


def _answer(
    outcome: Outcome, message: Understanding, context: ScreeningContext, hits: list[str]
) -> AnswerKind | None:
    """Answers go only to authenticated approvers or insiders, never to automatic mail."""
    kind = _ANSWERS.get(outcome)
    if kind is None or any(hit.startswith(_NO_ANSWER_HITS) for hit in hits):
        return None
    if kind is AnswerKind.ASK_AGAIN and context.ask_again_already_sent:
        return None
    sender = _single_sender(message)
    if sender is None:
        return None
    request = context.request
    is_approver = request is not None and sender in {
        normalise_address(a) for a in request.approvers
    }
    is_insider = sender.rpartition("@")[2] in {d.lower() for d in context.internal_domains}
    return kind if is_approver or is_insider else None


def _dispose(outcome: Outcome) -> bool:
    """Ours is disposed of whatever the outcome; what may not be ours stays untouched."""
    return outcome not in _UNTOUCHED
