"""JSON batching (https://learn.microsoft.com/graph/json-batching).

At most 20 steps with unique ids; a step with a body needs a Content-Type header; steps
run through the same pipeline as plain requests (auth, counters, throttling, faults) with
at most 4 in parallel, as Outlook does (https://learn.microsoft.com/graph/throttling-limits);
a step whose dependency failed answers 424 without running.
"""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from m365emu.graph.core import Ctx, GraphRequest, GraphResponse, dispatch, route
from m365emu.graph.errors import bad_request, envelope
from m365emu.mailstore import iso

MAX_STEPS = 20
JSON_TYPE = "application/json; odata.metadata=minimal; odata.streaming=true; charset=utf-8"
PARALLEL = 4


def _validate(steps: Any) -> list[dict[str, Any]]:
    if not isinstance(steps, list) or not steps:
        raise bad_request("Invalid batch payload format.", "BadRequest")
    if len(steps) > MAX_STEPS:
        raise bad_request(
            f"Invalid batch payload format: the number of requests exceeds the limit of "
            f"{MAX_STEPS}.",
            "BadRequest",
        )
    ids: set[str] = set()
    for step in steps:
        if not isinstance(step, dict) or not all(step.get(k) for k in ("id", "method", "url")):
            raise bad_request("Invalid batch payload format: id, method and url are required.")
        sid = str(step["id"])
        if sid in ids:
            raise bad_request(f"Batch request contains duplicate id '{sid}'.")
        ids.add(sid)
        headers = {str(k).lower(): str(v) for k, v in (step.get("headers") or {}).items()}
        if "body" in step and "content-type" not in headers:
            raise bad_request(f"Write request id : {sid} does not contain Content-Type header.")
        if urlsplit(str(step["url"])).path.strip("/").lower().endswith("$batch"):
            raise bad_request("A batch request cannot contain another batch request.")
    graph = {str(s["id"]): [str(d) for d in s.get("dependsOn") or []] for s in steps}
    for sid, deps in graph.items():
        if any(d not in ids for d in deps):
            raise bad_request(f"Request id '{sid}' depends on an unknown request.")
    if _cyclic(graph):
        raise bad_request("Invalid batch payload format: dependsOn forms a cycle.")
    return steps


def _cyclic(graph: dict[str, list[str]]) -> bool:
    """Whether the dependsOn graph has a cycle (it would wait forever)."""
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(node: str) -> bool:
        if state.get(node) == 1:
            return True
        if state.get(node) == 2:
            return False
        state[node] = 1
        found = any(visit(d) for d in graph.get(node, []))
        state[node] = 2
        return found

    return any(visit(n) for n in graph)


def _sub_request(ctx: Ctx, step: dict[str, Any]) -> GraphRequest:
    url = str(step["url"])
    parts = urlsplit(url if url.startswith("/") else "/" + url)
    path = unquote(parts.path)  # Graph decodes step URLs like request paths
    path = path[len("/v1.0") :] if path.lower().startswith("/v1.0/") else path
    headers = {"authorization": ctx.req.headers.get("authorization", "")}
    headers.update({str(k).lower(): str(v) for k, v in (step.get("headers") or {}).items()})
    body = step.get("body")
    raw = b"" if body is None else (body if isinstance(body, str) else json.dumps(body)).encode()
    return GraphRequest(
        str(step["method"]).upper(),
        path,
        dict(parse_qsl(parts.query, keep_blank_values=True)),
        headers,
        raw,
        ctx.req.base_url,
        in_batch=True,
    )


def _render(step_id: str, resp: GraphResponse) -> dict[str, Any]:
    headers = dict(resp.headers)
    body: Any = None
    if resp.body:
        if resp.media_type == "application/json":
            body = json.loads(resp.body)
        else:  # Graph returns non-JSON bodies base64-encoded inside a batch
            body = base64.b64encode(resp.body).decode("ascii")
    if resp.media_type:
        headers["Content-Type"] = (
            JSON_TYPE if resp.media_type == "application/json" else resp.media_type
        )
    out: dict[str, Any] = {"id": step_id, "status": resp.status, "headers": headers}
    if body is not None:
        out["body"] = body
    return out


@route("POST", "/$batch", scope="root")
async def batch(ctx: Ctx) -> GraphResponse:
    """`POST /$batch`. https://learn.microsoft.com/graph/json-batching"""
    steps = _validate(ctx.json().get("requests"))
    results: dict[str, asyncio.Future[GraphResponse]] = {
        str(s["id"]): asyncio.get_running_loop().create_future() for s in steps
    }
    gate = asyncio.Semaphore(PARALLEL)

    async def run(step: dict[str, Any]) -> None:
        sid = str(step["id"])
        deps = [await results[str(d)] for d in step.get("dependsOn") or []]
        if any(d.status >= 400 for d in deps):
            body = envelope(
                "FailedDependency",
                "The request could not be executed because a request it depends on failed.",
                ctx.request_id,
                ctx.request_id,
                iso(ctx.state.now()),
            )
            results[sid].set_result(GraphResponse(424, json.dumps(body).encode()))
            return
        async with gate:
            results[sid].set_result(await dispatch(ctx.state, _sub_request(ctx, step)))

    await asyncio.gather(*(run(s) for s in steps))
    responses = [_render(sid, fut.result()) for sid, fut in results.items()]
    return ctx.ok({"responses": responses})
