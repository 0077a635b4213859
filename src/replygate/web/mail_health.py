"""Mail flow health: is mail actually going out and are replies being read?

Credentials can look fine while mail still does not flow (a revoked sign-in, a missing
Send As right, a stopped worker). This check reads what the loops leave behind: outbox
rows retrying with an error (failing), mail that gave up in the last day (warning), and a
reply folder not read for a long while (failing). Only the database is read; the check
works whichever process runs the loops.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from replygate.services.configuring import current_settings
from replygate.web.health import CheckResult, CheckStatus

if TYPE_CHECKING:
    from replygate.bootstrap import Container

NAME = "mail"
RECENT_FAILURES = timedelta(days=1)
MIN_STALE = timedelta(minutes=5)  # reads this late mean the reader is stuck or stopped
STALE_ROUNDS = 10  # ...or this many polling intervals, whichever is longer


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0][:300] if text.strip() else "no error recorded"


def mail_flow_check(container: Container) -> CheckResult:
    current = current_settings(container.uow())
    if current is None:
        return CheckResult(NAME, "ok", "no Email Settings yet (see the credentials check)")
    settings = current[1]
    now = container.clock.now()
    problems: list[tuple[CheckStatus, str]] = []
    with container.uow() as uow:
        retrying = [r for r in uow.outbox.list(state="pending", limit=200) if r.last_error]
        if retrying:
            newest = retrying[0]  # the list is newest first
            problems.append(
                (
                    "failing",
                    f"{len(retrying)} mail(s) are waiting to be sent and failing: "
                    f"{_first_line(newest.last_error)}",
                )
            )
        failed = [
            r
            for r in uow.outbox.list(state="failed", limit=50)
            if r.created_at >= now - RECENT_FAILURES
        ]
        if failed:
            problems.append(
                (
                    "warning",
                    f"{len(failed)} mail(s) could not be sent in the last day: "
                    f"{_first_line(failed[0].last_error)}",
                )
            )
        stale_after = max(
            MIN_STALE, timedelta(seconds=settings.polling_interval_seconds * STALE_ROUNDS)
        )
        for folder in uow.folders.list():
            wanted = (settings.reply_address or "").lower(), settings.email_reply_folder
            if (folder.mailbox, folder.path) != wanted:
                continue
            last = folder.last_read_at or folder.configured_at
            if last < now - stale_after:
                since = (
                    f"since {last:%Y-%m-%d %H:%M} UTC"
                    if folder.last_read_at
                    else f"at all since it was configured ({last:%Y-%m-%d %H:%M} UTC)"
                )
                problems.append(
                    (
                        "failing",
                        f"the reply folder {folder.mailbox} {folder.path} has not been read "
                        f"{since}: check that the worker runs (replygate serve or replygate "
                        "worker) and its log",
                    )
                )
    if not problems:
        return CheckResult(NAME, "ok")
    status: CheckStatus = "failing" if any(s == "failing" for s, _ in problems) else "warning"
    texts = [text for _, text in problems]
    return CheckResult(NAME, status, "; ".join(texts), {"problems": texts})
