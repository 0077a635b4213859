"""In-memory Exchange-like mail store: mailboxes, folders, messages and a change log.

Ids follow Exchange's two flavours (https://learn.microsoft.com/graph/outlook-immutable-id):
a REST id that changes whenever the item moves, and an immutable id that does not.
Every change bumps a store-wide sequence number, and removals leave a tombstone in the
folder they left, which is all the delta query needs.
"""

from __future__ import annotations

import base64
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

# Graph well-known folder names (https://learn.microsoft.com/graph/api/resources/mailfolder)
# with the display names Exchange gives them in an English mailbox.
WELL_KNOWN_FOLDERS: dict[str, str] = {
    "inbox": "Inbox",
    "drafts": "Drafts",
    "sentitems": "Sent Items",
    "deleteditems": "Deleted Items",
    "junkemail": "Junk Email",
    "archive": "Archive",
    "outbox": "Outbox",
    "conversationhistory": "Conversation History",
}
# Hidden system folders: addressable by name, not listed.
HIDDEN_FOLDERS: dict[str, str] = {
    "recoverableitemsdeletions": "Deletions",
    "searchfolders": "Finder",
}


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii")


def new_rest_id() -> str:
    """A REST item id shaped like Exchange's (`AAMkA...=`); it changes on every move."""
    return "AAMkAGI2" + _b64(secrets.token_bytes(33)) + "AAA="


def new_immutable_id() -> str:
    """An immutable id shaped like Exchange's (`AAkALg...`)."""
    return "AAkALgAA" + _b64(secrets.token_bytes(33)) + "AAA="


def new_folder_id() -> str:
    return "AAMkAGI2AAuAAAAA" + _b64(secrets.token_bytes(24)) + "AAA="


def new_change_key() -> str:
    return "CQAAABYAAAA" + _b64(secrets.token_bytes(12))


@dataclass
class Folder:
    id: str
    display_name: str
    parent_id: str
    well_known: str | None = None
    hidden: bool = False


@dataclass
class StoredMessage:
    """One item. `fields` holds Graph's message properties except the ones computed here."""

    immutable_id: str
    rest_id: str
    folder_id: str
    fields: dict[str, Any]
    raw: bytes
    created: datetime
    modified: datetime
    seq: int
    change_key: str = field(default_factory=new_change_key)
    arrived: int = 0  # sequence number of its arrival in the current folder

    @property
    def received(self) -> str:
        return str(self.fields.get("receivedDateTime", ""))


@dataclass(frozen=True)
class Tombstone:
    seq: int
    rest_id: str
    immutable_id: str


@dataclass
class Mailbox:
    user_id: str
    address: str
    display_name: str
    root_id: str = field(default_factory=new_folder_id)
    folders: dict[str, Folder] = field(default_factory=dict)
    well_known: dict[str, str] = field(default_factory=dict)
    messages: dict[str, StoredMessage] = field(default_factory=dict)  # by immutable id
    rest_index: dict[str, str] = field(default_factory=dict)  # rest id -> immutable id
    tombstones: dict[str, list[Tombstone]] = field(default_factory=dict)  # by folder id
    rules: list[dict[str, Any]] = field(default_factory=list)
    by_folder: dict[str, dict[str, StoredMessage]] = field(default_factory=dict)
    # internetMessageId -> (conversationId, conversationIndex), to thread replies quickly
    conversations: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    # Derived views (folder counts, sorted listings) valid while the store's seq is unchanged.
    memo: dict[Any, tuple[int, Any]] = field(default_factory=dict)

    def cached(self, key: Any, seq: int, compute: Callable[[], Any]) -> Any:
        hit = self.memo.get(key)
        if hit is not None and hit[0] == seq:
            return hit[1]
        value = compute()
        if len(self.memo) > 256:  # bounded: listings with many distinct filters
            self.memo.clear()
        self.memo[key] = (seq, value)
        return value

    def place(self, msg: StoredMessage) -> None:
        self.messages[msg.immutable_id] = msg
        self.rest_index[msg.rest_id] = msg.immutable_id
        self.by_folder.setdefault(msg.folder_id, {})[msg.immutable_id] = msg

    def unplace(self, msg: StoredMessage) -> None:
        self.messages.pop(msg.immutable_id, None)
        self.rest_index.pop(msg.rest_id, None)
        self.by_folder.get(msg.folder_id, {}).pop(msg.immutable_id, None)

    def folder(self, ref: str) -> Folder | None:
        """A folder by id or (case-insensitive) well-known name."""
        key = self.well_known.get(ref.lower())
        return self.folders.get(key or ref)

    def message(self, ref: str) -> StoredMessage | None:
        """A message by either id flavour (Graph accepts both on input)."""
        msg = self.messages.get(ref)
        if msg is None:
            imm = self.rest_index.get(ref)
            msg = self.messages.get(imm) if imm else None
        return msg

    def children(self, parent_id: str) -> list[Folder]:
        return [f for f in self.folders.values() if f.parent_id == parent_id]

    def in_folder(self, folder_id: str) -> list[StoredMessage]:
        return list(self.by_folder.get(folder_id, {}).values())


# (mailbox, folder id, message, change type) -> None; change type is created|updated|deleted
Listener = Callable[[Mailbox, str, StoredMessage, str], None]


def utcnow() -> datetime:
    return datetime.now(UTC)


