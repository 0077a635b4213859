"""Migrations: empty to head on both databases, down and up again, and no drift."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from replygate.db import migrate
from replygate.db.base import Base
from replygate.db.engine import make_engine


def test_upgrade_from_empty_to_head_then_down_and_up(database_url: str) -> None:
    engine = make_engine(database_url)
    assert migrate.current_revision(engine) is None
    migrate.upgrade(engine)
    assert migrate.current_revision(engine) == migrate.head_revision(engine)
    tables = set(inspect(engine).get_table_names())
    assert set(Base.metadata.tables) <= tables
    migrate.downgrade(engine, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    migrate.upgrade(engine)
    assert migrate.current_revision(engine) == migrate.head_revision(engine)
    engine.dispose()


def test_models_and_migrations_do_not_drift(database_url: str) -> None:
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
    engine.dispose()
    assert differences == [], f"tables differ from migrations; add a migration: {differences}"
