"""The command line: a thin face over the library. Each command parses its arguments, builds
who runs it (``cli/common.py``), calls one action or query and renders what it gets back (a
Rich table or text, or ``--json``). One module per command group; each adds its commands to
the app in ``register``.

Errors follow one contract for every command (``cli/errors.py``): an expected error is one or
two plain lines and exit code 2, a traceback only with ``terugkeer --debug``. Output is never
read as markup and is plain text when it is not a terminal (``cli/common.py``)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from terugkeer.cli.common import AsOpt, PlainConsole, PurposeOpt, actor, err, out, progress_bar
from terugkeer.cli.errors import TerugkeerGroup
from terugkeer.config import get_settings
from terugkeer.db.engine import make_engine
from terugkeer.logs import configure
from terugkeer.migrations import upgrade

app = typer.Typer(
    cls=TerugkeerGroup,
    help="terugkeer: the return of (ex-)detainees into society.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals may hold personal data
)
db_app = typer.Typer(help="The database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")
notify_app = typer.Typer(
    help="Notifications: obligations, delivery, reconciliation.", no_args_is_help=True
)
app.add_typer(notify_app, name="notify")

console = err  # standard error, for messages beside the output


@app.callback()
def _main(
    ctx: typer.Context,
    debug: Annotated[
        bool, typer.Option("--debug", help="show the traceback of an error (for a bug report)")
    ] = False,
) -> None:
    from terugkeer.config import ConfigError, assume_environment, check_environment

    if ctx.invoked_subcommand == "demo":  # its own database of synthetic people
        assume_environment("development")
    configure(get_settings().log_level)
    from terugkeer.security.crypto import KeyConfigError, check_production_settings

    try:
        check_environment()
        check_production_settings()
    except (ConfigError, KeyConfigError) as e:
        err.print(f"[red]refusing to start: {e}[/red]")
        raise typer.Exit(2) from e


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create the schema, or upgrade it to the newest version."""
    engine = make_engine()
    upgrade(engine)
    out.print(f"database at newest schema: {engine.url.render_as_string(hide_password=True)}")


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
    years: Annotated[
        int,
        typer.Option(
            min=1, max=50, help="consecutive years from --year, one folder each (OUT/<year>/)"
        ),
    ] = 1,
) -> None:
    """Simulate a national year of releases and write the feeds its sources would deliver."""
    from terugkeer.synth import MessyRates, generate, generate_years

    rates = MessyRates(messy_duplicates, messy_out_of_order, messy_malformed) if messy else None
    with progress_bar("synth", releases * years) as advance:
        if years == 1:
            summaries = [
                generate(
                    out_dir, releases=releases, seed=seed, year=year, messy=rates, progress=advance
                )
            ]
        else:
            summaries = generate_years(
                out_dir,
                years=years,
                first_year=year,
                releases=releases,
                seed=seed,
                messy=rates,
                progress=advance,
            )
    for summary in summaries:
        out.print(
            f"{summary.year}: {summary.releases} releases, {summary.periods} periods, "
            f"{summary.events} events, {summary.victims} victims, "
            f"{summary.reconvictions} reconvictions (seed {summary.seed})"
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

    run_demo(
        workdir,
        releases=releases,
        seed=seed,
        console=PlainConsole(markup=True),  # the demo's own texts carry markup
        progress=progress_bar,
        actor=actor("demo", who, purpose),
    )


@app.command()
def serve(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    workers: Annotated[int, typer.Option(min=1, max=64, help="worker processes (uvicorn's)")] = 1,
) -> None:
    """Serve the web application and API."""
    from terugkeer.logs import uvicorn_log_config
    from terugkeer.web.app import create_app
    from terugkeer.web.server import serve as run

    app = create_app()  # a bad setting is one plain line here, before any worker starts
    run(app, host, port, workers, uvicorn_log_config())  # its access log masks a BSN in a URL


def _register_groups() -> None:
    from terugkeer.cli import (
        accounts,
        dispatch,
        feed,
        mkba,
        monitor,
        reconcile,
        reintegration,
        watch,
    )

    feed.register(app)
    for module in (dispatch, reconcile, watch):
        module.register(app, notify_app)
    reintegration.register(app)
    accounts.register(app)
    monitor.register(app)
    mkba.register(app)


_register_groups()


def main() -> None:  # pragma: no cover - entry point
    sys.exit(app())
