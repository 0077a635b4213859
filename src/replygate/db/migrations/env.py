"""Alembic environment: runs on the connection ``replygate.db.migrate`` hands it."""

from __future__ import annotations

from alembic import context

from replygate.db import tables  # noqa: F401 - registers every table on the metadata
from replygate.db.base import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=True,  # SQLite cannot ALTER most things; batch mode copies the table
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
