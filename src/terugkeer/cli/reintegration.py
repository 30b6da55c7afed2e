"""Commands of reintegration registration, registered on the CLI by `register`:

* ``terugkeer import cases|activities FILE --municipality GMxxxx [--dry-run] [--json]``
* ``terugkeer import screenings FILE [--dry-run] [--json]``
* ``terugkeer reintegration open-cases`` (back-fill), ``completeness``, ``upcoming``,
  ``not-in-order``, ``costs``, ``synth``.

Each command parses its arguments and calls one library function. Who runs it (``--as``, see
``cli/common.py``) is passed to the action, which writes the audit rows: imports and
``open-cases`` a row per case they change, ``upcoming`` and ``not-in-order`` a row per case
they show (``case_listed``); ``completeness`` and ``costs`` show figures only.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from terugkeer.cli.common import AsOpt, PurposeOpt, actor, actor_name, err, out
from terugkeer.reintegration.audit import PURPOSE
from terugkeer.reintegration.errors import ReintegrationError

import_app = typer.Typer(
    help="Import registrations from municipal systems and screenings from prisons.",
    no_args_is_help=True,
)
reintegration_app = typer.Typer(
    help="Reintegration registration: cases, the five conditions, activities.",
    no_args_is_help=True,
)

MunicipalityOpt = Annotated[
    str, typer.Option("--municipality", "-m", help="the municipality's CBS code, GMxxxx")
]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="check only; write nothing")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print counts as JSON")]
UserOpt = Annotated[
    str | None,
    typer.Option(
        "--as",
        "--user",
        help="who imports, for the audit log (default: $TERUGKEER_ACTOR, else your login)",
        show_default=False,
    ),
]


def _actor(user: str | None) -> str:
    return actor_name(user)


def _engine() -> Any:
    from terugkeer.db.engine import make_engine
    from terugkeer.migrations import upgrade

    engine = make_engine()
    upgrade(engine)
    return engine


def _run_import(kind: str, path: Path, municipality: str | None, **kw: Any) -> None:
    from terugkeer.reintegration import importing as importer

    as_json = kw.pop("as_json")
    if not path.is_file():
        err.print(f"[red]no such file: {path}[/red]")
        raise typer.Exit(2)
    engine = _engine()
    try:
        if kind == "cases":
            assert municipality is not None  # noqa: S101 - a required option
            report = importer.import_cases(engine, path, municipality=municipality, **kw)
        elif kind == "activities":
            assert municipality is not None  # noqa: S101
            report = importer.import_activities(engine, path, municipality=municipality, **kw)
        else:
            report = importer.import_screenings(engine, path, **kw)
    except ReintegrationError as e:
        err.print(f"[red]{e.message}[/red]")
        raise typer.Exit(2) from e
    if as_json:
        out.print_json(json.dumps(report.as_json()))
        if not report.ok:
            err.print(report.text(limit=20), highlight=False, markup=False)
    else:
        out.print(report.text(), highlight=False, markup=False)
    raise typer.Exit(0 if report.ok else 1)


@import_app.command("cases")
def import_cases(
    file: Annotated[Path, typer.Argument(help="CSV or XLSX: one row per case and moment")],
    municipality: MunicipalityOpt,
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
    user: UserOpt = None,
) -> None:
    """Import cases: own case reference, consent, the five conditions per moment.
    All or nothing; exits 1 when the file is rejected (every error in NAME.errors.csv beside it)."""
    _run_import("cases", file, municipality, dry_run=dry_run, as_json=as_json, actor=_actor(user))


@import_app.command("activities")
def import_activities(
    file: Annotated[Path, typer.Argument(help="CSV or XLSX: one row per activity")],
    municipality: MunicipalityOpt,
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
    user: UserOpt = None,
) -> None:
    """Import activities with their costs. All or nothing; exits 1 when the file is rejected."""
    _run_import(
        "activities", file, municipality, dry_run=dry_run, as_json=as_json, actor=_actor(user)
    )


@import_app.command("screenings")
def import_screenings(
    file: Annotated[Path, typer.Argument(help="CSV or XLSX from the prison administration")],
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
    user: UserOpt = None,
) -> None:
    """Import the prisons' intake screenings of the five conditions (one row per period)."""
    _run_import("screenings", file, None, dry_run=dry_run, as_json=as_json, actor=_actor(user))


