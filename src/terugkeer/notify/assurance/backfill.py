"""Backfill after a fault, and the dispatcher's view of stored periods.

``backfill`` creates the obligations that the independent reconciliation finds missing (for
events since a date) through the normal writing path, ``obligations.apply_evaluation`` with
``backfilled=True``: each is marked late ("alsnog") and its notice is queued in the outbox in
the same transaction. Where the dispatcher's rule code, run over the period's stored events,
produces the same obligation (same key and recipient), its version is written, with its facts;
otherwise the obligation is written as the reconciliation computed it, and the report says so.

``explain_period`` shows the dispatcher's evaluation of one stored period (which rules fired
for which event, and why not), and ``list_obligations`` lists stored obligations; both serve
the command line (``terugkeer notify explain``, ``terugkeer notify obligations``).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, select, update

from terugkeer.db.bulk import among, chunks
from terugkeer.detention.parse import parse_line
from terugkeer.detention.tables import detention_periods, feed_events
from terugkeer.domain import render
from terugkeer.domain.codes import DETENTION_KINDS, EventKind
from terugkeer.domain.refdata import refdata
from terugkeer.notify.assurance.reconcile import (
    VOIDED,
    Gap,
    ReconcileReport,
    find_gaps,
    reconcile,
    record_alerts,
    shared,
)
from terugkeer.notify.rules.evaluate import Evaluation, Happening, Required, evaluate_period
from terugkeer.notify.rules.obligations import apply_evaluation, period_facts
from terugkeer.notify.rules.ruleset import RuleSet, default_rules
from terugkeer.notify.tables import obligations
from terugkeer.security.actor import Actor

STATUSES = ("open", "sent", "delivered", "acknowledged", "voided", "unresolved", "held")
PLANNING_KINDS = (EventKind.INTAKE.value, EventKind.RELEASE_DATE_SET.value)


# -- the dispatcher's view of stored periods ------------------------------------------------


@dataclass(slots=True)
class _Stored:
    happenings: list[Happening] = field(default_factory=list)
    known_at: datetime | None = None
    cause: str = ""


def _stored_events(conn: Connection, refs: Sequence[str]) -> dict[str, _Stored]:
    """Each period's non-withdrawn detention events, as the rules see them, in event order."""
    rd = refdata()
    kinds = sorted(k.value for k in DETENTION_KINDS)
    rows: dict[str, list[Any]] = defaultdict(list)
    for chunk in chunks(list(refs)):
        for r in conn.execute(
            select(
                feed_events.c.period_ref,
                feed_events.c.event_id,
                feed_events.c.kind,
                feed_events.c.occurred_at,
                feed_events.c.body,
            ).where(
                among(conn, feed_events.c.period_ref, chunk),
                feed_events.c.kind.in_(kinds),
                feed_events.c.withdrawn_by.is_(None),
            )
        ):
            rows[r.period_ref].append(r)
    out: dict[str, _Stored] = {}
    for ref, found in rows.items():
        found.sort(key=lambda r: (r.occurred_at, r.event_id))
        stored = _Stored()
        for r in found:
            place = None
            if r.kind in (EventKind.LEAVE_START.value, EventKind.LEAVE_GRANTED.value):
                place = parse_line(r.body, rd=rd).fields.get("leave_municipality")
            stored.happenings.append(Happening(r.event_id, r.kind, r.occurred_at, place))
            if r.kind in PLANNING_KINDS:
                stored.known_at, stored.cause = r.occurred_at, r.event_id
        out[ref] = stored
    return out


@dataclass(slots=True)
class PeriodView:
    happenings: list[Happening]
    evaluation: Evaluation


def dispatcher_view(conn: Connection, rules: RuleSet, refs: Sequence[str]) -> dict[str, PeriodView]:
    """The dispatcher's evaluation of each period over all its stored events at once, with
    the period's facts as stored now (not as they were when each event arrived)."""
    facts = period_facts(conn, list(refs))
    events = _stored_events(conn, list(facts))
    out: dict[str, PeriodView] = {}
    for ref, f in facts.items():
        stored = events.get(ref, _Stored())
        evaluation = evaluate_period(rules, f, stored.happenings)
        out[ref] = PeriodView(stored.happenings, evaluation)
    return out


