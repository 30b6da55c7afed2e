"""index the audit log by actor and by time: the auditor's search

The auditor's search (``/portaal/audit``, ``security.audit.search_entries``) finds entries by
actor, by record and by period, newest first, with their number. Only the record had an
index: a search by actor or by period read the whole log, which grows by a row for every
notice shown in the portal. On a log of 1.65 million entries (bench/portal.py's store after
its runs) a search by actor took 260-290 ms, and every year adds to it. ``ix_audit_log_actor``
(actor, id) gives an actor's entries newest first; ``ix_audit_log_at`` gives a period: a
block range (BRIN) index on PostgreSQL, a few pages for millions of entries appended in time
order, so that the portal's appends hardly pay for it; a B-tree on SQLite, which has no BRIN.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index("ix_audit_log_actor", ["actor", "id"], unique=False)
        batch_op.create_index("ix_audit_log_at", ["at"], unique=False, postgresql_using="brin")


def downgrade() -> None:
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_log_at")
        batch_op.drop_index("ix_audit_log_actor")
