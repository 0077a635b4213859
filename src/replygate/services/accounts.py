"""Use cases for local accounts and API tokens; each owns its unit of work's commit.

Passwords are hashed with argon2id. Sign-in answers the same way, in about the same time,
for an unknown user, a disabled user and a wrong password, so it does not reveal which
usernames exist. API tokens are random ``rgt_...`` secrets shown once; only their SHA-256
is stored (a hash of 256 random bits needs no salt or slow hash).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from replygate.errors import Conflict, InvalidInput, NotFound, UserError
from replygate.services.account_ports import (
    SCOPES_BY_ROLE,
    AccountsUnitOfWork,
    ApiToken,
    Role,
    Scope,
    User,
)
from replygate.services.ports import Clock

TOKEN_PREFIX = "rgt_"  # noqa: S105 - a prefix, not a secret
MIN_PASSWORD = 10
MAX_PASSWORD = 1024  # argon2 hashes any length; a cap keeps a huge form from costing CPU
TOUCH_EVERY = timedelta(minutes=1)  # last_used_at is advisory: no write on every API call
_USERNAME = re.compile(r"[a-z0-9][a-z0-9._@+-]{0,199}")
_hasher = PasswordHasher()


class InvalidCredentials(UserError):
    """A username/password pair or an API token was not accepted (never says which part)."""


class PermissionDenied(UserError):
    """The signed-in user's role does not allow this."""


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: ApiToken
    secret: str  # shown once to whoever created it, never stored


