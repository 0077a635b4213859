"""POST /{tenant}/oauth2/v2.0/token: authorization_code, refresh_token, client_credentials.

https://learn.microsoft.com/entra/identity-platform/v2-oauth2-auth-code-flow#redeem-a-code-for-an-access-token
https://learn.microsoft.com/entra/identity-platform/v2-oauth2-auth-code-flow#refresh-the-access-token
https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow
Codes are single use (AADSTS54005 on reuse) and bound to client, redirect URI and PKCE
challenge. Refresh tokens are opaque and rotate (see identity.store). Client credentials
need `https://graph.microsoft.com/.default`; the token's `roles` are the application
permissions when admin consent is given, and, as Entra does, a token without `roles` is
issued otherwise (Graph then answers 403).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from m365emu.identity import clientauth, errors, scopes, tokens
from m365emu.identity.context import base_url, resolve_tenant, state_of
from m365emu.identity.store import RefreshTokenRecord, new_handle
from m365emu.state import EmulatorState
from m365emu.tenant import AppRegistration, User

_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


async def token(request: Request) -> Response:
    """The token endpoint; errors are JSON in Microsoft's shape."""
    state = state_of(request)
    form = await request.form()
    params = {k: v for k, v in form.items() if isinstance(v, str)}
    try:
        with state.lock:
            body = _handle(request, state, params)
    except errors.AadError as exc:
        return exc.json_response(request, state.now())
    return JSONResponse(body, headers=_NO_STORE)


def _handle(request: Request, state: EmulatorState, params: dict[str, str]) -> dict[str, Any]:
    segment = request.path_params["tenant"]
    resolve_tenant(state, segment)
    basic = clientauth.basic_credentials(request.headers.get("authorization"))
    client_id = params.get("client_id") or (basic[0] if basic else "")
    if not client_id:
        raise errors.missing_parameter("client_id")
    grant_type = params.get("grant_type", "")
    if not grant_type:
        raise errors.missing_parameter("grant_type")
    app = state.tenant.app_by(client_id)
    if app is None:
        raise errors.unknown_client(client_id, state.tenant.id)
    endpoint = f"{base_url(request)}/{segment}/oauth2/v2.0/token"
    acr = clientauth.authenticate(state, app, params, basic, endpoint)
    if grant_type == "authorization_code":
        return _authorization_code(request, state, app, params, acr)
    if grant_type == "refresh_token":
        return _refresh_token(request, state, app, params, acr)
    if grant_type == "client_credentials":
        return _client_credentials(state, app, params, acr)
    raise errors.AadError(
        70003,
        "unsupported_grant_type",
        f"The app requested an unsupported grant type '{grant_type}'.",
    )


def _pkce_ok(challenge: str, method: str | None, verifier: str) -> bool:
    if method == "S256":
        digest = hashlib.sha256(verifier.encode("ascii", "replace")).digest()
        computed = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        return hmac.compare_digest(computed, challenge)
    return hmac.compare_digest(verifier, challenge)


def _authorization_code(
    request: Request, state: EmulatorState, app: AppRegistration, params: dict[str, str], acr: str
) -> dict[str, Any]:
    value = params.get("code")
    if not value:
        raise errors.missing_parameter("code")
    code = state.identity.codes.get(value)
    if code is None or code.client_id != app.client_id:
        raise errors.invalid_grant(
            70000, "The provided value for the 'code' parameter is not valid."
        )
    if code.redeemed:
        raise errors.code_redeemed()
    if state.now() - code.issued_at > state.identity.settings.code_lifetime:
        raise errors.grant_expired()
    redirect_uri = params.get("redirect_uri", "")
    if redirect_uri != code.redirect_uri:
        raise errors.invalid_grant(
            500112,
            f"The reply address '{redirect_uri}' does not match the reply address "
            f"'{code.redirect_uri}' provided when requesting Authorization code.",
        )
    if code.code_challenge is not None:
        verifier = params.get("code_verifier", "")
        if not verifier or not _pkce_ok(code.code_challenge, code.code_challenge_method, verifier):
            raise errors.pkce_mismatch()
    user = _active_user(state, code.user_id)
    requested = scopes.split_scopes(params.get("scope")) or code.scopes
    granted = scopes.delegated_grant(app, requested)
    code.redeemed = True
    record = RefreshTokenRecord(
        new_handle(64), app.client_id, user.id, requested, state.now(), code.auth_time
    )
    return _user_tokens(
        request, state, app, user, requested, granted, record, code.nonce, acr, params
    )


