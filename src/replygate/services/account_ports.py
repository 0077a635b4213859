"""Local accounts and API tokens: the values use cases see and the ports they store through."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from replygate.services.ports import AuditLog, Transaction


class Role(StrEnum):
    """Ordered from least to most: each role can do everything the ones before it can."""

    VIEWER = "viewer"
    REQUESTER = "requester"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return list(Role).index(self)

    def includes(self, other: Role) -> bool:
        return self.rank >= other.rank


class Scope(StrEnum):
    """What an API token may do; a token never does more than its owner's role allows."""

    APPROVALS_READ = "approvals:read"
    APPROVALS_WRITE = "approvals:write"
    SETTINGS_READ = "settings:read"
    SETTINGS_WRITE = "settings:write"


SCOPES_BY_ROLE: dict[Role, frozenset[Scope]] = {
    Role.VIEWER: frozenset({Scope.APPROVALS_READ}),
    Role.REQUESTER: frozenset({Scope.APPROVALS_READ, Scope.APPROVALS_WRITE}),
    Role.ADMIN: frozenset(Scope),
}


@dataclass(frozen=True, slots=True)
class User:
    id: int
    username: str
    role: Role
    email: str | None
    disabled: bool
    created_at: datetime
    # The argon2 hash; never shown (repr=False) and never leaves the accounts use cases.
    password_hash: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class ApiToken:
    id: int
    user_id: int
    name: str
    scopes: frozenset[Scope]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None

    def usable_at(self, now: datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


class UserRepository(Protocol):
    def add(
        self, *, username: str, role: Role, email: str | None, password_hash: str | None
    ) -> User: ...

    def get(self, user_id: int) -> User | None: ...

    def by_username(self, username: str) -> User | None: ...

    def list(self) -> Sequence[User]: ...

    def set_password_hash(self, user_id: int, password_hash: str) -> None: ...

    def set_disabled(self, user_id: int, disabled: bool) -> None: ...


class ApiTokenRepository(Protocol):
    def add(
        self,
        *,
        user_id: int,
        name: str,
        token_hash: str,
        scopes: frozenset[Scope],
        expires_at: datetime | None,
    ) -> ApiToken: ...

    def get(self, token_id: int) -> ApiToken | None: ...

    def by_hash(self, token_hash: str) -> ApiToken | None: ...

    def for_user(self, user_id: int) -> Sequence[ApiToken]: ...

    def revoke(self, token_id: int, at: datetime) -> None: ...

    def touch(self, token_id: int, at: datetime) -> None: ...


class AccountsUnitOfWork(Transaction, Protocol):
    # Read-only members, so that a unit of work with concrete repositories matches.
    @property
    def users(self) -> UserRepository: ...

    @property
    def api_tokens(self) -> ApiTokenRepository: ...

    @property
    def audit(self) -> AuditLog: ...
