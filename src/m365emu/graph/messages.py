"""Message endpoints: list, get, create draft, update, delete, move, send, raw MIME."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any

from m365emu.delivery import WRITABLE, body_changes
from m365emu.graph import odata
from m365emu.graph.access import require, sender_for
from m365emu.graph.core import Ctx, GraphResponse, route
from m365emu.graph.errors import GraphError, bad_request, not_found
from m365emu.graph.serialize import canonical, message_json
from m365emu.mailstore import Mailbox, StoredMessage
from m365emu.mime import parse_mime

MAX_CUSTOM_HEADERS = 5
MAX_RECIPIENTS = 500
# Properties a PATCH may change (https://learn.microsoft.com/graph/api/message-update);
# only drafts may change their content.
PATCH_ANY = frozenset({"isRead", "categories", "importance", "flag", "inferenceClassification"})
_MESSAGE_FILTERS: dict[str, Callable[[StoredMessage], Any]] = {
    "receiveddatetime": lambda m: m.fields.get("receivedDateTime") or "",
    "sentdatetime": lambda m: m.fields.get("sentDateTime") or "",
    "isread": lambda m: bool(m.fields.get("isRead")),
    "isdraft": lambda m: bool(m.fields.get("isDraft")),
    "subject": lambda m: m.fields.get("subject") or "",
    "conversationid": lambda m: m.fields.get("conversationId") or "",
    "internetmessageid": lambda m: m.fields.get("internetMessageId") or "",
}


def text_body(ctx: Ctx) -> bool:
    if ctx.prefer.get("outlook.body-content-type", "").lower() != "text":
        return False
    if 'outlook.body-content-type="text"' not in ctx.applied:
        ctx.applied.append('outlook.body-content-type="text"')
    return True


def check_select(select: list[str] | None) -> list[str] | None:
    """Graph refuses unknown properties in `$select` (400)."""
    for name in select or []:
        if canonical(name) is None:
            raise bad_request(
                f"Could not find a property named '{name}' on type 'microsoft.graph.message'.",
                "RequestBroker--ParseUri",
            )
    return select


def render(ctx: Ctx, msg: StoredMessage, select: list[str] | None = None) -> dict[str, Any]:
    return message_json(msg, select, ctx.immutable, text_body(ctx))


def find(ctx: Ctx, ref: str) -> StoredMessage:
    msg = ctx.box().message(ref)
    if msg is None:
        raise not_found()
    return msg


def folder_of(ctx: Ctx, ref: str) -> str:
    folder = ctx.box().folder(ref)
    if folder is None:
        raise not_found()
    return folder.id


def check_headers(message: dict[str, Any]) -> None:
    """Custom headers: `x-` names only, at most 5, never an empty list (user-sendmail)."""
    if "internetMessageHeaders" not in message:
        return
    headers = message["internetMessageHeaders"]
    if not isinstance(headers, list) or not headers or len(headers) > MAX_CUSTOM_HEADERS:
        raise bad_request(
            "Maximum number of headers in one message should be less than or equal to 5.",
            "InvalidInternetMessageHeaderCollection",
        )
    for h in headers:
        name = str((h or {}).get("name") or "")
        if not name.lower().startswith("x-"):
            raise bad_request(
                f"The internet message header name '{name}' should start with 'x-' or 'X-'.",
                "InvalidInternetMessageHeader",
            )


def check_recipients(message: dict[str, Any]) -> None:
    keys = ("toRecipients", "ccRecipients", "bccRecipients")
    everyone = [r for k in keys for r in message.get(k) or []]
    if not everyone:
        raise bad_request(
            "At least one recipient isn't valid., A message can't be sent because it contains "
            "no recipients.",
            "ErrorInvalidRecipients",
        )
    if len(everyone) > MAX_RECIPIENTS or any(
        "@" not in str((r.get("emailAddress") or {}).get("address") or "") for r in everyone
    ):
        raise bad_request("At least one recipient isn't valid.", "ErrorInvalidRecipients")


def mime_body(ctx: Ctx) -> bytes | None:
    """The MIME alternative: `Content-Type: text/plain`, body = base64 of the message."""
    ctype = ctx.req.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "text/plain":
        return None
    try:
        return base64.b64decode(ctx.req.body.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise bad_request(
            "Invalid base64 string for MIME content.", "ErrorMimeContentInvalidBase64String"
        ) from None


# -- listing --------------------------------------------------------------------------------


def _ordered(
    mb: Mailbox, folder_id: str | None, q: odata.Query, prop: str, desc: bool
) -> list[StoredMessage]:
    """The filtered, ordered listing; cached until the store changes."""
    items = list(mb.messages.values()) if folder_id is None else mb.in_folder(folder_id)
    if folder_id is None:  # the mailbox-wide list skips hidden system folders
        hidden = {f.id for f in mb.folders.values() if f.hidden}
        items = [m for m in items if m.folder_id not in hidden]
    if q.filter:
        keep = odata.matcher(q.filter, _MESSAGE_FILTERS)
        items = [m for m in items if keep(m)]
    getter = _MESSAGE_FILTERS.get(prop.lower(), _MESSAGE_FILTERS["receiveddatetime"])
    items.sort(key=lambda m: (getter(m), m.seq), reverse=desc)
    return items


async def list_in(ctx: Ctx, folder_id: str | None) -> GraphResponse:
    require(ctx, "read")
    q = odata.parse(ctx.req.query)
    check_select(q.select)
    mb = ctx.box()
    prop, desc = q.orderby or ("receivedDateTime", True)
    key = ("list", folder_id, repr(q.filter), prop.lower(), desc)
    items: list[StoredMessage] = mb.cached(
        key, ctx.mail.store.seq, lambda: _ordered(mb, folder_id, q, prop, desc)
    )
    top = q.top or 10
    page = items[q.skip : q.skip + top]
    where = f"mailFolders('{folder_id}')/messages" if folder_id else "messages"
    out: dict[str, Any] = {
        "@odata.context": f"{ctx.graph_base}/$metadata#users('{ctx.user.id if ctx.user else ''}')"
        f"/{where}",
        "value": [render(ctx, m, q.select) for m in page],
    }
    if q.skip + top < len(items):
        params = dict(ctx.req.query)
        params["$skip"] = str(q.skip + top)
        params["$top"] = str(top)
        out["@odata.nextLink"] = ctx.link(params)
    return ctx.ok(out)


@route("GET", "/messages")
async def list_messages(ctx: Ctx) -> GraphResponse:
    """List messages in the whole mailbox. https://learn.microsoft.com/graph/api/user-list-messages"""
    return await list_in(ctx, None)


