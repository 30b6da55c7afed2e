"""The main job, end to end on a fresh SQLite database (``make demo``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

from rich.console import Console
from rich.table import Table

from terugkeer.db.engine import make_engine
from terugkeer.db.migrate import upgrade
from terugkeer.detention.store import check_periods
from terugkeer.detention.summary import summarise
from terugkeer.feed.ingest import ProgressCallback
from terugkeer.intake import ingest_files

ProgressFactory = Callable[[str, int | None], AbstractContextManager[ProgressCallback]]


def _table(title: str, counts: dict[str, int]) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("")
    table.add_column("count", justify="right")
    for key, n in counts.items():
        table.add_row(key, f"{n:,}")
    return table


def run_demo(
    workdir: Path,
    *,
    releases: int,
    seed: int,
    console: Console,
    progress: ProgressFactory,
) -> None:
    from terugkeer.synth import MessyRates, generate

    workdir.mkdir(parents=True, exist_ok=True)
    db_path = workdir / "demo.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)
    engine = make_engine(f"sqlite:///{db_path}")
    upgrade(engine)
    console.print(f"[bold]terugkeer demo[/bold]: fresh database {db_path}")

    started = time.perf_counter()
    with progress("synthesise a national year", releases) as advance:
        synth = generate(
            workdir / "feeds", releases=releases, seed=seed, messy=MessyRates(), progress=advance
        )
    console.print(
        f"synthesised {synth.releases:,} releases ({synth.events:,} detention events, "
        f"{synth.victims:,} victim registrations, {synth.reconvictions:,} reconvictions); "
        f"messy lines added: {synth.messy} ({time.perf_counter() - started:.1f} s)"
    )

    feeds = [synth.files[f"{name}.jsonl"] for name in ("detention", "victims", "reconvictions")]
    total = sum(1 for f in feeds for line in f.open("rb") if line.strip())
    started = time.perf_counter()
    with progress("ingest the feeds", total) as advance:
        result = ingest_files(engine, feeds, progress=advance)
    seconds = time.perf_counter() - started
    console.print(
        f"ingested: read {result.read:,}, applied {result.applied:,}, duplicates "
        f"{result.duplicates:,}, quarantined {result.quarantined:,}, parked and applied later "
        f"{result.unparked:,} ({seconds:.1f} s, {result.read / seconds:,.0f} messages/s)"
    )

    summary = summarise(engine)
    console.print(_table(f"detention periods: {summary.periods:,}", summary.periods_by_status))
    console.print(_table("feed events by kind", summary.events_by_kind))
    console.print(
        _table(
            f"quarantined, open: {sum(summary.quarantine_by_reason.values()):,} "
            "(see `terugkeer quarantine list`)",
            summary.quarantine_by_reason,
        )
    )
    console.print(
        f"persons {summary.persons:,}; victims registered {summary.victims:,}; "
        f"reconvictions {summary.reconvictions:,}"
    )
    with engine.connect() as conn:
        problems = check_periods(conn)
    console.print(f"consistency: every period rebuilt from its events: {len(problems)} differences")
    console.print(
        f"inspect with: TERUGKEER_DATABASE_URL=sqlite:///{db_path} terugkeer quarantine list"
    )
