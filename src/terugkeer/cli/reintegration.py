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
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from terugkeer.cli.common import (
    AsOpt,
    PurposeOpt,
    actor,
    actor_name,
    datum,
    err,
    euro,
    fail,
    number,
    out,
    parse_day,
    print_table,
)
from terugkeer.reintegration.audit import PURPOSE

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
JsonOpt = Annotated[bool, typer.Option("--json", help="print as JSON (ISO dates, euros)")]
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


def _engine(*, writes: bool = True) -> Any:
    """The database; a command that writes (an import, the back-fill) creates or upgrades the
    schema first, a command that only reads needs it there (`terugkeer db upgrade`)."""
    from terugkeer.db.engine import make_engine
    from terugkeer.migrations import upgrade

    engine = make_engine()
    if writes:
        upgrade(engine)
    return engine


def _run_import(kind: str, path: Path, municipality: str | None, **kw: Any) -> None:
    from terugkeer.reintegration import importing as importer

    as_json = kw.pop("as_json")
    if not path.is_file():
        fail(f"no such file: {path}")
    if municipality is not None:
        municipality = _municipality(municipality)  # before the database is touched
    engine = _engine()
    if kind == "cases":
        assert municipality is not None  # noqa: S101 - a required option
        report = importer.import_cases(engine, path, municipality=municipality, **kw)
    elif kind == "activities":
        assert municipality is not None  # noqa: S101
        report = importer.import_activities(engine, path, municipality=municipality, **kw)
    else:
        report = importer.import_screenings(engine, path, **kw)
    if as_json:
        out.print_json(json.dumps(report.as_json()))
        if not report.ok:
            err.print(report.text(limit=20))
    else:
        out.print(report.text())
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


def _municipality(code: str | None) -> str | None:
    """The municipality's CBS code, checked (an unknown code is an error naming it, exit 2)."""
    if code is None:
        return None
    from terugkeer.reintegration.importing.shared import check_municipality

    return check_municipality(code)


def _name(code: str) -> str:
    from terugkeer.domain.refdata import refdata

    found = refdata().municipalities.get(code)
    return f"{code} {found.name}" if found else code


def _share(done: int, due: int) -> str:
    if not due:
        return "n.v.t."
    if not done:
        return f"niets geregistreerd (0 van {number(due)})"
    return f"{number(done)} van {number(due)} ({number(100 * done / due, 0)} %)"


