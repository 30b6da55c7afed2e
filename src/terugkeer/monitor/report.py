"""The monitor's report: every published figure computed once (:func:`compute`, suppressed),
and written as an HTML page (Jinja2; the body is its own template, ``monitor_body.html``, that
the analyst's portal page can include), tables as CSV and XLSX, and plots as PNG and SVG.

A cohort is a release year (``--cohort 2024``): a slice of the same suppressed cubes the
national figures come from (``docs/monitor.md``, "Privacy")."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped,unused-ignore]
from sqlalchemy import Engine

from terugkeer.config import get_settings
from terugkeer.monitor.association import ASSOCIATION, corrected, link
from terugkeer.monitor.cohorts import cohort_columns
from terugkeer.monitor.frame import MonitorData, load
from terugkeer.monitor.indicators import Indicators, indicators, lead_table
from terugkeer.monitor.recidivism import (
    CRITERIA,
    CRITERION,
    curve_table,
    followup,
    followup_end,
    recidivism_table,
)
from terugkeer.monitor.suppress import TOTAL, min_cell
from terugkeer.reintegration.safety import inert

TEMPLATES = Path(__file__).parent / "templates"


@dataclass
class Figures:
    """Everything the monitor publishes, suppressed."""

    cutoff: date
    lag: int
    k: int
    indicators: Indicators
    recidivism: pd.DataFrame
    link: pd.DataFrame
    corrected: pd.DataFrame
    curves: dict[str, pd.DataFrame] = field(default_factory=dict)
    at_risk: dict[str, pd.DataFrame] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def followup_end(self) -> date:
        end: date = followup_end(self.cutoff, self.lag).date()
        return end


def compute(
    engine: Engine, *, cutoff: date | None = None, k: int | None = None, lag: int | None = None
) -> Figures:
    """Read the store once and compute every published figure."""
    k = min_cell(k)
    lag = get_settings().monitor_registration_lag_months if lag is None else lag
    t0 = time.perf_counter()
    data = load(engine, cutoff)
    t1 = time.perf_counter()
    cols = cohort_columns(data)
    ind = indicators(data, cols, k)
    t2 = time.perf_counter()
    rec = recidivism_table(data, cols, k, lag)
    t3 = time.perf_counter()
    assoc = link(data, k, lag)
    corr = corrected(data, cols, k, lag)
    t4 = time.perf_counter()
    figures = Figures(data.cutoff, lag, k, ind, rec, assoc, corr)
    figures.curves, figures.at_risk = _curves(data, cols, k, lag)
    figures.seconds = {
        "read": t1 - t0,
        "indicators": t2 - t1,
        "recidivism": t3 - t2,
        "link": t4 - t3,
        "curves": time.perf_counter() - t4,
    }
    return figures


AT_RISK_POINTS = {"0": 0, "½ jaar": 182, "1 jaar": 365, "2 jaar": 730, "3 jaar": 1095}


def _curves(
    data: MonitorData, cols: pd.DataFrame, k: int, lag: int
) -> tuple[dict[str, pd.DataFrame], dict[str, pd.DataFrame]]:
    """Kaplan-Meier curves of general recidivism by release year and by conditions at release,
    drawn only while at least ``k`` are at risk, for groups of at least ``k``, each published
    step holding at least ``k`` events (:func:`steps_of_k_events`); and the numbers at risk at
    a few points, rounded to tens (shown only where at least ``k``)."""
    fu = followup(data, CRITERION["general"], lag)
    out, risk = {}, {}
    for dim in ("year", "conditions_release", "in_order_release"):
        groups = cols.loc[fu.index, dim]
        curves = curve_table(fu, groups)
        sizes = curves.groupby("group")["at_risk"].transform("max")
        out[dim] = steps_of_k_events(curves[(curves["at_risk"] >= k) & (sizes >= k)], k)
        time = fu["time"].to_numpy(float)
        table = {}
        for group in sorted(set(out[dim]["group"])):
            t = time[(groups == group).to_numpy()]
            n = [int((t >= day).sum()) for day in AT_RISK_POINTS.values()]
            table[group] = [int(round(x, -1)) if x >= k else None for x in n]
        risk[dim] = pd.DataFrame.from_dict(
            table, orient="index", columns=list(AT_RISK_POINTS), dtype=object
        )
    return out, risk


def steps_of_k_events(curves: pd.DataFrame, k: int) -> pd.DataFrame:
    """Of each group's curve (rows in time order), only the points by which at least ``k``
    events have happened since the point before. A curve drawn at every event time gives its
    counts away: from the interval's (Greenwood) variance and the drop of each step, the
    numbers at risk and the events of that day follow exactly, single reconvictions included.
    Between two published points now lie at least ``k`` events, and what the points give
    back is their sum."""
    keep = np.zeros(len(curves), dtype=bool)
    events = curves["events"].to_numpy()
    for rows in curves.groupby("group", sort=False).indices.values():
        since = 0
        for i in rows:
            since += int(events[i])
            if since >= k:
                keep[i], since = True, 0
    return curves[keep]


def _pct(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{100 * float(value):.1f}%".replace(".", ",")


def _ratio(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{float(value):.2f}".replace(".", ",")


def _num(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{int(value):,}".replace(",", ".")


def _plots(figures: Figures, out: Path, cohort: str) -> list[dict[str, Any]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made = []
    titles = {
        "year": "algemene recidive naar jaar van ontslag",
        "conditions_release": "algemene recidive naar basisvoorwaarden bij ontslag",
        "in_order_release": "algemene recidive naar aantal basisvoorwaarden op orde bij ontslag",
    }
    for dim, curves in figures.curves.items():
        fig, ax = plt.subplots(figsize=(7, 4))
        for group, c in curves.groupby("group"):
            ax.step(c["days"] / 365.25, c["cumulative"], where="post", label=str(group))
            ax.fill_between(c["days"] / 365.25, c["lower"], c["upper"], step="post", alpha=0.15)
        ax.set_xlabel("jaren na ontslag")
        ax.set_ylabel("cumulatief aandeel recidivisten")
        ax.set_title(f"{titles[dim]} ({ASSOCIATION})", fontsize=9)
        if len(curves):
            ax.legend(fontsize=7)
        for ext in ("png", "svg"):
            fig.savefig(out / f"km_{dim}.{ext}", dpi=100)
        plt.close(fig)
        risk = figures.at_risk.get(dim)
        rows = [] if risk is None else [(g, list(r)) for g, r in risk.iterrows()]
        made.append(
            {
                "file": f"km_{dim}",
                "alt": f"Kaplan-Meier: {titles[dim]}",
                "points": list(AT_RISK_POINTS),
                "at_risk": rows,
            }
        )
    lead = lead_table(figures.indicators, cohort)
    fig, ax = plt.subplots(figsize=(7, 4))
    width = 0.25
    for i, moment in enumerate(lead.columns):
        xs = [j + (i - 1) * width for j in range(len(lead.index))]
        ax.bar(xs, lead[moment].astype(float).fillna(0), width=width, label=moment)
    ax.set_xticks(range(len(lead.index)), list(lead.index), fontsize=8)
    ax.set_ylabel("aandeel op orde (van bekend)")
    ax.legend(fontsize=7)
    for ext in ("png", "svg"):
        fig.savefig(out / f"basisvoorwaarden.{ext}", dpi=100)
    plt.close(fig)
    return made


def sheet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with every text cell (and index label) a spreadsheet would read as a formula
    made inert, as every CSV and XLSX the system writes (``reintegration.safety``)."""

    def cell(value: Any) -> Any:
        return inert(value) if isinstance(value, str) else value

    out = frame.copy()
    for column in out.columns:
        if out[column].dtype == object or pd.api.types.is_string_dtype(out[column]):
            out[column] = out[column].map(cell)
    out.index = out.index.map(cell)
    return out


