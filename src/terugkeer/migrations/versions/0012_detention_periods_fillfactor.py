"""leave room in detention_periods' pages so that updating a period is a HOT update

Ingest updates a stored period once per batch that brings it an event (its status, release
date, last event). An update changes no indexed column (ingest writes the state columns
only), but on a full page PostgreSQL must put the new row version on another page and add
it to every index of the table: its key, its period reference and its person. With a
fillfactor of 70 the new version fits on the same page (a heap-only tuple): no index entry,
less index bloat over the years. On 100,000 events after 500,000 (bench: docs/benchmarks.md,
*ingest*), every period update was HOT, against none before. Pages written before this
migration fill up as before until the table is rewritten (``VACUUM FULL detention_periods``,
in a maintenance window). SQLite has no fillfactor: nothing changes there.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FILLFACTOR = 70


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE detention_periods SET (fillfactor = {FILLFACTOR})")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE detention_periods RESET (fillfactor)")
