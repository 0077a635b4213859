"""Three senders, one From mailbox, one send pace: kept together through the database.

Exchange Online accepts 30 messages per minute per mailbox, however many replicas send.
Each sender here has its own `GraphMailSender` (and so its own in-process window) as a
separate replica would; the pace is scaled down to 5 per 2 s. With the pace kept only
per process the three would send up to 15 per 2 s.

The witness is the emulator itself: the moment each send reaches its handler (this test
process runs the emulator, so a wrapper around it sees every send, whichever process
made it). No 2 s window may hold more than 5, no request may be throttled, and each
request mail must be sent exactly once.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from m365emu.delivery import MailService
from m365emu.testing import RunningEmulator
from replygate import mailflow
from replygate.bootstrap import Container, build
from replygate.config import load_settings
from replygate.db.tables import OutboxRow
from replygate.graph.connection import connect
from replygate.graph.sender import Pacing
from replygate.services.requesting import Created, RequestDraft, create_request
from replygate.worker.loops import Worker
from tests.support.mailflow import INSTANCE, Site, make_site
from tests.support.proof import check_sent_exactly_once
from tests.support.workers import WorkerPool, wait_for

FOLDER = "Inbox/Approvals"
MESSAGES, PER_SECONDS = 5, 2.0
REQUESTS = 36
BUDGET = 120.0  # seconds; the pace alone needs about 36 / 5 * 2 = 15


@pytest.fixture
def arrivals(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """When each draft send reached the emulator (monotonic seconds)."""
    seen: list[float] = []
    original = MailService.send_draft

    def send_draft(self: MailService, *args: Any) -> Any:
        seen.append(time.monotonic())
        return original(self, *args)

    monkeypatch.setattr(MailService, "send_draft", send_draft)
    return seen


def most_in_a_window(times: list[float], seconds: float) -> int:
    ordered = sorted(times)
    most, start = 0, 0
    for end, at in enumerate(ordered):
        while at - ordered[start] >= seconds:
            start += 1
        most = max(most, end - start + 1)
    return most


def create_requests(site: Site) -> list[Created]:
    container = site.container
    return [
        create_request(
            container.uow(),
            container.clock,
            INSTANCE,
            RequestDraft(
                title=f"Deploy service-{index}",
                approvers=["alice@contoso.test", "bob@contoso.test"],
                requester="ci@contoso.test",
                expires_in=timedelta(hours=4),
            ),
            created_by="ci",
        )
        for index in range(REQUESTS)
    ]


def open_rows(site: Site) -> int:
    with site.container.uow() as uow:
        query = select(func.count()).where(OutboxRow.state.in_(("pending", "claimed")))
        return int(uow.session.scalar(query) or 0)


def senders_of_sent_rows(site: Site) -> set[str | None]:
    with site.container.uow() as uow:
        query = select(OutboxRow.claimed_by).where(OutboxRow.state == "sent").distinct()
        return set(uow.session.scalars(query))


def prove(site: Site, control: httpx.Client, created: list[Created], arrivals: list[float]) -> None:
    assert len(senders_of_sent_rows(site)) == 3, "every sender sent some of the mail"
    assert len(arrivals) == REQUESTS
    # full windows (so the pace was what held the senders back), never one more
    assert most_in_a_window(arrivals, PER_SECONDS) == MESSAGES
    throttled = control.get("/_emu/counters").json()["totals"]["throttled"]
    assert throttled == 0
    assert check_sent_exactly_once(site, control, created) == {"request_mail": REQUESTS}


@pytest.mark.postgres
def test_three_worker_processes_keep_one_send_pace(
    emu: RunningEmulator,
    control: httpx.Client,
    postgres_url: str,
    tmp_path: Path,
    arrivals: list[float],
) -> None:
    site = make_site(emu, tmp_path / "data", FOLDER, postgres_url)
    env = site.worker_env(
        RG_TEST_FAST="1",
        RG_TEST_PACING=f"{MESSAGES}/{PER_SECONDS}",
        RG_TEST_INTERVAL="0.2",
        # a claim outlives any wait for a send slot (10 s at most per row)
        RG_TEST_CLAIM_SECONDS="300",
    )
    try:
        with WorkerPool(tmp_path / "logs", env) as pool:
            workers = [pool.start(f"w{i}") for i in range(3)]
            for worker in workers:
                worker.wait_running()
            created = create_requests(site)
            wait_for(lambda: open_rows(site) == 0, BUDGET, "every request mail to be sent")
            for worker in workers:
                assert worker.stop() == 0, worker.log()[-3000:]
        prove(site, control, created, arrivals)
    finally:
        site.container.engine.dispose()


def replica(site: Site) -> Container:
    """Another process's view of the site: its own engine, its own Graph sender."""
    extra: dict[str, Any] = {"database_url": site.database_url} if site.database_url else {}
    settings = load_settings(
        data_dir=site.data_dir,
        instance=INSTANCE,
        ca_bundle=site.emu.ca_file,
        public_url="https://127.0.0.1:8443",
        **extra,
    )
    return build(settings)


def run_together(workers: list[Worker], done: Callable[[], bool]) -> list[str]:
    """Rounds of every worker on its own thread until ``done``; the errors they reported."""
    stop = threading.Event()
    errors: list[str] = []

    def rounds(worker: Worker) -> None:
        while not stop.is_set():
            report = worker.run_once(read=False)
            errors.extend(f"{worker.worker_id} {k}: {v}" for k, v in report.errors.items())
            stop.wait(0.1)

    threads = [threading.Thread(target=rounds, args=(w,)) for w in workers]
    for thread in threads:
        thread.start()
    try:
        wait_for(done, BUDGET, "every request mail to be sent")
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)
    return errors


def test_three_senders_in_one_process_keep_one_send_pace(
    emu: RunningEmulator,
    control: httpx.Client,
    database_url: str,
    tmp_path: Path,
    arrivals: list[float],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The same on either database with one process (SQLite's case): three workers, each
    with its own engine and Graph sender, on threads."""
    pacing = Pacing(messages=MESSAGES, per_seconds=PER_SECONDS)
    monkeypatch.setattr(mailflow, "connect", functools.partial(connect, pacing=pacing))
    site = make_site(emu, tmp_path / "data", FOLDER, database_url)
    replicas = [replica(site) for _ in range(3)]
    workers = [Worker(c, worker_id=f"replica-{i}") for i, c in enumerate(replicas)]
    try:
        created = create_requests(site)
        errors = run_together(workers, lambda: open_rows(site) == 0)
        assert errors == []
        prove(site, control, created, arrivals)
    finally:
        for worker, container in zip(workers, replicas, strict=True):
            worker.close()
            container.engine.dispose()
        site.container.engine.dispose()
