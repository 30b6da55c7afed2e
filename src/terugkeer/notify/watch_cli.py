"""Commands of this part of notify, registered on the CLI by `register`."""

from __future__ import annotations

import typer


def register(app: typer.Typer, notify_app: typer.Typer) -> None:
    """Add this module's commands to the top-level app and the `notify` group."""
