"""Sign-in and sign-out pages (the console's own pages live in web/console/)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from replygate import signing_in
from replygate.services import accounts
from replygate.web.auth import client_address, current_principal
from replygate.web.auth import sign_in as start_session
from replygate.web.auth import sign_out as end_session
from replygate.web.ratelimit import LoginThrottle, TooManyAttempts
from replygate.web.templating import render

if TYPE_CHECKING:
    from replygate.bootstrap import Container

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)


def safe_next(target: str | None) -> str:
    """Only paths of this site: never ``//host`` or ``https://...`` (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    return target


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def _login_context(request: Request, **values: str) -> dict[str, object]:
    container: Container = request.state.container
    # The "Sign in with Microsoft" button, when an OAuth application is named for it.
    return {**values, "microsoft": signing_in.enabled(container)}


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str = "/") -> Response:
    if current_principal(request) is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return render(request, "login.html", _login_context(request, next=safe_next(next)))


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request,
    username: Annotated[str, Form(max_length=200)],
    password: Annotated[str, Form(max_length=accounts.MAX_PASSWORD)],
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    container: Container = request.state.container
    throttle: LoginThrottle = request.state.throttle
    address = client_address(request)

    def again(message: str, status: int, headers: dict[str, str] | None = None) -> Response:
        context = _login_context(request, next=safe_next(next), username=username, error=message)
        return render(request, "login.html", context, status_code=status, headers=headers)

    try:
        throttle.check(username, address)
        user = accounts.authenticate(
            container.uow(), username=username, password=password, address=address
        )
    except TooManyAttempts as error:
        log.warning("sign-in refused for %r from %s: rate limited", username, address)
        message = _sentence(f"{error.message}: {error.fix}.")
        return again(message, 429, {"Retry-After": str(error.retry_after)})
    except accounts.InvalidCredentials as error:
        throttle.failed(username, address)
        log.info("sign-in failed for %r from %s", username, address)
        return again(_sentence(f"{error.message}."), 401)
    throttle.succeeded(username)
    start_session(request, user)
    log.info("%s signed in from %s", user.username, address)
    return RedirectResponse(safe_next(next), status_code=303)


@router.post("/logout")
def logout(request: Request) -> Response:
    end_session(request)
    return RedirectResponse("/login", status_code=303)
