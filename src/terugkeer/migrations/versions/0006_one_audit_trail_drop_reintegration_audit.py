"""one audit trail: reintegration_audit goes into audit_log and is dropped

Since "Reintegration actions also go into the hash-chained audit log" every write to
``reintegration_audit`` (``reintegration/audit.py``'s ``audit_many``, the only writer) also
appended the same row to ``audit_log`` in the same transaction: same moment, actor, action and
case, with record type ``reintegration_case``. Only a database that ran the code before that
change can hold rows of ``reintegration_audit`` with no twin in ``audit_log``; those are appended
to ``audit_log`` here, oldest first, chained after its newest entry (rows are only ever added,
so the chain keeps verifying). Then the table is dropped.

Downgrade creates the table again and fills it from the reintegration rows of ``audit_log``.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05
"""

import json
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import terugkeer.db.types

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RECORD_TYPE = "reintegration_case"
PURPOSE = "reintegration registration"


def _utc(value: datetime | str) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _key(at: datetime | str, actor: str, action: str, record_id: str) -> tuple[str, ...]:
    return (_utc(at).isoformat(timespec="microseconds"), actor, action, record_id)


def upgrade() -> None:
    from terugkeer.security import audit

    conn = op.get_bind()
    old = sa.table(
        "reintegration_audit",
        sa.column("id", sa.Integer),
        sa.column("at", terugkeer.db.types.UTCDateTime(timezone=True)),
        sa.column("actor", sa.String),
        sa.column("action", sa.String),
        sa.column("case_id", sa.Integer),
        sa.column("details", sa.Text),
    )
    log = sa.table(
        "audit_log",
        sa.column("at", terugkeer.db.types.UTCDateTime(timezone=True)),
        sa.column("actor", sa.String),
        sa.column("action", sa.String),
        sa.column("record_type", sa.String),
        sa.column("record_id", sa.String),
    )
    twins = {
        _key(r.at, r.actor, r.action, r.record_id)
        for r in conn.execute(
            sa.select(log.c.at, log.c.actor, log.c.action, log.c.record_id).where(
                log.c.record_type == RECORD_TYPE
            )
        )
    }
    for r in conn.execute(sa.select(old).order_by(old.c.id)).all():
        if _key(r.at, r.actor, r.action, str(r.case_id)) in twins:
            continue
        audit.record_many(
            conn,
            r.actor,
            audit.role_of(r.actor, "caseworker"),
            r.action,
            RECORD_TYPE,
            PURPOSE,
            [(str(r.case_id), json.loads(r.details))],
            at=_utc(r.at),
        )

    with op.batch_alter_table("reintegration_audit", schema=None) as batch_op:
        batch_op.drop_index("ix_reintegration_audit_case_id")
    op.drop_table("reintegration_audit")


def downgrade() -> None:
    op.create_table(
        "reintegration_audit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", terugkeer.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("details", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reintegration_audit")),
    )
    with op.batch_alter_table("reintegration_audit", schema=None) as batch_op:
        batch_op.create_index("ix_reintegration_audit_case_id", ["case_id"], unique=False)
    op.execute(
        "INSERT INTO reintegration_audit (at, actor, action, case_id, details) "
        "SELECT at, actor, action, CAST(NULLIF(record_id, 'None') AS INTEGER), details "
        "FROM audit_log WHERE record_type = 'reintegration_case' ORDER BY id"
    )
