"""The obligations that must exist, by the reconciliation's own reading of the rule file and
of ``docs/rules.md``: SELECTs over the stored periods, offences, persons, victims and feed
events, one per group of rules, whose UNION ALL is the required set — each obligation with its
recipient, its due time and whether it is late (``docs/reconciliation.md`` explains them)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    case,
    exists,
    func,
    not_,
    or_,
    select,
    true,
    union_all,
)
from sqlalchemy.sql.expression import Subquery

from terugkeer.detention.tables import (
    detention_periods,
    feed_events,
    persons,
    victims,
)
from terugkeer.domain.codes import EventKind, PeriodStatus
from terugkeer.notify.assurance.reconcile.facts import (
    _NO_CODE,
    _NO_TIME,
    EVENT_SUBJECTS,
    INTO_SOCIETY,
    LEAVE_KINDS,
    OCCURRENCE_KINDS,
    OPEN_PERIOD,
    PERIOD_SUBJECTS,
    RANK,
    RELEASED,
    Facts,
    _int,
    _rules_table,
    _successor,
    _text,
    e,
    p,
    pe,
    v,
)
from terugkeer.notify.rules.ruleset import (
    MIN_STAY_DAYS,
    Rule,
)

# Event kinds that are themselves an occurrence (escape:<id>, recapture:<id>, death:<id>).
# Events whose message may name the residence or return municipality, and those that may set
# the planned release date (docs/feed.md).
# the order of kinds at the same moment (the fold's), for events in event order


# the columns of the tables read, by short names, for legible expressions below


# typed, so that PostgreSQL can match the columns of the UNION ALL


class Expected(Facts):
    """Builds the SELECTs whose UNION ALL is the set of obligations that must exist.

    The full comparison asks for ``key``, ``recipient_ref``, ``period_id``, ``due_at`` and
    ``late``. With ``detail`` (for the periods of the gaps found, ``period_ids``) every SELECT
    yields also: rule_id, recipient_kind, period_ref, occurrence, slot, source (planned,
    released, intake, event, grant, leave_start), cause_event_id, event_at, scope_known_at
    (when the victims that bring the period into scope were registered), planned_for (the
    moment told about), planned_release_date, intake_at, ended_at."""

    def _group(self, subjects: Sequence[str], victim: bool, scopes: Sequence[str]) -> list[Rule]:
        return [
            r
            for r in self.rules.rules
            if r.subject in subjects and (r.recipient == "victim") == victim and r.scope in scopes
        ]

    # period-level occurrences: release, intake ------------------------------------------------
    @staticmethod
    def _period_source(r: Subquery) -> ColumnElement[bool]:
        """The period has the rule's occurrence: the intake signal (unless withdrawn); a
        release while open with a planned date (planned rules), or a release into society."""
        release = or_(
            and_(
                p.status.in_(OPEN_PERIOD),
                p.planned_release_date.is_not(None),
                r.c.timing == "planned",
            ),
            and_(p.status == RELEASED, p.release_kind.in_(INTO_SOCIETY)),
        )
        return and_(
            p.status != PeriodStatus.WITHDRAWN.value,
            case((r.c.subject == "release", release), else_=true()),
        )

    def _period_timing(
        self, r: Subquery, since: ColumnElement[Any], planned_since: ColumnElement[Any]
    ) -> tuple[ColumnElement[Any], ColumnElement[bool], ColumnElement[bool]]:
        """(due, late, told on another moment than planned) of a period-level obligation.

        The intake signal: immediate, at 10 days of stay. A release: planned, from the planned
        date and since when it is known; released into society on another day than planned,
        or without a planned date known before it, or by a rule without planned timing:
        immediate from the release, late."""
        sql, clock = self.sql, self.clock
        stay = MIN_STAY_DAYS * 24
        intake = clock.immediate(
            sql.shift(p.intake_at, stay, "hours"),
            sql.shift(p.intake_at, r.c.late_hours + stay, "hours"),
            since,
            r.c.late_hours,
        )
        due0 = sql.local_moment(p.planned_release_date, r.c.moment_hour, -r.c.notice_days)
        planned = clock.planned(due0, planned_since, since, r.c.late_hours)
        on_the_day = and_(
            p.planned_release_date.is_not(None),
            planned_since < p.ended_at,
            r.c.timing == "planned",
            sql.ams_date(p.ended_at) == sql.date_text(p.planned_release_date),
        )
        off_plan = and_(p.status == RELEASED, not_(on_the_day))
        released = clock.immediate(
            p.ended_at,
            sql.shift(p.ended_at, r.c.late_hours, "hours"),
            since,
            r.c.late_hours,
            always_late=true(),
        )
        due = case((r.c.subject == "intake", intake[0]), (off_plan, released[0]), else_=planned[0])
        late = case((r.c.subject == "intake", intake[1]), (off_plan, released[1]), else_=planned[1])
        return due, late, off_plan

    def _period_columns(
        self,
        r: Subquery,
        recipient: ColumnElement[Any],
        slot: ColumnElement[str],
        scope_known_at: ColumnElement[Any],
        since: ColumnElement[Any],
        planned_since: ColumnElement[Any],
    ) -> list[ColumnElement[Any]]:
        released = p.status == RELEASED
        occurrence = r.c.subject
        key = self.key(r, p.period_ref, occurrence, slot).label("key")
        due, late, off_plan = self._period_timing(r, since, planned_since)
        head: list[ColumnElement[Any]] = [
            key,
            recipient.label("recipient_ref"),
            p.id.label("period_id"),
            due.label("due_at"),
            late.label("late"),
        ]
        if not self.detail:
            return head
        moment = self.sql.local_moment(p.planned_release_date, r.c.moment_hour, _int(0))
        return [
            *head,
            r.c.rule_id.label("rule_id"),
            r.c.recipient.label("recipient_kind"),
            p.period_ref.label("period_ref"),
            occurrence.label("occurrence"),
            slot.label("slot"),
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
            case((r.c.subject == "intake", _NO_TIME), (off_plan, p.ended_at), else_=moment).label(
                "planned_for"
            ),
            p.planned_release_date.label("planned_release_date"),
            p.intake_at.label("intake_at"),
            p.ended_at.label("ended_at"),
        ]

    def _with_planning(self, source: Any, subjects: Sequence[str]) -> tuple[Any, Any]:
        """``source`` joined (LEFT) with the planning when ``subjects`` have a release, and
        since when the planned release date is known (NULL: no planned date)."""
        if "release" not in subjects:
            return source, _NO_TIME
        planning = self.planning()
        joined = source.outerjoin(planning, planning.c.period_ref == p.period_ref)
        since = case(
            (
                p.planned_release_date.is_not(None),
                func.coalesce(planning.c.since, p.intake_at),
            ),
            else_=_NO_TIME,
        )
        return joined, since

    def _planned_since_few(self, subjects: Sequence[str]) -> Any:
        """Since when the planned release date is known, period by period (for the few
        periods with victims: no pass over all planning events)."""
        if "release" not in subjects:
            return _NO_TIME
        return case(
            (
                p.planned_release_date.is_not(None),
                func.coalesce(self._planned_since_exactly(), p.intake_at),
            ),
            else_=_NO_TIME,
        )

    def period_rules(self, subjects: Sequence[str] = PERIOD_SUBJECTS) -> list[Select[Any]]:
        """The SELECTs of the period-level obligations of ``subjects`` (release, intake)."""
        out: list[Select[Any]] = []
        muni = self.municipality_since(p.period_ref, p.residence_municipality)
        # (1) mayor, nazorg, idv… of the serious scope, then of the adult_stay scope: one
        # pass over the periods each, the scope tested once per period (it does not depend
        # on the rule), then joined with that scope's rules
        for scope_name in ("serious", "adult_stay"):
            group = self._group(subjects, False, (scope_name,))
            if not group:
                continue
            r = _rules_table(group, f"r_p{scope_name[0]}")
            has = self._period_source(r)
            if scope_name == "serious":
                source: Any = detention_periods
                scope = self.serious(p.id, p.title, every=True)
            else:
                source = detention_periods.join(persons, pe.id == p.person_id)
                scope = self.adult_stay(pe.birth_date, p.intake_at, p.ended_at)
            source, planned_since = self._with_planning(source, subjects)
            recipient = self.municipality(
                r, p.residence_municipality, p.return_municipality, _NO_CODE
            )
            idv = self.first_victim(p.id, p.sentence_days, p.title, _NO_TIME)
            since = self.since(r, idv, muni)
            out.append(
                select(
                    *self._period_columns(r, recipient, _text("-"), _NO_TIME, since, planned_since)
                )
                .select_from(source.join(r, true()))
                .where(
                    self._only(p.id),
                    scope,
                    has,
                    # the IDV of a rule outside the victims scope (a municipality's
                    # ``since`` is never after the release, before any later intake)
                    or_(r.c.recipient != "idv", self.not_back_before(r, since)),
                )
            )
        # (2) the same recipients in the victims scope: driven by the (few) victims; victims
        # count whenever they registered (for a release also after it)
        planned_since = self._planned_since_few(subjects)
        group = self._group(subjects, False, ("victims",))
        if group:
            r = _rules_table(group, "r_pv")
            has = self._period_source(r)
            recipient = self.municipality(
                r, p.residence_municipality, p.return_municipality, _NO_CODE
            )
            first = func.min(v.registered_at)
            since = self.since(r, first, muni)
            out.append(
                select(*self._period_columns(r, recipient, _text("-"), first, since, planned_since))
                .select_from(victims.join(detention_periods, p.id == v.period_id).join(r, true()))
                .where(self._only(p.id), has, self.qualifies(p.sentence_days, p.title))
                .group_by(
                    p.id,
                    r.c.rule_id,
                    r.c.recipient,
                    r.c.subject,
                    r.c.scope,
                    r.c.municipality,
                    r.c.timing,
                    r.c.key_head,
                    r.c.notice_days,
                    r.c.late_hours,
                    r.c.moment_hour,
                )
                .having(self.not_back_before(r, since))
            )
        # (3) each qualifying victim, from their registration
        group = self._group(subjects, True, ("serious", "adult_stay", "victims"))
        if group:
            r = _rules_table(group, "r_pw")
            has = self._period_source(r)
            scope = case(
                (r.c.scope == "serious", self.serious(p.id, p.title)),
                (
                    r.c.scope == "adult_stay",
                    self.adult_stay(pe.birth_date, p.intake_at, p.ended_at),
                ),
                else_=true(),
            )
            out.append(
                select(
                    *self._period_columns(
                        r,
                        v.victim_ref,
                        v.victim_ref,
                        v.registered_at,
                        v.registered_at,
                        planned_since,
                    )
                )
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
                    self.not_back_before(r, v.registered_at),
                )
            )
        return out

    # event-level occurrences: leave, escape, recapture, death ---------------------------------
    def events(self) -> Any:
        """The events that are occurrences, with their period's facts (a CTE: few rows).
        A leave start announced by a grant for its day, granted by then, is the grant's."""
        sql = self.sql
        leave_from = sql.json_text(e.body, "leave_from")
        leave_day = case(
            (e.kind == EventKind.LEAVE_GRANTED.value, sql.ams_date(sql.json_timestamp(leave_from))),
            else_=sql.ams_date(e.occurred_at),
        )
        grant = feed_events.alias("grant")
        announced = exists().where(
            grant.c.period_ref == e.period_ref,
            grant.c.kind == EventKind.LEAVE_GRANTED.value,
            grant.c.withdrawn_by.is_(None),
            grant.c.occurred_at <= e.occurred_at,
            sql.ams_date(sql.json_timestamp(sql.json_text(grant.c.body, "leave_from")))
            == sql.ams_date(e.occurred_at),
        )
        return (
            select(
                e.event_id.label("event_id"),
                e.kind.label("kind"),
                e.occurred_at.label("occurred_at"),
                case(RANK, value=e.kind, else_=9).label("rank"),
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
                case(
                    (e.kind == EventKind.LEAVE_GRANTED.value, sql.json_timestamp(leave_from))
                ).label("leave_from"),
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
                self.municipality_since(p.period_ref, p.residence_municipality).label(
                    "municipality_since"
                ),
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
                or_(e.kind != EventKind.LEAVE_START.value, not_(announced)),
            )
            .cte("ev")
            .prefix_with("MATERIALIZED")
        )

    def _event_timing(
        self, c: Any, r: Subquery, since: ColumnElement[Any]
    ) -> tuple[ColumnElement[Any], ColumnElement[bool]]:
        """A granted leave: planned, from its start and the grant. A leave that started
        without a grant: immediate, late. An escape, recapture or death: immediate."""
        sql, clock = self.sql, self.clock
        granted = clock.planned(
            sql.shift(c.leave_from, -r.c.notice_days, "days"), c.occurred_at, since, r.c.late_hours
        )
        happened = clock.immediate(
            c.occurred_at,
            sql.shift(c.occurred_at, r.c.late_hours, "hours"),
            since,
            r.c.late_hours,
            always_late=c.kind == EventKind.LEAVE_START.value,
        )
        grant = c.kind == EventKind.LEAVE_GRANTED.value
        return (
            case((grant, granted[0]), else_=happened[0]),
            case((grant, granted[1]), else_=happened[1]),
        )

    def _event_columns(
        self,
        ev: Any,
        r: Subquery,
        recipient: ColumnElement[Any],
        slot: ColumnElement[str],
        scope_known_at: ColumnElement[Any],
        since: ColumnElement[Any],
    ) -> list[ColumnElement[Any]]:
        c = ev.c
        key = self.key(r, c.period_ref, c.occurrence, slot)
        due, late = self._event_timing(c, r, since)
        # One leave day may be named by several events: the first leave start without a
        # grant, else the first grant, in event order (the dispatcher keeps the first).
        first = (
            func.row_number()
            .over(
                partition_by=key,
                order_by=(
                    case((c.kind == EventKind.LEAVE_GRANTED.value, 1), else_=0),
                    c.occurred_at,
                    c.rank,
                    c.event_id,
                ),
            )
            .label("first")
        )
        head: list[ColumnElement[Any]] = [
            key.label("key"),
            recipient.label("recipient_ref"),
            c.period_id.label("period_id"),
            due.label("due_at"),
            late.label("late"),
            first,
        ]
        if not self.detail:
            return head
        return [
            *head,
            r.c.rule_id.label("rule_id"),
            r.c.recipient.label("recipient_kind"),
            c.period_ref.label("period_ref"),
            c.occurrence.label("occurrence"),
            slot.label("slot"),
            case(
                (c.kind == EventKind.LEAVE_GRANTED.value, _text("grant")),
                (c.kind == EventKind.LEAVE_START.value, _text("leave_start")),
                else_=_text("event"),
            ).label("source"),
            c.event_id.label("cause_event_id"),
            c.occurred_at.label("event_at"),
            scope_known_at.label("scope_known_at"),
            case(
                (c.kind == EventKind.LEAVE_GRANTED.value, c.leave_from),
                (c.kind == EventKind.LEAVE_START.value, c.occurred_at),
                else_=_NO_TIME,
            ).label("planned_for"),
            c.planned_release_date.label("planned_release_date"),
            c.intake_at.label("intake_at"),
            c.ended_at.label("ended_at"),
        ]

    @staticmethod
    def _firsts(query: Select[Any], name: str) -> Select[Any]:
        """Only the first row of each key (see ``_event_columns``)."""
        rows = query.subquery(name)
        return select(*[col for col in rows.c if col.name != "first"]).where(rows.c.first == 1)

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
            since = self.since(r, first, c.municipality_since)
            query = (
                select(
                    *self._event_columns(
                        ev, r, recipient, _text("-"), case((r.c.scope == "victims", first)), since
                    )
                )
                .select_from(ev.join(r, r.c.subject == c.subject))
                .where(scope)
            )
            out.append(self._firsts(query, "x_ea"))
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
            query = (
                select(
                    *self._event_columns(
                        ev, r, v.victim_ref, v.victim_ref, v.registered_at, v.registered_at
                    )
                )
                .select_from(
                    ev.join(victims, v.period_id == c.period_id).join(r, r.c.subject == c.subject)
                )
                .where(
                    scope,
                    self.qualifies(c.sentence_days, c.title),
                    self.registered_by(c.cutoff),
                )
            )
            out.append(self._firsts(query, "x_ew"))
        return out

    def query(self) -> Subquery:
        return union_all(*self.period_rules(), *self.event_rules()).subquery("expected")
