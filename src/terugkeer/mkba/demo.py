"""The cost-benefit step of ``make demo``: the registered approach of the municipality with
the largest named programme in the synthetic year, against the demo store, written as a
report in ``var/demo/mkba`` (a few seconds: 2,000 draws)."""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console
from sqlalchemy import Engine

from terugkeer.mkba.errors import MkbaError

SCENARIO = "gemeente-registratie"
DRAWS = 2000
SEED = 20170222


def demo_report(engine: Engine, folder: Path, console: Console) -> Path | None:
    """Run the registered scenario on ``engine``, write the report to ``folder``, print the
    headline; returns the HTML report (None when the store cannot carry the scenario)."""
    from terugkeer.mkba import report, runner, scenario

    started = time.perf_counter()
    try:
        result = runner.run(scenario.load(SCENARIO), draws=DRAWS, seed=SEED, engine=engine)
    except MkbaError as e:
        console.print(f"cost-benefit analysis: not run ({e})", markup=False)
        return None
    files = report.write(result, folder)
    got = result.as_json()
    society = got["per_participant"]["society"]
    chance = got["monte_carlo"]["society"]["p_benefits_exceed_costs"] or 0.0
    ratio = "–" if society["bc_ratio"] is None else f"{society['bc_ratio']:.2f}"
    console.print(
        f"cost-benefit analysis ({result.prep.registered.programme if result.prep.registered else SCENARIO}, "
        f"{got['scenario']['participants']:,} participants): society per participant "
        f"NPV € {society['npv']:,.0f}, benefit-cost ratio {ratio}, chance benefits exceed costs "
        f"{100 * chance:.0f} % ({DRAWS:,} draws, {time.perf_counter() - started:.1f} s)",
        markup=False,
    )
    console.print(f"cost-benefit report: {files.html} and {files.pdf}", markup=False)
    return files.html
