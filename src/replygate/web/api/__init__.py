"""The REST API under ``/api/v1`` (OpenAPI at ``/api/openapi.json``)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from replygate.web import health
from replygate.web.api import approvals, configuration, setup, webhooks

_health = APIRouter(prefix="/api/v1", tags=["health"])


@_health.get("/health", summary="Health of replygate (as /healthz; no token needed)")
def api_health(request: Request) -> JSONResponse:
    return health.healthz(request)


ROUTERS = (approvals.router, webhooks.router, configuration.router, setup.router, _health)
TAGS = [
    {
        "name": "approvals",
        "description": "Approval requests: create (idempotent with `Idempotency-Key`), list, "
        "read with approvers, decisions and timeline, cancel, and long-poll until closed. "
        "Needs an API token with `approvals:read` / `approvals:write`.",
    },
    {
        "name": "webhooks",
        "description": "Global webhook subscriptions and their delivery log (`settings:*`). "
        "Deliveries are signed: `X-Replygate-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "
        '"<t>.<body>">`; refuse a `t` more than 5 minutes from your clock.',
    },
    {
        "name": "configuration",
        "description": "OAuth applications, Email Settings and Test Email Configuration "
        "(`settings:read` / `settings:write`). Credentials are write-only.",
    },
    {"name": "health", "description": "Whether replygate can do its job; no token needed."},
]
