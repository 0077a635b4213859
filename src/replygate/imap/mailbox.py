"""`ReplyMailbox` over IMAP: folder paths, UID pages, raw MIME, MOVE or COPY+EXPUNGE.

One connection is kept open between calls and reopened after a failure. Costs per page:
SELECT + 1 UID SEARCH (more only in folders with sparse UIDs) + 1 UID FETCH of headers +
1 UID FETCH of the small messages' MIME (larger ones: 1 UID FETCH each, when read); per
disposal batch: SELECT + 1 UID SEARCH + 1 MOVE per target (or COPY + STORE + UID EXPUNGE).

Nothing is marked read (BODY.PEEK), and only the UIDs given are ever expunged: without
UIDPLUS (UID EXPUNGE) a message is flagged \\Deleted and left for the server to expunge,
since a plain EXPUNGE would also remove what others flagged.
"""

from __future__ import annotations

import imaplib
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from types import TracebackType

from replygate.imap.errors import CursorExpired, FolderNotFound, MessageGone
from replygate.imap.protocol import (
    Folder,
    expand_set,
    message_id,
    parse_cursor,
    parse_fetch,
    parse_list,
    parse_message_id,
    quote,
    remote_message,
    search_date,
    uid_set,
    uids_of,
)
from replygate.imap.session import ImapSession, ImapSettings, mapped
from replygate.services.mail_ports import (
    ChangesPage,
    Disposal,
    DisposalKind,
    DisposalResult,
    RemoteMessage,
)

IDLE_CHECK_SECONDS = 60.0
HEADERS = "(UID INTERNALDATE FLAGS RFC822.SIZE BODY.PEEK[HEADER])"
# The reader asks for every listed message's MIME next: small ones come with the page, in
# one more FETCH, instead of one FETCH each (bounded memory).
PREFETCH_MESSAGE = 256 * 1024
PREFETCH_PAGE = 4 * 1024 * 1024
# Names Outlook users know, found by SPECIAL-USE when no folder of that name exists.
SPECIAL = {
    "deleted items": "\\trash",
    "deleteditems": "\\trash",
    "trash": "\\trash",
    "sent items": "\\sent",
    "sentitems": "\\sent",
    "junk email": "\\junk",
    "junkemail": "\\junk",
    "archive": "\\archive",
    "drafts": "\\drafts",
}


