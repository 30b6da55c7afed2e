"""The dispatcher's evaluation: from a period's facts and its events to the obligations that
must exist. Pure: no database. (The reconciliation computes the same obligations by another
path, in SQL, so that a fault here is found there.)"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from terugkeer.domain.codes import RELEASES_INTO_SOCIETY, PeriodStatus
from terugkeer.notify.rules.ruleset import (
    ADULT_AGE,
    MIN_STAY_DAYS,
    SERIOUS_CATEGORIES,
    SERIOUS_TITLES,
    VICTIM_RIGHT_SENTENCE_DAYS,
    VICTIM_RIGHT_TITLES,
    Rule,
    RuleSet,
)

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
OPEN_STATUSES = (PeriodStatus.IN_CUSTODY, PeriodStatus.ON_LEAVE, PeriodStatus.ESCAPED)


@dataclass(frozen=True, slots=True)
class VictimFacts:
    victim_ref: str
    wants_information: bool
    spoke_in_court: bool
    registered_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Grant:
    """A planned leave (a ``leave_granted`` event)."""

    event_id: str
    known_at: datetime
    leave_from: datetime
    leave_municipality: str


@dataclass(frozen=True, slots=True)
class Happening:
    """One event as the rules see it."""

    event_id: str
    kind: str
    occurred_at: datetime
    leave_municipality: str | None = None


@dataclass(slots=True)
class PeriodFacts:
    """What the rules look at for one period."""

    period_ref: str
    title: str
    sentence_days: int | None
    categories: frozenset[str]
    birth_date: date | None
    intake_at: datetime
    status: str
    residence_municipality: str | None
    return_municipality: str | None
    planned_release_date: date | None
    release_kind: str | None
    ended_at: datetime | None
    victims: tuple[VictimFacts, ...] = ()
    last_event_id: str | None = None
    # escapes, recaptures and deaths on record: a victim registration that arrives late still
    # gets its notices of them (the victim counts from when they registered)
    occurrences: tuple[Happening, ...] = ()
    grants: tuple[Grant, ...] = ()


@dataclass(slots=True)
class Required:
    """An obligation that must exist."""

    rule: Rule
    rule_version: str
    period_ref: str
    occurrence: str
    recipient_ref: str | None
    slot: str
    cause_event_id: str
    planned_for: datetime | None
    due_at: datetime
    late: bool
    late_reason: str | None
    facts: dict[str, Any] = field(default_factory=dict)
    planned: bool = False  # planned_for comes from planned facts and may change

    @property
    def key(self) -> str:
        return obligation_key(self.rule.id, self.period_ref, self.occurrence, self.slot)


def obligation_key(rule_id: str, period_ref: str, occurrence: str, slot: str) -> str:
    return f"{rule_id}|{period_ref}|{occurrence}|{slot}"


# -- scope --------------------------------------------------------------------------------------


def qualifying_victims(f: PeriodFacts, cutoff: datetime | None = None) -> list[VictimFacts]:
    """Victims who want information and have the right to it, registered by ``cutoff`` (the
    moment of the occurrence; None: no limit, the period is open)."""
    period_right = (
        f.sentence_days is not None and f.sentence_days >= VICTIM_RIGHT_SENTENCE_DAYS
    ) or f.title in VICTIM_RIGHT_TITLES
    return [
        v
        for v in f.victims
        if v.wants_information
        and (period_right or v.spoke_in_court)
        and (cutoff is None or v.registered_at is None or v.registered_at <= cutoff)
    ]


def in_scope(rule: Rule, f: PeriodFacts, cutoff: datetime | None = None) -> tuple[bool, str]:
    """Whether the rule's persons include this period, and why (for ``notify explain``)."""
    if rule.scope == "serious":
        hits = sorted(f.categories & set(SERIOUS_CATEGORIES))
        if hits:
            return True, f"offence category {', '.join(hits)}"
        if f.title in SERIOUS_TITLES:
            return True, f"title {f.title}"
        return False, (
            f"no offence in {list(SERIOUS_CATEGORIES)} (has {sorted(f.categories)}) and title "
            f"{f.title} not in {list(SERIOUS_TITLES)}"
        )
    if rule.scope == "victims":
        victims = qualifying_victims(f, cutoff)
        if victims:
            return True, f"{len(victims)} victim(s) who want information and have the right"
        if not f.victims:
            return False, "no victim registered with the IDV"
        return False, (
            "no registered victim both wants information and has the right "
            "(sentence of 8 years or more, tbs, or spoke in court)"
        )
    # adult_stay
    if f.birth_date is not None:
        age = _age(f.birth_date, f.intake_at.astimezone(AMSTERDAM).date())
        if age < ADULT_AGE:
            return False, f"aged {age} at intake: not an adult"
    if f.ended_at is not None and f.ended_at - f.intake_at <= timedelta(days=MIN_STAY_DAYS):
        return False, f"stay ended within {MIN_STAY_DAYS} days"
    return True, "adult with a stay that may exceed 10 days"


