"""The analyst's pages for the monitor and the cost-benefit analysis (issue 17, with issues 15
and 16), under /portaal/monitor and /portaal/mkba. Aggregates only.

- **Monitor** (``monitor:read``): the monitor's figures exactly as the API gives them
  (``web.api.monitor.figures``: computed once while the store is unchanged, small cells
  suppressed), shown by including the report's own body template (``monitor_body.html``), for
  one release year or all, and, for one municipality, its slice of the same suppressed tables.
  The plots are the report's (matplotlib), served as SVG from a route of this page.
- **MKBA** (``mkba:run``): the shipped scenarios, a form to run one (at most
  ``web.api.mkba.MAX_DRAWS`` draws, like the API), and the run's result: the report's own
  texts (``mkba.report.context``) and its tornado as inline SVG.

The SVGs are made safe for the portal's Content Security Policy (``style-src 'self'``): no
``<style>`` element and no ``style=`` attribute, only SVG presentation attributes."""

from __future__ import annotations

import html
import io
import re
import tempfile
import threading
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, Response
from jinja2 import ChoiceLoader, FileSystemLoader, PrefixLoader

from terugkeer.domain.refdata import refdata
from terugkeer.monitor import report as monitor_report
from terugkeer.monitor.recidivism import CRITERIA
from terugkeer.monitor.suppress import TOTAL
from terugkeer.security.roles import Permission, Principal
from terugkeer.web.api import mkba as mkba_api
from terugkeer.web.api import monitor as monitor_api
from terugkeer.web.portal import i18n
from terugkeer.web.portal.pages import nav, page, render, templates

# the monitor's report templates, for ``{% include "monitor/monitor_body.html" %}``
_portal_loaders = [templates.loader] if templates.loader is not None else []
templates.loader = ChoiceLoader(
    [*_portal_loaders, PrefixLoader({"monitor": FileSystemLoader(monitor_report.TEMPLATES)})]
)

router = APIRouter(include_in_schema=False)  # pages, not API operations
MONITOR = "/portaal/monitor"
MKBA = "/portaal/mkba"
Reader = Annotated[Principal, Depends(page(Permission.MONITOR_READ))]
Runner = Annotated[Principal, Depends(page(Permission.MKBA_RUN))]
ASSOCIATION = "samenhang, geen effect"
PLOTS = ("basisvoorwaarden", "km_year", "km_conditions_release", "km_in_order_release")
PAGE_DRAWS = 5_000  # the form's default; at most MAX_DRAWS, as the API

nav(
    "Monitor",
    MONITOR,
    Permission.MONITOR_READ,
    order=41,
    description=(
        "Monitor nazorg en recidive: basisvoorwaarden en recidive per jaar en gemeente "
        "(samenhang, geen effect)."
    ),
)
nav(
    "MKBA",
    MKBA,
    Permission.MKBA_RUN,
    order=42,
    description="Maatschappelijke kosten-batenanalyse: scenario's doorrekenen.",
)
i18n.register(
    {
        "Monitor": "Monitor",
        "Monitor nazorg en recidive: basisvoorwaarden en recidive per jaar en gemeente "
        "(samenhang, geen effect).": (
            "Aftercare and recidivism monitor: basic conditions and recidivism by year and "
            "municipality (association, not effect)."
        ),
        "MKBA": "CBA",
        "Maatschappelijke kosten-batenanalyse: scenario's doorrekenen.": (
            "Social cost-benefit analysis: run scenarios."
        ),
        "Monitor nazorg en recidive": "Aftercare and recidivism monitor",
        "Maatschappelijke kosten-batenanalyse (MKBA)": "Social cost-benefit analysis (CBA)",
        "samenhang, geen effect": "association, not effect",
        "Jaar van ontslag": "Release year",
        "Alle jaren": "All years",
        "Gemeente": "Municipality",
        "Heel Nederland": "All of the Netherlands",
        "Tonen": "Show",
        "Doorrekenen": "Run",
        "Scenario": "Scenario",
        "Trekkingen": "Draws",
        "Seed": "Seed",
    }
)

_plot_lock = threading.Lock()
_plot_cache: dict[str, tuple[Any, list[dict[str, str]], dict[str, str]]] = {}


# --- SVG for the portal ---------------------------------------------------------------------

_STYLE_ATTR = re.compile(r'\sstyle="([^"]*)"')


def _presentation(match: re.Match[str]) -> str:
    out = []
    for declaration in match.group(1).split(";"):
        if ":" in declaration:
            key, value = declaration.split(":", 1)
            out.append(f' {key.strip()}="{html.escape(value.strip(), quote=True)}"')
    return "".join(out)


