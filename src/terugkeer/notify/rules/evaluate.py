"""The dispatcher's evaluation: from a period's facts and its events to the obligations that
must exist. Pure: no database. (The reconciliation computes the same obligations by another
path, in SQL, so that a fault here is found there.)"""

from __future__ import annotations

from collections.abc import Callable, Sequence
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
    # The period's history in event time (non-withdrawn events), so that the rules see the
    # same facts whatever the batching or the arrival order of the feed:
    # escapes, recaptures, deaths and leave starts on record, in event order
    occurrences: tuple[Happening, ...] = ()
    grants: tuple[Grant, ...] = ()
    intake_event_id: str = ""
    release_event_id: str | None = None
    # since when the current planned release date is known, and the event that made it known
    planned_since: datetime | None = None
    planned_cause: str | None = None
    # since when a residence or return municipality is known (None: not yet)
    municipality_since: datetime | None = None
    # the intake of the person's next period, when they came back into detention after this one
    back_in_detention_at: datetime | None = None


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
) -> list[tuple[str | None, str, datetime | None]]:
    """(recipient_ref, slot, known since) triples; a None ref is an unresolved recipient.
    ``known since`` is when the recipient (a municipality) or the reason to tell them (a
    qualifying victim's registration) became known; None when it is no later than the facts."""
    if rule.recipient == "idv":
        found = qualifying_victims(f, cutoff)
        first = [v.registered_at for v in found if v.registered_at is not None]
        return [("OM-IDV", "-", min(first) if len(first) == len(found) and first else None)]
    if rule.recipient == "victim":
        return [
            (v.victim_ref, v.victim_ref, v.registered_at) for v in qualifying_victims(f, cutoff)
        ]
    if rule.municipality == "leave":
        return [(leave_municipality, "-", None)]
    if rule.municipality == "return":
        return [(f.return_municipality or f.residence_municipality, "-", f.municipality_since)]
    return [(f.residence_municipality or f.return_municipality, "-", f.municipality_since)]


# -- timing -------------------------------------------------------------------------------------


def planned_moment(rule: Rule, day: date) -> datetime:
    return datetime.combine(day, time(rule.planned_moment_hour), AMSTERDAM).astimezone(UTC)


def _stamp(at: datetime) -> str:
    return at.astimezone(AMSTERDAM).strftime("%Y-%m-%d %H:%M")


@dataclass(frozen=True, slots=True)
class Planned:
    """Notice due ``planned_notice_days`` before ``moment``, the fact known at ``known_at``."""

    moment: datetime
    known_at: datetime

    def resolve(
        self, rule: Rule, recipient_since: datetime | None
    ) -> tuple[datetime, bool, str | None]:
        known = max(self.known_at, recipient_since or self.known_at)
        due = self.moment - timedelta(days=rule.planned_notice_days)
        if due >= known:
            return due, False, None
        ahead = (self.moment - known).total_seconds() / 86400
        reason = (
            f"known {ahead:.1f} days before the planned moment, less than the "
            f"{rule.planned_notice_days} days notice"
            if ahead > 0
            else "known only after the planned moment"
        )
        if known > self.known_at:
            reason += f" (recipient known only at {_stamp(known)})"
        return known + timedelta(hours=rule.late_within_hours), True, reason


@dataclass(frozen=True, slots=True)
class Immediate:
    """Notice due within ``late_within_hours`` of ``at`` (late with ``reason`` if given)."""

    at: datetime
    reason: str | None = None

    def resolve(
        self, rule: Rule, recipient_since: datetime | None
    ) -> tuple[datetime, bool, str | None]:
        known = max(self.at, recipient_since or self.at)
        due = known + timedelta(hours=rule.late_within_hours)
        if known > self.at:
            late_by = f"recipient known only at {_stamp(known)}"
            return due, True, f"{self.reason}; {late_by}" if self.reason else late_by
        return due, self.reason is not None, self.reason


Timing = Planned | Immediate


# -- evaluation ---------------------------------------------------------------------------------


@dataclass(slots=True)
class Evaluation:
    required: list[Required] = field(default_factory=list)
    # (period, rule id, occurrence or "*") whose obligations are void, with the reason
    voids: list[tuple[str, str, str, str]] = field(default_factory=list)
    # (event id, rule id, fired, reason) for `notify explain`
    trace: list[tuple[str, str, bool, str]] = field(default_factory=list)


OCCURRENCE_KINDS = frozenset({"escape", "recapture", "death", "leave_start"})


