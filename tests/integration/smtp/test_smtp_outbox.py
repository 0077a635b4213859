"""The sender loop's use case over SMTP: a real database, a real aiosmtpd server."""

from __future__ import annotations

import email
from collections.abc import Callable
from email.policy import default

from sqlalchemy import select

from replygate.db.tables import OutboxRow
from replygate.db.uow import SqlAlchemyUnitOfWork
from replygate.mail.compose import MailContext
from replygate.services.requesting import RequestDraft, create_request
from replygate.services.sending import SendingContext, send_due
from replygate.smtp import Basic, SmtpMailSender, SmtpSettings
from tests.conftest import FixedClock
from tests.integration.smtp.conftest import PASSWORD, USER, SmtpServer, StartServer

UowFactory = Callable[[], SqlAlchemyUnitOfWork]


def sender_for(server: SmtpServer, clock: FixedClock, password: str) -> SmtpMailSender:
    settings = SmtpSettings(
        server.host,
        server.port,
        "starttls",
        Basic(USER, password),
        ssl_context=server.client_context(),
        timeout=5,
    )
    return SmtpMailSender(settings, clock=clock.now)


def test_a_refused_login_holds_the_mail_until_the_password_is_fixed(
    smtp_server: StartServer, make_uow: UowFactory, clock: FixedClock
) -> None:
    server = smtp_server("starttls")
    mail = MailContext(from_address="approvals@contoso.test", reply_address="replies@contoso.test")
    draft = RequestDraft(
        title="Deploy", approvers=["alice@contoso.test"], requester="ci@contoso.test"
    )
    create_request(make_uow(), clock, "prod", draft, created_by="t")

    wrong = SendingContext("prod", mail, sender_for(server, clock, "an-old-password"), clock)
    for _ in range(3):  # every try is refused; the mail is the server's to take later
        report = send_due(make_uow, wrong)
        assert (report.sent, report.failed) == ([], [])
        clock.advance(minutes=10)
    with make_uow() as uow:
        row = uow.session.scalars(select(OutboxRow)).one()
        assert row.state == "pending"  # waiting for the admin, never failed for it
        assert "535" in row.last_error

    fixed = SendingContext("prod", mail, sender_for(server, clock, PASSWORD), clock)
    assert len(send_due(make_uow, fixed).sent) == 1
    assert len(server.handler.received) == 1


def test_request_mail_goes_out_once_and_a_4xx_is_retried_with_the_same_message_id(
    smtp_server: StartServer, make_uow: UowFactory, clock: FixedClock
) -> None:
    server = smtp_server("starttls")
    server.handler.data_reply = "451 4.7.500 Server busy"
    sender = SmtpMailSender(
        SmtpSettings(
            server.host,
            server.port,
            "starttls",
            Basic(USER, PASSWORD),
            ssl_context=server.client_context(),
            timeout=5,
        ),
        clock=clock.now,
    )
    mail = MailContext(from_address="approvals@contoso.test", reply_address="replies@contoso.test")
    ctx = SendingContext(instance="prod", mail=mail, sender=sender, clock=clock)
    draft = RequestDraft(
        title="Deploy payments-api",
        approvers=["alice@contoso.test", "bob@contoso.test"],
        requester="ci@contoso.test",
    )
    request_id = create_request(make_uow(), clock, "prod", draft, created_by="t").request.id

    assert len(send_due(make_uow, ctx).retrying) == 1
    clock.advance(minutes=10)
    assert len(send_due(make_uow, ctx).sent) == 1
    clock.advance(minutes=10)
    assert send_due(make_uow, ctx).sent == []

    [got] = server.handler.received
    assert sorted(got.rcpt_tos) == ["alice@contoso.test", "bob@contoso.test"]
    msg = email.message_from_bytes(got.content, policy=default)
    assert f"RG-prod-{request_id}" in str(msg["Subject"])
    assert msg["Reply-To"] == "replies@contoso.test"
    assert msg["X-Auto-Response-Suppress"]
    assert msg["Auto-Submitted"] == "auto-generated"
    with make_uow() as uow:  # replies are matched by the Message-ID that went out
        found = uow.requests.find_by_message_id(str(msg["Message-ID"]))
        assert found is not None
        assert found.id == request_id
