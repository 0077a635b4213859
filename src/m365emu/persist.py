"""Saving the mail store to a JSON file and loading it back (raw MIME kept as base64)."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from m365emu.mailstore import Folder, Mailbox, MailStore, StoredMessage

_TIMES = ("created", "modified")


def _message_data(m: StoredMessage) -> dict[str, Any]:
    data = {k: v for k, v in vars(m).items() if k not in ("raw", *_TIMES)}
    data["raw"] = base64.b64encode(m.raw).decode("ascii")
    data.update({k: getattr(m, k).isoformat() for k in _TIMES})
    return data


def _message_from(data: dict[str, Any]) -> StoredMessage:
    fields = dict(data)
    fields["raw"] = base64.b64decode(data["raw"])
    fields.update({k: datetime.fromisoformat(data[k]) for k in _TIMES})
    return StoredMessage(**fields)


def dump(store: MailStore) -> dict[str, Any]:
    """The store as JSON-ready data."""
    with store.lock:
        return {
            "seq": store.seq,
            "outbound": store.outbound,
            "mailboxes": [
                {
                    "user_id": mb.user_id,
                    "address": mb.address,
                    "display_name": mb.display_name,
                    "aliases": [a for a, uid in store.by_address.items() if uid == mb.user_id],
                    "root_id": mb.root_id,
                    "folders": [vars(f) for f in mb.folders.values()],
                    "rules": mb.rules,
                    "messages": [_message_data(m) for m in mb.messages.values()],
                }
                for mb in store.mailboxes.values()
            ],
        }


def restore(store: MailStore, data: dict[str, Any]) -> None:
    """Replace the store's content with `dump` output; delta tokens issued before are void."""
    with store.lock:
        store.mailboxes.clear()
        store.by_address.clear()
        store.seq = int(data["seq"])
        store.outbound = list(data.get("outbound", []))
        store.delta_epoch += 1
        for box in data["mailboxes"]:
            mb = Mailbox(box["user_id"], box["address"], box["display_name"], box["root_id"])
            mb.folders = {f["id"]: Folder(**f) for f in box["folders"]}
            mb.well_known = {f.well_known: f.id for f in mb.folders.values() if f.well_known}
            mb.well_known["msgfolderroot"] = mb.root_id
            mb.rules = list(box["rules"])
            for m in box["messages"]:
                msg = _message_from(m)
                mb.place(msg)
                mid, conv = msg.fields.get("internetMessageId"), msg.fields.get("conversationId")
                if mid and conv:
                    mb.conversations[mid] = (conv, msg.fields.get("conversationIndex"))
            store.mailboxes[mb.user_id] = mb
            for addr in [mb.address, *box.get("aliases", [])]:
                store.by_address[addr.lower()] = mb.user_id
