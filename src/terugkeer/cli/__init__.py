"""The command line: a thin face over the library. Each command parses its arguments and
calls one public function."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from terugkeer.cli.audit import AsOpt, CliAudit, PurposeOpt
from terugkeer.config import get_settings
from terugkeer.db.engine import make_engine
from terugkeer.detention.ingest import IngestResult, ProgressCallback
from terugkeer.intake import ingest_files, replay_quarantine
from terugkeer.logs import configure
from terugkeer.migrations import upgrade

app = typer.Typer(
    help="terugkeer: the return of (ex-)detainees into society.", no_args_is_help=True
)
db_app = typer.Typer(help="The database schema.", no_args_is_help=True)
quarantine_app = typer.Typer(help="Messages that could not be applied.", no_args_is_help=True)
periods_app = typer.Typer(help="Detention periods.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(quarantine_app, name="quarantine")
app.add_typer(periods_app, name="periods")
notify_app = typer.Typer(
    help="Notifications: obligations, delivery, reconciliation.", no_args_is_help=True
)
app.add_typer(notify_app, name="notify")

console = Console(stderr=True)
out = Console()


@app.callback()
def _main() -> None:
    configure(get_settings().log_level)
    from terugkeer.security.crypto import KeyConfigError, check_production_settings

    try:
        check_production_settings()
    except KeyConfigError as e:
        console.print(f"[red]refusing to start: {e}[/red]")
        raise typer.Exit(2) from e


@contextmanager
def progress_bar(description: str, total: int | None) -> Iterator[ProgressCallback]:
    """A rich progress bar on standard error; silent when it is not a terminal."""
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not console.is_terminal,
    ) as progress:
        task = progress.add_task(description, total=total)
        yield lambda n: progress.advance(task, n)


def _count_lines(paths: list[Path]) -> int:
    total = 0
    for path in paths:
        with path.open("rb") as fh:
            total += sum(1 for line in fh if line.strip())
        if path.suffix.lower() == ".csv":
            total -= 1  # header
    return total


def _print_result(result: IngestResult, as_json: bool) -> None:
    if as_json:
        out.print_json(json.dumps(result.as_json()))
        return
    out.print(
        f"read {result.read}, applied {result.applied}, duplicates {result.duplicates}, "
        f"quarantined {result.quarantined}"
        + (f", earlier parked messages now applied {result.unparked}" if result.unparked else "")
    )
    for reason, n in result.reasons.most_common():
        out.print(f"  quarantined: {reason}: {n}")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create the schema, or upgrade it to the newest version."""
    engine = make_engine()
    upgrade(engine)
    out.print(f"database at newest schema: {engine.url.render_as_string(hide_password=True)}")


@app.command()
def ingest(
    files: Annotated[
        list[Path], typer.Argument(help="JSON Lines (.jsonl) or CSV (.csv) feed files")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="print counts as JSON")] = False,
    batch_size: Annotated[int, typer.Option(min=1, help="messages per transaction")] = 5000,
    who: AsOpt = None,
    purpose: PurposeOpt = "feed intake",
) -> None:
    """Apply feed files. Exits 1 when any message was quarantined.

    A bulk job: one audit row per run (the files and the counts), not one per message."""
    trail = CliAudit.of("ingest", who, purpose)
    for path in files:
        if not path.is_file():
            console.print(f"[red]no such file: {path}[/red]")
            raise typer.Exit(2)
    engine = make_engine()
    upgrade(engine)
    with (
        trail.running(engine, {"files": [p.name for p in files]}) as job,
        progress_bar("ingest", _count_lines(files)) as advance,
    ):
        result = ingest_files(engine, files, batch_size=batch_size, progress=advance)
        job.update(result.as_json())
    _print_result(result, as_json)
    raise typer.Exit(1 if result.quarantined else 0)


@quarantine_app.command("list")
def quarantine_list(
    status: Annotated[str, typer.Option(help="open, applied or all")] = "open",
    reason: Annotated[str | None, typer.Option(help="only this reason")] = None,
    limit: Annotated[int, typer.Option(min=1)] = 100,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    who: AsOpt = None,
    purpose: PurposeOpt = "feed quarantine handling",
) -> None:
    """List quarantined messages with their reasons (the raw line with --json).

    Each entry shown is a `read` of record type `quarantine` in the audit log."""
    from terugkeer.detention.quarantine import list_quarantine

    trail = CliAudit.of("quarantine list", who, purpose)
    engine = make_engine()
    try:
        entries = list_quarantine(engine, status=status, reason=reason, limit=limit)
    except ValueError as e:
        console.print(f"[red]{e}[/red]")
        raise typer.Exit(2) from e
    trail.records(engine, "read", "quarantine", (e.id for e in entries))
    if as_json:
        out.print_json(json.dumps([entry.as_json() for entry in entries]))
        return
    table = Table("id", "origin:line", "event", "reason", "field", "message", "status")
    for entry in entries:
        table.add_row(
            str(entry.id),
            f"{entry.origin}:{entry.line_no}",
            entry.event_id or "",
            entry.reason,
            entry.field or "",
            entry.message,
            entry.status,
        )
    out.print(table)


