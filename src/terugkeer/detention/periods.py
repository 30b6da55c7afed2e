"""The pure fold from detention events to the state of a detention period.

A period's state is a function of its (non-withdrawn) events in event-time order. Ingest
applies an event incrementally when it sorts after everything already applied, and otherwise
rebuilds the period from all its events; both give the same result because both use
:func:`apply_event`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from operator import attrgetter
from typing import Any

from terugkeer.domain.codes import (
    ENDED_STATUSES,
    EventKind,
    PeriodStatus,
)
from terugkeer.domain.events import FeedError, FeedEvent


@dataclass(frozen=True, slots=True)
class Offence:
    category: str
    statutory_max_years: int


@dataclass(slots=True)
class PeriodState:
    period_ref: str
    person_key: str
    source: str
    institution: str
    title: str
    sentence_days: int | None
    offences: tuple[Offence, ...]
    residence_municipality: str | None
    return_municipality: str | None
    planned_release_date: date | None
    intake_at: datetime
    status: str
    leave_municipality: str | None
    release_kind: str | None
    ended_at: datetime | None
    last_event_at: datetime
    last_event_id: str
    event_count: int
    birth_date: date | None = None
    sex: str | None = None

    def copy(self) -> PeriodState:
        """A shallow copy (every field is immutable); faster than ``copy.copy``."""
        return PeriodState(
            self.period_ref,
            self.person_key,
            self.source,
            self.institution,
            self.title,
            self.sentence_days,
            self.offences,
            self.residence_municipality,
            self.return_municipality,
            self.planned_release_date,
            self.intake_at,
            self.status,
            self.leave_municipality,
            self.release_kind,
            self.ended_at,
            self.last_event_at,
            self.last_event_id,
            self.event_count,
            self.birth_date,
            self.sex,
        )

    def comparable(self) -> dict[str, Any]:
        """Everything stored about the period, for equality checks in tests."""
        return {k: getattr(self, k) for k in STORED_FIELDS}


STATE_COLUMNS = (
    "source",
    "institution",
    "title",
    "sentence_days",
    "residence_municipality",
    "return_municipality",
    "planned_release_date",
    "intake_at",
    "status",
    "leave_municipality",
    "release_kind",
    "ended_at",
    "last_event_at",
    "last_event_id",
    "event_count",
)
"""The fields of :class:`PeriodState` stored as the columns of ``detention_periods`` by the
same name; besides them a period row has its ``period_ref`` and ``person_id``."""
PERIOD_COLUMNS = ("period_ref", "person_id", *STATE_COLUMNS)
"""The columns of ``detention_periods`` that ingest writes (``id`` aside), in order."""
STORED_FIELDS = ("period_ref", "person_key", "offences", *STATE_COLUMNS)
"""Everything stored about a period, as fields of :class:`PeriodState`."""

state_values: Callable[[PeriodState], tuple[Any, ...]] = attrgetter(*STATE_COLUMNS)
"""The values of :data:`STATE_COLUMNS` of a state, in order."""


def _sequence(event: FeedEvent, message: str) -> FeedError:
    return FeedError(
        "sequence",
        f"event [{event.event_id}] ({event.kind}): {message}",
        field="kind",
        value=event.kind.value,
    )


_ALLOWED_FROM: dict[EventKind, frozenset[PeriodStatus]] = {
    EventKind.RELEASE_DATE_SET: frozenset(
        {PeriodStatus.IN_CUSTODY, PeriodStatus.ON_LEAVE, PeriodStatus.ESCAPED}
    ),
    EventKind.LEAVE_GRANTED: frozenset({PeriodStatus.IN_CUSTODY, PeriodStatus.ON_LEAVE}),
    EventKind.LEAVE_START: frozenset({PeriodStatus.IN_CUSTODY}),
    EventKind.LEAVE_END: frozenset({PeriodStatus.ON_LEAVE}),
    EventKind.ESCAPE: frozenset({PeriodStatus.IN_CUSTODY, PeriodStatus.ON_LEAVE}),
    EventKind.RECAPTURE: frozenset({PeriodStatus.ESCAPED}),
    EventKind.TRANSFER: frozenset({PeriodStatus.IN_CUSTODY}),
    EventKind.TITLE_CHANGE: frozenset(
        {PeriodStatus.IN_CUSTODY, PeriodStatus.ON_LEAVE, PeriodStatus.ESCAPED}
    ),
    EventKind.RELEASE: frozenset({PeriodStatus.IN_CUSTODY, PeriodStatus.ON_LEAVE}),
    EventKind.DEATH: frozenset(
        {PeriodStatus.IN_CUSTODY, PeriodStatus.ON_LEAVE, PeriodStatus.ESCAPED}
    ),
}


def apply_event(state: PeriodState | None, event: FeedEvent) -> PeriodState:
    """The state after ``event``; raises :class:`FeedError` (reason ``sequence`` or
    ``dead_person``) when the event cannot follow ``state``. Never mutates ``state``."""
    kind = event.kind
    f = event.fields
    if kind is EventKind.INTAKE:
        if state is not None:
            raise _sequence(event, f"period [{event.period_ref}] already has an intake")
        return PeriodState(
            period_ref=event.period_ref or "",
            person_key=event.person_key,
            source=event.source,
            institution=event.source,
            title=f["title"].value,
            sentence_days=f.get("sentence_days"),
            offences=tuple(
                Offence(o["category"].value, o["statutory_max_years"]) for o in f["offences"]
            ),
            residence_municipality=f.get("residence_municipality"),
            return_municipality=f.get("return_municipality") or f.get("residence_municipality"),
            planned_release_date=f.get("planned_release_date"),
            intake_at=event.occurred_at,
            status=PeriodStatus.IN_CUSTODY.value,
            leave_municipality=None,
            release_kind=None,
            ended_at=None,
            last_event_at=event.occurred_at,
            last_event_id=event.event_id,
            event_count=1,
            birth_date=f.get("birth_date"),
            sex=f["sex"].value if "sex" in f else None,
        )
    if state is None:
        raise FeedError(
            "sequence",
            f"event [{event.event_id}] ({kind}) comes before the intake of period [{event.period_ref}]",
            field="occurred_at",
            value=event.occurred_at.isoformat(),
        )
    if event.person_key != state.person_key:
        raise FeedError(
            "person_mismatch",
            f"event [{event.event_id}] names another person than the intake of period [{state.period_ref}]",
            field="person",
        )
    status = PeriodStatus(state.status)
    if status is PeriodStatus.DECEASED:
        raise FeedError(
            "dead_person",
            f"event [{event.event_id}] ({kind}) follows the death recorded for this period",
            field="occurred_at",
            value=event.occurred_at.isoformat(),
        )
    if status in ENDED_STATUSES:
        raise _sequence(event, f"period [{state.period_ref}] has already ended ({status})")
    allowed = _ALLOWED_FROM[kind]
    if status not in allowed:
        raise _sequence(event, f"cannot follow status [{status}]")
    new = state.copy()
    new.last_event_at = event.occurred_at
    new.last_event_id = event.event_id
    new.event_count = state.event_count + 1
    if kind is EventKind.RELEASE_DATE_SET:
        new.planned_release_date = f["planned_release_date"]
        if "return_municipality" in f:
            new.return_municipality = f["return_municipality"]
    elif kind is EventKind.LEAVE_START:
        new.status = PeriodStatus.ON_LEAVE.value
        new.leave_municipality = f["leave_municipality"]
    elif kind is EventKind.LEAVE_END or kind is EventKind.RECAPTURE:
        new.status = PeriodStatus.IN_CUSTODY.value
    elif kind is EventKind.ESCAPE:
        new.status = PeriodStatus.ESCAPED.value
    elif kind is EventKind.TRANSFER:
        new.institution = f["to_institution"]
    elif kind is EventKind.TITLE_CHANGE:
        new.title = f["title"].value
        if "sentence_days" in f:
            new.sentence_days = f["sentence_days"]
    elif kind is EventKind.RELEASE:
        new.status = PeriodStatus.RELEASED.value
        new.release_kind = f["release_kind"].value
        new.ended_at = event.occurred_at
        if "return_municipality" in f:
            new.return_municipality = f["return_municipality"]
    elif kind is EventKind.DEATH:
        new.status = PeriodStatus.DECEASED.value
        new.ended_at = event.occurred_at
    # LEAVE_GRANTED changes nothing in the state: the grant is itself the fact notify reads.
    return new


def fold(events: Iterable[FeedEvent]) -> PeriodState | None:
    """The state from a period's events, in any order, skipping withdrawn ones by the caller."""
    state: PeriodState | None = None
    for event in sorted(events, key=FeedEvent.sort_key):
        state = apply_event(state, event)
    return state
