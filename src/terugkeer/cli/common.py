"""What every command shares: the consoles, the progress bar, and who runs the command.

The command line runs on the server with the database's own credentials, so it cannot check
who someone is: it records who they say they are. The actor is ``--as NAME``, else
``$TERUGKEER_ACTOR``, else ``$TERUGKEER_USER`` (what ``terugkeer import`` read before), else
the operating-system login; it is recorded as ``cli:<name>`` with role ``cli``. Every command
has a default purpose, which ``--purpose`` overrides.

A command builds the :class:`~terugkeer.security.actor.Actor` and passes it to the action or
query it calls; the action writes the audit rows, in its own transaction, before the command
prints anything: no audit row, no output. The command line writes no audit rows itself. See
the inventory in ``docs/security.md``.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Iterator
from contextlib import contextmanager
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

from terugkeer.config import Settings
from terugkeer.detention.ingest import ProgressCallback
from terugkeer.security import audit
from terugkeer.security.actor import MAX_NAME, Actor

PREFIX = audit.CLI_PREFIX
ACTOR_ENV = "TERUGKEER_ACTOR"  # Settings.actor; Settings.user is TERUGKEER_USER, the older name

out = Console()
err = Console(stderr=True)

AsOpt = Annotated[
    str | None,
    typer.Option(
        "--as",
        help="who runs this, for the audit log (default: $TERUGKEER_ACTOR, else your login)",
        show_default=False,
    ),
]
PurposeOpt = Annotated[
    str, typer.Option("--purpose", help="why, recorded in the audit log with every row")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="print as JSON")]


def login() -> str:
    """The operating-system user running the command."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name and no passwd entry (some containers)
        return f"uid-{os.getuid()}"


def actor_name(explicit: str | None = None) -> str:
    """``cli:<name>`` of whoever runs the command (see the module's docstring)."""
    settings = Settings()  # read now, not cached: who runs this command
    name = (explicit or settings.actor or settings.user or login() or "").strip()
    if name.startswith(PREFIX):
        name = name[len(PREFIX) :].strip()
    if not name or not name.isprintable():
        raise typer.BadParameter(
            f"name who runs the command: --as NAME or ${ACTOR_ENV} (printable, not empty)",
            param_hint="--as",
        )
    return (PREFIX + name)[:MAX_NAME]


def actor(command: str, who: str | None, purpose: str) -> Actor:
    """Who runs ``command`` (as typed after ``terugkeer``) for which purpose; a bad name or
    purpose is a usage error (exit 2), before anything is read."""
    name = actor_name(who)
    purpose = purpose.strip()
    if not purpose or len(purpose) > 200 or not purpose.isprintable():
        raise typer.BadParameter("1 to 200 printable characters", param_hint="--purpose")
    return Actor.cli(name, purpose, command)


@contextmanager
def progress_bar(description: str, total: int | None) -> Iterator[ProgressCallback]:
    """A rich progress bar on standard error; silent when it is not a terminal."""
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
        disable=not err.is_terminal,
    ) as progress:
        task = progress.add_task(description, total=total)
        yield lambda n: progress.advance(task, n)
