"""Credential health: will mail keep flowing tomorrow? (``/healthz`` and the console banner)

Expired tokens and secrets are how approval-by-mail tools stop silently, so the check
warns early: a client secret or certificate expiring within 30 days is a warning, within
7 an urgent one, expired is failing; an authorisation that needs a new sign-in is failing;
no Email Settings at all is a warning (nothing can be sent yet). Details name applications
and accounts, never secrets.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from replygate.services.configuring import EmailSettings, current_settings
from replygate.services.ports import OAuthApplication
from replygate.web.health import CheckResult, CheckStatus

if TYPE_CHECKING:
    from replygate.bootstrap import Container
    from replygate.db.tables import TokenCacheRow

WARN_BEFORE = timedelta(days=30)
URGENT_BEFORE = timedelta(days=7)
NAME = "credentials"


@dataclass(frozen=True)
class Finding:
    status: CheckStatus
    text: str
    urgent: bool = False


def expiry_finding(app: OAuthApplication, now: datetime) -> Finding | None:
    """What the application's secret or certificate expiry calls for, if anything."""
    expires = app.credential_expires_at
    if expires is None:
        return None
    what = "client secret" if app.credential_kind == "secret" else "certificate"
    left = expires - now
    day = f"{expires:%Y-%m-%d}"
    if left <= timedelta(0):
        return Finding(
            "failing",
            f"the {what} of {app.name} expired on {day}: create a new one in Entra ID "
            "(Certificates & secrets) and enter it under OAuth Applications",
        )
    days = max(1, left.days)
    text = f"the {what} of {app.name} expires on {day} (in {days} day{'s' if days != 1 else ''})"
    if left <= URGENT_BEFORE:
        return Finding("warning", f"urgent: {text}: replace it now", urgent=True)
    if left <= WARN_BEFORE:
        return Finding("warning", f"{text}: plan its replacement")
    return None


def token_finding(
    app: OAuthApplication, cache: TokenCacheRow | None, settings: EmailSettings | None
) -> Finding | None:
    """Delegated applications need an authorised account whose refresh still works."""
    if app.mode != "delegated":
        return None
    in_use = settings is not None and settings.smtp_oauth_application == app.name
    if cache is None:
        if not in_use:
            return None
        user = settings.smtp_user if settings else "the SMTP User"
        return Finding("failing", f"{app.name} is not authorised: press Authorize as {user}")
    if cache.state != "ok":
        reason = f" ({cache.last_error.splitlines()[0][:200]})" if cache.last_error else ""
        return Finding(
            "failing",
            f"{app.name} needs a new sign-in{reason}: press Authorize as {cache.username}",
        )
    return None


def findings(container: Container) -> list[Finding]:
    now = container.clock.now()
    current = current_settings(container.uow())
    settings = current[1] if current else None
    found: list[Finding] = []
    if settings is None:
        found.append(Finding("warning", "Email Settings are not saved yet: no mail can be sent"))
    with container.uow() as uow:
        apps = list(uow.applications.list())
        for app in apps:
            # Read while the unit of work is open: its rows expire when it closes.
            cache = uow.token_caches.for_application(app.id) if app.id else None
            for finding in (expiry_finding(app, now), token_finding(app, cache, settings)):
                if finding is not None:
                    found.append(finding)
    wanted = settings.smtp_oauth_application if settings else None
    if wanted and wanted.lower() not in {app.name.lower() for app in apps}:
        found.append(
            Finding(
                "failing",
                f"Email Settings name the OAuth application {wanted}, which does not exist",
            )
        )
    return found


def credential_check(container: Container) -> CheckResult:
    found = findings(container)
    if not found:
        return CheckResult(NAME, "ok")
    status: CheckStatus = "failing" if any(f.status == "failing" for f in found) else "warning"
    data = {"problems": [f.text for f in found], "urgent": any(f.urgent for f in found)}
    return CheckResult(NAME, status, "; ".join(f.text for f in found), data)
