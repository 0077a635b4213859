"""The FastAPI application: ``create_app(container)`` builds it; nothing happens at import.

Adding to it:
- a router (pages or API): import it in ``_include_routers`` and ``app.include_router`` it;
  protect routes with ``Depends(require_role(...))`` or ``Depends(require_scope(...))``
  from ``web.auth``. CSRF is checked on every unsafe request without further work.
- a health check: a function ``(Container) -> CheckResult`` registered in ``_health_checks``
  (or, from code holding the app, ``app.state.health.register(name, check)``).
- a page: a template extending ``base.html`` rendered with ``web.templating.render``.

Route code gets everything through ``request.state`` (typed by ``State``), filled by the
lifespan: the container (units of work, clock, secrets, settings), templates, health
checks and the sign-in throttle.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import ClassVar, TypedDict

from fastapi import Depends, FastAPI
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.datastructures import MutableHeaders
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from replygate import __version__
from replygate.bootstrap import Container
from replygate.web import (
    credential_health,
    health,
    mail_health,
    metrics,
    microsoft_sign_in,
    notifications,
    oauth,
    pages,
)
from replygate.web.auth import SESSION_COOKIE, SESSION_LIFETIME, session_secret
from replygate.web.csrf import verify_csrf
from replygate.web.errors import install_error_handlers
from replygate.web.health import HealthRegistry, database_check
from replygate.web.proxy import TrustedProxyMiddleware
from replygate.web.ratelimit import LoginThrottle
from replygate.web.templating import STATIC, make_templates
from replygate.worker.runner import start_in_background

log = logging.getLogger(__name__)


class State(TypedDict):
    """What every request finds in ``request.state`` (Starlette's lifespan state)."""

    container: Container
    workers: bool  # whether this process runs the background loops (the worker issue)
    templates: Jinja2Templates
    health: HealthRegistry
    throttle: LoginThrottle


def _include_routers(app: FastAPI) -> None:
    from replygate.web.api import ROUTERS
    from replygate.web.console import ROUTERS as CONSOLE

    app.include_router(health.router)
    app.include_router(notifications.router)
    app.include_router(metrics.router)
    for router in ROUTERS:
        app.include_router(router)
    app.include_router(oauth.router)
    for router in CONSOLE:
        app.include_router(router)
    app.include_router(pages.router)
    app.include_router(microsoft_sign_in.router)


def _api_tags() -> list[dict[str, str]]:
    from replygate.web.api import TAGS

    return TAGS


def _health_checks(registry: HealthRegistry) -> None:
    registry.register("database", database_check)
    registry.register(credential_health.NAME, credential_health.credential_check)
    registry.register(mail_health.NAME, mail_health.mail_flow_check)


def create_app(container: Container, *, workers: bool = True) -> FastAPI:
    state = State(
        container=container,
        workers=workers,
        templates=make_templates(),
        health=HealthRegistry(),
        throttle=LoginThrottle(container.clock),
    )
    _health_checks(state["health"])

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[State]:
        log.info("replygate %s web app started (workers: %s)", __version__, workers)
        loops = start_in_background(container) if workers else None
        try:
            yield state
        finally:
            if loops is not None:
                loops.stop()
            container.engine.dispose()

    app = FastAPI(
        title="replygate",
        version=__version__,
        lifespan=lifespan,
        dependencies=[Depends(verify_csrf)],
        openapi_url="/api/openapi.json",
        openapi_tags=_api_tags(),
        docs_url=None,  # FastAPI's docs pages load scripts from a CDN; the console vendors its own
        redoc_url=None,
    )
    app.state.health = state["health"]
    install_error_handlers(app)
    _include_routers(app)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    # Added last = runs first: the proxy fixes scheme and client before anything reads them.
    app.add_middleware(
        SessionMiddleware,
        secret_key=session_secret(container),
        session_cookie=SESSION_COOKIE,
        max_age=int(SESSION_LIFETIME.total_seconds()),
        same_site="lax",
        https_only=True,
    )
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(TrustedProxyMiddleware, trusted=container.settings.trusted_proxies)
    return app


class SecurityHeadersMiddleware:
    """Headers every answer carries: no framing, no sniffing, scripts only from us."""

    HEADERS: ClassVar[dict[str, str]] = {
        "Content-Security-Policy": (
            "default-src 'self'; img-src 'self' data:; object-src 'none'; "
            "base-uri 'none'; frame-ancestors 'none'"
        ),
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "same-origin",
    }

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        secure = scope.get("scheme") == "https"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in self.HEADERS.items():
                    headers.setdefault(name, value)
                if secure:
                    headers.setdefault("Strict-Transport-Security", "max-age=31536000")
            await send(message)

        await self.app(scope, receive, send_with_headers)
