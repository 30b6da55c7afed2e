"""Importing the prison administration's intake screenings of the five conditions, one row per
detention period (upsert on the period). Cases that already have consent get them as intake
facts at once; the others when consent is given."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, select, update

from terugkeer.db.bulk import among, chunks, read_date, read_datetime
from terugkeer.detention.tables import detention_periods
from terugkeer.reintegration import values
from terugkeer.reintegration.audit import actor_of, now_utc
from terugkeer.reintegration.codes import CONDITIONS, Condition, ConsentScope, ConsentStatus
from terugkeer.reintegration.importing.report import Collector, ImportReport, finish
from terugkeer.reintegration.importing.shared import (
    cell,
    end_import,
    open_for,
    sha256_of,
    sheet_rows,
    start_import,
)
from terugkeer.reintegration.scope import local_date, today
from terugkeer.reintegration.service import SCREENING_BEFORE_INTAKE, prefill_screenings
from terugkeer.reintegration.sheets import Sheet
from terugkeer.reintegration.tables import intake_screenings, reintegration_cases

SCREENING_ALIASES: dict[str, tuple[str, ...]] = {
    "period_ref": ("detentiekenmerk", "detentienummer", "period_ref"),
    "screened_on": ("screeningsdatum", "datum", "screened_on"),
    "id": ("identiteitsbewijs", "id"),
    "housing": ("onderdak", "huisvesting", "housing"),
    "income": ("werk_en_inkomen", "werk_inkomen", "inkomen", "income"),
    "debts": ("schulden", "debts"),
    "care": ("zorg", "care"),
    "care_needs": ("zorgbehoefte", "care_needs"),
}

SCREENING_RECORD = "intake_screening"  # the audit log's record type (id: the detention period)
Parsed = tuple[int, str, date, dict[str, str | None]]  # row, period reference, day, statuses
Write = tuple[int, date, dict[str, str | None], Any]  # period id, day, statuses, stored row


def import_screenings(
    engine: Engine,
    path: Path,
    *,
    actor: str,
    dry_run: bool = False,
    write_report: bool = True,
    now: datetime | None = None,
) -> ImportReport:
    """Import the prison administration's intake screenings of the five conditions, one row per
    detention period (upsert on the period). Cases that already have consent get them as
    intake facts at once; the others when consent is given."""
    now = now or now_utc()
    report = ImportReport("screenings", path, None, dry_run)
    sheet = open_for(report, SCREENING_ALIASES, ("period_ref", "screened_on"))
    if sheet is None:
        return finish(report, write_report=write_report)
    err = Collector(report, sheet)
    parsed = _parse(sheet, report, err)
    with engine.begin() as conn:
        writes = _plan(conn, parsed, report, err)
        if report.bad:
            return finish(report, write_report=write_report)
        report.applied = len(writes)
        if dry_run:
            return finish(report, write_report=write_report)
        report.import_id = start_import(conn, report, actor, sha256_of(path), now)
        _write(conn, writes, report.import_id, now)
        _audit(conn, actor, writes, report.import_id, now)
        end_import(conn, report)
    return finish(report, write_report=write_report)


def _parse(sheet: Sheet, report: ImportReport, err: Collector) -> list[Parsed]:
    """Every row checked on its own; the good ones."""
    parsed: list[Parsed] = []
    for n, cells in sheet_rows(sheet, err):
        report.rows += 1
        before = len(report.errors)
        ref = values.cell_text(cell(cells, sheet, "period_ref"))
        if not ref:
            err.add(n, "period_ref", "", "the detention reference is required")
        raw_day = cell(cells, sheet, "screened_on")
        day = None
        try:
            day = values.parse_date(raw_day)
            if day > today():
                err.add(n, "screened_on", raw_day, "lies in the future")
        except ValueError as e:
            err.add(n, "screened_on", raw_day, str(e))
        found: dict[str, str | None] = {}
        for c in CONDITIONS:
            raw = cell(cells, sheet, c.value)
            if values.cell_text(raw) == "":
                found[c.value] = None
                continue
            try:
                found[c.value] = values.parse_code(c.value, raw)
            except ValueError as e:
                err.add(n, c.value, raw, str(e))
        raw_needs = cell(cells, sheet, "care_needs")
        needs: list[str] = []
        if values.cell_text(raw_needs):
            try:
                needs = values.parse_codes("care_need", raw_needs)
            except ValueError as e:
                err.add(n, "care_needs", raw_needs, str(e))
            if found.get(Condition.CARE.value) in (None, "not_needed"):
                err.add(n, "care_needs", raw_needs, "care needs without care needed")
        found["care_needs"] = ",".join(needs) or None
        if len(report.errors) == before and day is not None:
            parsed.append((n, ref, day, found))
    return parsed


def _plan(
    conn: Connection, parsed: list[Parsed], report: ImportReport, err: Collector
) -> list[Write]:
    """The parsed rows against the store and each other: what changes (the unchanged ones
    counted in the report)."""
    periods: dict[str, int] = {}
    spans: dict[str, tuple[date, date | None]] = {}  # intake and release (local dates)
    for chunk in chunks(sorted({p[1] for p in parsed})):
        for r in conn.execute(
            select(
                detention_periods.c.id,
                detention_periods.c.period_ref,
                detention_periods.c.intake_at,
                detention_periods.c.ended_at,
            ).where(among(conn, detention_periods.c.period_ref, chunk))
        ):
            periods[r.period_ref] = r.id
            ended = read_datetime(r.ended_at)
            spans[r.period_ref] = (
                local_date(read_datetime(r.intake_at) or r.intake_at),
                local_date(ended) if ended is not None else None,
            )
    stored: dict[int, Any] = {}
    for chunk in chunks(list(periods.values())):
        for r in conn.execute(
            select(intake_screenings).where(among(conn, intake_screenings.c.period_id, chunk))
        ):
            stored[r.period_id] = r
    seen: dict[str, int] = {}
    writes: list[Write] = []
    for n, ref, day, found in parsed:
        period_id = periods.get(ref)
        if period_id is None:
            err.add(n, "period_ref", ref, "no detention period with this reference")
            continue
        if ref in seen:
            err.add(n, "period_ref", ref, f"this period is already on row {seen[ref]}")
            continue
        seen[ref] = n
        intake, release = spans[ref]
        first = intake - timedelta(days=SCREENING_BEFORE_INTAKE)
        if not first <= day <= (release or day):
            err.add(
                n,
                "screened_on",
                f"{day.day:02d}-{day.month:02d}-{day.year:04d}",
                f"implausible for this period (intake {intake.strftime('%d-%m-%Y')}"
                + (f", release {release.strftime('%d-%m-%Y')}" if release else "")
                + f"): a screening lies between {SCREENING_BEFORE_INTAKE} days before the "
                "intake and the release",
            )
            continue
        old = stored.get(period_id)
        same = (
            old is not None
            and read_date(old.screened_on) == day
            and all(getattr(old, f"{c.value}_status") == found[c.value] for c in CONDITIONS)
            and old.care_needs == found["care_needs"]
        )
        if same:
            report.unchanged += 1
        else:
            writes.append((period_id, day, found, old))
    return writes


def _audit(
    conn: Connection, actor: str, writes: list[Write], import_id: int, now: datetime
) -> None:
    """One audit row per screening written, naming its detention period: a new one, or the
    old values of one it changed (codes only)."""
    entries: list[tuple[int, dict[str, Any]]] = []
    for period_id, day, found, old in writes:
        own: dict[str, Any] = {"new": old is None}
        if old is not None:
            before = {"screened_on": read_date(old.screened_on), "care_needs": old.care_needs}
            before.update({c.value: getattr(old, f"{c.value}_status") for c in CONDITIONS})
            after = {"screened_on": day, **found}
            own["old"] = {k: v for k, v in before.items() if v != after.get(k)}
        entries.append((period_id, own))
    actor_of(actor).record(
        conn, "screening_imported", SCREENING_RECORD, entries, {"import_id": import_id}, at=now
    )


def _write(conn: Connection, writes: list[Write], import_id: int, now: datetime) -> None:
    """The new and changed screenings; cases with consent given get them at once."""
    new_rows, changed = [], []
    for period_id, day, found, old in writes:
        row = {
            "screened_on": day,
            **{f"{c.value}_status": found[c.value] for c in CONDITIONS},
            "care_needs": found["care_needs"],
            "imported_at": now,
            "import_id": import_id,
        }
        if old is None:
            new_rows.append({"period_id": period_id, **row})
        else:
            changed.append({"b_id": old.id, **{f"b_{k}": v for k, v in row.items()}})
    if new_rows:
        conn.execute(intake_screenings.insert(), new_rows)
    if changed:
        columns = [k for k in changed[0] if k != "b_id"]
        conn.execute(
            update(intake_screenings)
            .where(intake_screenings.c.id == bindparam("b_id"))
            .values({k.removeprefix("b_"): bindparam(k) for k in columns}),
            changed,
        )
    # cases with consent already given get the screening now
    consenting: list[tuple[int, int]] = []
    for chunk in chunks([w[0] for w in writes]):
        for rc in conn.execute(
            select(
                reintegration_cases.c.id,
                reintegration_cases.c.period_id,
                reintegration_cases.c.consent_scope,
            ).where(
                among(conn, reintegration_cases.c.period_id, chunk),
                reintegration_cases.c.consent == ConsentStatus.GIVEN.value,
            )
        ):
            if ConsentScope.REGISTRATION in (rc.consent_scope or "").split(","):
                consenting.append((rc.id, rc.period_id))
    prefill_screenings(conn, consenting, now=now)
