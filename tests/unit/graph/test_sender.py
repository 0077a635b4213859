"""GraphMailSender: the draft payload, exactly-once resume, error translation, pacing."""

from __future__ import annotations

import base64
import email.policy
from dataclasses import replace
from datetime import UTC, datetime
from email import message_from_bytes
from email.message import EmailMessage

import httpx
import pytest

from replygate.graph.client import Budget
from replygate.graph.sender import (
    GraphMailSender,
    Pacing,
    PermanentSendError,
    TransientSendError,
    mime_draft,
)
from replygate.services.mail_ports import OutboundMail, SendOutcome, SendProgress, SendResult

from .fakes import Script, graph_error, make_client

MAIL = OutboundMail(
    from_address="approvals@contoso.test",
    to=("alice@contoso.test", "bob@contoso.test"),
    subject="[RG-prod-7KQ2M9XW4D] Deploy 1.2",
    text="Reply APPROVE",
    html="<p>Reply APPROVE</p>",
    reply_to=("replies@contoso.test",),
    headers=(("X-Auto-Response-Suppress", "OOF, AutoReply"), ("Auto-Submitted", "auto-generated")),
    in_reply_to="<a@b>",
)
PROGRESS = SendProgress("approvals@contoso.test", "draft1", "<m1@contoso.test>")