# -- backfill -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BackfillItem:
    key: str
    rule_id: str
    period_ref: str
    occurrence: str
    recipient_kind: str
    recipient_ref: str | None
    due_at: datetime | None
    action: str  # created, reopened
    source: str  # dispatcher: the rule code gives it too; reconciliation: only the SQL does
    note: str = ""

    def as_json(self) -> dict[str, Any]:
        return render.as_json(self)


@dataclass
class BackfillReport:
    since: datetime
    now: datetime
    missing: int = 0  # missing obligations found, whatever their date
    before_since: int = 0  # of them, caused before ``since``: left alone
    created: int = 0
    reopened: int = 0  # existed but voided
    notices: int = 0  # notices queued
    unresolved: int = 0  # created without a known recipient: in the operator's queue
    remaining: int = 0  # missing since ``since`` after the backfill (should be 0)
    items: list[BackfillItem] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        out = render.as_json(self)
        items = out.pop("items")
        by_source = {
            s: sum(1 for i in self.items if i.source == s) for s in ("dispatcher", "reconciliation")
        }
        return {**out, "by_source": by_source, "items": items}


def _from_gap(rules: RuleSet, gap: Gap, now: datetime) -> Required:
    """An obligation as the reconciliation computed it, for the normal writing path."""
    rule = rules.get(gap.rule_id)
    return Required(
        rule=rule,
        rule_version=rules.version,
        period_ref=gap.period_ref,
        occurrence=gap.occurrence,
        recipient_ref=gap.recipient_ref,
        slot=(gap.recipient_ref or "-") if rule.recipient == "victim" else "-",
        cause_event_id=gap.cause_event_id or "",
        planned_for=gap.planned_for,
        due_at=gap.due_at or now,
        late=True,
        late_reason="required by the stored facts but never created",
        facts={
            "source": "reconciliation",
            "scope": rule.scope,
            "event_at": None if gap.event_at is None else gap.event_at.isoformat(),
        },
    )


def backfill(
    engine: Engine,
    since: datetime,
    now: datetime | None = None,
    *,
    rules: RuleSet | None = None,
    actor: Actor | None = None,
) -> BackfillReport:
    """Create the obligations missing for what happened since ``since``, marked late
    ("alsnog"), with their notices queued; one transaction. The reconciliation's alerts are
    brought up to date in the same transaction, and so is the audit row of each obligation
    created (``create``) or reopened (``update``) by ``actor`` (record type ``notice``)."""
    if since.tzinfo is None:
        raise ValueError(f"naive datetime [{since.isoformat()}]: give the time with its zone")
    now = (now or datetime.now(UTC)).astimezone(UTC)
    rules = rules or default_rules()
    report = BackfillReport(since=since.astimezone(UTC), now=now)
    with engine.begin() as conn:
        # nothing written yet: the comparison may run on other connections too
        found = find_gaps(conn, now, rules, apart=shared(engine))
        report.missing = len(found.missing)
        chosen = [g for g in found.missing if g.event_at is None or g.event_at >= report.since]
        report.before_since = report.missing - len(chosen)
        refs = sorted({g.period_ref for g in chosen})
        produced: dict[str, Required] = {}
        for view in dispatcher_view(conn, rules, refs).values():
            for r in view.evaluation.required:
                produced.setdefault(r.key, r)  # the writer, too, keeps the first
        required: list[Required] = []
        for gap in chosen:
            mine = produced.get(gap.key)
            source, note = "dispatcher", ""
            if mine is None or mine.recipient_ref != gap.recipient_ref:
                note = (
                    "the dispatcher's rule code does not produce it"
                    if mine is None
                    else f"the dispatcher's rule code names recipient {mine.recipient_ref}"
                )
                mine, source = _from_gap(rules, gap, now), "reconciliation"
            if mine.key != gap.key:  # pragma: no cover - both build keys the same way
                raise RuntimeError(f"backfill built key [{mine.key}] for [{gap.key}]")
            action = "reopened" if gap.status == VOIDED else "created"
            if action == "reopened":
                # the writer's reopen keeps the late flag it is given: mark it here
                mine.late = True
                mine.late_reason = f"alsnog: reopened by backfill at {now.isoformat()}" + (
                    f"; {mine.late_reason}" if mine.late_reason else ""
                )
            required.append(mine)
            report.items.append(
                BackfillItem(
                    gap.key,
                    gap.rule_id,
                    gap.period_ref,
                    gap.occurrence,
                    gap.recipient_kind,
                    mine.recipient_ref,
                    mine.due_at,
                    action,
                    source,
                    note,
                )
            )
        counts = apply_evaluation(conn, Evaluation(required=required), refs, now, backfilled=True)
        reopened = [i.key for i in report.items if i.action == "reopened"]
        for chunk in chunks(reopened):
            conn.execute(
                update(obligations)
                .where(among(conn, obligations.c.key, chunk))
                .values(backfilled=True)
            )
        report.created = counts.created
        report.reopened = len(reopened)
        report.notices = counts.notices
        report.unresolved = sum(1 for r in required if r.recipient_ref is None)
        after = find_gaps(conn, now, rules)
        done = {i.key for i in report.items}
        report.remaining = sum(1 for g in after.missing if g.key in done)
        record_alerts(conn, after, now)
        if actor is not None:
            _audit_backfill(conn, actor, report, since.date().isoformat())
    return report


