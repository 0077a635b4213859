"""Who may touch which mailbox: Graph permissions combined with Exchange mailbox rights.

Sources: https://learn.microsoft.com/graph/permissions-reference (scopes and roles),
https://learn.microsoft.com/graph/outlook-share-messages-folders (`.Shared` scopes plus
Full Access), https://learn.microsoft.com/graph/outlook-send-mail-from-other-user (Send As
and Send on Behalf, `ErrorSendAsDenied`), and
https://learn.microsoft.com/graph/auth-limit-mailbox-access (app-only access restricted to
listed mailboxes, refused with `ErrorAccessDenied`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from m365emu.graph.errors import (
    ACCESS_DENIED,
    MAILBOX_NOT_ENABLED,
    RAOP_DENIED,
    SEND_AS_DENIED,
    GraphError,
)
from m365emu.identity.tokens import Caller
from m365emu.mailstore import Mailbox
from m365emu.mime import recipient
from m365emu.state import EmulatorState
from m365emu.tenant import User

if TYPE_CHECKING:
    from m365emu.graph.core import Ctx, Graph

# kind -> (delegated scopes on one's own mailbox, delegated scopes on another's, app roles)
PERMISSIONS: dict[str, tuple[frozenset[str], frozenset[str], frozenset[str]]] = {
    "read": (
        frozenset({"Mail.ReadBasic", "Mail.Read", "Mail.ReadWrite"}),
        frozenset({"Mail.Read.Shared", "Mail.ReadWrite.Shared"}),
        frozenset({"Mail.ReadBasic.All", "Mail.ReadBasic", "Mail.Read", "Mail.ReadWrite"}),
    ),
    "write": (
        frozenset({"Mail.ReadWrite"}),
        frozenset({"Mail.ReadWrite.Shared"}),
        frozenset({"Mail.ReadWrite"}),
    ),
    "send": (
        frozenset({"Mail.Send"}),
        frozenset({"Mail.Send.Shared"}),
        frozenset({"Mail.Send"}),
    ),
    "settings_read": (
        frozenset({"MailboxSettings.Read", "MailboxSettings.ReadWrite"}),
        frozenset(),
        frozenset({"MailboxSettings.Read", "MailboxSettings.ReadWrite"}),
    ),
    "settings_write": (
        frozenset({"MailboxSettings.ReadWrite"}),
        frozenset(),
        frozenset({"MailboxSettings.ReadWrite"}),
    ),
}
USER_READ_OTHERS = frozenset({"User.ReadBasic.All", "User.Read.All", "Directory.Read.All"})


def resolve_target(
    state: EmulatorState, graph: Graph, caller: Caller, prefix: str, scope: str
) -> tuple[User | None, Mailbox | None]:
    """The user named by `/me` or `/users/{id|upn}`, and their mailbox when the route needs it."""
    if scope == "root":
        return None, None
    if prefix.lower() == "/me":
        if caller.user is None:
            raise GraphError(
                400, "BadRequest", "/me request is only valid with delegated authentication flow."
            )
        user: User | None = caller.user
    else:
        ref = prefix.split("/", 2)[2]
        user = state.tenant.user_by(ref) or _by_mail(state, ref)
        if user is None:
            if scope == "user":
                raise GraphError(
                    404,
                    "Request_ResourceNotFound",
                    f"Resource '{ref}' does not exist or one of its queried reference-property "
                    "objects are not present.",
                )
            raise GraphError(404, "ErrorInvalidUser", f"The requested user '{ref}' is invalid.")
    assert user is not None
    if scope == "user":
        return user, None
    if caller.app_only:
        allowed = caller.app.application_mailbox_scope
        if allowed is not None and user.upn.lower() not in {a.lower() for a in allowed}:
            raise GraphError(403, "ErrorAccessDenied", RAOP_DENIED)
    mailbox = graph.mail.store.mailboxes.get(user.id) if user.mail else None
    if mailbox is None:
        raise GraphError(404, "MailboxNotEnabledForRESTAPI", MAILBOX_NOT_ENABLED)
    return user, mailbox


def _by_mail(state: EmulatorState, ref: str) -> User | None:
    low = ref.lower()
    return next((u for u in state.tenant.users if u.mail.lower() == low), None)


def require(ctx: Ctx, kind: str) -> None:
    """Raise 403 ErrorAccessDenied unless the caller may do `kind` on the target mailbox."""
    own, shared, roles = PERMISSIONS[kind]
    caller, target = ctx.caller, ctx.user
    if caller.user is None:
        if not caller.roles & roles:
            raise GraphError(403, "ErrorAccessDenied", ACCESS_DENIED)
        return
    if target is None or caller.user.id == target.id:
        if not caller.scopes & (own | shared):
            raise GraphError(403, "ErrorAccessDenied", ACCESS_DENIED)
        return
    rights = ctx.state.tenant.rights_of(caller.user.id, target.id)
    if not caller.scopes & shared or "FullAccess" not in rights:
        raise GraphError(403, "ErrorAccessDenied", ACCESS_DENIED)
    if kind == "send" and not rights & {"SendAs", "SendOnBehalf"}:
        raise GraphError(403, "ErrorSendAsDenied", SEND_AS_DENIED)


def require_user_read(ctx: Ctx) -> None:
    caller, target = ctx.caller, ctx.user
    if caller.user is None:
        ok = bool(caller.roles & USER_READ_OTHERS)
    elif target is not None and caller.user.id == target.id:
        ok = bool(caller.scopes & ({"User.Read", "User.ReadWrite"} | USER_READ_OTHERS))
    else:
        ok = bool(caller.scopes & USER_READ_OTHERS)
    if not ok:
        raise GraphError(
            403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation."
        )


def sender_for(ctx: Ctx, from_value: Any) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(From, Sender) for a send from the target mailbox with `from` possibly set.

    Send As leaves no trace (Sender absent); Send on Behalf shows the real sender."""
    mb, tenant = ctx.box(), ctx.state.tenant
    address = str(((from_value or {}).get("emailAddress") or {}).get("address") or mb.address)
    from_user = tenant.user_by(address) or _by_mail(ctx.state, address)
    if from_user is None:
        raise GraphError(403, "ErrorSendAsDenied", SEND_AS_DENIED)
    frm = recipient(from_user.display_name, from_user.mail or address)
    actor = ctx.caller.user or ctx.user  # delegated: the signed-in user; app-only: the mailbox
    assert actor is not None
    if actor.id == from_user.id:
        return frm, None
    other = from_user.id != (ctx.user.id if ctx.user else "")
    if ctx.caller.user is not None and other and "Mail.Send.Shared" not in ctx.caller.scopes:
        raise GraphError(403, "ErrorSendAsDenied", SEND_AS_DENIED)
    rights = tenant.rights_of(actor.id, from_user.id)
    if "SendAs" in rights:
        return frm, None
    if "SendOnBehalf" in rights:
        return frm, recipient(actor.display_name, actor.mail or actor.upn)
    raise GraphError(403, "ErrorSendAsDenied", SEND_AS_DENIED)
