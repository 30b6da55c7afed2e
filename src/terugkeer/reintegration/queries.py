"""Reading reintegration data: cases with their pre-fill, the conditions per moment, activities,
the registration form and the steering figures. Queries never commit; the readers of personal
data (case, history, activities) write an audit row in the caller's transaction."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, and_, func, or_, select
from sqlalchemy import case as sql_case

from terugkeer.db.bulk import among, chunks, read_date
from terugkeer.detention.tables import detention_periods
from terugkeer.domain.refdata import refdata
from terugkeer.reintegration import codes
from terugkeer.reintegration.audit import audit, audit_many
from terugkeer.reintegration.codes import (
    ACTIVITY_TYPE,
    CONDITIONS,
    MOMENTS,
    Condition,
    ConsentStatus,
    InOrder,
    Moment,
)
from terugkeer.reintegration.schemas import (
    ActivityRead,
    CaseRead,
    CaseSummary,
    Completeness,
    ConsentRead,
    CostLine,
    FactRead,
    FormField,
    MomentCompleteness,
    MomentRead,
    NotInOrder,
    PeriodSignal,
    RegistrationForm,
    UpcomingReturn,
)
from terugkeer.reintegration.scope import AMSTERDAM, CaseStatus, local_date, today
from terugkeer.reintegration.service import (
    CaseRow,
    add_months,
    case_from_row,
    case_select,
    current_facts,
    default_as_of,
    load_case,
)
from terugkeer.reintegration.tables import (
    activities,
    condition_facts,
    reintegration_cases,
    reintegration_consents,
)
from terugkeer.security.actor import Actor

CENT = Decimal("0.01")


def _euros(cents: int) -> Decimal:
    return (Decimal(cents) / 100).quantize(CENT)


def _label(condition: str, status: str) -> str:
    for s in codes.STATUSES[Condition(condition)]:
        if s.code == status:
            return s.label
    return status


def fact_read(r: Any) -> FactRead:
    return FactRead(
        condition=r.condition,
        moment=r.moment,
        status=r.status,
        label=_label(r.condition, r.status),
        in_order=codes.in_order(Condition(r.condition), r.status),
        detail=r.detail,
        as_of=read_date(r.as_of),
        recorded_at=r.recorded_at,
        recorded_by=r.recorded_by,
        source=r.source,
    )


def signal(case: CaseRow) -> PeriodSignal:
    return PeriodSignal(
        period_ref=case.period_ref,
        institution=case.institution,
        title=case.title,
        intake_date=local_date(case.intake_at),
        planned_release_date=case.planned_release_date,
        release_date=case.release_date if case.status == CaseStatus.RETURNED else None,
        release_kind=case.release_kind,
        bsn=case.bsn,
        prison_number=case.prison_number,
        birth_date=case.birth_date,
        sex=case.sex,
    )


def moments_of(current: dict[tuple[str, str], Any]) -> list[MomentRead]:
    out = []
    for moment in MOMENTS:
        facts = {c.value: current.get((c.value, moment.value)) for c in CONDITIONS}
        if not any(facts.values()):
            continue
        reads = {k: fact_read(v) if v is not None else None for k, v in facts.items()}
        out.append(
            MomentRead(
                moment=moment.value,
                label=codes.MOMENT_LABELS[moment],
                in_order=codes.all_in_order(
                    {Condition(k): v.in_order for k, v in reads.items() if v is not None}
                ),
                complete=all(v is not None for v in reads.values()),
                conditions=reads,
            )
        )
    return out


def get_case(
    conn: Connection, case_id: int, municipality: str | None, *, actor: Actor | str
) -> CaseRead:
    case = load_case(conn, case_id, municipality)
    audit(conn, actor, "case_read", case.id, {"municipality": case.municipality})
    moments: list[MomentRead] | None = None
    n_activities: int | None = None
    cost: Decimal | None = None
    if case.may_register:
        moments = moments_of(current_facts(conn, [case.id]).get(case.id, {}))
        n, cents = conn.execute(
            select(func.count(), func.coalesce(func.sum(activities.c.cost_cents), 0)).where(
                activities.c.case_id == case.id
            )
        ).one()
        n_activities, cost = int(n), _euros(int(cents))
    return CaseRead(
        id=case.id,
        municipality=case.municipality,
        municipal_ref=case.municipal_ref,
        status=case.status,
        consent=case.consent,
        consent_scope=list(case.consent_scope),
        opened_at=case.opened_at,
        period=signal(case),
        registration_allowed=case.may_register,
        moments=moments,
        activities=n_activities,
        cost_eur=cost,
    )


def list_cases(
    conn: Connection,
    municipality: str,
    *,
    actor: Actor | str,
    status: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[CaseSummary]:
    q = case_select().where(reintegration_cases.c.municipality == municipality)
    if status is not None:
        q = q.where(reintegration_cases.c.status == status)
    rows = conn.execute(q.order_by(reintegration_cases.c.id).limit(limit).offset(offset)).all()
    # one row per case shown, so that "who saw this case" has an answer
    audit_many(conn, actor, "case_listed", [(r.id, {}) for r in rows])
    out = []
    for r in rows:
        case = case_from_row(r)
        out.append(
            CaseSummary(
                id=case.id,
                municipal_ref=case.municipal_ref,
                status=case.status,
                consent=case.consent,
                period_ref=case.period_ref,
                release_date=case.release_date,
            )
        )
    return out


def consent_history(
    conn: Connection, case_id: int, municipality: str | None, *, actor: Actor | str
) -> list[ConsentRead]:
    case = load_case(conn, case_id, municipality)
    audit(conn, actor, "consents_read", case.id, {})
    return [
        ConsentRead(
            status=r.status,
            date=read_date(r.on_date),
            scope=[s for s in r.scope.split(",") if s],
            recorded_at=r.recorded_at,
            recorded_by=r.recorded_by,
            source=r.source,
        )
        for r in conn.execute(
            select(reintegration_consents)
            .where(reintegration_consents.c.case_id == case_id)
            .order_by(reintegration_consents.c.id)
        )
    ]


def readable_case(conn: Connection, case_id: int, municipality: str | None) -> CaseRow:
    """The case, when its personal reintegration data may be shown (consent given)."""
    from terugkeer.reintegration.service import require_registration

    case = load_case(conn, case_id, municipality)
    require_registration(case)
    return case


def condition_history(
    conn: Connection, case_id: int, municipality: str | None, *, actor: Actor | str
) -> list[FactRead]:
    """Every fact of the case, oldest first: nothing is overwritten."""
    case = readable_case(conn, case_id, municipality)
    audit(conn, actor, "conditions_read", case.id, {"history": True})
    return [
        fact_read(r)
        for r in conn.execute(
            select(condition_facts)
            .where(condition_facts.c.case_id == case_id)
            .order_by(condition_facts.c.id)
        )
    ]


def current_conditions(
    conn: Connection, case_id: int, municipality: str | None, *, actor: Actor | str
) -> list[MomentRead]:
    case = readable_case(conn, case_id, municipality)
    audit(conn, actor, "conditions_read", case.id, {})
    return moments_of(current_facts(conn, [case.id]).get(case.id, {}))


def activity_read(r: Any) -> ActivityRead:
    return ActivityRead(
        id=r.id,
        municipal_ref=r.municipal_ref,
        type=r.type,
        label=ACTIVITY_TYPE[r.type].label if r.type in ACTIVITY_TYPE else r.type,
        condition=r.condition,
        provider=r.provider,
        start_date=read_date(r.start_date),
        end_date=read_date(r.end_date),
        hours=None if r.hours_x100 is None else (Decimal(r.hours_x100) / 100).quantize(CENT),
        cost_eur=_euros(r.cost_cents),
        funder=r.funder,
        programme=r.programme,
        recorded_at=r.recorded_at,
        recorded_by=r.recorded_by,
        source=r.source,
    )


def list_activities(
    conn: Connection, case_id: int, municipality: str | None, *, actor: Actor | str
) -> list[ActivityRead]:
    case = readable_case(conn, case_id, municipality)
    audit(conn, actor, "activities_read", case.id, {})
    return [
        activity_read(r)
        for r in conn.execute(
            select(activities).where(activities.c.case_id == case_id).order_by(activities.c.id)
        )
    ]


# --- the registration form and its burden --------------------------------------------------


def registration_form(
    conn: Connection,
    case_id: int,
    moment: str,
    municipality: str | None = None,
    *,
    actor: Actor | str,
) -> RegistrationForm:
    """The fields of a complete registration of ``moment`` for this case, with what is filled in
    before the caseworker starts: the moment, its date (from the detention data), who records
    (the signed-in user) and, at intake, the prison's screening. ``to_type`` counts the
    required fields left: the burden that ``docs/conditions.md`` states and a test keeps."""
    case = load_case(conn, case_id, municipality)
    m = Moment(codes.lookup("moment", moment) or moment)
    current = current_facts(conn, [case.id]).get(case.id, {}) if case.may_register else {}
    # the form shows the current statuses (care needs too): a read, in the caller's transaction
    audit(conn, actor, "form_read", case.id, {"moment": m.value})
    as_of = default_as_of(case, m)
    fields = [
        FormField(
            name="moment",
            label=f"meetmoment: {codes.MOMENT_LABELS[m]}",
            required=True,
            value=m.value,
            prefilled_from="the form chosen",
        ),
        FormField(
            name="as_of",
            label="peildatum",
            required=True,
            value=as_of.isoformat() if as_of else None,
            prefilled_from="detention data" if as_of else None,
        ),
        FormField(
            name="recorded_by",
            label="geregistreerd door",
            required=True,
            value="(signed-in user)",
            prefilled_from="login",
        ),
    ]
    for c in CONDITIONS:
        fact = current.get((c.value, m.value))
        fields.append(
            FormField(
                name=c.value,
                label=codes.CONDITION_LABELS[c],
                required=True,
                value=fact.status if fact is not None else None,
                prefilled_from=fact.source if fact is not None else None,
                choices=list(codes.status_codes(c)),
            )
        )
    care = current.get((Condition.CARE.value, m.value))
    fields.append(
        FormField(
            name="care_needs",
            label="zorgbehoefte (bij zorg nodig)",
            # needed when care is needed: required while care is not yet known (the worst
            # case), not once care is recorded as not needed or unknown
            required=care is None or care.status in ("arranged", "not_arranged"),
            value=care.detail if care is not None else None,
            prefilled_from=care.source if care is not None and care.detail else None,
            choices=[n.value for n in codes.CareNeed],
        )
    )
    to_type = sum(1 for f in fields if f.required and f.value is None)
    return RegistrationForm(case_id=case.id, moment=m.value, fields=fields, to_type=to_type)


# --- steering -------------------------------------------------------------------------------


def upcoming_returns(
    conn: Connection,
    municipality: str,
    *,
    actor: Actor | str,
    on: date | None = None,
    days: int = 30,
) -> list[UpcomingReturn]:
    """Cases whose planned release falls in the next ``days`` days (from ``on``, default today):
    those still planned and, looking back from a date in the past, those that were still to
    come on ``on`` and have returned since (``status`` says which). Each case shown is a
    ``case_listed`` row in the audit log, in the caller's transaction."""
    out = _upcoming(conn, municipality, on, days)
    _listed(conn, actor, out)
    return out


