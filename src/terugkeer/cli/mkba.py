"""``terugkeer mkba …``: the social cost-benefit analysis (docs/mkba.md).

* ``mkba cashflows FILE --rate R --timing start|middle|end [--json]``: NPV, benefit-cost
  ratio and IRR of a plain cash-flow file (columns period, cost, benefit).
* ``mkba scenarios [--json]``: the shipped scenarios.
* ``mkba run SCENARIO --draws N --seed S --out DIR [--grid A,B] [--database URL] [--json]``:
  the analysis of a scenario (a shipped name or a TOML file), written as ``report.html``,
  ``report.pdf``, ``result.json`` and the plots in DIR. A scenario that reads the store
  (registered costs, estimates) uses ``--database`` or the configured store (read only).

Errors (a missing file, a bad column or value, a bad rate) are one plain line and exit 2
(``cli/errors.py``): the library raises ``MkbaError``, a ``ValueError``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from terugkeer.cli.common import fail, number, out

mkba_app = typer.Typer(help="The social cost-benefit analysis (MKBA).", no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="print as JSON")]


def parse_rate(value: str) -> float:
    """A yearly rate as a fraction (``0.0225``) or a percentage (``2.25%``); a bad one is an
    expected error (one line, exit 2)."""
    text = value.strip().replace(",", ".")
    percent = text.endswith("%")
    try:
        rate = float(text.rstrip("%").strip())
    except ValueError:
        fail(f"--rate [{value}]: a rate such as 0.0225 or 2.25%")
    rate = rate / 100 if percent else rate
    if not -1 < rate < 1:
        fail(f"--rate [{value}]: give the rate as a fraction (0.0225) or a percentage (2.25%)")
    return rate


RateOpt = Annotated[
    str, typer.Option("--rate", metavar="RATE", help="yearly discount rate: 0.0225 or 2.25%")
]


def _pct(value: float | None) -> str:
    return "absent (no sign change)" if value is None else f"{number(value * 100, 2)} %"


@mkba_app.command("cashflows")
def cashflows_command(
    file: Annotated[Path, typer.Argument(help="CSV with columns period, cost, benefit")],
    rate: RateOpt,
    timing: Annotated[
        str, typer.Option("--timing", help="when a period's flows count: start, middle or end")
    ] = "start",
    as_json: JsonOpt = False,
) -> None:
    """Net present value, benefit-cost ratio and internal rate of return of a cash-flow file."""
    from terugkeer.mkba import cashflows
    from terugkeer.mkba.discount import timing as parse_timing

    if timing not in ("start", "middle", "end"):
        fail(f"--timing must be start, middle or end, not [{timing}]")
    yearly = parse_rate(rate)
    flows = cashflows.read(file)
    result = cashflows.evaluate(flows, yearly, parse_timing(timing))
    if as_json:
        out.print(json.dumps(result.as_json()), soft_wrap=True)
        return
    ratio = "absent (no costs)" if result.bc_ratio is None else number(result.bc_ratio, 3)
    out.print(f"periods: {len(flows.periods)}; rate {_pct(yearly)} a period; timing: {timing}")
    out.print(f"present value of benefits: {number(result.pv_benefits, 2)}")
    out.print(f"present value of costs: {number(result.pv_costs, 2)}")
    out.print(f"net present value: {number(result.npv, 2)}")
    out.print(f"benefit-cost ratio: {ratio}")
    out.print(f"internal rate of return: {_pct(result.irr)}")
    if len(result.irr_roots) > 1:
        roots = ", ".join(_pct(r) for r in result.irr_roots)
        out.print(f"  the net flows change sign more than once: IRRs {roots}; shown: closest to 0")


@mkba_app.command("scenarios")
def scenarios_command(as_json: JsonOpt = False) -> None:
    """The example scenarios shipped with terugkeer."""
    from terugkeer.cli.common import print_table
    from terugkeer.mkba import scenario

    found = [scenario.load(name) for name in scenario.shipped()]
    if as_json:
        rows = [
            {
                "name": s.name,
                "title": s.title,
                "population": s.setup.population,
                "store": s.from_store,
            }
            for s in found
        ]
        out.print(json.dumps(rows, ensure_ascii=False), soft_wrap=True)
        return
    print_table(
        ["naam", "titel", "populatie", "leest de registratie"],
        [[s.name, s.title, s.setup.population, "ja" if s.from_store else "nee"] for s in found],
    )


def _grid(value: str | None) -> tuple[str, str] | None:
    if value is None:
        return None
    parts = [p.strip() for p in value.split(",")]
    if len(parts) != 2 or not all(parts):
        fail(f"--grid takes two parameter names, A,B (not [{value}])")
    return parts[0], parts[1]


@mkba_app.command("run")
def run_command(
    scenario_name: Annotated[
        str, typer.Argument(metavar="SCENARIO", help="a shipped scenario's name or a TOML file")
    ],
    out_dir: Annotated[Path, typer.Option("--out", help="folder for the report")],
    draws: Annotated[int, typer.Option("--draws", min=1, max=1_000_000)] = 10_000,
    seed: Annotated[int, typer.Option("--seed", min=0)] = 20170222,
    grid: Annotated[
        str | None, typer.Option("--grid", help="two parameters for the two-way grid: A,B")
    ] = None,
    database: Annotated[
        str | None,
        typer.Option("--database", help="the store to read (default: TERUGKEER_DATABASE_URL)"),
    ] = None,
    workers: Annotated[
        int, typer.Option("--workers", min=1, max=16, help="threads for the Monte Carlo chunks")
    ] = 1,
    formats: Annotated[
        str, typer.Option("--format", help="what to write besides result.json: html,pdf or json")
    ] = "html,pdf",
    as_json: JsonOpt = False,
) -> None:
    """Run a scenario: results per perspective, Monte Carlo, break-even, sensitivity;
    writes report.html, report.pdf and result.json in --out."""
    from terugkeer.mkba import runner, scenario

    wanted = {f.strip() for f in formats.split(",") if f.strip()}
    if not wanted or not wanted <= {"html", "pdf", "json"}:
        fail(f"--format takes html, pdf, html,pdf or json (not [{formats}])")
    chosen = scenario.load(scenario_name)
    engine = None
    if chosen.from_store:
        from terugkeer.db.engine import make_engine

        engine = make_engine(database) if database else make_engine()
    try:
        result = runner.run(
            chosen, draws=draws, seed=seed, engine=engine, grid=_grid(grid), workers=workers
        )
    finally:
        if engine is not None:
            engine.dispose()
    from terugkeer.mkba import report

    files = report.write(result, out_dir, html="html" in wanted, pdf="pdf" in wanted)
    summary = result.as_json()
    if as_json:
        out.print(json.dumps(summary, ensure_ascii=False), soft_wrap=True)
        return
    society = summary["per_participant"]["society"]
    chance = summary["monte_carlo"]["society"]["p_benefits_exceed_costs"]
    ratio = "absent" if society["bc_ratio"] is None else number(society["bc_ratio"], 2)
    out.print(f"{chosen.title}")
    out.print(
        f"society, per participant: NPV {number(society['npv'], 0)}; benefit-cost ratio {ratio}; "
        f"chance benefits exceed costs {number(100 * (chance or 0), 1)} % "
        f"({number(draws)} draws, seed {seed})"
    )
    written = [str(p) for p in (files.html, files.pdf) if p is not None]
    out.print(f"report: {' and '.join(written) or 'none'} (aggregates: {files.json})")


def register(app: typer.Typer) -> None:
    app.add_typer(mkba_app, name="mkba")
