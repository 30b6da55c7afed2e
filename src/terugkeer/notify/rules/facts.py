"""The facts the rules look at: each period's state and its history in event time, read
from the store for the periods a batch touched (``period_facts``) or built from a list of
events (``facts_from_events``, for ``notify explain``'s replay)."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, select

from terugkeer.db.bulk import among, chunks, unindexed
from terugkeer.detention.periods import PeriodState
from terugkeer.detention.tables import (
    detention_periods,
    feed_events,
    period_offences,
    persons,
    victims,
)
from terugkeer.domain.codes import PeriodStatus
from terugkeer.domain.events import KIND_RANK
from terugkeer.domain.refdata import refdata
from terugkeer.notify.rules.evaluate import (
    Grant,
    Happening,
    PeriodFacts,
    VictimFacts,
)
from terugkeer.security.crypto import open_body


def period_facts(conn: Connection, refs: Sequence[str]) -> dict[str, PeriodFacts]:
    """The facts the rules look at, for the given periods."""
    out: dict[str, PeriodFacts] = {}
    ids: dict[int, str] = {}
    persons_of: dict[str, int] = {}
    # Each person read by its key (a scalar subquery, not a join): only the batch's rows,
    # however many persons are stored (issue 12; tests/detention/test_query_plans.py).
    birth_date = (
        select(persons.c.birth_date)
        .where(persons.c.id == detention_periods.c.person_id)
        .scalar_subquery()
        .label("birth_date")
    )
    for chunk in chunks(list(refs)):
        for r in conn.execute(
            select(detention_periods, birth_date).where(
                among(conn, detention_periods.c.period_ref, chunk)
            )
        ):
            ids[r.id] = r.period_ref
            persons_of[r.period_ref] = r.person_id
            out[r.period_ref] = PeriodFacts(
                period_ref=r.period_ref,
                title=r.title,
                sentence_days=r.sentence_days,
                categories=frozenset(),
                birth_date=r.birth_date,
                intake_at=r.intake_at,
                status=r.status,
                residence_municipality=r.residence_municipality,
                return_municipality=r.return_municipality,
                planned_release_date=r.planned_release_date,
                release_kind=r.release_kind,
                ended_at=r.ended_at,
                last_event_id=r.last_event_id,
            )
    categories: dict[str, set[str]] = defaultdict(set)
    found: dict[str, list[VictimFacts]] = defaultdict(list)
    for chunk in chunks(list(ids)):
        for o in conn.execute(
            select(period_offences.c.period_id, period_offences.c.category).where(
                among(conn, period_offences.c.period_id, chunk)
            )
        ):
            categories[ids[o.period_id]].add(o.category)
        for v in conn.execute(
            select(
                victims.c.period_id,
                victims.c.victim_ref,
                victims.c.wants_information,
                victims.c.spoke_in_court,
                victims.c.registered_at,
            ).where(among(conn, victims.c.period_id, chunk))
        ):  # ordered here: an ORDER BY let the planner walk the whole victim_ref index
            found[ids[v.period_id]].append(
                VictimFacts(v.victim_ref, v.wants_information, v.spoke_in_court, v.registered_at)
            )
    history = _histories(conn, list(out))
    for ref, f in out.items():
        f.categories = frozenset(categories.get(ref, ()))
        f.victims = tuple(sorted(found.get(ref, ()), key=lambda v: v.victim_ref))
        h = history.get(ref)
        if h is not None:
            h.fill(f)
    _back_in_detention(conn, out, persons_of)
    return out


HISTORY_KINDS = (
    "intake",
    "release_date_set",
    "release",
    "leave_granted",
    "leave_start",
    "escape",
    "recapture",
    "death",
)
_RANK = {kind.value: rank for kind, rank in KIND_RANK.items()}


@dataclass
class _History:
    """A period's facts in event time, read from its non-withdrawn events (see PeriodFacts)."""

    grants: list[Grant] = field(default_factory=list)
    occurrences: list[Happening] = field(default_factory=list)
    intake_event_id: str = ""
    release_event_id: str | None = None
    released: bool = False
    planned: date | None = None
    planned_since: datetime | None = None
    planned_cause: str | None = None
    municipality_since: datetime | None = None

    def add(self, kind: str, event_id: str, at: datetime, body: dict[str, Any]) -> None:
        if kind in ("escape", "recapture", "death"):
            self.occurrences.append(Happening(event_id, kind, at))
            return
        if kind in ("leave_granted", "leave_start"):
            where = refdata().resolve_municipality(body["leave_municipality"])
            where = where or body["leave_municipality"]  # after mergers
            if kind == "leave_start":
                self.occurrences.append(Happening(event_id, kind, at, where))
            else:
                leave_from = datetime.fromisoformat(body["leave_from"])
                self.grants.append(Grant(event_id, at, leave_from, where))
            return
        if kind == "intake":
            self.intake_event_id = event_id
        if self.municipality_since is None and (
            body.get("residence_municipality") or body.get("return_municipality")
        ):
            self.municipality_since = at
        if kind == "release":
            self.release_event_id, self.released = event_id, True
            return
        planned = body.get("planned_release_date")
        if planned and not self.released:
            day = date.fromisoformat(planned)
            if day != self.planned:
                self.planned, self.planned_since, self.planned_cause = day, at, event_id

    def fill(self, f: PeriodFacts) -> None:
        f.grants = tuple(self.grants)
        f.occurrences = tuple(self.occurrences)
        f.intake_event_id = self.intake_event_id
        f.release_event_id = self.release_event_id
        if self.planned == f.planned_release_date:
            f.planned_since, f.planned_cause = self.planned_since, self.planned_cause
        f.municipality_since = self.municipality_since


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """One of a period's events as stored; ``body`` as kept (read it with :meth:`fields`)."""

    period_ref: str
    event_id: str
    kind: str
    occurred_at: datetime
    received_at: datetime
    body: str
    withdrawn_by: str | None = None

    def text(self) -> str:
        """The message as received (decrypted when it was stored encrypted)."""
        return open_body(self.body, self.event_id)

    def fields(self) -> dict[str, Any]:
        """The message as received, parsed as JSON."""
        parsed: dict[str, Any] = json.loads(self.text())
        return parsed