def upcoming_returns_page(
    conn: Connection,
    municipality: str,
    *,
    actor: Actor | str,
    limit: int,
    offset: int = 0,
    on: date | None = None,
    days: int = 30,
) -> tuple[int, list[UpcomingReturn]]:
    """One page of :func:`upcoming_returns` and how many there are in all: only the cases on
    the page are ``case_listed`` in the audit log (the others were not shown)."""
    out = _upcoming(conn, municipality, on, days)
    shown = out[offset : offset + limit]
    _listed(conn, actor, shown)
    return len(out), shown


def _listed(conn: Connection, actor: Actor | str, shown: Sequence[UpcomingReturn]) -> None:
    audit_many(conn, actor, "case_listed", [(r.case_id, {"list": "upcoming"}) for r in shown])


def _upcoming(
    conn: Connection, municipality: str, on: date | None, days: int
) -> list[UpcomingReturn]:
    start = on or today()
    end = start + timedelta(days=days)
    first = datetime.combine(start, time(0), AMSTERDAM)
    after = datetime.combine(end + timedelta(days=1), time(0), AMSTERDAM)
    q = case_select().where(
        reintegration_cases.c.municipality == municipality,
        or_(
            and_(
                reintegration_cases.c.status == CaseStatus.PLANNED.value,
                detention_periods.c.planned_release_date >= start,
                detention_periods.c.planned_release_date <= end,
            ),
            and_(
                reintegration_cases.c.status == CaseStatus.RETURNED.value,
                detention_periods.c.ended_at >= first,
                detention_periods.c.ended_at < after,
            ),
        ),
    )
    out = []
    for r in conn.execute(q.order_by(reintegration_cases.c.id)):
        case = case_from_row(r)
        when = case.release_date
        assert when is not None  # noqa: S101 - filtered above
        out.append(
            UpcomingReturn(
                case_id=case.id,
                municipal_ref=case.municipal_ref,
                period_ref=case.period_ref,
                institution=case.institution,
                planned_release_date=when,
                days_until=(when - start).days,
                consent=case.consent,
                status=case.status,
            )
        )
    out.sort(key=lambda u: (u.planned_release_date, u.case_id))
    return out


