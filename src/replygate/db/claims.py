"""Claiming queue rows (outbox, webhook deliveries) safely across replicas.

A row is due when pending and its next attempt has come, or when another worker's claim
expired (it died). ``FOR UPDATE SKIP LOCKED`` lets replicas on PostgreSQL claim disjoint
rows; SQLite serialises writers anyway. Each claim counts as an attempt.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol, TypeVar

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session


class QueueRow(Protocol):
    state: str
    claimed_by: str | None
    claimed_until: datetime | None
    attempts: int


Row = TypeVar("Row", bound=QueueRow)


def claim_due(
    session: Session,
    model: type[Row],
    *,
    worker: str,
    lease_until: datetime,
    now: datetime,
    limit: int,
) -> list[Row]:
    column: dict[str, InstrumentedAttribute[object]] = {
        name: getattr(model, name) for name in ("state", "next_attempt_at", "claimed_until", "id")
    }
    due = and_(column["state"] == "pending", column["next_attempt_at"] <= now)
    abandoned = and_(column["state"] == "claimed", column["claimed_until"] < now)
    query = (
        select(model)
        .where(or_(due, abandoned))
        .order_by(column["next_attempt_at"], column["id"])
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    rows: list[Row] = list(session.scalars(query))
    for row in rows:
        row.state = "claimed"
        row.claimed_by = worker
        row.claimed_until = lease_until
        row.attempts += 1
    session.flush()
    return rows
