"""The reintegration step of the main demo: synthetic municipal registrations imported, and the
registration completeness per municipality printed.

Called by ``terugkeer.demo.run_demo`` after the feeds are ingested::

    from terugkeer.demo.registration import demo_step
    demo_step(engine, workdir / "feeds", workdir, console, seed=seed)
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from rich import box
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine

from terugkeer.reintegration.cases import OpenResult, open_cases
from terugkeer.reintegration.codes import MOMENTS
from terugkeer.reintegration.importing import (
    ImportReport,
    import_activities,
    import_cases,
    import_screenings,
)
from terugkeer.reintegration.schemas import Completeness
from terugkeer.synth.registrations import RegistrationSummary


@dataclass
class RegistrationDemo:
    opened: OpenResult
    screenings: ImportReport
    imported: list[ImportReport] = field(default_factory=list)
    rejected: list[ImportReport] = field(default_factory=list)
    completeness: list[Completeness] = field(default_factory=list)
    synth: RegistrationSummary | None = None


def demo_step(
    engine: Engine,
    feeds: Path,
    workdir: Path,
    console: Console,
    *,
    seed: int = 1,
    messy: bool = True,
    top: int = 15,
) -> RegistrationDemo:
    """Open cases for the ingested periods (a back-fill; a no-op when the ingest hook already
    did), write synthetic screenings and municipal files from ``feeds`` (``truth.csv``,
    ``detention.jsonl``) into ``workdir/registrations``, import them file by file, and print
    what was imported, what was rejected and the completeness per municipality."""
    from terugkeer.reintegration.queries import completeness
    from terugkeer.synth.registrations import MessyRegistrations, write_registrations

    started = time.perf_counter()
    opened = open_cases(engine, None)
    console.print(
        f"reintegration cases: {opened.opened:,} opened now, {opened.unchanged + opened.updated:,} "
        f"already open; no case: "
        + ", ".join(f"{k} {v:,}" for k, v in sorted(opened.skipped.items()))
    )
    target = workdir / "registrations"
    if target.is_dir():
        shutil.rmtree(target)  # the demo's own folder: files of an earlier run would mislead
    synth = write_registrations(
        feeds, target, seed=seed, messy=MessyRegistrations() if messy else None
    )
    screenings = import_screenings(engine, synth.screening_file, actor="demo:dji")
    result = RegistrationDemo(opened, screenings, synth=synth)
    rows = 0
    for code, files in sorted(synth.municipalities.items()):
        actor = f"demo:{code}"
        report = import_cases(engine, files.cases, municipality=code, actor=actor)
        reports = [report]
        if report.ok and files.activities is not None:
            reports.append(
                import_activities(engine, files.activities, municipality=code, actor=actor)
            )
        for r in reports:
            rows += r.rows
            (result.imported if r.ok else result.rejected).append(r)
    seconds = time.perf_counter() - started
    console.print(
        f"registrations: screenings {screenings.applied:,} applied"
        + ("" if screenings.ok else f" [red](rejected: {len(screenings.errors)} errors)[/red]")
        + f"; municipal files {len(result.imported):,} imported, {len(result.rejected):,} "
        f"rejected whole ({synth.bad_rows:,} bad rows planted in {synth.messy_files:,} "
        f"municipalities); {rows:,} rows in {seconds:.1f} s"
    )
    for r in result.rejected[:5]:
        first = r.errors[0]
        console.print(
            f"  rejected {r.path.name}: {len(r.errors)} errors, e.g. row {first.row}, "
            f"{first.column}: {first.reason} (report: {r.error_file})",
            highlight=False,
            markup=False,
        )
    with engine.connect() as conn:
        result.completeness = completeness(conn, on=synth.as_of)
    console.print(completeness_table(result.completeness, limit=top))
    console.print(_national(result.completeness))
    return result


def _national(rows: list[Completeness]) -> Table:
    table = Table(title="registration completeness, all municipalities", title_justify="left")
    table.add_column("moment")
    table.add_column("due", justify="right")
    table.add_column("recorded", justify="right")
    table.add_column("share", justify="right")
    if not rows:
        return table
    for i, m in enumerate(rows[0].moments):
        due = sum(r.moments[i].due for r in rows)
        done = sum(r.moments[i].recorded for r in rows)
        table.add_row(m.moment, f"{due:,}", f"{done:,}", f"{done / due:.0%}" if due else "–")
    return table


def completeness_table(rows: list[Completeness], limit: int | None = None) -> Table:
    """Registration completeness per municipality (shares), biggest first: for the demo and
    `terugkeer reintegration completeness`."""
    table = Table(
        title="registration completeness: share of due moments with all five conditions "
        "recorded (--json gives the counts)",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        padding=0,
        show_edge=False,
    )
    table.add_column("municipality", no_wrap=True, overflow="ellipsis", max_width=20)
    table.add_column("cases", justify="right", no_wrap=True)
    table.add_column("consent", justify="right", no_wrap=True)
    for m in MOMENTS:
        table.add_column(_SHORT_MOMENT.get(m.value, m.value), justify="right", no_wrap=True)
    shown = sorted(rows, key=lambda r: (-r.cases, r.municipality))
    for r in shown[:limit] if limit else shown:
        cells = ["–" if x.share is None else f"{x.share:.0%}" for x in r.moments]
        table.add_row(f"{r.municipality} {r.name}", f"{r.cases:,}", f"{r.with_consent:,}", *cells)
    return table


# column headers that fit an 80-column terminal
_SHORT_MOMENT = {
    "before_release": "before",
    "month_1": "1 mo",
    "month_6": "6 mo",
    "month_12": "12 mo",
    "month_24": "24 mo",
}
