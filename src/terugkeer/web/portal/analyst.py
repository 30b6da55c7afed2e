"""The analyst's pages (ministry, WODC, VNG, a municipality's analyst), under /portaal/sturing:
the steering figures per municipality as tables and simple bar charts (inline SVG drawn on the
server, no scripts): registration completeness, the conditions at release of returned
residents, and the activities' costs. Aggregates only, small cells suppressed
(``reintegration/steering.py``); the same figures as ``GET /api/v1/stuurinformatie/gemeenten/…``.

The monitor and the cost-benefit analysis join here when their pages exist: the start page
links to them then, and says plainly that they are not there yet until they are."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import BeforeValidator

from terugkeer.reintegration import steering
from terugkeer.reintegration.codes import CONDITIONS, MOMENTS
from terugkeer.reintegration.codes import label as code_label
from terugkeer.security.roles import Permission, Principal
from terugkeer.web.api.steering import min_cell
from terugkeer.web.auth import engine_of
from terugkeer.web.params import Day
from terugkeer.web.portal import i18n
from terugkeer.web.portal.pages import nav, page, pager, render

router = APIRouter(include_in_schema=False)  # pages, not API operations
BASE = "/portaal/sturing"
Analyst = Annotated[Principal, Depends(page(Permission.MONITOR_READ))]
Pagina = Annotated[int, Query(ge=1, le=100_000)]
# a form's empty date field sends "": no date
OptionalDay = Annotated[Day | None, BeforeValidator(lambda v: v or None), Query()]
SORTS = ("naam", "waarde")

nav(
    "Stuurinformatie",
    BASE,
    Permission.MONITOR_READ,
    order=40,
    description="Cijfers per gemeente: volledigheid, basisvoorwaarden bij ontslag en kosten.",
)
SECTIONS = (
    (BASE, "Volledigheid"),
    (f"{BASE}/ontslag", "Bij ontslag"),
    (f"{BASE}/kosten", "Kosten"),
)
# pages of other capabilities that join the analyst's pages once they exist (path, Dutch name)
JOINING = (
    ("/portaal/monitor", "Monitor nazorg en recidive"),
    ("/portaal/mkba", "Maatschappelijke kosten-batenanalyse (MKBA)"),
)
i18n.register(
    {
        "Stuurinformatie": "Steering figures",
        "Cijfers per gemeente: volledigheid, basisvoorwaarden bij ontslag en kosten.": (
            "Figures per municipality: completeness, basic conditions at release and costs."
        ),
        "Volledigheid": "Completeness",
        "Bij ontslag": "At release",
        "Kosten": "Costs",
    }
)


@dataclass(frozen=True, slots=True)
class Bar:
    """One bar of a chart: a label, the value (None: suppressed) and its text."""

    label: str
    value: float | None
    text: str


def _render(request: Request, name: str, title: str, **context: Any) -> HTMLResponse:
    return render(
        request,
        f"analyst/{name}.html",
        title=title,
        sections=SECTIONS,
        joining=JOINING,
        min_cell=min_cell(),
        label=code_label,
        **context,
    )


def _percent(share: float | None) -> str:
    return "" if share is None else f"{share * 100:.0f}%".replace(".", ",")


def _sorted(rows: list[Any], key: Any, sort: str) -> list[Any]:
    if sort == "waarde":
        return sorted(rows, key=lambda r: (key(r) is None, -(key(r) or 0), r.name))
    return sorted(rows, key=lambda r: r.name)


@router.get(BASE, response_class=HTMLResponse)
def completeness(
    request: Request,
    _: Analyst,
    moment: Annotated[str, Query(max_length=20, pattern="^[a-z_0-9]+$")] = "release",
    peildatum: OptionalDay = None,
    sorteer: Annotated[str, Query(pattern="^(naam|waarde)$")] = "naam",
    pagina: Pagina = 1,
) -> HTMLResponse:
    moments = [m.value for m in MOMENTS]
    if moment not in moments:
        moment = "release"
    with engine_of(request).connect() as conn:
        rows = steering.completeness(conn, min_cell=min_cell(), on=peildatum)

    def figure(r: steering.CompletenessRow) -> steering.MomentFigure:
        return next(m for m in r.moments if m.moment == moment)

    rows = _sorted(rows, lambda r: figure(r).share, sorteer)
    p = pager(pagina).with_total(len(rows))
    shown = rows[p.offset : p.offset + p.limit]
    bars = [Bar(r.name, figure(r).share, _percent(figure(r).share)) for r in shown]
    return _render(
        request,
        "completeness",
        "Volledigheid van de registratie",
        rows=[(r, figure(r)) for r in shown],
        bars=bars,
        pager=p,
        moment=moment,
        moments=[(m, code_label("moment", m)) for m in moments],
        peildatum=peildatum.isoformat() if peildatum else "",
        sorteer=sorteer,
    )


@router.get(f"{BASE}/ontslag", response_class=HTMLResponse)
def at_release(
    request: Request,
    _: Analyst,
    sorteer: Annotated[str, Query(pattern="^(naam|waarde)$")] = "naam",
    pagina: Pagina = 1,
) -> HTMLResponse:
    with engine_of(request).connect() as conn:
        rows = steering.at_release(conn, min_cell=min_cell())
    rows = _sorted(rows, lambda r: r.share_not_in_order, sorteer)
    p = pager(pagina).with_total(len(rows))
    shown = rows[p.offset : p.offset + p.limit]
    bars = [Bar(r.name, r.share_not_in_order, _percent(r.share_not_in_order)) for r in shown]
    return _render(
        request,
        "release",
        "Basisvoorwaarden bij ontslag",
        rows=shown,
        bars=bars,
        pager=p,
        conditions=CONDITIONS,
        sorteer=sorteer,
    )


@router.get(f"{BASE}/kosten", response_class=HTMLResponse)
def costs(
    request: Request,
    _: Analyst,
    van: OptionalDay = None,
    tot: OptionalDay = None,
    sorteer: Annotated[str, Query(pattern="^(naam|waarde)$")] = "naam",
    pagina: Pagina = 1,
) -> HTMLResponse:
    with engine_of(request).connect() as conn:
        rows = steering.costs(conn, min_cell=min_cell(), start=van, end=tot)
    rows = _sorted(rows, lambda r: r.per_case_eur, sorteer)
    p = pager(pagina).with_total(len(rows))
    shown = rows[p.offset : p.offset + p.limit]
    top = max((r.per_case_eur for r in shown if r.per_case_eur is not None), default=Decimal(0))
    bars = [
        Bar(
            r.name,
            None if r.per_case_eur is None or not top else float(r.per_case_eur / top),
            "" if r.per_case_eur is None else f"€ {r.per_case_eur:,.2f}".translate(_DUTCH),
        )
        for r in shown
    ]
    return _render(
        request,
        "costs",
        "Kosten van activiteiten",
        rows=shown,
        bars=bars,
        pager=p,
        van=van.isoformat() if van else "",
        tot=tot.isoformat() if tot else "",
        sorteer=sorteer,
    )


_DUTCH = str.maketrans({",": ".", ".": ","})  # 1,234.56 -> 1.234,56
