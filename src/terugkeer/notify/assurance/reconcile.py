"""The independent reconciliation: which obligations must exist, and are they there?

This module does **not** use the dispatcher's evaluation (``evaluate.py``), its writer
(``obligations.py``) or its hook. It reads the rule file for the rules' ids, recipients,
subjects, scopes and timing, and computes from the stored periods, offences, persons, victims
and feed events, in a handful of set-based SQL statements that run on SQLite and PostgreSQL,
the set of obligation keys (``rule|period|occurrence|slot``) that must exist, with their
recipient. FULL OUTER JOINs of that set with the ``obligations`` table (one for the bulk —
the nazorg signals of every adult — one for all other rules, at the same time on two
connections when they can be) give:

- ``missing_obligation`` — required but absent (or present but voided);
- ``extra`` — present (not voided) but not required: information, not an alert;
- ``recipient_differs`` — present, but addressed to another recipient than the stored facts
  give: information, not an alert.

Three plain queries on ``obligations`` add the delivery gaps:

- ``overdue`` — past due and not delivered (``open``, ``sent``, ``unresolved``, ``held``);
- ``unacknowledged`` — delivered, not acknowledged, past the rule's acknowledgement window;
- ``unresolved`` — no known recipient.

Gaps of the four alert kinds are stored as operator alerts (``alerts``), de-duplicated by a
stable key while open (``reconcile:<kind>:<obligation key>``); open reconciliation alerts
whose gap has closed are resolved. ``docs/reconciliation.md`` explains the SQL, and the places
where it may legitimately see things differently from the dispatcher.
"""

from __future__ import annotations

import hashlib
import json
import time as timer
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    Connection,
    DateTime,
    Engine,
    Integer,
    Select,
    String,
    and_,
    case,
    cast,
    exists,
    func,
    insert,
    literal,
    literal_column,
    null,
    or_,
    select,
    text,
    true,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql.expression import Subquery

from terugkeer.db.bulk import among, chunks
from terugkeer.detention.tables import (
    detention_periods,
    feed_events,
    period_offences,
    persons,
    victims,
)
from terugkeer.domain.codes import RELEASES_INTO_SOCIETY, EventKind, PeriodStatus
from terugkeer.domain.refdata import refdata
from terugkeer.notify.rules.ruleset import (
    ADULT_AGE,
    MIN_STAY_DAYS,
    RECIPIENTS,
    SERIOUS_CATEGORIES,
    SERIOUS_TITLES,
    VICTIM_RIGHT_SENTENCE_DAYS,
    VICTIM_RIGHT_TITLES,
    Rule,
    RuleSet,
    default_rules,
)
from terugkeer.notify.tables import alerts, obligations

AMSTERDAM = ZoneInfo("Europe/Amsterdam")

ALERT_KINDS = ("missing_obligation", "overdue", "unacknowledged", "unresolved")
ALERT_PREFIX = "reconcile:"
# Obligation statuses that mean: not (yet) delivered.
UNDELIVERED = ("open", "sent", "unresolved", "held")
VOIDED = "voided"
DEFAULT_ACK_WINDOW = timedelta(hours=24)  # for a rule no longer in the rule file
_KINDS = frozenset(RECIPIENTS)

OPEN_PERIOD = tuple(
    s.value for s in (PeriodStatus.IN_CUSTODY, PeriodStatus.ON_LEAVE, PeriodStatus.ESCAPED)
)
INTO_SOCIETY = tuple(sorted(k.value for k in RELEASES_INTO_SOCIETY))
LEAVE_KINDS = (EventKind.LEAVE_GRANTED.value, EventKind.LEAVE_START.value)
# Event kinds that are themselves an occurrence (escape:<id>, recapture:<id>, death:<id>).
OCCURRENCE_KINDS = (EventKind.ESCAPE.value, EventKind.RECAPTURE.value, EventKind.DEATH.value)
PERIOD_SUBJECTS = ("release", "intake")  # one occurrence per period
EVENT_SUBJECTS = ("leave", "escape", "recapture", "death")  # occurrences from events


# -- results --------------------------------------------------------------------------------


