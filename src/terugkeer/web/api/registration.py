"""API of reintegration registration (nazorgdossiers, basisvoorwaarden, activiteiten) and its
steering figures (stuurinformatie), under /api/v1.

Who may do what: a caseworker (nazorgcoördinator) reads (``cases:read``) and records
(``cases:write``) the cases of their own municipality; the municipality comes from their
account, and a case of another municipality does not exist for them (404). The code lists are
public. Errors are application/problem+json.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse

from terugkeer.domain.refdata import refdata
from terugkeer.reintegration import codes, queries, service
from terugkeer.reintegration.audit import PURPOSE
from terugkeer.reintegration.errors import Invalid, NotFound, ReintegrationError
from terugkeer.reintegration.schemas import (
    ActivityCreate,
    ActivityRead,
    CaseRead,
    CaseSummary,
    Completeness,
    ConditionsCreate,
    ConsentCreate,
    ConsentRead,
    CostLine,
    FactRead,
    MomentRead,
    NotInOrder,
    RegistrationForm,
    UpcomingReturn,
)
from terugkeer.security.actor import Actor
from terugkeer.security.roles import Permission, Principal
from terugkeer.web.app import problem
from terugkeer.web.auth import authenticate, engine_of, requires
from terugkeer.web.params import (
    MAX_EUR,
    MAX_HOURS,
    ActivityId,
    CaseId,
    Limit,
    Offset,
    OptionalDay,
    out_of_range_day,
)

router = APIRouter(tags=["nazorg"])
T = TypeVar("T")

# what the services answer beside the errors every route declares (web/openapi.py)
CONSENT: dict[int | str, dict[str, Any]] = {
    409: {"description": "no consent given (or it was withdrawn): the registration is closed"}
}
REFUSED: dict[int | str, dict[str, Any]] = {
    409: {"description": "no consent, or a conflict (the activity is there already)"},
    422: {"description": "values the rules refuse: an unknown code, a date out of its window"},
}
READ = Depends(requires(Permission.CASES_READ))
WRITE = Depends(requires(Permission.CASES_WRITE))
OPEN = Depends(requires(Permission.HEALTH_READ))


def _caller(request: Request) -> Principal:
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is None:
        principal = authenticate(request)
    if principal is None:
        raise HTTPException(401, "sign in or send an API token")
    request.state.principal = principal  # a refusal (403, 404) is audited in its name
    return principal


def _actor(request: Request) -> Actor:
    """Who is recorded as having read or recorded something: the signed-in user or the user
    of the API token (never a name the caller supplies), in their role."""
    return Actor.web(_caller(request), PURPOSE)


def _own_municipality(
    request: Request,
    gemeente: Annotated[
        str | None,
        Query(
            pattern=r"^GM\d{4}$", description="your municipality (the default; another is refused)"
        ),
    ] = None,
) -> str:
    principal = _caller(request)
    if principal.municipality is None:
        raise HTTPException(403, "your role works on no municipality's cases")
    if gemeente is not None and refdata().resolve_municipality(gemeente) != principal.municipality:
        raise HTTPException(403, "these are not your municipality's cases")
    return principal.municipality


Caller = Annotated[Actor, Depends(_actor)]
Gemeente = Annotated[str, Depends(_own_municipality)]
OptionalGemeente = Annotated[str | None, Depends(_own_municipality)]


def _run(fn: Callable[[], T]) -> T | JSONResponse:
    try:
        return fn()
    except ReintegrationError as e:
        extra = {"invalid_params": [{"field": e.field, "message": e.message}]} if e.field else {}
        return problem(e.status, e.message, **extra)


# --- cases ----------------------------------------------------------------------------------


@router.get(
    "/nazorgdossiers",
    dependencies=[READ],
    response_model=list[CaseSummary],
    summary="Cases of a municipality",
)
def list_cases(
    request: Request,
    actor: Caller,
    gemeente: Gemeente,
    status: Annotated[
        str | None, Query(description="planned, returned, cancelled", max_length=20)
    ] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Any:
    def go() -> list[CaseSummary]:
        with engine_of(request).begin() as conn:
            return queries.list_cases(
                conn, gemeente, actor=actor, status=status, limit=limit, offset=offset
            )

    return _run(go)


@router.get(
    "/nazorgdossiers/{case_id}",
    dependencies=[READ],
    response_model=CaseRead,
    summary="A case: the release signal, and with consent the conditions and activities",
)
def get_case(request: Request, case_id: CaseId, gemeente: Gemeente, actor: Caller) -> Any:
    def go() -> CaseRead:
        with engine_of(request).begin() as conn:
            return queries.get_case(conn, case_id, gemeente, actor=actor)

    return _run(go)


@router.get(
    "/nazorgdossiers/{case_id}/toestemmingen",
    dependencies=[READ],
    response_model=list[ConsentRead],
    summary="The consent history of a case",
)
def get_consents(request: Request, case_id: CaseId, gemeente: Gemeente, actor: Caller) -> Any:
    def go() -> list[ConsentRead]:
        with engine_of(request).begin() as conn:
            return queries.consent_history(conn, case_id, gemeente, actor=actor)

    return _run(go)


@router.post(
    "/nazorgdossiers/{case_id}/toestemmingen",
    dependencies=[READ, WRITE],
    response_model=CaseRead,
    status_code=201,
    responses=REFUSED,
    summary="Record consent given, refused or withdrawn",
)
def post_consent(
    request: Request,
    actor: Caller,
    case_id: CaseId,
    body: ConsentCreate,
    gemeente: Gemeente,
) -> Any:
    def go() -> CaseRead:
        _in_range(date=body.date)
        consent = service.ConsentIn(body.status, body.date, tuple(body.scope))
        with engine_of(request).begin() as conn:
            service.record_consent(conn, case_id, consent, actor=actor, municipality=gemeente)
            return queries.get_case(conn, case_id, gemeente, actor=actor)

    return _run(go)


# --- the five conditions --------------------------------------------------------------------


@router.get(
    "/nazorgdossiers/{case_id}/basisvoorwaarden",
    dependencies=[READ],
    response_model=list[MomentRead],
    responses=CONSENT,
    summary="The current status of each condition per moment, and whether it is in order",
)
def get_conditions(request: Request, case_id: CaseId, gemeente: Gemeente, actor: Caller) -> Any:
    def go() -> list[MomentRead]:
        with engine_of(request).begin() as conn:
            return queries.current_conditions(conn, case_id, gemeente, actor=actor)

    return _run(go)


@router.get(
    "/nazorgdossiers/{case_id}/basisvoorwaarden/historie",
    dependencies=[READ],
    response_model=list[FactRead],
    responses=CONSENT,
    summary="Every recorded status, oldest first",
)
def get_condition_history(
    request: Request, case_id: CaseId, gemeente: Gemeente, actor: Caller
) -> Any:
    def go() -> list[FactRead]:
        with engine_of(request).begin() as conn:
            return queries.condition_history(conn, case_id, gemeente, actor=actor)

    return _run(go)


@router.get(
    "/nazorgdossiers/{case_id}/basisvoorwaarden/formulier",
    dependencies=[READ],
    response_model=RegistrationForm,
    responses=REFUSED,
    summary="The registration form of a moment, pre-filled; to_type is what is left to type",
)
def get_form(
    request: Request,
    case_id: CaseId,
    gemeente: Gemeente,
    actor: Caller,
    moment: Annotated[str, Query(max_length=20)] = "release",
) -> Any:
    def go() -> RegistrationForm:
        if moment not in {m.value for m in codes.Moment}:
            raise Invalid(f"unknown moment [{moment}]", field="moment")
        with engine_of(request).begin() as conn:  # the form shows statuses: a read, audited
            return queries.registration_form(conn, case_id, moment, gemeente, actor=actor)

    return _run(go)


@router.post(
    "/nazorgdossiers/{case_id}/basisvoorwaarden",
    dependencies=[READ, WRITE],
    response_model=list[MomentRead],
    status_code=201,
    responses=REFUSED,
    summary="Record statuses of conditions at a moment (needs consent)",
)
def post_conditions(
    request: Request,
    actor: Caller,
    case_id: CaseId,
    body: ConditionsCreate,
    gemeente: Gemeente,
) -> Any:
    def go() -> list[MomentRead]:
        _in_range(as_of=body.as_of)
        c = service.ConditionsIn(body.moment, body.statuses, tuple(body.care_needs), body.as_of)
        with engine_of(request).begin() as conn:
            service.record_conditions(conn, case_id, c, actor=actor, municipality=gemeente)
            return queries.current_conditions(conn, case_id, gemeente, actor=actor)

    return _run(go)


# --- activities -----------------------------------------------------------------------------


class OutOfRange(ReintegrationError):
    """A value outside what the stores and date arithmetic hold: a 400 naming the field."""

    status = 400


def _in_range(**days: date | None) -> None:
    """Dates of a body within the range date arithmetic can take (else a 400 naming it)."""
    for name, value in days.items():
        if out_of_range_day(value):
            raise OutOfRange(f"{name} [{value}] is outside 1900-01-01 to 2999-12-31", field=name)


def _activity_in(body: ActivityCreate) -> service.ActivityIn:
    if not body.cost_eur.is_finite() or body.cost_eur > MAX_EUR:
        raise OutOfRange(f"cost_eur is more than {MAX_EUR} euro", field="cost_eur")
    if body.hours is not None and (not body.hours.is_finite() or body.hours > MAX_HOURS):
        raise OutOfRange(f"hours is more than {MAX_HOURS}", field="hours")
    _in_range(start_date=body.start_date, end_date=body.end_date)
    return service.ActivityIn(
        type=body.type,
        provider=body.provider,
        start_date=body.start_date,
        end_date=body.end_date,
        hours_x100=None if body.hours is None else int(body.hours * 100),
        cost_cents=int(body.cost_eur * 100),
        funder=body.funder,
        programme=body.programme,
        municipal_ref=body.municipal_ref,
    )


def _one_activity(
    request: Request, case_id: CaseId, activity_id: int, gemeente: str, actor: Actor
) -> ActivityRead:
    with engine_of(request).begin() as conn:
        for a in queries.list_activities(conn, case_id, gemeente, actor=actor):
            if a.id == activity_id:
                return a
    raise NotFound(f"no activity [{activity_id}] in case [{case_id}]")


@router.get(
    "/nazorgdossiers/{case_id}/activiteiten",
    dependencies=[READ],
    response_model=list[ActivityRead],
    responses=CONSENT,
    summary="The activities of a case",
)
def get_activities(request: Request, case_id: CaseId, gemeente: Gemeente, actor: Caller) -> Any:
    def go() -> list[ActivityRead]:
        with engine_of(request).begin() as conn:
            return queries.list_activities(conn, case_id, gemeente, actor=actor)

    return _run(go)


@router.post(
    "/nazorgdossiers/{case_id}/activiteiten",
    dependencies=[READ, WRITE],
    response_model=ActivityRead,
    status_code=201,
    responses=REFUSED,
    summary="Add an activity (needs consent)",
)
def post_activity(
    request: Request,
    actor: Caller,
    case_id: CaseId,
    body: ActivityCreate,
    gemeente: Gemeente,
) -> Any:
    def go() -> ActivityRead:
        new_id = service.add_activity(
            engine_of(request), case_id, _activity_in(body), actor=actor, municipality=gemeente
        )
        return _one_activity(request, case_id, new_id, gemeente, actor)

    return _run(go)


@router.put(
    "/nazorgdossiers/{case_id}/activiteiten/{activity_id}",
    dependencies=[READ, WRITE],
    response_model=ActivityRead,
    responses=REFUSED,
    summary="Replace an activity's values (the old ones go into the audit trail)",
)
def put_activity(
    request: Request,
    actor: Caller,
    case_id: CaseId,
    activity_id: ActivityId,
    body: ActivityCreate,
    gemeente: Gemeente,
) -> Any:
    def go() -> ActivityRead:
        service.update_activity(
            engine_of(request),
            case_id,
            activity_id,
            _activity_in(body),
            actor=actor,
            municipality=gemeente,
        )
        return _one_activity(request, case_id, activity_id, gemeente, actor)

    return _run(go)


# --- steering -------------------------------------------------------------------------------


@router.get(
    "/stuurinformatie/verwachte-terugkeer",
    dependencies=[READ],
    response_model=list[UpcomingReturn],
    tags=["stuurinformatie"],
    summary="Residents whose planned release falls in the coming days",
)
def get_upcoming(
    request: Request,
    gemeente: Gemeente,
    actor: Caller,
    dagen: Annotated[int, Query(ge=1, le=366)] = 30,
    peildatum: OptionalDay = None,
) -> Any:
    def go() -> list[UpcomingReturn]:
        with engine_of(request).begin() as conn:
            return queries.upcoming_returns(conn, gemeente, actor=actor, on=peildatum, days=dagen)

    return _run(go)


@router.get(
    "/stuurinformatie/niet-op-orde-bij-ontslag",
    dependencies=[READ],
    response_model=list[NotInOrder],
    tags=["stuurinformatie"],
    summary="Returned residents whose conditions were not all in order at release",
)
def get_not_in_order(request: Request, gemeente: Gemeente, actor: Caller) -> Any:
    def go() -> list[NotInOrder]:
        with engine_of(request).begin() as conn:
            return queries.not_in_order_at_release(conn, gemeente, actor=actor)

    return _run(go)


@router.get(
    "/stuurinformatie/activiteiten-en-kosten",
    dependencies=[READ],
    response_model=list[CostLine],
    tags=["stuurinformatie"],
    summary="Activities, hours and costs per condition and programme (aggregates)",
)
def get_costs(
    request: Request,
    gemeente: OptionalGemeente,
    van: OptionalDay = None,
    tot: OptionalDay = None,
) -> Any:
    def go() -> list[CostLine]:
        with engine_of(request).connect() as conn:
            return queries.activity_costs(conn, gemeente, start=van, end=tot)

    return _run(go)


@router.get(
    "/stuurinformatie/registratievolledigheid",
    dependencies=[READ],
    response_model=list[Completeness],
    tags=["stuurinformatie"],
    summary="Per municipality and moment: the share of due registrations that are complete",
)
def get_completeness(
    request: Request,
    gemeente: OptionalGemeente,
    peildatum: OptionalDay = None,
) -> Any:
    def go() -> list[Completeness]:
        with engine_of(request).connect() as conn:
            return queries.completeness(conn, gemeente, on=peildatum)

    return _run(go)


# --- code lists -----------------------------------------------------------------------------


@router.get(
    "/codelijsten/basisvoorwaarden",
    dependencies=[OPEN],
    tags=["codelijsten"],
    summary="Statuses and rules",
)
def get_condition_codes() -> dict[str, Any]:
    return {
        "moments": [m.value for m in codes.MOMENTS],
        "conditions": {
            c.value: [
                {"code": s.code, "label": s.label, "in_order": s.in_order.value}
                for s in codes.STATUSES[c]
            ]
            for c in codes.CONDITIONS
        },
        "care_needs": [n.value for n in codes.CareNeed],
        "consent": [s.value for s in codes.ConsentStatus],
        "consent_scope": [s.value for s in codes.ConsentScope],
    }


@router.get(
    "/codelijsten/activiteitsoorten",
    dependencies=[OPEN],
    tags=["codelijsten"],
    summary="Activity types",
)
def get_activity_codes() -> dict[str, Any]:
    return {
        "types": [
            {"code": t.code, "label": t.label, "condition": str(t.condition)}
            for t in codes.ACTIVITY_TYPES
        ],
        "funders": [f.value for f in codes.Funder],
    }
