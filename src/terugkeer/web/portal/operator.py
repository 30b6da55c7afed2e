"""The operator's pages (Justid functioneel beheer), under /portaal/beheer: the feeds and held
bursts, the quarantine, obligations overdue and due soon, unresolved recipients, dead letters,
the reconciliation and the backfill.

Reading needs ``operations:read``, acting ``operations:act``. The data comes from the same
functions as the operations API (``web/api/operations.py``, ``notify/assurance/overview.py``);
every action is the API's (burst decision, replay, naming a municipality, retry, reconcile,
backfill), done in the signed-in operator's name: the audit rows come from the actions."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from terugkeer.detention.quarantine import count_by_reason, list_quarantine
from terugkeer.notify.assurance import overview
from terugkeer.notify.assurance.backfill import backfill, check
from terugkeer.notify.assurance.reconcile import ALERT_KINDS
from terugkeer.security.roles import Permission, Principal
from terugkeer.web.api import operations as ops
from terugkeer.web.auth import engine_of
from terugkeer.web.params import MAX_ID, form_day
from terugkeer.web.portal import i18n
from terugkeer.web.portal.pages import messages, nav, page, pager, render, see_other

router = APIRouter(include_in_schema=False)  # pages, not API operations
BASE = "/portaal/beheer"
Reader = Annotated[Principal, Depends(page(Permission.OPERATIONS_READ))]
Operator = Annotated[Principal, Depends(page(Permission.OPERATIONS_ACT))]
Id = Annotated[int, Path(ge=1, le=MAX_ID)]
Pagina = Annotated[int, Query(ge=1, le=100_000)]

nav(
    "Beheer",
    BASE,
    Permission.OPERATIONS_READ,
    order=20,
    description="De aanlevering, de meldplichten en de volledigheidscontrole bewaken.",
)

# the operator's pages, for the section menu on every page
SECTIONS = (
    (f"{BASE}/aanlevering", "Aanlevering en pieken"),
    (f"{BASE}/quarantaine", "Quarantaine"),
    (f"{BASE}/meldplichten", "Meldplichten"),
    (f"{BASE}/onbekende-ontvangers", "Ontvanger onbekend"),
    (f"{BASE}/onbestelbaar", "Onbestelbare meldingen"),
    (f"{BASE}/controle", "Volledigheidscontrole"),
    (f"{BASE}/alsnog-verzenden", "Alsnog verzenden"),
)
RECIPIENT_KINDS = {
    "mayor": "burgemeester",
    "idv": "IDV",
    "victim": "slachtoffer",
    "nazorg": "nazorgcoördinator",
}
STATUSES = {
    "open": "open",
    "sent": "verzonden",
    "unresolved": "ontvanger onbekend",
    "held": "aangehouden",
    "delivered": "bezorgd",
    "acknowledged": "ontvangst bevestigd",
    "voided": "vervallen",
    "applied": "verwerkt",
}
GAP_KINDS = {
    "missing_obligation": "meldplicht ontbreekt",
    "overdue": "te laat, niet bezorgd",
    "unacknowledged": "bezorgd, ontvangst niet bevestigd",
    "unresolved": "ontvanger onbekend",
    "unproven_delivery": "bezorgd zonder bewijs",
    "wrong_timing": "ander tijdstip dan de feiten geven",
    "wrong_recipient": "andere ontvanger dan de feiten geven",
}
CHANNELS = {"portal": "portaal", "email": "e-mail", "webhook": "koppeling (webhook)"}

messages(
    {
        "piek-bevestigd": "Uw besluit is vastgelegd: de aangehouden meldingen worden nu verzonden.",
        "piek-vervallen": (
            "Uw besluit is vastgelegd: de aangehouden meldingen vervallen. Wie al een melding "
            "kreeg, krijgt een correctiebericht."
        ),
        "bericht-verwerkt": "Het bericht is opnieuw verwerkt.",
        "bericht-blijft": (
            "Het bericht is opnieuw aangeboden, maar kon weer niet worden verwerkt. De reden "
            "staat in de lijst."
        ),
        "gemeente-vastgelegd": (
            "De gemeente is vastgelegd. De meldingen van deze detentie gaan nu naar die gemeente."
        ),
        "opnieuw-verzonden": "De melding staat klaar om opnieuw te worden verzonden.",
        "controle-klaar": "De volledigheidscontrole is uitgevoerd.",
    }
)
i18n.register(
    {
        "Beheer": "Operations",
        "De aanlevering, de meldplichten en de volledigheidscontrole bewaken.": (
            "Watch the feeds, the notification obligations and the completeness check."
        ),
        "Aanlevering en pieken": "Feeds and bursts",
        "Quarantaine": "Quarantine",
        "Meldplichten": "Obligations",
        "Ontvanger onbekend": "Unknown recipient",
        "Onbestelbare meldingen": "Dead letters",
        "Volledigheidscontrole": "Completeness check",
        "Alsnog verzenden": "Backfill",
    }
)


def _render(request: Request, name: str, title: str, **context: Any) -> HTMLResponse:
    return render(
        request,
        f"operator/{name}.html",
        title=title,
        sections=SECTIONS,
        recipient_kinds=RECIPIENT_KINDS,
        statuses=STATUSES,
        gap_kinds=GAP_KINDS,
        channels=CHANNELS,
        **context,
    )


# --- the overview -------------------------------------------------------------------------------


@router.get(BASE, response_class=HTMLResponse)
def home(request: Request, _: Reader) -> HTMLResponse:
    engine = engine_of(request)
    with engine.connect() as conn:
        counts = overview.summary(conn)
        feeds = overview.feed_health(conn)
    counts["quarantine"] = sum(count_by_reason(engine).values())
    counts["stale"] = sum(1 for f in feeds if f.stale)
    return _render(request, "home", "Beheer", counts=counts)


# --- feeds and bursts -----------------------------------------------------------------------------


@router.get(f"{BASE}/aanlevering", response_class=HTMLResponse)
def feeds(
    request: Request,
    _: Reader,
    alleen: Annotated[str | None, Query(pattern="^(stil|alle)$")] = None,
    pagina: Pagina = 1,
) -> HTMLResponse:
    with engine_of(request).connect() as conn:
        rows = overview.feed_health(conn)
        bursts = overview.open_bursts(conn)
    if alleen == "stil":
        rows = [r for r in rows if r.stale]
    p = pager(pagina).with_total(len(rows))
    return _render(
        request,
        "feeds",
        "Aanlevering en pieken",
        feeds=rows[p.offset : p.offset + p.limit],
        bursts=bursts,
        pager=p,
        alleen=alleen or "alle",
    )


@router.post(f"{BASE}/pieken/{{piek}}/bevestigen", response_class=HTMLResponse)
def confirm_burst(request: Request, piek: Id, principal: Operator) -> RedirectResponse:
    ops.decide(engine_of(request), piek, True, principal)
    return see_other(f"{BASE}/aanlevering", "piek-bevestigd")


@router.post(f"{BASE}/pieken/{{piek}}/vervallen", response_class=HTMLResponse)
def void_burst(request: Request, piek: Id, principal: Operator) -> RedirectResponse:
    ops.decide(engine_of(request), piek, False, principal)
    return see_other(f"{BASE}/aanlevering", "piek-vervallen")


# --- the quarantine -------------------------------------------------------------------------------


@router.get(f"{BASE}/quarantaine", response_class=HTMLResponse)
def quarantine(
    request: Request,
    principal: Reader,
    status: Annotated[str, Query(pattern="^(open|applied|all)$")] = "open",
    reden: Annotated[str | None, Query(max_length=40, pattern=r"^[a-z_]*$")] = None,
    pagina: Pagina = 1,
) -> HTMLResponse:
    p = pager(pagina)
    engine = engine_of(request)
    found = list_quarantine(
        engine,
        actor=ops.actor(principal, "feed quarantine handling"),
        status=status,
        reason=reden or None,
        limit=p.limit,
        offset=p.offset,
        with_raw=principal.second_factor,  # raw lines: personal data (as the API)
    )
    reasons = [("", "alle redenen")] + [(r, r) for r in sorted(count_by_reason(engine, "all"))]
    return _render(
        request,
        "quarantine",
        "Quarantaine",
        entries=found.items,
        pager=p.with_total(found.total),
        status=status,
        reden=reden or "",
        reasons=reasons,
    )


@router.post(f"{BASE}/quarantaine/{{bericht}}/opnieuw", response_class=HTMLResponse)
def replay(request: Request, bericht: Id, principal: Operator) -> RedirectResponse:
    result = ops.replay_one(engine_of(request), bericht, principal)
    done = "bericht-blijft" if result["quarantined"] else "bericht-verwerkt"
    return see_other(f"{BASE}/quarantaine?status=all", done)


# --- obligations ----------------------------------------------------------------------------------


@router.get(f"{BASE}/meldplichten", response_class=HTMLResponse)
def due(
    request: Request,
    principal: Reader,
    venster: Annotated[str, Query(pattern="^(overdue|soon)$")] = "overdue",
    uren: Annotated[int, Query(ge=1, le=24 * 90)] = 48,
    ontvanger: Annotated[str | None, Query(pattern="^(mayor|idv|victim|nazorg)?$")] = None,
    pagina: Pagina = 1,
) -> HTMLResponse:
    p = pager(pagina)
    with engine_of(request).begin() as conn:
        found = overview.due_obligations(
            conn,
            actor=ops.actor(principal),
            window=venster,
            hours=uren,
            recipient_kind=ontvanger or None,
            limit=p.limit,
            offset=p.offset,
        )
    return _render(
        request,
        "due",
        "Meldplichten",
        rows=found.items,
        pager=p.with_total(found.total),
        venster=venster,
        uren=uren,
        ontvanger=ontvanger or "",
    )


# --- unresolved recipients ------------------------------------------------------------------------


@router.get(f"{BASE}/onbekende-ontvangers", response_class=HTMLResponse)
def unresolved(request: Request, principal: Reader, pagina: Pagina = 1) -> HTMLResponse:
    p = pager(pagina)
    with engine_of(request).begin() as conn:
        found = overview.unresolved_recipients(
            conn, actor=ops.actor(principal), limit=p.limit, offset=p.offset
        )
    return _render(
        request,
        "unresolved",
        "Ontvanger onbekend",
        rows=found.items,
        pager=p.with_total(found.total),
    )


def _naming_page(
    request: Request,
    principal: Principal,
    obligation_id: int,
    *,
    value: str = "",
    errors: dict[str, str] | None = None,
) -> HTMLResponse:
    with engine_of(request).begin() as conn:
        row = overview.unresolved_recipient(conn, obligation_id, actor=ops.actor(principal))
    if row is None:
        raise HTTPException(404)
    return _render(
        request,
        "naming",
        "Gemeente vastleggen",
        row=row,
        value=value,
        errors=errors or {},
        status_code=400 if errors else 200,
    )


@router.get(f"{BASE}/onbekende-ontvangers/{{verplichting}}", response_class=HTMLResponse)
def naming_form(request: Request, verplichting: Id, principal: Reader) -> HTMLResponse:
    return _naming_page(request, principal, verplichting)


@router.post(f"{BASE}/onbekende-ontvangers/{{verplichting}}", response_class=HTMLResponse)
def naming(
    request: Request,
    verplichting: Id,
    principal: Operator,
    gemeente: Annotated[str, Form(max_length=20)] = "",
) -> Any:
    code = gemeente.strip().upper()
    error = None
    if not code:
        error = "Vul de code van de gemeente in, bijvoorbeeld GM0363."
    else:
        try:
            ops.name_municipality(engine_of(request), verplichting, code, principal)
        except HTTPException as e:
            if e.status_code != 409:
                raise
            error = (
                "Dit is geen bestaande gemeentecode. Gebruik GM en vier cijfers, bijvoorbeeld "
                "GM0363."
                if "not a municipality" in str(e.detail)
                else "Dit kan niet met een bericht van Justid: " + _naming_reason(str(e.detail))
            )
    if error is not None:
        return _naming_page(
            request, principal, verplichting, value=gemeente, errors={"gemeente": error}
        )
    return see_other(f"{BASE}/onbekende-ontvangers", "gemeente-vastgelegd")


def _naming_reason(detail: str) -> str:
    if "has ended" in detail:
        return (
            "de detentie is al afgelopen. Vraag de inrichting het ontslagbericht te corrigeren "
            "met de gemeente van terugkeer."
        )
    if "no planned release date" in detail:
        return (
            "er is nog geen geplande ontslagdatum. Vraag de inrichting die te sturen, met de "
            "gemeente van terugkeer."
        )
    if "not waiting" in detail:
        return "deze meldplicht wacht niet meer op een ontvanger."
    return "het bericht werd niet verwerkt."


# --- dead letters ---------------------------------------------------------------------------------


@router.get(f"{BASE}/onbestelbaar", response_class=HTMLResponse)
def dead(
    request: Request,
    principal: Reader,
    kanaal: Annotated[str | None, Query(pattern="^(portal|email|webhook)?$")] = None,
    pagina: Pagina = 1,
) -> HTMLResponse:
    p = pager(pagina)
    with engine_of(request).begin() as conn:
        found = overview.dead_letters(
            conn, actor=ops.actor(principal), channel=kanaal or None, limit=p.limit, offset=p.offset
        )
    return _render(
        request,
        "dead",
        "Onbestelbare meldingen",
        rows=found.items,
        pager=p.with_total(found.total),
        kanaal=kanaal or "",
    )


@router.post(f"{BASE}/onbestelbaar/{{bezorging}}/opnieuw", response_class=HTMLResponse)
def retry(request: Request, bezorging: Id, principal: Operator) -> RedirectResponse:
    ops.retry(engine_of(request), bezorging, principal)
    return see_other(f"{BASE}/onbestelbaar", "opnieuw-verzonden")


# --- the reconciliation ---------------------------------------------------------------------------


@router.get(f"{BASE}/controle", response_class=HTMLResponse)
def reconcile(
    request: Request,
    principal: Reader,
    soort: Annotated[str | None, Query(max_length=40, pattern=r"^[a-z_]*$")] = None,
    pagina: Pagina = 1,
) -> HTMLResponse:
    if soort and soort not in ALERT_KINDS:
        raise HTTPException(400)
    p = pager(pagina)
    with engine_of(request).begin() as conn:
        status = overview.reconcile_status(conn)
        gaps = overview.gap_alerts(
            conn, actor=ops.actor(principal), kind=soort or None, limit=p.limit, offset=p.offset
        )
    return _render(
        request,
        "reconcile",
        "Volledigheidscontrole",
        status=status,
        gaps=gaps.items,
        pager=p.with_total(gaps.total),
        soort=soort or "",
    )


@router.post(f"{BASE}/controle", response_class=HTMLResponse)
def run_reconcile(request: Request, principal: Operator) -> RedirectResponse:
    check(engine_of(request), actor=ops.actor(principal, "completeness check"), shown=50)
    return see_other(f"{BASE}/controle", "controle-klaar")


# --- backfill -------------------------------------------------------------------------------------


def _since(text: str | None) -> date | None:
    """The day a backfill looks back to: a date, not after today (what went missing since
    tomorrow is nothing)."""
    day = form_day(text)
    return day if day is not None and day <= datetime.now(UTC).date() else None


@router.get(f"{BASE}/alsnog-verzenden", response_class=HTMLResponse)
def backfill_form(
    request: Request,
    _: Reader,
    sinds: Annotated[str | None, Query(max_length=10)] = None,
    pagina: Pagina = 1,
) -> HTMLResponse:
    day = _since(sinds)
    errors = {
        "sinds": "Vul een datum tot en met vandaag in als jjjj-mm-dd, bijvoorbeeld 2026-01-31."
    }
    if sinds and day is None:
        return _render(
            request,
            "backfill",
            "Alsnog verzenden",
            sinds=sinds,
            preview=None,
            items=[],
            pager=pager(1),
            errors=errors,
            status_code=400,
        )
    preview, items, p = None, [], pager(pagina)
    if day is not None:
        with engine_of(request).connect() as conn:
            preview = overview.backfill_preview(conn, ops.since_day(day), datetime.now(UTC))
        p = p.with_total(len(preview.items))
        items = list(preview.items[p.offset : p.offset + p.limit])
    return _render(
        request,
        "backfill",
        "Alsnog verzenden",
        sinds=sinds or "",
        preview=preview,
        items=items,
        pager=p,
    )


@router.post(f"{BASE}/alsnog-verzenden", response_class=HTMLResponse)
def run_backfill(
    request: Request,
    principal: Operator,
    sinds: Annotated[str, Form(max_length=10)] = "",
) -> HTMLResponse:
    day = _since(sinds)
    if day is None:
        raise HTTPException(400)
    report = backfill(
        engine_of(request), ops.since_day(day), actor=ops.actor(principal, "completeness repair")
    )
    return _render(request, "backfill_done", "Alsnog verzenden", report=report, sinds=day)
