"""Tables of reintegration registration, on the shared ``metadata`` of ``terugkeer.db.tables``
(which imports this module at its end, so the metadata is complete wherever it is used).

History is kept, not overwritten: condition facts and consent records are append-only (the
current value is the newest row); changes of cases and activities are in the audit log
(``security/audit.py``).
Money is stored in euro cents and hours in hundredths of an hour, as integers, so both stores
hold them exactly.
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    UniqueConstraint,
)

from terugkeer.db.metadata import metadata
from terugkeer.db.types import UTCDateTime

# A case (nazorgdossier): one per detention period, in the municipality the person returns to.
# What detention knows (person, period, institution, dates) is read from the period, not copied.
reintegration_cases = Table(
    "reintegration_cases",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("period_id", Integer, ForeignKey("detention_periods.id"), nullable=False, unique=True),
    Column("person_id", Integer, ForeignKey("persons.id"), nullable=False),
    Column("municipality", String(6), nullable=False),
    Column("municipal_ref", String(64)),  # the municipality's own case reference
    Column("status", String(16), nullable=False),  # planned, returned, cancelled
    Column("consent", String(16), nullable=False),  # current: none, given, refused, withdrawn
    Column("consent_scope", String(100)),  # current scope, comma-separated
    Column("opened_at", UTCDateTime, nullable=False),
    Column("opened_by", String(100), nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("municipality", "municipal_ref"),
    Index("ix_reintegration_cases_municipality_status", "municipality", "status"),
    Index("ix_reintegration_cases_person_id", "person_id"),
)

# Consent records: given, refused or withdrawn, with the date and the scope; append-only.
reintegration_consents = Table(
    "reintegration_consents",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("case_id", Integer, ForeignKey("reintegration_cases.id"), nullable=False),
    Column("status", String(16), nullable=False),
    Column("on_date", Date, nullable=False),
    Column("scope", String(100), nullable=False),
    Column("recorded_at", UTCDateTime, nullable=False),
    Column("recorded_by", String(100), nullable=False),
    Column("source", String(32), nullable=False),  # api, import:<id>
    Index("ix_reintegration_consents_case_id", "case_id"),
)

# A basic condition's status at a moment, as a dated fact with who recorded it; append-only.
condition_facts = Table(
    "condition_facts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("case_id", Integer, ForeignKey("reintegration_cases.id"), nullable=False),
    Column("condition", String(16), nullable=False),
    Column("moment", String(16), nullable=False),
    Column("status", String(24), nullable=False),
    Column("detail", String(100)),  # care: the needs, comma-separated
    Column("as_of", Date, nullable=False),  # the date the status holds on
    Column("recorded_at", UTCDateTime, nullable=False),
    Column("recorded_by", String(100), nullable=False),
    Column("source", String(32), nullable=False),  # api, import:<id>, screening
    Index("ix_condition_facts_case_id_condition_moment", "case_id", "condition", "moment"),
)

# The prison administration's intake screening of the five conditions (DJI), per period.
# Copied into a case as intake facts once the person has given consent.
intake_screenings = Table(
    "intake_screenings",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("period_id", Integer, ForeignKey("detention_periods.id"), nullable=False, unique=True),
    Column("screened_on", Date, nullable=False),
    Column("id_status", String(24)),
    Column("housing_status", String(24)),
    Column("income_status", String(24)),
    Column("debts_status", String(24)),
    Column("care_status", String(24)),
    Column("care_needs", String(100)),
    Column("imported_at", UTCDateTime, nullable=False),
    Column("import_id", Integer),
)

activities = Table(
    "activities",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("case_id", Integer, ForeignKey("reintegration_cases.id"), nullable=False),
    # the municipality's own reference, or (without one) type|start|provider
    Column("key", String(200), nullable=False),
    Column("municipal_ref", String(64)),
    Column("type", String(32), nullable=False),
    Column("condition", String(16), nullable=False),  # of the type; "general" for all
    Column("provider", String(120), nullable=False),
    Column("start_date", Date, nullable=False),
    Column("end_date", Date),
    Column("hours_x100", Integer),  # hours, in hundredths
    Column("cost_cents", Integer, nullable=False),  # euros, in cents
    Column("funder", String(24)),  # municipality, central_government, other
    Column("programme", String(100)),  # a named local approach
    Column("recorded_at", UTCDateTime, nullable=False),
    Column("recorded_by", String(100), nullable=False),
    Column("source", String(32), nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("case_id", "key"),
)

# One row per applied import file: what, by whom, how much (the file itself is not kept).
reintegration_imports = Table(
    "reintegration_imports",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("kind", String(16), nullable=False),  # cases, activities, screenings
    Column("municipality", String(6)),
    Column("filename", String(255), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("imported_by", String(100), nullable=False),
    Column("imported_at", UTCDateTime, nullable=False),
    Column("rows", Integer, nullable=False),
    Column("applied", Integer, nullable=False),
    Column("unchanged", Integer, nullable=False),
)
