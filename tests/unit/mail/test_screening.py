"""DESIGN.md "Screening": each rule fires in order, every hit is kept, answers are right."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from replygate.domain.model import RequestState, Verdict
from replygate.mail.screening import (
    RULES,
    AnswerKind,
    Outcome,
    RequestView,
    ScreeningContext,
    screen,
)
from replygate.mail.understanding import Understanding, understand

TOKEN = "RG-prod-7KQ2M9XW4D"
EXCHANGE_PASS = (
    "Authentication-Results: spf=pass (sender IP is 10.0.0.1) smtp.mailfrom=contoso.com;"
    " dkim=pass header.d=contoso.com;dmarc=pass action=none header.from=contoso.com;compauth=pass"
)
EXCHANGE_FAIL = (
    "spf=fail smtp.mailfrom=contoso.com; dmarc=fail action=quarantine header.from=contoso.com"
)
EXCHANGE_HOST = "DB9PR04MB8431.eurprd04.prod.outlook.com"
CONFIGURED = datetime(2025, 3, 1, tzinfo=UTC)
ARRIVED = datetime(2025, 3, 4, 10, 27, tzinfo=UTC)


def reply(
    body: str = "Approved\r\n\r\nGo.",
    *,
    sender: str = "priya@contoso.com",
    subject: str = f"RE: [{TOKEN}] Deploy",
    extra: tuple[str, ...] = (),
    received: bool = True,
) -> Understanding:
    headers = [
        *(["Received: from mx.contoso.com by x.prod.outlook.com"] if received else []),
        EXCHANGE_PASS,
        f"From: Someone <{sender}>",
        f"Subject: {subject}",
        "Date: Tue, 4 Mar 2025 10:27:14 +0000",
        *extra,
        "Content-Type: text/plain; charset=utf-8",
    ]
    return understand(("\r\n".join(headers) + "\r\n\r\n" + body).encode())


REQUEST = RequestView(
    id="7KQ2M9XW4D",
    state=RequestState.PENDING,
    approvers=("Priya@contoso.com", "marc@contoso.com", "jonas@contoso.com"),
    requester="jonas@contoso.com",
)


def context(**changes: object) -> ScreeningContext:
    base = ScreeningContext(
        instance="prod",
        request=REQUEST,
        folder_configured_at=CONFIGURED,
        received_at=ARRIVED,
        internal_domains=frozenset({"contoso.com"}),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_rules_are_in_design_order() -> None:
    assert [outcome.value for outcome, _ in RULES] == [
        "not_ours",
        "before_folder_configured",
        "not_delivered_by_transport",
        "duplicate",
        "too_large",
        "automatic",
        "request_closed",
        "sender",
        "already_decided",
        "grammar",
    ]


def test_a_good_decision_is_confirmed_and_disposed() -> None:
    result = screen(reply(), context())
    assert (result.outcome, result.hits, result.answer, result.dispose) == (
        Outcome.DECIDED,
        [],
        AnswerKind.CONFIRM,
        True,
    )


@pytest.mark.parametrize(
    ("message", "changes", "hit"),
    [
        (reply(subject="Re: nothing"), {"request": None}, "not_ours:no_token"),
        (reply(subject="Re: [RG-dev-9TJX3BQ7MA] x"), {"request": None}, "not_ours:foreign_token"),
        (reply(), {"request": None}, "not_ours:never_issued"),
        (reply(), {"own_message": True}, "not_ours:own_message"),
    ],
)
def test_not_ours_is_left_untouched(
    message: Understanding, changes: dict[str, object], hit: str
) -> None:
    result = screen(message, context(**changes))
    assert result.outcome is Outcome.NOT_OURS
    assert result.hits[0] == hit
    assert (result.answer, result.dispose) == (None, False)


def test_before_the_folder_was_configured() -> None:
    early = context(received_at=datetime(2025, 2, 1, tzinfo=UTC))
    result = screen(reply(), early)
    assert (result.outcome, result.answer, result.dispose) == (
        Outcome.BEFORE_FOLDER_CONFIGURED,
        None,
        False,
    )
    # Without a mailbox arrival time the Date header is used.
    assert screen(reply(), context(received_at=None)).outcome is Outcome.DECIDED


def test_arrival_in_the_second_the_folder_was_configured_counts_as_after() -> None:
    # Graph reports receivedDateTime in whole seconds: 10:27:14.000 for mail that arrived
    # at 10:27:14.600, after a folder named at 10:27:14.400.
    named = datetime(2025, 3, 4, 10, 27, 14, 400_000, tzinfo=UTC)
    same_second = context(folder_configured_at=named, received_at=named.replace(microsecond=0))
    assert screen(reply(), same_second).outcome is Outcome.DECIDED
    second_before = context(
        folder_configured_at=named, received_at=datetime(2025, 3, 4, 10, 27, 13, tzinfo=UTC)
    )
    assert screen(reply(), second_before).outcome is Outcome.BEFORE_FOLDER_CONFIGURED


def test_not_delivered_by_transport() -> None:
    assert screen(reply(received=False), context()).hits == [
        "not_delivered_by_transport:no_received_header"
    ]
    draft = screen(reply(), context(is_draft=True))
    assert (draft.outcome, draft.answer) == (Outcome.NOT_DELIVERED_BY_TRANSPORT, None)


def test_duplicate_does_nothing_again_but_is_disposed() -> None:
    result = screen(reply(), context(already_in_ledger=True))
    assert (result.outcome, result.answer, result.dispose) == (Outcome.DUPLICATE, None, True)


def test_automatic_is_never_answered() -> None:
    message = reply("No access to email until Monday.", extra=("Auto-Submitted: auto-replied",))
    result = screen(message, context(request=replace(REQUEST, state=RequestState.APPROVED)))
    assert result.outcome is Outcome.AUTOMATIC
    assert result.hits[:2] == ["automatic:auto_reply", "request_closed:approved"]
    assert (result.answer, result.dispose) == (None, True)


def test_request_closed_tells_the_outcome() -> None:
    result = screen(reply(), context(request=replace(REQUEST, state=RequestState.EXPIRED)))
    assert (result.outcome, result.answer) == (Outcome.REQUEST_CLOSED, AnswerKind.TELL_OUTCOME)


@pytest.mark.parametrize(
    ("message", "changes", "hit"),
    [
        (reply(sender="mallory@contoso.com"), {}, "sender:not_an_approver"),
        (reply(extra=("Sender: assistant@contoso.com",)), {}, "sender:delegate"),
        (reply(sender="jonas@contoso.com"), {}, "sender:self_approval"),
        (
            reply(extra=(f"Authentication-Results: {EXCHANGE_FAIL}",)),
            {},
            "sender:failed_authentication",
        ),
        (
            reply(extra=(f"Authentication-Results: {EXCHANGE_HOST}; compauth=fail reason=601",)),
            {},
            "sender:failed_authentication",
        ),
        (
            reply(extra=("X-MS-Exchange-Organization-AuthAs: Anonymous",)),
            {},
            "sender:external_claims_internal_domain",
        ),
    ],
)  # fmt: skip
def test_sender_rules(message: Understanding, changes: dict[str, object], hit: str) -> None:
    result = screen(message, context(**changes))
    assert result.outcome is Outcome.SENDER
    assert hit in result.hits
    assert result.answer is None  # refused senders get no answer, so no loop or backscatter
    assert result.dispose


def test_sender_refusals_are_not_answered_as_decisions() -> None:
    for message in (reply(sender="mallory@contoso.com"), reply(sender="jonas@contoso.com")):
        assert screen(message, context()).answer is None


def test_results_added_by_other_hosts_are_ignored() -> None:
    other = reply(
        extra=("Authentication-Results: mx.google.com; dmarc=fail header.from=contoso.com",)
    )
    original = reply(extra=("Authentication-Results-Original: dmarc=fail header.from=contoso.com",))
    assert screen(other, context()).outcome is Outcome.DECIDED
    assert screen(original, context()).outcome is Outcome.DECIDED
    tenant_host = reply(extra=("Authentication-Results: mail.contoso.com; dmarc=fail",))
    own = context(exchange_authserv_ids=frozenset({"mail.contoso.com"}))
    assert screen(tenant_host, own).outcome is Outcome.SENDER


def test_anonymous_external_mail_from_an_outside_domain_is_fine() -> None:
    outside = reply(
        sender="mei.chen@gmail.com", extra=("X-MS-Exchange-Organization-AuthAs: Anonymous",)
    )
    allowed = context(
        request=replace(REQUEST, approvers=(*REQUEST.approvers, "mei.chen@gmail.com"))
    )
    assert screen(outside, allowed).outcome is Outcome.DECIDED


def test_several_from_mailboxes() -> None:
    message = reply(extra=())
    raw_two = understand(
        b"Received: x\r\nFrom: a@contoso.com, priya@contoso.com\r\n"
        b"Subject: RE: [RG-prod-7KQ2M9XW4D] x"
        b"\r\nDate: Tue, 4 Mar 2025 10:27:14 +0000\r\n\r\nApproved"
    )
    assert screen(message, context()).outcome is Outcome.DECIDED
    result = screen(raw_two, context())
    assert (result.outcome, result.answer) == (Outcome.SENDER, None)
    assert "sender:from_not_single" in result.hits


def test_allowed_delegates_and_self_approval() -> None:
    policy = replace(REQUEST, allow_delegates=True, allow_self_approval=True)
    delegate = reply(extra=("Sender: assistant@contoso.com",))
    assert screen(delegate, context(request=policy)).outcome is Outcome.DECIDED
    assert (
        screen(reply(sender="jonas@contoso.com"), context(request=policy)).outcome
        is Outcome.DECIDED
    )
    # The requester may always reject.
    assert (
        screen(reply("Rejected", sender="jonas@contoso.com"), context()).outcome is Outcome.DECIDED
    )


def test_already_decided() -> None:
    decided = replace(REQUEST, decisions={"priya@contoso.com": Verdict.APPROVE})
    result = screen(reply(), context(request=decided))
    assert (result.outcome, result.answer) == (Outcome.ALREADY_DECIDED, AnswerKind.ALREADY_DECIDED)


def test_grammar_asks_again_once() -> None:
    result = screen(reply("approve?"), context())
    assert (result.outcome, result.hits, result.answer) == (
        Outcome.GRAMMAR,
        ["grammar:no_decision"],
        AnswerKind.ASK_AGAIN,
    )
    assert screen(reply("approve?"), context(ask_again_already_sent=True)).answer is None


def test_every_rule_that_fires_is_recorded_first_one_decides() -> None:
    message = reply("👍", sender="mallory@contoso.com")
    closed = replace(REQUEST, state=RequestState.REJECTED)
    result = screen(message, context(request=closed, already_in_ledger=True))
    assert result.outcome is Outcome.DUPLICATE
    assert result.hits == [
        "duplicate",
        "request_closed:rejected",
        "sender:not_an_approver",
        "grammar:no_decision",
    ]


def test_too_large_is_left_untouched() -> None:
    big = understand(
        b"Received: x\r\nFrom: priya@contoso.com\r\nSubject: RE: [RG-prod-7KQ2M9XW4D] x\r\n\r\n"
        + b"x" * (26 * 1024 * 1024)
    )
    result = screen(big, context())
    assert (result.outcome, result.dispose, result.answer) == (Outcome.TOO_LARGE, False, None)


def test_outsiders_are_not_answered() -> None:
    outsider_request = replace(REQUEST, state=RequestState.APPROVED)
    message = reply(sender="someone@fabrikam.com")
    assert screen(message, context(request=outsider_request)).answer is None
    insider = reply(sender="colleague@contoso.com")
    assert screen(insider, context(request=outsider_request)).answer is AnswerKind.TELL_OUTCOME
