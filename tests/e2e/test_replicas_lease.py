"""Two workers, one folder: the one without the lease skips reading, without an error,
until the holder stops (a clean stop hands the folder over at once)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from m365emu.testing import RunningEmulator
from replygate.services.requesting import RequestDraft, create_request
from replygate.worker.loops import Worker
from tests.support.mailflow import (
    INSTANCE,
    Site,
    deliver,
    make_site,
    reply_mail,
    unrelated_mail,
)

FOLDER = "Inbox/Approvals"


@pytest.fixture
def site(emu: RunningEmulator, tmp_path: Path) -> Iterator[Site]:
    made = make_site(emu, tmp_path / "data", FOLDER)
    yield made
    made.container.engine.dispose()


def test_only_the_lease_holder_reads_and_a_clean_stop_hands_over(
    site: Site, emu: RunningEmulator
) -> None:
    first = Worker(site.container, worker_id="first", lease_period=timedelta(seconds=60))
    second = Worker(site.container, worker_id="second", lease_period=timedelta(seconds=60))
    deliver(emu, FOLDER, [unrelated_mail(1)])  # the folder exists, with mail not ours
    try:
        held = first.run_once()
        assert held.read is not None
        assert not held.read_elsewhere

        made = create_request(
            site.container.uow(),
            site.container.clock,
            INSTANCE,
            RequestDraft("Deploy", ["alice@contoso.test"], "ci@contoso.test"),
            created_by="ci",
        )
        deliver(emu, FOLDER, [reply_mail("alice@contoso.test", made, "Approved")[1]])
        skipped = second.run_once()
        assert skipped.read is None
        assert skipped.read_elsewhere
        assert "read" not in skipped.errors  # not an error: another worker reads

        first.close()  # releases the lease at once, not after 60 s
        taken = second.run_once()
        assert taken.read is not None
        assert taken.read.decided == 1
    finally:
        first.close()
        second.close()
