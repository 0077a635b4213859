"""replygate's errors as HTTP answers.

``/api/`` paths get RFC 9457 problem details (``application/problem+json``) with ``detail``
and, when there is one, ``fix``; other paths get the HTML error page. User errors keep
their message; system failures and unexpected exceptions are logged with their context
and a reference, and the answer shows only that reference, never a stack trace.
"""

from __future__ import annotations

import logging
import re
import secrets
from http import HTTPStatus
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException

from replygate.errors import (
    AuthorizationNeeded,
    Conflict,
    InvalidInput,
    NotFound,
    ReplygateError,
    SystemFailure,
    UserError,
)
from replygate.services.accounts import InvalidCredentials, PermissionDenied
from replygate.web.csrf import CsrfRejected
from replygate.web.ratelimit import TooManyAttempts

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


class SignInRequired(UserError):
    """The page or API needs a signed-in user or an API token."""


# Looked up along the error's class hierarchy, most specific first. Add a line here for a
# new error class that needs its own status.
STATUS: dict[type[ReplygateError], int] = {
    SignInRequired: 401,
    InvalidCredentials: 401,
    PermissionDenied: 403,
    CsrfRejected: 403,
    NotFound: 404,
    Conflict: 409,
    AuthorizationNeeded: 409,
    InvalidInput: 422,
    TooManyAttempts: 429,
    UserError: 400,
    SystemFailure: 500,
    ReplygateError: 500,
}


def status_for(error: ReplygateError) -> int:
    for cls in type(error).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def _slug(cls: type) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "-", cls.__name__).lower()


def problem(
    request: Request,
    status: int,
    detail: str,
    *,
    kind: str = "",
    fix: str = "",
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    """One error answer, shaped for the caller: problem+json for the API, HTML otherwise."""
    title = HTTPStatus(status).phrase
    if is_api(request):
        body: dict[str, Any] = {
            "type": f"urn:replygate:problem:{kind}" if kind else "about:blank",
            "title": title,
            "status": status,
            "detail": detail,
            "instance": request.url.path,
        }
        if fix:
            body["fix"] = fix
        body.update(extra)
        return JSONResponse(body, status, headers=headers, media_type=PROBLEM_JSON)
    from replygate.web.templating import render

    context = {"status": status, "title": title, "detail": detail, "fix": fix, **extra}
    return render(request, "error.html", context, status_code=status, headers=headers)


def _replygate_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, ReplygateError)
    if isinstance(error, SystemFailure):
        return _failure(request, error)
    status = status_for(error)
    headers: dict[str, str] = {}
    if isinstance(error, SignInRequired):
        if not is_api(request):
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            next_part = f"?next={quote(target)}" if request.method == "GET" else ""
            return RedirectResponse(f"/login{next_part}", status_code=303)
        headers["WWW-Authenticate"] = 'Bearer realm="replygate"'
    if isinstance(error, TooManyAttempts):
        headers["Retry-After"] = str(error.retry_after)
    kind = _slug(type(error))
    return problem(request, status, error.message, kind=kind, fix=error.fix, headers=headers)


def _failure(request: Request, error: BaseException) -> Response:
    reference = secrets.token_hex(4)
    log.error(
        "%s %s failed (reference %s): %s: %s",
        request.method,
        request.url.path,
        reference,
        type(error).__name__,
        error,
        exc_info=error,
    )
    # The message may name hosts or SQL: it goes to the log only.
    return problem(
        request,
        500,
        "replygate could not finish this because of an internal failure",
        kind="internal-failure",
        fix=f"try again later; if it persists, give your administrator the reference {reference}",
        reference=reference,
    )


def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    headers = dict(error.headers) if error.headers else None
    return problem(request, error.status_code, error.detail, headers=headers)


def _validation_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, RequestValidationError)
    errors = [
        {"location": ".".join(str(part) for part in item["loc"]), "message": item["msg"]}
        for item in error.errors()
    ]
    detail = "; ".join(f"{e['location']}: {e['message']}" for e in errors) or "invalid request"
    return problem(request, 422, detail, kind="invalid-input", errors=errors)


def _unexpected(request: Request, error: Exception) -> Response:
    return _failure(request, error)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ReplygateError, _replygate_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected)
