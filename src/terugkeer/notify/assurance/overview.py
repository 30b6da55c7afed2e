"""The operator's overview (Justid functioneel beheer), read from the store for the portal
and the operations API: feed health per place of detention, held bursts, obligations due soon
or overdue, unresolved recipients, dead letters, the reconciliation's open gaps and its last
recorded run, and a preview of what a backfill would create.

Everything here reads; the actions an operator takes on what it shows are the existing ones
(``watch.decide_burst``, ``intake.replay_quarantine``, ``dispatch.retry_dead``,
``backfill.backfill``, ``backfill.check``; naming a municipality is a feed message built by
:func:`naming_message` and applied by ``intake.deliver``). Lists that show obligations or
deliveries (they name a detention period) are ``read`` rows by the actor, in the caller's
transaction; figures per institution name nobody and are not audited."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Select, func, select

from terugkeer.config import get_settings
from terugkeer.db.paging import Page, fetch_page
from terugkeer.detention.tables import detention_periods, feed_events, persons
from terugkeer.domain.refdata import refdata
from terugkeer.notify.assurance.reconcile import ALERT_KINDS, find_gaps
from terugkeer.notify.assurance.reconcile.report import UNDELIVERED
from terugkeer.notify.assurance.watch import held_obligations, working_hours_between
from terugkeer.notify.tables import alerts, deliveries, obligations
from terugkeer.security.actor import JOB, Actor
from terugkeer.security.tables import audit_log

JUSTID = "JUSTID-JD"  # the source of a message an operator sends (naming a municipality)
DUE_WINDOWS = ("overdue", "soon")


def _utc(value: Any) -> datetime | None:
    """A timestamp from an aggregate (SQLite returns those as text, without the zone)."""
    if value is None:
        return None
    at: datetime = datetime.fromisoformat(value) if isinstance(value, str) else value
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


# --- feed health ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FeedHealth:
    """One place of detention's feed: when it last sent something and whether it is stale."""

    code: str
    name: str
    type: str
    last_received_at: datetime | None
    silent_hours: float | None  # working hours since the last message (None: never sent)
    stale: bool
    held_bursts: int  # open burst alerts of this source


def feed_health(
    conn: Connection, now: datetime | None = None, *, silence_hours: float | None = None
) -> list[FeedHealth]:
    """Per place of detention, stale ones first, then by name: the last message received,
    the working hours of silence since (as the feed watch counts them) and open bursts."""
    now = now or datetime.now(UTC)
    limit = silence_hours if silence_hours is not None else get_settings().feed_silence_hours
    last = {
        source: _utc(at)
        for source, at in conn.execute(
            select(feed_events.c.source, func.max(feed_events.c.received_at)).group_by(
                feed_events.c.source
            )
        )
    }
    bursts: dict[str, int] = {}
    for burst in open_bursts(conn):
        bursts[burst.source] = bursts.get(burst.source, 0) + 1
    out = []
    for inst in refdata().places_of_detention():
        seen = last.get(inst.code)
        silent = None if seen is None else round(working_hours_between(seen, now), 1)
        out.append(
            FeedHealth(
                code=inst.code,
                name=inst.name,
                type=inst.type.value,
                last_received_at=seen,
                silent_hours=silent,
                stale=silent is not None and silent > limit,
                held_bursts=bursts.get(inst.code, 0),
            )
        )
    out.sort(key=lambda h: (not h.stale, not h.held_bursts, h.name))
    return out


# --- held bursts ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Burst:
    """An open burst alert: releases from one source in one hour, their notices held."""

    alert_id: int
    source: str
    hour: datetime | None
    releases: int
    held_obligations: int
    already_sent: int
    usual_per_hour: float
    raised_at: datetime
    message: str


def open_bursts(conn: Connection) -> list[Burst]:
    """The bursts waiting for an operator's decision, oldest first (figures only)."""
    out = []
    for r in conn.execute(
        select(alerts)
        .where(alerts.c.kind == "burst", alerts.c.status == "open")
        .order_by(alerts.c.id)
    ):
        details = json.loads(r.details)
        hour = details.get("hour")
        out.append(
            Burst(
                alert_id=r.id,
                source=str(details.get("source", "")),
                hour=_utc(hour) if hour else None,
                releases=len(details.get("releases", [])),
                held_obligations=len(held_obligations(conn, r.id)),
                already_sent=int(details.get("already_sent", 0)),
                usual_per_hour=float(details.get("usual_per_hour", 0.0)),
                raised_at=r.raised_at,
                message=r.message,
            )
        )
    return out


