"""What console pages share: role dependencies, one-shot notices, form field errors."""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Request

from replygate.services.account_ports import Role
from replygate.web.auth import Principal, require_role

if TYPE_CHECKING:
    from replygate.bootstrap import Container

Viewer = Annotated[Principal, Depends(require_role(Role.VIEWER))]
Requester = Annotated[Principal, Depends(require_role(Role.REQUESTER))]
Admin = Annotated[Principal, Depends(require_role(Role.ADMIN))]

_NOTICE = "notice"
_FIELD = re.compile(r"^\s*([a-z_]+)(?:\.[a-z_]+)*:\s*(.+)$", re.DOTALL)


def snapshot(row: Any) -> dict[str, Any]:
    """A database row's columns as a plain dict, read while its unit of work is open (rows
    expire when it closes); templates read ``row.name`` from dicts just the same."""
    return {column.key: getattr(row, column.key) for column in row.__table__.columns}


def container_of(request: Request) -> Container:
    container: Container = request.state.container
    return container


def notify(request: Request, text: str, kind: str = "ok", items: list[str] | None = None) -> None:
    """A message for the next page (after a POST-redirect-GET), with optional points."""
    request.session[_NOTICE] = {"text": text, "kind": kind, "items": items or []}


def take_notice(request: Request) -> dict[str, Any] | None:
    notice = request.session.pop(_NOTICE, None)
    return notice if isinstance(notice, dict) else None


def field_errors(message: str, known: set[str]) -> tuple[dict[str, str], list[str]]:
    """Split ``"name: problem; other: problem"`` (the services' InvalidInput style) into
    errors shown next to their fields and the rest, shown at the top of the form."""
    by_field: dict[str, str] = {}
    general: list[str] = []
    for part in message.split("; "):
        match = _FIELD.match(part)
        if match and match.group(1) in known:
            by_field.setdefault(match.group(1), match.group(2).strip())
        else:
            general.append(part.strip())
    return by_field, general


def ago(then: datetime | None, now: datetime) -> str:
    """``3 days ago`` / ``in 5 hours``: how far a moment is, in the largest whole unit."""
    if then is None:
        return ""
    seconds = (now - then).total_seconds()
    future = seconds < 0
    seconds = abs(seconds)
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds >= size:
            count = int(seconds // size)
            text = f"{count} {unit}{'s' if count != 1 else ''}"
            break
    else:
        return "just now"
    return f"in {text}" if future else f"{text} ago"
