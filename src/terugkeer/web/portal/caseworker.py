"""The caseworker's pages (nazorgcoördinator), under /portaal/casussen: the expected returns
of the municipality, its cases, a case with the five basic conditions per moment and the
activities with their costs, consent, the registration of a moment, and the upload of an
import file with its error report per row.

Reading needs ``cases:read``, recording ``cases:write``; the municipality is the account's, as
in the API (``web/api/registration.py``): a case of another municipality does not exist for the
caseworker (404). Every read and change goes through ``reintegration.queries`` and
``reintegration.service`` with the signed-in user as the actor, which write the audit rows."""

from __future__ import annotations

from pathlib import Path as FilePath
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, HTTPException, Path, Query, Request, UploadFile
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from terugkeer.reintegration import codes, queries, service
from terugkeer.reintegration.audit import PURPOSE
from terugkeer.reintegration.codes import CONDITIONS, MOMENTS
from terugkeer.reintegration.errors import NotFound, ReintegrationError
from terugkeer.reintegration.scope import today
from terugkeer.security.actor import Actor
from terugkeer.security.roles import Permission, Principal
from terugkeer.web.api.imports import MAX_FILE, run_import
from terugkeer.web.auth import engine_of
from terugkeer.web.params import MAX_ID, form_day
from terugkeer.web.portal import i18n
from terugkeer.web.portal.pages import messages, nav, page, pager, render, see_other

router = APIRouter(include_in_schema=False)  # pages, not API operations
BASE = "/portaal/casussen"
Reader = Annotated[Principal, Depends(page(Permission.CASES_READ))]
Writer = Annotated[Principal, Depends(page(Permission.CASES_WRITE))]
CaseId = Annotated[int, Path(ge=1, le=MAX_ID)]
Pagina = Annotated[int, Query(ge=1, le=100_000)]
SHOWN_ERRORS = 500  # rows of an import's error report on the page

nav(
    "Nazorgdossiers",
    BASE,
    Permission.CASES_READ,
    order=30,
    description="Wie binnenkort terugkeert, de dossiers, de basisvoorwaarden en activiteiten.",
)
SECTIONS = (
    (BASE, "Verwachte terugkeer"),
    (f"{BASE}/alle", "Alle dossiers"),
    (f"{BASE}/importeren", "Bestand importeren"),
)
messages(
    {
        "toestemming-vastgelegd": "De toestemming is vastgelegd.",
        "registratie-vastgelegd": "De registratie is vastgelegd.",
    }
)
i18n.register(
    {
        "Nazorgdossiers": "Aftercare cases",
        "Wie binnenkort terugkeert, de dossiers, de basisvoorwaarden en activiteiten.": (
            "Who returns soon, the cases, the basic conditions and activities."
        ),
        "Verwachte terugkeer": "Expected returns",
        "Alle dossiers": "All cases",
        "Bestand importeren": "Import a file",
        "Waarvoor": "For what",
        "fout in": "error in",
        "fouten in": "errors in",
        "gelezen regel.": "row read.",
        "gelezen regels.": "rows read.",
        "Verbeter ze en importeer het bestand opnieuw.": "Correct them and import the file again.",
        "Kies waarvoor de toestemming geldt.": "Choose what the consent is for.",
    }
)
CONSENT_STATUSES = [
    (s.value, codes.label("consent", s.value))
    for s in codes.ConsentStatus
    if s is not codes.ConsentStatus.NONE
]
SCOPES = {
    "registration": "registratie van de basisvoorwaarden en activiteiten",
    "exchange_prison": "uitwisseling met de inrichting (D&R-plan)",
    "exchange_partners": "uitwisseling met reclassering en zorgaanbieders",
}
CASE_STATUSES = {"planned": "ontslag gepland", "returned": "teruggekeerd", "cancelled": "vervallen"}
IMPORT_KINDS = {"cases": "dossiers (toestemming en basisvoorwaarden)", "activities": "activiteiten"}