def evaluate_period(
    rules: RuleSet, f: PeriodFacts, happenings: Sequence[Happening] = ()
) -> Evaluation:
    """The obligations a period requires, from its facts alone: its state now and its history
    in event time (``PeriodFacts``). The same facts give the same obligations, whatever the
    batching or the arrival order of the feed (docs/rules.md, "Timing and lateness").

    ``happenings``: other events to explain (``notify explain``); they change nothing.
    Victims count for an occurrence when registered by its moment (an escape, recapture, death
    or unannounced leave: when it happened; a granted leave: its start; any while the period is
    open; a release: also after it, unless the person is back in detention by then), as in the
    reconciliation (docs/reconciliation.md).
    """
    out = Evaluation()
    for h in f.occurrences:
        for rule in rules.for_event(h.kind):
            _occurrence_rule(rules, rule, f, h, out)
    _intake_signal(rules, f, out)
    _planned_release(rules, f, out)
    _released(rules, f, out)
    _planned_leaves(rules, f, out)
    _adult_stay_ended(rules, f, out)
    for h in happenings:
        if h.kind not in OCCURRENCE_KINDS:
            for rule in rules.for_event(h.kind):
                out.trace.append((h.event_id, rule.id, *_why(rule, f, h)))
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
    when: Timing,
    facts: dict[str, Any],
    leave_municipality: str | None = None,
    *,
    planned: bool = False,
    cutoff: datetime | None = None,
    skip: Callable[[datetime | None], bool] | None = None,
) -> None:
    for ref, slot, since in recipients(rule, f, leave_municipality, cutoff):
        if skip is not None and skip(since):
            continue
        due, late, late_reason = when.resolve(rule, since)
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


def _announced(f: PeriodFacts, h: Happening) -> bool:
    """A leave start announced by a grant for its day, granted before it (in event time)."""
    day = h.occurred_at.astimezone(AMSTERDAM).date()
    return any(
        g.leave_from.astimezone(AMSTERDAM).date() == day and g.known_at <= h.occurred_at
        for g in f.grants
    )


def _occurrence_rule(
    rules: RuleSet, rule: Rule, f: PeriodFacts, h: Happening, out: Evaluation
) -> None:
    """Escapes, recaptures and deaths, and leaves that started without an advance grant."""
    ok, why = in_scope(rule, f, h.occurred_at)
    if not ok:
        out.trace.append((h.event_id, rule.id, False, why))
        return
    if rule.subject == "leave":
        if _announced(f, h):
            out.trace.append((h.event_id, rule.id, False, "leave was announced by its grant"))
            return
        day = h.occurred_at.astimezone(AMSTERDAM).date()
        _add(
            out,
            rules,
            rule,
            f,
            f"leave:{day.isoformat()}",
            h.event_id,
            h.occurred_at,
            Immediate(h.occurred_at, "leave without an advance grant"),
            _facts(f, why, leave_start=h.occurred_at),
            h.leave_municipality,
            cutoff=h.occurred_at,
        )
        out.trace.append((h.event_id, rule.id, True, f"{why}; unplanned leave"))
        return
    _add(
        out,
        rules,
        rule,
        f,
        f"{rule.subject}:{h.event_id}",
        h.event_id,
        None,
        Immediate(h.occurred_at),
        _facts(f, why, event=h.kind, occurred_at=h.occurred_at),
        cutoff=h.occurred_at,
    )
    out.trace.append((h.event_id, rule.id, True, why))
    if rule.subject == "death":
        for other in rules.rules:
            if other.subject in ("leave", "release"):
                out.voids.append((f.period_ref, other.id, "*", "the person died"))


def _intake_signal(rules: RuleSet, f: PeriodFacts, out: Evaluation) -> None:
    """The start-of-detention signal, due once the stay reaches 10 days; none (and voided)
    when the intake was withdrawn: the detention never happened."""
    for rule in rules.rules:
        if rule.subject == "intake" and f.status == PeriodStatus.WITHDRAWN:
            out.voids.append((f.period_ref, rule.id, "intake", "the intake was withdrawn"))
            continue
        if rule.subject != "intake" or not in_scope(rule, f)[0]:
            continue
        why = in_scope(rule, f)[1]
        _add(
            out,
            rules,
            rule,
            f,
            "intake",
            f.intake_event_id,
            None,
            Immediate(f.intake_at + timedelta(days=MIN_STAY_DAYS)),
            _facts(f, why, intake_at=f.intake_at),
        )


