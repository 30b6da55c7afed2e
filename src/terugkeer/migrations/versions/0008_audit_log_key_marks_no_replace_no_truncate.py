"""audit log: a key mark per entry; INSERT OR REPLACE (SQLite) and TRUNCATE (PostgreSQL) refused

- ``audit_log.mac``: ``<key id>:<HMAC-SHA256 of the entry's hash>`` under a key derived from
  the encryption keys (``security/audit.py``), written with every new entry. Existing entries
  keep ``mac`` NULL: they are not re-chained (that would need the append-only triggers off
  and would launder whatever was changed before); they verify by their unkeyed hashes as a
  prefix of the chain, and the checkpoints pin them.
- SQLite: a BEFORE INSERT trigger refuses an insert whose id or hash is already there, so
  ``INSERT OR REPLACE`` cannot rewrite an entry (it deletes the old row without firing the
  DELETE trigger).
- PostgreSQL: ``TRUNCATE audit_log`` is refused by a statement trigger (UPDATE and DELETE are
  by the row trigger of 0004).

The column is added with a plain ALTER TABLE (no table copy on SQLite, so the triggers of 0004
stay).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SQLITE_NO_REPLACE = (
    "CREATE TRIGGER audit_log_no_replace BEFORE INSERT ON audit_log "
    "WHEN EXISTS (SELECT 1 FROM audit_log WHERE id = NEW.id OR hash = NEW.hash) "
    "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"
)
PG_NO_TRUNCATE = (
    "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
    "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()"
)


def upgrade() -> None:
    op.add_column("audit_log", sa.Column("mac", sa.String(length=100), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_NO_TRUNCATE)
    else:
        op.execute(SQLITE_NO_REPLACE)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log")
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_replace")
    op.drop_column("audit_log", "mac")
