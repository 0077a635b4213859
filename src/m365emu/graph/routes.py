"""Mounts Graph v1.0 under `/v1.0/...` on the emulator's ASGI app.

One catch-all route hands every request to `core.dispatch`, which routes on Graph's own
terms (case-insensitive segments, `mailFolders('inbox')` key syntax, 400 for unknown
segments) and is the same path `$batch` steps take.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response

# Importing the handler modules registers their routes.
from m365emu.graph import batch, delta, folders, messages, subs  # noqa: F401
from m365emu.graph.core import GraphRequest, dispatch, graph_of
from m365emu.state import EmulatorState

JSON_TYPE = (
    "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;"
    "charset=utf-8"
)


def mount(app: FastAPI, state: EmulatorState) -> None:
    graph_of(state)

    async def endpoint(request: Request) -> Response:
        path = str(request.scope["path"])[len("/v1.0") :] or "/"
        headers = {k.lower(): v for k, v in request.headers.items()}
        prefer = request.headers.getlist("prefer")
        if len(prefer) > 1:
            headers["prefer"] = ", ".join(prefer)
        base = state.public_base or f"{request.url.scheme}://{request.url.netloc}"
        req = GraphRequest(
            request.method, path, dict(request.query_params), headers, await request.body(), base
        )
        resp = await dispatch(state, req)
        media = JSON_TYPE if resp.media_type == "application/json" else resp.media_type
        return Response(resp.body, resp.status, resp.headers, media_type=media)

    app.add_route(
        "/v1.0/{path:path}",
        endpoint,
        methods=["GET", "POST", "PATCH", "PUT", "DELETE"],
        include_in_schema=False,
    )