def _age(born: date, on: date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def recipients(
    rule: Rule,
    f: PeriodFacts,
    leave_municipality: str | None = None,
    cutoff: datetime | None = None,
) -> list[tuple[str | None, str]]:
    """(recipient_ref, slot) pairs; a None ref is an unresolved recipient."""
    if rule.recipient == "idv":
        return [("OM-IDV", "-")]
    if rule.recipient == "victim":
        return [(v.victim_ref, v.victim_ref) for v in qualifying_victims(f, cutoff)]
    if rule.municipality == "leave":
        return [(leave_municipality, "-")]
    if rule.municipality == "return":
        return [(f.return_municipality or f.residence_municipality, "-")]
    return [(f.residence_municipality or f.return_municipality, "-")]


# -- timing -------------------------------------------------------------------------------------


def planned_moment(rule: Rule, day: date) -> datetime:
    return datetime.combine(day, time(rule.planned_moment_hour), AMSTERDAM).astimezone(UTC)


def _planned_due(
    rule: Rule, planned_for: datetime, known_at: datetime
) -> tuple[datetime, bool, str | None]:
    due = planned_for - timedelta(days=rule.planned_notice_days)
    if due >= known_at:
        return due, False, None
    ahead = (planned_for - known_at).total_seconds() / 86400
    reason = (
        f"known {ahead:.1f} days before the planned moment, less than the "
        f"{rule.planned_notice_days} days notice"
        if ahead > 0
        else "known only after the planned moment"
    )
    return known_at + timedelta(hours=rule.late_within_hours), True, reason


def _immediate(rule: Rule, at: datetime) -> datetime:
    return at + timedelta(hours=rule.late_within_hours)


# -- evaluation ---------------------------------------------------------------------------------


@dataclass(slots=True)
class Evaluation:
    required: list[Required] = field(default_factory=list)
    # (period, rule id, occurrence or "*") whose obligations are void, with the reason
    voids: list[tuple[str, str, str, str]] = field(default_factory=list)
    # (event id, rule id, fired, reason) for `notify explain`
    trace: list[tuple[str, str, bool, str]] = field(default_factory=list)


def evaluate_period(
    rules: RuleSet, f: PeriodFacts, happenings: list[Happening], known_at: datetime, cause: str
) -> Evaluation:
    """Obligations required for a period, given the events just applied (``happenings``) and
    its state after them. ``known_at``/``cause``: when and by which event the planned facts
    (planned release date, leave grants) became known.

    Victims count for an occurrence when registered by its moment (an escape, recapture, death
    or unannounced leave: when it happened; a granted leave: its start; a release: the
    release; any while the period is open), as in the reconciliation (docs/reconciliation.md).
    """
    out = Evaluation()
    seen = {h.event_id for h in happenings}
    for h in [*happenings, *(o for o in f.occurrences if o.event_id not in seen)]:
        for rule in rules.for_event(h.kind):
            _event_rule(rules, rule, f, h, out)
    _planned_release(rules, f, known_at, cause, out)
    _released(rules, f, out)
    _planned_leaves(rules, f, out)
    _adult_stay_ended(rules, f, out)
    return out


def _adult_stay_ended(rules: RuleSet, f: PeriodFacts, out: Evaluation) -> None:
    """A stay that ended within 10 days (or a minor) is out of the nazorg scope: void its
    intake signal and release notice."""
    for rule in rules.rules:
        if rule.scope == "adult_stay":
            ok, why = in_scope(rule, f)
            if not ok:
                out.voids.append((f.period_ref, rule.id, rule.subject, why))


def _add(
    out: Evaluation,
    rules: RuleSet,
    rule: Rule,
    f: PeriodFacts,
    occurrence: str,
    cause: str,
    planned_for: datetime | None,
    due: datetime,
    late: bool,
    late_reason: str | None,
    facts: dict[str, Any],
    leave_municipality: str | None = None,
    *,
    planned: bool = False,
    cutoff: datetime | None = None,
) -> None:
    for ref, slot in recipients(rule, f, leave_municipality, cutoff):
        out.required.append(
            Required(
                rule,
                rules.version,
                f.period_ref,
                occurrence,
                ref,
                slot,
                cause,
                planned_for,
                due,
                late,
                late_reason,
                facts,
                planned,
            )
        )


def _facts(f: PeriodFacts, why: str, **extra: Any) -> dict[str, Any]:
    return {
        "scope": why,
        "title": f.title,
        "categories": sorted(f.categories),
        "status": f.status,
        **{k: (v.isoformat() if isinstance(v, date | datetime) else v) for k, v in extra.items()},
    }


def _event_rule(rules: RuleSet, rule: Rule, f: PeriodFacts, h: Happening, out: Evaluation) -> None:
    ok, why = in_scope(rule, f, h.occurred_at)
    if rule.subject in ("escape", "recapture", "death"):
        if not ok:
            out.trace.append((h.event_id, rule.id, False, why))
            return
        occurrence = f"{rule.subject}:{h.event_id}"
        _add(
            out,
            rules,
            rule,
            f,
            occurrence,
            h.event_id,
            None,
            _immediate(rule, h.occurred_at),
            False,
            None,
            _facts(f, why, event=h.kind, occurred_at=h.occurred_at),
            cutoff=h.occurred_at,
        )
        out.trace.append((h.event_id, rule.id, True, why))
        if rule.subject == "death":
            for other in rules.rules:
                if other.subject in ("leave", "release"):
                    out.voids.append((f.period_ref, other.id, "*", "the person died"))
        return
    if rule.subject == "intake":
        if not ok:
            out.trace.append((h.event_id, rule.id, False, why))
            return
        due = _immediate(rule, f.intake_at + timedelta(days=MIN_STAY_DAYS))
        _add(
            out,
            rules,
            rule,
            f,
            "intake",
            h.event_id,
            None,
            due,
            False,
            None,
            _facts(f, why, intake_at=f.intake_at),
        )
        out.trace.append(
            (h.event_id, rule.id, True, f"{why}; signal due after {MIN_STAY_DAYS} days")
        )
        return
    if rule.subject == "leave":
        if h.kind == "leave_granted":
            out.trace.append(
                (h.event_id, rule.id, ok, why if not ok else f"{why}; planned leave, see grants")
            )
            return
        # leave_start: announced by a grant for that day, or unplanned
        if not ok:
            out.trace.append((h.event_id, rule.id, False, why))
            return
        day = h.occurred_at.astimezone(AMSTERDAM).date()
        if any(g.leave_from.astimezone(AMSTERDAM).date() == day for g in f.grants):
            out.trace.append((h.event_id, rule.id, False, "leave was announced by its grant"))
            return
        _add(
            out,
            rules,
            rule,
            f,
            f"leave:{day.isoformat()}",
            h.event_id,
            h.occurred_at,
            _immediate(rule, h.occurred_at),
            True,
            "leave without an advance grant",
            _facts(f, why, leave_start=h.occurred_at),
            h.leave_municipality,
            cutoff=h.occurred_at,
        )
        out.trace.append((h.event_id, rule.id, True, f"{why}; unplanned leave"))
        return
    # release: the obligations come from the period's state (planned or released)
    if h.kind == "release" and f.release_kind not in _INTO_SOCIETY:
        out.trace.append(
            (
                h.event_id,
                rule.id,
                False,
                f"release kind {f.release_kind} is not a release into society",
            )
        )
    elif not ok:
        out.trace.append((h.event_id, rule.id, False, why))
    elif h.kind == "release":
        out.trace.append((h.event_id, rule.id, True, f"{why}; release into society"))
    elif f.planned_release_date is None:
        out.trace.append((h.event_id, rule.id, False, "no planned release date yet"))
    else:
        out.trace.append((h.event_id, rule.id, True, f"{why}; planned release"))


_INTO_SOCIETY = frozenset(k.value for k in RELEASES_INTO_SOCIETY)
_OPEN = frozenset(s.value for s in OPEN_STATUSES)


def _planned_release(
    rules: RuleSet, f: PeriodFacts, known_at: datetime, cause: str, out: Evaluation
) -> None:
    if f.status not in _OPEN or f.planned_release_date is None:
        return
    for rule in rules.rules:
        if rule.subject != "release" or rule.timing != "planned":
            continue
        ok, why = in_scope(rule, f)
        if not ok:
            continue
        planned_for = planned_moment(rule, f.planned_release_date)
        due, late, reason = _planned_due(rule, planned_for, known_at)
        _add(
            out,
            rules,
            rule,
            f,
            "release",
            cause,
            planned_for,
            due,
            late,
            reason,
            _facts(f, why, planned_release_date=f.planned_release_date),
            planned=True,
        )


def _released(rules: RuleSet, f: PeriodFacts, out: Evaluation) -> None:
    """A release into society requires its notices, made in advance or not; a release into a
    tbs clinic, a death or a withdrawn intake voids them."""
    if f.status == PeriodStatus.RELEASED and f.release_kind not in _INTO_SOCIETY:
        for rule in rules.rules:
            if rule.subject == "release":
                out.voids.append(
                    (
                        f.period_ref,
                        rule.id,
                        "release",
                        f"release kind {f.release_kind}: not into society",
                    )
                )
        return
    if f.status in (PeriodStatus.DECEASED, PeriodStatus.WITHDRAWN):
        for rule in rules.rules:
            if rule.subject == "release":
                out.voids.append((f.period_ref, rule.id, "release", f"period {f.status}"))
        return
    if f.status != PeriodStatus.RELEASED or f.ended_at is None:
        return
    for rule in rules.rules:
        if rule.subject != "release":
            continue
        ok, why = in_scope(rule, f, f.ended_at)
        if not ok:
            continue
        # An existing notice (made in advance) has the same key and stays as it is.
        _add(
            out,
            rules,
            rule,
            f,
            "release",
            f.last_event_id or "",
            f.ended_at,
            _immediate(rule, f.ended_at),
            True,
            f"release ({f.release_kind}) without a notice in advance",
            _facts(f, why, released_at=f.ended_at, release_kind=f.release_kind),
            cutoff=f.ended_at,
        )


def _planned_leaves(rules: RuleSet, f: PeriodFacts, out: Evaluation) -> None:
    """Every granted leave of a period (also one that has ended since) needs its notices;
    none once the person died or the intake was withdrawn."""
    if not f.grants or f.status in (PeriodStatus.DECEASED, PeriodStatus.WITHDRAWN):
        return
    for rule in rules.rules:
        if rule.subject != "leave":
            continue
        for g in f.grants:
            ok, why = in_scope(rule, f, g.leave_from)
            if not ok:
                continue
            day = g.leave_from.astimezone(AMSTERDAM).date()
            due, late, reason = _planned_due(rule, g.leave_from, g.known_at)
            _add(
                out,
                rules,
                rule,
                f,
                f"leave:{day.isoformat()}",
                g.event_id,
                g.leave_from,
                due,
                late,
                reason,
                _facts(f, why, leave_from=g.leave_from),
                g.leave_municipality,
                planned=True,
                cutoff=g.leave_from,
            )