def _audit_backfill(conn: Connection, actor: Actor, report: BackfillReport, since: str) -> None:
    ids: dict[str, int] = {}
    for chunk in chunks([i.key for i in report.items]):
        for key, obligation_id in conn.execute(
            select(obligations.c.key, obligations.c.id).where(among(conn, obligations.c.key, chunk))
        ):
            ids[key] = obligation_id
    for action, done in (("create", "created"), ("update", "reopened")):
        actor.record(
            conn,
            action,
            "notice",
            (
                (ids[i.key], {"backfilled": True, "since": since})
                for i in report.items
                if i.action == done and i.key in ids
            ),
        )


GAP_KINDS = ("missing", "overdue", "unacknowledged", "unresolved", "extra", "recipient_differs")


def check(
    engine: Engine, *, actor: Actor, shown: int | None = None, now: datetime | None = None
) -> ReconcileReport:
    """The reconciliation (:func:`reconcile`) as a job of ``actor``: one audit row per run (the
    counts), and a ``read`` of each detention period among the first ``shown`` gaps of each
    kind (all when None), the ones its caller shows; not one row per obligation checked."""
    report = reconcile(engine, now)
    gaps = [g for kind in GAP_KINDS for g in getattr(report, kind)[:shown]]
    per_period: dict[str, int] = {}
    for g in gaps:
        per_period[g.period_ref] = per_period.get(g.period_ref, 0) + 1
    with engine.begin() as conn:
        actor.job(conn, "reconcile", details={"ok": report.ok, **report.counts})
        actor.record(
            conn, "read", "detention_period", ((p, {"gaps": n}) for p, n in per_period.items())
        )
    return report


# -- reading back ---------------------------------------------------------------------------


class NotFoundError(LookupError):
    """No such period."""


@dataclass
class Explanation:
    """The dispatcher's view of one period: per event the rules that looked at it; what it
    requires now; what it voids; and what is stored."""

    period_ref: str
    status: str
    rules_version: str
    trace: list[dict[str, Any]]
    required: list[dict[str, Any]]
    voids: list[dict[str, Any]]
    stored: list[dict[str, Any]]

    def as_json(self) -> dict[str, Any]:
        return render.as_json(self)


