"""The database fails under a running worker: PostgreSQL stopped and started, SQLite's
disk full. The worker says what failed, keeps running, loses and repeats nothing, and
resumes by itself once the database is back."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from m365emu.testing import RunningEmulator
from replygate.db.tables import OutboxRow
from replygate.domain.model import Policy, PolicyKind, RequestState
from replygate.services.requesting import Created, RequestDraft, create_request
from tests.support import pgcluster
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
from tests.support.workers import WorkerPool, WorkerProcess, wait_for

pytestmark = pytest.mark.slow
FOLDER = "Inbox/Approvals"
APPROVERS = ("alice@contoso.test", "bob@contoso.test")
ENV = {"RG_TEST_FAST": "1", "RG_TEST_CLAIM_SECONDS": "5"}


def make_requests(site: Site, count: int) -> list[Created]:
    draft = RequestDraft(
        title="Deploy orders-api",
        approvers=APPROVERS,
        requester="ci@contoso.test",
        policy=Policy(PolicyKind.ALL),
        expires_in=timedelta(hours=4),
    )
    container = site.container
    return [create_request(container.uow(), container.clock, INSTANCE, draft, created_by="ci")
            for _ in range(count)]  # fmt: skip


def replies_to(created: list[Created], padding: int = 0) -> tuple[list[Reply], list[bytes]]:
    replies, raws = [], []
    for made in created:
        for approver in APPROVERS:
            message_id, raw = reply_mail(approver, made, "Approved")
            if padding:  # a longer quote, so storing the reply needs fresh database pages
                raw += b"> " + b"x" * 76 + b"\r\n" * (padding // 80)
            replies.append(Reply(message_id, made.request.id, approver))
            raws.append(raw)
    return replies, raws


def sent_rows(site: Site) -> int:
    with site.container.uow() as uow:
        query = select(func.count()).select_from(OutboxRow).where(OutboxRow.state == "sent")
        return int(uow.session.scalar(query) or 0)


def prove(
    site: Site,
    control: httpx.Client,
    created: list[Created],
    replies: list[Reply],
    untouched: list[dict[str, object]],
) -> None:
    with site.container.uow() as uow:
        states = {uow.requests.get(c.request.id).state for c in created}  # type: ignore[union-attr]
    assert states == {RequestState.APPROVED}
    kinds = check_sent_exactly_once(site, control, created)
    assert kinds == {"request_mail": len(created), "answer_mail": len(replies)}
    check_applied_exactly_once(site, replies)
    check_disposed_exactly_once(control, FOLDER, replies, untouched)


def untouched_mail(emu: RunningEmulator, control: httpx.Client) -> list[dict[str, object]]:
    deliver(emu, FOLDER, [unrelated_mail(1), foreign_mail()])
    return listing(control, SHARED, FOLDER)


@pytest.mark.postgres
@pytest.mark.skipif(not pgcluster.available(), reason="PostgreSQL's server binaries are missing")
def test_postgresql_stopped_and_started_under_a_running_worker(
    emu: RunningEmulator, control: httpx.Client, tmp_path: Path
) -> None:
    """On a private cluster (never the shared server), stopped for 4 s mid-run."""
    with pgcluster.temporary_cluster() as database:
        site = make_site(emu, tmp_path / "data", FOLDER, database.url)
        try:
            untouched = untouched_mail(emu, control)
            created = make_requests(site, 10)
            replies, raws = replies_to(created)
            deliver(emu, FOLDER, raws[:10])
            with WorkerPool(tmp_path / "logs", site.worker_env(**ENV)) as pool:
                worker = pool.start("worker")
                wait_for(lambda: sent_rows(site) >= 5, 60, "the worker to send some mail")
                database.stop()
                try:
                    deliver(emu, FOLDER, raws[10:])  # arrives while the database is down
                    wait_for(lambda: "the database failed" in worker.log(), 20, "the error")
                    assert worker.process.poll() is None, worker.log()[-3000:]
                finally:
                    database.start()
                wait_for(lambda: not unsettled(site, replies), 90, "the worker to resume")
                assert worker.stop() == 0
            log = worker.log()
            assert log.count("the database failed (the loops retry)") <= 6, log[-3000:]
            prove(site, control, created, replies, untouched)
        finally:
            site.container.engine.dispose()


@contextlib.contextmanager
def small_tmpfs(megabytes: int) -> Iterator[Path]:
    """A tmpfs of a few MB (root only); unmounted and removed afterwards."""
    mount_point = Path(tempfile.mkdtemp(prefix="rg-full-"))
    try:
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={megabytes}m", "tmpfs", str(mount_point)],
            capture_output=True,
            check=False,
            timeout=30,
        )
        if mounted.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
        try:
            yield mount_point
        finally:
            subprocess.run(["umount", "-l", str(mount_point)], check=False, timeout=30)
    finally:
        os.rmdir(mount_point)


def fill(directory: Path) -> Path:
    """Take every free byte (unbuffered, so nothing is left to flush on close)."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        with contextlib.suppress(OSError):  # ENOSPC: the disk is full
            while True:
                os.write(fd, b"\0" * 4096)
    finally:
        os.close(fd)
    return filler


def integrity(database: Path) -> str:
    with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as db:
        return str(db.execute("PRAGMA integrity_check").fetchone()[0])


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")
def test_sqlite_disk_full_under_a_running_worker(
    emu: RunningEmulator, control: httpx.Client, tmp_path: Path
) -> None:
    with small_tmpfs(8) as disk:
        site = make_site(emu, disk / "data", FOLDER)
        worker: WorkerProcess | None = None
        try:
            untouched = untouched_mail(emu, control)
            created = make_requests(site, 5)
            replies, raws = replies_to(created, padding=20_000)
            with WorkerPool(tmp_path / "logs", site.worker_env(**ENV)) as pool:
                worker = pool.start("worker")
                wait_for(lambda: sent_rows(site) == len(created), 60, "the request mails")
                filler = fill(disk)
                deliver(emu, FOLDER, raws)
                wait_for(lambda: "database or disk is full" in worker.log(), 30, "the error")
                assert worker.process.poll() is None, worker.log()[-3000:]
                assert integrity(disk / "data" / "replygate.db") == "ok"
                filler.unlink()
                wait_for(lambda: not unsettled(site, replies), 90, "the worker to resume")
                assert worker.stop() == 0
            assert "the database failed" in worker.log() or "refused the commit" in worker.log()
            prove(site, control, created, replies, untouched)
        finally:
            site.container.engine.dispose()
        assert integrity(disk / "data" / "replygate.db") == "ok"
