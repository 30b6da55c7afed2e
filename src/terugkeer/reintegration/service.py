"""Actions on cases: consent, the five conditions, activities. Each action runs in one
transaction (its own when given an engine, the caller's when given a connection) and writes its
audit rows in it. Registration of personal reintegration data needs consent: given, with the
scope ``registration``; a withdrawal stops every further write (and the reads show only the
release signal again)."""

from __future__ import annotations

import calendar
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, select, update

from terugkeer.db.bulk import among, read_date, read_datetime
from terugkeer.db.engine import ConnOrEngine, transaction
from terugkeer.detention.tables import detention_periods, persons
from terugkeer.reintegration import codes
from terugkeer.reintegration.audit import actor_of, audit, audit_many, now_utc
from terugkeer.reintegration.codes import (
    ACTIVITY_TYPE,
    CONDITIONS,
    Condition,
    ConsentScope,
    ConsentStatus,
    Funder,
    Moment,
)
from terugkeer.reintegration.errors import Conflict, ConsentRequired, Invalid, NotFound
from terugkeer.reintegration.safety import (
    BSN_AS_REFERENCE,
    BSN_IN_TEXT,
    FORMULA_REASON,
    formula_like,
    looks_like_bsn,
)
from terugkeer.reintegration.scope import CaseStatus, local_date, today
from terugkeer.reintegration.tables import (
    activities,
    condition_facts,
    intake_screenings,
    reintegration_cases,
    reintegration_consents,
)
from terugkeer.security.actor import Actor

SCREENING_ACTOR = "DJI intake screening"

# Plausibility of registration dates (docs/registration.md, "Plausible dates"): how far a
# moment's date may lie from the date it is due, in days (before, after).
MOMENT_WINDOW: dict[Moment, tuple[int, int]] = {
    Moment.INTAKE: (30, 90),  # around the intake date
    Moment.RELEASE: (30, 30),  # around the release date
    Moment.MONTH_1: (15, 15),
    Moment.MONTH_6: (45, 45),
    Moment.MONTH_12: (60, 60),
    Moment.MONTH_24: (90, 90),
}  # before_release: from the intake to the release date
ACTIVITY_BEFORE_INTAKE = 365  # days an activity may have started before the intake (running care)
SCREENING_BEFORE_INTAKE = 30  # days a screening may precede the intake it belongs to
MAX_COST_CENTS = 1_000_000_000  # €10 million: anything above is a typing error
MAX_HOURS_X100 = 1_000_000  # 10,000 hours


@dataclass(frozen=True, slots=True)
class CaseRow:
    """A case with what detention knows about its period (the pre-fill)."""

    id: int
    period_id: int
    municipality: str
    municipal_ref: str | None
    status: str
    consent: str
    consent_scope: tuple[str, ...]
    opened_at: datetime
    period_ref: str
    institution: str
    title: str
    intake_at: datetime
    planned_release_date: date | None
    ended_at: datetime | None
    release_kind: str | None
    bsn: str | None
    prison_number: str | None
    birth_date: date | None
    sex: str | None

    @property
    def release_date(self) -> date | None:
        if self.status == CaseStatus.RETURNED and self.ended_at is not None:
            return local_date(self.ended_at)
        return self.planned_release_date

    @property
    def may_register(self) -> bool:
        return (
            self.consent == ConsentStatus.GIVEN and ConsentScope.REGISTRATION in self.consent_scope
        )


CASE_COLUMNS = (
    reintegration_cases.c.id,
    reintegration_cases.c.period_id,
    reintegration_cases.c.municipality,
    reintegration_cases.c.municipal_ref,
    reintegration_cases.c.status,
    reintegration_cases.c.consent,
    reintegration_cases.c.consent_scope,
    reintegration_cases.c.opened_at,
    detention_periods.c.period_ref,
    detention_periods.c.institution,
    detention_periods.c.title,
    detention_periods.c.intake_at,
    detention_periods.c.planned_release_date,
    detention_periods.c.ended_at,
    detention_periods.c.release_kind,
    persons.c.bsn,
    persons.c.prison_number,
    persons.c.birth_date,
    persons.c.sex,
)


