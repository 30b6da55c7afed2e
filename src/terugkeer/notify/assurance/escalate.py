"""Escalation and the outbox check, run by the worker every check cycle.

- **Not acknowledged in time.** An obligation delivered but not acknowledged within its rule's
  ``ack_window_hours`` is re-sent as a ``reminder`` on the recipient's second channel
  (priority 2 in ``notify_endpoints``) and gets ``escalation = 1``. Still not acknowledged one
  window after that reminder: an ``unacknowledged`` alert and ``escalation = 2``. Without a
  second channel the alert comes at once.
- **Unresolved past due.** An obligation whose recipient is still unknown at its due time
  raises an ``unresolved`` alert.
- **The outbox is complete.** An open obligation must have a notice (or change) queued or sent
  for its current version, and one voided after its recipient was told must have a
  correction; when a race left one out, it is queued here.
- Alerts whose cause is gone (acknowledged, voided, resolved) are resolved.

Alerts are de-duplicated by key while open: ``unacknowledged:<obligation id>``,
``unresolved:<obligation id>``. On PostgreSQL one pass runs at a time (an advisory lock), so
several workers never raise the same alert twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import Connection, Engine, exists, select, text, update

from terugkeer.db.bulk import among, chunks
from terugkeer.domain import render
from terugkeer.notify.alerts import raise_alert, resolve_alert
from terugkeer.notify.rules.obligations import Endpoints, add_delivery, delivery_key
from terugkeer.notify.rules.ruleset import RuleSet, default_rules
from terugkeer.notify.tables import alerts, deliveries, obligations

log = structlog.get_logger(__name__)

LOCK_ID = 0x7465_7275  # PostgreSQL advisory lock: one escalation pass at a time
DEFAULT_WINDOW = timedelta(hours=24)  # for a rule that is no longer in the rule file
ESCALATION_KINDS = ("unacknowledged", "unresolved")


@dataclass
class EscalationCounts:
    reminders: int = 0  # re-sent on the second channel
    unacknowledged: int = 0  # new alerts: not acknowledged
    unresolved: int = 0  # new alerts: recipient unknown past due
    requeued: int = 0  # notices queued for obligations that had none
    corrections: int = 0  # corrections queued for voided obligations already told
    resolved: int = 0  # alerts whose cause is gone
    skipped: bool = False  # another worker was escalating

    def as_json(self) -> dict[str, Any]:
        return render.as_json(self)


def ack_window(rules: RuleSet, rule_id: str) -> timedelta:
    try:
        return timedelta(hours=rules.get(rule_id).ack_window_hours)
    except KeyError:
        return DEFAULT_WINDOW


def escalate(
    engine: Engine, now: datetime | None = None, rules: RuleSet | None = None
) -> EscalationCounts:
    """One escalation pass (one transaction)."""
    now = now or datetime.now(UTC)
    rules = rules or default_rules()
    counts = EscalationCounts()
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            got = conn.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": LOCK_ID})
            if not got.scalar():
                counts.skipped = True
                return counts
        open_keys = set(
            conn.execute(
                select(alerts.c.key).where(
                    alerts.c.status == "open", alerts.c.kind.in_(ESCALATION_KINDS)
                )
            ).scalars()
        )
        _resolve_gone(conn, open_keys, now, counts)
        _ack_windows(conn, rules, open_keys, now, counts)
        _unresolved(conn, open_keys, now, counts)
        _repair_outbox(conn, now, counts)
    if any(v for k, v in counts.as_json().items() if k != "skipped"):
        log.info("escalation", **counts.as_json())
    return counts


def _ack_windows(
    conn: Connection, rules: RuleSet, open_keys: set[str], now: datetime, counts: EscalationCounts
) -> None:
    shortest = min(
        (timedelta(hours=r.ack_window_hours) for r in rules.rules), default=DEFAULT_WINDOW
    )
    rows = conn.execute(
        select(
            obligations.c.id,
            obligations.c.rule_id,
            obligations.c.subject,
            obligations.c.recipient_kind,
            obligations.c.recipient_ref,
            obligations.c.version,
            obligations.c.delivered_at,
            obligations.c.escalation,
        )
        .where(
            obligations.c.status == "delivered",
            obligations.c.acknowledged_at.is_(None),
            obligations.c.escalation < 2,
            obligations.c.delivered_at <= now - shortest,
        )
        .order_by(obligations.c.id)
    ).all()
    reminded = _reminder_times(conn, [r.id for r in rows if r.escalation == 1])
    endpoints: Endpoints | None = None
    for r in rows:
        window = ack_window(rules, r.rule_id)
        if r.escalation == 0:
            if now < r.delivered_at + window:
                continue
            if not _step(conn, r.id, 0, 1, now):
                continue
            endpoints = endpoints or Endpoints(conn)
            if _queued(conn, r.id, "reminder", r.version) or add_delivery(
                conn,
                endpoints,
                r.id,
                r.recipient_kind,
                r.recipient_ref,
                "reminder",
                r.version,
                now,
                priority=2,
            ):
                counts.reminders += 1
                continue
            _step(conn, r.id, 1, 2, now)
            why = "no second channel is configured"
        else:
            since = reminded.get((r.id, r.version), r.delivered_at + window)
            if now < since + window:
                continue
            if not _step(conn, r.id, 1, 2, now):
                continue
            why = f"re-sent on the second channel at {since.isoformat(timespec='minutes')}"
        key = f"unacknowledged:{r.id}"
        if key in open_keys:
            continue
        raise_alert(
            conn,
            "unacknowledged",
            key,
            f"obligation {r.id} ({r.rule_id}) to {r.recipient_kind} {r.recipient_ref}, "
            f"delivered {r.delivered_at.isoformat(timespec='minutes')}, not acknowledged "
            f"within {window.total_seconds() / 3600:g} h; {why}",
            {
                "obligation_id": r.id,
                "rule_id": r.rule_id,
                "subject": r.subject,
                "recipient_kind": r.recipient_kind,
                "recipient_ref": r.recipient_ref,
                "delivered_at": r.delivered_at,
                "ack_window_hours": window.total_seconds() / 3600,
            },
            now,
        )
        open_keys.add(key)
        counts.unacknowledged += 1


def _step(conn: Connection, obligation_id: int, before: int, after: int, now: datetime) -> bool:
    """Move an obligation's escalation from ``before`` to ``after``; False if it moved on."""
    result = conn.execute(
        update(obligations)
        .where(
            obligations.c.id == obligation_id,
            obligations.c.escalation == before,
            obligations.c.status == "delivered",
            obligations.c.acknowledged_at.is_(None),
        )
        .values(escalation=after, updated_at=now)
    )
    return bool(result.rowcount)