def _municipality(principal: Principal) -> str:
    if principal.municipality is None:
        raise HTTPException(403)
    return principal.municipality


def _actor(principal: Principal) -> Actor:
    return Actor.web(principal, PURPOSE)


def _render(request: Request, name: str, title: str, **context: Any) -> HTMLResponse:
    return render(
        request,
        f"caseworker/{name}.html",
        title=title,
        sections=SECTIONS,
        label=codes.label,
        case_statuses=CASE_STATUSES,
        **context,
    )


# --- lists ----------------------------------------------------------------------------------------


@router.get(BASE, response_class=HTMLResponse)
def upcoming(
    request: Request,
    principal: Reader,
    weken: Annotated[int, Query(ge=2, le=26)] = 6,  # the form offers 2 to 26
    pagina: Pagina = 1,
) -> HTMLResponse:
    gemeente = _municipality(principal)
    p = pager(pagina)
    with engine_of(request).begin() as conn:  # only the cases on the page are audited as seen
        total, rows = queries.upcoming_returns_page(
            conn, gemeente, actor=_actor(principal), limit=p.limit, offset=p.offset, days=weken * 7
        )
    return _render(
        request,
        "upcoming",
        "Verwachte terugkeer",
        rows=rows,
        pager=p.with_total(total),
        weken=weken,
    )


@router.get(f"{BASE}/alle", response_class=HTMLResponse)
def all_cases(
    request: Request,
    principal: Reader,
    status: Annotated[str | None, Query(pattern="^(planned|returned|cancelled)?$")] = None,
    pagina: Pagina = 1,
) -> HTMLResponse:
    gemeente = _municipality(principal)
    p = pager(pagina)
    with engine_of(request).begin() as conn:
        # one more than a page: whether there is a next one (the list has no total)
        rows = queries.list_cases(
            conn,
            gemeente,
            actor=_actor(principal),
            status=status or None,
            limit=p.limit + 1,
            offset=p.offset,
        )
    return _render(
        request,
        "cases",
        "Alle dossiers",
        rows=rows[: p.limit],
        number=p.number,
        has_next=len(rows) > p.limit,
        status=status or "",
    )


# --- importing a file -----------------------------------------------------------------------------


@router.get(f"{BASE}/importeren", response_class=HTMLResponse)
def import_form(request: Request, principal: Writer) -> HTMLResponse:
    _municipality(principal)
    return _render(
        request,
        "import",
        "Bestand importeren",
        kinds=IMPORT_KINDS,
        kind="cases",
        report=None,
        errors={},
        shown=SHOWN_ERRORS,
    )


@router.post(f"{BASE}/importeren", response_class=HTMLResponse)
async def upload(
    request: Request,
    principal: Writer,
    bestand: Annotated[UploadFile | None, File()] = None,
    soort: Annotated[str, Form(max_length=20)] = "cases",
    proef: Annotated[str | None, Form(max_length=5)] = None,
) -> HTMLResponse:
    _municipality(principal)  # a caseworker without a municipality: no access
    errors: dict[str, str] = {}
    if soort not in IMPORT_KINDS:
        errors["soort"] = "Kies wat het bestand bevat."
    suffix = FilePath(bestand.filename or "").suffix.lower() if bestand else ""
    if bestand is None or not bestand.filename:
        errors["bestand"] = "Kies een bestand (CSV of XLSX)."
    elif suffix not in (".csv", ".xlsx", ".txt"):
        errors["bestand"] = "Het bestand moet een CSV- of XLSX-bestand zijn."
    content = b""
    if not errors and bestand is not None:
        content = await bestand.read(MAX_FILE + 1)
        if len(content) > MAX_FILE:
            errors["bestand"] = "Het bestand is groter dan 20 MB. Gebruik de opdrachtregel."
        elif not content:
            errors["bestand"] = "Het bestand is leeg."
    report = None
    if not errors and bestand is not None:
        report = await run_in_threadpool(
            run_import,
            engine_of(request),
            principal,
            soort,
            bestand.filename or "",
            content,
            dry_run=bool(proef),
        )
    return _render(
        request,
        "import",
        "Bestand importeren",
        kinds=IMPORT_KINDS,
        kind=soort,
        report=report,
        filename=(bestand.filename if bestand else "") or "",
        errors=errors,
        shown=SHOWN_ERRORS,
        status_code=400 if errors or (report is not None and report.bad) else 200,
    )


