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
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from decimal import Decimal
from typing import Annotated, Any, NoReturn

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
from rich.text import Text

from terugkeer.config import Settings
from terugkeer.detention.ingest import ProgressCallback
from terugkeer.domain.bsn import mask_bsns
from terugkeer.security import audit
from terugkeer.security.actor import MAX_NAME, Actor

PREFIX = audit.CLI_PREFIX
ACTOR_ENV = "TERUGKEER_ACTOR"  # Settings.actor; Settings.user is TERUGKEER_USER, the older name


class PlainConsole(Console):
    """A Rich console that never reads markup in what it prints (a value like ``[gm0363]``
    is printed as it is) and, when its output is not a terminal (a file, a pipe), prints
    plain text: no wrapping at 80 columns and tables as aligned columns without borders,
    every cell whole.

    Messages written as ``"[red]…[/red]"`` (from before markup was turned off) are printed in
    red with the text between as it is. With ``masked`` every BSN in a text is masked, as
    in the error contract (``cli/errors.py``): an error message that repeats what was typed
    (a status, a file name, a user) never shows one, whichever command prints it."""

    def __init__(self, *, markup: bool = False, masked: bool = False, **kwargs: Any) -> None:
        super().__init__(markup=markup, highlight=False, emoji=False, **kwargs)
        self.masked = masked

    def print(self, *objects: Any, **kwargs: Any) -> None:
        if self.masked:
            objects = tuple(mask_bsns(o) if isinstance(o, str) else o for o in objects)
        if not self._markup:  # only a console for the program's own texts reads markup
            kwargs["markup"] = False
        if len(objects) == 1 and isinstance(objects[0], str):
            text = objects[0]
            if text.startswith("[red]") and text.endswith("[/red]"):
                objects = (text[5:-6],)
                kwargs.setdefault("style", "red")
        if not self.is_terminal:
            kwargs.setdefault("soft_wrap", True)
            kwargs.setdefault("highlight", False)
            objects = tuple(plain_table(o) if isinstance(o, Table) else o for o in objects)
        super().print(*objects, **kwargs)


def _cell(value: Any) -> str:
    if isinstance(value, Text):
        return value.plain
    return "" if value is None else str(value)


def plain_table(table: Table) -> str:
    """A table as plain text: a header line and a line per row, columns aligned (numbers to
    the right), separated by two spaces; no cell cut off."""
    columns = [[_cell(c.header), *map(_cell, c.cells)] for c in table.columns]
    if not columns:
        return _cell(table.title)
    widths = [max(map(len, col)) for col in columns]
    right = [c.justify == "right" for c in table.columns]
    lines = []
    for i in range(len(columns[0])):
        cells = [
            col[i].rjust(w) if r else col[i].ljust(w)
            for col, w, r in zip(columns, widths, right, strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
    if table.title:
        lines.insert(0, _cell(table.title))
    if table.caption:
        lines.append(_cell(table.caption))
    return "\n".join(lines)


def print_table(
    headers: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    right: Iterable[int] = (),
    title: str | None = None,
    console: Console | None = None,
) -> None:
    """Print rows under headers: a Rich table on a terminal (cells folded, never cut), plain
    aligned text otherwise. ``right``: the columns (by index) aligned to the right."""
    aligned = set(right)
    table = Table(title=title, show_lines=False)
    for i, h in enumerate(headers):
        table.add_column(h, justify="right" if i in aligned else "left", overflow="fold")
    for row in rows:
        table.add_row(*(_cell(v) for v in row))
    (console or out).print(table)


out = PlainConsole()
err = PlainConsole(stderr=True, masked=True)


def fail(*lines: str) -> NoReturn:
    """Stop the command with an expected error: these lines (one or two), exit code 2."""
    from terugkeer.cli.errors import CommandFailed

    raise CommandFailed(lines)


# --- Dutch text output (JSON keeps ISO dates and cents) --------------------------------------


def euro(amount: Decimal | int | float | None, *, cents: bool = False) -> str:
    """``€ 1.234,56``: an amount in euros (or in cents with ``cents=True``), Dutch style."""
    if amount is None:
        return ""
    value = Decimal(amount) / 100 if cents else Decimal(str(amount))
    text = f"{value:,.2f}".replace(",", "_").replace(".", ",").replace("_", ".")
    return f"€ {text}"


def number(value: Decimal | int | float | None, places: int = 0) -> str:
    """A number with Dutch separators: ``12.345`` or ``1.234,5`` (``places`` decimals)."""
    if value is None:
        return ""
    text = f"{Decimal(str(value)):,.{places}f}"
    return text.replace(",", "_").replace(".", ",").replace("_", ".")


def datum(day: date | str | None) -> str:
    """A date as ``dd-mm-jjjj``."""
    if day is None or day == "":
        return ""
    if isinstance(day, str):
        day = date.fromisoformat(day[:10])
    return f"{day.day:02d}-{day.month:02d}-{day.year:04d}"


def parse_day(value: str | date) -> date:
    """A date given on the command line: ``dd-mm-jjjj`` (also ``d-m-jjjj``, ``/`` or ``.``)
    or ISO ``jjjj-mm-dd``; a bad one is a usage error naming the option (exit 2)."""
    if isinstance(value, date):
        return value
    from terugkeer.reintegration.values import parse_date

    try:
        return parse_date(value)
    except ValueError as e:
        raise typer.BadParameter(f"[{value}]: {e} (or jjjj-mm-dd)") from e


DayOpt = Annotated[
    date | None,
    typer.Option(parser=parse_day, metavar="DATUM", help="dd-mm-jjjj (or jjjj-mm-dd)"),
]

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
