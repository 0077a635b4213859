"""What we send, answered the way clients answer it, is understood by the reply parser."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP
from urllib.parse import parse_qs, urlsplit

import pytest

from replygate.domain.model import ApprovalRequest, Policy, Verdict
from replygate.domain.tokens import ReplyToken
from replygate.mail.compose import (
    IncomingReply,
    MailContext,
    compose_could_not_read,
    compose_reminder,
    compose_request,
)
from replygate.mail.mime import OutboundEmail, to_mime
from replygate.mail.understanding import understand

T0 = datetime(2025, 3, 4, 10, 12, tzinfo=UTC)
TOKEN = ReplyToken("prod", "7KQ2M9XW4D")
CTX = MailContext(
    from_address="release-gate@contoso.com",
    from_name="Contoso Release Gate",
    reply_address="approvals@contoso.com",
    public_url="https://replygate.contoso.com",
    requester_name="Jonas Berg",
)
APPROVER = "priya.nair@contoso.com"


def make_request(title: str = "Deploy payments-api 2.3.1 to production") -> ApprovalRequest:
    return ApprovalRequest(
        id=TOKEN.request_id,
        title=title,
        requester="jonas.berg@contoso.com",
        approvers=(APPROVER, "marc.weber@contoso.com"),
        policy=Policy(),
        created_at=T0,
        expires_at=T0 + timedelta(days=1),
        details="Approve only after the **canary** is green.\n\nReject if in doubt.",
        metadata={"Environment": "production", "Pipeline URL": "https://ci.example/run/1"},
    )


def reply(
    subject: str, text: str, html: str | None = None, to: str = "approvals@contoso.com"
) -> bytes:
    message = EmailMessage(policy=SMTP)
    message["From"] = f"Priya Nair <{APPROVER}>"
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = "Tue, 04 Mar 2025 10:27:14 +0000"
    message["Message-ID"] = "<reply-1@contoso.com>"
    message["In-Reply-To"] = "<RG-prod-7KQ2M9XW4D.request.ab12@contoso.com>"
    message.set_content(text)
    if html is not None:
        message.add_alternative(html, subtype="html")
    return message.as_bytes()


def link(mail: OutboundEmail, label: str) -> tuple[str, str, str]:
    url = next(
        line.split(":", 1)[1].strip()
        for line in mail.text.splitlines()
        if line.startswith(f"{label}:")
    )
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    return parts.path, query["subject"][0], query["body"][0]


@pytest.mark.parametrize(
    ("label", "verdict"), [("Approve", Verdict.APPROVE), ("Reject", Verdict.REJECT)]
)
@pytest.mark.parametrize("keep_body", [False, True])
def test_a_reply_from_the_mailto_link_is_understood(
    label: str, verdict: Verdict, keep_body: bool
) -> None:
    # A title holding the other decision word must not confuse the subject's reading.
    mail = compose_request(make_request("Reject or approve: deploy 2.3.1"), TOKEN, CTX)
    address, subject, body = link(mail, label)
    understood = understand(reply(subject, body if keep_body else "", to=address), instance="prod")
    assert understood.decision is verdict
    assert understood.token == "RG-prod-7KQ2M9XW4D"
    assert understood.comment == ""
    assert not understood.automatic


def quoted(text: str) -> str:
    return "\n".join(f"> {line}" if line else ">" for line in text.splitlines())


def test_a_reply_quoting_the_text_part_is_understood() -> None:
    mail = compose_request(make_request(), TOKEN, CTX)
    body = (
        "Approved, ship it\n\n"
        "On Tue, 4 Mar 2025 at 11:12, Contoso Release Gate <release-gate@contoso.com> wrote:\n\n"
        f"{quoted(mail.text)}\n"
    )
    understood = understand(reply(f"RE: {mail.subject}", body), instance="prod")
    assert understood.decision is Verdict.APPROVE
    assert understood.comment == "ship it"
    assert understood.token == "RG-prod-7KQ2M9XW4D"


def test_an_outlook_reply_with_the_request_unquoted_is_understood() -> None:
    mail = compose_request(make_request(), TOKEN, CTX)
    body = (
        "Approved, ship it\n\n"
        "-----Original Message-----\n"
        "From: Contoso Release Gate <release-gate@contoso.com>\n"
        "Sent: Tuesday, March 4, 2025 11:12 AM\n"
        f"To: {', '.join(mail.to)}\n"
        f"Subject: {mail.subject}\n\n"
        f"{mail.text}"
    )
    understood = understand(reply(f"RE: {mail.subject}", body), instance="prod")
    assert understood.decision is Verdict.APPROVE
    assert understood.comment == "ship it"


def test_a_gmail_reply_quoting_both_parts_is_understood() -> None:
    mail = compose_request(make_request(), TOKEN, CTX)
    attribution = (
        "On Tue, 4 Mar 2025 at 11:12, Contoso Release Gate &lt;release-gate@contoso.com&gt; wrote:"
    )
    inner = mail.html.split("<body", 1)[1].split(">", 1)[1].rsplit("</body>", 1)[0]
    html = (
        '<div dir="ltr"><div>Approved, ship it</div></div><br>'
        f'<div class="gmail_quote"><div dir="ltr" class="gmail_attr">{attribution}<br></div>'
        f'<blockquote class="gmail_quote">{inner}</blockquote></div>'
    )
    text = (
        "Approved, ship it\n\n"
        "On Tue, 4 Mar 2025 at 11:12, Contoso Release Gate <release-gate@contoso.com> wrote:\n\n"
        f"{quoted(mail.text)}\n"
    )
    understood = understand(reply(f"Re: {mail.subject}", text, html), instance="prod")
    assert understood.decision is Verdict.APPROVE
    assert understood.comment == "ship it"


@pytest.mark.parametrize("kind", ["reminder", "could_not_read"])
def test_replies_to_reminders_and_second_asks_are_understood(kind: str) -> None:
    request = make_request()
    if kind == "reminder":
        mail = compose_reminder(request, TOKEN, CTX)
    else:
        answer_to = IncomingReply(APPROVER, "<reply-0@contoso.com>")
        mail = compose_could_not_read(
            request, TOKEN, CTX, answer_to, reason="the first line is a question", first_line="ok?"
        )
    body = f"Rejected - not during the freeze\n\n{quoted(mail.text)}\n"
    understood = understand(reply(f"RE: {mail.subject}", body), instance="prod")
    assert understood.decision is Verdict.REJECT
    assert understood.comment == "not during the freeze"
    assert understood.token == "RG-prod-7KQ2M9XW4D"


def test_our_own_mail_coming_back_decides_nothing() -> None:
    mail = compose_request(make_request(), TOKEN, CTX)
    understood = understand(to_mime(mail, T0), instance="prod")
    assert understood.automatic
    assert understood.decision is None
    assert understood.token == "RG-prod-7KQ2M9XW4D"