def _why(rule: Rule, f: PeriodFacts, h: Happening) -> tuple[bool, str]:
    """Why a rule looked at an event that is not itself an occurrence (for the trace)."""
    ok, why = in_scope(rule, f, None if rule.subject == "release" else h.occurred_at)
    if not ok:
        return False, why
    if rule.subject == "intake":
        return True, f"{why}; signal due after {MIN_STAY_DAYS} days"
    if rule.subject == "leave":
        return True, f"{why}; planned leave, see grants"
    if h.kind == "release" and f.release_kind not in _INTO_SOCIETY:
        return False, f"release kind {f.release_kind} is not a release into society"
    if h.kind == "release":
        return True, f"{why}; release into society"
    if f.planned_release_date is None:
        return False, "no planned release date yet"
    return True, f"{why}; planned release"


_INTO_SOCIETY = frozenset(k.value for k in RELEASES_INTO_SOCIETY)
_OPEN = frozenset(s.value for s in OPEN_STATUSES)


def _planned_release(rules: RuleSet, f: PeriodFacts, out: Evaluation) -> None:
    if f.status not in _OPEN or f.planned_release_date is None:
        return
    for rule in rules.rules:
        if rule.subject != "release" or rule.timing != "planned":
            continue
        ok, why = in_scope(rule, f)
        if not ok:
            continue
        moment = planned_moment(rule, f.planned_release_date)
        _add(
            out,
            rules,
            rule,
            f,
            "release",
            f.planned_cause or f.intake_event_id,
            moment,
            Planned(moment, f.planned_since or f.intake_at),
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
    ended_at = f.ended_at
    for rule in rules.rules:
        if rule.subject != "release":
            continue
        ok, why = in_scope(rule, f)  # victims count also when registered after the release
        if not ok:
            continue
        planned_for, cause, when = _release_timing(rule, f, ended_at)
        _add(
            out,
            rules,
            rule,
            f,
            "release",
            cause,
            planned_for,
            when,
            _facts(f, why, released_at=ended_at, release_kind=f.release_kind),
            planned=True,
            skip=lambda since: (
                f.back_in_detention_at is not None
                and since is not None
                and since >= f.back_in_detention_at
            ),
        )


def _release_timing(rule: Rule, f: PeriodFacts, ended_at: datetime) -> tuple[datetime, str, Timing]:
    """(the moment told, the cause, its timing) of a release into society: the planned
    notice when the release came on the planned date known before it; a late notice of the
    real moment when there was none, or the person left on another day than told."""
    cause = f.release_event_id or f.last_event_id or ""
    planned_day, since = f.planned_release_date, f.planned_since
    if planned_day is None or since is None or since >= ended_at or rule.timing != "planned":
        reason = f"release ({f.release_kind}) without a notice in advance"
        return ended_at, cause, Immediate(ended_at, reason)
    day = ended_at.astimezone(AMSTERDAM).date()
    if day == planned_day:
        moment = planned_moment(rule, planned_day)
        return moment, f.planned_cause or cause, Planned(moment, since)
    reason = (
        f"released on {day.isoformat()} ({f.release_kind}), "
        f"not on the planned {planned_day.isoformat()}"
    )
    return ended_at, cause, Immediate(ended_at, reason)


def _planned_leaves(rules: RuleSet, f: PeriodFacts, out: Evaluation) -> None:
    """Every granted leave of a period (also one that has ended since) needs its notices;
    none once the person died or the intake was withdrawn."""
    if f.status in (PeriodStatus.DECEASED, PeriodStatus.WITHDRAWN):
        reason = "the person died" if f.status == PeriodStatus.DECEASED else "period withdrawn"
        for rule in rules.rules:
            if rule.subject == "leave":
                out.voids.append((f.period_ref, rule.id, "*", reason))
        return
    if not f.grants:
        return
    for rule in rules.rules:
        if rule.subject != "leave":
            continue
        for g in f.grants:
            ok, why = in_scope(rule, f, g.leave_from)
            if not ok:
                continue
            day = g.leave_from.astimezone(AMSTERDAM).date()
            _add(
                out,
                rules,
                rule,
                f,
                f"leave:{day.isoformat()}",
                g.event_id,
                g.leave_from,
                Planned(g.leave_from, g.known_at),
                _facts(f, why, leave_from=g.leave_from),
                g.leave_municipality,
                planned=True,
                cutoff=g.leave_from,
            )