def portal_svg(raw: str, *, prefix: str, title: str, inline: bool = False) -> str:
    """Matplotlib's SVG made fit for the portal: no XML prolog, metadata or ``<style>``; every
    ``style=`` attribute as presentation attributes (CSP ``style-src 'self'``); ids prefixed
    (several on one page); a ``<title>`` and ``role="img"`` for screen readers."""
    svg = raw[raw.index("<svg") :]
    svg = re.sub(r"<metadata>.*?</metadata>", "", svg, flags=re.S)
    svg = re.sub(r"<style[^>]*>.*?</style>", "", svg, flags=re.S)
    svg = _STYLE_ATTR.sub(_presentation, svg)
    svg = re.sub(r'\bid="([^"]+)"', rf'id="{prefix}-\1"', svg)
    svg = re.sub(r'href="#([^"]+)"', rf'href="#{prefix}-\1"', svg)
    svg = re.sub(r"url\(#([^)]+)\)", rf"url(#{prefix}-\1)", svg)
    if inline:
        svg = re.sub(r'\s(width|height)="[^"]*pt"', "", svg, count=2)
        svg = svg.replace("<svg ", '<svg width="100%" class="tk-plot" ', 1)
    head_end = svg.index(">") + 1
    opening = svg[:head_end].replace(
        "<svg ",
        f'<svg role="img" aria-labelledby="{prefix}-titel" stroke-linejoin="round" '
        'stroke-linecap="butt" ',
        1,
    )
    titled = f'<title id="{prefix}-titel">{html.escape(title)}</title>'
    return opening + titled + svg[head_end:]


# --- the monitor --------------------------------------------------------------------------------


def _plots(figures: Any, year: str) -> tuple[list[dict[str, str]], dict[str, str]]:
    """The report's plots for ``year`` (its own function), as portal SVG; kept while the
    figures are the same."""
    with _plot_lock:
        hit = _plot_cache.get(year)
        if hit is not None and hit[0] is figures:
            return hit[1], hit[2]
        with tempfile.TemporaryDirectory() as tmp:
            made = monitor_report._plots(figures, Path(tmp), year)
            alts = {p["file"]: p["alt"] for p in made}
            alts["basisvoorwaarden"] = (
                "Aandeel basisvoorwaarden op orde bij binnenkomst, bij ontslag en 12 maanden "
                "na ontslag (zie de tabel)"
            )
            svgs = {
                name: portal_svg(
                    (Path(tmp) / f"{name}.svg").read_text("utf-8"), prefix=name, title=alts[name]
                )
                for name in alts
            }
        _plot_cache[year] = (figures, made, svgs)
        return made, svgs


def _municipalities(figures: Any) -> list[tuple[str, str]]:
    table = figures.indicators.table
    codes = sorted(set(table.loc[table["dimensie"] == "municipality", "waarde"]) - {TOTAL})
    names = refdata().municipalities
    return [(c, f"{names[c].name} ({c})" if c in names else c) for c in codes]


def _records(frame: Any) -> list[dict[str, Any]]:
    return monitor_api._records(frame)


def _municipality(figures: Any, code: str, year: str) -> dict[str, Any]:
    """The municipality's slice of the same suppressed tables the API serves."""
    ind = figures.indicators.table
    ind = ind[
        (ind["dimensie"] == "municipality")
        & (ind["waarde"] == code)
        & (ind["jaar"] == year)
        & (ind["moment"] == "release")
    ]
    rec = figures.recidivism
    rec = rec[(rec["dimensie"] == "municipality") & (rec["waarde"] == code) & (rec["jaar"] == year)]
    labels = {c.code: c.label for c in CRITERIA}
    return {
        "conditions": _records(ind),
        "recidivism": [{**r, "criterium": labels[r["criterium"]]} for r in _records(rec)],
    }


@router.get(MONITOR, response_class=HTMLResponse)
def monitor_page(
    request: Request,
    _: Reader,
    jaar: Annotated[str, Query(pattern=r"^(\d{4}|totaal)$")] = TOTAL,
    gemeente: Annotated[str, Query(pattern=r"^(GM\d{4})?$")] = "",
) -> HTMLResponse:
    figures = monitor_api.figures(request)
    years = sorted(set(figures.indicators.table["jaar"]) - {TOTAL})
    if jaar != TOTAL and jaar not in years:
        raise HTTPException(404, f"no release year [{jaar}] in the data")
    municipalities = _municipalities(figures)
    if gemeente and gemeente not in dict(municipalities):
        raise HTTPException(404, f"no municipality [{gemeente}] in the data")
    made, _svgs = _plots(figures, jaar)
    body = monitor_report.body_context(figures, None if jaar == TOTAL else jaar, made)
    lang = i18n.language(request)
    body.update(
        cutoff=i18n.format_date(figures.cutoff, lang),
        followup_end=i18n.format_date(figures.followup_end, lang),
        plot_base=f"{MONITOR}/grafiek/{jaar}/",
        table_class="utrecht-table utrecht-table--html-table",
    )
    return render(
        request,
        "analysis/monitor.html",
        title="Monitor nazorg en recidive",
        jaar=jaar,
        years=[(TOTAL, "Alle jaren"), *((y, y) for y in years)],
        gemeente=gemeente,
        municipalities=[("", "Heel Nederland"), *municipalities],
        municipality_name=dict(municipalities).get(gemeente, ""),
        local=_municipality(figures, gemeente, jaar) if gemeente else None,
        association=ASSOCIATION,
        **body,
    )