# --- a case ---------------------------------------------------------------------------------------


def _case_page(
    request: Request,
    principal: Principal,
    case_id: int,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, Any] | None = None,
    pagina: int = 1,
) -> HTMLResponse:
    gemeente = _municipality(principal)
    actor = _actor(principal)
    with engine_of(request).begin() as conn:
        try:
            case = queries.get_case(conn, case_id, gemeente, actor=actor)
        except NotFound as e:
            raise HTTPException(404) from e
        consents = queries.consent_history(conn, case_id, gemeente, actor=actor)
        history: list[Any] = []
        activities: list[Any] = []
        if case.registration_allowed:
            history = queries.condition_history(conn, case_id, gemeente, actor=actor)
            activities = queries.list_activities(conn, case_id, gemeente, actor=actor)
    p = pager(pagina).with_total(len(history))
    recorded = {m.moment: m for m in case.moments or []}
    grid = [(m.value, codes.label("moment", m.value), recorded.get(m.value)) for m in MOMENTS]
    return _render(
        request,
        "case",
        "Nazorgdossier",
        case=case,
        grid=grid,
        consents=consents,
        history=list(reversed(history))[p.offset : p.offset + p.limit],
        pager=p,
        activities=activities,
        conditions=CONDITIONS,
        moments=MOMENTS,
        consent_statuses=CONSENT_STATUSES,
        scopes=SCOPES,
        errors=errors or {},
        values=values or {"status": "given", "datum": today().isoformat()},
        status_code=400 if errors else 200,
    )


@router.get(f"{BASE}/{{case_id}}", response_class=HTMLResponse)
def case_page(
    request: Request, case_id: CaseId, principal: Reader, pagina: Pagina = 1
) -> HTMLResponse:
    return _case_page(request, principal, case_id, pagina=pagina)


@router.post(f"{BASE}/{{case_id}}/toestemming", response_class=HTMLResponse)
def consent(
    request: Request,
    case_id: CaseId,
    principal: Writer,
    status: Annotated[str, Form(max_length=20)] = "",
    datum: Annotated[str, Form(max_length=10)] = "",
    scope: Annotated[list[str] | None, Form()] = None,
) -> Any:
    gemeente = _municipality(principal)
    chosen = tuple(dict.fromkeys(scope or ()))
    values = {"status": status, "datum": datum, "scope": chosen}
    day = form_day(datum)
    errors: dict[str, str] = {}
    if status not in dict(CONSENT_STATUSES):
        errors["status"] = "Kies of de toestemming is gegeven, geweigerd of ingetrokken."
    if any(s not in SCOPES for s in chosen) or (status == "given" and not chosen):
        errors["scope"] = "Kies waarvoor de toestemming geldt."
        chosen = tuple(s for s in chosen if s in SCOPES)
        values["scope"] = chosen
    if day is None:
        errors["datum"] = "Vul de datum in als jjjj-mm-dd, bijvoorbeeld 2026-01-31."
    if not errors and day is not None:
        try:
            service.record_consent(
                engine_of(request),
                case_id,
                service.ConsentIn(status, day, chosen),
                actor=_actor(principal),
                municipality=gemeente,
                source="portal",
            )
        except NotFound as e:
            raise HTTPException(404) from e
        except ReintegrationError as e:
            field = "datum" if e.field in ("date", "on_date") else "status"
            errors[field] = "Dit kan niet: " + e.message
    if errors:
        return _case_page(request, principal, case_id, errors=errors, values=values)
    return see_other(f"{BASE}/{case_id}", "toestemming-vastgelegd")


