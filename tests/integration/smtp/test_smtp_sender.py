"""SmtpMailSender against a real aiosmtpd server with TLS and AUTH."""

from __future__ import annotations

import base64
import email
import logging
from email.message import Message
from email.policy import default

import pytest

from replygate.errors import TransportFailure, UserError
from replygate.services.mail_ports import OutboundMail, SendOutcome
from replygate.smtp import Basic, NoAuth, Pacing, SmtpMailSender, SmtpSettings, XOAuth2
from replygate.smtp.credentials import xoauth2_response
from replygate.smtp.errors import PermanentSendError, SmtpConfigurationError, TransientSendError
from tests.integration.smtp.conftest import PASSWORD, TOKEN, USER, SmtpServer, StartServer

MAIL = OutboundMail(
    from_address="approvals@contoso.test",
    from_name="Release approvals",
    to=("ann@contoso.test", "bob@contoso.test"),
    cc=("carol@contoso.test",),
    reply_to=("replies@contoso.test",),
    subject="[RG-prod-7KQ2M9XW4D] Deploy 1.2.3 to production — ok?",
    text="Reply with APPROVE or REJECT on the first line.",
    html="<p>Reply with <b>APPROVE</b> or <b>REJECT</b> on the first line.</p>",
    headers=(("X-Auto-Response-Suppress", "OOF, AutoReply"), ("Auto-Submitted", "auto-generated")),
)


def sender(server: SmtpServer, security: str = "starttls", **extra: object) -> SmtpMailSender:
    options: dict[str, object] = {
        "credentials": Basic(USER, PASSWORD),
        "ssl_context": server.client_context(),
        "timeout": 5.0,
    }
    options |= extra
    return SmtpMailSender(SmtpSettings(server.host, server.port, security, **options))  # type: ignore[arg-type]


def parsed(raw: bytes) -> Message:
    return email.message_from_bytes(raw, policy=default)


def test_starttls_with_basic_auth_delivers_once_with_both_parts_and_our_headers(
    smtp_server: StartServer,
) -> None:
    server = smtp_server("starttls")
    result = sender(server).send(MAIL)

    assert result.outcome is SendOutcome.SENT
    [got] = server.handler.received
    assert got.login == USER
    assert got.mail_from == MAIL.from_address
    assert sorted(got.rcpt_tos) == ["ann@contoso.test", "bob@contoso.test", "carol@contoso.test"]
    msg = parsed(got.content)
    assert msg["Message-ID"] == result.internet_message_id
    assert result.internet_message_id.endswith("@contoso.test>")
    assert msg["Reply-To"] == "replies@contoso.test"
    assert msg["X-Auto-Response-Suppress"] == "OOF, AutoReply"
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["Subject"] == MAIL.subject
    assert msg["Cc"] == "carol@contoso.test"
    assert "Bcc" not in msg
    parts = [p.get_content_type() for p in msg.walk() if not p.is_multipart()]
    assert parts == ["text/plain", "text/html"]


def test_implicit_tls_with_xoauth2(smtp_server: StartServer) -> None:
    server = smtp_server("tls")
    calls: list[int] = []

    def token() -> str:
        calls.append(1)
        return TOKEN

    result = sender(server, "tls", credentials=XOAuth2(USER, token)).send(MAIL)

    assert result.outcome is SendOutcome.SENT
    assert server.handler.tokens_seen == [f"Bearer {TOKEN}"]
    assert len(server.handler.received) == 1
    assert calls == [1]


def test_xoauth2_initial_response_is_the_exact_sasl_string() -> None:
    raw = xoauth2_response("someone@contoso.test", "tok.en-1")
    assert raw == b"user=someone@contoso.test\x01auth=Bearer tok.en-1\x01\x01"
    assert base64.b64encode(raw) == (
        b"dXNlcj1zb21lb25lQGNvbnRvc28udGVzdAFhdXRoPUJlYXJlciB0b2suZW4tMQEB"
    )
    with pytest.raises(ValueError, match="control characters"):
        xoauth2_response("a@b.c", "bad\x01token")


def test_wrong_password_is_a_plain_configuration_error(smtp_server: StartServer) -> None:
    server = smtp_server("starttls")
    with pytest.raises(SmtpConfigurationError) as caught:
        sender(server, credentials=Basic(USER, "wrong-password")).send(MAIL)
    assert isinstance(caught.value, UserError)
    assert "refused the login" in caught.value.message
    assert "SMTP AUTH" in caught.value.fix
    assert "wrong-password" not in str(caught.value)
    assert server.handler.received == []


def test_rejected_oauth_token_ends_with_the_oauth_fix(smtp_server: StartServer) -> None:
    server = smtp_server("tls")
    with pytest.raises(SmtpConfigurationError) as caught:
        sender(server, "tls", credentials=XOAuth2(USER, lambda: "expired")).send(MAIL)
    assert "SMTP.Send" in caught.value.fix
    assert "expired" not in str(caught.value)