def _refresh_token(
    request: Request, state: EmulatorState, app: AppRegistration, params: dict[str, str], acr: str
) -> dict[str, Any]:
    value = params.get("refresh_token")
    if not value:
        raise errors.missing_parameter("refresh_token")
    old = state.identity.refresh_tokens.get(value)
    if old is None:
        raise errors.invalid_grant(9002313, "Invalid request. Request is malformed or invalid.")
    if old.client_id != app.client_id:
        raise errors.invalid_grant(
            70000,
            "Provided grant is invalid or malformed: the refresh token was issued to a "
            "different client.",
        )
    now = state.now()
    settings = state.identity.settings
    if old.revoked:
        raise errors.refresh_revoked(old.auth_time)
    if now - old.issued_at > settings.refresh_token_inactivity:
        raise errors.refresh_inactive(old.issued_at, str(now - old.issued_at))
    if (
        settings.refresh_token_max_age is not None
        and now - old.auth_time > settings.refresh_token_max_age
    ):
        raise errors.grant_expired()
    user = _active_user(state, old.user_id)
    requested = scopes.split_scopes(params.get("scope")) or old.scopes
    granted = scopes.delegated_grant(app, requested)
    record = RefreshTokenRecord(
        new_handle(64), app.client_id, user.id, requested, now, old.auth_time
    )
    return _user_tokens(request, state, app, user, requested, granted, record, None, acr, params)


def _active_user(state: EmulatorState, user_id: str) -> User:
    user = state.tenant.user_by(user_id)
    if user is None or not user.can_sign_in:
        raise errors.invalid_grant(50057, "The user account is disabled.")
    return user


def _user_tokens(
    request: Request,
    state: EmulatorState,
    app: AppRegistration,
    user: User,
    requested: tuple[str, ...],
    granted: frozenset[str],
    record: RefreshTokenRecord,
    nonce: str | None,
    acr: str,
    params: dict[str, str],
) -> dict[str, Any]:
    access, lifetime = tokens.access_token_for_user(state, app, user, granted, acr)
    body: dict[str, Any] = {
        "token_type": "Bearer",
        "scope": scopes.response_scope(requested),
        "expires_in": lifetime,
        "ext_expires_in": lifetime,
        "access_token": access,
    }
    if "offline_access" in requested:
        state.identity.refresh_tokens[record.token] = record
        body["refresh_token"] = record.token
    if "openid" in requested:
        issuer = f"{base_url(request)}/{state.tenant.id}/v2.0"
        body["id_token"] = tokens.id_token(
            state, app, user, nonce=nonce, auth_time=record.auth_time, issuer=issuer
        )
    if params.get("client_info") == "1":
        body["client_info"] = tokens.client_info(state, user)
    return body


def _client_credentials(
    state: EmulatorState, app: AppRegistration, params: dict[str, str], acr: str
) -> dict[str, Any]:
    requested = scopes.split_scopes(params.get("scope"))
    if not requested:
        raise errors.missing_parameter("scope")
    for scope in requested:
        if scope in scopes.OIDC_SCOPES or scopes.graph_name(scope) != ".default":
            raise errors.AadError(
                1002012,
                "invalid_scope",
                f"The provided value for scope {scope} is not valid. Client credential flows "
                "must have a scope value with /.default suffixed to the resource identifier "
                "(application ID URI).",
            )
    roles = frozenset(app.application_permissions) if app.application_consent else frozenset()
    access, lifetime = tokens.access_token_for_app(state, app, roles, acr)
    return {
        "token_type": "Bearer",
        "expires_in": lifetime,
        "ext_expires_in": lifetime,
        "access_token": access,
    }
