"""Commands of the detention feeds: ``terugkeer ingest``, ``terugkeer quarantine list|replay``
and ``terugkeer periods check``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from terugkeer.cli.common import (
    AsOpt,
    JsonOpt,
    PurposeOpt,
    actor,
    err,
    fail,
    out,
    progress_bar,
)
from terugkeer.cli.paging import LimitOpt, OffsetOpt, footer, limit_or_all
from terugkeer.db.engine import make_engine
from terugkeer.detention.ingest import IngestResult
from terugkeer.migrations import upgrade

quarantine_app = typer.Typer(help="Messages that could not be applied.", no_args_is_help=True)
periods_app = typer.Typer(help="Detention periods.", no_args_is_help=True)


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
    from terugkeer.intake import ingest_files

    by = actor("ingest", who, purpose)
    for path in files:
        if not path.is_file():
            err.print(f"[red]no such file: {path}[/red]")
            raise typer.Exit(2)
    engine = make_engine()
    upgrade(engine)
    with progress_bar("ingest", _count_lines(files)) as advance:
        result = ingest_files(engine, files, actor=by, batch_size=batch_size, progress=advance)
    _print_result(result, as_json)
    raise typer.Exit(1 if result.quarantined else 0)


@quarantine_app.command("list")
def quarantine_list(
    status: Annotated[str, typer.Option(help="open, applied or all")] = "open",
    reason: Annotated[str | None, typer.Option(help="only this reason")] = None,
    limit: LimitOpt = 100,
    offset: OffsetOpt = 0,
    as_json: JsonOpt = False,
    who: AsOpt = None,
    purpose: PurposeOpt = "feed quarantine handling",
) -> None:
    """List quarantined messages with their reasons (the raw line with --json); says
    "showing X–Y of Z" when it does not list them all.

    Each entry shown is a `read` of record type `quarantine` in the audit log."""
    from terugkeer.detention.quarantine import list_quarantine

    by = actor("quarantine list", who, purpose)
    try:
        page = list_quarantine(
            make_engine(),
            actor=by,
            status=status,
            reason=reason,
            limit=limit_or_all(limit),
            offset=offset,
        )
    except ValueError as e:
        err.print(f"[red]{e}[/red]")
        raise typer.Exit(2) from e
    entries = page.items
    if as_json:
        out.print_json(
            json.dumps({**page.meta(), "entries": [entry.as_json() for entry in entries]})
        )
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
    footer(page, "quarantined messages")


@quarantine_app.command("replay")
def quarantine_replay(
    ids: Annotated[
        list[int] | None, typer.Argument(help="quarantine ids (default: all open)")
    ] = None,
    reason: Annotated[str | None, typer.Option(help="only this reason")] = None,
    as_json: JsonOpt = False,
    who: AsOpt = None,
    purpose: PurposeOpt = "feed quarantine handling",
) -> None:
    """Apply open quarantined messages again, after a fix. Exits 1 when some stay quarantined.

    Each message replayed is an `update` of record type `quarantine` in the audit log."""
    from terugkeer.intake import replay_quarantine

    by = actor("quarantine replay", who, purpose)
    with progress_bar("replay", None) as advance:
        result = replay_quarantine(
            make_engine(), ids=ids, reason=reason, progress=advance, actor=by
        )
    if result.read == 0 and (ids or reason):  # a mistyped id or reason is not "all is well"
        chosen = f"id {', '.join(map(str, ids))}" if ids else f"reason [{reason}]"
        fail(
            f"no open quarantined message with {chosen}",
            "see `terugkeer quarantine list --status all`",
        )
    _print_result(result, as_json)
    raise typer.Exit(1 if result.quarantined else 0)


@periods_app.command("check")
def periods_check(who: AsOpt = None, purpose: PurposeOpt = "consistency check") -> None:
    """Rebuild every period from its events and compare with what is stored.

    Each period shown (one that differs) is a `read` of record type `detention_period` in the
    audit log; a clean check shows only a count and writes nothing."""
    from terugkeer.detention.store import check_periods

    by = actor("periods check", who, purpose)
    with make_engine().begin() as conn:
        problems = check_periods(conn, actor=by)
    for p in problems:
        out.print(str(p), markup=False)
    out.print(f"{len(problems)} differences")
    raise typer.Exit(1 if problems else 0)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the top-level app."""
    app.command()(ingest)
    app.add_typer(quarantine_app, name="quarantine")
    app.add_typer(periods_app, name="periods")
