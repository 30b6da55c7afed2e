"""``terugkeer monitor report --out DIR [--cohort JAAR]`` and ``terugkeer monitor extract --out
FILE``: the monitor's published figures and the research extract (``docs/monitor.md``).
Registered on the ``monitor`` group by ``cli/monitor.py``."""

from __future__ import annotations

import time
from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from terugkeer.cli.common import AsOpt, DayOpt, PurposeOpt, actor, out


def register_commands(monitor_app: typer.Typer) -> None:
    monitor_app.command("report")(report)
    monitor_app.command("extract")(extract)


def report(
    out_dir: Annotated[Path, typer.Option("--out", help="folder to write the report into")],
    cohort: Annotated[
        str | None, typer.Option("--cohort", help="a release year (default: all years)")
    ] = None,
    cutoff: DayOpt = None,
) -> None:
    """The monitor's report: HTML, tables (CSV, XLSX) and plots (PNG, SVG), suppressed."""
    from terugkeer.db.engine import make_engine
    from terugkeer.monitor.report import compute, write_report

    if cohort is not None and not (len(cohort) == 4 and cohort.isdigit()):
        raise typer.BadParameter(f"[{cohort}]: a release year, e.g. 2024", param_hint="--cohort")
    started = time.perf_counter()
    figures = compute(make_engine(), cutoff=cutoff)
    files = write_report(figures, out_dir, cohort)
    out.print(
        f"monitor report: {len(files)} files in {out_dir} ({out_dir / 'index.html'}); "
        f"data up to {figures.cutoff.isoformat()}, cells under {figures.k} suppressed; "
        f"{time.perf_counter() - started:.1f} s"
    )
    out.print("samenhang, geen effect: the figures show an association, not an effect")


def extract(
    out_file: Annotated[Path, typer.Option("--out", help="the CSV file to write")],
    cutoff: DayOpt = None,
    who: AsOpt = None,
    purpose: PurposeOpt = "onderzoeksextract monitor",
) -> None:
    """A research extract: one row per release, pseudonymous keys, no direct identifiers."""
    from terugkeer.db.engine import make_engine
    from terugkeer.monitor.extract import write_extract

    by = actor("monitor extract", who, purpose)
    day: date | None = cutoff
    result = write_extract(make_engine(), out_file, actor=by, cutoff=day)
    out.print(f"extract: {result.rows:,} releases in {result.path} (key id {result.key_id})")
