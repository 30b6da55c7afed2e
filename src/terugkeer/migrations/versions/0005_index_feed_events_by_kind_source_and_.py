"""index feed events by kind, source and time

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("feed_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_feed_events_kind_source_occurred_at",
            ["kind", "source", "occurred_at"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("feed_events", schema=None) as batch_op:
        batch_op.drop_index("ix_feed_events_kind_source_occurred_at")