def body_context(
    figures: Figures, cohort: str | None = None, plots: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """What ``monitor_body.html`` needs, for a page that includes it (the report here, the
    analyst's portal page): ``{% include "monitor_body.html" %}`` with ``TEMPLATES`` on the
    loader's path. ``plots``: the Kaplan-Meier images (file stem and text), if any."""
    year = cohort or TOTAL
    rec = figures.recidivism
    national = rec[
        (rec["jaar"] == year) & (rec["dimensie"] == "quarter") & (rec["waarde"] == TOTAL)
    ]
    labels = {c.code: c.label for c in CRITERIA}
    return {
        "cutoff": figures.cutoff.isoformat(),
        "followup_end": figures.followup_end.isoformat(),
        "lag": figures.lag,
        "k": figures.k,
        "lead": lead_table(figures.indicators, year),
        "recidivism": [
            {**r, "criterium": labels[r["criterium"]]} for r in national.to_dict("records")
        ],
        "km_plots": plots or [],
        "link": figures.link.to_dict("records"),
        "corrected": figures.corrected.to_dict("records"),
        "ratio": _ratio,
        "pct": _pct,
        "num": _num,
    }


def write_report(figures: Figures, out: Path, cohort: str | None = None) -> list[Path]:
    """Write the report into ``out``; returns the files written. ``cohort``: a release year."""
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    year = cohort or TOTAL
    years = set(figures.indicators.table["jaar"])
    if year not in years:
        known = ", ".join(sorted(y for y in years if y != TOTAL))
        raise ValueError(f"cohort [{cohort}]: a release year in the data ({known})")
    out.mkdir(parents=True, exist_ok=True)
    ind = figures.indicators.table
    rec = figures.recidivism
    ind_out = ind[ind["jaar"] == year] if cohort else ind
    rec_out = rec[rec["jaar"] == year] if cohort else rec
    sheet_safe(ind_out).to_csv(out / "indicatoren.csv", index=False)
    sheet_safe(rec_out).to_csv(out / "recidive.csv", index=False)
    lead = lead_table(figures.indicators, year)
    sheet_safe(lead).to_csv(out / "basisvoorwaarden.csv")
    sheet_safe(figures.link).to_csv(out / "samenhang.csv", index=False)
    sheet_safe(figures.corrected).to_csv(out / "gecorrigeerd.csv", index=False)
    # the curves without their exact counts (the numbers at risk are published rounded)
    keep = ["group", "days", "cumulative", "lower", "upper"]
    curves = [c[keep].assign(indeling=dim) for dim, c in figures.curves.items()]
    if curves:
        sheet_safe(pd.concat(curves)).to_csv(out / "km_curves.csv", index=False)
    with pd.ExcelWriter(out / "monitor.xlsx", engine="openpyxl") as xl:
        sheet_safe(lead).to_excel(xl, sheet_name="basisvoorwaarden")
        at_release = ind[(ind["jaar"] == year) & (ind["moment"] == "release")]
        sheet_safe(at_release).to_excel(xl, sheet_name="bij ontslag", index=False)
        sheet_safe(rec[rec["jaar"] == year]).to_excel(xl, sheet_name="recidive", index=False)
        sheet_safe(figures.link).to_excel(xl, sheet_name="samenhang", index=False)
        sheet_safe(figures.corrected).to_excel(xl, sheet_name="gecorrigeerd", index=False)
    plots = _plots(figures, out, year)
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))
    html = env.get_template("monitor_report.html").render(
        cohort=cohort, **body_context(figures, cohort, plots)
    )
    (out / "index.html").write_text(html, encoding="utf-8")
    return sorted(p for p in out.iterdir() if p.is_file())