@dataclass(slots=True)  # not frozen: a run can make a hundred thousand of these
class Gap:
    """One finding. For ``missing_obligation`` the fields describe the obligation that must
    exist (``due_at`` is the reconciliation's own estimate); otherwise the stored one."""

    kind: str
    key: str
    rule_id: str
    period_ref: str
    occurrence: str
    recipient_kind: str
    recipient_ref: str | None
    due_at: datetime | None = None
    status: str | None = None  # of the stored obligation; None when there is none
    obligation_id: int | None = None
    cause_event_id: str | None = None
    event_at: datetime | None = None  # when what requires it happened or became known
    expected_recipient: str | None = None  # recipient_differs: what the facts give
    planned_for: datetime | None = None  # missing_obligation: the moment notified about
    note: str = ""

    @property
    def alert_key(self) -> str:
        key = f"{ALERT_PREFIX}{self.kind}:{self.key}"
        if len(key) <= alerts.c.key.type.length:  # type: ignore[attr-defined]
            return key
        digest = hashlib.sha256(self.key.encode("utf-8")).hexdigest()
        return f"{ALERT_PREFIX}{self.kind}:sha256:{digest}"

    def message(self) -> str:
        who = f"{self.recipient_kind} {self.recipient_ref or '(unresolved)'}"
        due = f", due {_iso(self.due_at)}" if self.due_at else ""
        text = {
            "missing_obligation": "missing obligation",
            "overdue": "past due, not delivered",
            "unacknowledged": "delivered, not acknowledged in time",
            "unresolved": "no known recipient",
            "extra": "obligation not required by the stored facts",
            "recipient_differs": "addressed to another recipient than the facts give",
        }.get(self.kind, self.kind)
        return (
            f"{text}: {self.rule_id} for period {self.period_ref} ({self.occurrence}) to "
            f"{who}{due}" + (f"; {self.note}" if self.note else "")
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "key": self.key,
            "rule_id": self.rule_id,
            "period_ref": self.period_ref,
            "occurrence": self.occurrence,
            "recipient_kind": self.recipient_kind,
            "recipient_ref": self.recipient_ref,
            "due_at": _iso(self.due_at),
            "status": self.status,
            "obligation_id": self.obligation_id,
            "cause_event_id": self.cause_event_id,
            "event_at": _iso(self.event_at),
            "expected_recipient": self.expected_recipient,
            "planned_for": _iso(self.planned_for),
            "note": self.note,
        }


@dataclass
class ReconcileReport:
    now: datetime
    rules_version: str
    missing: list[Gap] = field(default_factory=list)
    overdue: list[Gap] = field(default_factory=list)
    unacknowledged: list[Gap] = field(default_factory=list)
    unresolved: list[Gap] = field(default_factory=list)
    extra: list[Gap] = field(default_factory=list)  # information
    recipient_differs: list[Gap] = field(default_factory=list)  # information
    obligations_checked: int = 0  # stored obligations, not voided
    required: int = 0  # distinct obligation keys the stored facts require
    alerts_raised: int = 0
    alerts_resolved: int = 0
    alerts_open: int = 0
    alerts_escalated: int = 0  # gaps already in the queue as the escalation's alert
    seconds: float = 0.0

    @property
    def gaps(self) -> list[Gap]:
        """The findings an operator must act on (kinds a–d)."""
        return [*self.missing, *self.overdue, *self.unacknowledged, *self.unresolved]

    @property
    def ok(self) -> bool:
        return not self.gaps

    @property
    def counts(self) -> dict[str, int]:
        return {
            "missing_obligation": len(self.missing),
            "overdue": len(self.overdue),
            "unacknowledged": len(self.unacknowledged),
            "unresolved": len(self.unresolved),
            "extra": len(self.extra),
            "recipient_differs": len(self.recipient_differs),
        }

    def as_json(self) -> dict[str, Any]:
        return {
            "now": _iso(self.now),
            "rules_version": self.rules_version,
            "ok": self.ok,
            "counts": self.counts,
            "required": self.required,
            "obligations_checked": self.obligations_checked,
            "alerts": {
                "raised": self.alerts_raised,
                "resolved": self.alerts_resolved,
                "open": self.alerts_open,
                "escalated": self.alerts_escalated,
            },
            "seconds": round(self.seconds, 3),
            "missing_obligation": [g.as_json() for g in self.missing],
            "overdue": [g.as_json() for g in self.overdue],
            "unacknowledged": [g.as_json() for g in self.unacknowledged],
            "unresolved": [g.as_json() for g in self.unresolved],
            "extra": [g.as_json() for g in self.extra],
            "recipient_differs": [g.as_json() for g in self.recipient_differs],
        }


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


