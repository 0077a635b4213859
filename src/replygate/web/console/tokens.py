"""API tokens: create (the secret is shown once), list and revoke; admins see everyone's."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from replygate.errors import InvalidInput
from replygate.services import accounts
from replygate.services.account_ports import SCOPES_BY_ROLE, ApiToken, Role, User
from replygate.web.console.common import Viewer, container_of, notify, take_notice
from replygate.web.templating import render

router = APIRouter(include_in_schema=False)
_SHOWN_ONCE = "new_token"
_PURPOSE = "new API token"
EXPIRIES = {"30": "30 days", "90": "90 days", "365": "1 year", "": "never"}


def _tokens(request: Request, who: Viewer) -> list[tuple[User, ApiToken]]:
    container = container_of(request)
    users = accounts.list_users(container.uow()) if who.role is Role.ADMIN else [who.user]
    return [
        (user, token)
        for user in users
        for token in accounts.list_api_tokens(container.uow(), user_id=user.id)
    ]


def _page(
    request: Request,
    who: Viewer,
    *,
    errors: dict[str, str] | None = None,
    secret: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    container = container_of(request)
    context = {
        "title": "API tokens",
        "tokens": _tokens(request, who),
        "scopes": sorted(s.value for s in SCOPES_BY_ROLE[who.role]),
        "expiries": EXPIRIES,
        "errors": errors or {},
        "secret": secret,
        "now": container.clock.now(),
        "notice": take_notice(request),
    }
    headers = {"Cache-Control": "no-store"}  # the page may hold a new secret
    return render(request, "console/tokens.html", context, status_code=status, headers=headers)


@router.get("/tokens")
def tokens_page(request: Request, who: Viewer) -> Response:
    shown = request.session.pop(_SHOWN_ONCE, None)
    secret = None
    if isinstance(shown, dict):
        value = container_of(request).secrets.decrypt(str(shown["sealed"]), _PURPOSE)
        secret = {"name": str(shown["name"]), "value": value}
    return _page(request, who, secret=secret)


@router.post("/tokens")
def create_token(
    request: Request,
    who: Viewer,
    name: Annotated[str, Form(max_length=200)] = "",
    scope: Annotated[list[str] | None, Form()] = None,
    expires: Annotated[str, Form()] = "90",
) -> Response:
    container = container_of(request)
    try:
        days = int(expires) if expires else None
        issued = accounts.create_api_token(
            container.uow(),
            container.clock,
            user_id=who.user.id,
            name=name,
            scopes=accounts.parse_scopes(scope or []),
            expires_in=timedelta(days=days) if days else None,
        )
    except (InvalidInput, ValueError) as error:
        text = error.message if isinstance(error, InvalidInput) else "expires: a number of days"
        field = "scope" if "scope" in text else "name"
        return _page(request, who, errors={field: text}, status=422)
    # Post-redirect-get, so a reload cannot create a second token. The secret rides in the
    # session cookie for that one redirect, encrypted (the cookie itself is only signed).
    sealed = container.secrets.encrypt(issued.secret, _PURPOSE)
    request.session[_SHOWN_ONCE] = {"name": issued.token.name, "sealed": sealed}
    return RedirectResponse("/tokens", status_code=303)


@router.post("/tokens/{token_id}/revoke")
def revoke_token(request: Request, token_id: int, who: Viewer) -> Response:
    container = container_of(request)
    accounts.revoke_api_token(container.uow(), container.clock, token_id=token_id, by=who.user)
    notify(request, "The token was revoked; requests using it are refused from now on.")
    return RedirectResponse("/tokens", status_code=303)
