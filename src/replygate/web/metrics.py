"""``/api/v1/metrics``: Prometheus text for dashboards and alerts (credential expiry, mail flow).

Everything here is read from the database and the health checks on each scrape; nothing
is kept in memory, so any replica answers the same.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import PlainTextResponse
from sqlalchemy import func, select

from replygate.bootstrap import Container
from replygate.db.tables import ApprovalRequestRow, MailFolderRow, OutboxRow, TokenCacheRow
from replygate.services.account_ports import Scope
from replygate.web.auth import Principal, require_scope

router = APIRouter(include_in_schema=False)
STATUS_VALUE = {"ok": 0, "warning": 1, "failing": 2}


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")


def _lines(container: Container, checks: list[tuple[str, str]]) -> Iterator[str]:
    now = container.clock.now()
    yield "# HELP replygate_health Health check status: 0 ok, 1 warning, 2 failing."
    yield "# TYPE replygate_health gauge"
    for name, status in checks:
        yield f'replygate_health{{check="{_label(name)}"}} {STATUS_VALUE.get(status, 2)}'
    with container.uow() as uow:
        yield (
            "# HELP replygate_credential_expiry_days "
            "Days until an application's secret or certificate expires."
        )
        yield "# TYPE replygate_credential_expiry_days gauge"
        for app in uow.applications.list():
            expires = app.credential_expires_at
            if expires is not None:
                days = (expires - now).total_seconds() / 86400
                labels = f'application="{_label(app.name)}"'
                yield f"replygate_credential_expiry_days{{{labels}}} {days:.2f}"
        yield (
            "# HELP replygate_token_ok "
            "Whether an authorised account's tokens are usable (1) or need re-authorising (0)."
        )
        yield "# TYPE replygate_token_ok gauge"
        for row in uow.session.scalars(select(TokenCacheRow)):
            ok = 1 if row.state == "ok" else 0
            labels = f'application_id="{row.application_id}",account="{_label(row.username)}"'
            yield f"replygate_token_ok{{{labels}}} {ok}"
        yield "# HELP replygate_outbox_rows Mail and notices by outbox state."
        yield "# TYPE replygate_outbox_rows gauge"
        query = select(OutboxRow.state, func.count()).group_by(OutboxRow.state)
        for state, count in uow.session.execute(query):
            yield f'replygate_outbox_rows{{state="{_label(state)}"}} {count}'
        yield "# HELP replygate_requests Approval requests by state."
        yield "# TYPE replygate_requests gauge"
        query = select(ApprovalRequestRow.state, func.count()).group_by(ApprovalRequestRow.state)
        for state, count in uow.session.execute(query):
            yield f'replygate_requests{{state="{_label(state)}"}} {count}'
        yield "# HELP replygate_folder_read_age_seconds Seconds since a reply folder was last read."
        yield "# TYPE replygate_folder_read_age_seconds gauge"
        for folder in uow.session.scalars(select(MailFolderRow)):
            read: datetime | None = folder.last_read_at
            if read is not None:
                age = (now - read).total_seconds()
                labels = f'mailbox="{_label(folder.mailbox)}",folder="{_label(folder.path)}"'
                yield f"replygate_folder_read_age_seconds{{{labels}}} {age:.0f}"


Reader = Annotated[Principal, Depends(require_scope(Scope.SETTINGS_READ))]


@router.get("/api/v1/metrics")
def metrics(request: Request, _: Reader) -> PlainTextResponse:
    """Prometheus exposition format; needs an API token with settings:read (bearer)."""
    container: Container = request.state.container
    checks = [(check.name, check.status) for check in request.state.health.run(container)]
    body = "\n".join(_lines(container, checks)) + "\n"
    return PlainTextResponse(body, media_type="text/plain; version=0.0.4")
