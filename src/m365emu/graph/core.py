"""The Graph request pipeline shared by real HTTP requests and `$batch` steps.

One dispatcher does, in order: route match (Graph answers 400 for unknown segments), the
bearer token check, the target user and mailbox, the request counters, throttling per app
per mailbox, injected faults, then the handler. Errors leave in Graph's envelope with a
`request-id` header (https://learn.microsoft.com/graph/errors).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from m365emu.delivery import MailService
from m365emu.graph.access import resolve_target
from m365emu.graph.errors import GraphError, envelope
from m365emu.identity.tokens import Caller, GraphAuthError, verify_access_token
from m365emu.mailstore import Mailbox, MailStore, iso
from m365emu.state import EmulatorState
from m365emu.subscriptions import Subscriptions
from m365emu.tenant import User
from m365emu.throttle import Throttle

log = logging.getLogger(__name__)


@dataclass
class GraphRequest:
    method: str
    path: str  # below /v1.0, e.g. "/users/x/messages"
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes
    base_url: str  # scheme://host:port of the emulator as the client sees it
    in_batch: bool = False  # a step of a $batch: counted as a request, not a round trip


@dataclass
class GraphResponse:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    media_type: str | None = "application/json"


@dataclass
class Ctx:
    state: EmulatorState
    mail: MailService
    req: GraphRequest
    caller: Caller
    params: tuple[str, ...]
    user: User | None
    mailbox: Mailbox | None
    prefix: str  # "/me" or "/users/{id as given}"
    request_id: str
    prefer: dict[str, str]
    applied: list[str] = field(default_factory=list)

    @property
    def immutable(self) -> bool:
        if self.prefer.get("idtype", "").lower() == "immutableid":
            if 'IdType="ImmutableId"' not in self.applied:
                self.applied.append('IdType="ImmutableId"')
            return True
        return False

    @property
    def graph_base(self) -> str:
        return self.req.base_url + "/v1.0"

    def box(self) -> Mailbox:
        if self.mailbox is None:  # routes that need a mailbox always get one; be explicit
            raise GraphError(404, "MailboxNotEnabledForRESTAPI", "REST API is not yet supported.")
        return self.mailbox

    def json(self) -> dict[str, Any]:
        if not self.req.body.strip():
            return {}
        try:
            data = json.loads(self.req.body)
        except ValueError:
            raise GraphError(
                400,
                "BadRequest",
                "Unable to read JSON request payload. Please ensure Content-Type "
                "header is set and payload is of valid JSON format.",
            ) from None
        if not isinstance(data, dict):
            raise GraphError(400, "BadRequest", "Invalid request body: a JSON object is expected.")
        return data

    def link(self, params: dict[str, str]) -> str:
        """An absolute `@odata.nextLink`/`deltaLink` to this path with `params`."""
        return f"{self.graph_base}{self.req.path}?" + urlencode(params, safe="$,'():")

    def ok(self, payload: Any, status: int = 200) -> GraphResponse:
        return GraphResponse(status, json.dumps(payload).encode())


Handler = Callable[[Ctx], Awaitable[GraphResponse]]


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    template: str
    handler: Handler
    scope: str  # "mailbox": below /me or /users/{id}; "user": the user itself; "root"


ROUTES: list[Route] = []


def route(method: str, template: str, scope: str = "mailbox") -> Callable[[Handler], Handler]:
    """Register a handler; `{id}` in the template captures one path segment."""
    regex = re.escape(template).replace(r"\{id\}", "([^/]+)")
    pattern = re.compile("^" + regex + "$", re.IGNORECASE)

    def register(handler: Handler) -> Handler:
        ROUTES.append(Route(method, pattern, template, handler, scope))
        # Literal segments win over `{id}` (".../messages/delta" before ".../messages/{id}").
        ROUTES.sort(key=lambda r: r.template.count("{id}"))
        return handler

    return register


class Graph:
    """Per-state runtime pieces: the mail service and the throttle."""

    def __init__(self, state: EmulatorState) -> None:
        self.state = state
        store = MailStore(now=state.now)
        self.mail = MailService(store)
        self.throttle = Throttle()
        self.subscriptions = Subscriptions(now=state.now)
        store.listeners.append(self.subscriptions.on_change)
        self.sync_tenant()

    def sync_tenant(self) -> None:
        """Every tenant user with a mail address has a mailbox (shared ones included)."""
        for user in self.state.tenant.users:
            if user.mail:
                aliases = (user.upn,) if user.upn.lower() != user.mail.lower() else ()
                self.mail.store.add_mailbox(user.id, user.mail, user.display_name, aliases)


def graph_of(state: EmulatorState) -> Graph:
    """The Graph runtime kept in `state.mail`, created on first use."""
    with state.lock:
        if not isinstance(state.mail, Graph):
            state.mail = Graph(state)
        return state.mail


_PAREN = re.compile(r"\('([^']*)'\)")
_NESTED = re.compile(r"/mailFolders/[^/]+/childFolders/(?=[^/]+/)", re.IGNORECASE)
_PREFIX = re.compile(r"^(/me|/users/[^/]+)(/.*)?$", re.IGNORECASE)


def parse_prefer(headers: dict[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in headers.get("prefer", "").split(","):
        key, _, value = item.strip().partition("=")
        if key:
            out[key.strip().lower()] = value.strip().strip('"')
    return out


def _match(method: str, path: str) -> tuple[Route, tuple[str, ...], str, str] | GraphError:
    path = _NESTED.sub("/mailFolders/", _PAREN.sub(r"/\1", path.rstrip("/")))
    m = _PREFIX.match(path)
    prefix, rest = (m[1], m[2] or "") if m else ("", path)
    allowed = False
    for r in ROUTES:
        if (r.scope == "root") == bool(m):  # root routes never sit below /me or /users/{id}
            continue
        hit = r.pattern.match(rest if m else path)
        if hit is None:
            continue
        if r.method != method:
            allowed = True
            continue
        return r, hit.groups(), prefix, path
    if allowed:
        return GraphError(
            405,
            "Request_BadRequest",
            "Specified HTTP method is not allowed for the request target.",
        )
    segment = path.rstrip("/").rsplit("/", 1)[-1] or "v1.0"
    return GraphError(400, "BadRequest", f"Resource not found for the segment '{segment}'.")


async def dispatch(state: EmulatorState, req: GraphRequest) -> GraphResponse:
    graph = graph_of(state)
    request_id = str(uuid.uuid4())
    client_request_id = req.headers.get("client-request-id", request_id)
    client_id, mailbox_key, endpoint = "", "", f"{req.method} {req.path}"
    slot: tuple[str, str] | None = None
    ctx: Ctx | None = None
    try:
        found = _match(req.method, req.path)
        if isinstance(found, GraphError):
            raise found
        r, params, prefix, _ = found
        endpoint = f"{req.method} /v1.0" + _template(prefix, r)
        try:
            caller = verify_access_token(state, req.headers.get("authorization"))
        except GraphAuthError as exc:
            raise GraphError(exc.status, exc.code, exc.message, _www_authenticate()) from None
        client_id = caller.app.client_id
        user, mailbox = resolve_target(state, graph, caller, prefix, r.scope)
        mailbox_key = user.upn if user is not None else ""
        ctx = Ctx(
            state,
            graph.mail,
            req,
            caller,
            params,
            user,
            mailbox,
            prefix,
            request_id,
            parse_prefer(req.headers),
        )
        if r.template != "/$batch":  # the steps of a batch are throttled one by one
            slot = _admit(state, graph, (client_id, mailbox_key))
        # A rule may name the concrete path or the endpoint template (".../{id}/...").
        fault = state.faults.take(f"{req.method} /v1.0{req.path}") or state.faults.take(endpoint)
        if fault is not None:
            if fault.latency_ms:
                await asyncio.sleep(fault.latency_ms / 1000)
            if fault.status:
                wait = {} if fault.retry_after is None else {"Retry-After": str(fault.retry_after)}
                raise GraphError(fault.status, fault.error_code, fault.message, wait)
        response = await r.handler(ctx)
    except GraphError as exc:
        body = envelope(exc.code, exc.message, request_id, client_request_id, iso(state.now()))
        response = GraphResponse(exc.status, json.dumps(body).encode(), dict(exc.headers))
    except Exception:  # an emulator bug must still answer like Graph, and be visible
        log.exception("Graph handler failed: %s %s", req.method, req.path)
        body = envelope(
            "generalException", "An internal server error occurred.", request_id,
            client_request_id, iso(state.now()),
        )  # fmt: skip
        response = GraphResponse(500, json.dumps(body).encode())
    finally:
        if slot is not None:
            graph.throttle.release(slot)
    with state.lock:
        state.counters.record(client_id, mailbox_key, endpoint, batched=req.in_batch)
        if response.status == 429:
            state.counters.record_throttled(client_id, mailbox_key, endpoint)
    response.headers.setdefault("request-id", request_id)
    response.headers.setdefault("client-request-id", client_request_id)
    if ctx is not None and ctx.applied:
        response.headers["Preference-Applied"] = ", ".join(ctx.applied)
    return response


def _admit(state: EmulatorState, graph: Graph, key: tuple[str, str]) -> tuple[str, str]:
    """Take a throttling slot for (app, mailbox) or raise Graph's 429."""
    t = state.throttling
    rejection = graph.throttle.acquire(
        key, state.now().timestamp(), t.requests_per_window, t.window_seconds, t.max_concurrent
    )
    if rejection is not None:
        raise GraphError(
            429, rejection.code, rejection.message, {"Retry-After": str(rejection.retry_after)}
        )
    return key


def _template(prefix: str, r: Route) -> str:
    if r.scope == "root":
        return r.template
    head = "/me" if prefix.lower() == "/me" else "/users/{id}"
    return head + r.template


def _www_authenticate() -> dict[str, str]:
    return {
        "WWW-Authenticate": 'Bearer realm="", authorization_uri='
        '"https://login.microsoftonline.com/common/oauth2/authorize", '
        'client_id="00000003-0000-0000-c000-000000000000"'
    }
