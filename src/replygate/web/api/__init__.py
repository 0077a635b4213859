"""The REST API under ``/api/v1`` (OpenAPI at ``/api/openapi.json``)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from replygate.web import health
from replygate.web.api import approvals, webhooks

_health = APIRouter(prefix="/api/v1", tags=["health"])


@_health.get("/health", summary="Health of replygate (as /healthz; no token needed)")
def api_health(request: Request) -> JSONResponse:
    return health.healthz(request)


ROUTERS = (approvals.router, webhooks.router, _health)
