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
import json
from typing import Any

from m365emu.graph import odata
from m365emu.graph.access import require
from m365emu.graph.core import Ctx, GraphResponse, route
from m365emu.graph.errors import GraphError, bad_request
from m365emu.graph.messages import check_select, folder_of, render
from m365emu.mailstore import StoredMessage, Tombstone

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
    entries: list[tuple[int, StoredMessage | Tombstone]] = []
    change = str(st.get("ct") or "")
    since = int(st["s"])
    if change != "deleted":
        for m in mb.in_folder(folder_id):
            if not (last < m.seq <= until and _after(m, str(st.get("flt") or ""))):
                continue
            # created: arrived in this round; updated: was there before and changed since
            if (change == "created" and m.arrived <= since and not st.get("i")) or (
                change == "updated" and (m.arrived > since or st.get("i"))
            ):
                continue
            entries.append((m.seq, m))
    if not st.get("i") and change in ("", "deleted"):
        for t in mb.tombstones.get(folder_id, []):
            if last < t.seq <= until:
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


def _after(msg: StoredMessage, flt: str) -> bool:
    if not flt:
        return True
    op, value = flt[:2], flt[2:]
    received = str(msg.fields.get("receivedDateTime") or "")
    return received >= value if op == "ge" else received > value