def test_4xx_is_transient_and_a_retry_sends_the_same_message_once(
    smtp_server: StartServer,
) -> None:
    server = smtp_server("starttls")
    server.handler.data_reply = "451 4.3.0 Mail server temporarily rejected message"
    smtp = sender(server)
    progress = smtp.create_draft(MAIL)
    assert progress.draft_id == progress.internet_message_id

    with pytest.raises(TransientSendError) as caught:
        smtp.send_draft(progress)
    assert isinstance(caught.value, TransportFailure)
    assert caught.value.code == 451

    result = smtp.resume(progress)  # what the outbox does on its next attempt
    assert result.outcome is SendOutcome.SENT
    [got] = server.handler.received
    assert parsed(got.content)["Message-ID"] == progress.internet_message_id
    assert smtp.resume(progress).outcome is SendOutcome.ALREADY_SENT
    assert len(server.handler.received) == 1


def test_after_a_restart_resume_is_lost_unless_the_mail_is_given_again(
    smtp_server: StartServer,
) -> None:
    server = smtp_server("starttls")
    progress = sender(server).create_draft(MAIL)  # then the process "crashes"

    restarted = sender(server)
    assert restarted.resume(progress).outcome is SendOutcome.LOST
    result = restarted.send(MAIL, resume=progress)
    assert result.outcome is SendOutcome.SENT
    [got] = server.handler.received
    assert parsed(got.content)["Message-ID"] == progress.internet_message_id


def test_every_recipient_refused_with_5xx_is_permanent(smtp_server: StartServer) -> None:
    server = smtp_server("starttls")
    for address in (*MAIL.to, *MAIL.cc):
        server.handler.rcpt_replies[address] = "550 5.1.1 User unknown"
    with pytest.raises(PermanentSendError) as caught:
        sender(server).send(MAIL)
    assert "ann@contoso.test (550 5.1.1 User unknown)" in caught.value.message
    assert server.handler.received == []


def test_some_recipients_refused_still_sends_to_the_others(
    smtp_server: StartServer, caplog: pytest.LogCaptureFixture
) -> None:
    server = smtp_server("starttls")
    server.handler.rcpt_replies["bob@contoso.test"] = "550 5.1.1 User unknown"
    with caplog.at_level(logging.WARNING):
        assert sender(server).send(MAIL).outcome is SendOutcome.SENT
    [got] = server.handler.received
    assert "bob@contoso.test" not in got.rcpt_tos
    assert "bob@contoso.test (550)" in caplog.text


def test_a_deferred_recipient_is_transient(smtp_server: StartServer) -> None:
    server = smtp_server("starttls")
    for address in (*MAIL.to, *MAIL.cc):
        server.handler.rcpt_replies[address] = "450 4.2.1 Mailbox busy"
    with pytest.raises(TransientSendError):
        sender(server).send(MAIL)


def test_a_message_too_large_is_permanent(smtp_server: StartServer) -> None:
    server = smtp_server("starttls", size_limit=200)
    with pytest.raises(PermanentSendError, match="too large"):
        sender(server).send(MAIL)


def test_an_untrusted_certificate_fails_clearly(smtp_server: StartServer) -> None:
    server = smtp_server("tls")
    with pytest.raises(SmtpConfigurationError) as caught:
        sender(server, "tls", ssl_context=None).send(MAIL)  # the system's trust store
    assert "not trusted" in caught.value.message
    assert "CA" in caught.value.fix


def test_starttls_missing_is_never_downgraded(smtp_server: StartServer) -> None:
    server = smtp_server("plain")
    with pytest.raises(SmtpConfigurationError, match="does not offer STARTTLS"):
        sender(server).send(MAIL)
    assert server.handler.received == []


def test_no_password_over_plain_text_to_a_remote_host() -> None:
    smtp = SmtpMailSender(SmtpSettings("mail.example.com", 25, "none", Basic(USER, PASSWORD)))
    with pytest.raises(SmtpConfigurationError, match="without TLS"):
        smtp._login(None)  # type: ignore[arg-type]


def test_plain_relay_without_auth_on_loopback(smtp_server: StartServer) -> None:
    server = smtp_server("plain")
    smtp = SmtpMailSender(SmtpSettings(server.host, server.port, "none", NoAuth(), timeout=5))
    assert smtp.send(MAIL).outcome is SendOutcome.SENT
    assert server.handler.received[0].login is None


def test_connection_refused_is_transient() -> None:
    from tests.integration.smtp.conftest import free_port

    smtp = SmtpMailSender(SmtpSettings("127.0.0.1", free_port(), "tls", timeout=2))
    with pytest.raises(TransientSendError, match="Could not talk"):
        smtp.send(MAIL)


def test_a_header_the_mime_form_cannot_carry_is_permanent() -> None:
    smtp = SmtpMailSender(SmtpSettings("127.0.0.1", 1))
    bad = OutboundMail(**{**MAIL.__dict__, "headers": (("Bad Header", "x"),)})
    with pytest.raises(PermanentSendError, match="cannot be sent"):
        smtp.create_draft(bad)


def test_sends_are_paced_under_the_per_minute_limit(smtp_server: StartServer) -> None:
    server = smtp_server("plain")
    now = [100.0]
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    smtp = SmtpMailSender(
        SmtpSettings(server.host, server.port, "none", pacing=Pacing(2, 60.0), timeout=5),
        monotonic=lambda: now[0],
        sleep=sleep,
    )
    for _ in range(2):
        smtp.send(MAIL)
        now[0] += 1.0
    assert waits == []
    smtp.send(MAIL)  # the third within the minute waits for the first to leave the window
    assert waits == [58.0]
    assert len(server.handler.received) == 3