def _registrable(conn: Connection, municipality: str | None) -> list[CaseRow]:
    q = case_select().where(
        reintegration_cases.c.consent == ConsentStatus.GIVEN.value,
        reintegration_cases.c.status != CaseStatus.CANCELLED.value,
    )
    if municipality is not None:
        q = q.where(reintegration_cases.c.municipality == municipality)
    return [c for c in map(case_from_row, conn.execute(q)) if c.may_register]


def not_in_order_at_release(
    conn: Connection, municipality: str, *, actor: Actor | str
) -> list[NotInOrder]:
    """Returned cases (with consent) whose conditions at release are not all in order: a
    condition not in order, or not known. Each case shown is a ``case_listed`` row in the audit
    log, in the caller's transaction."""
    cases = [c for c in _registrable(conn, municipality) if c.status == CaseStatus.RETURNED]
    facts = current_facts(conn, [c.id for c in cases])
    out = []
    for case in sorted(cases, key=lambda c: c.id):
        current = facts.get(case.id, {})
        bad, unknown = [], []
        for cond in CONDITIONS:
            fact = current.get((cond.value, Moment.RELEASE.value))
            verdict = codes.in_order(cond, fact.status if fact is not None else None)
            if verdict is InOrder.NO:
                bad.append(cond.value)
            elif verdict is InOrder.UNKNOWN:
                unknown.append(cond.value)
        if bad or unknown:
            out.append(
                NotInOrder(
                    case_id=case.id,
                    municipal_ref=case.municipal_ref,
                    period_ref=case.period_ref,
                    release_date=case.release_date,
                    not_in_order=bad,
                    unknown=unknown,
                )
            )
    audit_many(conn, actor, "case_listed", [(r.case_id, {"list": "not-in-order"}) for r in out])
    return out