# --- obligations due soon, overdue, unresolved ------------------------------------------------


def _obligation(r: Any) -> dict[str, Any]:
    return {
        "id": r.id,
        "rule_id": r.rule_id,
        "period_ref": r.period_ref,
        "occurrence": r.occurrence,
        "subject": r.subject,
        "recipient_kind": r.recipient_kind,
        "recipient_ref": r.recipient_ref,
        "planned_for": r.planned_for,
        "due_at": r.due_at,
        "status": r.status,
        "late": r.late,
        "late_reason": r.late_reason,
    }


def _due_stmt(window: str, hours: int, recipient_kind: str | None, now: datetime) -> Select[Any]:
    if window not in DUE_WINDOWS:
        raise ValueError(f"unknown window [{window}]; use one of {DUE_WINDOWS}")
    o = obligations.c
    stmt = select(obligations).where(o.status.in_(UNDELIVERED))
    if window == "overdue":
        stmt = stmt.where(o.due_at < now)
    else:
        stmt = stmt.where(o.due_at >= now, o.due_at < now + timedelta(hours=hours))
    if recipient_kind:
        stmt = stmt.where(o.recipient_kind == recipient_kind)
    return stmt.order_by(o.due_at, o.id)


def due_obligations(
    conn: Connection,
    *,
    actor: Actor,
    window: str = "overdue",
    hours: int = 48,
    recipient_kind: str | None = None,
    limit: int | None = 50,
    offset: int = 0,
    now: datetime | None = None,
) -> Page[dict[str, Any]]:
    """Obligations not yet delivered (open, sent, unresolved, held): ``overdue`` (due before
    now) or due ``soon`` (within ``hours``), earliest due first. Each one shown is a ``read``
    of record type ``notice`` by ``actor``."""
    stmt = _due_stmt(window, hours, recipient_kind, now or datetime.now(UTC))
    rows, total = fetch_page(conn, stmt, limit, offset)
    shown = [_obligation(r) for r in rows]
    actor.record(conn, "read", "notice", (r["id"] for r in shown))
    return Page(shown, total, limit, offset)


def _unresolved_stmt() -> Select[Any]:
    o, p = obligations.c, detention_periods.c
    return (
        select(
            obligations,
            p.institution,
            p.status.label("period_status"),
            p.planned_release_date,
        )
        .select_from(obligations.outerjoin(detention_periods, p.period_ref == o.period_ref))
        .where(o.status == "unresolved")
        .order_by(o.due_at, o.id)
    )


def _unresolved(r: Any) -> dict[str, Any]:
    return {
        **_obligation(r),
        "institution": r.institution,
        "period_status": r.period_status,
        "planned_release_date": r.planned_release_date,
    }


def unresolved_recipients(
    conn: Connection,
    *,
    actor: Actor,
    limit: int | None = 50,
    offset: int = 0,
) -> Page[dict[str, Any]]:
    """Obligations without a known recipient (municipality), earliest due first, with their
    period's institution, status and planned release date: what an operator needs to ask the
    prison for the municipality. Each one shown is a ``read`` of record type ``notice``."""
    rows, total = fetch_page(conn, _unresolved_stmt(), limit, offset)
    shown = [_unresolved(r) for r in rows]
    actor.record(conn, "read", "notice", (r["id"] for r in shown))
    return Page(shown, total, limit, offset)


def unresolved_recipient(
    conn: Connection, obligation_id: int, *, actor: Actor
) -> dict[str, Any] | None:
    """One obligation waiting for its recipient (None when it is not, or not there); a
    ``read`` of record type ``notice``."""
    row = conn.execute(_unresolved_stmt().where(obligations.c.id == obligation_id)).first()
    if row is None:
        return None
    actor.record(conn, "read", "notice", [row.id])
    return _unresolved(row)


class NamingError(ValueError):
    """The municipality cannot be named by a message (the reason says what to do instead)."""