def case_select() -> Any:
    return (
        select(*CASE_COLUMNS)
        .join(detention_periods, detention_periods.c.id == reintegration_cases.c.period_id)
        .join(persons, persons.c.id == reintegration_cases.c.person_id)
    )


def case_from_row(r: Any) -> CaseRow:
    return CaseRow(
        id=r.id,
        period_id=r.period_id,
        municipality=r.municipality,
        municipal_ref=r.municipal_ref,
        status=r.status,
        consent=r.consent,
        consent_scope=tuple(s for s in (r.consent_scope or "").split(",") if s),
        opened_at=r.opened_at,
        period_ref=r.period_ref,
        institution=r.institution,
        title=r.title,
        intake_at=r.intake_at,
        planned_release_date=read_date(r.planned_release_date),
        ended_at=read_datetime(r.ended_at),
        release_kind=r.release_kind,
        bsn=r.bsn,
        prison_number=r.prison_number,
        birth_date=read_date(r.birth_date),
        sex=r.sex,
    )


def load_case(conn: Connection, case_id: int, municipality: str | None = None) -> CaseRow:
    """The case, or NotFound (also when it belongs to another municipality than ``municipality``:
    a caseworker cannot learn that a case exists elsewhere)."""
    q = case_select().where(reintegration_cases.c.id == case_id)
    if municipality is not None:
        q = q.where(reintegration_cases.c.municipality == municipality)
    row = conn.execute(q).first()
    if row is None:
        where = f" in municipality [{municipality}]" if municipality else ""
        raise NotFound(f"no case [{case_id}]{where}")
    return case_from_row(row)


def require_registration(case: CaseRow) -> None:
    if case.may_register:
        return
    if case.consent == ConsentStatus.GIVEN:
        raise ConsentRequired(
            f"case [{case.id}]: the consent given does not cover registration "
            f"(scope: {', '.join(case.consent_scope) or 'none'})"
        )
    raise ConsentRequired(
        f"case [{case.id}] has no consent for registration (consent: {case.consent}); "
        "without it the case holds only the release signal"
    )


def add_months(day: date, months: int) -> date:
    month = day.month - 1 + months
    year = day.year + month // 12
    month = month % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def default_as_of(case: CaseRow, moment: Moment, on: date | None = None) -> date | None:
    """The date a status at ``moment`` holds on, when the caseworker gives none: the intake
    date, the release date, or the release date plus 1/6/12/24 months; before release: today."""
    if moment is Moment.INTAKE:
        return local_date(case.intake_at)
    release = case.release_date
    if moment is Moment.BEFORE_RELEASE:
        day = on or today()
        if case.status == CaseStatus.RETURNED and release is not None:
            day = min(day, release)  # the last day before release, for a case already out
        return day
    if release is None:
        return None
    if moment is Moment.RELEASE:
        return release
    return add_months(release, codes.MONTHS_AFTER_RELEASE[moment])


# --- consent --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConsentIn:
    status: str
    on_date: date
    scope: tuple[str, ...] = (ConsentScope.REGISTRATION.value,)

    def __post_init__(self) -> None:
        # a scope is a set: named twice (a form, a file, a request) it is kept once
        object.__setattr__(self, "scope", tuple(dict.fromkeys(self.scope)))


def check_consent(c: ConsentIn, on: date | None = None) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    if c.status not in (ConsentStatus.GIVEN, ConsentStatus.REFUSED, ConsentStatus.WITHDRAWN):
        problems.append(("status", "must be given, refused or withdrawn"))
    if c.on_date > (on or today()):
        problems.append(("date", "lies in the future"))
    bad = [s for s in c.scope if s not in {x.value for x in ConsentScope}]
    if bad:
        problems.append(("scope", f"unknown scope {', '.join(bad)}"))
    if c.status == ConsentStatus.GIVEN and not c.scope:
        problems.append(("scope", "consent given needs a scope"))
    return problems


