"""The reader's round over real storage: disposals batched across pages, debts paid later.

The mailbox is a fake (the port is small and Graph/IMAP have their own tests against real
servers); the ledger, requests and cursor are real, on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

import pytest

from replygate.db.uow import SqlAlchemyUnitOfWork
from replygate.errors import TransportFailure
from replygate.services.ingesting import IngestContext
from replygate.services.mail_ports import (
    Address,
    ChangesPage,
    Disposal,
    DisposalResult,
    RemoteMessage,
)
from replygate.services.reading import DisposalPolicy, read_folder
from replygate.services.requesting import RequestDraft, create_request
from tests.conftest import FixedClock

UowFactory = Callable[[], SqlAlchemyUnitOfWork]
BOX = "release-gate@contoso.com"
APPROVER = "alice@contoso.com"
AUTH = (
    "spf=pass smtp.mailfrom=contoso.com; dkim=pass header.d=contoso.com;"
    " dmarc=pass action=none header.from=contoso.com"
)


def request_id(i: int) -> str:
    return f"{i:010d}"


def reply(i: int, at: datetime) -> RemoteMessage:
    subject = f"RE: [RG-prod-{request_id(i)}] Deploy"
    headers = (
        ("Received", "from mx.contoso.com by x.prod.outlook.com"),
        ("Authentication-Results", AUTH),
        ("From", f"Alice <{APPROVER}>"),
        ("To", BOX),
        ("Subject", subject),
        ("Message-ID", f"<reply{i}@contoso.com>"),
    )
    return RemoteMessage(
        id=f"m{i}",
        internet_message_id=f"<reply{i}@contoso.com>",
        subject=subject,
        from_=(Address(APPROVER, "Alice"),),
        sender=None,
        to=(Address(BOX),),
        cc=(),
        reply_to=(),
        received_at=at,
        is_draft=False,
        headers=headers,
        body_text="Approved\r\n",
    )


class PagedMailbox:
    """Serves fixed pages; records each dispose call; can fail on a given page."""

    mailbox = BOX

    def __init__(self, pages: list[list[RemoteMessage]], fail_on_page: int | None = None):
        self.pages = pages
        self.fail_on_page = fail_on_page
        self.disposed: list[list[str]] = []

    def resolve_folder(self, path: str) -> str:
        return "folder-1"

    def changes(
        self, folder_id: str, cursor: str | None, *, since: datetime | None = None
    ) -> ChangesPage:
        index = int(cursor or 0)
        if index == self.fail_on_page:
            raise TransportFailure("the connection dropped")
        more = index + 1 < len(self.pages)
        return ChangesPage(self.pages[index] if self.pages else [], [], str(index + 1), more)

    def fetch_mime(self, message_id: str) -> bytes:
        raise AssertionError("every listed message carries its headers and body")

    def dispose(self, items: Sequence[Disposal]) -> list[DisposalResult]:
        self.disposed.append([item.message_id for item in items])
        return [DisposalResult(item.message_id, True) for item in items]


@pytest.fixture
def ctx(clock: FixedClock) -> IngestContext:
    return IngestContext(
        instance="prod",
        mailbox=BOX,
        folder="Inbox/Approvals",
        clock=clock,
        internal_domains=frozenset({"contoso.com"}),
    )


def pages_of_replies(
    make_uow: UowFactory, clock: FixedClock, sizes: list[int]
) -> list[list[RemoteMessage]]:
    total = sum(sizes)
    for i in range(total):
        draft = RequestDraft(
            title="Deploy",
            approvers=[APPROVER],
            requester="jonas@contoso.com",
            expires_in=timedelta(days=1),
        )
        create_request(
            make_uow(), clock, "prod", draft, created_by="t", new_id=lambda i=i: request_id(i)
        )
    later = clock.now() + timedelta(minutes=1)
    messages = [reply(i, later) for i in range(total)]
    pages, start = [], 0
    for size in sizes:
        pages.append(messages[start : start + size])
        start += size
    return pages


def disposals(make_uow: UowFactory) -> list[str]:
    with make_uow() as uow:
        return sorted(row.disposal for row in uow.ledger.list(limit=1000))


def test_disposals_go_in_full_batches_across_pages(
    make_uow: UowFactory, clock: FixedClock, ctx: IngestContext
) -> None:
    mailbox = PagedMailbox(pages_of_replies(make_uow, clock, [15, 15, 15]))
    report = read_folder(make_uow, ctx, mailbox, DisposalPolicy("move", "done"))
    assert (report.read, report.decided, report.disposed) == (45, 45, 45)
    # A full batch once 20 are owed (page 2); the rest at the end (the adapter splits 25
    # into 20 + 5): 3 round trips, where disposing page by page took 6 (15 = 2 batches each).
    assert [len(batch) for batch in mailbox.disposed] == [20, 25]
    assert sorted(m for batch in mailbox.disposed for m in batch) == sorted(
        f"m{i}" for i in range(45)
    )
    assert set(disposals(make_uow)) == {"moved"}
    with make_uow() as uow:
        assert uow.folders.ensure(BOX, "Inbox/Approvals", clock.now()).cursor == "3"


def test_a_round_that_fails_midway_leaves_its_debts_to_the_next_round(
    make_uow: UowFactory, clock: FixedClock, ctx: IngestContext
) -> None:
    pages = pages_of_replies(make_uow, clock, [15, 15, 15])
    broken = PagedMailbox(pages, fail_on_page=2)
    with pytest.raises(TransportFailure):
        read_folder(make_uow, ctx, broken, DisposalPolicy("move", "done"))
    assert [len(batch) for batch in broken.disposed] == [20]  # 10 of page 2 still owed
    assert disposals(make_uow).count("pending") == 10

    healed = PagedMailbox(pages)
    report = read_folder(make_uow, ctx, healed, DisposalPolicy("move", "done"))
    # The owed 10 first, then page 3 (the cursor had passed pages 1 and 2) at the end.
    assert [len(batch) for batch in healed.disposed] == [10, 15]
    assert report.read == 15
    assert set(disposals(make_uow)) == {"moved"}


def test_a_lost_lease_disposes_of_nothing_more(
    make_uow: UowFactory, clock: FixedClock, ctx: IngestContext
) -> None:
    mailbox = PagedMailbox(pages_of_replies(make_uow, clock, [15, 15]))
    answers = iter([True, True, False])  # page 1, page 2, then the disposal of the rest
    report = read_folder(
        make_uow, ctx, mailbox, DisposalPolicy("move", "done"), lambda: next(answers, False)
    )
    assert report.lease_lost
    assert mailbox.disposed == []
    assert disposals(make_uow).count("pending") == 30  # the next holder pays them
