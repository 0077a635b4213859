"""Server-rendered pages: Jinja2 templates (autoescaped) with what every page needs."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from replygate import __version__
from replygate.web.csrf import FIELD, csrf_token

TEMPLATES = Path(__file__).with_name("templates")
STATIC = Path(__file__).with_name("static")


def _common(request: Request) -> dict[str, Any]:
    return {
        "csrf_field": FIELD,
        "csrf_token": csrf_token(request),
        "principal": getattr(request.state, "principal", None),
        "version": __version__,
    }


def make_templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=TEMPLATES, context_processors=[_common])
    templates.env.globals["app_name"] = "replygate"
    return templates


def render(
    request: Request,
    name: str,
    context: Mapping[str, Any] | None = None,
    *,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    templates: Jinja2Templates = request.state.templates
    return templates.TemplateResponse(
        request, name, dict(context or {}), status_code=status_code, headers=headers
    )
