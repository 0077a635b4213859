"""Reading replies through Graph: folder paths, delta pages, raw MIME, batched disposal.

Request cost:
- `resolve_folder`: 1 request per path segment (2 for a segment that is not found, to list
  what exists). Resolve once and keep the id.
- `changes`: 1 request per page of up to `page_size` messages. The page carries everything
  parsing needs (`SELECT`), including the body and `internetMessageHeaders`, so a message
  costs no second request. Should Graph leave `internetMessageHeaders` out of a delta page
  (the delta documentation does not promise it), `RemoteMessage.headers` is None and the
  caller fetches the MIME for messages it may act on: +1 request for those only.
- `fetch_mime`: 1 request, or none for a message whose MIME `changes` prefetched: when a
  page holds two or more messages it cannot carry whole (delivery and read reports), their
  MIME comes in one `$batch` (each step still counts against the quota).
- `dispose`: 1 `$batch` request per 20 messages (each inner request still counts against
  the mailbox quota); inner 429/5xx are retried once in a second batch.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from replygate.graph.client import GraphClient, segment
from replygate.graph.errors import FolderNotFound
from replygate.mail.remote import needs_raw
from replygate.services.mail_ports import (
    Address,
    ChangesPage,
    Disposal,
    DisposalKind,
    DisposalResult,
    RemoteMessage,
)

SELECT = (
    "id,internetMessageId,subject,from,sender,toRecipients,ccRecipients,replyTo,"
    "receivedDateTime,isDraft,internetMessageHeaders,body"
)
# Well-known folder names Graph accepts in place of ids, with their English display names.
WELL_KNOWN = {
    "inbox": "inbox",
    "drafts": "drafts",
    "sentitems": "sentitems",
    "sent items": "sentitems",
    "deleteditems": "deleteditems",
    "deleted items": "deleteditems",
    "junkemail": "junkemail",
    "junk email": "junkemail",
    "archive": "archive",
    "outbox": "outbox",
}
BATCH_LIMIT = 20
IMMUTABLE_INNER = {"Prefer": 'IdType="ImmutableId"'}  # $batch steps do not inherit headers


def _odata_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _address(raw: Any) -> Address | None:
    email = (raw or {}).get("emailAddress") if isinstance(raw, dict) else None
    if not isinstance(email, dict) or not email.get("address"):
        return None
    return Address(str(email["address"]), str(email.get("name") or ""))


def _addresses(raw: Any) -> tuple[Address, ...]:
    items = raw if isinstance(raw, list) else [raw] if raw else []
    return tuple(a for a in (_address(r) for r in items) if a is not None)


def remote_message(raw: dict[str, Any]) -> RemoteMessage:
    """A delta/list item as a RemoteMessage."""
    received = raw.get("receivedDateTime")
    headers = raw.get("internetMessageHeaders")
    body = raw.get("body") or {}
    content = str(body.get("content") or "") if isinstance(body, dict) else ""
    is_html = isinstance(body, dict) and str(body.get("contentType", "")).lower() == "html"
    return RemoteMessage(
        id=str(raw["id"]),
        internet_message_id=raw.get("internetMessageId"),
        subject=str(raw.get("subject") or ""),
        from_=_addresses(raw.get("from")),
        sender=_address(raw.get("sender")),
        to=_addresses(raw.get("toRecipients")),
        cc=_addresses(raw.get("ccRecipients")),
        reply_to=_addresses(raw.get("replyTo")),
        received_at=datetime.fromisoformat(received) if received else None,
        is_draft=bool(raw.get("isDraft")),
        headers=None
        if headers is None
        else tuple((str(h.get("name", "")), str(h.get("value", ""))) for h in headers),
        body_html=content if is_html else None,
        body_text=None if is_html else content,
    )


class GraphReplyMailbox:
    """`ReplyMailbox` over Graph for one mailbox (user id or primary SMTP address)."""

    def __init__(self, client: GraphClient, mailbox: str, *, page_size: int = 50) -> None:
        self.client = client
        self.mailbox = mailbox
        self.page_size = page_size
        self._root = f"users/{segment(mailbox)}"
        # Raw MIME fetched with the latest page, for the messages the page cannot carry.
        self._prefetched: dict[str, bytes] = {}

    # --- folders ------------------------------------------------------------------------

    def resolve_folder(self, path: str) -> str:
        parts = [p.strip() for p in path.replace("\\", "/").split("/") if p.strip()]
        if not parts:
            raise FolderNotFound("No folder was given.", fix="Give a path such as Inbox/Approvals.")
        first = WELL_KNOWN.get(parts[0].casefold())
        if first is not None:
            found = self.client.get_json(
                f"{self._root}/mailFolders/{first}",
                mailbox=self.mailbox,
                params={"$select": "id,displayName"},
            )
            folder_id, rest, where = str(found["id"]), parts[1:], [parts[0]]
        else:
            folder_id, rest, where = "", parts, []
        for name in rest:
            folder_id = self._child(folder_id, name, where)
            where.append(name)
        return folder_id

    def _child(self, parent_id: str, name: str, where: list[str]) -> str:
        url = (
            f"{self._root}/mailFolders/{parent_id}/childFolders"
            if parent_id
            else f"{self._root}/mailFolders"
        )
        hits = (
            self.client.get_json(
                url,
                mailbox=self.mailbox,
                params={
                    "$filter": f"displayName eq {_odata_string(name)}",
                    "$select": "id,displayName",
                },
            ).get("value")
            or []
        )
        for hit in hits:
            if str(hit.get("displayName", "")).casefold() == name.casefold():
                return str(hit["id"])
        existing = self._names(url)
        for folder_id, display in existing:  # Exchange compares case-insensitively; be sure
            if display.casefold() == name.casefold():
                return folder_id
        level = "/".join(where) or "the top of the mailbox"
        names = tuple(display for _, display in existing)
        error = FolderNotFound(
            f"The folder {name!r} does not exist in {level} of {self.mailbox}.",
            fix="Folders there: "
            + (", ".join(names) if names else "(none)")
            + ". Create the folder or correct the Email Reply Folder.",
            status=404,
        )
        error.existing = names
        raise error

    def _names(self, url: str) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        next_url: str | None = url
        params: dict[str, str] | None = {"$select": "id,displayName", "$top": "100"}
        while next_url:
            body = self.client.get_json(next_url, mailbox=self.mailbox, params=params)
            out += [(str(f["id"]), str(f.get("displayName", ""))) for f in body.get("value", [])]
            next_url, params = body.get("@odata.nextLink"), None
        return out

    # --- messages -----------------------------------------------------------------------

    def changes(
        self, folder_id: str, cursor: str | None, *, since: datetime | None = None
    ) -> ChangesPage:
        """One page of changes. Raises CursorExpired (410) when the cursor is too old.

        `since` (first round only; the cursor carries it on) leaves out mail received
        before that moment, so a folder full of old mail costs no pages."""
        if cursor:
            url, params = cursor, None
        else:
            url = f"{self._root}/mailFolders/{segment(folder_id)}/messages/delta"
            # Only new arrivals matter; without this, every reply moved away comes back as a
            # page of @removed entries in the next round (carried on in the delta token).
            params = {"$select": SELECT, "changeType": "created"}
            if since is not None:
                stamp = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                params["$filter"] = f"receivedDateTime ge {stamp}"
        body = self.client.get_json(
            url,
            mailbox=self.mailbox,
            params=params,
            prefer=(f"odata.maxpagesize={self.page_size}",),
        )
        messages: list[RemoteMessage] = []
        removed: list[str] = []
        for item in body.get("value", []):
            if "@removed" in item:
                removed.append(str(item["id"]))
            else:
                messages.append(remote_message(item))
        self._prefetched = self._fetch_many(
            [m.id for m in messages if needs_raw(m.headers, html=m.body_html, text=m.body_text)]
        )
        next_link = body.get("@odata.nextLink")
        return ChangesPage(
            messages=messages,
            removed_ids=removed,
            next_cursor=str(next_link or body.get("@odata.deltaLink") or ""),
            more=bool(next_link),
        )

    def _fetch_many(self, message_ids: list[str]) -> dict[str, bytes]:
        """The raw MIME of several messages in $batch round trips; a step that fails is
        left out, and `fetch_mime` asks for that message alone (raising its real error)."""
        if len(message_ids) < 2:
            return {}  # one message: a $batch would cost the same round trip
        found: dict[str, bytes] = {}
        for start in range(0, len(message_ids), BATCH_LIMIT):
            chunk = message_ids[start : start + BATCH_LIMIT]
            steps = [
                {
                    "id": str(index),
                    "method": "GET",
                    "url": f"/{self._root}/messages/{segment(message_id)}/$value",
                    "headers": {"Accept": "*/*"},
                }
                for index, message_id in enumerate(chunk)
            ]
            answers = self.client.batch(self.mailbox, steps)
            for index, message_id in enumerate(chunk):
                answer = answers.get(str(index), {})
                body = answer.get("body")
                if int(answer.get("status") or 0) == 200 and isinstance(body, str):
                    # Graph returns a non-JSON body base64-encoded inside a $batch.
                    with contextlib.suppress(binascii.Error, ValueError):
                        found[message_id] = base64.b64decode(body, validate=True)
        return found

    def fetch_mime(self, message_id: str) -> bytes:
        prefetched = self._prefetched.pop(message_id, None)
        if prefetched is not None:
            return prefetched
        response = self.client.request(
            "GET",
            f"{self._root}/messages/{segment(message_id)}/$value",
            mailbox=self.mailbox,
            headers={"Accept": "*/*"},
        )
        return response.content

    # --- disposal -----------------------------------------------------------------------

    def _step(self, index: int, item: Disposal) -> dict[str, Any]:
        path = f"/{self._root}/messages/{segment(item.message_id)}"
        if item.kind is DisposalKind.PURGE:
            return {"id": str(index), "method": "POST", "url": f"{path}/permanentDelete"}
        target = item.folder_id if item.kind is DisposalKind.MOVE else "deleteditems"
        if not target:
            raise ValueError("a move needs a folder id")
        return {
            "id": str(index),
            "method": "POST",
            "url": f"{path}/move",
            "headers": {"Content-Type": "application/json", **IMMUTABLE_INNER},
            "body": {"destinationId": target},
        }

    def dispose(self, items: Sequence[Disposal]) -> list[DisposalResult]:
        """Move, delete or purge; one result per item, in order. 404 counts as done: the
        message was moved already (a retry after a crash)."""
        results: dict[int, DisposalResult] = {}
        pending = list(enumerate(items))
        for round_ in range(2):
            retry: list[tuple[int, Disposal]] = []
            for start in range(0, len(pending), BATCH_LIMIT):
                chunk = pending[start : start + BATCH_LIMIT]
                answers = self.client.batch(self.mailbox, [self._step(i, d) for i, d in chunk])
                wait = 0.0
                for index, item in chunk:
                    answer = answers.get(str(index), {})
                    status = int(answer.get("status") or 0)
                    if status == 429 or status >= 500:
                        after = (answer.get("headers") or {}).get("Retry-After")
                        wait = max(wait, float(after) if after else 1.0)
                        if round_ == 0:
                            retry.append((index, item))
                            continue
                    results[index] = _result(item, status, answer.get("body"))
                if wait:
                    # Throttled steps name a Retry-After: no further call before it has
                    # passed, whether the next one is this round's next chunk, the retry
                    # round, or (for steps throttled twice) the caller's next request.
                    self.client.sleeper(min(wait, self.client.budget.max_inline_wait))
            if not retry:
                break
            pending = retry
        return [results[i] for i in range(len(items))]


def _result(item: Disposal, status: int, body: Any) -> DisposalResult:
    body = body if isinstance(body, dict) else {}
    if 200 <= status < 300:
        return DisposalResult(item.message_id, True, new_id=body.get("id"))
    error = body.get("error") or {}
    code = str(error.get("code") or "")
    if status == 404:
        return DisposalResult(item.message_id, True, error_code=code, message="already gone")
    return DisposalResult(
        item.message_id,
        False,
        error_code=code or str(status),
        message=str(error.get("message", "")),
    )
