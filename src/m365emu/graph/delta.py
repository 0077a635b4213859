"""Delta query on one mail folder (https://learn.microsoft.com/graph/api/message-delta,
https://learn.microsoft.com/graph/delta-query-messages).

A round pages with `@odata.nextLink` (`$skiptoken`) and ends with `@odata.deltaLink`
(`$deltatoken`). The tokens carry the query options of the first call, as Graph's do, plus
the store's change sequence numbers: a round returns what changed after `since` up to the
sequence number current when the round began, so nothing changes under a client's feet.
Moved-out and deleted items come back as `@removed`. A token the store no longer accepts
(the control API invalidated them) gets 410 so that the client resyncs.
"""

from __future__ import annotations

import base64
import bisect
import json
from typing import Any

from m365emu.graph import odata
from m365emu.graph.access import require
from m365emu.graph.core import Ctx, GraphResponse, route
from m365emu.graph.errors import GraphError, bad_request
from m365emu.graph.messages import check_select, folder_of, render
from m365emu.mailstore import Mailbox, StoredMessage, Tombstone

DEFAULT_PAGE = 10
MAX_PAGE = 1000


def _encode(state: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(state, separators=(",", ":")).encode()).decode()


def _resync() -> GraphError:
    return GraphError(
        410,
        "SyncStateNotFound",
        "The sync state is invalid or has expired; a full synchronization is required "
        "(resyncRequired).",
    )


def _decode(token: str) -> dict[str, Any]:
    try:
        state = json.loads(base64.urlsafe_b64decode(token.encode()))
    except ValueError:
        raise _resync() from None
    if not isinstance(state, dict):
        raise _resync()
    return state


def _page_size(ctx: Ctx) -> int:
    raw = ctx.prefer.get("odata.maxpagesize")
    if not raw:
        return DEFAULT_PAGE
    try:
        size = max(1, min(MAX_PAGE, int(raw)))
    except ValueError:
        return DEFAULT_PAGE
    ctx.applied.append(f"odata.maxpagesize={size}")
    return size


@route("GET", "/mailFolders/{id}/messages/delta")
async def message_delta(ctx: Ctx) -> GraphResponse:
    """Messages added, changed or removed in a folder. https://learn.microsoft.com/graph/api/message-delta"""
    require(ctx, "read")
    mb, store = ctx.box(), ctx.mail.store
    folder_id = folder_of(ctx, ctx.params[0])
    token = ctx.req.query.get("$skiptoken") or ctx.req.query.get("$deltatoken")
    if token:
        st = _decode(token)
        if (
            st.get("e") != store.delta_epoch
            or st.get("f") != folder_id
            or st.get("m") != mb.user_id
        ):
            raise _resync()
        if "$deltatoken" in ctx.req.query:  # a new round starts where the last one ended
            st.update(s=st["t"], t=store.seq, l=st["t"], i=0)
    else:
        q = odata.parse(ctx.req.query, default_top=None)
        check_select(q.select)
        after = ""
        for c in q.filter:
            if c.prop.lower() != "receiveddatetime" or c.op not in ("ge", "gt"):
                raise bad_request(
                    "Delta on messages supports only $filter=receivedDateTime ge|gt {value}.",
                    "ErrorInvalidUrlQueryFilter",
                )
            after = c.op + odata.normalize_datetime(c.value)
        change = ctx.req.query.get("changeType", "")
        if change not in ("", "created", "updated", "deleted"):
            raise bad_request(f"Invalid changeType '{change}'.", "ErrorInvalidParameter")
        st = {
            "f": folder_id,
            "m": mb.user_id,
            "e": store.delta_epoch,
            "s": 0,
            "t": store.seq,
            "l": 0,
            "i": 1,
            "sel": q.select,
            "flt": after,
            "ct": change,
        }
    size = _page_size(ctx)
    until, last = int(st["t"]), int(st["l"])
    change = str(st.get("ct") or "")
    since, initial, flt = int(st["s"]), bool(st.get("i")), str(st.get("flt") or "")
    entries: list[tuple[int, StoredMessage | Tombstone]] = []
    if change != "deleted":
        msgs = mb.cached(("by-seq", folder_id), store.seq, lambda: _by_seq(mb, folder_id))
        for m in msgs[bisect.bisect_right(msgs, last, key=lambda m: m.seq) :]:
            if m.seq > until or len(entries) > size:
                break
            # created: arrived in this round; updated: was there before and changed since
            fresh = initial or m.arrived > since
            if (change == "created" and not fresh) or (change == "updated" and fresh):
                continue
            if _after(m, flt):
                entries.append((m.seq, m))
    if not initial and change in ("", "deleted"):
        stones = mb.tombstones.get(folder_id, [])
        for t in stones[bisect.bisect_right(stones, last, key=lambda t: t.seq) :][: size + 1]:
            if t.seq <= until:
                entries.append((t.seq, t))
    entries.sort(key=lambda e: e[0])
    page, more = entries[:size], len(entries) > size
    values: list[dict[str, Any]] = []
    for _, item in page:
        if isinstance(item, Tombstone):
            rid = item.immutable_id if ctx.immutable else item.rest_id
            values.append(
                {
                    "@odata.type": "#microsoft.graph.message",
                    "id": rid,
                    "@removed": {"reason": "deleted"},
                }
            )
        else:
            values.append(
                {"@odata.type": "#microsoft.graph.message", **render(ctx, item, st.get("sel"))}
            )
    out: dict[str, Any] = {
        "@odata.context": f"{ctx.graph_base}/$metadata#Collection(message)",
        "value": values,
    }
    if more:
        st["l"] = page[-1][0]
        out["@odata.nextLink"] = ctx.link({"$skiptoken": _encode(st)})
    else:
        st.update(l=until)
        out["@odata.deltaLink"] = ctx.link({"$deltatoken": _encode(st)})
    return ctx.ok(out)


def _by_seq(mb: Mailbox, folder_id: str) -> list[StoredMessage]:
    return sorted(mb.in_folder(folder_id), key=lambda m: m.seq)


def _after(msg: StoredMessage, flt: str) -> bool:
    if not flt:
        return True
    op, value = flt[:2], flt[2:]
    received = str(msg.fields.get("receivedDateTime") or "")
    return received >= value if op == "ge" else received > value
