"""reintegration: cases, consents, condition facts, screenings, activities, imports, audit

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import terugkeer.db.types

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
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

    op.create_table(
        "reintegration_imports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("municipality", sa.String(length=6), nullable=True),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("imported_by", sa.String(length=100), nullable=False),
        sa.Column("imported_at", terugkeer.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("applied", sa.Integer(), nullable=False),
        sa.Column("unchanged", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reintegration_imports")),
    )
    op.create_table(
        "intake_screenings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("period_id", sa.Integer(), nullable=False),
        sa.Column("screened_on", sa.Date(), nullable=False),
        sa.Column("id_status", sa.String(length=24), nullable=True),
        sa.Column("housing_status", sa.String(length=24), nullable=True),
        sa.Column("income_status", sa.String(length=24), nullable=True),
        sa.Column("debts_status", sa.String(length=24), nullable=True),
        sa.Column("care_status", sa.String(length=24), nullable=True),
        sa.Column("care_needs", sa.String(length=100), nullable=True),
        sa.Column("imported_at", terugkeer.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("import_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["period_id"],
            ["detention_periods.id"],
            name=op.f("fk_intake_screenings_period_id_detention_periods"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_intake_screenings")),
        sa.UniqueConstraint("period_id", name=op.f("uq_intake_screenings_period_id")),
    )
    op.create_table(
        "reintegration_cases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("period_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("municipality", sa.String(length=6), nullable=False),
        sa.Column("municipal_ref", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("consent", sa.String(length=16), nullable=False),
        sa.Column("consent_scope", sa.String(length=100), nullable=True),
        sa.Column("opened_at", terugkeer.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("opened_by", sa.String(length=100), nullable=False),
        sa.Column("updated_at", terugkeer.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["period_id"],
            ["detention_periods.id"],
            name=op.f("fk_reintegration_cases_period_id_detention_periods"),
        ),
        sa.ForeignKeyConstraint(
            ["person_id"], ["persons.id"], name=op.f("fk_reintegration_cases_person_id_persons")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reintegration_cases")),
        sa.UniqueConstraint(
            "municipality",
            "municipal_ref",
            name=op.f("uq_reintegration_cases_municipality_municipal_ref"),
        ),
        sa.UniqueConstraint("period_id", name=op.f("uq_reintegration_cases_period_id")),
    )
    with op.batch_alter_table("reintegration_cases", schema=None) as batch_op:
        batch_op.create_index(
            "ix_reintegration_cases_municipality_status", ["municipality", "status"], unique=False
        )
        batch_op.create_index("ix_reintegration_cases_person_id", ["person_id"], unique=False)
    _case_tables()


def _case_tables() -> None:
    """The tables that hang off a case (split from upgrade only to keep functions short)."""
    op.create_table(
        "activities",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("municipal_ref", sa.String(length=64), nullable=True),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("condition", sa.String(length=16), nullable=False),
        sa.Column("provider", sa.String(length=120), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=True),
        sa.Column("hours_x100", sa.Integer(), nullable=True),
        sa.Column("cost_cents", sa.Integer(), nullable=False),
        sa.Column("funder", sa.String(length=24), nullable=True),
        sa.Column("programme", sa.String(length=100), nullable=True),
        sa.Column("recorded_at", terugkeer.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("recorded_by", sa.String(length=100), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("updated_at", terugkeer.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["reintegration_cases.id"],
            name=op.f("fk_activities_case_id_reintegration_cases"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_activities")),
        sa.UniqueConstraint("case_id", "key", name=op.f("uq_activities_case_id_key")),
    )
    op.create_table(
        "condition_facts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("condition", sa.String(length=16), nullable=False),
        sa.Column("moment", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("detail", sa.String(length=100), nullable=True),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("recorded_at", terugkeer.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("recorded_by", sa.String(length=100), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["reintegration_cases.id"],
            name=op.f("fk_condition_facts_case_id_reintegration_cases"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_condition_facts")),
    )
    with op.batch_alter_table("condition_facts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_condition_facts_case_id_condition_moment",
            ["case_id", "condition", "moment"],
            unique=False,
        )

    op.create_table(
        "reintegration_consents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("on_date", sa.Date(), nullable=False),
        sa.Column("scope", sa.String(length=100), nullable=False),
        sa.Column("recorded_at", terugkeer.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("recorded_by", sa.String(length=100), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["reintegration_cases.id"],
            name=op.f("fk_reintegration_consents_case_id_reintegration_cases"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reintegration_consents")),
    )
    with op.batch_alter_table("reintegration_consents", schema=None) as batch_op:
        batch_op.create_index("ix_reintegration_consents_case_id", ["case_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("reintegration_consents", schema=None) as batch_op:
        batch_op.drop_index("ix_reintegration_consents_case_id")

    op.drop_table("reintegration_consents")
    with op.batch_alter_table("condition_facts", schema=None) as batch_op:
        batch_op.drop_index("ix_condition_facts_case_id_condition_moment")

    op.drop_table("condition_facts")
    op.drop_table("activities")
    with op.batch_alter_table("reintegration_cases", schema=None) as batch_op:
        batch_op.drop_index("ix_reintegration_cases_person_id")
        batch_op.drop_index("ix_reintegration_cases_municipality_status")

    op.drop_table("reintegration_cases")
    op.drop_table("intake_screenings")
    op.drop_table("reintegration_imports")
    with op.batch_alter_table("reintegration_audit", schema=None) as batch_op:
        batch_op.drop_index("ix_reintegration_audit_case_id")

    op.drop_table("reintegration_audit")
