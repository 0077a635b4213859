"""The end-state checks of the crash and replica proofs, against the database and the
emulator's mailboxes (what really left and what really moved)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import func, select

from replygate.db.tables import DecisionRow, InboundLedgerRow, OutboxRow
from replygate.services.requesting import Created, OutboxKind
from tests.support.mailflow import SHARED, Site, listing


@dataclass(frozen=True)
class Reply:
    message_id: str
    request_id: str
    sender: str


def unsettled(site: Site, replies: Sequence[Reply]) -> str:
    """What is still to do ("" when everything is done): mail to send, replies to finish."""
    with site.container.uow() as uow:
        open_rows = uow.session.scalar(
            select(func.count())
            .select_from(OutboxRow)
            .where(OutboxRow.state.in_(("pending", "claimed")))
        )
        finished = uow.session.scalar(
            select(func.count())
            .select_from(InboundLedgerRow)
            .where(
                InboundLedgerRow.message_key.in_([r.message_id for r in replies]),
                InboundLedgerRow.disposal == "moved",
            )
        )
    if open_rows or finished != len(replies):
        return f"{open_rows} outbox rows open, {finished}/{len(replies)} replies finished"
    return ""


def check_sent_exactly_once(
    site: Site, control: httpx.Client, created: Sequence[Created]
) -> dict[str, int]:
    """Every outbox row sent once: one copy in Sent Items per row, no Message-ID twice in
    any mailbox, and each request mail once in each approver's inbox."""
    with site.container.uow() as uow:
        rows = list(uow.session.execute(select(OutboxRow.kind, OutboxRow.state,
                                               OutboxRow.internet_message_id)))  # fmt: skip
    states = Counter(state for _, state, _ in rows)
    assert set(states) <= {"sent", "skipped"}, states
    sent_ids = Counter(mid for _, state, mid in rows if state == "sent")
    assert all(n == 1 for n in sent_ids.values())
    copies = Counter(m["internetMessageId"] for m in listing(control, SHARED, "sentitems"))
    assert copies == sent_ids, "Sent Items must hold exactly one copy of each sent row"
    for request in created:
        for approver in request.request.approvers:
            inbox = listing(control, approver, "inbox")
            duplicates = [k for k, n in Counter(m["internetMessageId"] for m in inbox).items()
                          if n > 1]  # fmt: skip
            assert duplicates == [], f"{approver} got {duplicates} twice"
            subject = f"[{request.token}] {request.request.title}"
            assert [m["subject"] for m in inbox].count(subject) == 1, (approver, subject)
    kinds = Counter(kind for kind, state, _ in rows if state == "sent")
    assert kinds[OutboxKind.REQUEST] == len(created)
    return dict(kinds)


def check_applied_exactly_once(site: Site, replies: Sequence[Reply]) -> None:
    """One ledger row and one decision per reply, each naming that reply as evidence."""
    keys = [r.message_id for r in replies]
    with site.container.uow() as uow:
        ledger = Counter(
            uow.session.scalars(
                select(InboundLedgerRow.message_key).where(InboundLedgerRow.message_key.in_(keys))
            )
        )
        decisions = list(
            uow.session.execute(
                select(DecisionRow.request_id, DecisionRow.approver, DecisionRow.evidence)
            )
        )
    assert ledger == Counter(keys), "each reply is in the ledger exactly once"
    by_evidence = Counter(str(evidence.get("message_id")) for _, _, evidence in decisions)
    assert by_evidence == Counter(keys), "each reply made exactly one decision"
    expected = Counter((r.request_id, r.sender) for r in replies)
    assert Counter((rid, approver) for rid, approver, _ in decisions) == expected


def check_disposed_exactly_once(
    control: httpx.Client, folder: str, replies: Sequence[Reply], untouched: list[dict[str, Any]]
) -> None:
    """Deleted Items holds each reply once and nothing else; the reply folder holds only the
    mail that is not ours, exactly as it was before the run."""
    deleted = Counter(m["internetMessageId"] for m in listing(control, SHARED, "deleteditems"))
    assert deleted == Counter(r.message_id for r in replies)
    assert listing(control, SHARED, folder) == untouched
