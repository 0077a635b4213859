"""The control API under `/_emu/` for tests, benchmarks and the demo (no auth, loopback only).

Mail: deliver raw RFC 5322 into a folder, list mailboxes and folders, read a message with
its MIME, the outbound log. Traffic: counters, throttling limits, fault injection.
Identity hooks (the identity half's state methods): revoke refresh tokens, expire a client
secret, set consent. Sync: invalidate delta tokens, fire subscription lifecycle events.
Everything answers JSON; errors are `{"error": "..."}` with 4xx.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from m365emu.graph.core import Graph, graph_of
from m365emu.graph.serialize import message_json
from m365emu.mailstore import Folder, Mailbox
from m365emu.persist import dump, restore
from m365emu.state import EmulatorState, FaultRule, Throttling
from m365emu.subscriptions import LIFECYCLE_EVENTS
from m365emu.transport import DMARC_VALUES, stamp_inbound

Endpoint = Callable[[Request], Awaitable[Response]]


class ControlError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _loopback(request: Request) -> bool:
    host = request.client.host if request.client else ""
    if host in ("localhost", "testclient"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def folder_path(mb: Mailbox, folder: Folder) -> str:
    parts = [folder.display_name]
    parent = mb.folders.get(folder.parent_id)
    while parent is not None and parent.id != mb.root_id:
        parts.append(parent.display_name)
        parent = mb.folders.get(parent.parent_id)
    return "/".join(reversed(parts))


def _mailbox(graph: Graph, ref: str) -> Mailbox:
    user = graph.state.tenant.user_by(ref)
    mb = graph.mail.store.mailboxes.get(user.id) if user else graph.mail.store.mailbox_for(ref)
    if mb is None:
        raise ControlError(404, f"no mailbox {ref!r}")
    return mb


def _folder(graph: Graph, mb: Mailbox, ref: str) -> Folder:
    folder = mb.folder(ref)
    if folder is None:
        matches = [f for f in mb.folders.values() if folder_path(mb, f).lower() == ref.lower()]
        folder = matches[0] if matches else None
    if folder is None:
        raise ControlError(404, f"no folder {ref!r} in {mb.address}")
    return folder


def _summary(mb: Mailbox, folder_id: str) -> list[dict[str, Any]]:
    items = sorted(mb.in_folder(folder_id), key=lambda m: m.seq)
    return [
        {
            "id": m.rest_id,
            "immutableId": m.immutable_id,
            "subject": m.fields.get("subject"),
            "from": ((m.fields.get("from") or {}).get("emailAddress") or {}).get("address"),
            "receivedDateTime": m.fields.get("receivedDateTime"),
            "internetMessageId": m.fields.get("internetMessageId"),
            "isRead": bool(m.fields.get("isRead")),
            "isDraft": bool(m.fields.get("isDraft")),
        }
        for m in items
    ]


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    data = json.loads(raw)
    if not isinstance(data, dict):
        raise ControlError(400, "a JSON object is expected")
    return data


def mount(app: FastAPI, state: EmulatorState) -> None:
    def add(path: str, methods: list[str]) -> Callable[[Endpoint], Endpoint]:
        def wrap(fn: Endpoint) -> Endpoint:
            async def endpoint(request: Request) -> Response:
                if not _loopback(request):
                    return JSONResponse({"error": "the control API answers loopback only"}, 403)
                try:
                    return await fn(request)
                except ControlError as exc:
                    return JSONResponse({"error": str(exc)}, exc.status)
                except (KeyError, ValueError) as exc:
                    return JSONResponse({"error": str(exc)}, 400)

            app.add_route("/_emu" + path, endpoint, methods=methods, include_in_schema=False)
            return fn

        return wrap

    @add("/mailboxes", ["GET"])
    async def mailboxes(request: Request) -> Response:
        graph = graph_of(state)
        out = []
        for mb in graph.mail.store.mailboxes.values():
            user = state.tenant.user_by(mb.user_id)
            folders = [
                {"id": f.id, "path": folder_path(mb, f), "wellKnownName": f.well_known,
                 "totalItemCount": sum(1 for _ in mb.in_folder(f.id))}
                for f in mb.folders.values() if f.id != mb.root_id
            ]  # fmt: skip
            out.append({"id": mb.user_id, "address": mb.address, "displayName": mb.display_name,
                        "kind": user.kind if user else "user", "folders": folders})  # fmt: skip
        return JSONResponse({"value": out})

    @add("/mailboxes/{upn}/deliver", ["POST"])
    async def deliver(request: Request) -> Response:
        graph = graph_of(state)
        mb = _mailbox(graph, request.path_params["upn"])
        folder = request.query_params.get("folder", "inbox")
        raw = await request.body()
        dmarc = request.query_params.get("dmarc", "pass")
        if dmarc not in DMARC_VALUES:
            raise ControlError(400, f"dmarc must be one of {sorted(DMARC_VALUES)}")
        if request.query_params.get("stamp", "").lower() in ("1", "true", "yes"):
            raw = stamp_inbound(raw, state.now(), dmarc)
        with state.lock:
            msg = graph.mail.deliver_raw(mb, raw, folder)
        return JSONResponse(
            {"id": msg.rest_id, "immutableId": msg.immutable_id, "folderId": msg.folder_id,
             "folder": folder_path(mb, mb.folders[msg.folder_id]),
             "internetMessageId": msg.fields.get("internetMessageId")}, 201)  # fmt: skip

    @add("/mailboxes/{upn}/folders", ["POST"])
    async def create_folder(request: Request) -> Response:
        graph = graph_of(state)
        mb = _mailbox(graph, request.path_params["upn"])
        folder = graph.mail.store.ensure_path(mb, str((await _body(request))["path"]))
        return JSONResponse({"id": folder.id, "path": folder_path(mb, folder)}, 201)

    @add("/mailboxes/{upn}/folders/{folder:path}/messages", ["GET"])
    async def folder_messages(request: Request) -> Response:
        graph = graph_of(state)
        mb = _mailbox(graph, request.path_params["upn"])
        folder = _folder(graph, mb, request.path_params["folder"])
        return JSONResponse({"folder": folder_path(mb, folder), "value": _summary(mb, folder.id)})

    @add("/mailboxes/{upn}/messages/{id}", ["GET"])
    async def read_message(request: Request) -> Response:
        graph = graph_of(state)
        mb = _mailbox(graph, request.path_params["upn"])
        msg = mb.message(request.path_params["id"])
        if msg is None:
            raise ControlError(404, "no such message")
        select = ["id", *message_json(msg, None, False), "internetMessageHeaders", "uniqueBody"]
        body = message_json(msg, [s for s in select if not s.startswith("@")], False)
        raw = msg.raw or graph.mail.draft_mime(mb, msg)
        return JSONResponse({"message": body, "immutableId": msg.immutable_id,
                             "folder": folder_path(mb, mb.folders[msg.folder_id]),
                             "raw": raw.decode("utf-8", errors="replace")})  # fmt: skip

    @add("/outbound", ["GET", "DELETE"])
    async def outbound(request: Request) -> Response:
        store = graph_of(state).mail.store
        if request.method == "DELETE":
            store.outbound.clear()
        return JSONResponse({"value": list(store.outbound)})

    @add("/counters", ["GET", "DELETE"])
    async def counters(request: Request) -> Response:
        with state.lock:
            if request.method == "DELETE":
                state.counters.reset()
            rows = state.counters.snapshot()
        totals = {key: sum(int(str(r[key])) for r in rows)
                  for key in ("requests", "throttled", "batched")}  # fmt: skip
        return JSONResponse({"value": rows, "totals": totals})

    @add("/throttling", ["GET", "PUT"])
    async def throttling(request: Request) -> Response:
        if request.method == "PUT":
            body = await _body(request)
            t = state.throttling
            state.throttling = Throttling(
                int(body.get("requests_per_window", t.requests_per_window)),
                int(body.get("window_seconds", t.window_seconds)),
                int(body.get("max_concurrent", t.max_concurrent)),
            )
            graph_of(state).throttle.reset()
        t = state.throttling
        return JSONResponse({"requests_per_window": t.requests_per_window,
                             "window_seconds": t.window_seconds,
                             "max_concurrent": t.max_concurrent})  # fmt: skip

    @add("/faults", ["GET", "POST", "DELETE"])
    async def faults(request: Request) -> Response:
        with state.lock:
            if request.method == "POST":
                b = await _body(request)
                state.faults.add(FaultRule(
                    str(b["endpoint"]), int(b.get("status", 0)), str(b.get("code", "")),
                    int(b.get("count", 1)), int(b.get("latency_ms", 0)),
                    str(b.get("message", "Fault injected by the emulator.")),
                    None if b.get("retry_after") is None else int(b["retry_after"]),
                ))  # fmt: skip
            elif request.method == "DELETE":
                state.faults.clear()
            rules = [{"endpoint": r.endpoint_pattern, "status": r.status, "code": r.error_code,
                      "count": r.remaining, "latency_ms": r.latency_ms,
                      "retry_after": r.retry_after}
                     for r in state.faults.rules]  # fmt: skip
        return JSONResponse({"value": rules}, 201 if request.method == "POST" else 200)

    @add("/users/{upn}/revoke", ["POST"])
    async def revoke(request: Request) -> Response:
        return JSONResponse({"revoked": state.revoke_refresh_tokens(request.path_params["upn"])})

    @add("/apps/{client_id}/secrets/expire", ["POST"])
    async def expire(request: Request) -> Response:
        secret_id = (await _body(request)).get("secret_id")
        state.expire_secret(request.path_params["client_id"], secret_id)
        return JSONResponse({"expired": True})

    @add("/apps/{client_id}/consent", ["PUT"])
    async def consent(request: Request) -> Response:
        b = await _body(request)
        state.set_consent(
            request.path_params["client_id"], b.get("delegated"), b.get("application")
        )
        return JSONResponse({"ok": True})

    @add("/clock/advance", ["POST"])
    async def advance(request: Request) -> Response:
        now = state.advance_clock(float((await _body(request))["seconds"]))
        return JSONResponse({"now": now.isoformat()})

    @add("/delta/invalidate", ["POST"])
    async def invalidate(request: Request) -> Response:
        graph_of(state).mail.store.invalidate_delta_tokens()
        return JSONResponse({"invalidated": True})

    @add("/subscriptions", ["GET"])
    async def subscriptions(request: Request) -> Response:
        subs = graph_of(state).subscriptions
        return JSONResponse({"value": [s.json() for s in subs.active()], "log": subs.log})

    @add("/subscriptions/config", ["PUT"])
    async def subscription_config(request: Request) -> Response:
        verify = (await _body(request)).get("verify", True)
        graph_of(state).subscriptions.verify = verify if isinstance(verify, bool) else str(verify)
        return JSONResponse({"verify": graph_of(state).subscriptions.verify})

    @add("/subscriptions/{id}/lifecycle", ["POST"])
    async def lifecycle(request: Request) -> Response:
        subs = graph_of(state).subscriptions
        sub = subs.items.get(request.path_params["id"])
        event = str((await _body(request)).get("event", ""))
        if sub is None:
            raise ControlError(404, "no such subscription")
        if event not in LIFECYCLE_EVENTS:
            raise ControlError(400, f"event must be one of {sorted(LIFECYCLE_EVENTS)}")
        subs.lifecycle(sub, event)
        return JSONResponse({"sent": event}, 202)

    @add("/mail/save", ["POST"])
    async def save(request: Request) -> Response:
        path = Path(str((await _body(request))["path"]))
        data = dump(graph_of(state).mail.store)
        path.write_text(json.dumps(data), encoding="utf-8")
        return JSONResponse({"saved": str(path), "mailboxes": len(data["mailboxes"])})

    @add("/mail/load", ["POST"])
    async def load(request: Request) -> Response:
        path = Path(str((await _body(request))["path"]))
        restore(graph_of(state).mail.store, json.loads(path.read_text(encoding="utf-8")))
        return JSONResponse({"loaded": str(path)})

    @add("/reset", ["POST"])
    async def reset(request: Request) -> Response:
        with state.lock:
            state.mail = None
            state.faults.clear()
            state.counters.reset()
            state.throttling = Throttling()
            if (await _body(request)).get("identity"):
                state.reset_identity()
        graph_of(state)
        return JSONResponse({"reset": True})
