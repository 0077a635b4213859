"""Repositories of local users and API tokens; they map rows to values and never commit."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from replygate.db.tables import ApiTokenRow, UserRow
from replygate.services.account_ports import ApiToken, Role, Scope, User
from replygate.services.ports import Clock


class SqlUserRepository:
    def __init__(self, session: Session, clock: Clock) -> None:
        self._session = session
        self._clock = clock

    def add(
        self, *, username: str, role: Role, email: str | None, password_hash: str | None
    ) -> User:
        row = UserRow(
            username=username,
            role=role.value,
            email=email,
            password_hash=password_hash,
            disabled=False,
            created_at=self._clock.now(),
        )
        self._session.add(row)
        self._session.flush()
        return _user(row)

    def get(self, user_id: int) -> User | None:
        row = self._session.get(UserRow, user_id)
        return None if row is None else _user(row)

    def by_username(self, username: str) -> User | None:
        row = self._session.scalar(select(UserRow).where(UserRow.username == username))
        return None if row is None else _user(row)

    def list(self) -> Sequence[User]:
        return [_user(row) for row in self._session.scalars(select(UserRow).order_by(UserRow.id))]

    def set_password_hash(self, user_id: int, password_hash: str) -> None:
        self._session.execute(
            update(UserRow).where(UserRow.id == user_id).values(password_hash=password_hash)
        )

    def set_disabled(self, user_id: int, disabled: bool) -> None:
        self._session.execute(
            update(UserRow).where(UserRow.id == user_id).values(disabled=disabled)
        )


def _user(row: UserRow) -> User:
    return User(
        id=row.id,
        username=row.username,
        role=Role(row.role),
        email=row.email,
        disabled=row.disabled,
        created_at=row.created_at,
        password_hash=row.password_hash,
    )


class SqlApiTokenRepository:
    def __init__(self, session: Session, clock: Clock) -> None:
        self._session = session
        self._clock = clock

    def add(
        self,
        *,
        user_id: int,
        name: str,
        token_hash: str,
        scopes: frozenset[Scope],
        expires_at: datetime | None,
    ) -> ApiToken:
        row = ApiTokenRow(
            user_id=user_id,
            name=name,
            token_hash=token_hash,
            scopes=sorted(scope.value for scope in scopes),
            created_at=self._clock.now(),
            expires_at=expires_at,
        )
        self._session.add(row)
        self._session.flush()
        return _token(row)

    def get(self, token_id: int) -> ApiToken | None:
        row = self._session.get(ApiTokenRow, token_id)
        return None if row is None else _token(row)

    def by_hash(self, token_hash: str) -> ApiToken | None:
        row = self._session.scalar(select(ApiTokenRow).where(ApiTokenRow.token_hash == token_hash))
        return None if row is None else _token(row)

    def for_user(self, user_id: int) -> Sequence[ApiToken]:
        query = select(ApiTokenRow).where(ApiTokenRow.user_id == user_id).order_by(ApiTokenRow.id)
        return [_token(row) for row in self._session.scalars(query)]

    def revoke(self, token_id: int, at: datetime) -> None:
        self._session.execute(
            update(ApiTokenRow).where(ApiTokenRow.id == token_id).values(revoked_at=at)
        )

    def touch(self, token_id: int, at: datetime) -> None:
        self._session.execute(
            update(ApiTokenRow).where(ApiTokenRow.id == token_id).values(last_used_at=at)
        )


def _token(row: ApiTokenRow) -> ApiToken:
    return ApiToken(
        id=row.id,
        user_id=row.user_id,
        name=row.name,
        # Scopes that a later version dropped are ignored rather than failing the token.
        scopes=frozenset(Scope(s) for s in row.scopes if s in Scope._value2member_map_),
        created_at=row.created_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        last_used_at=row.last_used_at,
    )
