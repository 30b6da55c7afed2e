"""The report of a run: HTML (a Jinja2 template in the package, plots inline) and PDF
(matplotlib's PdfPages: text, tables and plots drawn as pages), and the aggregates as JSON.
Matplotlib runs headless (the Agg backend); nothing is fetched."""

from __future__ import annotations

import base64
import io
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from terugkeer.mkba.effect import LABELS as MEASURE_LABELS
from terugkeer.mkba.model import PERSPECTIVE_LABELS, PERSPECTIVES, SOCIETY
from terugkeer.mkba.runner import RunResult

BLUE = "#01689b"  # Rijkshuisstijl lintblauw
RED = "#d52b1e"
GREY = "#696969"


@dataclass
class ReportFiles:
    html: Path | None
    pdf: Path | None
    json: Path
    plots: list[Path]


def euro(x: float | None) -> str:
    if x is None or not np.isfinite(x):
        return "–"
    text = f"{abs(x):,.0f}".replace(",", ".")
    return f"{'−' if x < 0 else ''}€ {text}"


def ratio(x: float | None, places: int = 2) -> str:
    if x is None or not np.isfinite(x):
        return "–"
    return f"{x:.{places}f}".replace(".", ",")


def pct(x: float | None) -> str:
    if x is None or not np.isfinite(x):
        return "–"
    return f"{100 * x:.1f} %".replace(".", ",")


def value(x: float) -> str:
    if abs(x) >= 100:
        return f"{x:,.0f}".replace(",", ".")
    return f"{x:.4g}".replace(".", ",")


# --- plots -------------------------------------------------------------------------------------


def tornado_figure(r: RunResult, top: int = 12) -> Figure:
    bars = r.tornado[:top][::-1]
    fig, ax = plt.subplots(figsize=(8, 0.42 * len(bars) + 1.6))
    base = r.tornado_base
    for i, b in enumerate(bars):
        lo, hi = sorted((b.npv_low, b.npv_high))
        ax.barh(i, hi - lo, left=lo, color=BLUE, height=0.6)
    ax.axvline(base, color="black", lw=1)
    ax.axvline(0, color=RED, lw=1, ls="--")
    ax.set_yticks(range(len(bars)), [r.prep.params[b.name].label[:48] for b in bars], fontsize=8)
    ax.set_xlabel("netto contante waarde per deelnemer, maatschappij (€)")
    ax.set_title("Tornado: elke parameter op zijn 5e en 95e percentiel", fontsize=10)
    fig.tight_layout()
    return fig


def histogram_figure(r: RunResult) -> Figure:
    x = r.mc.net[:, SOCIETY]
    fig, ax = plt.subplots(figsize=(8, 3.6))
    ax.hist(x, bins=60, color=BLUE, alpha=0.85)
    ax.axvline(0, color=RED, lw=1.2, ls="--", label="baten = kosten")
    ax.axvline(float(np.median(x)), color="black", lw=1, label="mediaan")
    share = (x > 0).mean()
    ax.set_title(
        f"Netto contante waarde per deelnemer, maatschappij ({r.mc.draws:,} trekkingen; "
        f"kans baten > kosten {100 * share:.0f} %)".replace(",", "."),
        fontsize=10,
    )
    ax.set_xlabel("€ per deelnemer")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def grid_figure(r: RunResult) -> Figure:
    g = r.grid
    npv = np.array(g.npv)
    fig, ax = plt.subplots(figsize=(7, 5))
    lim = float(np.abs(npv).max()) or 1.0
    mesh = ax.pcolormesh(g.x, g.y, npv, cmap="RdBu", vmin=-lim, vmax=lim, shading="nearest")
    if npv.min() < 0 < npv.max():
        ax.contour(g.x, g.y, npv, levels=[0], colors="black", linewidths=1.2)
    fig.colorbar(mesh, ax=ax, label="NCW per deelnemer, maatschappij (€)")
    ax.set_xlabel(r.prep.params[g.x_name].label[:60], fontsize=9)
    ax.set_ylabel(r.prep.params[g.y_name].label[:60], fontsize=9)
    ax.set_title("Twee parameters tegelijk; zwarte lijn: break-even", fontsize=10)
    fig.tight_layout()
    return fig


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    return buf.getvalue()


# --- the report's content ----------------------------------------------------------------------


