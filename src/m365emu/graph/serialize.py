"""Graph JSON shapes of users, mail folders and messages.

Default message properties and `$select` behaviour follow
https://learn.microsoft.com/graph/api/resources/message: `internetMessageHeaders` and
`uniqueBody` only when selected; `@odata.etag` always; `id` always.
"""

from __future__ import annotations

from typing import Any

from m365emu.mailstore import Folder, Mailbox, StoredMessage, iso
from m365emu.mime import html_to_text
from m365emu.tenant import User

DEFAULT_MESSAGE_PROPS = (
    "createdDateTime",
    "lastModifiedDateTime",
    "changeKey",
    "categories",
    "receivedDateTime",
    "sentDateTime",
    "hasAttachments",
    "internetMessageId",
    "subject",
    "bodyPreview",
    "importance",
    "parentFolderId",
    "conversationId",
    "conversationIndex",
    "isDeliveryReceiptRequested",
    "isReadReceiptRequested",
    "isRead",
    "isDraft",
    "webLink",
    "inferenceClassification",
    "body",
    "sender",
    "from",
    "toRecipients",
    "ccRecipients",
    "bccRecipients",
    "replyTo",
    "flag",
)
SELECT_ONLY = ("internetMessageHeaders", "uniqueBody")
_CANONICAL = {p.lower(): p for p in (*DEFAULT_MESSAGE_PROPS, *SELECT_ONLY, "id")}


def canonical(name: str) -> str | None:
    return _CANONICAL.get(name.lower())


def message_id(msg: StoredMessage, immutable: bool) -> str:
    return msg.immutable_id if immutable else msg.rest_id


def _body(value: Any, as_text: bool) -> Any:
    if not as_text or not isinstance(value, dict) or value.get("contentType") != "html":
        return value
    return {"contentType": "text", "content": html_to_text(str(value.get("content") or ""))}


def message_json(
    msg: StoredMessage,
    select: list[str] | None,
    immutable: bool,
    text_body: bool = False,
) -> dict[str, Any]:
    f = msg.fields
    computed: dict[str, Any] = {
        "createdDateTime": f.get("createdDateTime") or iso(msg.created),
        "lastModifiedDateTime": iso(msg.modified),
        "changeKey": msg.change_key,
        "parentFolderId": msg.folder_id,
        "webLink": "https://outlook.office365.com/owa/?ItemID="
        + message_id(msg, immutable)
        + "&exvsurl=1&viewmodel=ReadMessageItem",
        "categories": f.get("categories", []),
        "inferenceClassification": "focused",
        "isDeliveryReceiptRequested": f.get("isDeliveryReceiptRequested", False),
        "isReadReceiptRequested": f.get("isReadReceiptRequested", False),
        "flag": f.get("flag", {"flagStatus": "notFlagged"}),
    }
    props: tuple[str, ...] = DEFAULT_MESSAGE_PROPS
    if select is not None:
        props = tuple(p for p in (canonical(s) for s in select) if p and p != "id")
    out: dict[str, Any] = {"@odata.etag": f'W/"{msg.change_key}"', "id": message_id(msg, immutable)}
    for prop in props:
        if prop in computed:
            out[prop] = computed[prop]
        elif prop in ("body", "uniqueBody"):
            out[prop] = _body(f.get(prop), text_body)
        else:
            out[prop] = f.get(prop)
    return out


def folder_json(mb: Mailbox, folder: Folder) -> dict[str, Any]:
    total = unread = size = 0
    for m in mb.in_folder(folder.id):
        total += 1
        unread += 0 if m.fields.get("isRead") else 1
        size += len(m.raw)
    return {
        "id": folder.id,
        "displayName": folder.display_name,
        "parentFolderId": folder.parent_id,
        "childFolderCount": len(mb.children(folder.id)),
        "unreadItemCount": unread,
        "totalItemCount": total,
        "sizeInBytes": size,
        "isHidden": folder.hidden,
    }


def user_json(user: User) -> dict[str, Any]:
    given, _, surname = user.display_name.partition(" ")
    return {
        "businessPhones": [],
        "displayName": user.display_name,
        "givenName": given or None,
        "jobTitle": None,
        "mail": user.mail or None,
        "mobilePhone": None,
        "officeLocation": None,
        "preferredLanguage": "en-US",
        "surname": surname or None,
        "userPrincipalName": user.upn,
        "id": user.id,
    }