@router.get(MONITOR + "/grafiek/{jaar}/{naam}.svg")
def monitor_plot(
    request: Request,
    _: Reader,
    jaar: Annotated[str, PathParam(pattern=r"^(\d{4}|totaal)$")],
    naam: Annotated[str, PathParam(max_length=40)],
) -> Response:
    if naam not in PLOTS:
        raise HTTPException(404, f"no plot [{naam}]")
    figures = monitor_api.figures(request)
    if jaar != TOTAL and jaar not in set(figures.indicators.table["jaar"]):
        raise HTTPException(404, f"no release year [{jaar}] in the data")
    _made, svgs = _plots(figures, jaar)
    if naam not in svgs:
        raise HTTPException(404, f"no plot [{naam}]")
    return Response(svgs[naam], media_type="image/svg+xml")


# --- the cost-benefit analysis ------------------------------------------------------------------


def _scenarios() -> list[dict[str, Any]]:
    from terugkeer.mkba import scenario

    out = []
    for name in scenario.shipped():
        s = scenario.load(name)
        out.append(
            {
                "name": s.name,
                "title": s.title,
                "description": s.description,
                "population": s.setup.population,
                "reads_store": s.from_store,
            }
        )
    return out


@router.get(MKBA, response_class=HTMLResponse)
def mkba_page(request: Request, _: Runner) -> HTMLResponse:
    scenarios = _scenarios()
    return render(
        request,
        "analysis/mkba.html",
        title="Maatschappelijke kosten-batenanalyse (MKBA)",
        scenarios=scenarios,
        choices=[(s["name"], s["title"]) for s in scenarios],
        chosen=scenarios[0]["name"] if scenarios else "",
        draws=PAGE_DRAWS,
        seed=mkba_api.RunIn().seed,
        max_draws=mkba_api.MAX_DRAWS,
        problem="",
    )


def _nowrap(text: str) -> str:
    return text.replace("€ ", "€\u00a0").replace(" %", "\u00a0%")


def _tornado_svg(result: Any) -> str:
    import matplotlib.pyplot as plt

    from terugkeer.mkba import report

    with _plot_lock:
        fig = report.tornado_figure(result)
        buffer = io.StringIO()
        fig.savefig(buffer, format="svg")
        plt.close(fig)
    return portal_svg(
        buffer.getvalue(),
        prefix="tornado",
        title=(
            "Tornado: de netto contante waarde per deelnemer voor de maatschappij met elke "
            "parameter op zijn 5e en 95e percentiel (zie de tabel eronder)"
        ),
        inline=True,
    )


@router.get(MKBA + "/doorrekening", response_class=HTMLResponse)
def mkba_run(
    request: Request,
    _: Runner,
    scenario: Annotated[str, Query(pattern=r"^[a-z0-9_-]{1,60}$")],
    trekkingen: Annotated[int, Query(ge=1, le=mkba_api.MAX_DRAWS)] = PAGE_DRAWS,
    seed: Annotated[int, Query(ge=0, le=9_999_999_999)] = 20170222,
) -> HTMLResponse:
    from terugkeer.mkba import report, runner
    from terugkeer.mkba.errors import MkbaError

    chosen = mkba_api._scenario(scenario)  # 404 for a scenario not shipped, as the API
    engine = request.app.state.engine if chosen.from_store else None
    try:
        result = runner.run(chosen, draws=trekkingen, seed=seed, engine=engine)
    except MkbaError as e:
        scenarios = _scenarios()
        return render(
            request,
            "analysis/mkba.html",
            status_code=422,
            title="Maatschappelijke kosten-batenanalyse (MKBA)",
            scenarios=scenarios,
            choices=[(s["name"], s["title"]) for s in scenarios],
            chosen=scenario,
            draws=trekkingen,
            seed=seed,
            max_draws=mkba_api.MAX_DRAWS,
            problem=str(e),
        )
    labels = {name: p.label for name, p in result.prep.params.items()}
    tornado = [
        {
            "label": labels[b.name],
            "name": b.name,
            "low": report.value(b.low),
            "high": report.value(b.high),
            "npv_low": _nowrap(report.euro(b.npv_low)),
            "npv_high": _nowrap(report.euro(b.npv_high)),
        }
        for b in result.tornado[:12]
    ]
    summary = result.mc.summary()["society"]
    texts = report.context(result)
    texts["perspectives"] = [  # an amount is not broken over two lines
        {k: v if k == "label" else _nowrap(v) for k, v in p.items()} for p in texts["perspectives"]
    ]
    return render(
        request,
        "analysis/mkba_run.html",
        title="Doorrekening",
        r=texts,
        society_percentiles=[
            (key[1:], _nowrap(report.euro(v)))
            for key, v in summary.items()
            if re.fullmatch(r"p\d+", key)
        ],
        society_mean=report.euro(summary["mean"]),
        tornado=tornado,
        tornado_base=report.euro(result.tornado_base),
        tornado_svg=_tornado_svg(result),
        scenario_name=scenario,
        draws=trekkingen,
        seed=seed,
    )
