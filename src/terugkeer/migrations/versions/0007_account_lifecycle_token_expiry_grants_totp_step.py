"""account lifecycle: API tokens expire and carry an explicit grant of victims' contact
details; a one-time code is used once

- ``api_tokens.expires_at``: when the token stops working (``TERUGKEER_TOKEN_DAYS`` after it
  was made; tokens made before this revision get the default 90 days from their creation).
- ``api_tokens.contact_details``: an administrator granted this token the reading of victims'
  contact details (without it a token never reads them: they need the second factor).
- ``users.totp_last_step``: the 30-second step of the last one-time code accepted; a code of
  that step or an earlier one is refused (single use).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05
"""

from collections.abc import Sequence
from datetime import timedelta

import sqlalchemy as sa
from alembic import op

import terugkeer.db.types

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DEFAULT_DAYS = 90


def upgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("expires_at", terugkeer.db.types.UTCDateTime(), nullable=True))
        batch.add_column(
            sa.Column("contact_details", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    tokens = sa.table(
        "api_tokens",
        sa.column("id", sa.Integer()),
        sa.column("created_at", terugkeer.db.types.UTCDateTime()),
        sa.column("expires_at", terugkeer.db.types.UTCDateTime()),
    )
    conn = op.get_bind()
    for token_id, created in conn.execute(sa.select(tokens.c.id, tokens.c.created_at)).all():
        conn.execute(
            tokens.update()
            .where(tokens.c.id == token_id)
            .values(expires_at=created + timedelta(days=DEFAULT_DAYS))
        )
    with op.batch_alter_table("api_tokens") as batch:
        batch.alter_column(
            "expires_at", existing_type=terugkeer.db.types.UTCDateTime(), nullable=False
        )
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("totp_last_step", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("totp_last_step")
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("contact_details")
        batch.drop_column("expires_at")
