"""The authorize endpoint and the browser sign-in (account picker, session cookie, consent).

https://learn.microsoft.com/entra/identity-platform/v2-oauth2-auth-code-flow#request-an-authorization-code

Sign-in decision, like Microsoft's SSO:
* `prompt=select_account` or `prompt=login`, or no session: show the account picker.
* a session whose user differs from `login_hint`: show the picker (the hint highlighted).
* otherwise (no prompt, a session): sign the session's user in silently, without any page.
  This is how people authorise the wrong account: the previous user comes back.
* `prompt=none`: never a page; `login_required` (AADSTS50058) without a session.
Consent: if the app lacks consent for the requested Graph scopes (or `prompt=consent`), the
consent page is shown; `prompt=none` gets `consent_required` (AADSTS65001) instead.
`domain_hint` is accepted and ignored (one tenant, no home-realm discovery).
"""

from __future__ import annotations

import re
from datetime import datetime
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from m365emu.identity import errors, pages, scopes
from m365emu.identity.context import base_url, resolve_tenant, state_of
from m365emu.identity.store import AuthCode, PendingAuthorization, Session, new_handle
from m365emu.identity.tokens import client_info
from m365emu.state import EmulatorState
from m365emu.tenant import AppRegistration, User

SESSION_COOKIE = "ESTSAUTH"
_PKCE_CHARS = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")


class _PageError(Exception):
    """An error shown as a page: the redirect URI cannot be trusted."""

    def __init__(self, error: errors.AadError) -> None:
        self.error = error


async def _params(request: Request) -> dict[str, str]:
    params = dict(request.query_params)
    if request.method == "POST":  # OIDC allows the authorize request as a form post
        form = await request.form()
        params.update({k: v for k, v in form.items() if isinstance(v, str)})
    return params


def _check_client(state: EmulatorState, segment: str, params: dict[str, str]) -> AppRegistration:
    try:
        resolve_tenant(state, segment)
    except errors.AadError as exc:
        raise _PageError(exc) from None
    client_id = params.get("client_id", "")
    if not client_id:
        raise _PageError(errors.missing_parameter("client_id"))
    app = state.tenant.app_by(client_id)
    if app is None:
        raise _PageError(errors.unknown_client(client_id, state.tenant.id))
    redirect_uri = params.get("redirect_uri", "")
    if not redirect_uri:
        raise _PageError(errors.missing_parameter("redirect_uri"))
    if not app.redirect_uri_allowed(redirect_uri):
        raise _PageError(errors.bad_redirect_uri(redirect_uri, app.client_id))
    return app


def _check_request(params: dict[str, str]) -> None:
    response_type = params.get("response_type", "")
    if not response_type:
        raise errors.missing_parameter("response_type")
    if response_type != "code":
        raise errors.AadError(
            700054,
            "unsupported_response_type",
            f"response_type '{response_type}' is not enabled for the application.",
        )
    if not params.get("scope"):
        raise errors.missing_parameter("scope")
    for scope in scopes.split_scopes(params["scope"]):
        scopes.graph_name(scope)  # raises for resources other than Graph
    if params.get("response_mode", "query") not in ("query", "fragment", "form_post"):
        raise errors.invalid_request(900144, "The response_mode parameter is not valid.")
    challenge = params.get("code_challenge")
    method = params.get("code_challenge_method", "plain" if challenge else "")
    if method and method not in ("plain", "S256"):
        raise errors.invalid_request(501491, f"Invalid code_challenge_method '{method}'.")
    if challenge is not None and not _PKCE_CHARS.match(challenge):
        raise errors.invalid_request(501491, "Invalid size of Code_Challenge parameter.")
    if params.get("prompt", "") not in ("", "none", "login", "select_account", "consent"):
        raise errors.invalid_request(90023, f"Invalid prompt value '{params['prompt']}'.")


def respond(params: dict[str, str], fields: dict[str, str]) -> Response:
    """Send an authorization response (or error) back to the app in its response_mode."""
    redirect_uri = params["redirect_uri"]
    if params.get("state") is not None:
        fields = {**fields, "state": params["state"]}
    mode = params.get("response_mode", "query")
    if mode == "form_post":
        return pages.form_post(redirect_uri, fields)
    if mode == "fragment":
        return RedirectResponse(f"{redirect_uri}#{urlencode(fields)}", status_code=302)
    joiner = "&" if "?" in redirect_uri else "?"
    return RedirectResponse(f"{redirect_uri}{joiner}{urlencode(fields)}", status_code=302)


def respond_error(
    request: Request, state: EmulatorState, params: dict[str, str], exc: errors.AadError
) -> Response:
    body = exc.body(request, state.now())
    fields = {
        "error": exc.error,
        "error_description": str(body["error_description"]),
        "error_uri": str(body["error_uri"]),
    }
    return respond(params, fields)


