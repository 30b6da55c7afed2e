"""The command line's error contract, implemented once for every command.

* An expected error (a bad option value, a missing file, an unknown code or municipality, a
  database without a schema or out of reach) is one or two plain lines on standard error,
  naming the command and what is wrong, and exit code 2.
* Anything else is a fault of terugkeer: one line naming it and how to see the traceback,
  exit code 70 (``EX_SOFTWARE``).
* ``terugkeer --debug …`` shows the traceback instead (without local variables: they may hold
  personal data).
* Messages are printed as they are (never as Rich markup), and a 9-digit number that passes
  the 11-proef is masked (``******653``) wherever a message echoes it.

The root group of the app is :class:`TerugkeerGroup`: its ``invoke`` turns exceptions into
:class:`CommandFailed` and its ``main`` prints every ``click`` error in the plain form.
Commands therefore raise the library's errors and need no ``try`` of their own.
"""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Sequence
from types import TracebackType
from typing import Any

import typer
from typer._click import exceptions as cx  # the click that typer carries with it
from typer._click.core import Context
from typer.core import TyperGroup

from terugkeer.domain.bsn import mask_bsns

EXIT_EXPECTED = 2
EXIT_INTERNAL = 70


class CommandFailed(cx.ClickException):
    """An error already worded for the operator: its lines and its exit code."""

    def __init__(self, lines: Sequence[str], exit_code: int = EXIT_EXPECTED) -> None:
        super().__init__("\n".join(lines))
        self.lines = list(lines)
        self.exit_code = exit_code


def _expected_types() -> tuple[type[BaseException], ...]:
    """The library's errors that mean bad input or a state the operator can fix."""
    from terugkeer.domain.events import FeedError
    from terugkeer.notify.assurance.backfill import NotFoundError
    from terugkeer.notify.delivery.channels import DeliveryError
    from terugkeer.notify.delivery.inbox import InboxError
    from terugkeer.notify.worker import WorkerError
    from terugkeer.reintegration.errors import ReintegrationError
    from terugkeer.reintegration.sheets import SheetError
    from terugkeer.security.crypto import KeyConfigError

    return (
        ValueError,
        OSError,
        FeedError,
        NotFoundError,
        DeliveryError,
        InboxError,
        WorkerError,
        ReintegrationError,
        SheetError,
        KeyConfigError,
    )


def _database_types() -> tuple[type[BaseException], ...]:
    from sqlalchemy import exc

    found: list[type[BaseException]] = [
        exc.OperationalError,
        exc.ProgrammingError,
        exc.InterfaceError,
        exc.ArgumentError,
        exc.NoSuchModuleError,
        sqlite3.OperationalError,
        sqlite3.ProgrammingError,
    ]
    try:
        import psycopg
    except ImportError:  # pragma: no cover - installed with the project
        pass
    else:
        found += [psycopg.OperationalError, psycopg.ProgrammingError, psycopg.InterfaceError]
    return tuple(found)


def _database_url() -> str:
    try:
        from sqlalchemy.engine import make_url

        from terugkeer.config import get_settings

        return make_url(get_settings().database_url).render_as_string(hide_password=True)
    except Exception:
        return "TERUGKEER_DATABASE_URL"


def _first_line(e: BaseException) -> str:
    orig = getattr(e, "orig", None)
    text = str(orig if orig is not None else e).strip()
    return (text.splitlines() or [type(e).__name__])[0]


def database_message(e: BaseException) -> list[str]:
    """What a database error means to the operator, without bound values."""
    first = _first_line(e)
    url = _database_url()
    lowered = first.lower()
    if "no such table" in lowered or ("relation" in lowered and "does not exist" in lowered):
        return [
            f"the database at {url} has no schema yet (or an older one): {first}",
            "create or upgrade it with `terugkeer db upgrade`",
        ]
    return [
        f"cannot use the database at {url}: {first}",
        "check TERUGKEER_DATABASE_URL and that the database runs and is upgraded "
        "(`terugkeer db upgrade`)",
    ]


def describe(e: BaseException) -> CommandFailed:
    """The lines and exit code for an exception a command raised."""
    if isinstance(e, _database_types()):
        return CommandFailed(database_message(e))
    if isinstance(e, OSError) and e.filename is not None:
        reason = e.strerror or type(e).__name__
        return CommandFailed([f"cannot use {e.filename}: {reason}"])
    settings = _settings_problem(e)
    if settings is not None:
        return CommandFailed([settings, "see docs/operations.md for the TERUGKEER_* settings"])
    if isinstance(e, _expected_types()):
        text = getattr(e, "message", None) or str(e) or type(e).__name__
        return CommandFailed(str(text).strip().splitlines()[:2])
    return CommandFailed(
        [
            f"internal error: {type(e).__name__}: {_first_line(e)}",
            "this is a fault of terugkeer; `terugkeer --debug …` shows the traceback",
        ],
        EXIT_INTERNAL,
    )


def _settings_problem(e: BaseException) -> str | None:
    """A bad ``TERUGKEER_*`` variable, named as the operator set it (pydantic's own text
    names the model and the field: "1 validation error for Settings / environment")."""
    from pydantic import ValidationError

    if not isinstance(e, ValidationError) or e.title != "Settings":
        return None
    first = e.errors()[0]
    name = "TERUGKEER_" + "_".join(str(part) for part in first["loc"]).upper()
    return f"setting {name}: {first['msg']}"


def _command_path(tb: TracebackType | None, fallback: str) -> str:
    """The path of the innermost command the traceback passed through."""
    path = fallback
    while tb is not None:
        ctx = tb.tb_frame.f_locals.get("ctx")
        if isinstance(ctx, Context):
            path = ctx.command_path
        tb = tb.tb_next
    return path


def _print(lines: Sequence[str]) -> None:
    from terugkeer.cli.common import err

    for line in lines:
        err.print(mask_bsns(line), style="red", markup=False, highlight=False, soft_wrap=True)


class TerugkeerGroup(TyperGroup):
    """The app's root group: the error contract above, for every command under it."""

    def invoke(self, ctx: Context) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, cx.ClickException):
            raise
        except KeyboardInterrupt:
            raise
        except Exception as e:
            if ctx.params.get("debug"):
                raise
            failed = describe(e)
            where = _command_path(e.__traceback__, ctx.command_path)
            failed.lines[0] = f"{where}: {failed.lines[0]}"
            raise failed from e

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        try:
            code = super().main(
                args=args,
                prog_name=prog_name,
                complete_var=complete_var,
                standalone_mode=False,
                **extra,
            )
            code = code if isinstance(code, int) else 0
        except cx.NoArgsIsHelpError as e:
            e.show()  # the help text
            code = e.exit_code
        except CommandFailed as e:
            _print(e.lines)
            code = e.exit_code
        except cx.UsageError as e:
            where = e.ctx.command_path if e.ctx is not None else (prog_name or "terugkeer")
            message = e.format_message()
            _print([f"{where}: {message[:1].lower()}{message[1:]}", f"see `{where} --help`"])
            code = e.exit_code
        except cx.ClickException as e:
            _print([e.format_message()])
            code = e.exit_code
        except typer.Abort:
            _print(["aborted"])
            code = 1
        if not standalone_mode:
            return code
        sys.exit(code)
