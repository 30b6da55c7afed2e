"""Evaluating the rules for what one ingest batch applied, in the same transaction."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, select

from terugkeer.db.bulk import among, chunks
from terugkeer.detention.ingest import AppliedBatch, BatchHook
from terugkeer.detention.tables import feed_events
from terugkeer.domain.codes import DETENTION_KINDS, EventKind
from terugkeer.domain.events import FeedEvent
from terugkeer.notify.assurance.watch import brake_bursts
from terugkeer.notify.rules.evaluate import Evaluation, Happening, evaluate_period
from terugkeer.notify.rules.obligations import ApplyCounts, apply_evaluation, period_facts
from terugkeer.notify.rules.ruleset import RuleSet, default_rules

PLANNING_KINDS = (EventKind.INTAKE, EventKind.RELEASE_DATE_SET)


def evaluate_events(
    conn: Connection,
    events: Sequence[FeedEvent],
    withdrawn: dict[str, str],
    now: datetime,
    rules: RuleSet,
    *,
    backfilled: bool = False,
) -> ApplyCounts:
    """Evaluate the rules for ``events`` (just applied) and write the obligations."""
    by_period: dict[str, list[FeedEvent]] = defaultdict(list)
    for e in events:
        if e.period_ref:
            by_period[e.period_ref].append(e)
    targets = [t for t in withdrawn if t not in {e.event_id for e in events}]
    for chunk in chunks(targets):
        for row in conn.execute(
            select(feed_events.c.period_ref).where(among(conn, feed_events.c.event_id, chunk))
        ):
            if row.period_ref:
                by_period.setdefault(row.period_ref, [])
    if not by_period:
        return ApplyCounts()
    facts = period_facts(conn, list(by_period))
    evaluation = Evaluation()
    for ref, evs in by_period.items():
        f = facts.get(ref)
        if f is None:
            continue
        happenings = [
            Happening(e.event_id, e.kind.value, e.occurred_at, e.fields.get("leave_municipality"))
            for e in evs
            if e.kind in DETENTION_KINDS and e.event_id not in withdrawn
        ]
        planning = [e for e in evs if e.kind in PLANNING_KINDS] or evs
        cause = planning[-1] if planning else None
        known_at = cause.occurred_at if cause else f.intake_at
        sub = evaluate_period(rules, f, happenings, known_at, cause.event_id if cause else "")
        evaluation.required.extend(sub.required)
        evaluation.voids.extend(sub.voids)
    return apply_evaluation(
        conn, evaluation, list(by_period), now, withdrawn=withdrawn, backfilled=backfilled
    )


def notify_hook(rules: RuleSet | None = None) -> BatchHook:
    """The ingest hook that turns applied events into obligations and delivery rows."""

    def hook(conn: Connection, applied: AppliedBatch) -> None:
        evaluate_events(
            conn, applied.events, applied.withdrawn, applied.now, rules or default_rules()
        )
        brake_bursts(conn, applied.events, applied.now)

    return hook
