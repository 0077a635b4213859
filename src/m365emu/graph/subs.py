"""`/subscriptions` (https://learn.microsoft.com/graph/api/resources/subscription)."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta

from m365emu.graph.access import PERMISSIONS, resolve_target
from m365emu.graph.core import Ctx, GraphResponse, graph_of, route
from m365emu.graph.errors import ACCESS_DENIED, GraphError, bad_request
from m365emu.subscriptions import Subscription, Subscriptions, url_allowed

# Outlook message subscriptions live at most 4,230 minutes
# (https://learn.microsoft.com/graph/change-notifications-overview#subscription-lifetime).
MAX_MINUTES = 4230
MIN_MINUTES = 45
_RESOURCE = re.compile(
    r"^/?(me|users/([^/]+))/(messages|mailFolders/([^/]+)/messages)$", re.IGNORECASE
)
CHANGE_TYPES = frozenset({"created", "updated", "deleted"})


def _subs(ctx: Ctx) -> Subscriptions:
    return graph_of(ctx.state).subscriptions


def _expiry(ctx: Ctx, value: object) -> datetime:
    try:
        when = datetime.fromisoformat(str(value))
    except ValueError:
        raise bad_request("expirationDateTime is not a valid date.", "InvalidRequest") from None
    now = ctx.state.now()
    if when.tzinfo is None:
        raise bad_request("expirationDateTime must carry a time zone.", "InvalidRequest")
    if when > now + timedelta(minutes=MAX_MINUTES):
        raise bad_request(
            f"Subscription expiration can only be {MAX_MINUTES} minutes in the future.",
            "InvalidRequest",
        )
    if when <= now:
        raise bad_request("Subscription expiration must be in the future.", "InvalidRequest")
    return max(when, now + timedelta(minutes=MIN_MINUTES))


def _owned(ctx: Ctx) -> Subscription:
    sub = _subs(ctx).items.get(ctx.params[0])
    if sub is None or sub.client_id != ctx.caller.app.client_id:
        raise GraphError(404, "ResourceNotFound", f"Subscription '{ctx.params[0]}' not found.")
    return sub


@route("POST", "/subscriptions", scope="root")
async def create_subscription(ctx: Ctx) -> GraphResponse:
    """Create with the validation handshake. https://learn.microsoft.com/graph/api/subscription-post-subscriptions"""
    body = ctx.json()
    resource = re.sub(r"\('([^']*)'\)", r"/\1", str(body.get("resource") or ""))
    m = _RESOURCE.match(resource)
    if m is None:
        raise bad_request(f"Resource '{body.get('resource')}' is not supported.", "InvalidRequest")
    changes = frozenset(c.strip() for c in str(body.get("changeType") or "").split(",") if c)
    if not changes or not changes <= CHANGE_TYPES:
        raise bad_request("changeType must be created, updated and/or deleted.", "InvalidRequest")
    client_state = body.get("clientState")
    if client_state is not None and len(str(client_state)) > 128:
        raise bad_request("clientState must be at most 128 characters.", "InvalidRequest")
    expires = _expiry(ctx, body.get("expirationDateTime"))
    prefix = "/me" if m[1].lower() == "me" else f"/users/{m[2]}"
    user, mailbox = resolve_target(ctx.state, graph_of(ctx.state), ctx.caller, prefix, "mailbox")
    assert user is not None
    assert mailbox is not None
    own, _, roles = PERMISSIONS["read"]
    if ctx.caller.user is None:
        allowed = bool(ctx.caller.roles & roles)
    else:  # delegated subscriptions work only on the signed-in user's own mailbox
        allowed = ctx.caller.user.id == user.id and bool(ctx.caller.scopes & own)
    if not allowed:
        raise GraphError(403, "ExtensionError", ACCESS_DENIED)
    folder_id = None
    if m[4]:
        folder = mailbox.folder(m[4])
        if folder is None:
            raise GraphError(404, "ResourceNotFound", f"Resource '{resource}' not found.")
        folder_id = folder.id
    urls = [str(body.get("notificationUrl") or "")]
    if body.get("lifecycleNotificationUrl"):
        urls.append(str(body["lifecycleNotificationUrl"]))
    for url in urls:
        if not url_allowed(url):
            raise bad_request("The notification URL must be an https URL.", "ValidationError")
        if not await _subs(ctx).validate(url):
            raise bad_request(
                "Subscription validation request failed. Notification endpoint must respond "
                "with 200 OK to validation request.",
                "ValidationError",
            )
    sub = Subscription(
        id=str(uuid.uuid4()),
        client_id=ctx.caller.app.client_id,
        tenant_id=ctx.state.tenant.id,
        user_id=user.id,
        folder_id=folder_id,
        resource=str(body.get("resource")),
        change_types=changes,
        notification_url=urls[0],
        lifecycle_url=urls[1] if len(urls) > 1 else None,
        client_state=None if client_state is None else str(client_state),
        expires=expires,
        immutable=ctx.immutable,
        creator_id=ctx.caller.user.id if ctx.caller.user else ctx.caller.app.client_id,
    )
    _subs(ctx).items[sub.id] = sub
    return ctx.ok(
        {"@odata.context": f"{ctx.graph_base}/$metadata#subscriptions/$entity", **sub.json()}, 201
    )


@route("GET", "/subscriptions", scope="root")
async def list_subscriptions(ctx: Ctx) -> GraphResponse:
    """The calling app's subscriptions. https://learn.microsoft.com/graph/api/subscription-list"""
    mine = [s.json() for s in _subs(ctx).active() if s.client_id == ctx.caller.app.client_id]
    return ctx.ok({"@odata.context": f"{ctx.graph_base}/$metadata#subscriptions", "value": mine})


@route("GET", "/subscriptions/{id}", scope="root")
async def get_subscription(ctx: Ctx) -> GraphResponse:
    """https://learn.microsoft.com/graph/api/subscription-get"""
    _subs(ctx).active()
    return ctx.ok(_owned(ctx).json())


@route("PATCH", "/subscriptions/{id}", scope="root")
async def renew_subscription(ctx: Ctx) -> GraphResponse:
    """Renew (new expirationDateTime). https://learn.microsoft.com/graph/api/subscription-update"""
    _subs(ctx).active()
    sub = _owned(ctx)
    body = ctx.json()
    if "expirationDateTime" in body:
        sub.expires = _expiry(ctx, body["expirationDateTime"])
        sub.needs_reauthorization = False
    return ctx.ok(sub.json())


@route("POST", "/subscriptions/{id}/reauthorize", scope="root")
async def reauthorize(ctx: Ctx) -> GraphResponse:
    """https://learn.microsoft.com/graph/api/subscription-reauthorize"""
    _subs(ctx).active()
    _owned(ctx).needs_reauthorization = False
    return GraphResponse(204, media_type=None)


@route("DELETE", "/subscriptions/{id}", scope="root")
async def delete_subscription(ctx: Ctx) -> GraphResponse:
    """https://learn.microsoft.com/graph/api/subscription-delete"""
    sub = _owned(ctx)
    _subs(ctx).items.pop(sub.id, None)
    return GraphResponse(204, media_type=None)