def _reminder_times(conn: Connection, ids: list[int]) -> dict[tuple[int, int], datetime]:
    """When each obligation's reminder was queued, per obligation version."""
    out: dict[tuple[int, int], datetime] = {}
    for chunk in chunks(ids):
        for r in conn.execute(
            select(
                deliveries.c.obligation_id,
                deliveries.c.obligation_version,
                deliveries.c.created_at,
            ).where(
                among(conn, deliveries.c.obligation_id, chunk), deliveries.c.notice == "reminder"
            )
        ):
            key = (r.obligation_id, r.obligation_version)
            out[key] = min(out.get(key, r.created_at), r.created_at)
    return out


def _queued(conn: Connection, obligation_id: int, notice: str, version: int) -> bool:
    found = conn.execute(
        select(deliveries.c.id).where(
            deliveries.c.obligation_id == obligation_id,
            deliveries.c.notice == notice,
            deliveries.c.obligation_version == version,
        )
    ).first()
    return found is not None


def _unresolved(
    conn: Connection, open_keys: set[str], now: datetime, counts: EscalationCounts
) -> None:
    for r in conn.execute(
        select(
            obligations.c.id,
            obligations.c.rule_id,
            obligations.c.recipient_kind,
            obligations.c.period_ref,
            obligations.c.due_at,
        )
        .where(obligations.c.status == "unresolved", obligations.c.due_at <= now)
        .order_by(obligations.c.id)
    ).all():
        key = f"unresolved:{r.id}"
        if key in open_keys:
            continue
        raise_alert(
            conn,
            "unresolved",
            key,
            f"obligation {r.id} ({r.rule_id}) for period {r.period_ref}: no known "
            f"{r.recipient_kind} recipient, due {r.due_at.isoformat(timespec='minutes')}",
            {
                "obligation_id": r.id,
                "rule_id": r.rule_id,
                "recipient_kind": r.recipient_kind,
                "period_ref": r.period_ref,
                "due_at": r.due_at,
            },
            now,
        )
        open_keys.add(key)
        counts.unresolved += 1


