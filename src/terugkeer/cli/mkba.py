"""``terugkeer mkba …``: the social cost-benefit analysis."""

from __future__ import annotations

import typer

mkba_app = typer.Typer(help="The social cost-benefit analysis (MKBA).", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(mkba_app, name="mkba")