# -- dialect-specific pieces -----------------------------------------------------------------


class _Sql:
    """The few expressions that SQLite and PostgreSQL spell differently. Everything they
    produce is text in the same form on both stores, so keys compare equal."""

    def __init__(self, dialect: str) -> None:
        self.pg = dialect == "postgresql"

    def ams_date(self, ts: ColumnElement[Any]) -> ColumnElement[str]:
        """The Europe/Amsterdam calendar date of a UTC timestamp, as 'YYYY-MM-DD'.

        PostgreSQL converts with its own time zone database. SQLite has none, so the EU rule
        is spelled out: summer time (UTC+2) from the last Sunday of March 01:00 UTC to the last
        Sunday of October 01:00 UTC (of September before 1996), else UTC+1. A timestamp
        before 22:00 UTC has the same date in Amsterdam, which spares most rows the rest."""
        if self.pg:
            return func.to_char(
                func.timezone(literal_column("'Europe/Amsterdam'"), ts),
                literal_column("'YYYY-MM-DD'"),
                type_=String,
            )
        year = func.substr(ts, 1, 4, type_=String)

        def last_sunday(month_day: str) -> ColumnElement[str]:
            # the first Sunday on or after the 25th (24th for September) is the last one
            return func.datetime(year + month_day, "weekday 0", "+1 hours", type_=String)

        summer_ends = case((year >= "1996", last_sunday("-10-25")), else_=last_sunday("-09-24"))
        return case(
            (func.substr(ts, 12, 2, type_=String) < "22", func.substr(ts, 1, 10, type_=String)),
            (
                and_(ts >= last_sunday("-03-25"), ts < summer_ends),
                func.date(ts, "+2 hours", type_=String),
            ),
            else_=func.date(ts, "+1 hours", type_=String),
        )

    def json_text(self, body: ColumnElement[Any], name: str) -> ColumnElement[str]:
        if self.pg:
            found: ColumnElement[str] = cast(body, JSONB)[name].astext
            return found
        return func.json_extract(body, f"$.{name}", type_=String)

    def json_timestamp(self, value: ColumnElement[str]) -> ColumnElement[Any]:
        """An RFC 3339 text with offset as a UTC timestamp comparable with stored ones."""
        if self.pg:
            return cast(value, DateTime(timezone=True))
        return func.datetime(value, type_=String)

    def plus_hours(self, ts: ColumnElement[Any], hours: int) -> ColumnElement[Any]:
        if self.pg:
            return ts + literal_column(f"interval '{int(hours)} hours'")
        # keep the stored microseconds so that the text compares like the timestamp
        return func.datetime(ts, f"+{int(hours)} hours", type_=String) + func.substr(
            ts, 20, type_=String
        )

    def scan_first(self, column: ColumnElement[str]) -> ColumnElement[str]:
        """``column`` in a join condition, so that SQLite does not look rows up through an
        index on it (an expression is not indexed) but reads its table once instead."""
        return column if self.pg else column + ""

    def birthday(self, born: ColumnElement[Any], years: int) -> ColumnElement[str]:
        """The ``years``-th birthday of ``born`` as 'YYYY-MM-DD' text, to compare with an
        Amsterdam date: for 29 February it may name a day that does not exist, which still
        compares right (on 28 February not yet, on 1 March reached)."""
        if self.pg:
            return func.lpad(
                cast(cast(func.extract("year", born), Integer) + years, String), 4, "0"
            ) + func.to_char(born, literal_column("'-MM-DD'"), type_=String)
        return cast(cast(func.substr(born, 1, 4), Integer) + years, String) + func.substr(
            born, 5, type_=String
        )