def activity_costs(
    conn: Connection,
    municipality: str | None = None,
    *,
    start: date | None = None,
    end: date | None = None,
) -> list[CostLine]:
    """Activities, cases, hours and costs per condition and programme (activities starting in
    [start, end]); only cases whose consent still stands."""
    q = (
        select(
            activities.c.condition,
            activities.c.programme,
            func.count(),
            func.count(func.distinct(activities.c.case_id)),
            func.coalesce(func.sum(activities.c.hours_x100), 0),
            func.coalesce(func.sum(activities.c.cost_cents), 0),
        )
        .join(reintegration_cases, reintegration_cases.c.id == activities.c.case_id)
        .where(reintegration_cases.c.consent == ConsentStatus.GIVEN.value)
        .group_by(activities.c.condition, activities.c.programme)
    )
    if municipality is not None:
        q = q.where(reintegration_cases.c.municipality == municipality)
    if start is not None:
        q = q.where(activities.c.start_date >= start)
    if end is not None:
        q = q.where(activities.c.start_date <= end)
    order = {c.value: i for i, c in enumerate(CONDITIONS)}
    lines = [
        CostLine(
            condition=r[0],
            programme=r[1],
            activities=int(r[2]),
            cases=int(r[3]),
            hours=(Decimal(int(r[4])) / 100).quantize(CENT),
            cost_eur=_euros(int(r[5])),
        )
        for r in conn.execute(q)
    ]
    return sorted(lines, key=lambda x: (order.get(x.condition, 99), x.programme or ""))


