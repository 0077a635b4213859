"""Sending: 100 requests created at once go out paced under Exchange's 30 messages per
minute per mailbox, at 2 Graph requests each, with no 429.

Time is scaled down tenfold: the sender's pacing is set to 30 messages per 6 s (the
``Pacing`` of ``replygate.graph.sender``, through the transports' wiring), and a "minute"
below is 6 s. The emulator's Graph limits and the client's budget are scaled as in the
reading benchmark (600 requests per 20 s, 4 in flight).
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta

from sqlalchemy import select

from bench.figures import Figure
from bench.harness import bench_environment, configure, transports
from replygate.db.tables import OutboxRow
from replygate.graph.client import Budget
from replygate.graph.sender import Pacing
from replygate.services.requesting import RequestDraft, create_request
from replygate.worker.loops import Worker

COMMAND = "python -m bench sending"
REQUESTS = 100
PER_MINUTE = 30
SCALE = 10  # a paced "minute" lasts 60 / SCALE seconds
MINUTE = 60 / SCALE
LIMIT, WINDOW, CONCURRENT = 600, 20, 4


def most_in_a_minute(stamps: list[datetime]) -> int:
    """The most sends that fell in any window of one (scaled) minute."""
    ordered = sorted(stamps)
    most, start = 0, 0
    for end, stamp in enumerate(ordered):
        while stamp - ordered[start] >= timedelta(seconds=MINUTE):
            start += 1
        most = max(most, end - start + 1)
    return most


def run() -> list[Figure]:
    budget = Budget(concurrency=CONCURRENT, requests=LIMIT, window=WINDOW)
    with (
        bench_environment() as bench,
        transports(budget=budget, pacing=Pacing(messages=PER_MINUTE, per_seconds=MINUTE)),
    ):
        configure(bench)
        bench.throttle(LIMIT, WINDOW, CONCURRENT)
        container = bench.container
        for index in range(REQUESTS):
            draft = RequestDraft(
                title=f"Deploy service-{index}",
                approvers=["alice@contoso.test", "bob@contoso.test"],
                requester="ci@contoso.test",
            )
            create_request(
                container.uow(), container.clock, container.settings.instance, draft, created_by="b"
            )
        bench.reset_counters()
        worker = Worker(container)
        start = time.perf_counter()
        try:
            while True:
                report = worker.run_once(read=False)
                if report.errors:
                    raise RuntimeError(f"worker round failed: {report.errors}")
                assert report.sent is not None
                if not report.sent.sent and not report.sent.retrying:
                    break
        finally:
            worker.close()
        seconds = time.perf_counter() - start
        with container.engine.connect() as connection:
            stamps = [s for s in connection.scalars(select(OutboxRow.sent_at)) if s is not None]
        counters = bench.counters()
        inbox = len(bench.folder("inbox", "alice@contoso.test"))
    requests = int(counters["totals"]["requests"])
    throttled = int(counters["totals"]["throttled"])
    per_request = requests / max(len(stamps), 1)
    most = most_in_a_minute(stamps)
    floor = (-(-REQUESTS // PER_MINUTE) - 1) * MINUTE  # full "minutes" before the last batch
    rate = len(stamps) / seconds * MINUTE
    scaled = f"(time scaled {SCALE}x: pacing {PER_MINUTE} per {MINUTE:.0f} s)"
    return [
        Figure(
            f"Most requests sent in any paced minute, {len(stamps)} created at once "
            f"({inbox} arrived per approver) {scaled}",
            most,
            "messages",
            f"<= {PER_MINUTE}",
            most <= PER_MINUTE and len(stamps) == REQUESTS and inbox == REQUESTS,
            COMMAND,
            detail=f"The sender's `Pacing` set to {PER_MINUTE} per {MINUTE:.0f} s through "
            "`replygate.mailflow.connect`; the real worker (`Worker.run_once(read=False)`) "
            "sends until the outbox is empty; the window is counted over the outbox rows' "
            "`sent_at`. Each request goes to 2 approvers in one message.",
        ),
        Figure(
            f"Send throughput {scaled}",
            rate,
            "messages per paced minute",
            f">= {PER_MINUTE * 0.8:.0f} (80% of the limit, over the whole run)",
            rate >= PER_MINUTE * 0.8,
            COMMAND,
        ),
        Figure(
            f"Time to send {REQUESTS} (the pacing allows it in {floor:.0f} s at best)",
            seconds,
            "s",
            f"<= 1.5 x {floor:.0f} s",
            seconds <= 1.5 * floor,
            COMMAND,
        ),
        Figure(
            "Graph requests per sent request (draft + send)",
            per_request,
            "requests",
            "2",
            per_request <= 2.0,
            COMMAND,
        ),
        Figure("429 answers caused while sending", throttled, "", "0", throttled == 0, COMMAND),
    ]