class MailStore:
    """All mailboxes of the tenant. Handlers run on one event loop; the lock covers the rest."""

    def __init__(self, now: Callable[[], datetime] = utcnow) -> None:
        self.now = now
        self.mailboxes: dict[str, Mailbox] = {}
        self.by_address: dict[str, str] = {}
        self.outbound: list[dict[str, Any]] = []
        self.listeners: list[Listener] = []
        self.seq = 0
        self.delta_epoch = 1  # bumping it makes every issued delta token invalid
        self.lock = threading.RLock()

    # -- mailboxes and folders -------------------------------------------------------------

    def add_mailbox(
        self, user_id: str, address: str, display_name: str, aliases: tuple[str, ...] = ()
    ) -> Mailbox:
        with self.lock:
            existing = self.mailboxes.get(user_id)
            if existing is not None:
                return existing
            mb = Mailbox(user_id=user_id, address=address, display_name=display_name)
            mb.folders[mb.root_id] = Folder(mb.root_id, "Top of Information Store", "", hidden=True)
            mb.well_known["msgfolderroot"] = mb.root_id
            for name, display in WELL_KNOWN_FOLDERS.items():
                self._add_folder(mb, display, mb.root_id, name)
            for name, display in HIDDEN_FOLDERS.items():
                self._add_folder(mb, display, mb.root_id, name, hidden=True)
            self.mailboxes[user_id] = mb
            for addr in (address, *aliases):
                self.by_address[addr.lower()] = user_id
            return mb

    def _add_folder(
        self,
        mb: Mailbox,
        name: str,
        parent: str,
        well_known: str | None = None,
        hidden: bool = False,
    ) -> Folder:
        folder = Folder(new_folder_id(), name, parent, well_known, hidden)
        mb.folders[folder.id] = folder
        self.seq += 1  # cached folder views (child counts) are stale now
        if well_known:
            mb.well_known[well_known] = folder.id
        return folder

    def create_folder(self, mb: Mailbox, parent_id: str, name: str) -> Folder:
        with self.lock:
            return self._add_folder(mb, name, parent_id)

    def ensure_path(self, mb: Mailbox, path: str) -> Folder:
        """`Inbox/Approvals` -> that folder, creating missing levels (for tests and the demo)."""
        with self.lock:
            parts = [p for p in path.split("/") if p]
            current = mb.folder(parts[0]) or next(
                (f for f in mb.children(mb.root_id) if f.display_name.lower() == parts[0].lower()),
                None,
            )
            if current is None:
                current = self._add_folder(mb, parts[0], mb.root_id)
            for part in parts[1:]:
                found = next(
                    (f for f in mb.children(current.id) if f.display_name.lower() == part.lower()),
                    None,
                )
                current = found or self._add_folder(mb, part, current.id)
            return current

    def mailbox_for(self, address: str) -> Mailbox | None:
        uid = self.by_address.get(address.lower())
        return self.mailboxes.get(uid) if uid else None

    # -- messages --------------------------------------------------------------------------

    def _next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def add_message(
        self, mb: Mailbox, folder_id: str, fields: dict[str, Any], raw: bytes
    ) -> StoredMessage:
        with self.lock:
            now = self.now()
            msg = StoredMessage(
                immutable_id=new_immutable_id(),
                rest_id=new_rest_id(),
                folder_id=folder_id,
                fields=fields,
                raw=raw,
                created=now,
                modified=now,
                seq=self._next_seq(),
            )
            msg.arrived = msg.seq
            mb.place(msg)
        self._emit(mb, folder_id, msg, "created")
        return msg

    def update_message(self, mb: Mailbox, msg: StoredMessage, changes: dict[str, Any]) -> None:
        with self.lock:
            msg.fields.update(changes)
            msg.modified = self.now()
            msg.seq = self._next_seq()
            msg.change_key = new_change_key()
        self._emit(mb, msg.folder_id, msg, "updated")

    def move_message(self, mb: Mailbox, msg: StoredMessage, folder_id: str) -> StoredMessage:
        """Moves in place; the REST id changes as in Exchange, the immutable id stays."""
        with self.lock:
            old_folder = msg.folder_id
            self._tombstone(mb, msg)
            mb.unplace(msg)
            msg.rest_id = new_rest_id()
            msg.folder_id = folder_id
            msg.modified = self.now()
            msg.seq = msg.arrived = self._next_seq()
            mb.place(msg)
            msg.change_key = new_change_key()
        self._emit(mb, old_folder, msg, "deleted")
        self._emit(mb, folder_id, msg, "created")
        return msg

    def remove_message(self, mb: Mailbox, msg: StoredMessage) -> None:
        with self.lock:
            self._tombstone(mb, msg)
            mb.unplace(msg)
        self._emit(mb, msg.folder_id, msg, "deleted")

    def _tombstone(self, mb: Mailbox, msg: StoredMessage) -> None:
        stone = Tombstone(self._next_seq(), msg.rest_id, msg.immutable_id)
        mb.tombstones.setdefault(msg.folder_id, []).append(stone)

    def _emit(self, mb: Mailbox, folder_id: str, msg: StoredMessage, change: str) -> None:
        for listener in list(self.listeners):
            listener(mb, folder_id, msg, change)

    def invalidate_delta_tokens(self) -> None:
        with self.lock:
            self.delta_epoch += 1

    def log_outbound(self, entry: dict[str, Any]) -> None:
        with self.lock:
            self.outbound.append(entry)

    def reset(self) -> None:
        """Empties every mailbox (folders too) but keeps the mailboxes themselves."""
        with self.lock:
            old = [
                (mb, tuple(a for a, uid in self.by_address.items() if uid == mb.user_id))
                for mb in self.mailboxes.values()
            ]
            self.mailboxes.clear()
            self.by_address.clear()
            self.outbound.clear()
            self.delta_epoch += 1
            for mb, aliases in old:
                self.add_mailbox(mb.user_id, mb.address, mb.display_name, aliases)


def iso(dt: datetime) -> str:
    """Graph's timestamp format: UTC, whole seconds, `Z`."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