@reintegration_app.command("completeness")
def completeness_command(
    municipality: Annotated[str | None, typer.Option("--municipality", "-m")] = None,
    on: Annotated[
        date | None,
        typer.Option(parser=parse_day, metavar="DATUM", help="peildatum: dd-mm-jjjj (or ISO)"),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """How complete the registration is, per municipality and moment, with a total (figures
    only: no audit row)."""
    from terugkeer.reintegration.codes import MOMENT_LABELS, MOMENTS
    from terugkeer.reintegration.queries import completeness

    code = _municipality(municipality)
    with _engine(writes=False).connect() as conn:
        rows = completeness(conn, code, on=on)
    if as_json:
        out.print_json(json.dumps([r.model_dump(mode="json") for r in rows]))
        return
    when = f" op {datum(on)}" if on else ""
    if not rows:
        out.print(
            f"niets geregistreerd: geen nazorgdossiers{when}"
            + (f" in {_name(code)}" if code else "")
        )
        return
    headers = ["gemeente", "dossiers", "teruggekeerd", "met toestemming"]
    headers += [MOMENT_LABELS[m] for m in MOMENTS]
    table: list[list[str]] = []
    totals = [0, 0, 0]
    due = {m.value: [0, 0] for m in MOMENTS}
    for r in rows:
        cells = [f"{r.municipality} {r.name}", number(r.cases), number(r.returned)]
        cells.append(number(r.with_consent))
        for mc in r.moments:
            cells.append(_share(mc.recorded, mc.due))
            due[mc.moment][0] += mc.recorded
            due[mc.moment][1] += mc.due
        totals = [totals[0] + r.cases, totals[1] + r.returned, totals[2] + r.with_consent]
        table.append(cells)
    if len(rows) > 1:
        table.append(["totaal", *map(number, totals), *(_share(*due[m.value]) for m in MOMENTS)])
    print_table(headers, table, right=(1, 2, 3), title=f"registratievolledigheid{when}")


@reintegration_app.command("upcoming")
def upcoming_command(
    municipality: MunicipalityOpt,
    days: Annotated[int, typer.Option(min=1, max=366)] = 30,
    on: Annotated[
        date | None,
        typer.Option(parser=parse_day, metavar="DATUM", help="from this date: dd-mm-jjjj (or ISO)"),
    ] = None,
    as_json: JsonOpt = False,
    who: AsOpt = None,
    purpose: PurposeOpt = "preparing returns",
) -> None:
    """Residents expected back from detention in the next days (from --on, default today;
    looking back from a date in the past, also those who have come back since).

    Each case shown is a `case_listed` row of record type `reintegration_case` in the audit
    log."""
    from terugkeer.reintegration.codes import label
    from terugkeer.reintegration.queries import upcoming_returns
    from terugkeer.reintegration.scope import today

    by = actor("reintegration upcoming", who, purpose)
    code = _municipality(municipality)
    assert code is not None  # noqa: S101 - a required option
    with _engine(writes=False).begin() as conn:
        rows = upcoming_returns(conn, code, actor=by, on=on, days=days)
    if as_json:
        out.print_json(json.dumps([r.model_dump(mode="json") for r in rows]))
        return
    start = on or today()
    span = f"{datum(start)} tot en met {datum(start + timedelta(days=days))}"
    if not rows:
        out.print(f"niets geregistreerd: geen verwachte terugkeer in {_name(code)} van {span}")
        return
    print_table(
        ["dossier", "dossiernummer", "detentiekenmerk", "inrichting", "ontslagdatum",
         "over dagen", "toestemming", "status"],
        (
            [r.case_id, r.municipal_ref, r.period_ref, r.institution,
             datum(r.planned_release_date), r.days_until, label("consent", r.consent),
             label("case_status", r.status)]
            for r in rows
        ),
        right=(0, 5),
        title=f"verwachte terugkeer in {_name(code)}, {span}",
    )  # fmt: skip
    out.print(f"totaal: {number(len(rows))} dossiers")


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
    from terugkeer.reintegration.codes import label
    from terugkeer.reintegration.queries import not_in_order_at_release

    by = actor("reintegration not-in-order", who, purpose)
    code = _municipality(municipality)
    assert code is not None  # noqa: S101 - a required option
    with _engine(writes=False).begin() as conn:
        rows = not_in_order_at_release(conn, code, actor=by)
    if as_json:
        out.print_json(json.dumps([r.model_dump(mode="json") for r in rows]))
        return
    if not rows:
        out.print(
            f"niets geregistreerd: geen teruggekeerde dossiers met voorwaarden niet op orde in {_name(code)}"
        )
        return

    def names(conditions: list[str]) -> str:
        return ", ".join(label("condition", c) for c in conditions)

    print_table(
        ["dossier", "dossiernummer", "detentiekenmerk", "ontslagdatum", "niet op orde",
         "onbekend"],
        (
            [r.case_id, r.municipal_ref, r.period_ref, datum(r.release_date),
             names(r.not_in_order), names(r.unknown)]
            for r in rows
        ),
        right=(0,),
        title=f"niet op orde bij ontslag in {_name(code)}",
    )  # fmt: skip
    out.print(f"totaal: {number(len(rows))} dossiers")


@reintegration_app.command("costs")
def costs_command(
    municipality: Annotated[str | None, typer.Option("--municipality", "-m")] = None,
    start: Annotated[
        date | None,
        typer.Option(
            "--van", parser=parse_day, metavar="DATUM", help="activities starting on or after"
        ),
    ] = None,
    end: Annotated[
        date | None,
        typer.Option(
            "--tot", parser=parse_day, metavar="DATUM", help="activities starting on or before"
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Activities and costs per condition and programme, with totals (figures only: no audit
    row). --van and --tot as the API's van and tot."""
    from terugkeer.reintegration.codes import label
    from terugkeer.reintegration.queries import activity_costs

    code = _municipality(municipality)
    if start is not None and end is not None and end < start:
        raise typer.BadParameter(f"{datum(end)} is before --van {datum(start)}", param_hint="--tot")
    with _engine(writes=False).connect() as conn:
        rows = activity_costs(conn, code, start=start, end=end)
    if as_json:
        out.print_json(json.dumps([r.model_dump(mode="json") for r in rows]))
        return
    where = f" in {_name(code)}" if code else ""
    span = "".join(
        [f" van {datum(start)}" if start else "", f" tot en met {datum(end)}" if end else ""]
    )
    if not rows:
        out.print(f"niets geregistreerd: geen activiteiten{where}{span}")
        return
    table = [
        [label("condition", r.condition), r.programme or "(geen programma)",
         number(r.activities), number(r.cases), number(r.hours, 2), euro(r.cost_eur)]
        for r in rows
    ]  # fmt: skip
    table.append(
        [
            "totaal",
            "",
            number(sum(r.activities for r in rows)),
            "",
            number(sum(r.hours for r in rows), 2),
            euro(sum(r.cost_eur for r in rows)),
        ]
    )
    print_table(
        ["basisvoorwaarde", "programma", "activiteiten", "dossiers", "uren", "kosten"],
        table,
        right=(2, 3, 4, 5),
        title=f"activiteiten en kosten{where}{span}",
    )


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
