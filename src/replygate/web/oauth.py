"""Authorize (delegated): the browser side of signing the SMTP User in through Microsoft.

``GET /oauth/authorize/{app}`` (admin) sends the browser to Microsoft; the *Try again with
another account* button POSTs to the same path. Microsoft answers at ``/oauth/callback``
with a ``form_post``: a cross-site POST that carries no session cookie (SameSite=Lax), so
the callback only redeems the code (its ``state`` is the protection) and then redirects to
``/oauth/result``, a GET that does carry the session. The outcome travels in between sealed
with the secret key, so it cannot be forged or read, and works on any replica.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from replygate import authorising
from replygate.errors import ReplygateError, SecretKeyError
from replygate.graph.clouds import resolve_cloud
from replygate.graph.errors import GraphFailure, WrongAccount
from replygate.services.account_ports import Role
from replygate.services.configuring import current_settings
from replygate.services.ports import OAuthApplication
from replygate.web.auth import Principal, require_role
from replygate.web.csrf import csrf_exempt
from replygate.web.templating import render

if TYPE_CHECKING:
    from replygate.bootstrap import Container

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)
Admin = Annotated[Principal, Depends(require_role(Role.ADMIN))]

RESULT_PURPOSE = "authorize result"
RESULT_LIFETIME = timedelta(minutes=10)
SESSION_KEY = "oauth_app"  # which application this browser is authorising
_WRONG = re.compile(r"Connected: (?P<got>.+?) signed in, (?P<expected>.+?) was expected\.")


@dataclass(frozen=True)
class Outcome:
    """What the callback learnt, handed to the result page."""

    kind: str  # "authorised" | "wrong_account" | "error"
    at: float
    message: str = ""
    fix: str = ""
    account: str = ""
    name: str = ""
    signed_in: str = ""
    expected: str = ""
    error: str = ""  # Microsoft's `error` and the first line of `error_description`
    description: str = ""


async def _start(request: Request, app_id: int, who: Principal) -> Response:
    container: Container = request.state.container
    url = await run_in_threadpool(authorising.start, container, app_id, by=who.name)
    request.session[SESSION_KEY] = app_id
    log.info("%s started Authorize for OAuth application %s", who.name, app_id)
    return RedirectResponse(url, status_code=302 if request.method == "GET" else 303)


@router.get("/oauth/authorize/{app_id}")
async def authorize(request: Request, app_id: int, who: Admin) -> Response:
    return await _start(request, app_id, who)


@router.post("/oauth/authorize/{app_id}")
async def authorize_again(request: Request, app_id: int, who: Admin) -> Response:
    """*Try again with another account*: a fresh flow, ``prompt=select_account`` as always."""
    return await _start(request, app_id, who)


@router.api_route("/oauth/callback", methods=["GET", "POST"])
@csrf_exempt
async def callback(request: Request) -> Response:
    container: Container = request.state.container
    params = {k: v for k, v in request.query_params.items()}
    if request.method == "POST":
        form = await request.form()
        params.update({k: v for k, v in form.items() if isinstance(v, str)})
    now = container.clock.now().timestamp()
    try:
        account = await run_in_threadpool(authorising.finish, container, params)
        outcome = Outcome("authorised", now, account=account.username, name=account.name)
    except WrongAccount as error:
        found = _WRONG.search(error.message)
        outcome = Outcome(
            "wrong_account",
            now,
            message=error.message,
            fix=error.fix,
            signed_in=found["got"] if found else "",
            expected=found["expected"] if found else "",
        )
    except ReplygateError as error:
        outcome = Outcome(
            "error",
            now,
            message=error.message,
            fix=error.fix,
            error=params.get("error", "")[:200],
            description=_first_line(params.get("error_description", "")),
        )
        if isinstance(error, GraphFailure) and error.description and not outcome.description:
            outcome = Outcome(**{**asdict(outcome), "description": error.description})
    sealed = container.secrets.encrypt(json.dumps(asdict(outcome)), RESULT_PURPOSE)
    # Not rendered here: this request may carry no session, and a page would replace it.
    return RedirectResponse(f"/oauth/result?r={quote(sealed)}", status_code=303)


@router.get("/oauth/result")
def result(request: Request, who: Admin, r: str = "") -> Response:
    container: Container = request.state.container
    outcome = _unseal(container, r)
    if outcome is None:
        return render(
            request,
            "console/oauth_result.html",
            {
                "title": "Authorize",
                "outcome": Outcome(
                    "error",
                    0,
                    message="this Authorize result is unknown or too old",
                    fix="press Authorize again on the OAuth Applications page",
                ),
            },
            status_code=400,
        )
    app = _application(container, request.session.get(SESSION_KEY))
    context: dict[str, Any] = {"title": "Authorize", "outcome": outcome, "app": app}
    if app is not None:
        context["logout_url"] = sign_out_url(app)
    if outcome.kind == "wrong_account":
        context["title"] = "Bad User is Authenticated But Not Connected"
        if not outcome.expected:
            current = current_settings(container.uow())
            context["expected"] = current[1].smtp_user if current else ""
    status = {"authorised": 200, "wrong_account": 409}.get(outcome.kind, 400)
    return render(request, "console/oauth_result.html", context, status_code=status)


def sign_out_url(app: OAuthApplication) -> str:
    """Microsoft's sign-out page for the application's tenant and cloud."""
    try:
        cloud = resolve_cloud(app.cloud, authority_host=app.authority_host, graph_url=app.graph_url)
    except ReplygateError:
        return ""
    return f"{cloud.authority_host}/{app.tenant}/oauth2/v2.0/logout"


def _application(container: Container, app_id: object) -> OAuthApplication | None:
    """The application this browser started Authorize for, else the one Email Settings use."""
    with container.uow() as uow:
        if isinstance(app_id, int):
            found = uow.applications.get(app_id)
            if found is not None:
                return found
    current = current_settings(container.uow())
    if current is None or not current[1].smtp_oauth_application:
        return None
    with container.uow() as uow:
        return uow.applications.by_name(current[1].smtp_oauth_application)


def _unseal(container: Container, sealed: str) -> Outcome | None:
    if not sealed:
        return None
    try:
        data = json.loads(container.secrets.decrypt(sealed, RESULT_PURPOSE))
        outcome = Outcome(**data)
    except (SecretKeyError, ValueError, TypeError):
        return None
    age = container.clock.now().timestamp() - outcome.at
    return outcome if 0 <= age <= RESULT_LIFETIME.total_seconds() else None


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0][:500] if text.strip() else ""
