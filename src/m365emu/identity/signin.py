"""The sign-in page posts (account chosen, consent answered) and sign-out.

https://learn.microsoft.com/entra/identity-platform/v2-oauth2-auth-code-flow
https://learn.microsoft.com/entra/identity-platform/v2-protocols-oidc#send-a-sign-out-request
No password is checked: choosing an account signs it in. Shared mailboxes and disabled
accounts cannot sign in (AADSTS50057), unknown names get AADSTS50034.
"""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from m365emu.identity import errors, pages
from m365emu.identity.authorize import (
    SESSION_COOKIE,
    current_session,
    finish,
    respond_error,
)
from m365emu.identity.context import state_of
from m365emu.identity.store import Session, new_handle
from m365emu.tenant import redirect_uri_matches


def _flow_expired() -> errors.AadError:
    return errors.AadError(
        50089, "invalid_request", "Authentication failed due to flow token expired."
    )


def _set_cookie(response: Response, session: Session) -> Response:
    # SameSite=None so that the cookie survives cross-site form posts, as Microsoft's does.
    response.set_cookie(
        SESSION_COOKIE, session.id, path="/", secure=True, httponly=True, samesite="none"
    )
    return response


async def login(request: Request) -> Response:
    """POST /{tenant}/login: the account picker's answer."""
    state = state_of(request)
    form = await request.form()
    ctx, upn = str(form.get("ctx", "")), str(form.get("login", "")).strip()
    with state.lock:
        pending = state.identity.pending.pop(ctx, None)
        if pending is None:
            return _flow_expired().html_response(request, state.now())
        user = state.tenant.user_by(upn) if upn else None
        if user is None:
            exc = errors.AadError(
                50034,
                "invalid_request",
                f"The user account {upn} does not exist in the '{state.tenant.id}' directory. "
                "To sign into this application, the account must be added to the directory.",
            )
            return exc.html_response(request, state.now())
        if not user.can_sign_in:
            exc = errors.AadError(50057, "invalid_request", "The user account is disabled.")
            return exc.html_response(request, state.now())
        app = state.tenant.app_by(pending.params["client_id"])
        if app is None:
            return _flow_expired().html_response(request, state.now())
        # One signed-in account per browser: choosing an account replaces the previous one.
        old = request.cookies.get(SESSION_COOKIE)
        if old:
            state.identity.sessions.pop(old, None)
        session = Session(new_handle(24), user.id, state.now())
        state.identity.sessions[session.id] = session
        response = finish(request, state, app, pending.params, user, session)
    return _set_cookie(response, session)


async def consent(request: Request) -> Response:
    """POST /{tenant}/consent: Accept grants the app's delegated permissions tenant-wide."""
    state = state_of(request)
    form = await request.form()
    ctx, accept = str(form.get("ctx", "")), str(form.get("accept", "")) == "yes"
    with state.lock:
        pending = state.identity.pending.pop(ctx, None)
        current = current_session(state, request)
        app = state.tenant.app_by(pending.params["client_id"]) if pending else None
        if pending is None or app is None or current is None:
            return _flow_expired().html_response(request, state.now())
        session, user = current
        if user.id != pending.user_id:
            return _flow_expired().html_response(request, state.now())
        if not accept:
            exc = errors.AadError(
                65004, "access_denied", "User declined to consent to access the app."
            )
            return respond_error(request, state, pending.params, exc)
        app.delegated_consent = True
        return finish(request, state, app, pending.params, user, session, consented_now=True)


async def logout(request: Request) -> Response:
    """GET/POST /{tenant}/oauth2/v2.0/logout: end the browser session.

    Redirects to `post_logout_redirect_uri` when it matches a redirect URI registered by an
    app of the tenant; otherwise shows the "You signed out" page."""
    state = state_of(request)
    params = dict(request.query_params)
    if request.method == "POST":
        form = await request.form()
        params.update({k: v for k, v in form.items() if isinstance(v, str)})
    with state.lock:
        state.identity.sessions.pop(request.cookies.get(SESSION_COOKIE, ""), None)
        target = params.get("post_logout_redirect_uri", "")
        allowed = bool(target) and any(
            redirect_uri_matches(uri, target) for a in state.tenant.apps for uri in a.redirect_uris
        )
    response: Response
    if allowed:
        joiner = "&" if "?" in target else "?"
        suffix = joiner + urlencode({"state": params["state"]}) if params.get("state") else ""
        response = RedirectResponse(target + suffix, status_code=302)
    else:
        response = pages.signed_out()
    response.delete_cookie(SESSION_COOKIE, path="/", secure=True, httponly=True, samesite="none")
    return response