@reintegration_app.command("open-cases")
def open_cases_command(as_json: JsonOpt = False, who: AsOpt = None) -> None:
    """Open cases for every stored detention period that needs one (back-fill), and bring
    existing cases in line with their periods. Each case opened or changed is in the audit log."""
    from terugkeer.reintegration.cases import open_cases

    by = actor("reintegration open-cases", who, PURPOSE)
    result = open_cases(_engine(), None, actor=by)
    if as_json:
        out.print_json(json.dumps(result.as_json()))
        return
    out.print(
        f"periods {result.periods:,}: opened {result.opened:,}, updated {result.updated:,}, "
        f"unchanged {result.unchanged:,}; no case: "
        + (", ".join(f"{k} {v:,}" for k, v in sorted(result.skipped.items())) or "none")
    )


def _on(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


@reintegration_app.command("completeness")
def completeness_command(
    municipality: Annotated[str | None, typer.Option("--municipality", "-m")] = None,
    on: Annotated[str | None, typer.Option(help="as of this date (yyyy-mm-dd)")] = None,
    as_json: JsonOpt = False,
) -> None:
    """How complete the registration is, per municipality and moment (figures only: no audit
    row)."""
    from terugkeer.demo.registration import completeness_table
    from terugkeer.reintegration.queries import completeness

    with _engine().connect() as conn:
        rows = completeness(conn, municipality, on=_on(on))
    if as_json:
        out.print_json(json.dumps([r.model_dump(mode="json") for r in rows]))
        return
    out.print(completeness_table(rows))


@reintegration_app.command("upcoming")
def upcoming_command(
    municipality: MunicipalityOpt,
    days: Annotated[int, typer.Option(min=1, max=366)] = 30,
    on: Annotated[str | None, typer.Option(help="from this date (yyyy-mm-dd)")] = None,
    as_json: JsonOpt = False,
    who: AsOpt = None,
    purpose: PurposeOpt = "preparing returns",
) -> None:
    """Residents expected back from detention in the next days.

    Each case shown is a `case_listed` row of record type `reintegration_case` in the audit
    log."""
    from terugkeer.reintegration.queries import upcoming_returns

    by = actor("reintegration upcoming", who, purpose)
    with _engine().begin() as conn:
        rows = upcoming_returns(conn, municipality, actor=by, on=_on(on), days=days)
    _print_models(rows, as_json)


@reintegration_app.command("not-in-order")
def not_in_order_command(
    municipality: MunicipalityOpt,
    as_json: JsonOpt = False,
    who: AsOpt = None,
    purpose: PurposeOpt = "reintegration follow-up",
) -> None:
    """Returned residents whose conditions were not all in order at release.

    Each case shown is a `case_listed` row of record type `reintegration_case` in the audit
    log."""
    from terugkeer.reintegration.queries import not_in_order_at_release

    by = actor("reintegration not-in-order", who, purpose)
    with _engine().begin() as conn:
        rows = not_in_order_at_release(conn, municipality, actor=by)
    _print_models(rows, as_json)


@reintegration_app.command("costs")
def costs_command(
    municipality: Annotated[str | None, typer.Option("--municipality", "-m")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Activities and costs per condition and programme (figures only: no audit row)."""
    from terugkeer.reintegration.queries import activity_costs

    with _engine().connect() as conn:
        rows = activity_costs(conn, municipality)
    _print_models(rows, as_json)


def _print_models(rows: list[Any], as_json: bool) -> None:
    data = [r.model_dump(mode="json") for r in rows]
    if as_json:
        out.print_json(json.dumps(data))
        return
    if not data:
        out.print("nothing to show")
        return
    table = Table(*data[0].keys())
    for d in data:
        table.add_row(*("" if v is None else str(v) for v in d.values()))
    out.print(table)


@reintegration_app.command("synth")
def synth_command(
    feeds: Annotated[Path, typer.Option(help="folder with truth.csv and detention.jsonl")],
    out_dir: Annotated[Path, typer.Option("--out", help="folder for the registration files")],
    seed: Annotated[int, typer.Option()] = 1,
    messy: Annotated[bool, typer.Option(help="put bad rows in a share of the files")] = False,
) -> None:
    """Write synthetic screenings and per-municipality registration files from a synthetic year."""
    from terugkeer.synth.registrations import MessyRegistrations, write_registrations

    summary = write_registrations(
        feeds, out_dir, seed=seed, messy=MessyRegistrations() if messy else None
    )
    out.print(
        f"screenings {summary.screenings:,}; {len(summary.municipalities):,} municipalities: "
        f"{summary.case_rows:,} case rows, {summary.activity_rows:,} activity rows; "
        f"files with bad rows {summary.messy_files:,} ({summary.bad_rows:,} bad rows)"
    )


def register(app: typer.Typer) -> None:
    """Add this module's commands to the top-level app."""
    app.add_typer(import_app, name="import")
    app.add_typer(reintegration_app, name="reintegration")
