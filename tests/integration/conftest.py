"""Storage for the integration tests: a migrated database (SQLite or PostgreSQL, per the
parametrised ``database_url``) and units of work on it."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import Engine

from replygate.db import migrate
from replygate.db.engine import make_engine
from replygate.db.uow import SqlAlchemyUnitOfWork, session_factory
from tests.conftest import FixedClock


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
