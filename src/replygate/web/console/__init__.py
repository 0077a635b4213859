"""The web console's pages (server-rendered, Jinja2 templates under ``templates/console``).

Each module holds one area's routes; ``ROUTERS`` is what ``web.app`` includes. The console's
``/`` (Dashboard) must come before ``web.pages``, whose placeholder it replaces.
"""

from __future__ import annotations

from fastapi import APIRouter

from replygate.web.console import activity, applications, requests, settings, tokens

ROUTERS: tuple[APIRouter, ...] = (
    requests.router,
    settings.router,
    applications.router,
    activity.router,
    tokens.router,
)
