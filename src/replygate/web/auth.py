"""Who is asking: a signed-in browser session or an API token, and what they may do.

Sessions live in a signed cookie (itsdangerous, through Starlette's ``SessionMiddleware``):
``Secure``, ``HttpOnly``, ``SameSite=Lax``, holding only the user id, when the session
began, a fingerprint of the password hash and the CSRF token. The user is read from the
database on every request, so disabling a user or changing their role takes effect at
once, and a password change ends every session signed in with the old password.

Routes declare what they need with a dependency::

    @router.get("/settings")
    def settings_page(who: Annotated[Principal, Depends(require_role(Role.ADMIN))]): ...

    @router.post("/api/v1/approvals")
    def create(who: Annotated[Principal, Depends(require_scope(Scope.APPROVALS_WRITE))]): ...
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from replygate.services import accounts
from replygate.services.account_ports import ApiToken, Role, Scope, User
from replygate.web.csrf import rotate_csrf_token
from replygate.web.errors import SignInRequired

if TYPE_CHECKING:
    from replygate.bootstrap import Container

# Declares the API's bearer tokens in the OpenAPI document; checking is done below.
bearer_scheme = HTTPBearer(
    auto_error=False, scheme_name="apiToken", description="An API token: `rgt_...`"
)
SESSION_COOKIE = "__Host-replygate"  # __Host-: only over https, only for this exact host
SESSION_LIFETIME = timedelta(hours=12)
_UNRESOLVED = object()


@dataclass(frozen=True, slots=True)
class Principal:
    user: User
    scopes: frozenset[Scope]
    token: ApiToken | None = None  # set when the request came with an API token

    @property
    def role(self) -> Role:
        return self.user.role

    @property
    def name(self) -> str:
        return self.user.username


def session_secret(container: Container) -> str:
    """The cookie-signing key, derived from the secret key (rotating that ends sessions)."""
    return hmac.new(container.secrets.key, b"replygate:web-session", hashlib.sha256).hexdigest()


def _fingerprint(user: User, container: Container) -> str:
    material = b"session:" + (user.password_hash or "").encode("utf-8")
    return hmac.new(container.secrets.key, material, hashlib.sha256).hexdigest()[:24]


def sign_in(request: Request, user: User) -> None:
    """Start a fresh session (a new CSRF token too, so nothing from before sign-in carries)."""
    container: Container = request.state.container
    request.session.clear()
    request.session.update(
        uid=user.id,
        ver=_fingerprint(user, container),
        at=int(container.clock.now().timestamp()),
    )
    rotate_csrf_token(request)
    request.state.principal = Principal(user, accounts.effective_scopes(user, None))


def sign_out(request: Request) -> None:
    request.session.clear()
    rotate_csrf_token(request)
    request.state.principal = None


def _from_session(request: Request, container: Container) -> Principal | None:
    session = request.session
    user_id, began = session.get("uid"), session.get("at")
    if not isinstance(user_id, int) or not isinstance(began, int):
        return None
    age = container.clock.now().timestamp() - began
    user = accounts.get_user(container.uow(), user_id)
    if (
        age > SESSION_LIFETIME.total_seconds()
        or user is None
        or user.disabled
        or not hmac.compare_digest(str(session.get("ver", "")), _fingerprint(user, container))
    ):
        sign_out(request)
        return None
    return Principal(user, accounts.effective_scopes(user, None))


def _from_token(authorization: str, container: Container) -> Principal:
    scheme, _, secret = authorization.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise SignInRequired(
            "the Authorization header must be `Bearer <API token>`",
            fix="create an API token in the console and send it as a Bearer token",
        )
    user, token = accounts.verify_api_token(container.uow(), container.clock, secret.strip())
    return Principal(user, accounts.effective_scopes(user, token), token)


def current_principal(request: Request) -> Principal | None:
    """The caller, or None when anonymous; resolved once per request."""
    cached = getattr(request.state, "principal", _UNRESOLVED)
    if cached is None or isinstance(cached, Principal):
        return cached
    container: Container = request.state.container
    authorization = request.headers.get("authorization")
    if authorization is not None:
        principal: Principal | None = _from_token(authorization, container)
    else:
        principal = _from_session(request, container)
    request.state.principal = principal
    return principal


def require_role(minimum: Role) -> Callable[[Request], Principal]:
    """A dependency: a signed-in user whose role is ``minimum`` or above (admin > requester
    > viewer); anonymous callers are sent to sign in, others get 403."""

    def dependency(request: Request) -> Principal:
        principal = current_principal(request)
        if principal is None:
            raise SignInRequired("sign in to continue")
        if not principal.role.includes(minimum):
            raise accounts.PermissionDenied(
                f"this needs the {minimum.value} role; {principal.name} is {principal.role.value}",
                fix="ask an administrator for the role",
            )
        return principal

    dependency.__name__ = f"require_role_{minimum.value}"
    return dependency


def require_scope(scope: Scope) -> Callable[..., Principal]:
    """A dependency for the API: a token carrying ``scope`` (or a session whose role has it)."""

    def dependency(
        request: Request,
        _: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)] = None,
    ) -> Principal:
        principal = current_principal(request)
        if principal is None:
            raise SignInRequired("this needs an API token", fix="send `Authorization: Bearer ...`")
        if scope not in principal.scopes:
            raise accounts.PermissionDenied(
                f"this needs the {scope.value} scope, which "
                + ("this token lacks" if principal.token else f"a {principal.role.value} lacks")
            )
        return principal

    dependency.__name__ = f"require_scope_{scope.value.replace(':', '_')}"
    return dependency


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"
