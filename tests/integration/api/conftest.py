"""The API on each database, in-process, with users and tokens of each role."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI

from replygate.bootstrap import Container, build
from replygate.config import load_settings
from replygate.db import migrate
from replygate.services import accounts
from replygate.services.account_ports import Role, Scope
from replygate.web.app import create_app
from tests.conftest import FixedClock
from tests.integration.web.conftest import BASE_URL, TestClient

PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True)
def quick_password_hashes(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(accounts, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024))
    accounts._dummy_hash.cache_clear()
    yield
    accounts._dummy_hash.cache_clear()


@pytest.fixture
def container(database_url: str, tmp_path: Path, clock: FixedClock) -> Iterator[Container]:
    settings = load_settings(data_dir=tmp_path, database_url=database_url, instance="test")
    container = build(settings, clock=clock)
    migrate.upgrade(container.engine)
    yield container
    container.engine.dispose()


@pytest.fixture
def app(container: Container) -> FastAPI:
    return create_app(container, workers=False)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, base_url=BASE_URL, raise_server_exceptions=False) as client:
        yield client


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
