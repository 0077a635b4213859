"""Token minting and the access-token check that Graph endpoints call.

Access tokens look like the v1.0 tokens Microsoft Graph receives (Graph's
accessTokenAcceptedVersion is 1): `iss` = `https://sts.windows.net/{tid}/`, `aud` =
`https://graph.microsoft.com`, `scp` (delegated) or `roles` (app-only); see
https://learn.microsoft.com/entra/identity-platform/access-token-claims-reference.
ID tokens are v2.0 (https://learn.microsoft.com/entra/identity-platform/id-token-claims-reference).
Every token carries a random `uti` so that two tokens minted in the same second differ.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import jwt

from m365emu.identity.keys import b64url
from m365emu.identity.scopes import GRAPH_AUDIENCE, GRAPH_RESOURCES
from m365emu.tenant import AppRegistration, User

if TYPE_CHECKING:
    from m365emu.state import EmulatorState


class GraphAuthError(Exception):
    """A bearer token Graph must refuse (401 InvalidAuthenticationToken)."""

    def __init__(
        self, message: str, *, status: int = 401, code: str = "InvalidAuthenticationToken"
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling Graph, from a verified access token."""

    app: AppRegistration
    user: User | None  # None for app-only tokens
    scopes: frozenset[str]  # delegated `scp` (short names)
    roles: frozenset[str]  # app-only `roles`
    claims: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def app_only(self) -> bool:
        return self.user is None


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def _base_claims(state: EmulatorState, app: AppRegistration, lifetime_s: int) -> dict[str, Any]:
    now = state.now()
    iat = _epoch(now)
    tid = state.tenant.id
    return {
        "aud": GRAPH_AUDIENCE,
        "iss": f"https://sts.windows.net/{tid}/",
        "iat": iat,
        "nbf": iat,
        "exp": iat + lifetime_s,
        "app_displayname": app.display_name,
        "appid": app.client_id,
        "tid": tid,
        "uti": b64url(uuid.uuid4().bytes),
        "ver": "1.0",
    }


def access_token_for_user(
    state: EmulatorState, app: AppRegistration, user: User, scopes: frozenset[str], acr: str
) -> tuple[str, int]:
    """A delegated Graph access token and its lifetime in seconds."""
    lifetime = int(state.identity.settings.access_token_lifetime.total_seconds())
    claims = _base_claims(state, app, lifetime)
    claims.update(
        appidacr=acr,
        idtyp="user",
        name=user.display_name,
        oid=user.id,
        scp=" ".join(sorted(scopes)) if scopes else "openid profile email",
        sub=b64url(uuid.uuid5(uuid.NAMESPACE_URL, f"{app.client_id}/{user.id}").bytes),
        unique_name=user.upn,
        upn=user.upn,
    )
    return state.signing_key.sign(claims), lifetime


def access_token_for_app(
    state: EmulatorState, app: AppRegistration, roles: frozenset[str], acr: str
) -> tuple[str, int]:
    """An app-only Graph access token (client credentials) and its lifetime."""
    lifetime = int(state.identity.settings.access_token_lifetime.total_seconds())
    claims = _base_claims(state, app, lifetime)
    # The service principal's object id; stable per app.
    sp_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"sp/{app.client_id}"))
    claims.update(appidacr=acr, idtyp="app", oid=sp_id, sub=sp_id)
    if roles:  # without granted permissions Entra issues a token with no roles claim
        claims["roles"] = sorted(roles)
    return state.signing_key.sign(claims), lifetime


def id_token(
    state: EmulatorState,
    app: AppRegistration,
    user: User,
    *,
    nonce: str | None,
    auth_time: datetime,
    issuer: str,
) -> str:
    now = _epoch(state.now())
    claims: dict[str, Any] = {
        "aud": app.client_id,
        "iss": issuer,
        "iat": now,
        "nbf": now,
        "exp": now + int(state.identity.settings.id_token_lifetime.total_seconds()),
        "auth_time": _epoch(auth_time),
        "name": user.display_name,
        "oid": user.id,
        "preferred_username": user.upn,
        "email": user.mail,
        "sub": b64url(uuid.uuid5(uuid.NAMESPACE_URL, f"{app.client_id}/{user.id}").bytes),
        "tid": state.tenant.id,
        "uti": b64url(uuid.uuid4().bytes),
        "ver": "2.0",
    }
    if nonce is not None:
        claims["nonce"] = nonce
    return state.signing_key.sign(claims)


def client_info(state: EmulatorState, user: User) -> str:
    """base64url JSON {uid, utid}: MSAL builds home_account_id from it."""
    payload = json.dumps({"uid": user.id, "utid": state.tenant.id}, separators=(",", ":"))
    return b64url(payload.encode())


_CACHE_SIZE = 2048


def _decode(state: EmulatorState, token: str) -> dict[str, Any]:
    """Signature and audience check, memoised: the same token is presented many times and
    RSA verification would otherwise dominate the cost of a Graph call."""
    cache = state.identity.verified_tokens
    claims = cache.get(token)
    if claims is not None:
        return claims
    try:
        claims = jwt.decode(
            token,
            state.signing_key.private_key.public_key(),
            algorithms=["RS256"],
            audience=list(GRAPH_RESOURCES),
            options={"verify_exp": False, "verify_nbf": False, "verify_iat": False},
        )
    except jwt.InvalidAudienceError:
        raise GraphAuthError("Access token validation failure. Invalid audience.") from None
    except jwt.InvalidTokenError:
        raise GraphAuthError("Access token validation failure.") from None
    if len(cache) >= _CACHE_SIZE:
        cache.clear()
    cache[token] = claims
    return claims


def verify_access_token(state: EmulatorState, authorization_header: str | None) -> Caller:
    """Check a Graph `Authorization` header; raise GraphAuthError(401) if it is not acceptable.

    Checks the RS256 signature against the emulator key, the audience (Graph's URL or app id),
    the tenant, nbf/exp against the emulator clock (5 minutes skew, as Graph allows), and that
    the app (and user, for delegated tokens) still exists and, for users, is enabled."""
    if not authorization_header or not authorization_header.strip():
        raise GraphAuthError("Access token is empty.")
    scheme, _, token = authorization_header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise GraphAuthError("Access token is empty.")
    if token.count(".") != 2:
        raise GraphAuthError("IDX14100: JWT is not well formed, there are no dots (.).")
    claims = dict(_decode(state, token))  # a copy: callers may keep or change it
    now = _epoch(state.now())
    skew = int(state.identity.settings.clock_skew.total_seconds())
    if int(claims.get("exp", 0)) + skew <= now:
        raise GraphAuthError("Lifetime validation failed, the token is expired.")
    if int(claims.get("nbf", 0)) - skew > now:
        raise GraphAuthError("Lifetime validation failed, the token is not yet valid.")
    if claims.get("tid") != state.tenant.id:
        raise GraphAuthError("Access token validation failure. Invalid issuer.")
    app = state.tenant.app_by(str(claims.get("appid", "")))
    if app is None:
        raise GraphAuthError("Access token validation failure. Unknown application.")
    scopes = frozenset(str(claims.get("scp", "")).split())
    roles = frozenset(str(r) for r in claims.get("roles", []))
    if claims.get("idtyp") == "app":
        return Caller(app, None, frozenset(), roles, claims)
    user = state.tenant.user_by(str(claims.get("oid", "")))
    if user is None or not user.enabled:
        raise GraphAuthError("Access token validation failure. The user is not found or disabled.")
    return Caller(app, user, scopes, frozenset(), claims)
