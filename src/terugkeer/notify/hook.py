"""Evaluating the rules for what one ingest batch applied, in the same transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, select

from terugkeer.db.bulk import among, chunks
from terugkeer.detention.ingest import AppliedBatch, BatchHook
from terugkeer.detention.tables import feed_events
from terugkeer.domain.events import FeedEvent
from terugkeer.notify.assurance.watch import brake_bursts
from terugkeer.notify.rules.evaluate import Evaluation, evaluate_period
from terugkeer.notify.rules.facts import period_facts
from terugkeer.notify.rules.obligations import ApplyCounts, apply_evaluation
from terugkeer.notify.rules.ruleset import RuleSet, default_rules


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
    # the rules read each touched period's facts from the store, not the batch's events
    periods = dict.fromkeys(e.period_ref for e in events if e.period_ref)
    applied = {e.event_id for e in events}
    targets = [t for t in withdrawn if t not in applied]
    for chunk in chunks(targets):
        for row in conn.execute(
            select(feed_events.c.period_ref).where(among(conn, feed_events.c.event_id, chunk))
        ):
            if row.period_ref:
                periods.setdefault(row.period_ref)
    if not periods:
        return ApplyCounts()
    facts = period_facts(conn, list(periods))
    evaluation = Evaluation()
    for f in facts.values():
        sub = evaluate_period(rules, f)
        evaluation.required.extend(sub.required)
        evaluation.voids.extend(sub.voids)
    return apply_evaluation(
        conn,
        evaluation,
        list(periods),
        now,
        withdrawn=withdrawn,
        backfilled=backfilled,
        complete=facts.keys(),
    )


def notify_hook(rules: RuleSet | None = None) -> BatchHook:
    """The ingest hook that turns applied events into obligations and delivery rows."""

    def hook(conn: Connection, applied: AppliedBatch) -> None:
        evaluate_events(
            conn, applied.events, applied.withdrawn, applied.now, rules or default_rules()
        )
        brake_bursts(conn, applied.events, applied.now)

    return hook
