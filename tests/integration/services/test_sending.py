"""The outbox sender on SQLite and PostgreSQL, with a scripted transport.

The transport here is a fake of the ``MailSender`` port that can fail at each step, so
every crash point of the exactly-once protocol is exercised against a real database.
The same protocol against the emulator's Graph is tested in tests/e2e.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import pytest
from sqlalchemy import update

from replygate.db.tables import OutboxRow
from replygate.db.uow import SqlAlchemyUnitOfWork
from replygate.errors import TransportFailure, UserError
from replygate.mail.compose import MailContext
from replygate.services.mail_ports import (
    OutboundMail,
    SendOutcome,
    SendProgress,
    SendResult,
)
from replygate.services.requesting import RequestDraft, cancel_request, create_request
from replygate.services.sending import MAX_ATTEMPTS, PACE_WAIT, SendingContext, send_due
from tests.conftest import FixedClock

UowFactory = Callable[[], SqlAlchemyUnitOfWork]


class Crash(BaseException):
    """Stands for the process dying: nothing after it runs (not an Exception on purpose)."""


class Throttled(TransportFailure):
    def __init__(self) -> None:
        super().__init__("429 from Graph")
        self.retry_after = 7.0


@dataclass
class ScriptedSender:
    drafts: dict[str, OutboundMail] = field(default_factory=dict)
    sent: list[str] = field(default_factory=list)
    sent_mail: list[OutboundMail] = field(default_factory=list)
    fail_next: list[BaseException] = field(default_factory=list)
    crash_after_send: bool = False

    def _maybe_fail(self) -> None:
        if self.fail_next:
            raise self.fail_next.pop(0)

    def create_draft(self, mail: OutboundMail) -> SendProgress:
        self._maybe_fail()
        draft_id = f"draft-{len(self.drafts) + 1}"
        self.drafts[draft_id] = mail
        return SendProgress(mail.from_address, draft_id, f"<{draft_id}@contoso.test>")

    def send_draft(self, progress: SendProgress) -> SendResult:
        self._maybe_fail()
        self.sent.append(progress.internet_message_id)
        self.sent_mail.append(self.drafts.pop(progress.draft_id))
        if self.crash_after_send:
            self.crash_after_send = False
            raise Crash
        return SendResult(SendOutcome.SENT, progress.internet_message_id, progress.draft_id)

    def resume(self, progress: SendProgress) -> SendResult:
        if progress.draft_id in self.drafts:
            return self.send_draft(progress)
        if progress.internet_message_id in self.sent:
            return SendResult(SendOutcome.ALREADY_SENT, progress.internet_message_id)
        return SendResult(SendOutcome.LOST, progress.internet_message_id)

    def send(self, mail: OutboundMail, *, resume: SendProgress | None = None) -> SendResult:
        return self.resume(resume) if resume else self.send_draft(self.create_draft(mail))


@pytest.fixture
def sender() -> ScriptedSender:
    return ScriptedSender()


@pytest.fixture
def ctx(sender: ScriptedSender, clock: FixedClock) -> SendingContext:
    mail = MailContext(from_address="approvals@contoso.test", public_url="https://rg.contoso.test")
    return SendingContext(instance="prod", mail=mail, sender=sender, clock=clock, worker="w1")


def new_request(make_uow: UowFactory, clock: FixedClock) -> str:
    draft = RequestDraft(
        title="Deploy payments-api",
        approvers=["alice@contoso.test", "bob@contoso.test"],
        requester="ci@contoso.test",
    )
    return create_request(make_uow(), clock, "prod", draft, created_by="t").request.id


def outbox_state(make_uow: UowFactory) -> list[tuple[str, str]]:
    with make_uow() as uow:
        return [(row.kind, row.state) for row in uow.outbox.list()]


def test_request_mail_sent_once_with_every_approver(
    make_uow: UowFactory, clock: FixedClock, sender: ScriptedSender, ctx: SendingContext
) -> None:
    request_id = new_request(make_uow, clock)
    report = send_due(make_uow, ctx)
    assert len(report.sent) == 1
    assert sender.sent == ["<draft-1@contoso.test>"]
    assert send_due(make_uow, ctx).sent == []
    with make_uow() as uow:
        assert uow.requests.find_by_message_id("<draft-1@contoso.test>") is not None
        request = uow.requests.get(request_id)
        assert request is not None


def test_crash_after_draft_resumes_without_a_second_draft(
    make_uow: UowFactory, clock: FixedClock, sender: ScriptedSender, ctx: SendingContext
) -> None:
    new_request(make_uow, clock)
    sender.fail_next = [Crash()]  # dies while creating the draft: nothing exists yet
    with pytest.raises(Crash):
        send_due(make_uow, ctx)
    assert sender.drafts == {}
    clock.advance(minutes=6)  # the claim expires; another worker takes over
    send_due(make_uow, ctx)
    assert sender.sent == ["<draft-1@contoso.test>"]


def test_crash_between_draft_and_send_sends_the_stored_draft(
    make_uow: UowFactory, clock: FixedClock, sender: ScriptedSender, ctx: SendingContext
) -> None:
    new_request(make_uow, clock)
    original_send = sender.send_draft

    def dies_before_sending(progress: SendProgress) -> SendResult:
        raise Crash

    sender.send_draft = dies_before_sending  # type: ignore[method-assign]
    with pytest.raises(Crash):
        send_due(make_uow, ctx)
    assert list(sender.drafts) == ["draft-1"]
    sender.send_draft = original_send  # type: ignore[method-assign]
    clock.advance(minutes=6)
    send_due(make_uow, ctx)
    assert sender.sent == ["<draft-1@contoso.test>"]
    assert len(sender.drafts) == 0
    assert outbox_state(make_uow) == [("request_mail", "sent")]


def test_crash_after_send_before_commit_is_not_sent_again(
    make_uow: UowFactory, clock: FixedClock, sender: ScriptedSender, ctx: SendingContext
) -> None:
    new_request(make_uow, clock)
    sender.crash_after_send = True
    with pytest.raises(Crash):
        send_due(make_uow, ctx)
    clock.advance(minutes=6)
    send_due(make_uow, ctx)
    assert sender.sent == ["<draft-1@contoso.test>"]  # found as already sent, not resent
    assert outbox_state(make_uow) == [("request_mail", "sent")]


def test_transient_errors_retry_after_the_servers_delay(
    make_uow: UowFactory, clock: FixedClock, sender: ScriptedSender, ctx: SendingContext
) -> None:
    new_request(make_uow, clock)
    sender.fail_next = [Throttled()]
    assert send_due(make_uow, ctx).retrying != []
    clock.advance(seconds=6)
    assert send_due(make_uow, ctx).sent == []  # Retry-After (7 s) not yet over
    clock.advance(seconds=2)
    assert len(send_due(make_uow, ctx).sent) == 1


def test_permanent_error_fails_once_with_its_reason(
    make_uow: UowFactory, clock: FixedClock, sender: ScriptedSender, ctx: SendingContext
) -> None:
    new_request(make_uow, clock)
    sender.fail_next = [UserError("Send As is not granted", fix="grant Send As")]
    assert len(send_due(make_uow, ctx).failed) == 1
    clock.advance(hours=2)
    assert send_due(make_uow, ctx).sent == []
    with make_uow() as uow:
        row = uow.outbox.list()[0]
        assert row.state == "failed"
        assert "Send As is not granted" in row.last_error
        assert uow.outbox.retry(row.id)
        uow.commit()
    assert len(send_due(make_uow, ctx).sent) == 1


def test_a_row_that_gave_up_and_is_retried_gets_its_attempts_again(
    make_uow: UowFactory, clock: FixedClock, sender: ScriptedSender, ctx: SendingContext
) -> None:
    new_request(make_uow, clock)
    with make_uow() as uow:
        row = uow.outbox.list()[0]
        uow.session.execute(
            update(OutboxRow).where(OutboxRow.id == row.id).values(attempts=MAX_ATTEMPTS)
        )
        uow.outbox.mark_failed(row.id, f"gave up after {MAX_ATTEMPTS} attempts")
        assert uow.outbox.retry(row.id)  # the operator fixed the cause
        uow.commit()
    sender.fail_next = [Throttled()]  # one hiccup must not fail it for good again
    report = send_due(make_uow, ctx)
    assert (report.failed, len(report.retrying)) == ([], 1)
    clock.advance(minutes=5)
    assert len(send_due(make_uow, ctx).sent) == 1


def test_lost_draft_is_failed_not_resent(
    make_uow: UowFactory, clock: FixedClock, sender: ScriptedSender, ctx: SendingContext
) -> None:
    new_request(make_uow, clock)

    def dies(progress: SendProgress) -> SendResult:
        raise Crash

    original = sender.send_draft
    sender.send_draft = dies  # type: ignore[method-assign]
    with pytest.raises(Crash):
        send_due(make_uow, ctx)
    sender.send_draft = original  # type: ignore[method-assign]
    sender.drafts.clear()  # someone deleted the draft in Outlook
    clock.advance(minutes=6)
    assert len(send_due(make_uow, ctx).failed) == 1
    assert sender.sent == []


def test_reminder_skipped_once_closed_and_cancel_notice_sent(
    make_uow: UowFactory, clock: FixedClock, sender: ScriptedSender, ctx: SendingContext
) -> None:
    draft = RequestDraft(
        title="t",
        approvers=["alice@contoso.test"],
        requester="ci@contoso.test",
        remind_after=timedelta(hours=1),
    )
    request_id = create_request(make_uow(), clock, "prod", draft, created_by="t").request.id
    send_due(make_uow, ctx)
    cancel_request(make_uow(), clock, request_id, by="ci@contoso.test")
    clock.advance(hours=1)
    report = send_due(make_uow, ctx)
    assert len(report.skipped) == 1
    assert len(report.sent) == 1
    notice = sender.sent_mail[-1]
    assert notice.to == ("alice@contoso.test",)
    assert "cancelled" in notice.text.lower()
    assert f"RG-prod-{request_id}" in notice.subject


@dataclass(frozen=True)
class Pace:
    messages: int
    per_seconds: float


def paced(
    ctx: SendingContext, messages: int, per_seconds: float, clock: FixedClock
) -> tuple[SendingContext, list[float]]:
    """``ctx`` with a send pace; its sleeps move the fixed clock (and are returned)."""
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.advance(seconds=seconds)

    return replace(ctx, pacing=Pace(messages, per_seconds), sleep=sleep), slept


def outbox_rows(make_uow: UowFactory) -> list[tuple[str, int, datetime]]:
    with make_uow() as uow:
        return [(r.state, r.attempts, r.next_attempt_at) for r in reversed(uow.outbox.list())]


def test_a_full_send_pace_sends_the_row_back_to_the_queue_without_an_attempt(
    make_uow: UowFactory, clock: FixedClock, sender: ScriptedSender, ctx: SendingContext
) -> None:
    for _ in range(3):
        new_request(make_uow, clock)
    paced_ctx, slept = paced(ctx, 2, 60, clock)
    report = send_due(make_uow, paced_ctx)
    assert (len(report.sent), len(report.retrying), slept) == (2, 1, [])
    frees = clock.now() + timedelta(seconds=60 * 1.02)  # one window (and margin) after the sends
    assert outbox_rows(make_uow)[2] == ("pending", 0, frees)
    clock.advance(seconds=30)
    assert send_due(make_uow, paced_ctx).sent == []  # not due yet
    clock.current = frees
    assert len(send_due(make_uow, paced_ctx).sent) == 1
    assert len(sender.sent) == 3


def test_a_send_slot_freeing_soon_is_waited_for(
    make_uow: UowFactory, clock: FixedClock, sender: ScriptedSender, ctx: SendingContext
) -> None:
    for _ in range(3):
        new_request(make_uow, clock)
    paced_ctx, slept = paced(ctx, 2, 5, clock)
    assert len(send_due(make_uow, paced_ctx).sent) == 3
    assert slept == [pytest.approx(5.1)]
    assert PACE_WAIT.total_seconds() > 5.1


@dataclass
class MailboxSender(ScriptedSender):
    """Drafts kept in the mailbox under the composer's Message-ID, as Graph's MIME drafts
    are, and found again by it (``DraftFinder``)."""

    created: int = 0
    lookups: int = 0

    def create_draft(self, mail: OutboundMail) -> SendProgress:
        self._maybe_fail()
        self.created += 1
        draft_id = f"draft-{self.created}"
        self.drafts[draft_id] = mail
        assert mail.message_id is not None
        return SendProgress(mail.from_address, draft_id, mail.message_id)

    def find_planned(
        self, mailbox: str, internet_message_id: str
    ) -> SendProgress | SendResult | None:
        self.lookups += 1
        for draft_id, mail in self.drafts.items():
            if mail.message_id == internet_message_id:
                return SendProgress(mailbox, draft_id, internet_message_id)
        if internet_message_id in self.sent:
            return SendResult(SendOutcome.ALREADY_SENT, internet_message_id)
        return None


def planned_row(make_uow: UowFactory) -> tuple[str | None, str | None]:
    with make_uow() as uow:
        row = uow.outbox.list()[0]
        return row.draft_id, row.internet_message_id


def test_the_message_id_is_stored_before_the_draft_and_costs_no_lookup(
    make_uow: UowFactory, clock: FixedClock, ctx: SendingContext
) -> None:
    sender = MailboxSender()
    new_request(make_uow, clock)
    stored_first: list[tuple[str | None, str | None]] = []
    original = sender.create_draft

    def create_draft(mail: OutboundMail) -> SendProgress:
        stored_first.append(planned_row(make_uow))
        return original(mail)

    sender.create_draft = create_draft  # type: ignore[method-assign]
    assert len(send_due(make_uow, replace(ctx, sender=sender)).sent) == 1
    [(draft_id, planned)] = stored_first
    assert draft_id is None
    assert str(planned).startswith("<RG-prod-")
    assert sender.sent == [planned]
    assert sender.lookups == 0


def test_a_draft_made_just_before_a_crash_is_found_and_sent_not_made_again(
    make_uow: UowFactory, clock: FixedClock, ctx: SendingContext
) -> None:
    sender = MailboxSender()
    request_id = new_request(make_uow, clock)
    original = sender.create_draft

    def dies_after_creating(mail: OutboundMail) -> SendProgress:
        original(mail)
        raise Crash  # the draft exists in the mailbox; its id was never stored

    sender.create_draft = dies_after_creating  # type: ignore[method-assign]
    with pytest.raises(Crash):
        send_due(make_uow, replace(ctx, sender=sender))
    assert planned_row(make_uow)[0] is None
    sender.create_draft = original  # type: ignore[method-assign]
    clock.advance(minutes=6)
    assert len(send_due(make_uow, replace(ctx, sender=sender)).sent) == 1
    planned = planned_row(make_uow)[1]
    assert (sender.created, sender.lookups, sender.drafts) == (1, 1, {})
    assert sender.sent == [planned]
    with make_uow() as uow:
        assert uow.requests.find_by_message_id(str(planned)) is not None
        assert uow.requests.get(request_id) is not None


def test_a_crash_before_the_draft_drafts_again_with_the_planned_message_id(
    make_uow: UowFactory, clock: FixedClock, ctx: SendingContext
) -> None:
    sender = MailboxSender(fail_next=[Crash()])  # dies while asking for the draft: none made
    new_request(make_uow, clock)
    with pytest.raises(Crash):
        send_due(make_uow, replace(ctx, sender=sender))
    planned = planned_row(make_uow)[1]
    clock.advance(minutes=6)
    assert len(send_due(make_uow, replace(ctx, sender=sender)).sent) == 1
    assert (sender.created, sender.lookups) == (1, 1)
    assert sender.sent == [planned]
