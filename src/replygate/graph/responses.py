"""Graph error responses -> typed replygate errors with plain-language fixes.

Graph's envelope is `{"error": {"code", "message", "innerError": {"request-id"}}}`; we decide
on `code` (both Exchange-style `ErrorAccessDenied` and camelCase `accessDenied` occur) and
the HTTP status, never on the message text. See https://learn.microsoft.com/graph/errors.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from replygate.graph.errors import (
    CursorExpired,
    GraphAuthorizationNeeded,
    GraphConfigurationError,
    GraphFailure,
    GraphNotFound,
    GraphRejected,
    GraphRequestFailed,
    GraphTransient,
)

TRANSIENT_STATUS = frozenset({429, 500, 502, 503, 504})
TRANSIENT_CODES = frozenset(
    {
        "ApplicationThrottled",
        "MailboxConcurrency",
        "ErrorServerBusy",
        "ErrorTimeoutExpired",
        "serviceNotAvailable",
        "activityLimitReached",
        "TooManyRequests",
        "ErrorInternalServerTransientError",
    }
)
CURSOR_CODES = frozenset({"syncStateNotFound", "resyncRequired", "SyncStateNotFound"})


@dataclass(frozen=True)
class Who:
    """Names used in fixes: the mailbox addressed and the account (or app) calling."""

    mailbox: str
    user: str | None  # the SMTP User in delegated mode; None for app-only


def retry_after_seconds(response: httpx.Response) -> float | None:
    raw = response.headers.get("Retry-After")
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:  # the HTTP-date form
        moment = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    date = response.headers.get("Date")
    now = parsedate_to_datetime(date) if date else None
    return max(0.0, (moment - now).total_seconds()) if now else None


def _envelope(response: httpx.Response) -> tuple[str, str, str]:
    try:
        body: Any = response.json()
    except ValueError:
        return "", response.text[:200], ""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return "", "", ""
    inner = error.get("innerError") or error.get("innererror") or {}
    request_id = str(inner.get("request-id") or "") if isinstance(inner, dict) else ""
    return str(error.get("code") or ""), str(error.get("message") or ""), request_id


def error_for(response: httpx.Response, who: Who) -> GraphFailure:
    """The error to raise for a failed Graph response."""
    status = response.status_code
    code, text, request_id = _envelope(response)
    info: dict[str, Any] = {
        "status": status,
        "code": code,
        "description": text,
        "request_id": request_id or response.headers.get("request-id", ""),
        "retry_after": retry_after_seconds(response),
    }
    box, user = who.mailbox, who.user
    key = code.lower()
    if status in TRANSIENT_STATUS or code in TRANSIENT_CODES:
        return GraphTransient(
            f"Microsoft Graph is busy or throttling requests for {box} (HTTP {status}).",
            fix="replygate waits as Graph asks (Retry-After) and tries again.",
            **info,
        )
    if status == 410 or code in CURSOR_CODES:
        return CursorExpired(
            f"The change cursor of a folder of {box} expired.",
            fix="replygate reads the folder again from the start.",
            **info,
        )
    if key == "errorsendasdenied":
        if user is None:  # app-only: Send As rights do not apply to applications
            return GraphConfigurationError(
                f"This application is not allowed to send as {box}.",
                fix=f"Include {box} in the application's RBAC for Applications scope "
                '("Application Mail.Send"), or grant admin consent for Mail.Send.',
                **info,
            )
        return GraphConfigurationError(
            f"{user} is not allowed to send as {box}.",
            fix=f"Grant Send As on {box} to {user}: Exchange admin center > Mailboxes > "
            f"{box} > Delegation > Send as, or `Add-RecipientPermission -Identity {box} "
            f"-Trustee {user} -AccessRights SendAs`.",
            **info,
        )
    if key in ("erroraccessdenied", "accessdenied", "extensionerror") or status == 403:
        if user:
            fix = (
                f"Grant {user} Full Access to {box} (`Add-MailboxPermission -Identity {box} "
                f"-User {user} -AccessRights FullAccess -AutoMapping $false`) and consent "
                "Mail.ReadWrite.Shared and Mail.Send.Shared for the application."
            )
        else:
            fix = (
                "Grant admin consent for the application permissions Mail.ReadWrite and "
                f"Mail.Send, and check that the application access policy or RBAC for "
                f"Applications scope includes {box}."
            )
        return GraphConfigurationError(f"Access to the mailbox {box} was denied.", fix=fix, **info)
    if key == "mailboxnotenabledforrestapi":
        return GraphConfigurationError(
            f"{box} has no Exchange Online mailbox that Graph can use (unlicensed, inactive, "
            "soft-deleted or on-premises).",
            fix=f"Give {box} an Exchange Online mailbox (a licence, or make it a shared "
            "mailbox), or choose a cloud mailbox.",
            **info,
        )
    if key in ("errorinvaliduser", "resourcenotfound") or (key == "" and status == 404):
        return GraphConfigurationError(
            f"The mailbox {box} was not found.",
            fix="Check the address; Graph needs the primary SMTP address or the user id.",
            **info,
        )
    if key in ("erroritemnotfound", "itemnotfound"):
        return GraphNotFound(
            f"The item was not found in {box} (moved, deleted or not there yet).",
            fix="Nothing to do if it was processed already.",
            **info,
        )
    if key == "errorinvalidrecipients":
        return GraphRejected(
            "Graph refused the recipients of the message.",
            fix="Check the approvers' addresses.",
            **info,
        )
    if key == "errormessagesizeexceeded" or status == 413:
        return GraphRejected(
            "The message is larger than the mailbox allows.",
            fix="Shorten the request details, or raise the mailbox's MaxSendSize.",
            **info,
        )
    if key == "errorquotaexceeded":
        return GraphConfigurationError(
            f"The mailbox {box} is full.", fix=f"Free space in {box} or raise its quota.", **info
        )
    if status == 401 or key == "invalidauthenticationtoken":
        return GraphAuthorizationNeeded(
            "Microsoft Graph refused the access token.",
            fix="Press Authorize again (delegated) or check the app's credential (app-only).",
            **info,
        )
    return GraphRequestFailed(
        f"Microsoft Graph refused a request for {box} (HTTP {status} {code}).",
        fix="See the details; this is not retried automatically.",
        **info,
    )
