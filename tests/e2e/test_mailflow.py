"""The whole mail flow against the emulator over HTTPS, with the real MSAL and Graph adapter.

A pipeline's request is sent from the shared mailbox, an approver replies, the worker
reads the reply folder, records the decision, disposes of the reply and confirms; mail
that is not ours stays where it is.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, make_msgid
from typing import Any

import httpx
import pytest

from m365emu.testing import RunningEmulator, run_msal_browser_login
from replygate import authorising
from replygate.bootstrap import Container
from replygate.domain.model import RequestState
from replygate.errors import AuthorizationNeeded, InvalidInput
from replygate.mailflow import open_mailflow
from replygate.services.requesting import RequestDraft, create_request
from replygate.worker.loops import Worker
from tests.e2e.conftest import SHARED, configure


def messages(control: httpx.Client, mailbox: str, folder: str) -> list[dict[str, Any]]:
    answer = control.get(f"/_emu/mailboxes/{mailbox}/folders/{folder}/messages")
    answer.raise_for_status()
    return list(answer.json()["value"])


def raw_of(control: httpx.Client, mailbox: str, message_id: str) -> str:
    answer = control.get(f"/_emu/mailboxes/{mailbox}/messages/{message_id}")
    answer.raise_for_status()
    return str(answer.json()["raw"])


def reply(original_raw: str, sender: str, first_line: str, subject: str, in_reply_to: str) -> bytes:
    quoted = "\r\n".join("> " + line for line in original_raw.split("\r\n\r\n", 1)[1].splitlines())
    return (
        f"From: {sender}\r\nTo: {SHARED}\r\nSubject: RE: {subject}\r\n"
        f"Message-ID: {make_msgid(domain='contoso.test')}\r\nIn-Reply-To: {in_reply_to}\r\n"
        f"References: {in_reply_to}\r\nDate: {format_datetime(datetime.now(UTC))}\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        f"{first_line}\r\n\r\nOn Mon, the Release Gate wrote:\r\n{quoted}\r\n"
    ).encode()


def deliver(control: httpx.Client, raw: bytes, folder: str = "inbox") -> None:
    answer = control.post(
        f"/_emu/mailboxes/{SHARED}/deliver", params={"folder": folder, "stamp": "true"}, content=raw
    )
    answer.raise_for_status()


def authorise(container: Container, emu: RunningEmulator, account: str) -> None:
    with container.uow() as uow:
        app = uow.applications.by_name("emulator")
        assert app is not None
        assert app.id is not None
    sign_in_url = authorising.start(container, app.id, by="admin")
    answer = run_msal_browser_login(sign_in_url, emu.ca_file, account=account)
    authorising.finish(container, answer)


def test_wrong_account_is_refused_and_nothing_is_stored(
    emu: RunningEmulator, container: Container
) -> None:
    configure(container, emu, mode="delegated", folder="Inbox")
    with pytest.raises(AuthorizationNeeded, match="Bad User is Authenticated But Not Connected"):
        authorise(container, emu, "alice@contoso.test")
    with container.uow() as uow:
        app = uow.applications.by_name("emulator")
        assert app is not None
        assert app.id is not None
        assert uow.token_caches.for_application(app.id) is None
    with pytest.raises(AuthorizationNeeded, match="no authorised account"):
        open_mailflow(container)
    authorise(container, emu, "svc-replygate@contoso.test")
    open_mailflow(container).close()


def test_flow_state_is_single_use(emu: RunningEmulator, container: Container) -> None:
    configure(container, emu, mode="delegated", folder="Inbox")
    with container.uow() as uow:
        app = uow.applications.by_name("emulator")
        assert app is not None
        assert app.id is not None
    answer = run_msal_browser_login(
        authorising.start(container, app.id, by="admin"),
        emu.ca_file,
        account="svc-replygate@contoso.test",
    )
    authorising.finish(container, answer)
    with pytest.raises(InvalidInput, match="does not match an Authorize in progress"):
        authorising.finish(container, answer)


@pytest.mark.parametrize("mode", ["app-only", "delegated"])
def test_request_reply_decision_confirmation(
    emu: RunningEmulator, control: httpx.Client, container: Container, mode: str
) -> None:
    configure(container, emu, mode=mode, folder="Inbox")
    if mode == "delegated":
        authorise(container, emu, "svc-replygate@contoso.test")
    unrelated = (
        b"From: newsletter@example.org\r\nTo: approvals@contoso.test\r\nSubject: Weekly news\r\n"
        b"Message-ID: <news-1@example.org>\r\n\r\nNothing to approve here.\r\n"
    )
    deliver(control, unrelated)
    draft = RequestDraft(
        title="Deploy payments-api 2.3.1",
        approvers=["alice@contoso.test", "bob@contoso.test"],
        requester="ci@contoso.test",
        metadata={"environment": "production"},
        expires_in=timedelta(hours=4),
    )
    created = create_request(container.uow(), container.clock, "e2e", draft, created_by="test")
    worker = Worker(container)
    first = worker.run_once()
    assert first.errors == {}
    assert first.sent is not None
    assert len(first.sent.sent) == 1

    # Each approver got the one message, from the shared mailbox, with the token.
    for approver in ("alice@contoso.test", "bob@contoso.test"):
        inbox = messages(control, approver, "inbox")
        assert [m["subject"] for m in inbox] == [f"[{created.token}] Deploy payments-api 2.3.1"]
    request_mail = messages(control, "alice@contoso.test", "inbox")[0]
    original = raw_of(control, "alice@contoso.test", request_mail["id"])
    assert "From: " in original
    assert SHARED in original.split("\r\n\r\n", 1)[0]

    # A spoofed reply from outside that claims to be Alice decides nothing.
    spoofed = reply(
        original,
        "alice@contoso.test",
        "Approved",
        request_mail["subject"],
        request_mail["internetMessageId"],
    )
    deliver(control, spoofed)
    spoof_round = worker.run_once()
    assert spoof_round.read is not None
    assert spoof_round.read.outcomes == {"sender": 1}

    # Alice answers from her own mailbox, as in Outlook.
    answered = control.post(
        f"/_emu/ui/alice@contoso.test/messages/{request_mail['id']}/reply",
        data={"text": "Approved, ship it"},
    )
    assert answered.status_code == 303
    second = worker.run_once()
    assert second.errors == {}

    assert second.read is not None
    assert second.read.decided == 1
    with container.uow() as uow:
        request = uow.requests.get(created.request.id)
        assert request is not None
        assert request.state is RequestState.APPROVED
        assert request.decisions[0].approver == "alice@contoso.test"
        assert request.decisions[0].comment == "ship it"

    # The reply was moved to Deleted Items; the unrelated mail is untouched in Inbox.
    inbox_subjects = [m["subject"] for m in messages(control, SHARED, "inbox")]
    assert inbox_subjects == ["Weekly news"]
    deleted = [m["subject"] for m in messages(control, SHARED, "deleteditems")]
    assert deleted == [f"RE: [{created.token}] Deploy payments-api 2.3.1"] * 2  # spoof too

    third = worker.run_once()
    assert third.errors == {}
    confirmations = [
        m["subject"]
        for m in messages(control, "alice@contoso.test", "inbox")
        if m["subject"].startswith("RE:")
    ]
    assert confirmations == [f"RE: [{created.token}] Deploy payments-api 2.3.1"]
    assert [m["subject"] for m in messages(control, "bob@contoso.test", "inbox")] == [
        f"[{created.token}] Deploy payments-api 2.3.1"
    ]
    worker.close()
