"""index the quarantine by event id: a correction finds a parked event it withdraws

An event that does not fit its period (a wrong intake arriving after the right one) is
parked, waiting for its period. A correction that withdraws it and names no period cannot
find it by what it waits for; by its event id it can (``detention/parking.py``,
``parked_events``), through this index instead of every open or parked message.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("quarantine", schema=None) as batch_op:
        batch_op.create_index("ix_quarantine_event_id", ["event_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("quarantine", schema=None) as batch_op:
        batch_op.drop_index("ix_quarantine_event_id")
