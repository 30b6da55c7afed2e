"""Counts for the demo and the operator: periods, events and quarantine."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Engine, func, select

from terugkeer.detention.quarantine import count_by_reason
from terugkeer.detention.tables import (
    detention_periods,
    feed_events,
    persons,
    reconvictions,
    victims,
)
from terugkeer.domain import render


@dataclass
class StoreSummary:
    persons: int = 0
    periods: int = 0  # the sum of periods_by_status
    periods_by_status: dict[str, int] = field(default_factory=dict)
    events_by_kind: dict[str, int] = field(default_factory=dict)
    victims: int = 0
    reconvictions: int = 0
    quarantined_open: int = 0  # the sum of quarantine_by_reason
    quarantine_by_reason: dict[str, int] = field(default_factory=dict)

    def as_json(self) -> dict[str, object]:
        return render.as_json(self)


def summarise(engine: Engine) -> StoreSummary:
    with engine.connect() as conn:

        def count(table: object) -> int:
            return int(conn.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]

        def grouped(column: object) -> dict[str, int]:
            rows = conn.execute(select(column, func.count()).group_by(column).order_by(column))  # type: ignore[call-overload]
            return {str(k): int(n) for k, n in rows}

        by_status = grouped(detention_periods.c.status)
        summary = StoreSummary(
            persons=count(persons),
            periods=sum(by_status.values()),
            periods_by_status=by_status,
            events_by_kind=grouped(feed_events.c.kind),
            victims=count(victims),
            reconvictions=count(reconvictions),
        )
    summary.quarantine_by_reason = count_by_reason(engine)
    summary.quarantined_open = sum(summary.quarantine_by_reason.values())
    return summary