@quarantine_app.command("replay")
def quarantine_replay(
    ids: Annotated[
        list[int] | None, typer.Argument(help="quarantine ids (default: all open)")
    ] = None,
    reason: Annotated[str | None, typer.Option(help="only this reason")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    who: AsOpt = None,
    purpose: PurposeOpt = "feed quarantine handling",
) -> None:
    """Apply open quarantined messages again, after a fix. Exits 1 when some stay quarantined.

    Each message replayed is an `update` of record type `quarantine` in the audit log."""
    from sqlalchemy import select

    from terugkeer.detention.tables import quarantine

    trail = CliAudit.of("quarantine replay", who, purpose)
    engine = make_engine()
    chosen = select(quarantine.c.id).where(quarantine.c.status == "open").order_by(quarantine.c.id)
    if reason:
        chosen = chosen.where(quarantine.c.reason == reason)
    if ids:
        chosen = chosen.where(quarantine.c.id.in_(ids))
    with engine.connect() as conn:
        replayed = list(conn.execute(chosen).scalars())
    try:
        with progress_bar("replay", None) as advance:
            result = replay_quarantine(engine, ids=ids, reason=reason, progress=advance)
    finally:  # also after a failure halfway: what was applied until then stays applied
        trail.records(engine, "update", "quarantine", replayed)
    _print_result(result, as_json)
    raise typer.Exit(1 if result.quarantined else 0)


@periods_app.command("check")
def periods_check(who: AsOpt = None, purpose: PurposeOpt = "consistency check") -> None:
    """Rebuild every period from its events and compare with what is stored.

    Each period shown (one that differs) is a `read` of record type `detention_period` in the
    audit log; a clean check shows only a count and writes nothing."""
    from terugkeer.detention.store import check_periods

    trail = CliAudit.of("periods check", who, purpose)
    engine = make_engine()
    with engine.connect() as conn:
        problems = check_periods(conn)
    trail.records(engine, "read", "detention_period", (p.period_ref for p in problems))
    for p in problems:
        out.print(str(p), markup=False)
    out.print(f"{len(problems)} differences")
    raise typer.Exit(1 if problems else 0)


@app.command()
def synth(
    out_dir: Annotated[Path, typer.Option("--out", help="folder to write the feeds to")],
    releases: Annotated[int, typer.Option(min=1, max=5_000_000)] = 35_000,
    seed: Annotated[int, typer.Option()] = 1,
    year: Annotated[int, typer.Option(min=2000, max=2100)] = 2024,
    messy: Annotated[
        bool, typer.Option(help="add duplicate, out-of-order and malformed lines")
    ] = False,
    messy_duplicates: Annotated[float, typer.Option(min=0, max=1)] = 0.02,
    messy_out_of_order: Annotated[float, typer.Option(min=0, max=1)] = 0.05,
    messy_malformed: Annotated[float, typer.Option(min=0, max=1)] = 0.005,
) -> None:
    """Simulate a national year of releases and write the feeds its sources would deliver."""
    from terugkeer.synth import MessyRates, generate

    rates = MessyRates(messy_duplicates, messy_out_of_order, messy_malformed) if messy else None
    with progress_bar("synth", releases) as advance:
        summary = generate(
            out_dir, releases=releases, seed=seed, year=year, messy=rates, progress=advance
        )
    out.print(
        f"{summary.releases} releases, {summary.periods} periods, {summary.events} events, "
        f"{summary.victims} victims, {summary.reconvictions} reconvictions (seed {summary.seed})"
    )
    for name, path in summary.files.items():
        out.print(f"  {name}: {path}")


@app.command()
def demo(
    releases: Annotated[int, typer.Option(min=100)] = 35_000,
    seed: Annotated[int, typer.Option()] = 1,
    workdir: Annotated[Path, typer.Option(help="where the demo database and feeds go")] = Path(
        "var/demo"
    ),
    who: AsOpt = None,
    purpose: PurposeOpt = "demonstration",
) -> None:
    """The main job on a fresh SQLite database: synthesise a national year, ingest it, summarise.

    One audit row for the run, in the demo database."""
    from terugkeer.demo import run_demo

    trail = CliAudit.of("demo", who, purpose)
    run_demo(workdir, releases=releases, seed=seed, console=out, progress=progress_bar)
    engine = make_engine(f"sqlite:///{workdir / 'demo.db'}")
    try:
        trail.job(engine, details={"releases": releases, "seed": seed})
    finally:
        engine.dispose()


@app.command()
def serve(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
) -> None:
    """Serve the web application and API."""
    import uvicorn

    from terugkeer.web.app import create_app

    uvicorn.run(create_app(), host=host, port=port)


def _register_groups() -> None:
    from terugkeer.cli import accounts, dispatch, reconcile, reintegration, watch

    for module in (dispatch, reconcile, watch):
        module.register(app, notify_app)
    reintegration.register(app)
    accounts.register(app)


_register_groups()


def main() -> None:  # pragma: no cover - entry point
    sys.exit(app())