def decoded(body: bytes) -> EmailMessage:
    parsed = message_from_bytes(base64.b64decode(body, validate=True), policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def test_the_draft_is_the_whole_mime_message() -> None:
    draft = decoded(mime_draft(MAIL, datetime(2026, 12, 4, 13, 0, tzinfo=UTC)))
    assert draft["To"] == "alice@contoso.test, bob@contoso.test"
    assert draft["Reply-To"] == "replies@contoso.test"
    assert draft["Auto-Submitted"] == "auto-generated"  # Graph's JSON form refuses it
    assert draft["X-Auto-Response-Suppress"] == "OOF, AutoReply"
    assert draft["In-Reply-To"] == "<a@b>"
    assert [p.get_content_type() for p in draft.iter_parts()] == ["text/plain", "text/html"]
    assert draft["Message-ID"].endswith("@contoso.test>")


def test_the_composers_message_id_is_kept() -> None:
    mail = replace(MAIL, message_id="<RG-prod-7KQ2M9XW4D.request.ab12@contoso.test>")
    draft = decoded(mime_draft(mail, datetime(2026, 12, 4, tzinfo=UTC)))
    assert draft["Message-ID"] == "<RG-prod-7KQ2M9XW4D.request.ab12@contoso.test>"


def test_text_only_mail_is_escaped_into_html() -> None:
    mail = OutboundMail("a@b.c", ("d@e.f",), "s", "1 < 2")
    parts = list(decoded(mime_draft(mail, datetime(2026, 12, 4, tzinfo=UTC))).iter_parts())
    assert parts[1].get_content().strip() == "<pre>1 &lt; 2</pre>"


def test_a_header_mime_cannot_carry_is_a_permanent_error() -> None:
    broken = replace(MAIL, headers=(("Bad Header", "x"),))
    with pytest.raises(PermanentSendError, match="cannot set the header"):
        mime_draft(broken, datetime(2026, 12, 4, tzinfo=UTC))


def test_create_then_send_costs_two_requests() -> None:
    script = Script(
        httpx.Response(201, json={"id": "draft1", "internetMessageId": "<m1@contoso.test>"}),
        httpx.Response(202),
    )
    client, _ = make_client(script)
    sender = GraphMailSender(client)
    result = sender.send(MAIL)
    assert result.outcome is SendOutcome.SENT
    assert [r.url.path for r in script.requests] == [
        "/v1.0/users/approvals@contoso.test/messages",
        "/v1.0/users/approvals@contoso.test/messages/draft1/send",
    ]
    draft = script.requests[0]
    assert draft.headers["Content-Type"] == "text/plain"  # Graph's MIME form
    assert decoded(draft.content)["Subject"] == MAIL.subject


def test_resume_sends_a_draft_that_still_exists() -> None:
    script = Script(
        httpx.Response(200, json={"id": "draft1", "isDraft": True}), httpx.Response(202)
    )
    client, _ = make_client(script)
    assert GraphMailSender(client).resume(PROGRESS).outcome is SendOutcome.SENT


def test_resume_reports_a_sent_message_already_sent() -> None:
    script = Script(httpx.Response(200, json={"id": "draft1", "isDraft": False}))
    client, _ = make_client(script)
    assert GraphMailSender(client).resume(PROGRESS).outcome is SendOutcome.ALREADY_SENT


def test_resume_finds_a_vanished_draft_in_sent_items() -> None:
    script = Script(
        graph_error(404, "ErrorItemNotFound"),
        httpx.Response(200, json={"value": [{"id": "sent9"}]}),
    )
    client, _ = make_client(script)
    result = GraphMailSender(client).resume(PROGRESS)
    assert (result.outcome, result.message_id) == (SendOutcome.ALREADY_SENT, "sent9")
    lookup = script.requests[1]
    assert lookup.url.params["$filter"] == "internetMessageId eq '<m1@contoso.test>'"
    assert "sentitems" in lookup.url.path


def test_resume_reports_lost_when_found_nowhere() -> None:
    script = Script(graph_error(404, "ErrorItemNotFound"), httpx.Response(200, json={"value": []}))
    client, _ = make_client(script)
    assert GraphMailSender(client).resume(PROGRESS).outcome is SendOutcome.LOST


def test_send_as_denied_is_permanent_with_a_plain_reason() -> None:
    client, _ = make_client(Script(graph_error(403, "ErrorSendAsDenied")))
    with pytest.raises(PermanentSendError) as caught:
        GraphMailSender(client).send_draft(PROGRESS)
    assert "Grant Send As on approvals@contoso.test to svc@contoso.test" in str(caught.value)


def test_long_throttling_is_transient_with_retry_after() -> None:
    script = Script(graph_error(429, "ApplicationThrottled", **{"Retry-After": "120"}))
    client, _ = make_client(script, budget=Budget(max_inline_wait=30))
    with pytest.raises(TransientSendError) as caught:
        GraphMailSender(client).send_draft(PROGRESS)
    assert caught.value.retry_after == 120


def test_sends_are_paced_per_mailbox() -> None:
    script = Script(handler=lambda request: httpx.Response(202))
    client, sleeps = make_client(script)
    now = [0.0]

    def sleep(seconds: float) -> None:
        sleeps.calls.append(seconds)
        now[0] += seconds

    client.clock, client.sleeper = (lambda: now[0]), sleep
    sender = GraphMailSender(client, pacing=Pacing(messages=3, per_seconds=60))
    for _ in range(5):
        sender.send_draft(PROGRESS)
    # three at once, then the next two once the first three are a minute (+2 %) old
    assert sum(sleeps.calls) == pytest.approx(61.2)


PLANNED = "<RG-prod-7KQ2M9XW4D.request.ab12@contoso.test>"


def test_a_planned_draft_is_found_in_drafts_to_be_sent() -> None:
    script = Script(
        httpx.Response(200, json={"value": [{"id": "d7", "internetMessageId": PLANNED}]})
    )
    client, _ = make_client(script)
    found = GraphMailSender(client).find_planned("approvals@contoso.test", PLANNED)
    assert found == SendProgress("approvals@contoso.test", "d7", PLANNED)
    [lookup] = script.requests
    assert lookup.url.path == "/v1.0/users/approvals@contoso.test/mailFolders/drafts/messages"
    assert lookup.url.params["$filter"] == f"internetMessageId eq '{PLANNED}'"


def test_a_planned_draft_already_sent_is_found_in_sent_items() -> None:
    script = Script(
        httpx.Response(200, json={"value": []}),
        httpx.Response(200, json={"value": [{"id": "sent9"}]}),
    )
    client, _ = make_client(script)
    found = GraphMailSender(client).find_planned("approvals@contoso.test", PLANNED)
    assert isinstance(found, SendResult)
    assert (found.outcome, found.message_id) == (SendOutcome.ALREADY_SENT, "sent9")
    assert "sentitems" in script.requests[1].url.path


def test_a_planned_draft_never_made_is_none() -> None:
    script = Script(
        httpx.Response(200, json={"value": []}), httpx.Response(200, json={"value": []})
    )
    client, _ = make_client(script)
    assert GraphMailSender(client).find_planned("approvals@contoso.test", PLANNED) is None
    assert len(script.requests) == 2