def stored_events(
    conn: Connection,
    refs: Sequence[str],
    kinds: Sequence[str] | None = HISTORY_KINDS,
    *,
    withdrawn: bool = False,
) -> dict[str, list[StoredEvent]]:
    """Each period's stored events of ``kinds`` (None: every kind) in event order (the
    fold's order: time, kind rank, event id); withdrawn ones too when ``withdrawn``. The one
    query of a period's history: the rules' facts, the backfill's view and ``notify explain``
    read it."""
    rows: dict[str, list[StoredEvent]] = defaultdict(list)
    e = feed_events.c
    for chunk in chunks(list(refs)):
        stmt = select(
            e.period_ref, e.event_id, e.kind, e.occurred_at, e.received_at, e.body, e.withdrawn_by
        ).where(among(conn, e.period_ref, chunk))
        if kinds is not None:
            stmt = stmt.where(unindexed(e.kind).in_(kinds))  # by period_ref's index
        if not withdrawn:
            stmt = stmt.where(e.withdrawn_by.is_(None))
        for r in conn.execute(stmt):
            rows[r.period_ref].append(StoredEvent(*r))
    for found in rows.values():
        found.sort(key=lambda r: (r.occurred_at, _RANK.get(r.kind, len(_RANK)), r.event_id))
    return dict(rows)


def history_of(events: Sequence[StoredEvent]) -> _History:
    """A period's history from its non-withdrawn events, in event order."""
    h = _History()
    for r in events:
        if r.kind in HISTORY_KINDS:
            body = {} if r.kind in ("escape", "recapture", "death") else r.fields()
            h.add(r.kind, r.event_id, r.occurred_at, body)
    return h


def _histories(conn: Connection, refs: Sequence[str]) -> dict[str, _History]:
    """Each period's history in event order (the fold's order: time, kind rank, event id)."""
    return {ref: history_of(found) for ref, found in stored_events(conn, refs).items()}


def facts_from_events(
    state: PeriodState,
    events: Sequence[StoredEvent],
    *,
    victims: Sequence[VictimFacts] = (),
    birth_date: date | None = None,
    back_in_detention_at: datetime | None = None,
) -> PeriodFacts:
    """The facts the rules look at for a period in ``state`` (the fold of ``events``), from
    its non-withdrawn ``events`` in event order, as :func:`period_facts` reads them from the
    store: ``notify explain`` replays a period event by event with it."""
    f = PeriodFacts(
        period_ref=state.period_ref,
        title=state.title,
        sentence_days=state.sentence_days,
        categories=frozenset(o.category for o in state.offences),
        birth_date=birth_date if birth_date is not None else state.birth_date,
        intake_at=state.intake_at,
        status=state.status,
        residence_municipality=state.residence_municipality,
        return_municipality=state.return_municipality,
        planned_release_date=state.planned_release_date,
        release_kind=state.release_kind,
        ended_at=state.ended_at,
        last_event_id=state.last_event_id,
        victims=tuple(victims),
        back_in_detention_at=back_in_detention_at,
    )
    history_of(events).fill(f)
    return f


def _back_in_detention(
    conn: Connection, facts: dict[str, PeriodFacts], persons_of: dict[str, int]
) -> None:
    """For a released period with a victim registered after the release: the intake of the
    person's next period, if any (a victim who registers then hears of no past release)."""
    wanted = {
        ref: (f, f.ended_at)
        for ref, f in facts.items()
        if f.ended_at is not None
        and any(v.registered_at is not None and v.registered_at > f.ended_at for v in f.victims)
    }
    if not wanted:
        return
    intakes: dict[int, list[datetime]] = defaultdict(list)
    ids = sorted({persons_of[ref] for ref in wanted})
    for chunk in chunks(ids):
        for r in conn.execute(
            select(detention_periods.c.person_id, detention_periods.c.intake_at).where(
                among(conn, detention_periods.c.person_id, chunk),
                detention_periods.c.status != PeriodStatus.WITHDRAWN.value,  # never happened
            )
        ):
            intakes[r.person_id].append(r.intake_at)
    for ref, (f, ended) in wanted.items():
        after = [at for at in intakes[persons_of[ref]] if ended is not None and at > ended]
        f.back_in_detention_at = min(after) if after else None
