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


@dataclass
class StoreSummary:
    persons: int = 0
    periods_by_status: dict[str, int] = field(default_factory=dict)
    events_by_kind: dict[str, int] = field(default_factory=dict)
    victims: int = 0
    reconvictions: int = 0
    quarantine_by_reason: dict[str, int] = field(default_factory=dict)

    @property
    def periods(self) -> int:
        return sum(self.periods_by_status.values())

    def as_json(self) -> dict[str, object]:
        return {
            "persons": self.persons,
            "periods": self.periods,
            "periods_by_status": self.periods_by_status,
            "events_by_kind": self.events_by_kind,
            "victims": self.victims,
            "reconvictions": self.reconvictions,
            "quarantined_open": sum(self.quarantine_by_reason.values()),
            "quarantine_by_reason": self.quarantine_by_reason,
        }


def summarise(engine: Engine) -> StoreSummary:
    with engine.connect() as conn:

        def count(table: object) -> int:
            return int(conn.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]

        def grouped(column: object) -> dict[str, int]:
            rows = conn.execute(select(column, func.count()).group_by(column).order_by(column))  # type: ignore[call-overload]
            return {str(k): int(n) for k, n in rows}

        summary = StoreSummary(
            persons=count(persons),
            periods_by_status=grouped(detention_periods.c.status),
            events_by_kind=grouped(feed_events.c.kind),
            victims=count(victims),
            reconvictions=count(reconvictions),
        )
    summary.quarantine_by_reason = count_by_reason(engine)
    return summary
