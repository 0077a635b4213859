"""Webhook subscriptions, the delivery queue (claimed like the outbox) and its attempt log."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from replygate.db.claims import claim_due
from replygate.db.tables import (
    ApprovalRequestRow,
    WebhookAttemptRow,
    WebhookDeliveryRow,
    WebhookSubscriptionRow,
)
from replygate.services.ports import Clock
from replygate.services.webhook_ports import (
    Attempt,
    DeliveryItem,
    DeliveryLog,
    Subscription,
    Target,
)


def _subscription(row: WebhookSubscriptionRow) -> Subscription:
    return Subscription(
        id=row.id,
        name=row.name,
        url=row.url,
        events=frozenset(row.events),
        active=row.active,
        created_at=row.created_at,
        created_by=row.created_by,
        secret_encrypted=row.secret_encrypted,
    )


class SqlWebhookRepository:
    def __init__(self, session: Session, clock: Clock) -> None:
        self._session = session
        self._clock = clock

    # -- routing ---------------------------------------------------------------------

    def targets(self, event: str, request_id: str) -> list[Target]:
        """Active subscriptions wanting ``event`` (none listed: every event), then the
        request's own callback URL."""
        rows = self._session.scalars(
            select(WebhookSubscriptionRow)
            .where(WebhookSubscriptionRow.active.is_(True))
            .order_by(WebhookSubscriptionRow.id)
        )
        found = [Target(r.url, r.id) for r in rows if not r.events or event in r.events]
        callback = self._session.scalar(
            select(ApprovalRequestRow.callback_url).where(ApprovalRequestRow.id == request_id)
        )
        if callback:
            found.append(Target(callback, None))
        return found

    def enqueue(
        self,
        target: Target,
        *,
        event: str,
        event_id: str,
        payload: dict[str, Any],
        request_id: str | None,
    ) -> int:
        now = self._clock.now()
        row = WebhookDeliveryRow(
            subscription_id=target.subscription_id,
            request_id=request_id,
            url=target.url,
            event=event,
            event_id=event_id,
            payload=payload,
            state="pending",
            attempts=0,
            next_attempt_at=now,
            created_at=now,
            last_error="",
        )
        self._session.add(row)
        self._session.flush()
        return row.id

    # -- the queue -------------------------------------------------------------------

    def claim_due(self, worker: str, lease_until: datetime, limit: int = 10) -> list[DeliveryItem]:
        rows = claim_due(
            self._session,
            WebhookDeliveryRow,
            worker=worker,
            lease_until=lease_until,
            now=self._clock.now(),
            limit=limit,
        )
        secrets: dict[int, str] = {}
        ids = {r.subscription_id for r in rows if r.subscription_id is not None}
        if ids:
            found = self._session.execute(
                select(WebhookSubscriptionRow.id, WebhookSubscriptionRow.secret_encrypted).where(
                    WebhookSubscriptionRow.id.in_(ids)
                )
            )
            secrets = {sid: secret for sid, secret in found}
        return [
            DeliveryItem(
                id=row.id,
                url=row.url,
                event=row.event,
                event_id=row.event_id,
                payload=dict(row.payload),
                attempts=row.attempts,
                request_id=row.request_id,
                subscription_id=row.subscription_id,
                created_at=row.created_at,
                secret_encrypted=secrets.get(row.subscription_id or -1),
            )
            for row in rows
        ]

    def record_attempt(self, delivery_id: int, attempt: Attempt) -> None:
        self._session.add(
            WebhookAttemptRow(
                delivery_id=delivery_id,
                at=attempt.at,
                status_code=attempt.status_code,
                duration_ms=attempt.duration_ms,
                error=attempt.error[:2000],
            )
        )

    def _set(self, delivery_id: int, **values: Any) -> None:
        self._session.execute(
            update(WebhookDeliveryRow).where(WebhookDeliveryRow.id == delivery_id).values(**values)
        )

    def mark_delivered(self, delivery_id: int, at: datetime, status: int) -> None:
        self._set(
            delivery_id,
            state="delivered",
            delivered_at=at,
            last_status=status,
            last_error="",
            claimed_until=None,
        )

    def reschedule(self, delivery_id: int, at: datetime, status: int | None, error: str) -> None:
        self._set(
            delivery_id,
            state="pending",
            next_attempt_at=at,
            last_status=status,
            last_error=error[:2000],
            claimed_until=None,
        )

    def mark_failed(self, delivery_id: int, status: int | None, error: str) -> None:
        self._set(
            delivery_id,
            state="failed",
            last_status=status,
            last_error=error[:2000],
            claimed_until=None,
        )

    # -- subscriptions ---------------------------------------------------------------

    def add_subscription(
        self, *, name: str, url: str, events: frozenset[str], secret_encrypted: str, by: str
    ) -> Subscription:
        row = WebhookSubscriptionRow(
            name=name,
            url=url,
            events=sorted(events),
            secret_encrypted=secret_encrypted,
            active=True,
            created_at=self._clock.now(),
            created_by=by,
        )
        self._session.add(row)
        self._session.flush()
        return _subscription(row)

    def subscriptions(self) -> Sequence[Subscription]:
        rows = self._session.scalars(
            select(WebhookSubscriptionRow).order_by(WebhookSubscriptionRow.id)
        )
        return [_subscription(row) for row in rows]

    def get_subscription(self, subscription_id: int) -> Subscription | None:
        row = self._session.get(WebhookSubscriptionRow, subscription_id)
        return None if row is None else _subscription(row)

    def remove_subscription(self, subscription_id: int) -> bool:
        # Deliveries go with it (CASCADE on PostgreSQL; removed here for SQLite too).
        self._session.execute(
            delete(WebhookDeliveryRow).where(WebhookDeliveryRow.subscription_id == subscription_id)
        )
        result = self._session.execute(
            delete(WebhookSubscriptionRow).where(WebhookSubscriptionRow.id == subscription_id)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    # -- the log ---------------------------------------------------------------------

    def deliveries(
        self,
        *,
        request_id: str | None = None,
        subscription_id: int | None = None,
        limit: int = 50,
    ) -> Sequence[DeliveryLog]:
        query = select(WebhookDeliveryRow).order_by(WebhookDeliveryRow.id.desc()).limit(limit)
        if request_id is not None:
            query = query.where(WebhookDeliveryRow.request_id == request_id)
        if subscription_id is not None:
            query = query.where(WebhookDeliveryRow.subscription_id == subscription_id)
        rows = list(self._session.scalars(query))
        attempts: dict[int, list[Attempt]] = {row.id: [] for row in rows}
        if rows:
            for a in self._session.scalars(
                select(WebhookAttemptRow)
                .where(WebhookAttemptRow.delivery_id.in_(list(attempts)))
                .order_by(WebhookAttemptRow.id)
            ):
                attempts[a.delivery_id].append(Attempt(a.at, a.status_code, a.duration_ms, a.error))
        return [
            DeliveryLog(
                id=row.id,
                url=row.url,
                event=row.event,
                event_id=row.event_id,
                state=row.state,
                attempts=row.attempts,
                created_at=row.created_at,
                next_attempt_at=row.next_attempt_at,
                delivered_at=row.delivered_at,
                last_status=row.last_status,
                last_error=row.last_error,
                request_id=row.request_id,
                subscription_id=row.subscription_id,
                log=tuple(attempts[row.id]),
            )
            for row in rows
        ]
