"""The worker with basic auth: SMTP (aiosmtpd, STARTTLS + AUTH) sends, IMAP (Dovecot) reads.

Email Settings choose the transports; nothing here touches Graph.
"""

from __future__ import annotations

import email
import imaplib
import json
from collections.abc import Iterator
from datetime import timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from replygate.bootstrap import Container, build
from replygate.config import load_settings
from replygate.db import migrate
from replygate.domain.model import RequestState
from replygate.services.configuring import parse_settings, save_settings
from replygate.services.requesting import RequestDraft, create_request
from replygate.worker.loops import Worker
from tests.integration.imap.dovecot import PASSWORD as IMAP_PASSWORD
from tests.integration.imap.dovecot import Dovecot
from tests.integration.smtp.conftest import PASSWORD as SMTP_PASSWORD
from tests.integration.smtp.conftest import USER as SMTP_USER
from tests.integration.smtp.conftest import StartServer, smtp_server, tls_files  # noqa: F401


@pytest.fixture
def container(tmp_path: Path, dovecot: Dovecot, tls_files) -> Iterator[Container]:  # type: ignore[no-untyped-def]  # noqa: F811
    bundle = tmp_path / "cas.pem"  # both test servers' CAs, as a company bundle would hold
    bundle.write_text(dovecot.ca_file.read_text() + tls_files.ca_file.read_text())
    made = build(load_settings(data_dir=tmp_path / "data", instance="basic", ca_bundle=bundle))
    migrate.upgrade(made.engine)
    yield made
    made.engine.dispose()


def test_request_sent_by_smtp_and_reply_read_by_imap(
    container: Container,
    dovecot: Dovecot,
    user: str,
    smtp_server: StartServer,  # noqa: F811
) -> None:
    server = smtp_server("starttls")
    dovecot.create(user, "INBOX.Approvals")
    values = {
        "smtp_auth_type": "basic",
        "imap_auth_type": "basic",
        "smtp_host": server.host,
        "smtp_port": server.port,
        "smtp_security": "starttls",
        "smtp_username": SMTP_USER,
        "smtp_from_address": f"{user}@example.test",
        "imap_host": dovecot.host,
        "imap_port": dovecot.imaps_port,
        "imap_security": "tls",
        "imap_username": user,
        "email_reply_folder": "Inbox/Approvals",
        "processed_replies": "move",
    }
    save_settings(
        container.uow(),
        container.clock,
        container.secrets,
        parse_settings(values),
        by="t",
        passwords={"smtp": SMTP_PASSWORD, "imap": IMAP_PASSWORD},
    )
    draft = RequestDraft(
        title="Deploy over SMTP",
        approvers=["alice@example.test"],
        requester="ci@example.test",
        expires_in=timedelta(hours=1),
    )
    created = create_request(container.uow(), container.clock, "basic", draft, created_by="t")
    worker = Worker(container)
    first = worker.run_once()
    assert first.errors == {}, first.errors
    assert len(server.handler.received) == 1
    sent = email.message_from_bytes(server.handler.received[0].content)
    assert sent["Subject"] == f"[{created.token}] Deploy over SMTP"
    assert sent["Auto-Submitted"] == "auto-generated"  # SMTP keeps what Graph must drop

    arrived = format_datetime(container.clock.now() + timedelta(seconds=5))
    reply = (
        f"Received: from mx by imap; {arrived}\r\n"
        f"From: alice@example.test\r\nTo: {user}@example.test\r\n"
        f"Subject: RE: {sent['Subject']}\r\nMessage-ID: <reply-1@example.test>\r\n"
        f"In-Reply-To: {sent['Message-ID']}\r\n\r\nApproved, ship it\r\n"
    ).encode()
    with dovecot.client(user) as imap:
        when = imaplib.Time2Internaldate(container.clock.now().timestamp() + 5)
        assert imap.append('"INBOX.Approvals"', None, when, reply)[0] == "OK"
    second = worker.run_once()
    assert second.errors == {}, second.errors
    assert second.read is not None
    assert second.read.decided == 1
    with container.uow() as uow:
        request = uow.requests.get(created.request.id)
        assert request is not None
        assert request.state is RequestState.APPROVED
    assert dovecot.uids(user, "INBOX.Approvals") == []  # moved to the trash folder
    worker.run_once()  # sends the confirmation
    assert len(server.handler.received) == 2
    assert json.dumps(worker.last_errors) == "{}"
    worker.close()