# -- the obligations that must exist ---------------------------------------------------------

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


class _Expected:
    """Builds the SELECTs whose UNION ALL is the set of obligations that must exist.

    The full comparison asks only for ``key``, ``recipient_ref`` and ``period_id``. With
    ``detail`` (for the periods of the gaps found, ``period_ids``) every SELECT yields:
    key, rule_id, recipient_kind, period_id, period_ref, occurrence, slot, recipient_ref,
    source (planned, released, intake, event, grant, leave_start), cause_event_id, event_at,
    scope_known_at (when the victims that bring the period into scope were registered),
    planned_release_date, leave_from, intake_at, ended_at."""

    def __init__(self, sql: _Sql, rules: RuleSet, period_ids: Sequence[int] | None = None) -> None:
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


# -- comparing -------------------------------------------------------------------------------


@dataclass(slots=True)
class _Row:
    """One expected obligation, as the SQL gave it."""

    key: str
    rule_id: str
    recipient_kind: str
    period_ref: str
    occurrence: str
    recipient_ref: str | None
    source: str
    cause_event_id: str | None
    event_at: datetime | None
    scope_known_at: datetime | None
    planned_release_date: date | None
    leave_from: str | None
    intake_at: datetime | None
    ended_at: datetime | None


def _difference(
    selects: Sequence[Select[Any]], rule_ids: frozenset[str], inside: bool
) -> Select[Any]:
    """The differences between the obligations required by ``selects`` and those stored for
    the rules ``rule_ids`` (``inside``) or all other rules (not ``inside``; also rules no longer
    in the rule file)."""
    expected = (union_all(*selects) if len(selects) > 1 else selects[0]).subquery("expected")
    x, o = expected.c, obligations.c
    ours = o.rule_id.in_(sorted(rule_ids)) if inside else o.rule_id.not_in(sorted(rule_ids))
    return (
        select(
            x.key,
            x.recipient_ref,
            x.period_id,
            o.id.label("o_id"),
            o.key.label("o_key"),
            o.rule_id.label("o_rule_id"),
            o.period_ref.label("o_period_ref"),
            o.occurrence.label("o_occurrence"),
            o.recipient_kind.label("o_recipient_kind"),
            o.recipient_ref.label("o_recipient_ref"),
            o.status.label("o_status"),
            o.due_at.label("o_due_at"),
            o.cause_event_id.label("o_cause_event_id"),
        )
        .select_from(expected.join(obligations, o.key == x.key, full=True))
        .where(
            or_(
                o.id.is_(None),
                and_(x.key.is_(None), o.status != VOIDED, ours),
                and_(
                    x.key.is_not(None),
                    or_(o.status == VOIDED, o.recipient_ref.is_distinct_from(x.recipient_ref)),
                ),
            )
        )
    )