@route("GET", "/mailFolders/{id}/messages")
async def list_folder_messages(ctx: Ctx) -> GraphResponse:
    """List messages in a folder. https://learn.microsoft.com/graph/api/mailfolder-list-messages"""
    return await list_in(ctx, folder_of(ctx, ctx.params[0]))


# -- single message ---------------------------------------------------------------------------


@route("GET", "/messages/{id}")
@route("GET", "/mailFolders/{id}/messages/{id}")
async def get_message(ctx: Ctx) -> GraphResponse:
    """Get a message. https://learn.microsoft.com/graph/api/message-get"""
    require(ctx, "read")
    q = odata.parse(ctx.req.query, default_top=None)
    return ctx.ok(render(ctx, find(ctx, ctx.params[-1]), check_select(q.select)))


@route("GET", "/messages/{id}/$value")
@route("GET", "/mailFolders/{id}/messages/{id}/$value")
async def get_mime(ctx: Ctx) -> GraphResponse:
    """Raw RFC 5322 content. https://learn.microsoft.com/graph/outlook-get-mime-message"""
    require(ctx, "read")
    msg = find(ctx, ctx.params[-1])
    raw = msg.raw or ctx.mail.draft_mime(ctx.box(), msg)
    return GraphResponse(200, raw, media_type="text/plain")


@route("PATCH", "/messages/{id}")
@route("PATCH", "/mailFolders/{id}/messages/{id}")
async def update_message(ctx: Ctx) -> GraphResponse:
    """Update a message. https://learn.microsoft.com/graph/api/message-update"""
    require(ctx, "write")
    msg = find(ctx, ctx.params[-1])
    changes = ctx.json()
    allowed = PATCH_ANY | (frozenset(WRITABLE) if msg.fields.get("isDraft") else frozenset())
    bad = [k for k in changes if k not in allowed]
    if bad:
        raise bad_request(f"The property '{bad[0]}' cannot be updated.", "ErrorInvalidPropertySet")
    if "internetMessageHeaders" in changes:
        check_headers(changes)
    if "body" in changes:
        changes.update(body_changes(changes["body"]))
    ctx.mail.store.update_message(ctx.box(), msg, changes)
    return ctx.ok(render(ctx, msg))