class ImapReplyMailbox:
    """`ReplyMailbox` over IMAP for one account. Thread-safe; close it when done."""

    def __init__(
        self,
        settings: ImapSettings,
        *,
        mailbox: str | None = None,
        page_size: int = 100,
        use_move: bool = True,
    ) -> None:
        self.settings = settings
        self.mailbox: str = mailbox or str(getattr(settings.credentials, "username", settings.host))
        self.page_size = page_size
        self.use_move = use_move  # False forces COPY + STORE \Deleted + UID EXPUNGE
        self._lock = threading.Lock()
        self._session: ImapSession | None = None
        self._used_at = 0.0
        self._prefetched: dict[str, bytes] = {}  # raw MIME of the last page's small messages

    def __enter__(self) -> ImapReplyMailbox:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            if self._session is not None:
                session, self._session = self._session, None
                session.close()

    @contextmanager
    def _open(self) -> Iterator[ImapSession]:
        """The live session; any failure drops it so the next call reconnects."""
        with self._lock:
            try:
                with mapped(f"{self.settings.host}:{self.settings.port}"):
                    if self._session is not None and not self._alive(self._session):
                        self._drop()
                    if self._session is None:
                        self._session = ImapSession(self.settings)
                    yield self._session
                    self._used_at = time.monotonic()
            except BaseException as error:
                if not isinstance(error, FolderNotFound | CursorExpired):
                    self._drop()  # the protocol state is unknown: start again next time
                raise

    def _alive(self, session: ImapSession) -> bool:
        """After a pause, NOOP first: servers log idle sessions out (RFC 3501: 30 min)."""
        if time.monotonic() - self._used_at < IDLE_CHECK_SECONDS:
            return True
        try:
            return session.imap.noop()[0] == "OK"
        except (imaplib.IMAP4.error, OSError):
            return False

    def _drop(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            session.abandon()

    # --- folders ------------------------------------------------------------------------

    def folders(self) -> list[Folder]:
        with self._open() as session:
            return self._list(session)

    @staticmethod
    def _list(session: ImapSession) -> list[Folder]:
        typ, data = session.imap.list()
        return parse_list(session.check(typ, data, "LIST"))

    def resolve_folder(self, path: str) -> str:
        """The server's name of `Inbox/Approvals` (any hierarchy delimiter; INBOX in any
        case; Outlook names such as `Deleted Items` found by SPECIAL-USE)."""
        parts = [p.strip() for p in path.replace("\\", "/").split("/") if p.strip()]
        if not parts:
            raise FolderNotFound("No folder was given.", fix="Give a path such as Inbox/Approvals.")
        with self._open() as session:
            folders = [f for f in self._list(session) if f.selectable]
        if parts[0].casefold() == "inbox":
            parts[0] = "INBOX"
        wanted = ["/".join(parts)]
        if parts[0] != "INBOX":  # servers that keep every folder under INBOX (Courier, Cyrus)
            wanted.append("/".join(["INBOX", *parts]))
        for name in wanted:  # `display` shows the server's delimiter as /
            hits = [f for f in folders if f.display == name] or [
                f for f in folders if f.display.casefold() == name.casefold()
            ]
            if hits:
                return hits[0].name
        special = SPECIAL.get(parts[0].casefold()) if len(parts) == 1 else None
        for folder in folders:
            if special and special in folder.flags:
                return folder.name
        existing = tuple(sorted(f.display for f in folders))
        raise FolderNotFound(
            f"The folder {'/'.join(parts)!r} does not exist in the mailbox of {self.mailbox}.",
            fix="Folders there: "
            + (", ".join(existing) or "(none)")
            + ". Create the folder or correct the Email Reply Folder.",
            existing=existing,
        )

    # --- messages -----------------------------------------------------------------------

    def changes(
        self, folder_id: str, cursor: str | None, *, since: datetime | None = None
    ) -> ChangesPage:
        """Messages with a UID above the cursor's, oldest first, `page_size` at a time."""
        with self._open() as session:
            state = session.select(folder_id, fresh=True)
            last = 0
            if cursor:
                validity, last = parse_cursor(cursor)
                if validity != state.uidvalidity:
                    raise CursorExpired(
                        f"UIDVALIDITY of {folder_id} changed ({validity} -> "
                        f"{state.uidvalidity}): the folder is read again.",
                    )
            uids = self._new_uids(session, last, state.uidnext, since)
            page, more = uids[: self.page_size], len(uids) > self.page_size
            messages: list[RemoteMessage] = []
            sizes: dict[int, int] = {}
            if page:
                fetched = parse_fetch(session.uid("FETCH", uid_set(page), HEADERS))
                for item in sorted(fetched, key=lambda f: f.uid):
                    if item.uid not in page:
                        continue  # an unsolicited FETCH (flags changed elsewhere)
                    found = remote_message(message_id(state.uidvalidity, item.uid, folder_id), item)
                    if since is None or found.received_at is None or found.received_at >= since:
                        messages.append(found)
                        sizes[item.uid] = int(item.item("RFC822.SIZE") or 0)
            self._prefetch(session, state.uidvalidity, folder_id, sizes)
        next_last = page[-1] if page else last
        return ChangesPage(messages, next_cursor=f"{state.uidvalidity}:{next_last}", more=more)

    def _prefetch(
        self, session: ImapSession, validity: int, folder: str, sizes: dict[int, int]
    ) -> None:
        self._prefetched = {}
        chosen: list[int] = []
        total = 0
        for uid, size in sorted(sizes.items()):
            if 0 < size <= PREFETCH_MESSAGE and total + size <= PREFETCH_PAGE:
                chosen.append(uid)
                total += size
        if chosen:
            for item in parse_fetch(session.uid("FETCH", uid_set(chosen), "(UID BODY.PEEK[])")):
                if item.uid in sizes:
                    self._prefetched[message_id(validity, item.uid, folder)] = item.literal

    def _new_uids(
        self, session: ImapSession, last: int, uidnext: int | None, since: datetime | None
    ) -> list[int]:
        """Up to page_size + 1 UIDs above `last`: searched in growing UID windows so that
        a folder of a million messages never answers with a million UIDs at once."""
        extra = ("SINCE", search_date(since)) if since else ()
        found: list[int] = []
        start, window = last + 1, self.page_size * 4
        while len(found) <= self.page_size:
            if uidnext is not None and start >= uidnext:
                break
            end = "*" if uidnext is None else str(min(start + window - 1, uidnext - 1))
            # `n:*` also matches the highest UID when it is below n: filter.
            found += [
                u
                for u in uids_of(session.uid("SEARCH", f"UID {start}:{end}", *extra))
                if u >= start
            ]
            if end == "*":
                break
            start, window = int(end) + 1, window * 2
        return sorted(set(found))[: self.page_size + 1]

    def fetch_mime(self, message_id: str) -> bytes:
        """The raw message, read with BODY.PEEK[] so it stays unread."""
        validity, uid, folder = parse_message_id(message_id)
        with self._lock:
            cached = self._prefetched.pop(message_id, None)
        if cached is not None:
            return cached
        with self._open() as session:
            state = session.select(folder)
            if state.uidvalidity == validity:
                for item in parse_fetch(session.uid("FETCH", str(uid), "(UID BODY.PEEK[])")):
                    if item.uid == uid:
                        return item.literal
        raise MessageGone(f"The message {message_id} is no longer in {folder}.")

    # --- disposal -----------------------------------------------------------------------

    def dispose(self, items: Sequence[Disposal]) -> list[DisposalResult]:
        """One result per item, in order. A UID that no longer exists counts as done (an
        earlier attempt moved it); a stale UIDVALIDITY is never acted on."""
        results: dict[int, DisposalResult] = {}
        by_folder: dict[str, list[tuple[int, Disposal, int, int]]] = {}
        for index, item in enumerate(items):
            try:
                validity, uid, folder = parse_message_id(item.message_id)
            except ValueError:
                results[index] = DisposalResult(item.message_id, False, error_code="BAD_ID")
                continue
            by_folder.setdefault(folder, []).append((index, item, validity, uid))
        with self._open() as session:
            trash: str | None = None
            if any(i.kind is DisposalKind.DELETE for i in items):
                trash = _trash(self._list(session))
            for folder, entries in by_folder.items():
                results |= self._dispose_in(session, folder, entries, trash)
        return [results[i] for i in range(len(items))]

    def _dispose_in(
        self,
        session: ImapSession,
        folder: str,
        entries: list[tuple[int, Disposal, int, int]],
        trash: str | None,
    ) -> dict[int, DisposalResult]:
        results: dict[int, DisposalResult] = {}
        state = session.select(folder, fresh=True)  # the UIDVALIDITY of now, not of earlier
        present = set(uids_of(session.uid("SEARCH", "UID", uid_set([e[3] for e in entries]))))
        targets: dict[str | None, list[tuple[int, Disposal, int]]] = {}
        for index, item, validity, uid in entries:
            if validity != state.uidvalidity:
                results[index] = DisposalResult(
                    item.message_id, False, error_code="UIDVALIDITY", message="folder was reset"
                )
            elif uid not in present:
                results[index] = DisposalResult(item.message_id, True, message="already gone")
            else:
                target = item.folder_id if item.kind is DisposalKind.MOVE else None
                if item.kind is DisposalKind.DELETE and trash != folder:
                    target = trash  # to the Trash; from the Trash itself (or none): purge
                if item.kind is DisposalKind.MOVE and not target:
                    raise ValueError("a move needs a folder id")
                targets.setdefault(target, []).append((index, item, uid))
        for target, chosen in targets.items():
            uids = [uid for _, _, uid in chosen]
            new = self._move(session, uids, target) if target else self._purge(session, uids)
            for index, item, uid in chosen:
                results[index] = DisposalResult(item.message_id, True, new_id=new.get(uid))
        return results

    def _move(self, session: ImapSession, uids: list[int], target: str) -> dict[int, str]:
        """MOVE when the server has it, else COPY + \\Deleted + UID EXPUNGE of these UIDs."""
        session.imap.untagged_responses.pop("COPYUID", None)
        if self.use_move and session.has("MOVE"):
            data = session.uid("MOVE", uid_set(uids), quote(target))
        else:
            data = session.uid("COPY", uid_set(uids), quote(target))
            self._purge(session, uids)
        return _copied(data + session.imap.untagged_responses.pop("COPYUID", []), target)

    @staticmethod
    def _purge(session: ImapSession, uids: list[int]) -> dict[int, str]:
        session.uid("STORE", uid_set(uids), "+FLAGS.SILENT", "(\\Deleted)")
        if session.has("UIDPLUS"):
            session.uid("EXPUNGE", uid_set(uids))
        return {}


def _trash(folders: list[Folder]) -> str | None:
    """The SPECIAL-USE \\Trash folder, else one with a usual name (servers without it)."""
    for folder in folders:
        if "\\trash" in folder.flags:
            return folder.name
    names = {"trash", "deleted items", "deleted messages", "inbox/trash"}
    return next((f.name for f in folders if f.display.casefold() in names), None)


def _copied(data: list[object], target: str) -> dict[int, str]:
    """Old UID -> new message id, from COPYUID (UIDPLUS) when the server gave it."""
    for line in data:
        text = line.decode("ascii", "replace") if isinstance(line, bytes) else str(line)
        parts = text.replace("[", " ").replace("]", " ").split()
        if "COPYUID" in parts:
            parts = parts[parts.index("COPYUID") + 1 :]
        if len(parts) >= 3 and parts[0].isdigit():
            try:
                old, new = expand_set(parts[1]), expand_set(parts[2])
            except ValueError:
                continue
            return {o: message_id(int(parts[0]), n, target) for o, n in zip(old, new, strict=False)}
    return {}
