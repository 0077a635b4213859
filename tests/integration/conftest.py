"""Shared by the integration tests: a migrated database (SQLite or PostgreSQL, per the
parametrised ``database_url``), units of work on it, and the web app driven in-process.

The web fixtures: ``container`` (settings from ``app_settings``, which a conftest below
overrides), ``app``, ``client``; and cheap argon2 parameters for every test here."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from sqlalchemy import Engine

from replygate.bootstrap import Container, build
from replygate.config import load_settings
from replygate.db import migrate
from replygate.db.engine import make_engine
from replygate.db.uow import SqlAlchemyUnitOfWork, session_factory
from replygate.services import accounts
from replygate.web.app import create_app
from tests.conftest import FixedClock
from tests.support.webapp import BASE_URL, TestClient


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def make_uow(engine: Engine, clock: FixedClock) -> Callable[[], SqlAlchemyUnitOfWork]:
    factory = session_factory(engine)
    return lambda: SqlAlchemyUnitOfWork(factory, clock)


@pytest.fixture(autouse=True)
def quick_password_hashes(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """argon2's production cost (64 MiB, 3 passes) makes each hash ~0.4 s here; the
    algorithm is the same with cheap parameters. The e2e tests run the real cost."""
    monkeypatch.setattr(accounts, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024))
    accounts._dummy_hash.cache_clear()
    yield
    accounts._dummy_hash.cache_clear()


@pytest.fixture
def app_settings() -> dict[str, Any]:
    """Settings beyond the data directory and the database; a conftest overrides it."""
    return {}


@pytest.fixture
def container(
    database_url: str, tmp_path: Path, clock: FixedClock, app_settings: dict[str, Any]
) -> Iterator[Container]:
    settings = load_settings(data_dir=tmp_path, database_url=database_url, **app_settings)
    made = build(settings, clock=clock)
    migrate.upgrade(made.engine)
    yield made
    made.engine.dispose()


@pytest.fixture
def app(container: Container) -> FastAPI:
    return create_app(container, workers=False)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, base_url=BASE_URL, raise_server_exceptions=False) as made:
        yield made