@route("DELETE", "/messages/{id}")
@route("DELETE", "/mailFolders/{id}/messages/{id}")
async def delete_message(ctx: Ctx) -> GraphResponse:
    """Delete: a soft delete into Recoverable Items (https://learn.microsoft.com/graph/api/message-delete)."""
    require(ctx, "write")
    mb, msg = ctx.box(), find(ctx, ctx.params[-1])
    dumpster = mb.folder("recoverableitemsdeletions")
    if dumpster is None or msg.folder_id == dumpster.id:
        ctx.mail.store.remove_message(mb, msg)
    else:
        ctx.mail.store.move_message(mb, msg, dumpster.id)
    return GraphResponse(204, media_type=None)


@route("POST", "/messages/{id}/permanentDelete")
@route("POST", "/mailFolders/{id}/messages/{id}/permanentDelete")
async def permanent_delete(ctx: Ctx) -> GraphResponse:
    """Purge a message. https://learn.microsoft.com/graph/api/message-permanentdelete"""
    require(ctx, "write")
    ctx.mail.store.remove_message(ctx.box(), find(ctx, ctx.params[-1]))
    return GraphResponse(204, media_type=None)


@route("POST", "/messages/{id}/move")
@route("POST", "/mailFolders/{id}/messages/{id}/move")
async def move_message(ctx: Ctx) -> GraphResponse:
    """Move; 201 with the moved item and its new id. https://learn.microsoft.com/graph/api/message-move"""
    require(ctx, "write")
    msg = find(ctx, ctx.params[-1])
    dest = str(ctx.json().get("destinationId") or "")
    if not dest:
        raise bad_request("The destinationId parameter is required.", "ErrorInvalidIdMalformed")
    folder = ctx.box().folder(dest)
    if folder is None:
        raise not_found()
    if folder.id != msg.folder_id:
        ctx.mail.store.move_message(ctx.box(), msg, folder.id)
    return ctx.ok(render(ctx, msg), 201)


# -- drafts and sending -----------------------------------------------------------------------


@route("POST", "/messages")
@route("POST", "/mailFolders/{id}/messages")
async def create_draft(ctx: Ctx) -> GraphResponse:
    """Create a draft (201). https://learn.microsoft.com/graph/api/user-post-messages"""
    require(ctx, "write")
    folder_id = folder_of(ctx, ctx.params[0] if ctx.params else "drafts")
    raw = mime_body(ctx)
    if raw is not None:
        return ctx.ok(render(ctx, ctx.mail.draft_from_mime(ctx.box(), folder_id, raw)), 201)
    message = ctx.json()
    check_headers(message)
    msg = ctx.mail.create_draft(ctx.box(), folder_id, message)
    return ctx.ok(render(ctx, msg), 201)


@route("POST", "/messages/{id}/send")
@route("POST", "/mailFolders/{id}/messages/{id}/send")
async def send_draft(ctx: Ctx) -> GraphResponse:
    """Send a draft (202, saved to Sent Items). https://learn.microsoft.com/graph/api/message-send"""
    require(ctx, "send")
    msg = find(ctx, ctx.params[-1])
    if not msg.fields.get("isDraft"):
        raise bad_request("Only draft messages can be sent.", "ErrorInvalidOperation")
    check_recipients(msg.fields)
    frm, sender = sender_for(ctx, msg.fields.get("from"))
    msg.fields["from"] = frm
    msg.fields["sender"] = sender or frm
    ctx.mail.send_draft(ctx.box(), msg, sender)
    return GraphResponse(202, media_type=None)


@route("POST", "/sendMail")
async def send_mail(ctx: Ctx) -> GraphResponse:
    """sendMail: 202 with no body. https://learn.microsoft.com/graph/api/user-sendmail"""
    require(ctx, "send")
    raw = mime_body(ctx)
    if raw is not None:
        fields = parse_mime(raw)
        check_recipients(fields)
        if fields.get("from"):
            sender_for(ctx, fields["from"])  # Send As rules apply to MIME too
        ctx.mail.send_raw(ctx.box(), raw)
        return GraphResponse(202, media_type=None)
    payload = ctx.json()
    message = payload.get("message")
    if not isinstance(message, dict):
        raise GraphError(400, "ErrorInvalidParameter", "Required parameter 'Message' is missing.")
    check_headers(message)
    check_recipients(message)
    frm, sender = sender_for(ctx, message.get("from"))
    message = {**message, "from": frm}
    save = payload.get("saveToSentItems", True)
    ctx.mail.send_new(ctx.box(), message, sender, save_to_sent=save is not False)
    return GraphResponse(202, media_type=None)
