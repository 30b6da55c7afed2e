"""The obligations that must exist, by the reconciliation's own reading of the rule file:
SELECTs over the stored periods, offences, persons, victims and feed events, one per group of
rules, whose UNION ALL is the required set (``docs/reconciliation.md`` explains them)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    DateTime,
    Select,
    String,
    and_,
    case,
    cast,
    exists,
    func,
    literal,
    null,
    or_,
    select,
    true,
    union_all,
)
from sqlalchemy.sql.expression import Subquery

from terugkeer.detention.tables import (
    detention_periods,
    feed_events,
    period_offences,
    persons,
    victims,
)
from terugkeer.domain.codes import RELEASES_INTO_SOCIETY, EventKind, PeriodStatus
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


class Expected:
    """Builds the SELECTs whose UNION ALL is the set of obligations that must exist.

    The full comparison asks only for ``key``, ``recipient_ref`` and ``period_id``. With
    ``detail`` (for the periods of the gaps found, ``period_ids``) every SELECT yields:
    key, rule_id, recipient_kind, period_id, period_ref, occurrence, slot, recipient_ref,
    source (planned, released, intake, event, grant, leave_start), cause_event_id, event_at,
    scope_known_at (when the victims that bring the period into scope were registered),
    planned_release_date, leave_from, intake_at, ended_at."""

    def __init__(self, sql: Sql, rules: RuleSet, period_ids: Sequence[int] | None = None) -> None:
        self.sql = sql
        self.rules = rules
        self.period_ids = period_ids
        self.detail = period_ids is not None
        self.bulk: Select[Any] | None = None  # set by period_rules()
        self.bulk_rules: frozenset[str] = frozenset()

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
        """The victim was registered by ``cutoff`` (NULL: no cutoff, the period is open)."""
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
    def key(
        r: Subquery,
        period_ref: ColumnElement[str],
        occurrence: ColumnElement[str],
        slot: ColumnElement[str],
    ) -> ColumnElement[str]:
        return r.c.key_head + period_ref + "|" + occurrence + "|" + slot

    def _group(self, subjects: Sequence[str], victim: bool, scopes: Sequence[str]) -> list[Rule]:
        return [
            r
            for r in self.rules.rules
            if r.subject in subjects and (r.recipient == "victim") == victim and r.scope in scopes
        ]

    # period-level occurrences: release, intake ------------------------------------------------
    def _period_source(self, r: Subquery) -> tuple[ColumnElement[bool], ColumnElement[Any]]:
        """(the period has the rule's occurrence, the victim cutoff for it)."""
        release = or_(
            and_(
                p.status.in_(OPEN_PERIOD),
                p.planned_release_date.is_not(None),
                r.c.timing == "planned",
            ),
            and_(p.status == PeriodStatus.RELEASED.value, p.release_kind.in_(INTO_SOCIETY)),
        )
        has = and_(
            p.status != PeriodStatus.WITHDRAWN.value,
            case((r.c.subject == "release", release), else_=true()),
        )
        # victims count for a release when registered before it (any, while the period is
        # open); for the intake signal when known at intake
        cutoff = case((r.c.subject == "release", p.ended_at), else_=p.intake_at)
        return has, cutoff

    def _period_columns(
        self,
        r: Subquery,
        recipient: ColumnElement[Any],
        slot: ColumnElement[str],
        scope_known_at: ColumnElement[Any],
    ) -> list[ColumnElement[Any]]:
        released = p.status == PeriodStatus.RELEASED.value
        occurrence = r.c.subject
        key = self.key(r, p.period_ref, occurrence, slot).label("key")
        if not self.detail:
            return [key, recipient.label("recipient_ref"), p.id.label("period_id")]
        return [
            key,
            r.c.rule_id.label("rule_id"),
            r.c.recipient.label("recipient_kind"),
            p.id.label("period_id"),
            p.period_ref.label("period_ref"),
            occurrence.label("occurrence"),
            slot.label("slot"),
            recipient.label("recipient_ref"),
            case(
                (r.c.subject == "intake", _text("intake")),
                (released, _text("released")),
                else_=_text("planned"),
            ).label("source"),
            case((and_(r.c.subject == "release", released), p.last_event_id)).label(
                "cause_event_id"
            ),
            case(
                (r.c.subject == "intake", p.intake_at), (released, p.ended_at), else_=_NO_TIME
            ).label("event_at"),
            scope_known_at.label("scope_known_at"),
            p.planned_release_date.label("planned_release_date"),
            _NO_CODE.label("leave_from"),
            p.intake_at.label("intake_at"),
            p.ended_at.label("ended_at"),
        ]

    def period_rules(self) -> list[Select[Any]]:
        out: list[Select[Any]] = []
        # (1) mayor, nazorg, idv… of the serious scope, then of the adult_stay scope: one
        # pass over the periods each, the scope tested once per period (it does not depend
        # on the rule), then joined with that scope's rules
        for scope_name in ("serious", "adult_stay"):
            group = self._group(PERIOD_SUBJECTS, False, (scope_name,))
            if not group:
                continue
            r = _rules_table(group, f"r_p{scope_name[0]}")
            has, _ = self._period_source(r)
            if scope_name == "serious":
                source: Any = detention_periods
                scope = self.serious(p.id, p.title, every=True)
            else:
                source = detention_periods.join(persons, pe.id == p.person_id)
                scope = self.adult_stay(pe.birth_date, p.intake_at, p.ended_at)
            recipient = self.municipality(
                r, p.residence_municipality, p.return_municipality, _NO_CODE
            )
            out.append(
                select(*self._period_columns(r, recipient, _text("-"), _NO_TIME))
                .select_from(source.join(r, true()))
                .where(self._only(p.id), scope, has)
            )
            if scope_name == "adult_stay":
                # the bulk: two signals for nearly every period
                self.bulk, self.bulk_rules = out[-1], frozenset(rule.id for rule in group)
        # (2) the same recipients in the victims scope: driven by the (few) victims
        group = self._group(PERIOD_SUBJECTS, False, ("victims",))
        if group:
            r = _rules_table(group, "r_pv")
            has, cutoff = self._period_source(r)
            recipient = self.municipality(
                r, p.residence_municipality, p.return_municipality, _NO_CODE
            )
            out.append(
                select(*self._period_columns(r, recipient, _text("-"), func.min(v.registered_at)))
                .select_from(victims.join(detention_periods, p.id == v.period_id).join(r, true()))
                .where(
                    self._only(p.id),
                    has,
                    self.qualifies(p.sentence_days, p.title),
                    self.registered_by(cutoff),
                )
                .group_by(
                    p.id,
                    r.c.rule_id,
                    r.c.recipient,
                    r.c.subject,
                    r.c.scope,
                    r.c.municipality,
                    r.c.timing,
                    r.c.key_head,
                )
            )
        # (3) each qualifying victim
        group = self._group(PERIOD_SUBJECTS, True, ("serious", "adult_stay", "victims"))
        if group:
            r = _rules_table(group, "r_pw")
            has, cutoff = self._period_source(r)
            scope = case(
                (r.c.scope == "serious", self.serious(p.id, p.title)),
                (
                    r.c.scope == "adult_stay",
                    self.adult_stay(pe.birth_date, p.intake_at, p.ended_at),
                ),
                else_=true(),
            )
            out.append(
                select(*self._period_columns(r, v.victim_ref, v.victim_ref, v.registered_at))
                .select_from(
                    victims.join(detention_periods, p.id == v.period_id)
                    .join(persons, pe.id == p.person_id)
                    .join(r, true())
                )
                .where(
                    self._only(p.id),
                    has,
                    scope,
                    self.qualifies(p.sentence_days, p.title),
                    self.registered_by(cutoff),
                )
            )
        return out

    # event-level occurrences: leave, escape, recapture, death ---------------------------------
    def events(self) -> Any:
        """The events that are occurrences, with their period's facts (a CTE: few rows)."""
        sql = self.sql
        leave_from = sql.json_text(e.body, "leave_from")
        leave_day = case(
            (e.kind == EventKind.LEAVE_GRANTED.value, sql.ams_date(sql.json_timestamp(leave_from))),
            else_=sql.ams_date(e.occurred_at),
        )
        return (
            select(
                e.event_id.label("event_id"),
                e.kind.label("kind"),
                e.occurred_at.label("occurred_at"),
                case((e.kind.in_(LEAVE_KINDS), _text("leave")), else_=e.kind).label("subject"),
                case(
                    (e.kind.in_(LEAVE_KINDS), "leave:" + leave_day),
                    else_=e.kind + ":" + e.event_id,
                ).label("occurrence"),
                case(
                    (
                        e.kind.in_(LEAVE_KINDS),
                        _successor(sql.json_text(e.body, "leave_municipality")),
                    )
                ).label("leave_municipality"),
                case((e.kind == EventKind.LEAVE_GRANTED.value, leave_from)).label("leave_from"),
                # victims count when registered by the time it happens: for a granted leave
                # its start, for anything else the event itself
                case(
                    (e.kind == EventKind.LEAVE_GRANTED.value, sql.json_timestamp(leave_from)),
                    else_=e.occurred_at,
                ).label("cutoff"),
                p.id.label("period_id"),
                p.period_ref.label("period_ref"),
                p.title.label("title"),
                p.sentence_days.label("sentence_days"),
                p.residence_municipality.label("residence_municipality"),
                p.return_municipality.label("return_municipality"),
                p.intake_at.label("intake_at"),
                p.ended_at.label("ended_at"),
                p.planned_release_date.label("planned_release_date"),
                pe.birth_date.label("birth_date"),
            )
            .select_from(
                # for all periods, the few events of these kinds are found by reading the
                # events once, the period of each by its unique reference; for the periods of
                # the gaps, through their periods
                feed_events.join(
                    detention_periods,
                    p.period_ref == (e.period_ref if self.detail else sql.scan_first(e.period_ref)),
                ).join(persons, pe.id == p.person_id)
            )
            .where(
                self._only(p.id),
                e.kind.in_(OCCURRENCE_KINDS + LEAVE_KINDS),
                e.withdrawn_by.is_(None),
                p.status != PeriodStatus.WITHDRAWN.value,
                # death voids leave (and release) obligations
                or_(e.kind.not_in(LEAVE_KINDS), p.status != PeriodStatus.DECEASED.value),
            )
            .cte("ev")
            .prefix_with("MATERIALIZED")
        )

    def _event_columns(
        self,
        ev: Any,
        r: Subquery,
        recipient: ColumnElement[Any],
        slot: ColumnElement[str],
        scope_known_at: ColumnElement[Any],
    ) -> list[ColumnElement[Any]]:
        c = ev.c
        key = self.key(r, c.period_ref, c.occurrence, slot).label("key")
        if not self.detail:
            return [key, recipient.label("recipient_ref"), c.period_id.label("period_id")]
        return [
            key,
            r.c.rule_id.label("rule_id"),
            r.c.recipient.label("recipient_kind"),
            c.period_id.label("period_id"),
            c.period_ref.label("period_ref"),
            c.occurrence.label("occurrence"),
            slot.label("slot"),
            recipient.label("recipient_ref"),
            case(
                (c.kind == EventKind.LEAVE_GRANTED.value, _text("grant")),
                (c.kind == EventKind.LEAVE_START.value, _text("leave_start")),
                else_=_text("event"),
            ).label("source"),
            c.event_id.label("cause_event_id"),
            c.occurred_at.label("event_at"),
            scope_known_at.label("scope_known_at"),
            c.planned_release_date.label("planned_release_date"),
            c.leave_from.label("leave_from"),
            c.intake_at.label("intake_at"),
            c.ended_at.label("ended_at"),
        ]

    def event_rules(self) -> list[Select[Any]]:
        out: list[Select[Any]] = []
        ev = self.events()
        c = ev.c
        group = self._group(EVENT_SUBJECTS, False, ("serious", "adult_stay", "victims"))
        if group:
            r = _rules_table(group, "r_ea")
            first = self.first_victim(c.period_id, c.sentence_days, c.title, c.cutoff)
            scope = case(
                (r.c.scope == "serious", self.serious(c.period_id, c.title)),
                (
                    r.c.scope == "adult_stay",
                    self.adult_stay(c.birth_date, c.intake_at, c.ended_at),
                ),
                else_=first.is_not(None),
            )
            recipient = self.municipality(
                r, c.residence_municipality, c.return_municipality, c.leave_municipality
            )
            out.append(
                select(
                    *self._event_columns(
                        ev, r, recipient, _text("-"), case((r.c.scope == "victims", first))
                    )
                )
                .select_from(ev.join(r, r.c.subject == c.subject))
                .where(scope)
            )
        group = self._group(EVENT_SUBJECTS, True, ("serious", "adult_stay", "victims"))
        if group:
            r = _rules_table(group, "r_ew")
            scope = case(
                (r.c.scope == "serious", self.serious(c.period_id, c.title)),
                (
                    r.c.scope == "adult_stay",
                    self.adult_stay(c.birth_date, c.intake_at, c.ended_at),
                ),
                else_=true(),
            )
            out.append(
                select(*self._event_columns(ev, r, v.victim_ref, v.victim_ref, v.registered_at))
                .select_from(
                    ev.join(victims, v.period_id == c.period_id).join(r, r.c.subject == c.subject)
                )
                .where(
                    scope,
                    self.qualifies(c.sentence_days, c.title),
                    self.registered_by(c.cutoff),
                )
            )
        return out

    def query(self) -> Subquery:
        return union_all(*self.period_rules(), *self.event_rules()).subquery("expected")