def naming_message(
    conn: Connection, obligation_id: int, municipality: str, now: datetime | None = None
) -> dict[str, Any]:
    """The feed message (from Justid, ``JUSTID-JD``) that names the return municipality of an
    unresolved obligation's period: a ``release_date_set`` with the period's current planned
    release date, so only the municipality changes. Applied through ``intake.deliver`` like
    any message, it resolves the period's obligations (``docs/rules.md``). A period that has
    ended, or has no planned date, cannot take it: the prison must correct its message."""
    now = now or datetime.now(UTC)
    code = refdata().resolve_municipality(municipality.strip().upper())
    if code is None:
        raise NamingError(f"[{municipality}] is not a municipality code (GM and four digits)")
    found = conn.execute(
        select(obligations.c.status, obligations.c.period_ref).where(
            obligations.c.id == obligation_id
        )
    ).first()
    if found is None or found.status != "unresolved":
        raise NamingError(f"obligation [{obligation_id}] is not waiting for its recipient")
    p = detention_periods.c
    period = conn.execute(
        select(
            p.period_ref, p.status, p.planned_release_date, persons.c.bsn, persons.c.prison_number
        )
        .join(persons, persons.c.id == p.person_id)
        .where(p.period_ref == found.period_ref)
    ).first()
    if period is None:
        raise NamingError(f"period [{found.period_ref}] is not in the store")
    if period.status in ("released", "deceased"):
        raise NamingError(
            f"period [{period.period_ref}] has ended ({period.status}): the prison corrects its "
            "release message with the return municipality"
        )
    if period.planned_release_date is None:
        raise NamingError(
            f"period [{period.period_ref}] has no planned release date: the prison sends it "
            "with the return municipality"
        )
    person = {k: v for k, v in (("bsn", period.bsn), ("prison_number", period.prison_number)) if v}
    stamp = now.astimezone(UTC)
    return {
        "feed_version": 1,
        "event_id": f"{JUSTID}:naming:{obligation_id}:{stamp.strftime('%Y%m%dT%H%M%S%f')}",
        "source": JUSTID,
        "occurred_at": stamp.isoformat(),
        "kind": "release_date_set",
        "person": person,
        "period": period.period_ref,
        "planned_release_date": date.isoformat(period.planned_release_date),
        "return_municipality": code,
    }


# --- dead letters -----------------------------------------------------------------------------


def _dead_stmt(channel: str | None) -> Select[Any]:
    d, o = deliveries.c, obligations.c
    stmt = (
        select(
            d.id,
            d.obligation_id,
            d.notice,
            d.channel,
            d.attempts,
            d.last_error,
            d.created_at,
            o.rule_id,
            o.period_ref,
            o.recipient_kind,
            o.recipient_ref,
            o.due_at,
        )
        .join(obligations, o.id == d.obligation_id)
        .where(d.status == "dead")
        .order_by(d.id.desc())
    )
    return stmt.where(d.channel == channel) if channel else stmt


def dead_letters(
    conn: Connection,
    *,
    actor: Actor,
    channel: str | None = None,
    limit: int | None = 50,
    offset: int = 0,
) -> Page[dict[str, Any]]:
    """Deliveries given up on (``dead``), newest first, with their obligation's rule, period
    and recipient and the last error. Each one shown is a ``read`` of record type
    ``delivery``."""
    rows, total = fetch_page(conn, _dead_stmt(channel), limit, offset)
    shown = [dict(r._mapping) for r in rows]
    actor.record(conn, "read", "delivery", (r["id"] for r in shown))
    return Page(shown, total, limit, offset)


# --- how much is waiting ------------------------------------------------------------------------


def _count(conn: Connection, stmt: Select[Any]) -> int:
    return int(
        conn.execute(select(func.count()).select_from(stmt.order_by(None).subquery())).scalar_one()
    )