# --- registering a moment -------------------------------------------------------------------------


def _form_page(
    request: Request,
    principal: Principal,
    case_id: int,
    moment: str,
    *,
    errors: dict[str, str] | None = None,
    given: dict[str, Any] | None = None,
) -> HTMLResponse:
    gemeente = _municipality(principal)
    if moment not in {m.value for m in MOMENTS}:
        raise HTTPException(400)
    with engine_of(request).begin() as conn:
        try:
            case = queries.get_case(conn, case_id, gemeente, actor=_actor(principal))
            form = queries.registration_form(
                conn, case_id, moment, gemeente, actor=_actor(principal)
            )
        except NotFound as e:
            raise HTTPException(404) from e
    fields = {f.name: f for f in form.fields}
    values = {name: f.value for name, f in fields.items()}
    values.update(given or {})
    return _render(
        request,
        "register",
        "Basisvoorwaarden registreren",
        case=case,
        form=form,
        fields=fields,
        values=values,
        conditions=CONDITIONS,
        moments=MOMENTS,
        labels={
            "as_of": "Peildatum",
            "care_needs": "Zorgbehoefte",
            "moment": "Meetmoment",
            **{c.value: codes.label("condition", c.value) for c in CONDITIONS},
        },
        errors=errors or {},
        status_code=400 if errors else 200,
    )


@router.get(f"{BASE}/{{case_id}}/registratie", response_class=HTMLResponse)
def registration_form(
    request: Request,
    case_id: CaseId,
    principal: Writer,
    moment: Annotated[str, Query(max_length=20)] = "release",
) -> HTMLResponse:
    return _form_page(request, principal, case_id, moment)


@router.post(f"{BASE}/{{case_id}}/registratie", response_class=HTMLResponse)
async def register(request: Request, case_id: CaseId, principal: Writer) -> Any:
    form = await request.form()
    moment = str(form.get("moment", ""))[:20]
    given: dict[str, Any] = {c.value: str(form.get(c.value, ""))[:40] for c in CONDITIONS}
    given["as_of"] = str(form.get("as_of", ""))[:10]
    needs = [str(v)[:40] for v in form.getlist("care_needs")]
    given["care_needs"] = ",".join(needs)
    return _record(request, principal, case_id, moment, given, needs)


def _record(
    request: Request,
    principal: Principal,
    case_id: int,
    moment: str,
    given: dict[str, Any],
    needs: list[str],
) -> Any:
    gemeente = _municipality(principal)
    errors: dict[str, str] = {}
    statuses = {c.value: given[c.value] for c in CONDITIONS if given[c.value]}
    for c in CONDITIONS:
        if not given[c.value]:
            errors[c.value] = "Kies een status."
    as_of = form_day(given["as_of"]) if given["as_of"] else None
    if given["as_of"] and as_of is None:
        errors["as_of"] = "Vul de peildatum in als jjjj-mm-dd, bijvoorbeeld 2026-01-31."
    if not errors:
        try:
            service.record_conditions(
                engine_of(request),
                case_id,
                service.ConditionsIn(moment, statuses, tuple(needs), as_of),
                actor=_actor(principal),
                municipality=gemeente,
                source="portal",
            )
        except NotFound as e:
            raise HTTPException(404) from e
        except ReintegrationError as e:
            field = e.field if e.field in {*statuses, "as_of", "care_needs"} else "moment"
            errors[field or "moment"] = "Dit kan niet: " + e.message
    if errors:
        return _form_page(request, principal, case_id, moment, errors=errors, given=given)
    return see_other(f"{BASE}/{case_id}", "registratie-vastgelegd")
