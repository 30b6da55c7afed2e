"""The facts the reconciliation reads, as SQL: who is in scope, which victims count, since
when a planned date and a municipality are known, whether the person is back in detention.
The base of :class:`~terugkeer.notify.assurance.reconcile.expected.Expected`, apart only to
keep each module readable."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    DateTime,
    Integer,
    String,
    and_,
    case,
    cast,
    exists,
    false,
    func,
    literal,
    not_,
    null,
    or_,
    select,
    true,
    tuple_,
    union_all,
)
from sqlalchemy.sql.expression import CTE, Subquery

from terugkeer.detention.tables import (
    detention_periods,
    feed_events,
    period_offences,
    persons,
    victims,
)
from terugkeer.domain.codes import RELEASES_INTO_SOCIETY, EventKind, PeriodStatus
from terugkeer.domain.events import KIND_RANK
from terugkeer.domain.refdata import refdata
from terugkeer.notify.assurance.reconcile.dialect import Sql
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

OPEN_PERIOD = tuple(
    s.value for s in (PeriodStatus.IN_CUSTODY, PeriodStatus.ON_LEAVE, PeriodStatus.ESCAPED)
)
INTO_SOCIETY = tuple(sorted(k.value for k in RELEASES_INTO_SOCIETY))
LEAVE_KINDS = (EventKind.LEAVE_GRANTED.value, EventKind.LEAVE_START.value)
# Event kinds that are themselves an occurrence (escape:<id>, recapture:<id>, death:<id>).
OCCURRENCE_KINDS = (EventKind.ESCAPE.value, EventKind.RECAPTURE.value, EventKind.DEATH.value)
PERIOD_SUBJECTS = ("release", "intake")  # one occurrence per period
EVENT_SUBJECTS = ("leave", "escape", "recapture", "death")  # occurrences from events
# Events whose message may name the residence or return municipality, and those that may set
# the planned release date (docs/feed.md).
NAMING_KINDS = (
    EventKind.INTAKE.value,
    EventKind.RELEASE_DATE_SET.value,
    EventKind.RELEASE.value,
)
PLANNING_KINDS = (EventKind.INTAKE.value, EventKind.RELEASE_DATE_SET.value)
# the order of kinds at the same moment (the fold's), for events in event order
RANK = {kind.value: rank for kind, rank in KIND_RANK.items()}
RELEASED = PeriodStatus.RELEASED.value


# the columns of the tables read, by short names, for legible expressions below
p = detention_periods.c
pe = persons.c
v = victims.c
e = feed_events.c


# typed, so that PostgreSQL can match the columns of the UNION ALL
_NO_TIME: ColumnElement[Any] = cast(null(), DateTime(timezone=True))
_NO_CODE: ColumnElement[Any] = cast(null(), String)


def _text(value: str) -> ColumnElement[str]:
    return cast(literal(value), String)


def _int(value: int) -> ColumnElement[int]:
    return cast(literal(value), Integer)


def _rules_table(rules: Sequence[Rule], name: str) -> Subquery:
    """The rules as a small table (a UNION ALL of literal rows), to join with the facts."""
    rows = [
        select(
            _text(r.id).label("rule_id"),
            _text(r.recipient).label("recipient"),
            _text(r.subject).label("subject"),
            _text(r.scope).label("scope"),
            _text(r.municipality or "").label("municipality"),
            _text(r.timing).label("timing"),
            _text(f"{r.id}|").label("key_head"),
            _int(r.planned_notice_days).label("notice_days"),
            _int(r.late_within_hours).label("late_hours"),
            _int(r.planned_moment_hour).label("moment_hour"),
        )
        for r in rules
    ]
    return (union_all(*rows) if len(rows) > 1 else rows[0]).subquery(name)


def _successor(code: ColumnElement[str]) -> ColumnElement[str]:
    """A municipality code after mergers (the feed's own mapping, from the same data file)."""
    rd = refdata()
    moved = {
        old: new
        for old in rd.successor_valid_until
        if (new := rd.resolve_municipality(old)) is not None and new != old
    }
    if not moved:
        return code
    return case(moved, value=code, else_=code)


def _flag(condition: ColumnElement[bool]) -> ColumnElement[bool]:
    """A condition as a true/false column (never NULL)."""
    return case((condition, true()), else_=false())


class Clock:
    """The due time and lateness of ``docs/rules.md`` ("Timing and lateness") in SQL.

    *Immediate*: due ``late_within_hours`` after the moment; when the recipient (or the
    reason to tell them) became known only later, after that, and late. *Planned*: due
    ``planned_notice_days`` before the moment; when the fact or the recipient became known
    only after that, ``late_within_hours`` after the later of the two, and late."""

    def __init__(self, sql: Sql) -> None:
        self.sql = sql

    def immediate(
        self,
        at: ColumnElement[Any],
        at_plus_late: ColumnElement[Any],
        since: ColumnElement[Any],
        late_hours: ColumnElement[int],
        always_late: ColumnElement[bool] | None = None,
    ) -> tuple[ColumnElement[Any], ColumnElement[bool]]:
        """``at_plus_late``: ``at`` + ``late_hours``, made by the caller from a column (so
        that SQLite computes one date per row); ``since``: when the recipient became known,
        NULL when no later than the facts."""
        later = and_(since.is_not(None), since > at)
        due = case((later, self.sql.shift(since, late_hours, "hours")), else_=at_plus_late)
        late = later if always_late is None else or_(always_late, later)
        return due, _flag(late)

    def planned(
        self,
        due0: ColumnElement[Any],
        known_at: ColumnElement[Any],
        since: ColumnElement[Any],
        late_hours: ColumnElement[int],
    ) -> tuple[ColumnElement[Any], ColumnElement[bool]]:
        """``due0``: the moment less the notice days; ``known_at``: when the fact became
        known; ``since``: when the recipient became known (NULL: no later than the fact)."""
        known = self.sql.later(known_at, since)
        on_time = due0 >= known
        due = case((on_time, due0), else_=self.sql.shift(known, late_hours, "hours"))
        return due, _flag(not_(on_time))


class Facts:
    """The reconciliation's reading of a period's facts, in SQL."""

    def __init__(self, sql: Sql, rules: RuleSet, period_ids: Sequence[int] | None = None) -> None:
        self.sql = sql
        self.clock = Clock(sql)
        self.rules = rules
        self.period_ids = period_ids
        self.detail = period_ids is not None
        self._planning: CTE | None = None

    def _only(self, period_id: ColumnElement[int]) -> ColumnElement[bool]:
        return true() if self.period_ids is None else period_id.in_(list(self.period_ids))

    # facts -----------------------------------------------------------------------------------
    @staticmethod
    def serious(
        period_id: ColumnElement[int], title: ColumnElement[str], *, every: bool = False
    ) -> ColumnElement[bool]:
        """A serious offence or title. ``every``: tested for every period, so the periods with
        a serious offence are looked up once (a set), not per period."""
        offence = period_offences.c.category.in_(SERIOUS_CATEGORIES)
        if every:
            return or_(
                title.in_(SERIOUS_TITLES),
                period_id.in_(select(period_offences.c.period_id).where(offence)),
            )
        return or_(
            title.in_(SERIOUS_TITLES),
            exists().where(period_offences.c.period_id == period_id, offence),
        )

    def adult_stay(
        self,
        birth_date: ColumnElement[Any],
        intake_at: ColumnElement[Any],
        ended_at: ColumnElement[Any],
    ) -> ColumnElement[bool]:
        sql = self.sql
        adult = or_(
            birth_date.is_(None), sql.ams_date(intake_at) >= sql.birthday(birth_date, ADULT_AGE)
        )
        stayed = or_(ended_at.is_(None), ended_at > sql.plus_hours(intake_at, MIN_STAY_DAYS * 24))
        return and_(adult, stayed)

    @staticmethod
    def qualifies(
        sentence_days: ColumnElement[Any], title: ColumnElement[str]
    ) -> ColumnElement[bool]:
        """A victim (row of ``victims``) who wants information and has the right to it."""
        return and_(
            v.wants_information.is_(True),
            or_(
                v.spoke_in_court.is_(True),
                sentence_days >= VICTIM_RIGHT_SENTENCE_DAYS,
                title.in_(VICTIM_RIGHT_TITLES),
            ),
        )

    @staticmethod
    def registered_by(cutoff: ColumnElement[Any]) -> ColumnElement[bool]:
        """The victim was registered by ``cutoff`` (NULL: no cutoff)."""
        return or_(cutoff.is_(None), v.registered_at <= cutoff)

    def first_victim(
        self,
        period_id: ColumnElement[int],
        sentence_days: ColumnElement[Any],
        title: ColumnElement[str],
        cutoff: ColumnElement[Any],
    ) -> ColumnElement[Any]:
        """When the first qualifying victim registered by ``cutoff`` was registered (NULL:
        none, the period is not in the victims scope for this occurrence)."""
        return (
            select(func.min(v.registered_at))
            .where(
                v.period_id == period_id,
                self.qualifies(sentence_days, title),
                self.registered_by(cutoff),
            )
            .scalar_subquery()
        )

    def municipality_since(
        self, period_ref: ColumnElement[str], residence: ColumnElement[Any]
    ) -> ColumnElement[Any]:
        """When a residence or return municipality became known, when that was after the
        intake: the first event (intake, planned release date, release) that named one. NULL
        when the intake named a residence (then it is known from the start, no later than
        any fact the rules look at) or when none is known. Only the few periods without a
        residence read their events."""
        named = feed_events.alias("named")
        body = named.c.body
        first = (
            select(func.min(named.c.occurred_at))
            .where(
                named.c.period_ref == period_ref,
                named.c.kind.in_(NAMING_KINDS),
                named.c.withdrawn_by.is_(None),
                or_(
                    self.sql.json_text(body, "residence_municipality").is_not(None),
                    self.sql.json_text(body, "return_municipality").is_not(None),
                ),
            )
            .scalar_subquery()
        )
        return case((residence.is_(None), first), else_=_NO_TIME)

    def planning(self) -> CTE:
        """Per period with a planned release date and a ``release_date_set``: since when its
        current planned release date is known — the moment of the first event of the last run
        of events (intake, ``release_date_set``, in event order) that gave the date it has
        now. A period whose date came with the intake alone is not in it: known from the
        intake.

        Cheap for the many: the time of the last ``release_date_set`` is read (one grouped
        pass over those events, through their kind), and where it lies before every release
        rule's notice period (and before the release), any moment up to it gives the same due
        time and lateness, so it stands for the exact one. Only the others (a date set or
        moved late) read their planning events and compare the dates they set."""
        if self._planning is not None:
            return self._planning
        sql = self.sql
        sets = feed_events.alias("sets")
        last = select(
            sets.c.period_ref.label("period_ref"), func.max(sets.c.occurred_at).label("last")
        ).where(sets.c.kind == EventKind.RELEASE_DATE_SET.value, sets.c.withdrawn_by.is_(None))
        if self.period_ids is not None:
            last = last.where(
                sets.c.period_ref.in_(select(p.period_ref).where(p.id.in_(list(self.period_ids))))
            )
        latest = (
            last.add_columns(func.count().label("sets"))
            .group_by(sets.c.period_ref)
            .subquery("last_set")
        )
        notice = max(
            (r.planned_notice_days for r in self.rules.rules if r.subject == "release"), default=0
        )
        early = and_(
            latest.c.last < sql.local_moment(p.planned_release_date, _int(0), _int(-notice - 1)),
            or_(p.ended_at.is_(None), latest.c.last < p.ended_at),
        )
        # one ``release_date_set``: it set the date, unless the intake had set the same one
        intake = feed_events.alias("intake")
        intake_day = (
            select(sql.json_text(intake.c.body, "planned_release_date"))
            .where(
                # through the index on (kind, source, occurred_at): the period's intake
                intake.c.kind == EventKind.INTAKE.value,
                intake.c.source == p.source,
                intake.c.occurred_at == p.intake_at,
                intake.c.period_ref == p.period_ref,
                intake.c.withdrawn_by.is_(None),
            )
            .limit(1)
            .scalar_subquery()
        )
        once = case(
            (intake_day == sql.date_text(p.planned_release_date), p.intake_at),
            else_=latest.c.last,
        )
        self._planning = (
            select(
                p.period_ref.label("period_ref"),
                case(
                    (early, latest.c.last),
                    (latest.c.sets == 1, once),
                    else_=self._planned_since_exactly(),
                ).label("since"),
            )
            .select_from(latest.join(detention_periods, p.period_ref == latest.c.period_ref))
            .where(p.planned_release_date.is_not(None))
            .cte("planned_since")
        )
        return self._planning

    def _planned_since_exactly(self) -> ColumnElement[Any]:
        """The first planning event that set the period's date after the last one that set
        another date (in event order: time, kind, event id)."""
        sql = self.sql
        one, other = feed_events.alias("set_one"), feed_events.alias("set_other")
        date = sql.date_text(p.planned_release_date)

        def order(ev: Any) -> Any:
            rank = case({k: RANK[k] for k in PLANNING_KINDS}, value=ev.c.kind, else_=9)
            return tuple_(ev.c.occurred_at, rank, ev.c.event_id)

        def planning(ev: Any) -> ColumnElement[bool]:
            return and_(
                ev.c.period_ref == p.period_ref,
                ev.c.kind.in_(PLANNING_KINDS),
                ev.c.withdrawn_by.is_(None),
            )

        other_day = sql.json_text(other.c.body, "planned_release_date")
        changed_after = (
            exists()
            .where(
                planning(other),
                other_day.is_not(None),
                other_day != date,
                order(other) > order(one),
            )
            .correlate(detention_periods, one)
        )
        return (
            select(func.min(one.c.occurred_at))
            .where(
                planning(one),
                sql.json_text(one.c.body, "planned_release_date") == date,
                not_(changed_after),
            )
            .scalar_subquery()
        )

    def back_in_detention(self) -> ColumnElement[Any]:
        """The intake of the person's next period after this one ended (NULL: none)."""
        later = detention_periods.alias("later")
        return (
            select(func.min(later.c.intake_at))
            .where(
                later.c.person_id == p.person_id,
                later.c.intake_at > p.ended_at,
                later.c.status != PeriodStatus.WITHDRAWN.value,
            )
            .scalar_subquery()
        )

    def not_back_before(self, r: Subquery, since: ColumnElement[Any]) -> ColumnElement[bool]:
        """A recipient who became known (``since``) after the person was back in detention
        hears of no past release (docs/rules.md: a victim registered after the release)."""
        back = self.back_in_detention()
        return or_(
            r.c.subject != "release",
            p.status != RELEASED,
            since.is_(None),
            back.is_(None),
            since < back,
        )

    @staticmethod
    def municipality(
        r: Subquery,
        residence: ColumnElement[Any],
        return_: ColumnElement[Any],
        leave: ColumnElement[Any],
    ) -> ColumnElement[Any]:
        return case(
            (r.c.recipient == "idv", _text("OM-IDV")),
            (r.c.municipality == "leave", leave),
            (r.c.municipality == "return", func.coalesce(return_, residence)),
            else_=func.coalesce(residence, return_),
        )

    @staticmethod
    def since(
        r: Subquery, idv: ColumnElement[Any], municipality: ColumnElement[Any]
    ) -> ColumnElement[Any]:
        """When the recipient of a (non-victim) rule became known: for the IDV the first
        qualifying victim's registration; for a municipality ``municipality``; a leave
        municipality comes with its leave."""
        return case(
            (r.c.recipient == "idv", idv),
            (r.c.municipality == "leave", _NO_TIME),
            else_=municipality,
        )

    @staticmethod
    def key(
        r: Subquery,
        period_ref: ColumnElement[str],
        occurrence: ColumnElement[str],
        slot: ColumnElement[str],
    ) -> ColumnElement[str]:
        return r.c.key_head + period_ref + "|" + occurrence + "|" + slot
