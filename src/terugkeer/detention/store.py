"""Reading detention periods back from the store, and checking them against their events."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy import Connection, select

from terugkeer.db.tables import detention_periods, feed_events, period_offences, persons
from terugkeer.detention.periods import Offence, PeriodState, fold
from terugkeer.domain.codes import DETENTION_KINDS, PeriodStatus
from terugkeer.domain.refdata import refdata
from terugkeer.feed.parse import FeedEvent, parse_line

IN_CHUNK = 900  # bound parameters per IN (...) query


def chunks(seq: Sequence[Any], size: int = IN_CHUNK) -> Iterable[Sequence[Any]]:
    for i in range(0, len(seq), size):
        yield seq[i : i + size]


def _state(row: Any, offences: tuple[Offence, ...]) -> PeriodState:
    return PeriodState(
        period_ref=row.period_ref,
        person_key=f"bsn:{row.bsn}" if row.bsn else f"pn:{row.prison_number}",
        source=row.source,
        institution=row.institution,
        title=row.title,
        sentence_days=row.sentence_days,
        offences=offences,
        residence_municipality=row.residence_municipality,
        return_municipality=row.return_municipality,
        planned_release_date=row.planned_release_date,
        intake_at=row.intake_at,
        status=row.status,
        leave_municipality=row.leave_municipality,
        release_kind=row.release_kind,
        ended_at=row.ended_at,
        last_event_at=row.last_event_at,
        last_event_id=row.last_event_id,
        event_count=row.event_count,
    )


def load_periods(
    conn: Connection, refs: Sequence[str] | None = None
) -> dict[str, tuple[int, int, PeriodState]]:
    """Stored periods by reference: (period id, person id, state). All periods if ``refs`` is None."""
    base = select(detention_periods, persons.c.bsn, persons.c.prison_number).join(
        persons, persons.c.id == detention_periods.c.person_id
    )
    selects = (
        [base]
        if refs is None
        else [base.where(detention_periods.c.period_ref.in_(c)) for c in chunks(refs)]
    )
    out: dict[str, tuple[int, int, PeriodState]] = {}
    for stmt in selects:
        rows = conn.execute(stmt).all()
        offences: dict[int, list[Offence]] = defaultdict(list)
        ids = [r.id for r in rows]
        for chunk in chunks(ids):
            for o in conn.execute(
                select(period_offences)
                .where(period_offences.c.period_id.in_(chunk))
                .order_by(period_offences.c.period_id, period_offences.c.position)
            ):
                offences[o.period_id].append(Offence(o.category, o.statutory_max_years))
        for r in rows:
            out[r.period_ref] = (r.id, r.person_id, _state(r, tuple(offences[r.id])))
    return out


def derive_periods(conn: Connection) -> dict[str, PeriodState]:
    """Every period recomputed from its stored, non-withdrawn events alone."""
    rd = refdata()
    events: dict[str, list[FeedEvent]] = defaultdict(list)
    withdrawn_refs: set[str] = set()
    kinds = [k.value for k in DETENTION_KINDS]
    for row in conn.execute(
        select(feed_events.c.period_ref, feed_events.c.body, feed_events.c.withdrawn_by).where(
            feed_events.c.kind.in_(kinds)
        )
    ):
        if row.withdrawn_by is None:
            events[row.period_ref].append(parse_line(row.body, rd=rd))
        else:
            withdrawn_refs.add(row.period_ref)
    out: dict[str, PeriodState] = {}
    for ref, evs in events.items():
        state = fold(evs)
        if state is not None:
            out[ref] = state
    stored = None
    for ref in (withdrawn_refs | set(events)) - set(out):
        # No intake left: the period was withdrawn; keep what was stored, marked so.
        stored = stored or load_periods(conn)
        if ref in stored:
            out[ref] = replace(stored[ref][2], status=PeriodStatus.WITHDRAWN.value)
    return out


def check_periods(conn: Connection) -> list[str]:
    """Differences between the stored periods and a rebuild from events (empty when consistent)."""
    stored = {ref: s for ref, (_, _, s) in load_periods(conn).items()}
    derived = derive_periods(conn)
    problems = []
    for ref in sorted(set(stored) | set(derived)):
        a, b = stored.get(ref), derived.get(ref)
        if a is None or b is None:
            problems.append(f"period [{ref}] is {'missing' if a is None else 'not derivable'}")
            continue
        if a.comparable() != b.comparable():
            diff = {
                k: (v, b.comparable()[k])
                for k, v in a.comparable().items()
                if v != b.comparable()[k]
            }
            problems.append(f"period [{ref}] differs from its events: {diff}")
    return problems