def _settings(conn: Connection) -> None:
    """Per transaction, on PostgreSQL: the comparison is a hash join of two large sets, so
    give it the memory; and the query is large, so compiling it (JIT) costs more than it
    saves."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SET LOCAL work_mem = '256MB'"))
        conn.execute(text("SET LOCAL jit = off"))


def _run(
    conn: Connection, statements: list[Select[Any]], apart: bool, meanwhile: Callable[[], None]
) -> list[list[Any]]:
    """Run the statements, and ``meanwhile`` on ``conn``. With ``apart``, each statement runs
    on its own connection, at the same time (the store runs them on different cores, and the
    Python of ``meanwhile`` runs while they wait); each compares a disjoint set of rules
    within one snapshot."""
    if not apart or len(statements) < 2:
        meanwhile()
        return [list(conn.execute(stmt)) for stmt in statements]
    engine = conn.engine

    def one(stmt: Select[Any]) -> list[Any]:
        with engine.connect() as own, own.begin():
            _settings(own)
            return list(own.execute(stmt))

    with ThreadPoolExecutor(len(statements), thread_name_prefix="reconcile") as pool:
        running = [pool.submit(one, stmt) for stmt in statements]
        meanwhile()
        return [f.result() for f in running]


def _compare(
    conn: Connection,
    rules: RuleSet,
    report: ReconcileReport,
    *,
    apart: bool = False,
    meanwhile: Callable[[], None] = lambda: None,
) -> list[_Row]:
    """Fill ``report.extra`` and ``recipient_differs``; return the obligations that are
    required but absent or voided.

    FULL OUTER JOINs of the required keys with the stored obligations return only the
    differences: one for the bulk (the nazorg signals of every adult) and one for the other
    rules — with ``apart``, at the same time on two connections. The details of the missing
    obligations are then computed again for their periods alone (the same SQL, restricted)."""
    sql = _Sql(conn.dialect.name)
    built = _Expected(sql, rules)
    selects = built.period_rules() + built.event_rules()
    rest = [s for s in selects if s is not built.bulk]
    if built.bulk is None or not rest:
        statements = [_difference(selects, frozenset(), inside=False)]
    else:
        statements = [
            _difference([built.bulk], built.bulk_rules, inside=True),
            _difference(rest, built.bulk_rules, inside=False),
        ]
    results = _run(conn, statements, apart, meanwhile)
    # The required side may name one leave twice (a grant and its leave_start, two grants
    # for one day): group by key.
    by_key: dict[str, list[Any]] = defaultdict(list)
    extra: list[Any] = []
    for row in (r for rows in results for r in rows):
        if row.key is None:
            extra.append(row)
        else:
            by_key[row.key].append(row)
    missing: set[str] = set()
    differs: dict[str, Any] = {}  # key -> the stored side
    for key, found in by_key.items():
        first = found[0]
        if first.o_id is None or first.o_status == VOIDED:
            missing.add(key)
        else:
            differs[key] = first
    # the details: of the missing, in full; of the differing, which of the ways the facts
    # name the obligation counts (a leave announced by a grant is the grant's)
    periods = sorted({r.period_id for k in (*missing, *differs) for r in by_key[k]})
    detailed = _details(conn, sql, rules, periods, missing | set(differs))
    for key, stored in sorted(differs.items()):
        facts = detailed.get(key)
        if facts is None or facts.recipient_ref == stored.o_recipient_ref:
            continue
        report.recipient_differs.append(
            Gap(
                "recipient_differs",
                key,
                stored.o_rule_id,
                stored.o_period_ref,
                stored.o_occurrence,
                stored.o_recipient_kind,
                stored.o_recipient_ref,
                _utc(stored.o_due_at),
                stored.o_status,
                stored.o_id,
                stored.o_cause_event_id,
                expected_recipient=facts.recipient_ref,
                note=(
                    "the recipient is known now"
                    if stored.o_recipient_ref is None
                    else f"the stored facts give {facts.recipient_ref or 'no known recipient'}"
                ),
            )
        )
    for row in sorted(extra, key=lambda r: r.o_key):
        report.extra.append(
            Gap(
                "extra",
                row.o_key,
                row.o_rule_id,
                row.o_period_ref,
                row.o_occurrence,
                row.o_recipient_kind,
                row.o_recipient_ref,
                _utc(row.o_due_at),
                row.o_status,
                row.o_id,
                row.o_cause_event_id,
            )
        )
    return [detailed[k] for k in sorted(missing) if k in detailed]


def _details(
    conn: Connection, sql: _Sql, rules: RuleSet, periods: list[int], keys: set[str]
) -> dict[str, _Row]:
    """The required obligations ``keys`` in full, computed for their periods only (a key
    whose facts changed since the comparison read them is left out: the next run decides)."""
    found: dict[str, list[Any]] = defaultdict(list)
    for chunk in chunks(periods):
        detail = _Expected(sql, rules, period_ids=chunk).query()
        for row in conn.execute(select(detail)):
            if row.key in keys:
                found[row.key].append(row)
    out: dict[str, _Row] = {}
    for key, rows in found.items():
        # a leave announced by a grant is the grant's (the earliest, if several)
        rows.sort(key=lambda r: (r.source != "grant", _utc(r.event_at) or _NEVER))
        r = rows[0]
        out[key] = _Row(
            key,
            r.rule_id,
            r.recipient_kind,
            r.period_ref,
            r.occurrence,
            r.recipient_ref,
            r.source,
            r.cause_event_id,
            _utc(r.event_at),
            _utc(r.scope_known_at),
            _as_date(r.planned_release_date),
            r.leave_from,
            _utc(r.intake_at),
            _utc(r.ended_at),
        )
    return out


_NEVER = datetime.max.replace(tzinfo=UTC)


def _utc(value: Any) -> Any:
    if isinstance(value, str):  # a computed column on SQLite comes back as text
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value


def _as_date(value: Any) -> date | None:
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value))


def _planning(conn: Connection, refs: Iterable[str]) -> dict[str, tuple[str, datetime]]:
    """Per period: the event that last set its planned release date (a ``release_date_set``,
    else the intake), with when it happened."""
    latest: dict[str, tuple[int, datetime, str]] = {}
    rank = {EventKind.INTAKE.value: 0, EventKind.RELEASE_DATE_SET.value: 1}
    for chunk in chunks(sorted(set(refs))):
        for r in conn.execute(
            select(e.period_ref, e.kind, e.event_id, e.occurred_at).where(
                among(conn, e.period_ref, chunk),
                e.kind.in_(tuple(rank)),
                e.withdrawn_by.is_(None),
            )
        ):
            candidate = (rank[r.kind], _utc(r.occurred_at), r.event_id)
            if r.period_ref not in latest or candidate > latest[r.period_ref]:
                latest[r.period_ref] = candidate
    return {ref: (event_id, at) for ref, (_, at, event_id) in latest.items()}


def _intakes(conn: Connection, refs: Iterable[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for chunk in chunks(sorted(set(refs))):
        for r in conn.execute(
            select(e.period_ref, e.event_id).where(
                among(conn, e.period_ref, chunk),
                e.kind == EventKind.INTAKE.value,
                e.withdrawn_by.is_(None),
            )
        ):
            out[r.period_ref] = r.event_id
    return out


def _missing_gaps(conn: Connection, rules: RuleSet, rows: list[_Row]) -> list[Gap]:
    """Gaps for the missing obligations, with the due time the rules give and what caused them
    (looked up in bulk for these periods only)."""
    planning = _planning(conn, (r.period_ref for r in rows if r.source in ("planned", "released")))
    intakes = _intakes(conn, (r.period_ref for r in rows if r.source == "intake"))
    stored = {
        row.key: row.status
        for chunk in chunks([r.key for r in rows])
        for row in conn.execute(
            select(obligations.c.key, obligations.c.status).where(
                among(conn, obligations.c.key, chunk)
            )
        )
    }
    out: list[Gap] = []
    for row in rows:
        try:
            rule = rules.get(row.rule_id)
        except KeyError:  # pragma: no cover - the SQL only names rules of this rule set
            continue
        if row.source == "planned":
            row.cause_event_id, row.event_at = planning.get(row.period_ref, (None, None))
        elif row.source == "intake":
            row.cause_event_id = intakes.get(row.period_ref)
        planned_for, due = timing(rule, row, planning.get(row.period_ref, (None, None))[1])
        status = stored.get(row.key)
        if status is not None and status != VOIDED:
            continue  # written since the comparison read the obligations: not missing
        out.append(
            Gap(
                "missing_obligation",
                row.key,
                row.rule_id,
                row.period_ref,
                row.occurrence,
                row.recipient_kind,
                row.recipient_ref,
                due,
                status,
                None,
                row.cause_event_id,
                basis_at(row),
                planned_for=planned_for,
                note="exists but voided" if status == VOIDED else "",
            )
        )
    return out


def basis_at(row: _Row) -> datetime | None:
    """When the obligation became required: its event, or the registration of the victim
    that brought the period into scope, whichever was later."""
    times = [t for t in (row.event_at, row.scope_known_at) if t is not None]
    return max(times) if times else None


def timing(
    rule: Rule, row: _Row, planned_known_at: datetime | None
) -> tuple[datetime | None, datetime | None]:
    """(the moment notified about, the due time) by the reconciliation's own reading of the
    rule's timing, for an obligation found missing: the latest moment its notice should have
    gone out."""
    late = timedelta(hours=rule.late_within_hours)

    def planned(moment: datetime, known: datetime) -> datetime:
        due = moment - timedelta(days=rule.planned_notice_days)
        return due if due >= known else known + late

    moment: datetime | None = None
    due: datetime | None = None
    if row.source in ("planned", "released"):
        candidates: list[datetime] = []
        if row.planned_release_date is not None:
            moment = datetime.combine(
                row.planned_release_date, time(rule.planned_moment_hour), AMSTERDAM
            ).astimezone(UTC)
            known = planned_known_at or row.intake_at
            if known is not None:
                candidates.append(planned(moment, known))
        if row.source == "released" and row.ended_at is not None:
            moment = row.ended_at
            candidates.append(row.ended_at + late)
        due = min(candidates) if candidates else None
    elif row.source == "intake" and row.intake_at is not None:
        due = row.intake_at + timedelta(days=MIN_STAY_DAYS) + late
    elif row.source == "grant" and row.leave_from and row.event_at is not None:
        moment = datetime.fromisoformat(row.leave_from).astimezone(UTC)
        due = planned(moment, row.event_at)
    elif row.event_at is not None:
        if row.source == "leave_start":
            moment = row.event_at
        due = row.event_at + late
    if due is not None and row.scope_known_at is not None and row.scope_known_at > due:
        due = row.scope_known_at + late  # the victim registered after the notice was due
    return moment, due


def _delivery_gaps(
    conn: Connection, rules: RuleSet, now: datetime, report: ReconcileReport
) -> None:
    o = obligations.c
    columns = (
        o.id,
        o.key,
        o.rule_id,
        o.period_ref,
        o.occurrence,
        o.recipient_kind,
        o.recipient_ref,
        o.due_at,
        o.status,
        o.cause_event_id,
    )

    def gap(kind: str, r: Any, note: str = "") -> Gap:
        return Gap(
            kind,
            r.key,
            r.rule_id,
            r.period_ref,
            r.occurrence,
            r.recipient_kind,
            r.recipient_ref,
            r.due_at,
            r.status,
            r.id,
            r.cause_event_id,
            note=note,
        )

    for r in conn.execute(
        select(*columns).where(o.status.in_(UNDELIVERED), o.due_at < now).order_by(o.due_at, o.key)
    ):
        report.overdue.append(gap("overdue", r, f"status {r.status}"))
    # each rule's window as a cut-off time: delivered before it and not acknowledged
    windows: dict[str, datetime] = {
        rule.id: now - timedelta(hours=rule.ack_window_hours) for rule in rules.rules
    }
    cutoff = case(
        *(
            (o.rule_id == rule_id, literal(at, o.delivered_at.type))
            for rule_id, at in windows.items()
        ),
        else_=literal(now - DEFAULT_ACK_WINDOW, o.delivered_at.type),
    )
    for r in conn.execute(
        select(*columns, o.delivered_at)
        .where(
            o.status == "delivered",
            o.acknowledged_at.is_(None),
            o.delivered_at.is_not(None),
            o.delivered_at < cutoff,
        )
        .order_by(o.delivered_at, o.key)
    ):
        report.unacknowledged.append(gap("unacknowledged", r, f"delivered {_iso(r.delivered_at)}"))
    # status unresolved (through the status index); and, should a writer ever leave one in
    # another status without a recipient, those too (through the recipient index)
    unresolved = select(*columns).where(o.status == "unresolved")
    unnamed = select(*columns).where(
        o.recipient_kind.in_(sorted({r.recipient for r in rules.rules} | _KINDS)),
        o.recipient_ref.is_(None),
        o.status.not_in(("unresolved", VOIDED)),
    )
    found = union_all(unresolved, unnamed).subquery()
    for r in conn.execute(select(found).order_by(found.c.due_at, found.c.key)):
        report.unresolved.append(gap("unresolved", r, "no known recipient"))


# -- alerts ----------------------------------------------------------------------------------


ESCALATED = ("unacknowledged", "unresolved")  # gap kinds the worker's escalation also raises


def record_alerts(conn: Connection, report: ReconcileReport, now: datetime) -> None:
    """Raise one alert per gap (kept while it stays open), resolve the ones whose gap closed.

    An unacknowledged or unresolved obligation for which the worker's escalation already has
    an open alert (``unacknowledged:<id>``, ``unresolved:<id>``) gets no second one: the
    operator's queue holds the fact once. The gap is still reported; should escalation not
    have raised it, reconciliation does."""
    escalated = {
        r.key
        for r in conn.execute(
            select(alerts.c.key).where(alerts.c.status == "open", alerts.c.kind.in_(ESCALATED))
        )
    }
    wanted: dict[str, Gap] = {}
    for g in report.gaps:
        if g.kind in ESCALATED and f"{g.kind}:{g.obligation_id}" in escalated:
            report.alerts_escalated += 1
            continue
        wanted.setdefault(g.alert_key, g)
    open_alerts: dict[str, int] = {
        r.key: r.id
        for r in conn.execute(
            select(alerts.c.id, alerts.c.key).where(
                alerts.c.status == "open",
                alerts.c.kind.in_(ALERT_KINDS),
                alerts.c.key.startswith(ALERT_PREFIX, autoescape=True),
            )
        )
    }
    new = [
        {
            "kind": g.kind,
            "key": k,
            "message": g.message(),
            "details": json.dumps(g.as_json(), sort_keys=True),
            "raised_at": now,
            "status": "open",
        }
        for k, g in wanted.items()
        if k not in open_alerts
    ]
    if new:
        conn.execute(insert(alerts), new)
    closed = [alert_id for k, alert_id in open_alerts.items() if k not in wanted]
    for chunk in chunks(closed):
        conn.execute(
            update(alerts)
            .where(among(conn, alerts.c.id, chunk), alerts.c.status == "open")
            .values(status="resolved", resolved_at=now)
        )
    report.alerts_raised = len(new)
    report.alerts_resolved = len(closed)
    report.alerts_open = len(wanted)


# -- entry points ----------------------------------------------------------------------------


def shared(engine: Engine) -> bool:
    """Whether other connections see the same database (not so for SQLite in memory)."""
    database = engine.url.database
    return engine.dialect.name != "sqlite" or database not in (None, "", ":memory:")


def find_gaps(
    conn: Connection, now: datetime, rules: RuleSet | None = None, *, apart: bool = False
) -> ReconcileReport:
    """Compare inside the caller's transaction; writes nothing. ``apart``: the large
    comparison may run on two more connections at once (only when the caller's transaction
    has written nothing they would need to see)."""
    if now.tzinfo is None:
        raise ValueError(f"naive datetime [{now.isoformat()}]: give the time with its zone")
    rules = rules or default_rules()
    started = timer.perf_counter()
    report = ReconcileReport(now=now.astimezone(UTC), rules_version=rules.version)
    _settings(conn)

    def meanwhile() -> None:
        _delivery_gaps(conn, rules, report.now, report)
        report.obligations_checked = int(
            conn.execute(
                select(func.count()).select_from(obligations).where(obligations.c.status != VOIDED)
            ).scalar_one()
        )

    missing = _compare(conn, rules, report, apart=apart, meanwhile=meanwhile)
    report.missing = _missing_gaps(conn, rules, missing)
    # distinct keys required = stored and required + required but absent or voided
    report.required = report.obligations_checked - len(report.extra) + len(report.missing)
    report.seconds = timer.perf_counter() - started
    return report


def reconcile(
    engine: Engine,
    now: datetime | None = None,
    *,
    rules: RuleSet | None = None,
    record: bool = True,
) -> ReconcileReport:
    """One full reconciliation in one transaction; with ``record`` (the default) its gaps are
    stored as operator alerts and alerts of closed gaps are resolved."""
    now = now or datetime.now(UTC)
    with engine.begin() as conn:
        report = find_gaps(conn, now, rules, apart=shared(engine))
        if record:
            record_alerts(conn, report, report.now)
    return report


__all__ = [
    "ALERT_KINDS",
    "Gap",
    "ReconcileReport",
    "basis_at",
    "find_gaps",
    "reconcile",
    "record_alerts",
    "shared",
    "timing",
]
