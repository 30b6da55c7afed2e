"""Steering figures per municipality for analysts (ministry, WODC, VNG): aggregates only,
never a person, with small cells suppressed (the caller passes the threshold, the monitor's
``TERUGKEER_MONITOR_MIN_CELL``): a count of people between 1 and the threshold is shown as
suppressed, and so is every figure computed from it.

Three tables, on what the caseworkers' figures already read (``queries.completeness``, the
cases and facts behind ``queries.not_in_order_at_release``, the activities behind
``queries.activity_costs``), per municipality: registration completeness per moment, the
conditions at release of returned residents, and the activities' costs. Only cases whose
consent stands count, as in the caseworkers' figures. Nothing here names a person, so nothing
is an audit row."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from sqlalchemy import Connection, func, select

from terugkeer.domain.refdata import refdata
from terugkeer.reintegration import codes, queries
from terugkeer.reintegration.codes import CONDITIONS, ConsentStatus, InOrder, Moment
from terugkeer.reintegration.scope import CaseStatus
from terugkeer.reintegration.service import current_facts
from terugkeer.reintegration.tables import activities, reintegration_cases


def shown(count: int, threshold: int) -> int | None:
    """A count of people as published: None (suppressed) when 1 to threshold - 1."""
    return None if 0 < count < threshold else count


def share(part: int | None, whole: int | None) -> float | None:
    if part is None or not whole:
        return None
    return round(part / whole, 4)


def _name(code: str) -> str:
    muni = refdata().municipalities.get(code)
    return muni.name if muni else code


@dataclass(frozen=True, slots=True)
class MomentFigure:
    moment: str
    due: int | None
    recorded: int | None
    share: float | None


@dataclass(frozen=True, slots=True)
class CompletenessRow:
    municipality: str
    name: str
    cases: int | None
    with_consent: int | None
    moments: list[MomentFigure]


def completeness(
    conn: Connection, *, min_cell: int, on: date | None = None
) -> list[CompletenessRow]:
    """``queries.completeness`` for every municipality, small cells suppressed."""
    out = []
    for c in queries.completeness(conn, None, on=on):
        moments = []
        for m in c.moments:
            due, done = shown(m.due, min_cell), shown(m.recorded, min_cell)
            moments.append(
                MomentFigure(m.moment, due, done, share(done, due) if due is not None else None)
            )
        out.append(
            CompletenessRow(
                c.municipality,
                c.name,
                shown(c.cases, min_cell),
                shown(c.with_consent, min_cell),
                moments,
            )
        )
    return out


@dataclass(frozen=True, slots=True)
class ReleaseRow:
    """Returned residents (with consent) by their conditions at release."""

    municipality: str
    name: str
    returned: int | None
    all_in_order: int | None
    not_in_order: int | None  # at least one condition not in order
    unknown: int | None  # none not in order, but at least one not recorded
    per_condition: dict[str, int | None] = field(default_factory=dict)  # not in order

    @property
    def share_not_in_order(self) -> float | None:
        return share(self.not_in_order, self.returned)


def at_release(conn: Connection, *, min_cell: int) -> list[ReleaseRow]:
    """Per municipality, the returned cases with consent by the verdict on their five
    conditions at release (as ``queries.not_in_order_at_release`` judges each case)."""
    cases = [c for c in queries._registrable(conn, None) if c.status == CaseStatus.RETURNED]
    facts = current_facts(conn, [c.id for c in cases])
    tally: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for case in cases:
        t = tally[case.municipality]
        current = facts.get(case.id, {})
        verdicts = []
        for cond in CONDITIONS:
            fact = current.get((cond.value, Moment.RELEASE.value))
            verdict = codes.in_order(cond, fact.status if fact is not None else None)
            verdicts.append(verdict)
            if verdict is InOrder.NO:
                t[cond.value] += 1
        t["returned"] += 1
        if InOrder.NO in verdicts:
            t["not_in_order"] += 1
        elif InOrder.UNKNOWN in verdicts:
            t["unknown"] += 1
        else:
            t["all_in_order"] += 1
    return [
        ReleaseRow(
            municipality=code,
            name=_name(code),
            returned=shown(t["returned"], min_cell),
            all_in_order=shown(t["all_in_order"], min_cell),
            not_in_order=shown(t["not_in_order"], min_cell),
            unknown=shown(t["unknown"], min_cell),
            per_condition={c.value: shown(t[c.value], min_cell) for c in CONDITIONS},
        )
        for code, t in sorted(tally.items())
    ]


@dataclass(frozen=True, slots=True)
class CostRow:
    municipality: str
    name: str
    activities: int | None
    cases: int | None
    cost_eur: Decimal | None
    per_case_eur: Decimal | None


def costs(
    conn: Connection, *, min_cell: int, start: date | None = None, end: date | None = None
) -> list[CostRow]:
    """Per municipality: activities (starting in [start, end]), the cases they were for and
    their costs, only for cases whose consent stands (as ``queries.activity_costs``); a
    municipality with fewer cases than the threshold shows no figures."""
    q = (
        select(
            reintegration_cases.c.municipality,
            func.count(),
            func.count(func.distinct(activities.c.case_id)),
            func.coalesce(func.sum(activities.c.cost_cents), 0),
        )
        .join(reintegration_cases, reintegration_cases.c.id == activities.c.case_id)
        .where(reintegration_cases.c.consent == ConsentStatus.GIVEN.value)
        .group_by(reintegration_cases.c.municipality)
        .order_by(reintegration_cases.c.municipality)
    )
    if start is not None:
        q = q.where(activities.c.start_date >= start)
    if end is not None:
        q = q.where(activities.c.start_date <= end)
    out = []
    for code, n_activities, n_cases, cents in conn.execute(q):
        n_cases = int(n_cases)
        hidden = shown(n_cases, min_cell) is None
        total = (Decimal(int(cents)) / 100).quantize(queries.CENT)
        out.append(
            CostRow(
                municipality=code,
                name=_name(code),
                activities=None if hidden else int(n_activities),
                cases=shown(n_cases, min_cell),
                cost_eur=None if hidden else total,
                per_case_eur=None
                if hidden or not n_cases
                else (total / n_cases).quantize(queries.CENT),
            )
        )
    return out