def current_session(state: EmulatorState, request: Request) -> tuple[Session, User] | None:
    session = state.identity.sessions.get(request.cookies.get(SESSION_COOKIE, ""))
    user = state.tenant.user_by(session.user_id) if session else None
    if session is None or user is None or not user.can_sign_in:
        return None
    return session, user


async def authorize(request: Request) -> Response:
    """GET/POST /{tenant}/oauth2/v2.0/authorize."""
    state = state_of(request)
    params = await _params(request)
    segment = request.path_params["tenant"]
    try:
        app = _check_client(state, segment, params)
    except _PageError as exc:
        return exc.error.html_response(request, state.now())
    try:
        _check_request(params)
    except errors.AadError as exc:
        return respond_error(request, state, params, exc)
    prompt = params.get("prompt", "")
    hint = params.get("login_hint")
    hinted = state.tenant.user_by(hint) if hint else None
    with state.lock:
        state.identity.prune(state.now())
        current = current_session(state, request)
        if prompt == "none":
            if current is None:
                return respond_error(request, state, params, errors.login_required())
            if hinted is not None and hinted.id != current[1].id:
                mismatch = errors.AadError(
                    16000,
                    "interaction_required",
                    f"User account '{hinted.upn}' does not exist in the current session.",
                )
                return respond_error(request, state, params, mismatch)
        elif (
            prompt in ("select_account", "login")
            or current is None
            or (hinted is not None and hinted.id != current[1].id)
        ):
            pending = _pending(state, segment, params)
            return picker(request, state, app, pending, hinted, current)
        if current is None:  # unreachable: both branches above handle it
            return respond_error(request, state, params, errors.login_required())
        session, user = current
        return finish(request, state, app, params, user, session)


def _pending(state: EmulatorState, segment: str, params: dict[str, str]) -> PendingAuthorization:
    pending = PendingAuthorization(new_handle(24), segment, params, state.now())
    state.identity.pending[pending.ctx] = pending
    return pending


def picker(
    request: Request,
    state: EmulatorState,
    app: AppRegistration,
    pending: PendingAuthorization,
    hinted: User | None,
    current: tuple[Session, User] | None,
) -> Response:
    return pages.account_picker(
        action=f"{base_url(request)}/{pending.tenant_segment}/login",
        ctx=pending.ctx,
        users=state.tenant.sign_in_users(),
        hinted=hinted,
        signed_in=current[1] if current else None,
        app=app,
        force_login=pending.params.get("prompt") == "login",
    )


def finish(
    request: Request,
    state: EmulatorState,
    app: AppRegistration,
    params: dict[str, str],
    user: User,
    session: Session,
    *,
    consented_now: bool = False,
) -> Response:
    """After sign-in: check consent (maybe show the consent page), then issue a code."""
    requested = scopes.split_scopes(params["scope"])
    wanted = sorted({n for s in requested if (n := scopes.graph_name(s)) and n != ".default"})
    needs_consent = params.get("prompt") == "consent" and not consented_now
    try:
        scopes.delegated_grant(app, requested)
    except errors.AadError as exc:
        # Consent the page can give: every Graph scope asked for is a registered permission.
        grantable = set(wanted) <= app.delegated_permissions
        if params.get("prompt") == "none" or not grantable or consented_now:
            exc.error = "consent_required"
            return respond_error(request, state, params, exc)
        needs_consent = True
    if needs_consent:
        pending = _pending(state, request.path_params["tenant"], params)
        pending.user_id = user.id
        return pages.consent(
            action=f"{base_url(request)}/{pending.tenant_segment}/consent",
            ctx=pending.ctx,
            app=app,
            user=user,
            scopes=wanted,
        )
    return _issue_code(state, app, params, user, session)


def _issue_code(
    state: EmulatorState,
    app: AppRegistration,
    params: dict[str, str],
    user: User,
    session: Session,
) -> Response:
    now: datetime = state.now()
    challenge = params.get("code_challenge")
    code = AuthCode(
        code=new_handle(48),
        client_id=app.client_id,
        redirect_uri=params["redirect_uri"],
        user_id=user.id,
        scopes=scopes.split_scopes(params["scope"]),
        nonce=params.get("nonce"),
        code_challenge=challenge,
        code_challenge_method=(params.get("code_challenge_method") or "plain")
        if challenge
        else None,
        issued_at=now,
        auth_time=session.signed_in_at,
    )
    state.identity.codes[code.code] = code
    fields = {"code": code.code}
    if params.get("client_info") == "1":
        fields["client_info"] = client_info(state, user)
    fields["session_state"] = session.id
    return respond(params, fields)