def explain_period(
    engine: Engine, period_ref: str, rules: RuleSet | None = None, *, actor: Actor
) -> Explanation:
    """Why the dispatcher did what it did for one period; a ``read`` row of the period by
    ``actor``, committed before the explanation is returned."""
    rules = rules or default_rules()
    with engine.begin() as conn:
        status = conn.execute(
            select(detention_periods.c.status).where(detention_periods.c.period_ref == period_ref)
        ).scalar_one_or_none()
        if status is None:
            raise NotFoundError(f"no detention period [{period_ref}]")
        view = dispatcher_view(conn, rules, [period_ref])[period_ref]
        stored = {o["key"]: o for o in _obligation_rows(conn, period_ref, None, None)}
        actor.record(conn, "read", "detention_period", [period_ref])
    evaluation = view.evaluation
    events = {h.event_id: h for h in view.happenings}
    return Explanation(
        period_ref=period_ref,
        status=status,
        rules_version=rules.version,
        trace=[
            {
                "event_id": event_id,
                "kind": events[event_id].kind if event_id in events else None,
                "occurred_at": (
                    events[event_id].occurred_at.isoformat() if event_id in events else None
                ),
                "rule_id": rule_id,
                "fired": fired,
                "why": why,
            }
            for event_id, rule_id, fired, why in evaluation.trace
        ],
        required=[
            {
                "key": r.key,
                "rule_id": r.rule.id,
                "occurrence": r.occurrence,
                "recipient_kind": r.rule.recipient,
                "recipient_ref": r.recipient_ref,
                "cause_event_id": r.cause_event_id,
                "due_at": r.due_at.isoformat(),
                "late": r.late,
                "late_reason": r.late_reason,
                "why": r.facts.get("scope"),
                "stored_status": stored[r.key]["status"] if r.key in stored else None,
                "stored_recipient": stored[r.key]["recipient_ref"] if r.key in stored else None,
            }
            for r in _unique(evaluation.required)
        ],
        voids=[
            {"rule_id": rule_id, "occurrence": occurrence, "why": why}
            for _, rule_id, occurrence, why in evaluation.voids
        ],
        stored=list(stored.values()),
    )


def _unique(required: list[Required]) -> list[Required]:
    seen: dict[str, Required] = {}
    for r in required:
        seen.setdefault(r.key, r)
    return list(seen.values())


def list_obligations(
    engine: Engine,
    period_ref: str | None = None,
    status: str | None = None,
    limit: int | None = None,
    *,
    actor: Actor,
) -> list[dict[str, Any]]:
    """Stored obligations, newest period first within due order; ``status`` one of STATUSES.
    Each obligation shown is a ``read`` row of record type ``notice`` (its id is the notice's
    reference) by ``actor``, committed before the list is returned."""
    if status is not None and status not in STATUSES:
        raise ValueError(f"unknown status [{status}]; known: {', '.join(STATUSES)}")
    with engine.begin() as conn:
        rows = _obligation_rows(conn, period_ref, status, limit)
        actor.record(conn, "read", "notice", (r["id"] for r in rows))
    return rows


def _obligation_rows(
    conn: Connection, period_ref: str | None, status: str | None, limit: int | None
) -> list[dict[str, Any]]:
    o = obligations.c
    stmt = select(obligations).order_by(o.due_at, o.key)
    if period_ref is not None:
        stmt = stmt.where(o.period_ref == period_ref)
    if status is not None:
        stmt = stmt.where(o.status == status)
    if limit:
        stmt = stmt.limit(limit)
    return [
        {
            "id": r.id,
            "key": r.key,
            "rule_id": r.rule_id,
            "rule_version": r.rule_version,
            "period_ref": r.period_ref,
            "occurrence": r.occurrence,
            "subject": r.subject,
            "recipient_kind": r.recipient_kind,
            "recipient_ref": r.recipient_ref,
            "cause_event_id": r.cause_event_id,
            "planned_for": None if r.planned_for is None else r.planned_for.isoformat(),
            "due_at": r.due_at.isoformat(),
            "status": r.status,
            "late": r.late,
            "late_reason": r.late_reason,
            "backfilled": r.backfilled,
            "version": r.version,
            "void_reason": r.void_reason,
            "facts": json.loads(r.facts),
        }
        for r in conn.execute(stmt)
    ]
