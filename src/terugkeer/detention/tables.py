"""Detention tables: persons, the feed events as received, periods, offences, victims,
reconvictions and the quarantine."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from terugkeer.db.metadata import metadata
from terugkeer.db.types import UTCDateTime

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
    Index("ix_quarantine_status_waits_for", "status", "waits_for"),  # parked messages (0009)
    # a parked message by its event id, for a correction that withdraws it (0013)
    Index("ix_quarantine_event_id", "event_id"),
)

# --- notify: obligations, deliveries, alerts ------------------------------------------------

# An obligation: who must hear what, by when, under which rule. Its key is deterministic
# (rule, period, occurrence, recipient), so the independent reconciliation can compute the
# set of keys that must exist and compare.
