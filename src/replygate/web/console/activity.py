"""Mail activity: every message read (the inbound ledger), and the audit log.

The raw message is for admins only and is served as a ``text/plain`` download, so that
nothing in it is ever rendered by the browser.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from replygate.errors import NotFound
from replygate.mail.screening import Outcome
from replygate.services.account_ports import Role
from replygate.web.console.common import Admin, Viewer, container_of, snapshot
from replygate.web.templating import render

router = APIRouter(include_in_schema=False)
OUTCOMES = [outcome.value for outcome in Outcome]
PAGE = 50


@router.get("/activity")
def activity(request: Request, who: Viewer, outcome: str = "", offset: int = 0) -> Response:
    container = container_of(request)
    chosen = outcome if outcome in OUTCOMES else None
    with container.uow() as uow:
        rows = [
            snapshot(row)
            for row in uow.ledger.list(outcome=chosen, limit=PAGE + 1, offset=max(0, offset))
        ]
    context = {
        "title": "Mail activity",
        "rows": rows[:PAGE],
        "more": len(rows) > PAGE,
        "offset": max(0, offset),
        "page": PAGE,
        "outcome": chosen or "",
        "outcomes": OUTCOMES,
        "raw_allowed": who.role is Role.ADMIN,
    }
    return render(request, "console/activity.html", context)


@router.get("/activity/raw")
def raw_message(request: Request, who: Admin, mailbox: str, key: str) -> Response:
    with container_of(request).uow() as uow:
        entry = uow.ledger.find(mailbox, key)
    if entry is None or entry.raw_mime is None:
        raise NotFound("no stored raw message for that mail (too large, or not kept)")
    return Response(
        entry.raw_mime,
        media_type="text/plain; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="message-{entry.id}.eml.txt"',
            "Cache-Control": "no-store",
        },
    )


@router.get("/audit")
def audit_log(request: Request, who: Admin) -> Response:
    with container_of(request).uow() as uow:
        events = [snapshot(event) for event in uow.audit.recent(200)]
    return render(request, "console/audit.html", {"title": "Audit log", "events": events})
