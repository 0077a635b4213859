"""The API on each database, in-process, with users and tokens of each role."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from replygate.bootstrap import Container
from replygate.services import accounts
from replygate.services.account_ports import Role, Scope

PASSWORD = "correct horse battery staple"


@pytest.fixture
def app_settings() -> dict[str, Any]:
    return {"instance": "test"}


@dataclass(frozen=True)
class Caller:
    username: str
    headers: dict[str, str]


def make_caller(
    container: Container, username: str, role: Role, scopes: set[Scope] | None = None
) -> Caller:
    user = accounts.create_user(
        container.uow(),
        username=username,
        password=PASSWORD,
        role=role,
        email=f"{username}@contoso.test",
        actor="test",
    )
    issued = accounts.create_api_token(
        container.uow(),
        container.clock,
        user_id=user.id,
        name="ci",
        scopes=frozenset(scopes or accounts.SCOPES_BY_ROLE[role]),
        expires_in=timedelta(days=1),
    )
    return Caller(username, {"Authorization": f"Bearer {issued.secret}"})


@pytest.fixture
def requester(container: Container) -> Caller:
    return make_caller(container, "pipeline", Role.REQUESTER)


@pytest.fixture
def admin(container: Container) -> Caller:
    return make_caller(container, "root", Role.ADMIN)


@pytest.fixture
def viewer(container: Container) -> Caller:
    return make_caller(container, "vic", Role.VIEWER)


def new_request(**overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "title": "Deploy shop 1.4.2 to production",
        "approvers": ["ann@contoso.test", "bob@contoso.test"],
        "metadata": {"environment": "production", "version": "1.4.2"},
    }
    body.update(overrides)
    return body