def _repair_outbox(conn: Connection, now: datetime, counts: EscalationCounts) -> None:
    """Queue what a race between ingest and dispatch may have left out."""
    content = deliveries.alias("content")
    has_content = (
        exists()
        .where(
            content.c.obligation_id == obligations.c.id,
            content.c.obligation_version == obligations.c.version,
            content.c.notice.in_(("notice", "change")),
            content.c.status != "voided",
        )
        .correlate(obligations)
    )
    has_correction = (
        exists()
        .where(
            content.c.obligation_id == obligations.c.id,
            content.c.obligation_version == obligations.c.version,
            content.c.notice == "correction",
        )
        .correlate(obligations)
    )
    columns = (
        obligations.c.id,
        obligations.c.recipient_kind,
        obligations.c.recipient_ref,
        obligations.c.version,
        obligations.c.delivered_at,
    )
    orphans = conn.execute(
        select(*columns).where(
            obligations.c.status == "open",
            obligations.c.recipient_ref.is_not(None),
            ~has_content,
        )
    ).all()
    uncorrected = conn.execute(
        select(*columns).where(
            obligations.c.status == "voided",
            obligations.c.delivered_at.is_not(None),
            obligations.c.recipient_ref.is_not(None),
            ~has_correction,
        )
    ).all()
    if not orphans and not uncorrected:
        return
    endpoints = Endpoints(conn)
    for rows, corrections in ((orphans, False), (uncorrected, True)):
        for r in rows:
            notice = "correction" if corrections else "change" if r.delivered_at else "notice"
            channel = endpoints.channel(r.recipient_kind, r.recipient_ref)
            key = delivery_key(r.id, notice, r.version, channel[0] if channel else "")
            if conn.execute(
                select(deliveries.c.id).where(deliveries.c.idempotency_key == key)
            ).first():
                log.warning("cannot queue: key taken", obligation=r.id, notice=notice)
                continue
            if add_delivery(
                conn, endpoints, r.id, r.recipient_kind, r.recipient_ref, notice, r.version, now
            ):
                log.warning("queued a missing notice", obligation=r.id, notice=notice)
                if corrections:
                    counts.corrections += 1
                else:
                    counts.requeued += 1


def _resolve_gone(
    conn: Connection, open_keys: set[str], now: datetime, counts: EscalationCounts
) -> None:
    """Resolve escalation alerts whose cause is gone."""
    wanted: dict[int, list[str]] = {}
    for key in open_keys:
        kind, _, ref = key.partition(":")
        if kind in ESCALATION_KINDS and ref.isdigit():
            wanted.setdefault(int(ref), []).append(key)
    if not wanted:
        return
    for chunk in chunks(list(wanted)):
        for r in conn.execute(
            select(obligations.c.id, obligations.c.status).where(
                among(conn, obligations.c.id, chunk)
            )
        ):
            for key in wanted[r.id]:
                gone = (
                    r.status != "unresolved"
                    if key.startswith("unresolved:")
                    else r.status in ("acknowledged", "voided")
                )
                if gone and resolve_alert(conn, key, now):
                    open_keys.discard(key)
                    counts.resolved += 1
