"""The reader loop's use case over IMAP: a real Dovecot and a real database (SQLite and
PostgreSQL). A reply decides its request and is moved away; other mail is left as it was."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from replygate.db.uow import SqlAlchemyUnitOfWork
from replygate.domain.model import RequestState
from replygate.services.ingesting import IngestContext
from replygate.services.reading import DisposalPolicy, read_folder
from replygate.services.requesting import RequestDraft, create_request
from tests.conftest import FixedClock
from tests.integration.imap.conftest import MakeMailbox
from tests.integration.imap.dovecot import Dovecot
from tests.integration.services.test_ingesting import SAMPLE_APPROVERS, sample

UowFactory = Callable[[], SqlAlchemyUnitOfWork]
APPROVALS = "INBOX.Approvals"
ARRIVED = '"06-Jan-2026 10:00:00 +0000"'  # after the folder is configured (clock: 5 Jan)
BEFORE = '"01-Jan-2026 10:00:00 +0000"'


def unrelated(n: int, subject: str) -> bytes:
    return (
        f"Received: from mx by gate; Tue, 6 Jan 2026 10:00:00 +0000\r\n"
        f"From: Someone <someone{n}@contoso.com>\r\nTo: release-gate@contoso.com\r\n"
        f"Subject: {subject}\r\nMessage-ID: <unrelated-{n}@contoso.com>\r\n"
        f"Date: Tue, 6 Jan 2026 10:00:00 +0000\r\n\r\nAPPROVE\r\n"
    ).encode()


def append(dovecot: Dovecot, user: str, raw: bytes, when: str = ARRIVED) -> None:
    with dovecot.client(user) as imap:
        typ, data = imap.append(APPROVALS, None, when, raw)
        assert typ == "OK", data


def test_a_reply_decides_is_moved_and_other_mail_stays_untouched(
    dovecot: Dovecot,
    user: str,
    make_mailbox: MakeMailbox,
    make_uow: UowFactory,
    clock: FixedClock,
) -> None:
    draft = RequestDraft(
        title="Deploy payments-api 2.3.1 to production",
        approvers=SAMPLE_APPROVERS,
        requester="jonas.berg@contoso.com",
        expires_in=timedelta(days=60),
    )
    create_request(make_uow(), clock, "prod", draft, created_by="t", new_id=lambda: "7KQ2M9XW4D")
    dovecot.create(user, APPROVALS)
    append(dovecot, user, unrelated(1, "Lunch on Friday?"))
    append(dovecot, user, sample("001"))  # Priya approves
    append(dovecot, user, unrelated(2, "RE: [RG-dev-7KQ2M9XW4D] another instance"))
    append(dovecot, user, unrelated(3, "RE: [RG-prod-7KQ2M9XW4D] old"), when=BEFORE)
    others = dovecot.uids(user, APPROVALS)
    del others[1]  # the reply

    ctx = IngestContext(
        instance="prod",
        mailbox="release-gate@contoso.com",
        folder="Inbox/Approvals",
        clock=clock,
        internal_domains=frozenset({"contoso.com"}),
    )
    box = make_mailbox(page_size=2)
    policy = DisposalPolicy("move", folder_id=box.resolve_folder("Deleted Items"))

    report = read_folder(make_uow, ctx, box, policy)

    assert (report.read, report.decided, report.disposed) == (4, 1, 1)
    with make_uow() as uow:
        request = uow.requests.get("7KQ2M9XW4D")
        assert request is not None
        assert request.state is RequestState.APPROVED
        assert request.decisions[0].approver == "priya.nair@contoso.com"
    assert dovecot.uids(user, APPROVALS) == others  # unrelated mail: still there...
    for uid in others:
        assert "\\Seen" not in dovecot.flags(user, APPROVALS, uid)  # ...and unread
    assert len(dovecot.uids(user, "Trash")) == 1

    # The next round reads nothing new: the cursor was stored after the pages.
    assert read_folder(make_uow, ctx, box, policy).read == 0

    # The folder is recreated (new UIDVALIDITY) with the same reply: a resync, no new decision.
    with dovecot.client(user) as imap:
        imap.delete(APPROVALS)
        imap.create(APPROVALS)
    append(dovecot, user, sample("001"))
    again = read_folder(make_uow, ctx, box, policy)
    assert again.resynced
    assert again.read == 1  # the ledger knows it: a duplicate, nothing is applied again
    with make_uow() as uow:
        request = uow.requests.get("7KQ2M9XW4D")
        assert request is not None
        assert len(request.decisions) == 1
