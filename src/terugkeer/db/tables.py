"""All tables, as SQLAlchemy Core. Migrations in ``migrations/`` must match this metadata
(a test runs autogenerate after upgrade and expects no difference)."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from terugkeer.db.types import UTCDateTime

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

persons = Table(
    "persons",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("bsn", String(9), unique=True),
    Column("prison_number", String(32), unique=True),
    Column("birth_date", Date),
    Column("sex", String(1)),
    Column("died_at", UTCDateTime),
)

# Every accepted feed message, as received (JSON body), in arrival order.
feed_events = Table(
    "feed_events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("event_id", String(100), nullable=False, unique=True),
    Column("source", String(16), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("occurred_at", UTCDateTime, nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    Column("period_ref", String(64)),
    Column("body", Text, nullable=False),
    Column("body_hash", String(32), nullable=False),
    Column("withdrawn_by", String(100)),
    Index("ix_feed_events_period_ref", "period_ref"),
    # the burst brake and the reconciliation read events by kind, source and time
    Index("ix_feed_events_kind_source_occurred_at", "kind", "source", "occurred_at"),
)

detention_periods = Table(
    "detention_periods",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("period_ref", String(64), nullable=False, unique=True),
    Column("person_id", Integer, ForeignKey("persons.id"), nullable=False),
    Column("source", String(16), nullable=False),
    Column("institution", String(16), nullable=False),
    Column("title", String(32), nullable=False),
    Column("sentence_days", Integer),
    Column("residence_municipality", String(6)),
    Column("return_municipality", String(6)),
    Column("planned_release_date", Date),
    Column("intake_at", UTCDateTime, nullable=False),
    Column("status", String(16), nullable=False),
    Column("leave_municipality", String(6)),
    Column("release_kind", String(32)),
    Column("ended_at", UTCDateTime),
    Column("last_event_at", UTCDateTime, nullable=False),
    Column("last_event_id", String(100), nullable=False),
    Column("event_count", Integer, nullable=False),
    Index("ix_detention_periods_person_id", "person_id"),
)

period_offences = Table(
    "period_offences",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("period_id", Integer, ForeignKey("detention_periods.id"), nullable=False),
    Column("position", Integer, nullable=False),
    Column("category", String(16), nullable=False),
    Column("statutory_max_years", Integer, nullable=False),
    UniqueConstraint("period_id", "position"),
)

victims = Table(
    "victims",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("victim_ref", String(64), nullable=False, unique=True),
    Column("period_id", Integer, ForeignKey("detention_periods.id"), nullable=False),
    Column("relation", String(24), nullable=False),
    Column("spoke_in_court", Boolean, nullable=False),
    Column("wants_information", Boolean, nullable=False),
    # Contact details, encrypted with AES-GCM and bound to victim_ref (docs/security.md).
    Column("contact", Text, nullable=False),
    Column("registered_at", UTCDateTime, nullable=False),
    Column("event_id", String(100), nullable=False),
    Index("ix_victims_period_id", "period_id"),
)

reconvictions = Table(
    "reconvictions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("case_ref", String(64), nullable=False, unique=True),
    Column("person_id", Integer, ForeignKey("persons.id"), nullable=False),
    Column("offence_date", Date, nullable=False),
    Column("registered_at", UTCDateTime, nullable=False),
    Column("category", String(16), nullable=False),
    Column("statutory_max_years", Integer, nullable=False),
    Column("decision", String(24), nullable=False),
    Column("custodial", Boolean, nullable=False),
    Column("event_id", String(100), nullable=False),
    Index("ix_reconvictions_person_id", "person_id"),
)

quarantine = Table(
    "quarantine",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("received_at", UTCDateTime, nullable=False),
    Column("origin", String(255), nullable=False),
    Column("line_no", Integer, nullable=False),
    Column("raw", Text, nullable=False),
    Column("event_id", String(100)),
    Column("reason", String(32), nullable=False),
    Column("field", String(64)),
    Column("value", Text),
    Column("message", Text, nullable=False),
    # What a parked message waits for ("period:REF", "person:KEY"); applied when it arrives.
    Column("waits_for", String(80)),
    Column("format", String(8), nullable=False),  # "json" (a line) or "csv" (cells as JSON)
    Column("status", String(16), nullable=False),
    Column("resolved_at", UTCDateTime),
    Column("attempts", Integer, nullable=False),
    Index("ix_quarantine_status", "status"),
    Index("ix_quarantine_waits_for", "waits_for"),
)

# --- notify: obligations, deliveries, alerts ------------------------------------------------

# An obligation: who must hear what, by when, under which rule. Its key is deterministic
# (rule, period, occurrence, recipient), so the independent reconciliation can compute the
# set of keys that must exist and compare.
obligations = Table(
    "obligations",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("key", String(255), nullable=False, unique=True),
    Column("rule_id", String(64), nullable=False),
    Column("rule_version", String(32), nullable=False),
    Column("period_ref", String(64), nullable=False),
    Column("occurrence", String(140), nullable=False),  # "release", "leave:2025-03-04", …
    Column(
        "subject", String(24), nullable=False
    ),  # release, leave, escape, recapture, death, intake
    Column("recipient_kind", String(16), nullable=False),  # mayor, idv, victim, nazorg
    Column(
        "recipient_ref", String(64)
    ),  # municipality code, "OM-IDV", victim_ref; NULL: unresolved
    Column("cause_event_id", String(100), nullable=False),
    Column("planned_for", UTCDateTime),  # the moment notified about (planned release, leave)
    Column("due_at", UTCDateTime, nullable=False),
    Column("status", String(16), nullable=False),
    Column("late", Boolean, nullable=False),
    Column("late_reason", Text),
    Column("facts", Text, nullable=False),  # JSON: the facts that made the rule fire
    Column("version", Integer, nullable=False),  # +1 for every change notice
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("delivered_at", UTCDateTime),
    Column("acknowledged_at", UTCDateTime),
    Column("acknowledged_by", String(100)),
    Column("ack_note", Text),  # for victims: how the IDV informed them
    Column("void_reason", Text),
    Column("escalation", Integer, nullable=False),  # 0 none, 1 re-sent on 2nd channel, 2 raised
    Column("backfilled", Boolean, nullable=False),  # created by backfill: sent late ("alsnog")
    Index("ix_obligations_period_ref", "period_ref"),
    Index("ix_obligations_status_due_at", "status", "due_at"),
    Index("ix_obligations_recipient", "recipient_kind", "recipient_ref"),
)

# The outbox: one row per notice per channel, written with the obligation; the dispatcher
# claims due rows, sends, and records every attempt.
deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("obligation_id", Integer, ForeignKey("obligations.id"), nullable=False),
    Column("notice", String(16), nullable=False),  # notice, change, correction, reminder
    Column("obligation_version", Integer, nullable=False),
    Column("channel", String(16), nullable=False),  # portal, email, webhook
    Column("address", String(255)),
    Column("idempotency_key", String(120), nullable=False, unique=True),
    Column("status", String(16), nullable=False),  # pending, held, delivered, dead, voided
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("last_error", Text),
    Column("created_at", UTCDateTime, nullable=False),
    Column("delivered_at", UTCDateTime),
    Column("read_at", UTCDateTime),
    Index("ix_deliveries_status_next", "status", "next_attempt_at"),
    Index("ix_deliveries_obligation_id", "obligation_id"),
)

delivery_attempts = Table(
    "delivery_attempts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("delivery_id", Integer, ForeignKey("deliveries.id"), nullable=False),
    Column("attempted_at", UTCDateTime, nullable=False),
    Column("ok", Boolean, nullable=False),
    Column("error", Text),
    Column("duration_ms", Integer, nullable=False),
    Column("worker", String(64), nullable=False),
    Index("ix_delivery_attempts_delivery_id", "delivery_id"),
)

# Where each recipient is reached: per recipient kind and reference ("*" for any), a primary
# (priority 1) and a second channel (priority 2) for escalation.
notify_endpoints = Table(
    "notify_endpoints",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("recipient_kind", String(16), nullable=False),
    Column("recipient_ref", String(64), nullable=False),
    Column("priority", Integer, nullable=False),
    Column("channel", String(16), nullable=False),
    Column("address", String(255)),
    UniqueConstraint("recipient_kind", "recipient_ref", "priority"),
)

# Alerts for the operator: raised by reconciliation, escalation and feed watch.
alerts = Table(
    "alerts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("key", String(255), nullable=False),
    Column("message", Text, nullable=False),
    Column("details", Text, nullable=False),  # JSON
    Column("raised_at", UTCDateTime, nullable=False),
    Column("resolved_at", UTCDateTime),
    Column("status", String(16), nullable=False),  # open, resolved
    Index("ix_alerts_status_kind", "status", "kind"),
    Index("ix_alerts_key", "key"),
)

import terugkeer.reintegration.tables  # noqa: E402
import terugkeer.security.tables  # noqa: F401, E402
