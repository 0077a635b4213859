"""Three worker processes on one PostgreSQL database, one SIGKILLed every few seconds.

N replies (five approvers x M requests, every reply a decision) and mail that is not
ours wait in the reply folder; M request mails wait in the outbox. Three `replygate
worker` processes (the emulator serves them over HTTPS from this test process) work it
off while a random one is SIGKILLed and restarted every 2-4 s (1.5-3 s in the
smaller default variant: 150 replies for 30 requests). At the end:

* every request mail was sent exactly once (one copy in Sent Items per outbox row, one
  in each approver's inbox), and each confirmation too;
* every reply was applied exactly once: one ledger row, one decision naming it;
* every reply is in Deleted Items exactly once, and the reply folder holds exactly the
  mail that is not ours, untouched.
"""

from __future__ import annotations

import logging
import os
import random
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from m365emu.testing import RunningEmulator, start_emulator
from replygate.db import leases
from replygate.domain.model import Policy, PolicyKind, RequestState
from replygate.services.requesting import Created, RequestDraft, create_request
from tests.support.mailflow import (
    APPROVERS,
    INSTANCE,
    SHARED,
    Site,
    deliver,
    foreign_mail,
    listing,
    make_site,
    reply_mail,
    tenant_with_five_approvers,
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

pytestmark = pytest.mark.postgres
log = logging.getLogger(__name__)
FOLDER = "Inbox/Approvals"
LEASE = "4"  # seconds: a killed reader's folder is taken over this long after its death
# Outbox claims of a killed worker come back after 15 s (5 minutes in production): long
# enough that a live worker always finishes its batch of 10 first.
ENV = {"RG_TEST_FAST": "1", "RG_TEST_CLAIM_SECONDS": "15", "RG_TEST_INTERVAL": "0.2"}


@pytest.fixture
def emu(tmp_path: Path) -> Iterator[RunningEmulator]:
    with start_emulator(tenant_with_five_approvers(), workdir=tmp_path / "emu") as running:
        yield running


@pytest.fixture
def site(emu: RunningEmulator, postgres_url: str, tmp_path: Path) -> Iterator[Site]:
    made = make_site(emu, tmp_path / "data", FOLDER, postgres_url)
    yield made
    made.container.engine.dispose()


@dataclass
class Backlog:
    created: list[Created]
    replies: list[Reply]
    untouched: list[dict[str, object]]


def backlog(site: Site, control: httpx.Client, requests: int) -> Backlog:
    container = site.container
    draft = RequestDraft(
        title="Deploy payments-api",
        approvers=APPROVERS,
        requester="ci@contoso.test",
        policy=Policy(PolicyKind.ALL),
        expires_in=timedelta(hours=4),
    )
    created = [
        create_request(container.uow(), container.clock, INSTANCE, draft, created_by="ci")
        for _ in range(requests)
    ]
    replies: list[Reply] = []
    raws: list[bytes] = [unrelated_mail(i) for i in range(5)] + [foreign_mail()]
    for made in created:
        for approver in APPROVERS:
            message_id, raw = reply_mail(approver, made, "Approved")
            replies.append(Reply(message_id, made.request.id, approver))
            raws.append(raw)
    raws += [unrelated_mail(i) for i in range(5, 10)]
    deliver(site.emu, FOLDER, raws)
    ours = {r.message_id for r in replies}
    untouched = [m for m in listing(control, SHARED, FOLDER) if m["internetMessageId"] not in ours]
    assert len(untouched) == 11
    return Backlog(created, replies, untouched)


def run_with_kills(
    site: Site, work: Backlog, logs: Path, budget: float, every: tuple[float, float]
) -> tuple[int, float]:
    """Three workers until the backlog is done, a random one SIGKILLed (and restarted) at
    random intervals within ``every`` seconds; returns (kills, seconds)."""
    seed = int(os.environ.get("RG_TEST_SEED", str(time.time_ns() % 10_000)))
    chance = random.Random(seed)
    kills = 0
    started = time.monotonic()
    with WorkerPool(logs, site.worker_env(**ENV), ("worker", "--lease-seconds", LEASE)) as pool:
        workers = [pool.start(f"w{i}") for i in range(3)]
        next_kill = started + chance.uniform(*every)
        while unsettled(site, work.replies):
            now = time.monotonic()
            assert now - started < budget, (
                f"seed {seed}: not done after {budget:.0f} s and {kills} kills: "
                f"{unsettled(site, work.replies)}\n" + workers[0].log()[-2000:]
            )
            if now >= next_kill:
                victim = chance.randrange(3)
                assert workers[victim].kill() == -9 or workers[victim].process.returncode == -9
                kills += 1
                workers[victim] = pool.start(f"w{victim}")
                next_kill = now + chance.uniform(*every)
            time.sleep(0.2)
        elapsed = time.monotonic() - started
        for worker in workers:
            worker.stop()
    log.warning("seed %s: %s kills, done in %.1f s", seed, kills, elapsed)
    return kills, elapsed


def prove(site: Site, control: httpx.Client, work: Backlog) -> None:
    with site.container.uow() as uow:
        states = {uow.requests.get(c.request.id).state for c in work.created}  # type: ignore[union-attr]
    assert states == {RequestState.APPROVED}
    kinds = check_sent_exactly_once(site, control, work.created)
    assert kinds == {"request_mail": len(work.created), "answer_mail": len(work.replies)}
    check_applied_exactly_once(site, work.replies)
    check_disposed_exactly_once(control, FOLDER, work.replies, work.untouched)


@pytest.mark.parametrize(
    ("requests", "budget", "every"),
    [(30, 150, (1.5, 3)), pytest.param(200, 270, (2, 4), marks=pytest.mark.slow)],
)
def test_three_workers_killed_at_random_apply_everything_exactly_once(
    site: Site,
    control: httpx.Client,
    tmp_path: Path,
    requests: int,
    budget: float,
    every: tuple[float, float],
) -> None:
    work = backlog(site, control, requests)
    kills, _ = run_with_kills(site, work, tmp_path / "logs", budget, every)
    assert kills >= 2
    prove(site, control, work)


WORKER_ID = re.compile(r"replygate worker (\S+) running")


def worker_id(worker: WorkerProcess) -> str:
    found = WORKER_ID.search(worker.log())
    assert found is not None
    return found.group(1)


def test_a_dead_readers_folder_is_taken_over_within_one_lease_period(
    site: Site, emu: RunningEmulator, tmp_path: Path
) -> None:

    def holder() -> str | None:
        with site.container.uow() as uow:
            return leases.holder(uow.session, SHARED, FOLDER)[0]

    env = site.worker_env(**ENV)
    with WorkerPool(tmp_path / "logs", env, ("worker", "--lease-seconds", "4")) as pool:
        first = pool.start("first")
        first.wait_running()
        wait_for(lambda: holder() == worker_id(first), 30, "the first worker to hold the folder")
        second = pool.start("second")
        second.wait_running()
        time.sleep(6)  # a few rounds: the second worker must not read meanwhile
        assert holder() == worker_id(first)
        assert "now reads" not in second.log()

        assert first.kill() == -9
        died = time.monotonic()
        wait_for(lambda: holder() == worker_id(second), 20, "the second worker to take over")
        # Within one lease period (4 s), plus at most one read interval (5 s) of the survivor.
        assert time.monotonic() - died < 4 + 5 + 2

        made = create_request(
            site.container.uow(),
            site.container.clock,
            INSTANCE,
            RequestDraft("Deploy", ["alice@contoso.test"], "ci@contoso.test"),
            created_by="ci",
        )
        message_id, raw = reply_mail("alice@contoso.test", made, "Approved")
        deliver(emu, FOLDER, [raw])
        reply = [Reply(message_id, made.request.id, "alice@contoso.test")]
        wait_for(lambda: not unsettled(site, reply), 30, "the new reader to apply the reply")
        assert second.stop() == 0
    assert holder() is None  # a clean stop hands the folder over at once
    check_applied_exactly_once(site, reply)
