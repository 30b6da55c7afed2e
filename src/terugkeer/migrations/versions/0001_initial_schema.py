"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import terugkeer.db.types

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "feed_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(length=100), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("occurred_at", terugkeer.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("received_at", terugkeer.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("period_ref", sa.String(length=64), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("body_hash", sa.String(length=32), nullable=False),
        sa.Column("withdrawn_by", sa.String(length=100), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feed_events")),
        sa.UniqueConstraint("event_id", name=op.f("uq_feed_events_event_id")),
    )
    with op.batch_alter_table("feed_events", schema=None) as batch_op:
        batch_op.create_index("ix_feed_events_period_ref", ["period_ref"], unique=False)

    op.create_table(
        "persons",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("bsn", sa.String(length=9), nullable=True),
        sa.Column("prison_number", sa.String(length=32), nullable=True),
        sa.Column("birth_date", sa.Date(), nullable=True),
        sa.Column("sex", sa.String(length=1), nullable=True),
        sa.Column("died_at", terugkeer.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_persons")),
        sa.UniqueConstraint("bsn", name=op.f("uq_persons_bsn")),
        sa.UniqueConstraint("prison_number", name=op.f("uq_persons_prison_number")),
    )
    op.create_table(
        "quarantine",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("received_at", terugkeer.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("origin", sa.String(length=255), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("raw", sa.Text(), nullable=False),
        sa.Column("event_id", sa.String(length=100), nullable=True),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("field", sa.String(length=64), nullable=True),
        sa.Column("value", sa.Text(), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("waits_for", sa.String(length=80), nullable=True),
        sa.Column("format", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("resolved_at", terugkeer.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quarantine")),
    )
    with op.batch_alter_table("quarantine", schema=None) as batch_op:
        batch_op.create_index("ix_quarantine_status", ["status"], unique=False)
        batch_op.create_index("ix_quarantine_waits_for", ["waits_for"], unique=False)

    op.create_table(
        "detention_periods",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("period_ref", sa.String(length=64), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("institution", sa.String(length=16), nullable=False),
        sa.Column("title", sa.String(length=32), nullable=False),
        sa.Column("sentence_days", sa.Integer(), nullable=True),
        sa.Column("residence_municipality", sa.String(length=6), nullable=True),
        sa.Column("return_municipality", sa.String(length=6), nullable=True),
        sa.Column("planned_release_date", sa.Date(), nullable=True),
        sa.Column("intake_at", terugkeer.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("leave_municipality", sa.String(length=6), nullable=True),
        sa.Column("release_kind", sa.String(length=32), nullable=True),
        sa.Column("ended_at", terugkeer.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_event_at", terugkeer.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_event_id", sa.String(length=100), nullable=False),
        sa.Column("event_count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["person_id"], ["persons.id"], name=op.f("fk_detention_periods_person_id_persons")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_detention_periods")),
        sa.UniqueConstraint("period_ref", name=op.f("uq_detention_periods_period_ref")),
    )
    with op.batch_alter_table("detention_periods", schema=None) as batch_op:
        batch_op.create_index("ix_detention_periods_person_id", ["person_id"], unique=False)

    op.create_table(
        "reconvictions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_ref", sa.String(length=64), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("offence_date", sa.Date(), nullable=False),
        sa.Column("registered_at", terugkeer.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("category", sa.String(length=16), nullable=False),
        sa.Column("statutory_max_years", sa.Integer(), nullable=False),
        sa.Column("decision", sa.String(length=24), nullable=False),
        sa.Column("custodial", sa.Boolean(), nullable=False),
        sa.Column("event_id", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(
            ["person_id"], ["persons.id"], name=op.f("fk_reconvictions_person_id_persons")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reconvictions")),
        sa.UniqueConstraint("case_ref", name=op.f("uq_reconvictions_case_ref")),
    )
    with op.batch_alter_table("reconvictions", schema=None) as batch_op:
        batch_op.create_index("ix_reconvictions_person_id", ["person_id"], unique=False)

    op.create_table(
        "period_offences",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("period_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("category", sa.String(length=16), nullable=False),
        sa.Column("statutory_max_years", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["period_id"],
            ["detention_periods.id"],
            name=op.f("fk_period_offences_period_id_detention_periods"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_period_offences")),
        sa.UniqueConstraint(
            "period_id", "position", name=op.f("uq_period_offences_period_id_position")
        ),
    )
    op.create_table(
        "victims",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("victim_ref", sa.String(length=64), nullable=False),
        sa.Column("period_id", sa.Integer(), nullable=False),
        sa.Column("relation", sa.String(length=24), nullable=False),
        sa.Column("spoke_in_court", sa.Boolean(), nullable=False),
        sa.Column("wants_information", sa.Boolean(), nullable=False),
        sa.Column("contact", sa.Text(), nullable=False),
        sa.Column("registered_at", terugkeer.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("event_id", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(
            ["period_id"],
            ["detention_periods.id"],
            name=op.f("fk_victims_period_id_detention_periods"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_victims")),
        sa.UniqueConstraint("victim_ref", name=op.f("uq_victims_victim_ref")),
    )
    with op.batch_alter_table("victims", schema=None) as batch_op:
        batch_op.create_index("ix_victims_period_id", ["period_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("victims", schema=None) as batch_op:
        batch_op.drop_index("ix_victims_period_id")

    op.drop_table("victims")
    op.drop_table("period_offences")
    with op.batch_alter_table("reconvictions", schema=None) as batch_op:
        batch_op.drop_index("ix_reconvictions_person_id")

    op.drop_table("reconvictions")
    with op.batch_alter_table("detention_periods", schema=None) as batch_op:
        batch_op.drop_index("ix_detention_periods_person_id")

    op.drop_table("detention_periods")
    with op.batch_alter_table("quarantine", schema=None) as batch_op:
        batch_op.drop_index("ix_quarantine_waits_for")
        batch_op.drop_index("ix_quarantine_status")

    op.drop_table("quarantine")
    op.drop_table("persons")
    with op.batch_alter_table("feed_events", schema=None) as batch_op:
        batch_op.drop_index("ix_feed_events_period_ref")

    op.drop_table("feed_events")
