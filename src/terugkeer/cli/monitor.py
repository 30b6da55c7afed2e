"""``terugkeer monitor …``: the monitor's report, extract and the estimators on any CSV."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from terugkeer.cli.common import JsonOpt, number, out, print_table

monitor_app = typer.Typer(
    help="The monitor: basic conditions and recidivism by cohort.", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    from terugkeer.cli import monitor_report  # report and extract (issue 15)

    monitor_report.register_commands(monitor_app)
    app.add_typer(monitor_app, name="monitor")


# --- the estimators on any CSV: km, cox (docs/monitor.md, "For researchers") -----------------

FileArg = Annotated[Path, typer.Argument(help="a CSV file with a header line", show_default=False)]
TimeOpt = Annotated[str, typer.Option("--time", help="column with the follow-up time")]
EventOpt = Annotated[str, typer.Option("--event", help="column with 1 (event) or 0 (censored)")]


def _p_value(p: float) -> str:
    return "<0,0001" if p < 0.0001 else number(p, 4)


def _time(t: float) -> str:
    """A time as given: whole numbers without decimals, others to six significant digits."""
    return str(int(t)) if float(t).is_integer() else f"{t:.6g}".replace(".", ",")


@monitor_app.command("km")
def km_command(
    file: FileArg,
    time: TimeOpt,
    event: EventOpt,
    by: Annotated[str | None, typer.Option("--by", help="column to group by")] = None,
    at: Annotated[
        list[float] | None,
        typer.Option("--at", help="also the cumulative share at this time (repeatable)"),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Kaplan-Meier curves per group: numbers at risk, events, survival and its 95% interval,
    and the cumulative share with the event (lifelines' estimator)."""
    from terugkeer.monitor.survival import km_many
    from terugkeer.monitor.survival_io import km_document, read_columns

    data = read_columns(file, [time, event], [by] if by else [], binary=[event])
    result = km_many(
        data[time].to_numpy(), data[event].to_numpy(), data[by].to_numpy() if by else None
    )
    doc = km_document(result, source=str(file), time=time, event=event, by=by, horizons=at or ())
    if as_json:
        out.print_json(json.dumps(doc))
        return
    for group in doc["groups"]:
        median = group["median_time"]
        out.print(
            (f"{by} = {group['group']}" if by else "all")
            + f": n {group['n']}, events {group['events']}, "
            f"censored {group['censored']}, median time "
            + (_time(median) if median is not None else "not reached")
        )
        rows = [
            [
                _time(r["time"]),
                r["at_risk"],
                r["events"],
                r["censored"],
                number(r["survival"], 4),
                f"{number(r['lower'], 4)} – {number(r['upper'], 4)}",
                number(r["cumulative_incidence"], 4),
            ]
            for r in group["rows"]
            if r["events"]
        ]
        print_table(
            ["time", "at risk", "events", "censored", "survival", "95% interval", "cumulative"],
            rows,
            right=range(6),
        )
        for p in group["at"]:
            label = "observed" if p["observed"] else "estimated"
            out.print(
                f"  by {_time(p['t'])}: {number(100 * p['cumulative_incidence'], 1)}% "
                f"({number(100 * p['lower'], 1)}–{number(100 * p['upper'], 1)}%), "
                f"{p['at_risk']} at risk, {label}"
            )
    out.print("rows with events only; --json has every time, censorings included")


@monitor_app.command("cox")
def cox_command(
    file: FileArg,
    time: TimeOpt,
    event: EventOpt,
    covariates: Annotated[
        str, typer.Option("--covariates", help="numeric columns, comma separated: A,B,…")
    ],
    strata: Annotated[
        str | None, typer.Option("--strata", help="column(s) with a baseline of their own")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Cox proportional hazards (Efron ties, as R): hazard ratios with 95% intervals and
    p-values, concordance, and the test of proportional hazards."""
    from terugkeer.monitor.cox import fit_cox
    from terugkeer.monitor.survival_io import ASSOCIATION, cox_document, read_columns

    names = [c.strip() for c in covariates.split(",") if c.strip()]
    layers = [c.strip() for c in (strata or "").split(",") if c.strip()]
    if not names:
        raise typer.BadParameter("name at least one column", param_hint="--covariates")
    data = read_columns(file, [time, event, *names], layers, binary=[event])
    result = fit_cox(data, time, event, names, strata=layers)
    doc = cox_document(result, source=str(file), time=time, event=event, covariates=names)
    if as_json:
        out.print_json(json.dumps(doc))
        return
    out.print(
        f"n {result.n}, events {result.events}, ties: Efron"
        + (f", strata: {', '.join(layers)}" if layers else "")
    )
    print_table(
        ["covariate", "coef", "hazard ratio", "95% interval", "se", "z", "p"],
        [
            [
                t.name,
                number(t.coef, 5),
                number(t.hazard_ratio, 4),
                f"{number(t.lower, 4)} – {number(t.upper, 4)}",
                number(t.se, 5),
                number(t.z, 2),
                _p_value(t.p),
            ]
            for t in result.terms
        ],
        right=range(1, 7),
    )
    lr = result.likelihood_ratio
    out.print(
        f"likelihood ratio test {number(lr.statistic, 2)} on {lr.df} df, p {_p_value(lr.p)}; "
        f"concordance {number(result.concordance, 3)}"
    )
    tests = [*result.ph_tests, result.ph_global]
    print_table(
        ["proportional hazards", "chi-squared", "df", "p"],
        [[t.name, number(t.statistic, 3), t.df, _p_value(t.p)] for t in tests],
        right=range(1, 4),
        title=f"test of proportional hazards (time transform: {result.ph_transform})",
    )
    for note in result.notes:
        out.print(f"note: {note}")
    out.print(ASSOCIATION)
