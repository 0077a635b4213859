"""Notices (cancelled, outcome) and answers to an approver's reply."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from replygate.domain.model import (
    ApprovalRequest,
    Channel,
    Decision,
    Policy,
    PolicyKind,
    Verdict,
)
from replygate.domain.tokens import ReplyToken
from replygate.mail.compose import (
    INSTRUCTIONS,
    REFERENCE_LINE,
    IncomingReply,
    MailContext,
    compose_already_decided,
    compose_cancelled,
    compose_closed_notice,
    compose_confirmation,
    compose_could_not_read,
    compose_outcome,
    compose_reminder,
    compose_request,
)
from replygate.mail.mime import MAX_REFERENCES, MailKind, OutboundEmail, to_mime

T0 = datetime(2025, 3, 4, 10, 12, tzinfo=UTC)
TOKEN = ReplyToken("prod", "4NW8CT3ZRB")
CTX = MailContext(from_address="release-gate@contoso.com", requester_name="Nadia Hassan")
APPROVERS = ("aisha.khan@contoso.com", "erik.lindqvist@contoso.com", "grace.liu@contoso.com")
REPLY = IncomingReply(
    from_address="aisha.khan@contoso.com",
    message_id="<PAXPR04MB9185@eurprd04.prod.outlook.com>",
    references=("<RG-prod-4NW8CT3ZRB.request.ab12@contoso.com>",),
)
SUBJECT = "[RG-prod-4NW8CT3ZRB] Rotate orders-db credentials in prod-eu"


def make_request(policy: Policy | None = None) -> ApprovalRequest:
    return ApprovalRequest(
        id=TOKEN.request_id,
        title="Rotate orders-db credentials in prod-eu",
        requester="nadia.hassan@contoso.com",
        approvers=APPROVERS,
        policy=policy or Policy(),
        created_at=T0,
        expires_at=T0 + timedelta(days=1),
    )


def decision(who: str, verdict: Verdict, comment: str = "", minutes: int = 5) -> Decision:
    return Decision(who, verdict, comment, Channel.EMAIL, T0 + timedelta(minutes=minutes))


def all_kinds() -> list[OutboundEmail]:
    """One mail of every kind, from requests that are in the right state for it."""
    pending = make_request(Policy(PolicyKind.ALL))
    first = decision("aisha.khan@contoso.com", Verdict.APPROVE, "Looks fine.")
    pending.decide(first)
    approved = make_request()
    approved.decide(decision("erik.lindqvist@contoso.com", Verdict.APPROVE, "Ship it"))
    cancelled = make_request()
    cancelled.cancel(T0 + timedelta(hours=1))
    return [
        compose_request(make_request(), TOKEN, CTX),
        compose_reminder(make_request(), TOKEN, CTX),
        compose_cancelled(cancelled, TOKEN, CTX),
        compose_outcome(approved, TOKEN, CTX),
        compose_confirmation(pending, TOKEN, CTX, REPLY, first),
        compose_could_not_read(
            pending, TOKEN, CTX, REPLY, reason="the first line is a question", first_line="ok?"
        ),
        compose_closed_notice(approved, TOKEN, CTX, REPLY),
        compose_already_decided(pending, TOKEN, CTX, REPLY, first),
    ]


def test_every_kind_renders_both_parts_with_the_reference_block() -> None:
    mails = all_kinds()
    assert [m.kind for m in mails] == list(MailKind)
    for mail in mails:
        assert mail.text.endswith(f"{REFERENCE_LINE}\nReference: RG-prod-4NW8CT3ZRB\n"), mail.kind
        assert f"{REFERENCE_LINE}<br>\nReference: RG-prod-4NW8CT3ZRB</p>" in mail.html
        assert mail.html.startswith("<!DOCTYPE html>")
        assert mail.html.rstrip().endswith("</html>")
        assert "\n\n\n" not in mail.text
        assert SUBJECT in mail.subject
        assert mail.headers["X-Replygate-Token"] == "RG-prod-4NW8CT3ZRB"
        message = email.message_from_bytes(to_mime(mail, T0), policy=email.policy.default)
        assert message.get_content_type() == "multipart/alternative"


def test_answers_are_auto_replies_threaded_under_the_approvers_message() -> None:
    for mail in all_kinds():
        if not mail.kind.is_answer:
            assert mail.headers["Auto-Submitted"] == "auto-generated"
            assert mail.in_reply_to is None
            continue
        assert mail.headers["Auto-Submitted"] == "auto-replied"
        assert mail.headers["X-Auto-Response-Suppress"] == "All"
        assert mail.to == ("aisha.khan@contoso.com",)
        assert mail.subject == f"RE: {SUBJECT}"
        assert mail.in_reply_to == REPLY.message_id
        assert mail.references == (*REPLY.references, REPLY.message_id)
        message = email.message_from_bytes(to_mime(mail, T0), policy=email.policy.default)
        assert message["Auto-Submitted"] == "auto-replied"
        assert message["In-Reply-To"] == REPLY.message_id


def test_answer_without_a_message_id_is_not_threaded() -> None:
    request = make_request()
    mail = compose_closed_notice(request, TOKEN, CTX, IncomingReply("aisha.khan@contoso.com"))
    assert mail.in_reply_to is None
    assert mail.references == ()


def test_long_reference_chains_keep_the_root_and_the_latest() -> None:
    chain = (*(f"<m{i}@example.com>" for i in range(40)), "not an id")
    reply = IncomingReply("aisha.khan@contoso.com", "<last@example.com>", chain)
    mail = compose_closed_notice(make_request(), TOKEN, CTX, reply)
    assert len(mail.references) == MAX_REFERENCES
    assert mail.references[0] == "<m0@example.com>"
    assert mail.references[-1] == "<last@example.com>"


def test_confirmation_says_what_was_understood() -> None:
    request = make_request(Policy(PolicyKind.QUORUM, 2))
    approval = decision("aisha.khan@contoso.com", Verdict.APPROVE, "Fine.\nRollback is a redeploy.")
    request.decide(approval)
    mail = compose_confirmation(request, TOKEN, CTX, REPLY, approval)
    assert mail.text.startswith(
        'Your approval of "Rotate orders-db credentials in prod-eu" was recorded.\n\n'
        "What we understood:\n"
        "Decision: approve\n"
        "Comment:  Fine.\n"
        "          Rollback is a redeploy.\n\n"
        "The request still needs 1 more approval.\n"
    )
    assert "Fine.<br>\nRollback is a redeploy." in mail.html


def test_confirmation_of_a_rejection_that_closed_the_request() -> None:
    request = make_request()
    rejection = decision("grace.liu@contoso.com", Verdict.REJECT)
    request.decide(rejection)
    mail = compose_confirmation(request, TOKEN, CTX, REPLY, rejection)
    assert mail.text.startswith('Your rejection of "Rotate orders-db')
    assert "Comment:  (none)" in mail.text
    closed = (
        "The request is closed. Rejected by grace.liu@contoso.com on Tue, 4 Mar 2025 10:17 UTC."
    )
    assert closed in mail.text
    assert closed in mail.html


def test_could_not_read_quotes_the_first_line_and_how_to_answer() -> None:
    mail = compose_could_not_read(
        make_request(),
        TOKEN,
        CTX,
        REPLY,
        reason="the decision is conditional.",
        first_line="Approve if the canary holds",
    )
    assert mail.text.startswith(
        "We could not read a decision in your reply: the decision is conditional.\n"
    )
    assert "The first line we read was:\n> Approve if the canary holds\n" in mail.text
    assert INSTRUCTIONS in mail.text
    assert INSTRUCTIONS in mail.html
    approve = next(line for line in mail.text.splitlines() if line.startswith("Approve: "))
    query = parse_qs(urlsplit(approve.removeprefix("Approve: ")).query)
    assert query["subject"] == [f"APPROVE {SUBJECT}"]


def test_could_not_read_an_empty_reply() -> None:
    mail = compose_could_not_read(
        make_request(), TOKEN, CTX, REPLY, reason="the reply is empty", first_line=""
    )
    assert "> (empty)" in mail.text


def test_already_decided_names_the_earlier_decision() -> None:
    request = make_request(Policy(PolicyKind.ALL))
    earlier = decision("aisha.khan@contoso.com", Verdict.APPROVE, "Canary is clean")
    request.decide(earlier)
    mail = compose_already_decided(request, TOKEN, CTX, REPLY, earlier)
    assert mail.text.startswith(
        'You already approved "Rotate orders-db credentials in prod-eu" on '
        "Tue, 4 Mar 2025 10:17 UTC. Only your first decision counts, so this reply changed "
        "nothing.\n\nYour comment then: Canary is clean\n\n"
        "The request still needs 2 more approvals.\n"
    )


@pytest.mark.parametrize(
    ("close", "sentence"),
    [
        ("approve", "Approved by erik.lindqvist@contoso.com on Tue, 4 Mar 2025 10:17 UTC."),
        ("reject", "Rejected by erik.lindqvist@contoso.com on Tue, 4 Mar 2025 10:17 UTC."),
        ("expire", "Expired on Wed, 5 Mar 2025 10:12 UTC without enough approvals (0 of 1)."),
        ("cancel", "Cancelled on Tue, 4 Mar 2025 11:12 UTC (cancelled by the requester)."),
    ],
)
def test_closed_notice_tells_the_outcome(close: str, sentence: str) -> None:
    request = make_request()
    if close == "expire":
        request.expire(request.expires_at)
    elif close == "cancel":
        request.cancel(T0 + timedelta(hours=1))
    else:
        verdict = Verdict.APPROVE if close == "approve" else Verdict.REJECT
        request.decide(decision("erik.lindqvist@contoso.com", verdict))
    mail = compose_closed_notice(request, TOKEN, CTX, REPLY)
    assert mail.text.startswith(
        f'"Rotate orders-db credentials in prod-eu" is already closed, so your reply changed '
        f"nothing.\n\n{sentence}\n"
    )
    assert sentence in mail.html


def test_outcome_notice_lists_decisions() -> None:
    request = make_request(Policy(PolicyKind.QUORUM, 2, reject_vetoes=False))
    request.decide(decision("aisha.khan@contoso.com", Verdict.REJECT, "Not today", 1))
    request.decide(decision("erik.lindqvist@contoso.com", Verdict.REJECT, "", 2))
    mail = compose_outcome(request, TOKEN, CTX)
    assert mail.to == APPROVERS
    assert mail.text.startswith(
        "Rejected: Rotate orders-db credentials in prod-eu\n\n"
        "Rejected on Tue, 4 Mar 2025 10:14 UTC: the policy can no longer be met.\n\n"
        "Decisions:\n"
        "- aisha.khan@contoso.com rejected: Not today\n"
        "- erik.lindqvist@contoso.com rejected\n\n"
        "No action needed.\n"
    )
    assert '<li dir="auto">aisha.khan@contoso.com rejected: Not today</li>' in mail.html


def test_outcome_needs_a_closed_request() -> None:
    with pytest.raises(ValueError, match="closed"):
        compose_outcome(make_request(), TOKEN, CTX)


def test_cancelled_notice_says_no_action_is_needed() -> None:
    request = make_request()
    request.cancel(T0)
    mail = compose_cancelled(request, TOKEN, CTX, reason="release moved to Friday")
    assert mail.kind is MailKind.CANCELLED
    assert mail.to == APPROVERS
    assert mail.text.startswith(
        "Cancelled: Rotate orders-db credentials in prod-eu\n\n"
        "This request was cancelled by Nadia Hassan; no action needed.\n\n"
        "Reason: release moved to Friday\n"
    )
    by = compose_cancelled(request, TOKEN, CTX, cancelled_by="ops-admin@contoso.com")
    assert "cancelled by ops-admin@contoso.com; no action needed." in by.html
    assert "Reason:" not in by.text
