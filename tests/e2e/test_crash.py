"""A worker SIGKILLed at each step of the mail flow, then restarted: nothing twice.

Each run: two requests to send, two approvers' replies and mail that is not ours in the
reply folder. The worker process dies at the chosen point (a test hook, never in src/),
the state at death is checked to prove the point was reached, and a fresh worker
finishes the work. Then: each request mail sent once, each reply applied once (one
ledger row, one decision), each reply disposed of once, nothing else in the folder
touched, and no draft left in the shared mailbox.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from m365emu.testing import RunningEmulator
from replygate.db.tables import InboundLedgerRow, MailFolderRow, OutboxRow
from replygate.domain.model import RequestState
from replygate.services.requesting import Created, RequestDraft, create_request
from tests.support.hooked_worker import POINTS
from tests.support.mailflow import (
    INSTANCE,
    SHARED,
    Site,
    deliver,
    foreign_mail,
    listing,
    make_site,
    reply_mail,
    unrelated_mail,
)
from tests.support.proof import (
    Reply,
    check_applied_exactly_once,
    check_disposed_exactly_once,
    check_sent_exactly_once,
    unsettled,
)
from tests.support.workers import WorkerPool, wait_for

FOLDER = "Inbox/Approvals"


def outbox_first(site: Site) -> tuple[str, str | None, str | None]:
    """State, draft id and (planned) Message-ID of the first request mail's row."""
    with site.container.uow() as uow:
        row = uow.session.scalars(select(OutboxRow).order_by(OutboxRow.id)).first()
        assert row is not None
        return row.state, row.draft_id, row.internet_message_id


def ledger_disposals(site: Site, replies: list[Reply]) -> list[str]:
    keys = [r.message_id for r in replies]
    with site.container.uow() as uow:
        query = select(InboundLedgerRow.disposal).where(InboundLedgerRow.message_key.in_(keys))
        return sorted(uow.session.scalars(query))


def at_death(point: str, site: Site, control: httpx.Client, replies: list[Reply]) -> None:
    """The state the worker left: proof that it died exactly where it was asked to."""
    state, draft_id, planned = outbox_first(site)
    in_folder = {m["internetMessageId"] for m in listing(control, SHARED, FOLDER)}
    in_deleted = {m["internetMessageId"] for m in listing(control, SHARED, "deleteditems")}
    reply_ids = {r.message_id for r in replies}
    checks: dict[str, Callable[[], bool]] = {
        # the draft is in the mailbox under the planned Message-ID, the row has no draft id
        "after_draft": lambda: (
            state == "claimed"
            and draft_id is None
            and [m["internetMessageId"] for m in listing(control, SHARED, "drafts")] == [planned]
            and listing(control, "alice@contoso.test", "inbox") == []
        ),
        # the draft is recorded on the row, nothing reached the approvers
        "before_send": lambda: (
            state == "claimed"
            and draft_id is not None
            and listing(control, "alice@contoso.test", "inbox") == []
        ),
        # sent, but the row does not know it yet
        "after_send": lambda: (
            state == "claimed" and len(listing(control, "alice@contoso.test", "inbox")) == 1
        ),
        # outcomes committed, replies still in the folder
        "before_dispose": lambda: (
            ledger_disposals(site, replies) == ["pending", "pending"] and reply_ids <= in_folder
        ),
        # moved, but the ledger still owes the disposal
        "after_dispose": lambda: (
            ledger_disposals(site, replies) == ["pending", "pending"] and reply_ids <= in_deleted
        ),
        # outcomes committed, the delta cursor never saved (disposals come after the cursor:
        # they wait for full $batch loads, the ledger keeping what is owed)
        "before_cursor": lambda: (
            ledger_disposals(site, replies) == ["pending", "pending"]
            and folder_cursor(site) is None
            and reply_ids <= in_folder
        ),
    }
    assert checks[point](), f"the worker did not die at {point}"


def folder_cursor(site: Site) -> str | None:
    with site.container.uow() as uow:
        return uow.session.scalar(select(MailFolderRow.cursor).where(MailFolderRow.path == FOLDER))


def requests(site: Site) -> list[Created]:
    drafts = [
        RequestDraft(
            title="Deploy payments-api 2.3.1",
            approvers=["alice@contoso.test", "bob@contoso.test"],
            requester="ci@contoso.test",
            expires_in=timedelta(hours=4),
        ),
        RequestDraft(
            title="Rotate orders-db credentials",
            approvers=["alice@contoso.test"],
            requester="ci@contoso.test",
            expires_in=timedelta(hours=4),
        ),
    ]
    container = site.container
    return [create_request(container.uow(), container.clock, INSTANCE, d, created_by="ci")
            for d in drafts]  # fmt: skip


@pytest.fixture
def site(emu: RunningEmulator, tmp_path: Path) -> Iterator[Site]:
    made = make_site(emu, tmp_path / "data", FOLDER)
    yield made
    made.container.engine.dispose()


@pytest.mark.parametrize("point", POINTS)  # every crash point the hooked worker has
def test_killed_worker_restarts_without_doing_anything_twice(
    site: Site, emu: RunningEmulator, control: httpx.Client, tmp_path: Path, point: str
) -> None:
    created = requests(site)
    approve = reply_mail("alice@contoso.test", created[0], "Approved")
    reject = reply_mail("alice@contoso.test", created[1], "Rejected, not before the freeze")
    deliver(emu, FOLDER, [unrelated_mail(1), approve[1], foreign_mail(), reject[1]])
    deliver(emu, FOLDER, [unrelated_mail(2)])
    replies = [
        Reply(approve[0], created[0].request.id, "alice@contoso.test"),
        Reply(reject[0], created[1].request.id, "alice@contoso.test"),
    ]
    ours = {r.message_id for r in replies}
    untouched = [m for m in listing(control, SHARED, FOLDER) if m["internetMessageId"] not in ours]
    assert len(untouched) == 3

    env = site.worker_env(RG_TEST_FAST="1")
    # A short lease: the dead worker's hold on the folder lapses, and the survivor takes
    # it over, within 3 s (the default is 60 s).
    with WorkerPool(tmp_path / "logs", env, ("worker", "--lease-seconds", "3")) as pool:
        doomed = pool.start("doomed", RG_TEST_CRASH_AT=point)
        assert doomed.wait_exit(90) == -9, doomed.log()[-3000:]
        assert f"SIGKILL at {point}" in doomed.log()
        at_death(point, site, control, replies)

        survivor = pool.start("survivor")
        wait_for(lambda: not unsettled(site, replies), 90, "the restarted worker to finish")
        assert survivor.stop() == 0, survivor.log()[-3000:]

    with site.container.uow() as uow:
        states = [uow.requests.get(c.request.id) for c in created]
    assert [s.state if s else None for s in states] == [
        RequestState.APPROVED,
        RequestState.REJECTED,
    ]
    kinds = check_sent_exactly_once(site, control, created)
    assert kinds == {"request_mail": 2, "answer_mail": 2}  # the requests and confirmations
    check_applied_exactly_once(site, replies)
    check_disposed_exactly_once(control, FOLDER, replies, untouched)
    assert listing(control, SHARED, "drafts") == []  # no orphan draft, whatever the point
