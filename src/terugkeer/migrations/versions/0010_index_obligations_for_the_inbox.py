"""index obligations for the inbox: an organisation's notices newest first, with their status

The portal inbox (``GET /api/v1/meldingen``, the mayor's page) shows a page of an
organisation's notices newest first, or those awaiting acknowledgement first, with their count.
``ix_obligations_recipient`` finds the organisation's notices but not in order: every request
sorted all of them (20,000 for a large municipality among a million notices) and read each
row's status from the table. This index holds them in delivery order with their status, so a
page is read in order and the counts come from the index alone (bench/portal.py).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ["recipient_kind", "recipient_ref", "delivered_at", "id", "status"]


def upgrade() -> None:
    with op.batch_alter_table("obligations", schema=None) as batch_op:
        batch_op.create_index("ix_obligations_inbox", COLUMNS, unique=False)


def downgrade() -> None:
    with op.batch_alter_table("obligations", schema=None) as batch_op:
        batch_op.drop_index("ix_obligations_inbox")
