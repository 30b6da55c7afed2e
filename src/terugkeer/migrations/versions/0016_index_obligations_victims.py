"""index every victim's notices in delivery order: the IDV's inbox

The IDV's inbox holds its own notices and those for every victim, whoever the victim. The
victims' notices are spread over ``ix_obligations_inbox`` by victim, so no index gave them in
delivery order: each page of the IDV's inbox read and sorted all of them, 200 ms for the
300,000 notices of bench/portal.py's store, more every year. This partial index holds only
the victims' notices, in delivery order; the inbox reads the IDV's own notices and the
victims' each in its index's order, as far as the page reaches, and merges them
(notify/delivery/inbox.py, ``_page``).

``ix_obligations_recipient`` (recipient kind and reference) goes: ``ix_obligations_inbox``
begins with the same two columns and serves every query it served, and SQLite, which keeps
no statistics, chose it for the victims' notices and sorted them all.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

VICTIMS = "recipient_kind = 'victim'"


def upgrade() -> None:
    with op.batch_alter_table("obligations", schema=None) as batch_op:
        batch_op.drop_index("ix_obligations_recipient")
        batch_op.create_index(
            "ix_obligations_victims",
            ["delivered_at", "id", "status"],
            unique=False,
            sqlite_where=sa.text(VICTIMS),
            postgresql_where=sa.text(VICTIMS),
        )


def downgrade() -> None:
    with op.batch_alter_table("obligations", schema=None) as batch_op:
        batch_op.drop_index("ix_obligations_victims")
        batch_op.create_index(
            "ix_obligations_recipient", ["recipient_kind", "recipient_ref"], unique=False
        )
