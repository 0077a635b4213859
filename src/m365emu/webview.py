"""A small server-rendered web view of the mailboxes under `/_emu/ui/` (loopback only).

Read-only except for one form: "reply as this user", which sends an Outlook-style reply
(Reply-To else From, `RE:` subject, In-Reply-To/References, quoted original) through the
same delivery path as Graph's sendMail. That is how a demo user answers an approval.
"""

from __future__ import annotations

from html import escape
from urllib.parse import quote

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from m365emu.control import _loopback, folder_path
from m365emu.graph.core import graph_of
from m365emu.mailstore import Mailbox
from m365emu.state import EmulatorState

STYLE = """body{font:14px system-ui,sans-serif;margin:2em;max-width:70em}
table{border-collapse:collapse;width:100%}td,th{padding:.3em .6em;border-bottom:1px solid #ddd;
text-align:left}pre{background:#f6f6f6;padding:1em;white-space:pre-wrap}
textarea{width:100%;height:8em}.muted{color:#777}"""


def _page(title: str, body: str) -> HTMLResponse:
    return HTMLResponse(
        f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)} · m365emu"
        f"</title><style>{STYLE}</style></head><body><p class='muted'><a href='/_emu/ui/'>"
        f"m365emu mailboxes</a></p><h1>{escape(title)}</h1>{body}</body></html>"
    )


def _addr(value: object) -> str:
    if not isinstance(value, dict):
        return ""
    ea = value.get("emailAddress") or {}
    name, address = str(ea.get("name") or ""), str(ea.get("address") or "")
    return f"{name} <{address}>" if name and name != address else address


def mount(app: FastAPI, state: EmulatorState) -> None:
    def box(ref: str) -> Mailbox | None:
        store = graph_of(state).mail.store
        user = state.tenant.user_by(ref)
        return store.mailboxes.get(user.id) if user else store.mailbox_for(ref)

    async def index(request: Request) -> Response:
        if not _loopback(request):
            return HTMLResponse("loopback only", 403)
        rows = "".join(
            f"<tr><td><a href='/_emu/ui/{quote(mb.address)}/inbox'>{escape(mb.address)}</a></td>"
            f"<td>{escape(mb.display_name)}</td></tr>"
            for mb in graph_of(state).mail.store.mailboxes.values()
        )
        return _page("Mailboxes", f"<table><tr><th>Address</th><th>Name</th></tr>{rows}</table>")

    async def folder(request: Request) -> Response:
        if not _loopback(request):
            return HTMLResponse("loopback only", 403)
        mb = box(request.path_params["upn"])
        f = mb.folder(request.path_params["folder"]) if mb else None
        if mb is None or f is None:
            return _page("Not found", "<p>No such mailbox or folder.</p>")
        base = f"/_emu/ui/{quote(mb.address)}"
        nav = " · ".join(
            f"<a href='{base}/{quote(x.id)}'>{escape(folder_path(mb, x))}</a>"
            for x in mb.folders.values()
            if not x.hidden
        )
        items = sorted(mb.in_folder(f.id), key=lambda m: m.seq, reverse=True)
        rows = "".join(
            f"<tr><td>{escape(str(m.fields.get('receivedDateTime') or ''))}</td>"
            f"<td>{escape(_addr(m.fields.get('from')))}</td>"
            f"<td><a href='{base}/messages/{quote(m.immutable_id)}'>"
            f"{escape(str(m.fields.get('subject') or '(no subject)'))}</a></td></tr>"
            for m in items
        )
        body = (
            f"<p>{nav}</p><table><tr><th>Received</th><th>From</th><th>Subject</th></tr>"
            f"{rows}</table>"
        )
        return _page(f"{mb.address} — {folder_path(mb, f)}", body)

    async def message(request: Request) -> Response:
        if not _loopback(request):
            return HTMLResponse("loopback only", 403)
        mb = box(request.path_params["upn"])
        msg = mb.message(request.path_params["id"]) if mb else None
        if mb is None or msg is None:
            return _page("Not found", "<p>No such message.</p>")
        f = msg.fields
        raw = msg.raw or graph_of(state).mail.draft_mime(mb, msg)
        action = f"/_emu/ui/{quote(mb.address)}/messages/{quote(msg.immutable_id)}/reply"
        body = (
            f"<p><b>From:</b> {escape(_addr(f.get('from')))}<br><b>To:</b> "
            f"{escape(', '.join(_addr(r) for r in f.get('toRecipients') or []))}<br>"
            f"<b>Date:</b> {escape(str(f.get('sentDateTime') or ''))}</p>"
            f"<pre>{escape(str(f.get('bodyPreview') or ''))}</pre>"
            f"<h2>Reply as {escape(mb.address)}</h2><form method='post' action='{action}'>"
            "<textarea name='text'>Approved</textarea><p><button>Send reply</button></p></form>"
            f"<h2>MIME</h2><pre>{escape(raw.decode('utf-8', errors='replace'))}</pre>"
        )
        return _page(str(f.get("subject") or "(no subject)"), body)

    async def reply(request: Request) -> Response:
        if not _loopback(request):
            return HTMLResponse("loopback only", 403)
        mb = box(request.path_params["upn"])
        msg = mb.message(request.path_params["id"]) if mb else None
        if mb is None or msg is None:
            return _page("Not found", "<p>No such message.</p>")
        form = await request.form()
        text = str(form.get("text") or "")
        with state.lock:
            graph_of(state).mail.reply(mb, msg, text)
        return RedirectResponse(f"/_emu/ui/{quote(mb.address)}/sentitems", status_code=303)

    app.add_route("/_emu/ui/", index, methods=["GET"], include_in_schema=False)
    app.add_route("/_emu/ui/{upn}/messages/{id}", message, methods=["GET"], include_in_schema=False)
    app.add_route(
        "/_emu/ui/{upn}/messages/{id}/reply", reply, methods=["POST"], include_in_schema=False
    )
    app.add_route("/_emu/ui/{upn}/{folder}", folder, methods=["GET"], include_in_schema=False)
