"""The `terugkeer drill` command: a thin face over :func:`terugkeer.notify.drill.run_drill`."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Annotated, Any

import typer
from rich.console import Console

out = Console()
err = Console(stderr=True)


def register(app: typer.Typer) -> None:
    """Add `terugkeer drill` to the top-level app."""

    @app.command()
    def drill(
        events: Annotated[
            int | None, typer.Option(min=1, help="at least this many feed lines [10000]")
        ] = None,
        kills: Annotated[
            int | None, typer.Option(min=0, help="dispatcher processes to kill with SIGKILL [20]")
        ] = None,
        ingest_kills: Annotated[
            int | None, typer.Option(min=0, help="ingest processes to kill with SIGKILL [3]")
        ] = None,
        workers: Annotated[
            int | None, typer.Option(min=2, max=32, help="dispatcher processes [3]")
        ] = None,
        chunks: Annotated[
            int | None, typer.Option(min=1, max=1000, help="parts the feed arrives in [10]")
        ] = None,
        seed: Annotated[
            int | None, typer.Option(help="seed of every random choice (default: a new one)")
        ] = None,
        quick: Annotated[
            bool, typer.Option("--quick", help="a short drill: 400 events, 4 kills, 4 chunks")
        ] = False,
        url: Annotated[
            str | None,
            typer.Option(help="an empty PostgreSQL database to use instead of a temporary one"),
        ] = None,
        server: Annotated[
            str | None,
            typer.Option(
                help="PostgreSQL server (an admin URL) for the temporary database "
                "[TERUGKEER_DRILL_SERVER_URL or postgres@127.0.0.1:5432]"
            ),
        ] = None,
        control: Annotated[
            bool,
            typer.Option(
                help="also ingest the same feed calmly into a second temporary database and "
                "compare the obligations"
            ),
        ] = True,
        as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
        verbose: Annotated[
            bool, typer.Option("--verbose", help="the child processes log warnings too")
        ] = False,
    ) -> None:
        """Break delivery on purpose and count: SIGKILL dispatcher and ingest processes, make
        the loopback receivers fail, feed duplicated and out-of-order events, let it settle and
        report obligations required, delivered, missing (must be 0) and delivered more than
        once. Exits 1 when anything is missing. Needs PostgreSQL."""
        from terugkeer.notify.drill import (
            DEFAULT_SERVER,
            DrillConfig,
            DrillError,
            new_seed,
            run_drill,
        )

        chosen = seed if seed is not None else new_seed()
        sizes: dict[str, Any] = {
            name: value
            for name, value in (
                ("events", events),
                ("kills", kills),
                ("ingest_kills", ingest_kills),
                ("workers", workers),
                ("chunks", chunks),
            )
            if value is not None
        }
        sizes["control"] = control
        if verbose:
            sizes["log_level"] = "warning"
        try:
            base = DrillConfig.quick(chosen) if quick else DrillConfig(seed=chosen)
            config = replace(base, **sizes)
        except ValueError as e:
            err.print(f"[red]{e}[/red]")
            raise typer.Exit(2) from e
        try:
            report = run_drill(
                config,
                url=url,
                server=server or DEFAULT_SERVER,
                say=lambda line: err.print(line, highlight=False),
            )
        except DrillError as e:
            err.print(f"[red]drill could not run (seed {chosen}): {e}[/red]")
            raise typer.Exit(2) from e
        if as_json:
            out.print_json(json.dumps(report.as_json(), default=str))
        else:
            for line in report.lines():
                out.print(line, highlight=False, markup=False)
        if not report.ok:
            raise typer.Exit(1)
