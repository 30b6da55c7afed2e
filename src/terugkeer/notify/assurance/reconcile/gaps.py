"""The gaps a reconciliation reports besides the comparison's: what caused a missing
obligation and when it was due, and the delivery gaps (overdue, unacknowledged, unresolved)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, case, literal, select, union_all

from terugkeer.db.bulk import among, chunks
from terugkeer.detention.tables import feed_events
from terugkeer.domain.codes import EventKind
from terugkeer.notify.assurance.reconcile.compare import Row, utc
from terugkeer.notify.assurance.reconcile.report import (
    DEFAULT_ACK_WINDOW,
    UNDELIVERED,
    VOIDED,
    Gap,
    ReconcileReport,
    iso,
)
from terugkeer.notify.rules.ruleset import MIN_STAY_DAYS, RECIPIENTS, Rule, RuleSet
from terugkeer.notify.tables import obligations

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
_KINDS = frozenset(RECIPIENTS)

e = feed_events.c


def _planning(conn: Connection, refs: Iterable[str]) -> dict[str, tuple[str, datetime]]:
    """Per period: the event that last set its planned release date (a ``release_date_set``,
    else the intake), with when it happened."""
    latest: dict[str, tuple[int, datetime, str]] = {}
    rank = {EventKind.INTAKE.value: 0, EventKind.RELEASE_DATE_SET.value: 1}
    for chunk in chunks(sorted(set(refs))):
        for r in conn.execute(
            select(e.period_ref, e.kind, e.event_id, e.occurred_at).where(
                among(conn, e.period_ref, chunk),
                e.kind.in_(tuple(rank)),
                e.withdrawn_by.is_(None),
            )
        ):
            candidate = (rank[r.kind], utc(r.occurred_at), r.event_id)
            if r.period_ref not in latest or candidate > latest[r.period_ref]:
                latest[r.period_ref] = candidate
    return {ref: (event_id, at) for ref, (_, at, event_id) in latest.items()}


def _intakes(conn: Connection, refs: Iterable[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for chunk in chunks(sorted(set(refs))):
        for r in conn.execute(
            select(e.period_ref, e.event_id).where(
                among(conn, e.period_ref, chunk),
                e.kind == EventKind.INTAKE.value,
                e.withdrawn_by.is_(None),
            )
        ):
            out[r.period_ref] = r.event_id
    return out


def missing_gaps(conn: Connection, rules: RuleSet, rows: list[Row]) -> list[Gap]:
    """Gaps for the missing obligations, with the due time the rules give and what caused them
    (looked up in bulk for these periods only)."""
    planning = _planning(conn, (r.period_ref for r in rows if r.source in ("planned", "released")))
    intakes = _intakes(conn, (r.period_ref for r in rows if r.source == "intake"))
    stored = {
        row.key: row.status
        for chunk in chunks([r.key for r in rows])
        for row in conn.execute(
            select(obligations.c.key, obligations.c.status).where(
                among(conn, obligations.c.key, chunk)
            )
        )
    }
    out: list[Gap] = []
    for row in rows:
        try:
            rule = rules.get(row.rule_id)
        except KeyError:  # pragma: no cover - the SQL only names rules of this rule set
            continue
        if row.source == "planned":
            row.cause_event_id, row.event_at = planning.get(row.period_ref, (None, None))
        elif row.source == "intake":
            row.cause_event_id = intakes.get(row.period_ref)
        planned_for, due = timing(rule, row, planning.get(row.period_ref, (None, None))[1])
        status = stored.get(row.key)
        if status is not None and status != VOIDED:
            continue  # written since the comparison read the obligations: not missing
        out.append(
            Gap(
                "missing_obligation",
                row.key,
                row.rule_id,
                row.period_ref,
                row.occurrence,
                row.recipient_kind,
                row.recipient_ref,
                due,
                status,
                None,
                row.cause_event_id,
                basis_at(row),
                planned_for=planned_for,
                note="exists but voided" if status == VOIDED else "",
            )
        )
    return out


def basis_at(row: Row) -> datetime | None:
    """When the obligation became required: its event, or the registration of the victim
    that brought the period into scope, whichever was later."""
    times = [t for t in (row.event_at, row.scope_known_at) if t is not None]
    return max(times) if times else None


def timing(
    rule: Rule, row: Row, planned_known_at: datetime | None
) -> tuple[datetime | None, datetime | None]:
    """(the moment notified about, the due time) by the reconciliation's own reading of the
    rule's timing, for an obligation found missing: the latest moment its notice should have
    gone out."""
    late = timedelta(hours=rule.late_within_hours)

    def planned(moment: datetime, known: datetime) -> datetime:
        due = moment - timedelta(days=rule.planned_notice_days)
        return due if due >= known else known + late

    moment: datetime | None = None
    due: datetime | None = None
    if row.source in ("planned", "released"):
        candidates: list[datetime] = []
        if row.planned_release_date is not None:
            moment = datetime.combine(
                row.planned_release_date, time(rule.planned_moment_hour), AMSTERDAM
            ).astimezone(UTC)
            known = planned_known_at or row.intake_at
            if known is not None:
                candidates.append(planned(moment, known))
        if row.source == "released" and row.ended_at is not None:
            moment = row.ended_at
            candidates.append(row.ended_at + late)
        due = min(candidates) if candidates else None
    elif row.source == "intake" and row.intake_at is not None:
        due = row.intake_at + timedelta(days=MIN_STAY_DAYS) + late
    elif row.source == "grant" and row.leave_from and row.event_at is not None:
        moment = datetime.fromisoformat(row.leave_from).astimezone(UTC)
        due = planned(moment, row.event_at)
    elif row.event_at is not None:
        if row.source == "leave_start":
            moment = row.event_at
        due = row.event_at + late
    if due is not None and row.scope_known_at is not None and row.scope_known_at > due:
        due = row.scope_known_at + late  # the victim registered after the notice was due
    return moment, due


def delivery_gaps(conn: Connection, rules: RuleSet, now: datetime, report: ReconcileReport) -> None:
    o = obligations.c
    columns = (
        o.id,
        o.key,
        o.rule_id,
        o.period_ref,
        o.occurrence,
        o.recipient_kind,
        o.recipient_ref,
        o.due_at,
        o.status,
        o.cause_event_id,
    )

    def gap(kind: str, r: Any, note: str = "") -> Gap:
        return Gap(
            kind,
            r.key,
            r.rule_id,
            r.period_ref,
            r.occurrence,
            r.recipient_kind,
            r.recipient_ref,
            r.due_at,
            r.status,
            r.id,
            r.cause_event_id,
            note=note,
        )

    for r in conn.execute(
        select(*columns).where(o.status.in_(UNDELIVERED), o.due_at < now).order_by(o.due_at, o.key)
    ):
        report.overdue.append(gap("overdue", r, f"status {r.status}"))
    # each rule's window as a cut-off time: delivered before it and not acknowledged
    windows: dict[str, datetime] = {
        rule.id: now - timedelta(hours=rule.ack_window_hours) for rule in rules.rules
    }
    cutoff = case(
        *(
            (o.rule_id == rule_id, literal(at, o.delivered_at.type))
            for rule_id, at in windows.items()
        ),
        else_=literal(now - DEFAULT_ACK_WINDOW, o.delivered_at.type),
    )
    for r in conn.execute(
        select(*columns, o.delivered_at)
        .where(
            o.status == "delivered",
            o.acknowledged_at.is_(None),
            o.delivered_at.is_not(None),
            o.delivered_at < cutoff,
        )
        .order_by(o.delivered_at, o.key)
    ):
        report.unacknowledged.append(gap("unacknowledged", r, f"delivered {iso(r.delivered_at)}"))
    # status unresolved (through the status index); and, should a writer ever leave one in
    # another status without a recipient, those too (through the recipient index)
    unresolved = select(*columns).where(o.status == "unresolved")
    unnamed = select(*columns).where(
        o.recipient_kind.in_(sorted({r.recipient for r in rules.rules} | _KINDS)),
        o.recipient_ref.is_(None),
        o.status.not_in(("unresolved", VOIDED)),
    )
    found = union_all(unresolved, unnamed).subquery()
    for r in conn.execute(select(found).order_by(found.c.due_at, found.c.key)):
        report.unresolved.append(gap("unresolved", r, "no known recipient"))
