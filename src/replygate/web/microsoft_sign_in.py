"""Sign in with Microsoft: the browser side (the flow itself is in ``replygate.signing_in``).

``GET /login/microsoft`` sends the browser to Microsoft and keeps the flow's ``state`` in
its session. Microsoft answers at ``/login/microsoft/callback`` with a ``form_post``: a
cross-site POST that carries no session cookie (SameSite=Lax), so the callback only seals
the answer and redirects to ``/login/microsoft/finish``, a GET that does carry the session.
There the answer is redeemed, and only if this browser started that sign-in: an answer
planted by someone else (login CSRF) signs nobody in. Every route is 404 while
``REPLYGATE_SIGN_IN_APPLICATION`` is unset.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from replygate import signing_in
from replygate.errors import NotFound, ReplygateError, SecretKeyError, SystemFailure
from replygate.graph.errors import GraphFailure
from replygate.services.microsoft_accounts import SignInRefused
from replygate.web.auth import client_address, current_principal
from replygate.web.auth import sign_in as start_session
from replygate.web.csrf import csrf_exempt
from replygate.web.errors import status_for
from replygate.web.pages import safe_next
from replygate.web.ratelimit import LoginThrottle, TooManyAttempts
from replygate.web.templating import render

if TYPE_CHECKING:
    from replygate.bootstrap import Container

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)

SESSION_KEY = "ms_sign_in"  # the state of the sign-in this browser started
ANSWER_PURPOSE = "microsoft sign-in answer"
ANSWER_LIFETIME = 600  # seconds; Microsoft's codes live 10 minutes too
# What MSAL reads from the answer; anything else is dropped, and sizes are capped so the
# sealed answer stays a reasonable URL.
ANSWER_FIELDS = (
    "code",
    "state",
    "session_state",
    "client_info",
    "error",
    "error_description",
    "error_uri",
)
MAX_FIELD = 4096


def _container(request: Request) -> Container:
    container: Container = request.state.container
    if not signing_in.enabled(container):
        raise NotFound("Sign in with Microsoft is not turned on")
    return container


def _problem(
    request: Request, error: ReplygateError, status: int, headers: dict[str, str] | None = None
) -> Response:
    context: dict[str, Any] = {
        "title": "Not signed in",
        "message": error.message,
        "fix": error.fix,
        "error": "",
        "description": "",
    }
    if isinstance(error, GraphFailure):
        context["error"] = error.code
        context["description"] = error.description
    return render(request, "sign_in_problem.html", context, status_code=status, headers=headers)


def _status(error: ReplygateError) -> int:
    if isinstance(error, SignInRefused):
        return 403
    if isinstance(error, SystemFailure):
        return 503  # Microsoft unreachable or failing: worth trying again later
    return status_for(error)


@router.get("/login/microsoft")
def start(request: Request, next: str = "/") -> Response:
    container = _container(request)
    target = safe_next(next)
    if current_principal(request) is not None:
        return RedirectResponse(target, status_code=303)
    throttle: LoginThrottle = request.state.throttle
    try:
        throttle.start_without_password(client_address(request))
        started = signing_in.start(container, next_url=target)
    except TooManyAttempts as error:
        return _problem(request, error, 429, {"Retry-After": str(error.retry_after)})
    except ReplygateError as error:
        log.warning("Sign in with Microsoft could not start: %s", error)
        return _problem(request, error, _status(error))
    request.session[SESSION_KEY] = started.state
    return RedirectResponse(started.url, status_code=302)


@router.api_route("/login/microsoft/callback", methods=["GET", "POST"])
@csrf_exempt
async def callback(request: Request) -> Response:
    container = _container(request)
    fields: dict[str, Any] = dict(request.query_params)
    if request.method == "POST":
        fields.update(await request.form())
    answer = {
        name: value[:MAX_FIELD]
        for name, value in fields.items()
        if name in ANSWER_FIELDS and isinstance(value, str)
    }
    sealed = container.secrets.encrypt(
        json.dumps({"at": container.clock.now().timestamp(), "answer": answer}), ANSWER_PURPOSE
    )
    # Not redeemed here: this request carries no session to check the answer against.
    return RedirectResponse(f"/login/microsoft/finish?r={quote(sealed)}", status_code=303)


def _unseal(container: Container, sealed: str) -> dict[str, str] | None:
    try:
        data = json.loads(container.secrets.decrypt(sealed, ANSWER_PURPOSE))
        age = container.clock.now().timestamp() - float(data["at"])
        answer = {str(k): str(v) for k, v in dict(data["answer"]).items()}
    except (SecretKeyError, ValueError, TypeError, KeyError):
        return None
    return answer if 0 <= age <= ANSWER_LIFETIME else None


@router.get("/login/microsoft/finish")
def finish(request: Request, r: str = "") -> Response:
    container = _container(request)
    answer = _unseal(container, r)
    if answer is None:
        stale = signing_in.SignInExpired(
            "this sign-in answer is unknown or too old",
            fix="press Sign in with Microsoft again",
        )
        return _problem(request, stale, 400)
    expected = request.session.get(SESSION_KEY)
    if isinstance(expected, str) and answer.get("state") == expected:
        del request.session[SESSION_KEY]  # one answer per started sign-in
    address = client_address(request)
    try:
        done = signing_in.finish(
            container, answer, expected_state=expected if isinstance(expected, str) else None
        )
    except SignInRefused as error:
        # Microsoft authenticated someone replygate does not let in: counts like a failed
        # password for the address, never for a username.
        request.state.throttle.failed_address(address)
        log.warning("Sign in with Microsoft refused from %s: %s", address, error.message)
        return _problem(request, error, 403)
    except ReplygateError as error:
        log.info("Sign in with Microsoft did not finish from %s: %s", address, error)
        return _problem(request, error, _status(error))
    start_session(request, done.user)
    log.info("%s signed in with Microsoft from %s", done.user.username, address)
    return RedirectResponse(safe_next(done.next_url), status_code=303)