def summary(conn: Connection, now: datetime | None = None, *, hours: int = 48) -> dict[str, int]:
    """How many of each list are waiting (counts only, nobody named: no audit row): open
    bursts, overdue and soon-due obligations, unresolved recipients, dead letters, open
    reconciliation gaps."""
    now = now or datetime.now(UTC)
    open_gaps = select(alerts.c.id).where(alerts.c.status == "open", alerts.c.kind.in_(ALERT_KINDS))
    bursts = select(alerts.c.id).where(alerts.c.status == "open", alerts.c.kind == "burst")
    return {
        "bursts": _count(conn, bursts),
        "overdue": _count(conn, _due_stmt("overdue", hours, None, now)),
        "soon": _count(conn, _due_stmt("soon", hours, None, now)),
        "unresolved": _count(conn, _unresolved_stmt()),
        "dead": _count(conn, _dead_stmt(None)),
        "gaps": _count(conn, open_gaps),
    }


# --- the reconciliation -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReconcileStatus:
    """The reconciliation's open gaps per kind, and its last run in the audit log."""

    open_gaps: dict[str, int]
    last_run_at: datetime | None
    last_run_by: str | None
    last_run: dict[str, Any]  # the counts the run recorded


def reconcile_status(conn: Connection) -> ReconcileStatus:
    """Open reconciliation alerts by kind (every kind listed, 0 when none) and the last run
    recorded as a job in the audit log (a run from the portal or ``terugkeer reconcile``)."""
    counts: dict[str, int] = dict(
        conn.execute(
            select(alerts.c.kind, func.count())
            .where(alerts.c.status == "open", alerts.c.kind.in_(ALERT_KINDS))
            .group_by(alerts.c.kind)
        ).all()
    )
    last = conn.execute(
        select(audit_log.c.at, audit_log.c.actor, audit_log.c.details)
        .where(audit_log.c.record_type == JOB, audit_log.c.record_id == "reconcile")
        .order_by(audit_log.c.id.desc())
        .limit(1)
    ).first()
    return ReconcileStatus(
        open_gaps={k: int(counts.get(k, 0)) for k in ALERT_KINDS},
        last_run_at=None if last is None else last.at,
        last_run_by=None if last is None else last.actor,
        last_run={} if last is None else json.loads(last.details),
    )


def gap_alerts(
    conn: Connection,
    *,
    actor: Actor,
    kind: str | None = None,
    limit: int | None = 50,
    offset: int = 0,
) -> Page[Any]:
    """The reconciliation's open gaps (alerts), oldest first, one kind or all. Each one shown
    is a ``read`` of record type ``alert`` (as ``notify alerts`` reads them)."""
    if kind is not None and kind not in ALERT_KINDS:
        raise ValueError(f"unknown gap kind [{kind}]; use one of {', '.join(ALERT_KINDS)}")
    stmt = (
        select(alerts)
        .where(alerts.c.status == "open", alerts.c.kind.in_([kind] if kind else ALERT_KINDS))
        .order_by(alerts.c.id)
    )
    rows, total = fetch_page(conn, stmt, limit, offset)
    actor.record(conn, "read", "alert", ((r.id, {"kind": r.kind}) for r in rows))
    return Page(rows, total, limit, offset)


# --- backfill preview ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BackfillPreview:
    """What ``backfill(since)`` would create now: the missing obligations caused since the
    day, and how many missing ones it would leave alone (caused before)."""

    since: datetime | None
    missing: int
    before_since: int
    items: Sequence[dict[str, Any]]


def backfill_preview(
    conn: Connection, since: datetime | None, now: datetime | None = None
) -> BackfillPreview:
    """The reconciliation's missing obligations since ``since`` (as ``backfill`` chooses
    them; None: all, whatever their date), inside the caller's transaction, writing nothing:
    each with its rule, period, recipient and the due time the facts give; the backfill sends
    them marked late."""
    if since is not None and since.tzinfo is None:
        raise ValueError(f"naive datetime [{since.isoformat()}]: give the time with its zone")
    now = now or datetime.now(UTC)
    found = find_gaps(conn, now)
    chosen = [
        g for g in found.missing if since is None or g.event_at is None or g.event_at >= since
    ]
    items = [
        {
            "key": g.key,
            "rule_id": g.rule_id,
            "period_ref": g.period_ref,
            "occurrence": g.occurrence,
            "recipient_kind": g.recipient_kind,
            "recipient_ref": g.recipient_ref,
            "due_at": g.due_at,
            "status": g.status,  # voided: the backfill reopens it
            "event_at": g.event_at,
        }
        for g in chosen
    ]
    return BackfillPreview(since, len(found.missing), len(found.missing) - len(chosen), items)
