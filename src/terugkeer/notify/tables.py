"""Notification tables: obligations, deliveries and their attempts, endpoints, alerts."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from terugkeer.db.metadata import metadata
from terugkeer.db.types import UTCDateTime

_AWAITING = "status = 'delivered'"
_VICTIMS = "recipient_kind = 'victim'"

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
    Index("ix_obligations_cause_event_id", "cause_event_id"),  # the burst brake (0009)
    Index("ix_obligations_status_due_at", "status", "due_at"),
    # the inbox: an organisation's notices in delivery order, with their status (0010)
    Index(
        "ix_obligations_inbox", "recipient_kind", "recipient_ref", "delivered_at", "id", "status"
    ),
    # every victim's notices in delivery order: the IDV's inbox holds them, whoever the victim
    # (0016)
    Index(
        "ix_obligations_victims",
        "delivered_at",
        "id",
        "status",
        sqlite_where=text(_VICTIMS),
        postgresql_where=text(_VICTIMS),
    ),
    # the notices awaiting acknowledgement, most overdue first: the urgent part of the inbox (0014)
    Index(
        "ix_obligations_awaiting",
        "recipient_kind",
        "recipient_ref",
        "due_at",
        "delivered_at",
        "id",
        sqlite_where=text(_AWAITING),
        postgresql_where=text(_AWAITING),
    ),
)

# The inbox's history counted per organisation (migration 0015): the number of its notices
# with a delivered_at ("told"), as rows of +1 and -1 that triggers on obligations append in the
# transaction that changes a notice, folded into one row per organisation by the worker
# (notify/delivery/tallies.py). Victims' notices, which the IDV's inbox holds whatever the
# victim, are counted under the reference "".
inbox_tallies = Table(
    "inbox_tallies",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("recipient_kind", String(16), nullable=False),
    Column("recipient_ref", String(64), nullable=False),
    Column("n", Integer, nullable=False),
    Index("ix_inbox_tallies_recipient", "recipient_kind", "recipient_ref"),
)

_UNREAD = "status = 'delivered' AND read_at IS NULL"

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
    # the inbox's "new" filter: is a notice's delivery delivered and not read yet (inbox.py)
    Index(
        "ix_deliveries_unread",
        "obligation_id",
        sqlite_where=text(_UNREAD),
        postgresql_where=text(_UNREAD),
    ),
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
    Index("ix_alerts_kind_key", "kind", "key"),  # the burst brake in every batch (0009)
)
