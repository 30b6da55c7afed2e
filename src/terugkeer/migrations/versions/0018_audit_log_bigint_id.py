"""64-bit ids for the audit log on PostgreSQL

The portal writes a row to the audit log for every notice it shows, 25 a page. A
municipality's system that polls its inbox every minute writes 36,000 rows a day; a few
hundred of them run through the 2,147,483,647 ids of an ``integer`` in months, and then
every read of the portal fails. The id and its sequence become ``bigint``. PostgreSQL
rewrites the table (and holds it) while it does so: on a large log, run this migration in a
quiet hour (1.7 million entries: 13 s here). SQLite's rowid is 64-bit already.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE audit_log ALTER COLUMN id TYPE bigint")
        op.execute("ALTER SEQUENCE audit_log_id_seq AS bigint")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER SEQUENCE audit_log_id_seq AS integer")
        op.execute("ALTER TABLE audit_log ALTER COLUMN id TYPE integer")