def record_consent(
    target: ConnOrEngine,
    case_id: int,
    consent: ConsentIn,
    *,
    actor: Actor | str,
    municipality: str | None = None,
    source: str = "api",
    now: datetime | None = None,
) -> CaseRow:
    """Record consent given, refused or withdrawn. Giving consent pre-fills the intake moment
    from the prison's screening, if there is one."""
    now = now or now_utc()
    problems = check_consent(consent)
    if problems:
        field, reason = problems[0]
        raise Invalid(f"consent {field}: {reason}", field=field)
    with transaction(target) as conn:
        case = load_case(conn, case_id, municipality)
        if consent.status == ConsentStatus.WITHDRAWN and case.consent != ConsentStatus.GIVEN:
            raise Conflict(f"case [{case_id}]: no consent given to withdraw ({case.consent})")
        late = consent_too_early(current_consent_date(conn, case.id), consent.on_date)
        if late:
            raise Conflict(f"case [{case_id}]: the consent's date {late}", field="date")
        apply_consent(conn, case, consent, actor=actor, source=source, now=now)
        return load_case(conn, case_id)


def current_consent_date(conn: Connection, case_id: int) -> date | None:
    """The date of the case's current consent (the last one recorded), None without one."""
    on_date = conn.execute(
        select(reintegration_consents.c.on_date)
        .where(reintegration_consents.c.case_id == case_id)
        .order_by(reintegration_consents.c.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    return read_date(on_date)


def consent_too_early(current: date | None, on_date: date) -> str | None:
    """Why a consent of ``on_date`` cannot become the case's current one, or None. One dated
    before the current consent is older news: recorded, it would undo a later decision (an
    old spreadsheet's consent would bring back consent that was withdrawn since)."""
    if current is not None and on_date < current:
        return f"lies before that of the case's current consent ({current.isoformat()})"
    return None


def apply_consent(
    conn: Connection,
    case: CaseRow,
    consent: ConsentIn,
    *,
    actor: Actor | str,
    source: str,
    now: datetime,
) -> None:
    scope = ",".join(sorted(consent.scope)) if consent.status == ConsentStatus.GIVEN else ""
    conn.execute(
        reintegration_consents.insert().values(
            case_id=case.id,
            status=consent.status,
            on_date=consent.on_date,
            scope=scope,
            recorded_at=now,
            recorded_by=actor_of(actor).name,
            source=source,
        )
    )
    conn.execute(
        update(reintegration_cases)
        .where(reintegration_cases.c.id == case.id)
        .values(consent=consent.status, consent_scope=scope or None, updated_at=now)
    )
    audit(
        conn,
        actor,
        f"consent_{consent.status}",
        case.id,
        {"on": consent.on_date.isoformat(), "scope": scope, "source": source},
        at=now,
    )
    if consent.status == ConsentStatus.GIVEN and ConsentScope.REGISTRATION in consent.scope:
        prefill_screening(conn, case.id, case.period_id, now=now)


def prefill_screening(conn: Connection, case_id: int, period_id: int, *, now: datetime) -> int:
    """Copy the prison's intake screening into the case as intake facts, where the case has no
    intake fact of that condition yet. Returns the facts written."""
    return prefill_screenings(conn, [(case_id, period_id)], now=now)


def prefill_screenings(conn: Connection, cases: Sequence[tuple[int, int]], *, now: datetime) -> int:
    """:func:`prefill_screening` for many (case id, period id) pairs, with set-based reads."""
    from terugkeer.db.bulk import chunks

    period_of = dict(cases)
    screened: dict[int, Any] = {}
    for chunk in chunks(sorted(set(period_of.values()))):
        for s in conn.execute(
            select(intake_screenings).where(among(conn, intake_screenings.c.period_id, chunk))
        ):
            screened[s.period_id] = s
    todo = [c for c, p in period_of.items() if p in screened]
    have: set[tuple[int, str]] = set()
    for chunk in chunks(sorted(todo)):
        for r in conn.execute(
            select(condition_facts.c.case_id, condition_facts.c.condition).where(
                among(conn, condition_facts.c.case_id, chunk),
                condition_facts.c.moment == Moment.INTAKE.value,
            )
        ):
            have.add((r.case_id, r.condition))
    rows = []
    written: dict[int, int] = {}
    for case_id in todo:
        s = screened[period_of[case_id]]
        for condition in CONDITIONS:
            status = getattr(s, f"{condition.value}_status")
            if status is None or (case_id, condition.value) in have:
                continue
            rows.append(
                {
                    "case_id": case_id,
                    "condition": condition.value,
                    "moment": Moment.INTAKE.value,
                    "status": status,
                    "detail": s.care_needs if condition is Condition.CARE else None,
                    "as_of": read_date(s.screened_on),
                    "recorded_at": now,
                    "recorded_by": SCREENING_ACTOR,
                    "source": "screening",
                }
            )
            written[case_id] = written.get(case_id, 0) + 1
    if rows:
        conn.execute(condition_facts.insert(), rows)
        audit_many(
            conn,
            SCREENING_ACTOR,
            "screening_prefilled",
            [(case_id, {"facts": n}) for case_id, n in written.items()],
            at=now,
        )
    return len(rows)


# --- the five conditions --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConditionsIn:
    moment: str
    statuses: Mapping[str, str]  # condition -> status code
    care_needs: tuple[str, ...] = ()
    as_of: date | None = None


def normalise_conditions(c: ConditionsIn) -> ConditionsIn:
    """``c`` with the Dutch labels it may use (``bij ontslag``, ``onderdak``: ``huurwoning``,
    ``ggz``) replaced by their codes; what is not a known spelling is left for the check."""

    def code(list_name: str, text: str) -> str:
        return codes.lookup(list_name, text) or text

    statuses = {}
    for name, status in c.statuses.items():
        condition = code("condition", name)
        statuses[condition] = (
            code(condition, status) if condition in {x.value for x in CONDITIONS} else status
        )
    return replace(
        c,
        moment=code("moment", c.moment),
        statuses=statuses,
        care_needs=tuple(code("care_need", n) for n in c.care_needs),
    )


def check_conditions(c: ConditionsIn) -> list[tuple[str, str, str]]:
    """(field, value, reason) for everything wrong with ``c``, without the database."""
    problems: list[tuple[str, str, str]] = []
    if c.moment not in {m.value for m in Moment}:
        problems.append(("moment", c.moment, "unknown moment; allowed: " + codes.allowed("moment")))
    if not c.statuses:
        problems.append(("statuses", "", "no condition given"))
    for name, status in c.statuses.items():
        try:
            condition = Condition(name)
        except ValueError:
            problems.append((name, status, "unknown condition"))
            continue
        if not codes.is_status(condition, status):
            allowed = codes.allowed(condition.value)
            problems.append((name, status, f"unknown status; allowed: {allowed}"))
    needs_ok = {n.value for n in codes.CareNeed}
    for need in c.care_needs:
        if need not in needs_ok:
            problems.append(
                ("care_needs", need, "unknown care need; allowed: " + codes.allowed("care_need"))
            )
    if c.care_needs:
        care = c.statuses.get(Condition.CARE.value)
        if care is None:
            problems.append(("care_needs", ",".join(c.care_needs), "care needs without care"))
        elif care == "not_needed":
            problems.append(("care_needs", ",".join(c.care_needs), "care is not needed"))
    if c.as_of is not None and c.as_of > today():
        problems.append(("as_of", c.as_of.isoformat(), "lies in the future"))
    return problems


def current_facts(
    conn: Connection, case_ids: Sequence[int]
) -> dict[int, dict[tuple[str, str], Any]]:
    """Per case: (condition, moment) -> the newest fact row."""
    out: dict[int, dict[tuple[str, str], Any]] = {}
    from terugkeer.db.bulk import chunks

    for chunk in chunks(list(case_ids)):
        for r in conn.execute(
            select(condition_facts)
            .where(among(conn, condition_facts.c.case_id, chunk))
            .order_by(condition_facts.c.id)
        ):
            out.setdefault(r.case_id, {})[(r.condition, r.moment)] = r
    return out


@dataclass
class RecordResult:
    written: int = 0
    unchanged: int = 0


def plan_conditions(
    case: CaseRow, c: ConditionsIn, current: Mapping[tuple[str, str], Any]
) -> tuple[date, list[tuple[str, str, str | None]]]:
    """The date and the (condition, status, detail) facts that differ from ``current``;
    raises Invalid when the moment cannot be recorded yet."""
    moment = Moment(c.moment)
    if moment in codes.MONTHS_AFTER_RELEASE and case.status != CaseStatus.RETURNED:
        raise Invalid(
            f"case [{case.id}]: moment {moment.value} needs a release into society", field="moment"
        )
    as_of = c.as_of or default_as_of(case, moment)
    if as_of is None:
        raise Invalid(
            f"case [{case.id}]: no release date known: give the date for {moment.value}",
            field="as_of",
        )
    problem = implausible_date(case, moment, as_of)
    if problem is not None:
        raise Invalid(f"case [{case.id}]: {problem}", field="as_of")
    facts: list[tuple[str, str, str | None]] = []
    for name in sorted(c.statuses, key=lambda n: CONDITIONS.index(Condition(n))):
        status = c.statuses[name]
        detail = ",".join(sorted(c.care_needs)) or None if name == Condition.CARE else None
        now_fact = current.get((name, moment.value))
        if (
            now_fact is not None
            and now_fact.status == status
            and now_fact.detail == detail
            and read_date(now_fact.as_of) == as_of
        ):
            continue
        facts.append((name, status, detail))
    return as_of, facts


def _dmy(day: date) -> str:
    return f"{day.day:02d}-{day.month:02d}-{day.year:04d}"


def moment_window(case: CaseRow, moment: Moment) -> tuple[date, date] | None:
    """The dates a registration of ``moment`` may carry for this case (``MOMENT_WINDOW``);
    None when the case's dates do not tell yet (no release known)."""
    intake = local_date(case.intake_at)
    release = case.release_date
    if moment is Moment.BEFORE_RELEASE:
        last = release if release is not None and case.status == CaseStatus.RETURNED else None
        return intake, last or today()
    if moment is Moment.INTAKE:
        due: date | None = intake
    else:
        due = default_as_of(case, moment)
    if due is None:
        return None
    before, after = MOMENT_WINDOW[moment]
    first, last = due - timedelta(days=before), due + timedelta(days=after)
    if moment is not Moment.INTAKE:
        first = max(first, intake)
    return first, last


def implausible_date(case: CaseRow, moment: Moment, as_of: date) -> str | None:
    """Why ``as_of`` is not a plausible date for ``moment`` of this case, or None."""
    window = moment_window(case, moment)
    if window is None or window[0] <= as_of <= window[1]:
        return None
    name = codes.MOMENT_LABELS[moment]
    return (
        f"date {_dmy(as_of)} is implausible for {moment.value} ({name}): expected between "
        f"{_dmy(window[0])} and {_dmy(window[1])} (intake {_dmy(local_date(case.intake_at))}"
        + (f", release {_dmy(case.release_date)})" if case.release_date else ")")
    )


def record_conditions(
    target: ConnOrEngine,
    case_id: int,
    c: ConditionsIn,
    *,
    actor: Actor | str,
    municipality: str | None = None,
    source: str = "api",
    now: datetime | None = None,
) -> RecordResult:
    """Record statuses of conditions at a moment, as new facts; a status equal to the current
    one (same date, same detail) is not written again."""
    now = now or now_utc()
    c = normalise_conditions(c)
    problems = check_conditions(c)
    if problems:
        field, value, reason = problems[0]
        raise Invalid(f"{field} [{value}]: {reason}", field=field)
    with transaction(target) as conn:
        case = load_case(conn, case_id, municipality)
        require_registration(case)
        as_of, facts = plan_conditions(case, c, current_facts(conn, [case_id]).get(case_id, {}))
        if facts:
            conn.execute(
                condition_facts.insert(),
                [
                    {
                        "case_id": case_id,
                        "condition": name,
                        "moment": c.moment,
                        "status": status,
                        "detail": detail,
                        "as_of": as_of,
                        "recorded_at": now,
                        "recorded_by": actor_of(actor).name,
                        "source": source,
                    }
                    for name, status, detail in facts
                ],
            )
            audit(
                conn,
                actor,
                "conditions_recorded",
                case_id,
                {"moment": c.moment, "conditions": [f[0] for f in facts], "source": source},
                at=now,
            )
        return RecordResult(len(facts), len(c.statuses) - len(facts))


# --- activities -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ActivityIn:
    type: str
    provider: str
    start_date: date
    end_date: date | None = None
    hours_x100: int | None = None
    cost_cents: int = 0
    funder: str | None = None
    programme: str | None = None
    municipal_ref: str | None = None

    @property
    def key(self) -> str:
        return activity_key(self.municipal_ref, self.type, self.start_date, self.provider)

    def values(self) -> tuple[Any, ...]:
        """What an import compares to see whether a stored activity changed."""
        return (
            self.type,
            self.provider,
            self.start_date,
            self.end_date,
            self.hours_x100,
            self.cost_cents,
            self.funder,
            self.programme,
        )


def activity_key(ref: str | None, type_: str, start: date, provider: str) -> str:
    return f"ref:{ref}" if ref else f"{type_}|{start.isoformat()}|{provider}"[:200]


def normalise_activity(a: ActivityIn) -> ActivityIn:
    """``a`` with a Dutch activity type or funder (``schuldhulpverlening``, ``gemeente``)
    replaced by its code."""
    funder = a.funder
    if funder is not None:
        funder = codes.lookup("funder", funder) or funder
    return replace(a, type=codes.lookup("activity_type", a.type) or a.type, funder=funder)


def check_activity(a: ActivityIn) -> list[tuple[str, str, str]]:
    problems: list[tuple[str, str, str]] = []
    if a.type not in ACTIVITY_TYPE:
        problems.append(
            ("type", a.type, "unknown activity type; allowed: " + codes.allowed("activity_type"))
        )
    for name, text in (
        ("provider", a.provider),
        ("programme", a.programme),
        ("municipal_ref", a.municipal_ref),
    ):
        if formula_like(text):
            problems.append((name, str(text)[:20], FORMULA_REASON))
    if a.municipal_ref is not None and looks_like_bsn(a.municipal_ref):
        problems.append(("municipal_ref", "*********", BSN_AS_REFERENCE))
    for name, text in (("provider", a.provider), ("programme", a.programme)):
        if text is not None and looks_like_bsn(text):
            problems.append((name, "*********", BSN_IN_TEXT))
    if not a.provider.strip():
        problems.append(("provider", a.provider, "a provider is required"))
    elif len(a.provider) > 120:
        problems.append(("provider", a.provider[:20] + "…", "longer than 120 characters"))
    if a.end_date is not None and a.end_date < a.start_date:
        problems.append(("end_date", a.end_date.isoformat(), "before the start date"))
    if a.hours_x100 is not None and not 0 <= a.hours_x100 <= MAX_HOURS_X100:
        problems.append(("hours", str(a.hours_x100 / 100), "out of range 0-10,000"))
    if not 0 <= a.cost_cents <= MAX_COST_CENTS:
        problems.append(("cost", str(a.cost_cents / 100), "out of range 0-10,000,000 euros"))
    if a.funder is not None and a.funder not in {f.value for f in Funder}:
        problems.append(("funder", a.funder, "unknown funder; allowed: " + codes.allowed("funder")))
    if a.cost_cents > 0 and a.funder is None:
        problems.append(("funder", "", "a cost needs its funder"))
    if a.programme is not None and len(a.programme) > 100:
        problems.append(("programme", a.programme[:20] + "…", "longer than 100 characters"))
    if a.municipal_ref is not None and len(a.municipal_ref) > 64:
        problems.append(("municipal_ref", a.municipal_ref[:20] + "…", "longer than 64 characters"))
    return problems


def _activity_row(a: ActivityIn) -> dict[str, Any]:
    return {
        "key": a.key,
        "municipal_ref": a.municipal_ref,
        "type": a.type,
        "condition": str(ACTIVITY_TYPE[a.type].condition),
        "provider": a.provider,
        "start_date": a.start_date,
        "end_date": a.end_date,
        "hours_x100": a.hours_x100,
        "cost_cents": a.cost_cents,
        "funder": a.funder,
        "programme": a.programme,
    }


def check_activity_dates(case: CaseRow, a: ActivityIn) -> str | None:
    """Why the activity's start is implausible for this case (long before the intake)."""
    first = local_date(case.intake_at) - timedelta(days=ACTIVITY_BEFORE_INTAKE)
    if a.start_date < first:
        return (
            f"start date {_dmy(a.start_date)} is implausible: more than "
            f"{ACTIVITY_BEFORE_INTAKE} days before the intake ({_dmy(local_date(case.intake_at))})"
        )
    return None


def _check_or_raise(a: ActivityIn) -> None:
    problems = check_activity(a)
    if problems:
        field, value, reason = problems[0]
        raise Invalid(f"{field} [{value}]: {reason}", field=field)


def add_activity(
    target: ConnOrEngine,
    case_id: int,
    a: ActivityIn,
    *,
    actor: Actor | str,
    municipality: str | None = None,
    source: str = "api",
    now: datetime | None = None,
) -> int:
    now = now or now_utc()
    a = normalise_activity(a)
    _check_or_raise(a)
    with transaction(target) as conn:
        case = load_case(conn, case_id, municipality)
        require_registration(case)
        if (problem := check_activity_dates(case, a)) is not None:
            raise Invalid(f"start_date: {problem}", field="start_date")
        clash = conn.execute(
            select(activities.c.id).where(
                activities.c.case_id == case_id, activities.c.key == a.key
            )
        ).first()
        if clash is not None:
            raise Conflict(f"case [{case_id}] already has this activity (id {clash.id})")
        new_id = conn.execute(
            activities.insert().values(
                case_id=case_id,
                recorded_at=now,
                recorded_by=actor_of(actor).name,
                source=source,
                updated_at=now,
                **_activity_row(a),
            )
        ).inserted_primary_key
        assert new_id is not None  # noqa: S101
        activity_id = int(new_id[0])
        audit(
            conn,
            actor,
            "activity_added",
            case_id,
            {"activity_id": activity_id, "type": a.type},
            at=now,
        )
        return activity_id


def update_activity(
    target: ConnOrEngine,
    case_id: int,
    activity_id: int,
    a: ActivityIn,
    *,
    actor: Actor | str,
    municipality: str | None = None,
    source: str = "api",
    now: datetime | None = None,
) -> None:
    """Replace an activity's values; the old ones go into the audit trail."""
    now = now or now_utc()
    a = normalise_activity(a)
    _check_or_raise(a)
    with transaction(target) as conn:
        case = load_case(conn, case_id, municipality)
        require_registration(case)
        if (problem := check_activity_dates(case, a)) is not None:
            raise Invalid(f"start_date: {problem}", field="start_date")
        old = conn.execute(
            select(activities).where(
                activities.c.id == activity_id, activities.c.case_id == case_id
            )
        ).first()
        if old is None:
            raise NotFound(f"no activity [{activity_id}] in case [{case_id}]")
        clash = conn.execute(
            select(activities.c.id).where(
                activities.c.case_id == case_id,
                activities.c.key == a.key,
                activities.c.id != activity_id,
            )
        ).first()
        if clash is not None:
            raise Conflict(f"case [{case_id}] already has this activity (id {clash.id})")
        conn.execute(
            update(activities)
            .where(activities.c.id == activity_id)
            .values(updated_at=now, source=source, **_activity_row(a))
        )
        before = {
            k: getattr(old, k) for k in _activity_row(a) if getattr(old, k) != _activity_row(a)[k]
        }
        audit(
            conn,
            actor,
            "activity_changed",
            case_id,
            {"activity_id": activity_id, "before": before},
            at=now,
        )