def completeness(
    conn: Connection, municipality: str | None = None, *, on: date | None = None
) -> list[Completeness]:
    """Per municipality: of the cases with consent for which a moment has come, the share with
    all five conditions recorded at that moment. Release and later moments count for cases
    released into society, each from its date (release + 1, 6, 12, 24 months) on."""
    on = on or today()
    counts_q = select(
        reintegration_cases.c.municipality,
        func.count(),
        func.sum(sql_case((reintegration_cases.c.status == CaseStatus.RETURNED.value, 1), else_=0)),
    ).group_by(reintegration_cases.c.municipality)
    if municipality is not None:
        counts_q = counts_q.where(reintegration_cases.c.municipality == municipality)
    totals = {r[0]: (int(r[1]), int(r[2] or 0)) for r in conn.execute(counts_q)}
    cases = _registrable(conn, municipality)
    recorded: dict[int, set[str]] = defaultdict(set)
    per_moment: dict[tuple[int, str], int] = defaultdict(int)
    for chunk in chunks([c.id for c in cases]):
        for r in conn.execute(
            select(condition_facts.c.case_id, condition_facts.c.moment, condition_facts.c.condition)
            .where(among(conn, condition_facts.c.case_id, chunk))
            .distinct()
        ):
            per_moment[(r.case_id, r.moment)] += 1
    for (case_id, moment), n in per_moment.items():
        if n == len(CONDITIONS):
            recorded[case_id].add(moment)
    due: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    for case in cases:
        for m in _due_moments(case, on):
            cell = due[case.municipality][m]
            cell[0] += 1
            cell[1] += m in recorded[case.id]
    rd = refdata()
    out = []
    for code in sorted(totals):
        n, returned = totals[code]
        muni = rd.municipalities.get(code)
        moments = []
        for m in MOMENTS:
            n_due, n_done = due[code].get(m.value, [0, 0])
            moments.append(
                MomentCompleteness(
                    moment=m.value,
                    due=n_due,
                    recorded=n_done,
                    share=round(n_done / n_due, 4) if n_due else None,
                )
            )
        out.append(
            Completeness(
                municipality=code,
                name=muni.name if muni else code,
                cases=n,
                returned=returned,
                with_consent=sum(1 for c in cases if c.municipality == code),
                moments=moments,
            )
        )
    return out


def _due_moments(case: CaseRow, on: date) -> Sequence[str]:
    out = [Moment.INTAKE.value, Moment.BEFORE_RELEASE.value]
    release = case.release_date
    if case.status != CaseStatus.RETURNED or release is None or release > on:
        return out
    out.append(Moment.RELEASE.value)
    for m, months in codes.MONTHS_AFTER_RELEASE.items():
        if add_months(release, months) <= on:
            out.append(m.value)
    return out
