"""``terugkeer monitor …``: the monitor's report, extract and the estimators on any CSV."""

from __future__ import annotations

import typer

monitor_app = typer.Typer(
    help="The monitor: basic conditions and recidivism by cohort.", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    app.add_typer(monitor_app, name="monitor")
