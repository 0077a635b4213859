"""Sign-in flows kept server-side between the redirect to Microsoft and its answer.

Authorize (the SMTP User's tokens) and Sign in with Microsoft (the console) both keep
MSAL's flow here, encrypted by the caller, keyed by its ``state``: single use, and only
for ``lifetime``. Rows of an abandoned sign-in are removed when the next one starts.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from replygate.db.tables import OAuthFlowRow


def keep_flow(
    session: Session,
    *,
    state: str,
    application_id: int,
    flow_encrypted: str,
    started_by: str,
    now: datetime,
    lifetime: timedelta,
) -> None:
    session.execute(delete(OAuthFlowRow).where(OAuthFlowRow.created_at < now - lifetime))
    session.add(
        OAuthFlowRow(
            state=state,
            application_id=application_id,
            flow_encrypted=flow_encrypted,
            started_by=started_by,
            created_at=now,
        )
    )


def take_flow(
    session: Session,
    state: str,
    *,
    now: datetime,
    lifetime: timedelta,
    started_by: str | None = None,
) -> OAuthFlowRow | None:
    """The flow for ``state``, removed (single use, whatever happens next); None when there
    is none, it expired, or ``started_by`` is given and does not match. The caller commits."""
    query = select(OAuthFlowRow).where(OAuthFlowRow.state == state)
    if started_by is not None:
        query = query.where(OAuthFlowRow.started_by == started_by)
    row = session.scalar(query)
    if row is None:
        return None
    session.delete(row)
    return row if row.created_at >= now - lifetime else None