def context(r: RunResult) -> dict[str, Any]:
    """What both the HTML and the PDF show, as text."""
    prep, setup, sc = r.prep, r.prep.setup, r.scenario
    mc = r.mc.summary()
    n = prep.participants
    perspectives = []
    for name in PERSPECTIVES:
        d = r.deterministic.perspectives[name]
        m = mc[name]
        perspectives.append(
            {
                "label": PERSPECTIVE_LABELS[name],
                "benefits": euro(d.benefits),
                "costs": euro(d.costs),
                "npv": euro(d.npv),
                "bc": ratio(d.bc_ratio),
                "irr": pct(d.irr),
                "cohort": euro(d.npv * n),
                "p5": euro(m["p5"]),
                "p95": euro(m["p95"]),
                "chance": pct(m["p_benefits_exceed_costs"]),
            }
        )
    params = []
    for name in sorted(prep.params):
        p = prep.params[name]
        orig = ""
        if p.price_year is not None and p.indexed_from is not None:
            orig = f"{value(p.indexed_from)} ({p.price_year})"
        params.append(
            {
                "name": name,
                "label": p.label,
                "value": value(p.value),
                "unit": p.unit,
                "original": orig,
                "spread": p.spread(),
                "source": p.source,
                "assumption": p.assumption,
                "note": p.note,
            }
        )
    be = r.break_even
    measure = MEASURE_LABELS[be.measure]
    if be.value is None:
        be_text = "geen: zelfs zonder enige recidive wegen de baten niet op tegen de kosten"
    else:
        be_text = (
            f"{measure} {ratio(be.value, 3)} (recidive binnen 2 jaar van {pct(be.p0)} naar "
            f"{pct(be.p1)})"
        )
    be_range = ""
    if be.percentiles:
        be_range = (
            f"90 %-interval over {be.draws:,} trekkingen: {ratio(be.percentiles['p5'], 3)} – "
            f"{ratio(be.percentiles['p95'], 3)}; break-even bestaat in {pct(be.found)} van de "
            "trekkingen"
        ).replace(",", ".", 1)
    out = r.deterministic.outcome
    society = r.deterministic.perspectives["society"]
    return {
        "title": sc.title,
        "name": sc.name,
        "description": sc.description,
        "population": {"adult": "volwassenen (PI)", "jji": "jongeren (JJI)"}.get(
            setup.population, setup.population
        ),
        "participants": f"{n:,}".replace(",", "."),
        "horizon": f"{setup.horizon_months} maanden",
        "rate": f"{100 * setup.rate:.2f} %".replace(".", ","),
        "timing": {"start": "begin", "middle": "midden", "end": "einde"}[setup.timing.value],
        "effect": f"{MEASURE_LABELS[setup.effect_measure]} {ratio(prep.params['effect'].value, 3)} "
        f"gedurende {setup.effect_months} maanden",
        "price_year": prep.parameter_set.price_year,
        "version": prep.parameter_set.version,
        "draws": f"{r.mc.draws:,}".replace(",", "."),
        "seed": r.mc.seed,
        "headline": (
            f"Voor de maatschappij: baten {euro(society.benefits)} tegenover kosten "
            f"{euro(society.costs)} per deelnemer (contante waarde, prijzen {prep.parameter_set.price_year}); "
            f"netto {euro(society.npv)}, baten-kostenverhouding {ratio(society.bc_ratio)}. "
            f"Kans dat de baten de kosten overtreffen: {pct(mc['society']['p_benefits_exceed_costs'])}."
        ),
        "perspectives": perspectives,
        "outcomes": [
            (
                "nieuwe strafzaken per deelnemer",
                ratio(float(out.cases[0]), 3) if out.cases is not None else "–",
            ),
            (
                "detentiemaanden per deelnemer",
                ratio(float(out.detention_months[0]), 3)
                if out.detention_months is not None
                else "–",
            ),
            (
                "maanden met werk per deelnemer",
                ratio(float(out.work_months[0]), 3) if out.work_months is not None else "–",
            ),
        ],
        "break_even": be_text,
        "break_even_range": be_range,
        "params": params,
        "assumptions": [p["label"] for p in params if p["assumption"]],
        "caveats": r.caveats,
        "sources": sc.sources,
        "grid": f"{prep.params[r.grid.x_name].label} × {prep.params[r.grid.y_name].label}",
    }


def write(r: RunResult, out_dir: Path, *, html: bool = True, pdf: bool = True) -> ReportFiles:
    """``report.html``, ``report.pdf``, ``result.json`` and the plots as PNG in ``out_dir``."""
    from jinja2 import Environment, select_autoescape

    from terugkeer.mkba.pdf import write_pdf

    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / "result.json"
    json_path.write_text(json.dumps(r.as_json(), indent=1, ensure_ascii=False), encoding="utf-8")
    if not (html or pdf):
        return ReportFiles(None, None, json_path, [])
    figures = {
        "tornado": tornado_figure(r),
        "histogram": histogram_figure(r),
        "grid": grid_figure(r),
    }
    images: dict[str, str] = {}
    plots = []
    for name, fig in figures.items():
        data = _png(fig)
        path = out_dir / f"{name}.png"
        path.write_bytes(data)
        plots.append(path)
        images[name] = base64.b64encode(data).decode("ascii")
    ctx = context(r)
    template_text = (resources.files("terugkeer.mkba") / "templates" / "report.html").read_text(
        "utf-8"
    )
    env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
    html_path = pdf_path = None
    if html:
        html_path = out_dir / "report.html"
        html_path.write_text(env.from_string(template_text).render(**ctx, images=images), "utf-8")
    if pdf:
        pdf_path = out_dir / "report.pdf"
        write_pdf(pdf_path, ctx, figures)
    for fig in figures.values():
        plt.close(fig)
    return ReportFiles(html_path, pdf_path, json_path, plots)