def normalise_username(username: str) -> str:
    name = username.strip().lower()
    if not _USERNAME.fullmatch(name):
        raise InvalidInput(
            f"the username {username!r} is not valid",
            fix="use 1 to 200 letters, digits and . _ @ + - (starting with a letter or digit)",
        )
    return name


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(f"the password is too short: use at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise InvalidInput(f"the password is too long: use at most {MAX_PASSWORD} characters")


def _check_email(email: str | None) -> str | None:
    if not email:
        return None
    from email_validator import EmailNotValidError, validate_email

    try:
        # test_environment allows .test domains, as approver addresses do (requesting.py).
        checked = validate_email(email, check_deliverability=False, test_environment=True)
        return checked.normalized
    except EmailNotValidError as error:
        raise InvalidInput(f"the email address {email!r} is not valid: {error}") from None


@cache
def _dummy_hash() -> str:
    # Verified against when the user does not exist, so both paths cost one argon2 run.
    return _hasher.hash(secrets.token_hex(16))


def create_user(
    uow: AccountsUnitOfWork,
    *,
    username: str,
    password: str,
    role: Role,
    email: str | None = None,
    actor: str,
) -> User:
    name = normalise_username(username)
    check_password(password)
    address = _check_email(email)
    with uow:
        if uow.users.by_username(name) is not None:
            raise Conflict(f"a user named {name!r} exists already")
        user = uow.users.add(
            username=name, role=role, email=address, password_hash=_hasher.hash(password)
        )
        uow.audit.record(actor, "user.create", name, {"role": role.value})
        uow.commit()
    return user


def authenticate(
    uow: AccountsUnitOfWork, *, username: str, password: str, address: str = ""
) -> User:
    """The active user with this username and password, or ``InvalidCredentials``.

    A success is audited (``auth.sign_in``, method ``password``, from ``address``)."""
    refused = InvalidCredentials("the username or password is not right")
    try:
        name = normalise_username(username)
    except InvalidInput:
        name = ""
    with uow:
        user = uow.users.by_username(name) if name else None
        stored = user.password_hash if user is not None else None
        if not _verify(stored or _dummy_hash(), password[:MAX_PASSWORD]):
            raise refused
        if user is None or stored is None or user.disabled:
            raise refused
        if _hasher.check_needs_rehash(stored):
            uow.users.set_password_hash(user.id, _hasher.hash(password))
        details = {"method": "password", **({"address": address} if address else {})}
        uow.audit.record(user.username, "auth.sign_in", user.username, details)
        uow.commit()
    return user


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def get_user(uow: AccountsUnitOfWork, user_id: int) -> User | None:
    with uow:
        return uow.users.get(user_id)


def list_users(uow: AccountsUnitOfWork) -> Sequence[User]:
    with uow:
        return uow.users.list()


def _existing(uow: AccountsUnitOfWork, username: str) -> User:
    user = uow.users.by_username(normalise_username(username))
    if user is None:
        raise NotFound(f"there is no user named {username!r}", fix="see `replygate users list`")
    return user


def set_password(uow: AccountsUnitOfWork, *, username: str, password: str, actor: str) -> None:
    """An administrator's reset: no current password needed."""
    check_password(password)
    with uow:
        user = _existing(uow, username)
        uow.users.set_password_hash(user.id, _hasher.hash(password))
        uow.audit.record(actor, "user.set_password", user.username)
        uow.commit()


def change_password(
    uow: AccountsUnitOfWork, *, user_id: int, current_password: str, new_password: str
) -> None:
    """A user changing their own password proves they know the current one."""
    check_password(new_password)
    with uow:
        user = uow.users.get(user_id)
        if user is None or not _verify(user.password_hash or _dummy_hash(), current_password):
            raise InvalidCredentials("the current password is not right")
        uow.users.set_password_hash(user.id, _hasher.hash(new_password))
        uow.audit.record(user.username, "user.change_password", user.username)
        uow.commit()


def set_disabled(uow: AccountsUnitOfWork, *, username: str, disabled: bool, actor: str) -> User:
    with uow:
        user = _existing(uow, username)
        uow.users.set_disabled(user.id, disabled)
        uow.audit.record(actor, "user.disable" if disabled else "user.enable", user.username)
        uow.commit()
        return uow.users.get(user.id) or user


def hash_token(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def parse_scopes(values: Iterable[str]) -> frozenset[Scope]:
    try:
        return frozenset(Scope(value) for value in values)
    except ValueError:
        known = ", ".join(scope.value for scope in Scope)
        raise InvalidInput(f"unknown scope in {sorted(values)}", fix=f"use {known}") from None


def create_api_token(
    uow: AccountsUnitOfWork,
    clock: Clock,
    *,
    user_id: int,
    name: str,
    scopes: frozenset[Scope],
    expires_in: timedelta | None,
) -> IssuedToken:
    label = name.strip()
    if not label or len(label) > 200:
        raise InvalidInput("give the token a name of 1 to 200 characters")
    if not scopes:
        raise InvalidInput("give the token at least one scope")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with uow:
        user = uow.users.get(user_id)
        if user is None or user.disabled:
            raise NotFound("that user does not exist or is disabled")
        beyond = scopes - SCOPES_BY_ROLE[user.role]
        if beyond:
            raise PermissionDenied(
                f"a {user.role.value} cannot hold {', '.join(sorted(beyond))} on a token"
            )
        expires_at = clock.now() + expires_in if expires_in is not None else None
        token = uow.api_tokens.add(
            user_id=user.id,
            name=label,
            token_hash=hash_token(secret),
            scopes=scopes,
            expires_at=expires_at,
        )
        uow.audit.record(user.username, "api_token.create", f"token:{token.id}", {"name": label})
        uow.commit()
    return IssuedToken(token=token, secret=secret)


def revoke_api_token(uow: AccountsUnitOfWork, clock: Clock, *, token_id: int, by: User) -> None:
    """Owners revoke their own tokens; admins revoke anyone's."""
    with uow:
        token = uow.api_tokens.get(token_id)
        if token is None or (token.user_id != by.id and by.role is not Role.ADMIN):
            raise NotFound(f"there is no API token {token_id} of yours")
        if token.revoked_at is None:
            uow.api_tokens.revoke(token.id, clock.now())
            uow.audit.record(by.username, "api_token.revoke", f"token:{token.id}")
            uow.commit()


def list_api_tokens(uow: AccountsUnitOfWork, *, user_id: int) -> Sequence[ApiToken]:
    with uow:
        return uow.api_tokens.for_user(user_id)


def verify_api_token(uow: AccountsUnitOfWork, clock: Clock, secret: str) -> tuple[User, ApiToken]:
    refused = InvalidCredentials(
        "the API token is not valid: unknown, expired or revoked",
        fix="create a new token in the console under API tokens",
    )
    if not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
        raise refused
    now = clock.now()
    with uow:
        token = uow.api_tokens.by_hash(hash_token(secret))
        if token is None or not token.usable_at(now):
            raise refused
        user = uow.users.get(token.user_id)
        if user is None or user.disabled:
            raise refused
        if token.last_used_at is None or now - token.last_used_at >= TOUCH_EVERY:
            uow.api_tokens.touch(token.id, now)
            uow.commit()
    # A token never does more than its owner's current role allows.
    return user, token


def effective_scopes(user: User, token: ApiToken | None) -> frozenset[Scope]:
    allowed = SCOPES_BY_ROLE[user.role]
    return allowed if token is None else allowed & token.scopes
