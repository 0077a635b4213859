"""The reader loop's use case for one folder: page through changes, ingest, dispose, advance.

Order per page: every message's outcome is committed (``ingest_message``), which records
in the ledger the disposal each message that is ours is owed; only then is the folder's
cursor saved. Disposals are sent in full batches of ``DISPOSAL_BATCH`` across pages, and
what is left at the end of the round goes in a last one. A crash anywhere repeats at most
the current page, and the ledger turns every repeat into a no-op; disposals a crash left
owing are paid at the start of the next round (``owed_disposals``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from replygate.errors import ReplygateError
from replygate.mail.remote import rebuild_mime
from replygate.services.ingesting import Arrival, IngestContext, IngestResult, ingest_message
from replygate.services.mail_ports import Disposal, DisposalKind, RemoteMessage, ReplyMailbox
from replygate.services.ports import UnitOfWork

log = logging.getLogger(__name__)

MAX_PAGES_PER_ROUND = 50
# Graph's $batch takes 20 requests: disposing in full batches across pages saves round
# trips (a 50-message page alone would take 20 + 20 + 10). Other transports don't mind.
DISPOSAL_BATCH = 20


@dataclass(frozen=True)
class DisposalPolicy:
    action: Literal["move", "delete", "keep"] = "move"
    folder_id: str | None = None  # for "move": the resolved id of the processed folder


@dataclass
class ReadReport:
    read: int = 0
    decided: int = 0
    disposed: int = 0
    untouched: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    resynced: bool = False
    lease_lost: bool = False  # another reader took the folder over; this round stopped


def read_folder(
    uow_factory: Callable[[], UnitOfWork],
    ctx: IngestContext,
    mailbox: ReplyMailbox,
    policy: DisposalPolicy,
    hold: Callable[[], bool] = lambda: True,
) -> ReadReport:
    """One round over the reply folder: everything new since the stored cursor.

    ``hold`` renews the caller's folder lease; it is asked before every page and every
    disposal, and the round stops (nothing disposed, cursor kept) once it says False.
    """
    report = ReadReport()
    with uow_factory() as uow:
        # Disposals a crash or a failed batch left owing: their decisions are committed.
        owed = uow.ledger.owed_disposals(ctx.mailbox)
    if owed and not hold():
        report.lease_lost = True
        return report
    report.disposed += _dispose(uow_factory, ctx, mailbox, policy, owed)
    with uow_factory() as uow:
        folder = uow.folders.ensure(ctx.mailbox, ctx.folder, ctx.clock.now())
        folder_id, cursor, configured_at = folder.folder_id, folder.cursor, folder.configured_at
        uow.commit()
    if folder_id is None:
        folder_id = mailbox.resolve_folder(ctx.folder)
        with uow_factory() as uow:
            uow.folders.update(ctx.mailbox, ctx.folder, folder_id=folder_id)
            uow.commit()
    owing: list[tuple[int, str]] = []  # (ledger id, transport id) not yet disposed of
    for _ in range(MAX_PAGES_PER_ROUND):
        if not hold():
            report.lease_lost = True
            break
        try:
            page = mailbox.changes(folder_id, cursor)
        except ReplygateError as error:
            if type(error).__name__ != "CursorExpired":
                raise
            log.warning(
                "delta cursor of %s/%s expired; reading the folder again", ctx.mailbox, ctx.folder
            )
            report.resynced = True
            cursor = None  # the ledger makes re-reading every message harmless
            continue
        results = [
            (message, _ingest(uow_factory, ctx, mailbox, message, configured_at))
            for message in page.messages
        ]
        for _, result in results:
            report.read += 1
            report.outcomes[result.outcome] = report.outcomes.get(result.outcome, 0) + 1
            report.decided += result.outcome == "decided"
            report.untouched += not result.dispose
        owing += [(r.ledger_id, m.id) for m, r in results if r.dispose]
        cursor = page.next_cursor or cursor
        with uow_factory() as uow:
            uow.folders.update(
                ctx.mailbox, ctx.folder, cursor=cursor, last_read_at=ctx.clock.now(), last_error=""
            )
            uow.commit()
        full = len(owing) - len(owing) % DISPOSAL_BATCH
        last_page = not page.more
        due, owing = (owing, []) if last_page else (owing[:full], owing[full:])
        if due and not hold():  # the new holder finds these in the ledger and disposes of them
            report.lease_lost = True
            return report
        report.disposed += _dispose(uow_factory, ctx, mailbox, policy, due)
        if last_page:
            break
    if owing and hold():  # the round hit MAX_PAGES_PER_ROUND; else the next round pays them
        report.disposed += _dispose(uow_factory, ctx, mailbox, policy, owing)
    return report


def _ingest(
    uow_factory: Callable[[], UnitOfWork],
    ctx: IngestContext,
    mailbox: ReplyMailbox,
    message: RemoteMessage,
    configured_at: datetime,
) -> IngestResult:
    # The listing usually carries headers and body: rebuilding spares a request per message.
    rebuilt = rebuild_mime(message.headers, html=message.body_html, text=message.body_text)
    raw = rebuilt if rebuilt is not None else mailbox.fetch_mime(message.id)
    arrival = Arrival(
        raw=raw,
        transport_id=message.id,
        internet_message_id=message.internet_message_id,
        received_at=message.received_at,
        is_draft=message.is_draft,
    )
    return ingest_message(uow_factory, ctx, arrival, configured_at)


def _dispose(
    uow_factory: Callable[[], UnitOfWork],
    ctx: IngestContext,
    mailbox: ReplyMailbox,
    policy: DisposalPolicy,
    owed: list[tuple[int, str]],
) -> int:
    """Dispose of our messages (ledger id, transport id); record what happened to each."""
    if not owed:
        return 0
    if policy.action == "keep":
        done = {transport_id: True for _, transport_id in owed}
        label = "kept"
    else:
        kind = DisposalKind.MOVE if policy.action == "move" else DisposalKind.DELETE
        results = mailbox.dispose([Disposal(t, kind, policy.folder_id) for _, t in owed])
        done = {result.message_id: result.done for result in results}
        label = "moved" if policy.action == "move" else "deleted"
    with uow_factory() as uow:
        for ledger_id, transport_id in owed:
            ok = done.get(transport_id, False)
            uow.ledger.mark_disposed(ledger_id, label if ok else "failed", ctx.clock.now())
        uow.commit()
    return sum(done.values())
