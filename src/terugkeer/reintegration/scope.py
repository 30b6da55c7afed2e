"""Which detention periods get a case, and in which state. Pure: no database, so the synthetic
generator applies the very same rule to its ground truth.

A case is opened for a *reintegration candidate*: an adult (18 or older at intake, or age
unknown) whose stay exceeds 10 days (the D&R plan starts for stays over 10 days; the same scope
as the ``nazorg`` notification rules), once a release is planned or has happened into society,
in the municipality the person returns to (else the one they lived in).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from zoneinfo import ZoneInfo

from terugkeer.domain.codes import RELEASES_INTO_SOCIETY, PeriodStatus

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
MIN_STAY_DAYS = 10  # a stay of more than this many days
ADULT_AGE = 18


class CaseStatus(StrEnum):
    PLANNED = "planned"  # release planned, still in detention (terugkeer verwacht)
    RETURNED = "returned"  # released into society (teruggekeerd)
    CANCELLED = "cancelled"  # the period ended otherwise: death, into tbs, intake withdrawn


def local_date(moment: datetime) -> date:
    return moment.astimezone(AMSTERDAM).date()


def today() -> date:
    return datetime.now(UTC).astimezone(AMSTERDAM).date()


def age_on(birth: date, day: date) -> int:
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


@dataclass(frozen=True, slots=True)
class PeriodView:
    """What the rule looks at."""

    status: str
    release_kind: str | None
    intake_date: date
    end_date: date | None  # the local date of the release (or death)
    planned_release_date: date | None
    birth_date: date | None
    return_municipality: str | None
    residence_municipality: str | None


def case_status(p: PeriodView) -> CaseStatus | None:
    """The state a case of this period has; None: no case (yet)."""
    if p.status in (PeriodStatus.WITHDRAWN, PeriodStatus.DECEASED):
        return CaseStatus.CANCELLED
    if p.status == PeriodStatus.RELEASED:
        if p.release_kind in RELEASES_INTO_SOCIETY:
            return CaseStatus.RETURNED
        return CaseStatus.CANCELLED
    if p.planned_release_date is not None:
        return CaseStatus.PLANNED
    return None


def municipality(p: PeriodView) -> str | None:
    return p.return_municipality or p.residence_municipality


def skip_reason(p: PeriodView) -> str | None:
    """Why no *new* case is opened for this period; None: open one."""
    status = case_status(p)
    if status is None:
        return "no_release_planned"
    if status is CaseStatus.CANCELLED:
        return "not_into_society"
    if p.birth_date is not None and age_on(p.birth_date, p.intake_date) < ADULT_AGE:
        return "juvenile"
    end = p.end_date if status is CaseStatus.RETURNED else p.planned_release_date
    if end is None or (end - p.intake_date).days <= MIN_STAY_DAYS:
        return "short_stay"
    if municipality(p) is None:
        return "no_municipality"
    return None
