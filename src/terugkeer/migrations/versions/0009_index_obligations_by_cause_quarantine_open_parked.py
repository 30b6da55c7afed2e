"""index obligations by their cause event, the open quarantine by what it waits for, alerts by kind

The ingest path reads both by key (issue 12: a batch touches only its own rows, however much
history is stored): the burst brake finds the obligations a burst of releases caused (and the
operator's decision on the burst the ones it holds) by ``cause_event_id``, and every batch asks
whether any open quarantine row is parked (``status = 'open' AND waits_for IS NOT NULL``) and
which ones wait for what it applied, where ``ix_quarantine_status`` alone walks every open row;
and every batch looks for burst alerts by kind (and key), which ``ix_alerts_status_kind`` cannot
find without walking every alert.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("obligations", schema=None) as batch_op:
        batch_op.create_index("ix_obligations_cause_event_id", ["cause_event_id"], unique=False)
    with op.batch_alter_table("quarantine", schema=None) as batch_op:
        batch_op.create_index(
            "ix_quarantine_status_waits_for", ["status", "waits_for"], unique=False
        )
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.create_index("ix_alerts_kind_key", ["kind", "key"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_index("ix_alerts_kind_key")
    with op.batch_alter_table("quarantine", schema=None) as batch_op:
        batch_op.drop_index("ix_quarantine_status_waits_for")
    with op.batch_alter_table("obligations", schema=None) as batch_op:
        batch_op.drop_index("ix_obligations_cause_event_id")
