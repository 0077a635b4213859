"""`replygate` with test hooks for worker subprocesses: `python -m tests.support.hooked_worker`.

Read only here, from the environment:

* ``RG_TEST_CRASH_AT``: SIGKILL this process at one step of the mail flow, the
  ``RG_TEST_CRASH_NTH`` time (default 1) it is reached:
  ``after_draft`` (draft created in the mailbox, its id not recorded),
  ``before_send`` (draft created and recorded, not sent), ``after_send`` (sent, not yet
  marked sent), ``before_dispose`` (outcomes committed, nothing disposed of),
  ``after_dispose`` (disposed of, not recorded), ``before_cursor`` (outcomes committed,
  delta cursor not saved, nothing disposed of yet: disposal follows the cursor).
* ``RG_TEST_FAST=1``: no send pacing (the emulator has no sending limit), outbox claims
  that lapse after ``RG_TEST_CLAIM_SECONDS`` (default 3) instead of 5 minutes so a killed
  worker's rows come back quickly, and rounds every ``RG_TEST_INTERVAL`` seconds.
  ``RG_TEST_PACING=N/S`` paces sends at N per S seconds instead.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

POINTS = (
    "after_draft",
    "before_send",
    "after_send",
    "before_dispose",
    "after_dispose",
    "before_cursor",
)
_seen: dict[str, int] = {}


def _reached(point: str) -> None:
    if os.environ.get("RG_TEST_CRASH_AT") != point:
        return
    _seen[point] = _seen.get(point, 0) + 1
    if _seen[point] == int(os.environ.get("RG_TEST_CRASH_NTH", "1")):
        sys.stderr.write(f"test hook: SIGKILL at {point}\n")
        sys.stderr.flush()
        os.kill(os.getpid(), signal.SIGKILL)


def _around(owner: Any, name: str, before: str | None, after: str | None) -> None:
    original: Callable[..., Any] = getattr(owner, name)

    def hooked(*args: Any, **kwargs: Any) -> Any:
        if before:
            _reached(before)
        result = original(*args, **kwargs)
        if after:
            _reached(after)
        return result

    setattr(owner, name, hooked)


def install_crash_points() -> None:
    from replygate.db.configuration import SqlMailFolders
    from replygate.graph.mailbox import GraphReplyMailbox
    from replygate.graph.sender import GraphMailSender

    _around(GraphMailSender, "create_draft", None, "after_draft")
    _around(GraphMailSender, "send_draft", "before_send", "after_send")
    _around(GraphReplyMailbox, "dispose", "before_dispose", "after_dispose")
    original_update = SqlMailFolders.update

    def update(self: SqlMailFolders, mailbox: str, path: str, **values: Any) -> None:
        if "cursor" in values:
            _reached("before_cursor")
        original_update(self, mailbox, path, **values)

    SqlMailFolders.update = update  # type: ignore[method-assign]


def install_fast_mode() -> None:
    from replygate.graph import sender
    from replygate.services import sending
    from replygate.worker.loops import Worker

    sending.CLAIM_FOR = timedelta(seconds=float(os.environ.get("RG_TEST_CLAIM_SECONDS", "3")))
    original_init = sender.GraphMailSender.__init__
    messages, _, seconds = os.environ.get("RG_TEST_PACING", "1000000/60").partition("/")
    fast = sender.Pacing(messages=int(messages), per_seconds=float(seconds))

    def init(self: sender.GraphMailSender, client: Any, *, pacing: Any = None) -> None:
        original_init(self, client, pacing=pacing or fast)

    sender.GraphMailSender.__init__ = init  # type: ignore[method-assign]
    pace = float(os.environ.get("RG_TEST_INTERVAL", "0.5"))
    original_run = Worker.run_forever

    def run_forever(self: Worker, stop: threading.Event, interval: float = 2.0) -> None:
        original_run(self, stop, pace)  # the test's pace, not the given interval

    Worker.run_forever = run_forever  # type: ignore[method-assign]


def main() -> None:
    if os.environ.get("RG_TEST_CRASH_AT"):
        install_crash_points()
    if os.environ.get("RG_TEST_FAST") == "1":
        install_fast_mode()
    from replygate.cli.main import run

    sys.argv = ["replygate", *sys.argv[1:]]
    run()


if __name__ == "__main__":
    main()
