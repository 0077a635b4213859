"""send pace: sending slots per mailbox shared by every replica

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "send_pace",
        sa.Column("mailbox", sa.String(length=320), nullable=False),
        sa.PrimaryKeyConstraint("mailbox", name=op.f("pk_send_pace")),
    )
    op.create_table(
        "send_slots",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("mailbox", sa.String(length=320), nullable=False),
        sa.Column("taken_at", WHEN, nullable=False),
        sa.Column("frees_at", WHEN, nullable=False),
        sa.Column("holder", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_send_slots")),
    )
    with op.batch_alter_table("send_slots", schema=None) as batch_op:
        batch_op.create_index("ix_send_slots_pace", ["mailbox", "frees_at"])


def downgrade() -> None:
    with op.batch_alter_table("send_slots", schema=None) as batch_op:
        batch_op.drop_index("ix_send_slots_pace")
    op.drop_table("send_slots")
    op.drop_table("send_pace")
