"""What the API routers share: the container, problem responses for OpenAPI."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import Request

from replygate.web.api.schemas import Problem
from replygate.web.errors import PROBLEM_JSON

if TYPE_CHECKING:
    from replygate.bootstrap import Container

_DESCRIPTIONS = {
    400: "The body is not valid JSON.",
    401: "No API token, or one that is unknown, expired or revoked.",
    403: "The token lacks the scope this needs.",
    404: "No such approval request.",
    409: "The request's state does not allow this (e.g. already closed).",
    422: "A value is wrong; `detail` names it.",
}


def problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for error answers: problem+json bodies."""
    ref = {"schema": {"$ref": "#/components/schemas/Problem"}}
    return {
        code: {"model": Problem, "description": _DESCRIPTIONS[code], "content": {PROBLEM_JSON: ref}}
        for code in codes
    }


def container_of(request: Request) -> Container:
    container: Container = request.state.container
    return container
