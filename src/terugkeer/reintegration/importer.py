"""Bulk import from municipal systems (cases with consent and conditions; activities) and from
the prison administration (intake screenings), as CSV or XLSX.

Every file is all-or-nothing: every row is checked (values, then against the store); with any
bad row nothing is written and the report lists each bad row with its row number, column,
value and reason, as text and as ``<file>.errors.csv`` beside the file. A valid file is applied
in one transaction. Rows are upserted on the municipality's own references (case reference,
activity reference), so importing the same file again changes nothing. BSNs never appear in
reports or logs in full (only their last three digits).
"""

from __future__ import annotations

import contextlib
import csv
import functools
import gc
import hashlib
import io
import itertools
import operator
import re
from collections import Counter
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, select, update
from sqlalchemy.exc import SQLAlchemyError

from terugkeer.db.bulk import among, chunks, read_date
from terugkeer.detention.tables import detention_periods
from terugkeer.reintegration import codes, values
from terugkeer.reintegration.audit import audit, audit_many, now_utc
from terugkeer.reintegration.codes import (
    ACTIVITY_TYPE,
    CONDITIONS,
    Condition,
    ConsentScope,
    ConsentStatus,
)
from terugkeer.reintegration.errors import ReintegrationError
from terugkeer.reintegration.scope import today
from terugkeer.reintegration.service import (
    MAX_COST_CENTS,
    MAX_HOURS_X100,
    CaseRow,
    ConditionsIn,
    ConsentIn,
    case_from_row,
    case_select,
    check_conditions,
    check_consent,
    current_facts,
    plan_conditions,
    prefill_screenings,
)
from terugkeer.reintegration.sheets import Sheet, SheetError, open_sheet
from terugkeer.reintegration.tables import (
    condition_facts,
    intake_screenings,
    reintegration_cases,
    reintegration_consents,
    reintegration_imports,
)

MAX_REPORTED_ERRORS = 100_000  # a file that is wrong throughout: the first this many rows

CASE_ALIASES: dict[str, tuple[str, ...]] = {
    "case_ref": ("dossiernummer", "dossier", "dossiernr", "zaaknummer", "case_ref"),
    "period_ref": ("detentiekenmerk", "detentienummer", "period_ref"),
    "bsn": ("bsn", "burgerservicenummer"),
    "consent": ("toestemming", "consent"),
    "consent_date": ("toestemming_datum", "datum_toestemming", "consent_date"),
    "consent_scope": ("toestemming_reikwijdte", "reikwijdte", "consent_scope"),
    "moment": ("moment",),
    "as_of": ("datum", "peildatum", "as_of"),
    "id": ("identiteitsbewijs", "id", "identiteit"),
    "housing": ("onderdak", "huisvesting", "housing"),
    "income": ("werk_en_inkomen", "werk_inkomen", "inkomen", "income"),
    "debts": ("schulden", "debts"),
    "care": ("zorg", "care"),
    "care_needs": ("zorgbehoefte", "care_needs"),
    "recorded_by": ("geregistreerd_door", "medewerker", "recorded_by"),
}
ACTIVITY_ALIASES: dict[str, tuple[str, ...]] = {
    "case_ref": ("dossiernummer", "dossier", "dossiernr", "zaaknummer", "case_ref"),
    "activity_ref": ("activiteitnummer", "activiteit_id", "activiteitnr", "activity_ref"),
    "type": ("soort", "soort_activiteit", "activiteit", "type"),
    "provider": ("aanbieder", "uitvoerder", "provider"),
    "start_date": ("startdatum", "begindatum", "start", "start_date"),
    "end_date": ("einddatum", "eind", "end_date"),
    "hours": ("uren", "aantal_uren", "hours"),
    "cost": ("kosten", "kosten_euro", "bedrag", "cost", "cost_eur"),
    "funder": ("financier", "bekostiging", "funder"),
    "programme": ("programma", "aanpak", "programme"),
}
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


@dataclass(frozen=True, slots=True)
class RowError:
    row: int
    column: str
    value: str
    reason: str


@dataclass
class ImportReport:
    kind: str
    path: Path
    municipality: str | None = None
    dry_run: bool = False
    rows: int = 0
    applied: int = 0
    unchanged: int = 0
    errors: list[RowError] = field(default_factory=list)
    import_id: int | None = None
    error_file: Path | None = None
    encoding: str | None = None
    delimiter: str | None = None
    more_errors: int = 0  # bad rows beyond MAX_REPORTED_ERRORS

    @property
    def ok(self) -> bool:
        return not self.errors

    def as_json(self) -> dict[str, int]:
        return {
            "rows": self.rows,
            "applied": self.applied,
            "unchanged": self.unchanged,
            "errors": len(self.errors) + self.more_errors,
        }

    def text(self, limit: int = 50) -> str:
        name = self.path.name
        if self.ok:
            verb = "would apply" if self.dry_run else "applied"
            return (
                f"{name}: {self.rows} rows, {verb} {self.applied}, unchanged {self.unchanged}"
                + (" (dry run: nothing written)" if self.dry_run else "")
            )
        n = len(self.errors) + self.more_errors
        bad_rows = len({e.row for e in self.errors})
        lines = [
            f"{name}: rejected, nothing written: {n} errors in {bad_rows} rows "
            f"(of {self.rows} rows read)"
        ]
        for e in self.errors[:limit]:
            where = f"row {e.row}" + (f", column {e.column}" if e.column else "")
            shown = f" [{e.value}]" if e.value else ""
            lines.append(f"  {where}:{shown} {e.reason}")
        if n > limit:
            lines.append(f"  ... and {n - limit} more")
        if self.error_file is not None:
            lines.append(f"every error is listed in {self.error_file}")
        return "\n".join(lines)


def error_file_for(path: Path) -> Path:
    return path.with_name(f"{path.stem}.errors.csv")


def write_error_report(report: ImportReport) -> Path:
    """The errors as a CSV a Dutch spreadsheet opens as it is (``;``, UTF-8 with BOM)."""
    target = error_file_for(report.path)
    with target.open("w", encoding="utf-8-sig", newline="") as fh:
        w = csv.writer(fh, delimiter=";", lineterminator="\r\n")
        w.writerow(["row", "column", "value", "reason"])
        for e in report.errors:
            w.writerow([e.row, e.column, e.value, e.reason])
    return target


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class _Collector:
    def __init__(self, report: ImportReport, sheet: Sheet | None) -> None:
        self.report = report
        self.sheet = sheet

    def add(self, row: int, column: str, value: Any, reason: str) -> None:
        if len(self.report.errors) >= MAX_REPORTED_ERRORS:
            self.report.more_errors += 1
            return
        name = self.sheet.name_of(column) if self.sheet is not None and column else column
        text = values.cell_text(value)
        if column == "bsn" and text:
            text = values.mask(text)
        if len(text) > 80:
            text = text[:77] + "..."
        self.report.errors.append(RowError(row, name, text, reason))


def _finish(report: ImportReport, *, write_report: bool) -> ImportReport:
    stale = error_file_for(report.path)
    if report.errors and write_report:
        report.error_file = write_error_report(report)
    elif not report.errors and not report.dry_run and stale.is_file():
        stale.unlink()  # an earlier attempt's report no longer applies
    return report


def _open(
    report: ImportReport, aliases: dict[str, tuple[str, ...]], required: tuple[str, ...]
) -> Sheet | None:
    try:
        sheet = open_sheet(report.path, aliases, required)
    except SheetError as e:
        report.errors.append(RowError(e.row, e.column, e.value, e.message))
        return None
    report.encoding, report.delimiter = sheet.encoding, sheet.delimiter
    return sheet


def _rows(sheet: Sheet, errors: _Collector) -> Generator[tuple[int, list[Any]], None, None]:
    """The sheet's rows; a damage found halfway (a bad byte) becomes an error of the file."""
    try:
        yield from sheet.rows
    except SheetError as e:
        errors.add(e.row, e.column, e.value, e.message)


def _start_import(
    conn: Connection, report: ImportReport, actor: str, sha: str, now: datetime
) -> int:
    new_id = conn.execute(
        reintegration_imports.insert().values(
            kind=report.kind,
            municipality=report.municipality,
            filename=report.path.name[:255],
            sha256=sha,
            imported_by=actor[:100],
            imported_at=now,
            rows=0,
            applied=0,
            unchanged=0,
        )
    ).inserted_primary_key
    assert new_id is not None  # noqa: S101
    return int(new_id[0])


def _end_import(conn: Connection, report: ImportReport) -> None:
    conn.execute(
        update(reintegration_imports)
        .where(reintegration_imports.c.id == report.import_id)
        .values(rows=report.rows, applied=report.applied, unchanged=report.unchanged)
    )


def _check_municipality(code: str) -> str:
    from terugkeer.domain.refdata import refdata

    resolved = refdata().resolve_municipality(code)
    if resolved is None:
        raise ReintegrationError(f"unknown municipality code [{code}]", field="municipality")
    return resolved


# --- cases ----------------------------------------------------------------------------------


@dataclass
class _CaseLine:
    row: int
    case_ref: str
    period_ref: str | None
    bsn: str | None
    consent: ConsentIn | None
    conditions: ConditionsIn | None
    recorded_by: str | None


def _cell(cells: list[Any], sheet: Sheet, name: str) -> Any:
    i = sheet.columns.get(name)
    return None if i is None else cells[i]


def _parse_case_line(n: int, cells: list[Any], sheet: Sheet, err: _Collector) -> _CaseLine | None:
    before = len(err.report.errors) + err.report.more_errors

    def text(name: str) -> str:
        return values.cell_text(_cell(cells, sheet, name))

    def parse(name: str, fn: Callable[[Any], Any]) -> Any:
        raw = _cell(cells, sheet, name)
        if values.cell_text(raw) == "":
            return None
        try:
            return fn(raw)
        except ValueError as e:
            err.add(n, name, raw, str(e))
            return None

    case_ref = text("case_ref")
    if not case_ref:
        err.add(n, "case_ref", "", "the municipality's case reference is required")
    elif len(case_ref) > 64:
        err.add(n, "case_ref", case_ref, "longer than 64 characters")
    period_ref = text("period_ref") or None
    bsn = parse("bsn", values.parse_bsn)
    if period_ref is None and bsn is None and not text("bsn"):
        err.add(n, "period_ref", "", "give the detention reference (detentiekenmerk) or the BSN")
    consent_status = parse("consent", lambda v: values.parse_code("consent", v))
    consent_date = parse("consent_date", values.parse_date)
    scope = parse("consent_scope", lambda v: values.parse_codes("scope", v))
    consent: ConsentIn | None = None
    if consent_status is not None and consent_status != ConsentStatus.NONE:
        if consent_date is None:
            if not text("consent_date"):
                err.add(n, "consent_date", "", "the date of the consent is required")
        else:
            consent = ConsentIn(
                consent_status,
                consent_date,
                tuple(scope) if scope else (ConsentScope.REGISTRATION.value,),
            )
            for column, reason in check_consent(consent):
                err.add(n, "consent_date" if column == "date" else "consent", consent_date, reason)
    statuses: dict[str, str] = {}
    for c in CONDITIONS:
        code = parse(c.value, functools.partial(values.parse_code, c.value))
        if code is not None:
            statuses[c.value] = code
    needs = parse("care_needs", functools.partial(values.parse_codes, "care_need")) or []
    moment = parse("moment", lambda v: values.parse_code("moment", v))
    as_of = parse("as_of", values.parse_date)
    conditions: ConditionsIn | None = None
    if statuses or needs:
        if moment is None:
            if not text("moment"):
                err.add(n, "moment", "", "a moment is required with condition statuses")
        else:
            conditions = ConditionsIn(moment, statuses, tuple(needs), as_of)
            for column, value, reason in check_conditions(conditions):
                err.add(n, column, value, reason)
    elif moment is not None:
        err.add(n, "moment", text("moment"), "a moment without any condition status")
    recorded_by = text("recorded_by")[:100] or None
    if len(err.report.errors) + err.report.more_errors > before:
        return None
    return _CaseLine(n, case_ref, period_ref, bsn, consent, conditions, recorded_by)


def import_cases(
    engine: Engine,
    path: Path,
    *,
    municipality: str,
    actor: str,
    dry_run: bool = False,
    write_report: bool = True,
    now: datetime | None = None,
) -> ImportReport:
    """Import a municipality's cases: their own case reference, consent, and condition statuses
    per moment (one row per case and moment)."""
    now = now or now_utc()
    municipality = _check_municipality(municipality)
    report = ImportReport("cases", path, municipality, dry_run)
    sheet = _open(report, CASE_ALIASES, ("case_ref",))
    if sheet is None:
        return _finish(report, write_report=write_report)
    err = _Collector(report, sheet)
    if "period_ref" not in sheet.columns and "bsn" not in sheet.columns:
        err.add(1, "", "", "the file needs a column detentiekenmerk or bsn")
        return _finish(report, write_report=write_report)
    lines: list[_CaseLine] = []
    for n, cells in _rows(sheet, err):
        report.rows += 1
        line = _parse_case_line(n, cells, sheet, err)
        if line is not None:
            lines.append(line)
    with engine.begin() as conn:
        plan = _plan_cases(conn, lines, municipality, err)
        if report.errors or report.more_errors:
            return _finish(report, write_report=write_report)
        report.applied = sum(1 for p in plan if p.changes)
        report.unchanged = len(plan) - report.applied
        if dry_run:
            return _finish(report, write_report=write_report)
        report.import_id = _start_import(conn, report, actor, _sha256(path), now)
        _apply_cases(conn, plan, report.import_id, actor, now)
        _end_import(conn, report)
    return _finish(report, write_report=write_report)


@dataclass
class _CasePlan:
    line: _CaseLine
    case: CaseRow
    set_ref: bool = False
    consent: ConsentIn | None = None
    as_of: date | None = None
    facts: list[tuple[str, str, str | None]] = field(default_factory=list)

    @property
    def changes(self) -> bool:
        return self.set_ref or self.consent is not None or bool(self.facts)


def _plan_cases(
    conn: Connection, lines: list[_CaseLine], municipality: str, err: _Collector
) -> list[_CasePlan]:
    cases = [
        case_from_row(r)
        for r in conn.execute(
            case_select().where(reintegration_cases.c.municipality == municipality)
        )
    ]
    by_period = {c.period_ref: c for c in cases}
    by_ref = {c.municipal_ref: c for c in cases if c.municipal_ref}
    by_bsn: dict[str, list[CaseRow]] = {}
    for c in cases:
        if c.bsn:
            by_bsn.setdefault(c.bsn, []).append(c)
    # the current consent (with its date) and facts of the cases the file names
    latest_consent: dict[int, tuple[str, date | None, str]] = {}
    for chunk in chunks([c.id for c in cases]):
        for rc in conn.execute(
            select(reintegration_consents)
            .where(among(conn, reintegration_consents.c.case_id, chunk))
            .order_by(reintegration_consents.c.id)
        ):
            latest_consent[rc.case_id] = (rc.status, read_date(rc.on_date), rc.scope)
    facts = current_facts(conn, [c.id for c in cases])
    ref_of: dict[int, str] = {}  # case id -> case reference given in this file
    ref_set: set[int] = set()  # cases that get their reference from this file
    seen_moment: dict[tuple[int, str], int] = {}
    state: dict[int, tuple[str, tuple[str, ...]]] = {
        c.id: (c.consent, c.consent_scope) for c in cases
    }
    plans: list[_CasePlan] = []
    for line in lines:
        n = line.row
        case = None
        if line.period_ref is not None:
            case = by_period.get(line.period_ref)
            if case is None:
                err.add(
                    n,
                    "period_ref",
                    line.period_ref,
                    f"no case for this detention period in {municipality}",
                )
                continue
            if line.bsn is not None and case.bsn != line.bsn:
                err.add(n, "bsn", line.bsn, "does not match the person of the detention period")
                continue
        elif line.bsn is not None:
            found = by_bsn.get(line.bsn, [])
            if len(found) != 1:
                reason = (
                    f"no case for this person in {municipality}"
                    if not found
                    else f"the person has {len(found)} cases in {municipality}: "
                    "give the detention reference (detentiekenmerk)"
                )
                err.add(n, "bsn", line.bsn, reason)
                continue
            case = found[0]
        if case is None:
            continue
        owner = by_ref.get(line.case_ref)
        if owner is not None and owner.id != case.id:
            err.add(
                n, "case_ref", line.case_ref, f"is already the reference of case {owner.period_ref}"
            )
            continue
        if case.municipal_ref and case.municipal_ref != line.case_ref:
            err.add(
                n,
                "case_ref",
                line.case_ref,
                f"this case already has the reference [{case.municipal_ref}]",
            )
            continue
        if ref_of.setdefault(case.id, line.case_ref) != line.case_ref:
            err.add(
                n,
                "case_ref",
                line.case_ref,
                f"the same case has reference [{ref_of[case.id]}] above",
            )
            continue
        plan = _CasePlan(line, case, set_ref=case.municipal_ref is None and case.id not in ref_set)
        if plan.set_ref:
            ref_set.add(case.id)
        if line.consent is not None:
            given = line.consent
            scope = ",".join(sorted(given.scope)) if given.status == ConsentStatus.GIVEN else ""
            if latest_consent.get(case.id) != (given.status, given.on_date, scope):
                if (
                    given.status == ConsentStatus.WITHDRAWN
                    and state[case.id][0] != ConsentStatus.GIVEN
                ):
                    err.add(n, "consent", "withdrawn", "no consent given to withdraw")
                    continue
                plan.consent = given
                latest_consent[case.id] = (given.status, given.on_date, scope)
                state[case.id] = (given.status, tuple(sorted(given.scope)) if scope else ())
        if line.conditions is not None:
            status, scope_now = state[case.id]
            if status != ConsentStatus.GIVEN or ConsentScope.REGISTRATION not in scope_now:
                err.add(
                    n,
                    "consent",
                    status,
                    "condition statuses need consent given for registration "
                    "(give it in this row or an earlier one)",
                )
                continue
            key = (case.id, line.conditions.moment)
            if key in seen_moment:
                err.add(
                    n,
                    "moment",
                    line.conditions.moment,
                    f"this case and moment are already on row {seen_moment[key]}",
                )
                continue
            seen_moment[key] = n
            try:
                as_of, new = plan_conditions(case, line.conditions, facts.get(case.id, {}))
            except ReintegrationError as e:
                err.add(n, e.field or "moment", line.conditions.moment, e.message)
                continue
            plan.as_of, plan.facts = as_of, new
        plans.append(plan)
    return plans


def _apply_cases(
    conn: Connection, plans: list[_CasePlan], import_id: int, actor: str, now: datetime
) -> None:
    """Write a checked plan with set-based statements (a municipality's file has thousands
    of rows): references, consent records and the cases' current consent, prefill from the
    screening, facts, audit."""
    source = f"import:{import_id}"
    touched: Counter[int] = Counter()
    refs = []
    consents = []
    current: dict[int, tuple[str, str | None]] = {}
    audits: dict[str, list[tuple[int | None, dict[str, Any]]]] = {}
    prefill: dict[int, int] = {}
    facts: list[dict[str, Any]] = []
    for p in plans:
        who = (p.line.recorded_by or actor)[:100]
        if p.set_ref:
            refs.append({"b_id": p.case.id, "b_ref": p.line.case_ref})
            touched[p.case.id] += 1
        if p.consent is not None:
            c = p.consent
            given = c.status == ConsentStatus.GIVEN
            scope = ",".join(sorted(c.scope)) if given else ""
            consents.append(
                {
                    "case_id": p.case.id,
                    "status": c.status,
                    "on_date": c.on_date,
                    "scope": scope,
                    "recorded_at": now,
                    "recorded_by": who,
                    "source": source,
                }
            )
            current[p.case.id] = (c.status, scope or None)
            audits.setdefault(f"consent_{c.status}", []).append(
                (p.case.id, {"on": c.on_date.isoformat(), "scope": scope, "source": source})
            )
            if given and ConsentScope.REGISTRATION in c.scope:
                prefill[p.case.id] = p.case.period_id
            touched[p.case.id] += 1
        if p.facts and p.line.conditions is not None:
            facts.extend(
                {
                    "case_id": p.case.id,
                    "condition": name,
                    "moment": p.line.conditions.moment,
                    "status": status,
                    "detail": detail,
                    "as_of": p.as_of,
                    "recorded_at": now,
                    "recorded_by": who,
                    "source": source,
                }
                for name, status, detail in p.facts
            )
            touched[p.case.id] += len(p.facts)
    t = reintegration_cases
    if refs:
        conn.execute(
            update(t)
            .where(t.c.id == bindparam("b_id"))
            .values(municipal_ref=bindparam("b_ref"), updated_at=now),
            refs,
        )
    if consents:
        conn.execute(reintegration_consents.insert(), consents)
        conn.execute(
            update(t)
            .where(t.c.id == bindparam("b_id"))
            .values(
                consent=bindparam("b_consent"), consent_scope=bindparam("b_scope"), updated_at=now
            ),
            [
                {"b_id": case_id, "b_consent": status, "b_scope": scope}
                for case_id, (status, scope) in current.items()
            ],
        )
        for action, entries in audits.items():
            audit_many(conn, actor, action, entries, at=now)
    if prefill:
        prefill_screenings(conn, list(prefill.items()), now=now)
    if facts:
        conn.execute(condition_facts.insert(), facts)
    audit_many(
        conn,
        actor,
        "case_imported",
        [
            (case_id, {"import_id": import_id, "changes": n})
            for case_id, n in sorted(touched.items())
        ],
        at=now,
    )


# --- activities: the fast path --------------------------------------------------------------

_ACTIVITY_COLUMNS = (
    "case_id",
    "key",
    "municipal_ref",
    "type",
    "condition",
    "provider",
    "start_date",
    "end_date",
    "hours_x100",
    "cost_cents",
    "funder",
    "programme",
    "recorded_at",
    "recorded_by",
    "source",
    "updated_at",
)
CHUNK_ROWS = 2_048  # rows checked together, column by column
IMPORT_CACHE_KIB = 131_072  # SQLite page cache while importing activities
FLUSH_ROWS = 20_000  # rows written together, in case order
_CACHE_LIMIT = 50_000  # distinct values a column's cache holds before it starts again
_CENTS_COLUMN = re.compile(r"(?:[0-9]+,[0-9][0-9]\n)*")
_CASE_ID = operator.itemgetter(0)


def import_activities(
    engine: Engine,
    path: Path,
    *,
    municipality: str,
    actor: str,
    dry_run: bool = False,
    write_report: bool = True,
    now: datetime | None = None,
) -> ImportReport:
    """Import a municipality's activities: one row per activity of a case (named by the
    municipality's case reference).

    Optimistic: the file is checked and written in one pass, in one transaction; a repeated
    activity is left to the table's unique index. At the first problem of any kind (a bad
    row, a repeat) that transaction is rolled back and the file is checked again without
    writing, with every row's own check and a record of every (case, key) seen, for the
    report of every error. ``--dry-run`` is that second pass only."""
    now = now or now_utc()
    municipality = _check_municipality(municipality)
    report = ImportReport("activities", path, municipality, dry_run)
    required = ("case_ref", "type", "provider", "start_date")
    sheet = _open(report, ACTIVITY_ALIASES, required)
    if sheet is None:
        return _finish(report, write_report=write_report)
    conn = engine.connect()
    cache_size = None
    if conn.dialect.name == "sqlite":
        # room for the unique index of a large import; the connection's own setting after
        cache_size = conn.exec_driver_sql("PRAGMA cache_size").scalar()
        conn.exec_driver_sql(f"PRAGMA cache_size={-IMPORT_CACHE_KIB}")
        conn.commit()  # end the autobegun transaction: the import begins its own
    try:
        cause: Exception | None = None
        if not dry_run:
            try:
                with conn.begin():
                    _activities(conn, sheet, report, municipality, actor, now, write=True)
                return _finish(report, write_report=write_report)
            except _Diagnose as e:  # rolled back: start again, to report every problem
                cause = e.cause
            report = ImportReport("activities", path, municipality, dry_run)
            sheet = _open(report, ACTIVITY_ALIASES, required)
            if sheet is None:  # the file changed under us
                return _finish(report, write_report=write_report)
        with conn.begin() as trans:
            _activities(conn, sheet, report, municipality, actor, now, write=False)
            trans.rollback()
        if cause is not None and report.ok:
            raise cause  # not a problem of the file (a concurrent import of the same rows?)
    finally:
        if cache_size is not None:
            with contextlib.suppress(SQLAlchemyError):  # never hide the error that got us here
                conn.exec_driver_sql(f"PRAGMA cache_size={int(cache_size)}")
        conn.close()
    return _finish(report, write_report=write_report)


class _Diagnose(Exception):  # a signal, not an error
    """The optimistic pass met a problem: check the whole file again, reporting every error.
    ``cause`` is the database's error when it was the unique index that found it."""

    def __init__(self, cause: Exception | None = None) -> None:
        super().__init__("check the file again")
        self.cause = cause


def _fast_cents(text: str) -> int | None:
    """``1234,56``, ``12,5`` or ``1234`` as cents, quickly; None: let the full parser decide."""
    head, sep, tail = text.partition(",")
    if not (head.isdigit() and head.isascii()):
        return None
    if not sep:
        return int(head) * 100
    if 0 < len(tail) <= 2 and tail.isdigit() and tail.isascii():
        return int(head) * 100 + int(tail) * (10 if len(tail) == 1 else 1)
    return None


_BLOCK_BYTES = 1 << 18  # the plain CSV reader decodes and splits this much at a time
_PLAIN_ENCODINGS = {"cp1252": "cp1252", "utf-8": "utf-8", "utf-8-sig": "utf-8"}

Chunk = tuple[Sequence[int], Sequence[Sequence[Any]] | None, list[Sequence[str]] | None]
Chunks = Generator[Chunk, None, None]


def _plain_start(path: Path, encoding: str | None) -> int | None:
    """Where the rows of a CSV file start (after its header line), when the header is plain
    text ending in LF or CR LF in an encoding whose line feeds are single bytes; else None."""
    if encoding not in _PLAIN_ENCODINGS:
        return None
    with path.open("rb") as fh:
        head = fh.readline()
    body = head.removesuffix(b"\n").removesuffix(b"\r")
    if b"\r" in body or b'"' in body or b"\x00" in body:
        return None
    return len(head)


def _padded(cells: list[str], width: int) -> list[str] | None:
    """A record as ``Sheet.rows`` gives it: None for an empty one (skipped, its number used),
    short ones padded, empty cells beyond the header dropped (others: ``_Diagnose``)."""
    if len(cells) < width:
        if not any(c.strip() for c in cells):
            return None
        return cells + [""] * (width - len(cells))
    if len(cells) > width:
        if any(c.strip() for c in cells[width:]):
            raise _Diagnose  # the row check reports it
        cells = cells[:width]
    return cells if any(cells) else None


def _plain_chunks(path: Path, start: int, encoding: str, delimiter: str, width: int) -> Chunks:
    """The rows of a CSV file after its header, for the writing pass, numbered and padded as
    ``Sheet.rows`` numbers and pads them but faster: a block of whole lines without a quote,
    a NUL or a lone carriage return is one record per line, split with ``str.split`` straight
    into columns. From the first block with one of those, ``csv.reader`` reads the rest. What
    ``Sheet.rows`` would refuse (a byte the encoding lacks, cells beyond the header, a broken
    CSV) raises ``_Diagnose``: the reporting pass reads the file with ``Sheet.rows``."""
    codec = _PLAIN_ENCODINGS[encoding]
    count = operator.methodcaller("count", delimiter)
    blank_line = delimiter * (width - 1)
    n = 2  # the header is row 1
    pos = start
    with path.open("rb") as fh:
        fh.seek(start)
        rest = b""
        while True:
            piece = fh.read(_BLOCK_BYTES)
            data = rest + piece
            if not data:
                return
            cut = data.rfind(b"\n") + 1 if piece else len(data)
            if cut == 0:  # a line longer than a block
                rest = data
                continue
            raw, rest = data[:cut], data[cut:]
            if b'"' in raw or b"\x00" in raw or raw.count(b"\r") != raw.count(b"\r\n"):
                fh.seek(pos)
                yield from _csv_chunks(fh, codec, delimiter, width, n)
                return
            try:
                text = raw.decode(codec)
            except UnicodeDecodeError:
                raise _Diagnose from None
            if "\r" in text:
                text = text.replace("\r\n", "\n")
            lines = text.split("\n")
            if lines[-1] == "":
                lines.pop()  # after the last line feed
            k = len(lines)
            if blank_line not in lines and set(map(count, lines)) == {width - 1}:
                flat = delimiter.join(lines).split(delimiter)
                yield range(n, n + k), None, [flat[i::width] for i in range(width)]
            else:
                ns, rows = [], []
                for j, line in enumerate(lines):
                    cells = _padded(line.split(delimiter), width)
                    if cells is not None:
                        ns.append(n + j)
                        rows.append(cells)
                if ns:
                    yield ns, rows, None
            n += k
            pos += len(raw)
            if not piece:
                return


def _csv_chunks(fh: Any, codec: str, delimiter: str, width: int, n: int) -> Chunks:
    """The rest of a CSV file from ``fh``'s position, read as ``Sheet.rows`` reads it."""
    text = io.TextIOWrapper(fh, encoding=codec, newline="")
    try:
        reader = csv.reader(text, delimiter=delimiter)
        ns: list[int] = []
        rows: list[list[str]] = []
        for n_row, record in enumerate(reader, start=n):
            cells = _padded(record, width)
            if cells is not None:
                ns.append(n_row)
                rows.append(cells)
                if len(ns) >= CHUNK_ROWS:
                    yield ns, rows, None
                    ns, rows = [], []
        if ns:
            yield ns, rows, None
    except (UnicodeDecodeError, csv.Error):
        raise _Diagnose from None
    finally:
        text.detach()  # the caller closes the file


def _sql_text(value: str) -> str | None:
    """``value`` as an SQLite string literal; None when it cannot be one (a NUL)."""
    if "\x00" in value:
        return None
    return "'" + value.replace("'", "''") + "'"


def _cents_column(cells: Sequence[str]) -> list[int] | None:
    """A column whose every cell is written ``1234,56`` (digits, a decimal comma, two
    decimals), as cents, at C speed; None when any cell is written otherwise."""
    text = "\n".join(cells) + "\n"
    if _CENTS_COLUMN.fullmatch(text) is None:
        return None
    parts = text.replace(",", "").split("\n")
    parts.pop()  # after the last newline
    if len(parts) != len(cells):  # a cell with a line break in it
        return None
    return list(map(int, parts))


def _activities(
    conn: Connection,
    sheet: Sheet,
    report: ImportReport,
    municipality: str,
    actor: str,
    now: datetime,
    *,
    write: bool,
) -> None:
    """Check an activity file inside the caller's transaction, and with ``write`` store it.

    Writing (``write``), the first problem raises :class:`_Diagnose`; repeated activities
    are found by the table's unique index (and, for rows that update a stored activity, here).
    Not writing, every problem is reported and every (case, key) is remembered to report a
    repeat with the row it repeats.

    Rows are read in chunks of ``CHUNK_ROWS`` and checked column by column: each distinct value
    of a column is parsed once (with the same parsers as the row check) and the column is then
    mapped through that cache, which runs in C. A chunk in which every row passes goes straight
    into the write buffer; a chunk with any doubt (a bad or unusual value, a repeated activity)
    is checked again row by row by ``check``, which reports every problem with its row, column,
    value and reason. Both paths accept exactly the same rows with the same values (a test
    compares them)."""
    from terugkeer.db.bulk import execute_many, placeholders, sqlite_datetime

    err = _Collector(report, sheet)
    sqlite = conn.dialect.name == "sqlite"
    integrity_error: type[Exception] = conn.dialect.dbapi.IntegrityError  # type: ignore[union-attr]
    cases: dict[str, tuple[int, bool]] = {}
    for r in conn.execute(
        select(
            reintegration_cases.c.id,
            reintegration_cases.c.municipal_ref,
            reintegration_cases.c.consent,
            reintegration_cases.c.consent_scope,
        ).where(
            reintegration_cases.c.municipality == municipality,
            reintegration_cases.c.municipal_ref.is_not(None),
        )
    ):
        ok = r.consent == ConsentStatus.GIVEN and ConsentScope.REGISTRATION in (
            r.consent_scope or ""
        ).split(",")
        cases[r.municipal_ref] = (r.id, ok)
    existing = _existing_activities(conn, municipality)
    if write:
        sha = sheet.sha256 or _sha256(sheet.path)
        report.import_id = _start_import(conn, report, actor, sha, now)
    source = f"import:{report.import_id}"
    stamp: Any = sqlite_datetime(now) if sqlite else now
    who = actor[:100]
    # recorded_at, recorded_by, source and updated_at are the same on every row: on SQLite they
    # go into the statement as literals instead of being bound a million times
    constants = (stamp, who, source, stamp)
    literals = [_sql_text(v) for v in constants] if sqlite else [None]
    tail: tuple[Any, ...] = ()
    if sqlite and None not in literals:
        insert_sql = (
            f"INSERT INTO activities ({', '.join(_ACTIVITY_COLUMNS)}) "  # noqa: S608  # nosec B608
            f"VALUES ({placeholders(conn, 12)}, {', '.join(map(str, literals))})"
        )
    else:
        tail = constants
        insert_sql = (
            f"INSERT INTO activities ({', '.join(_ACTIVITY_COLUMNS)}) "  # noqa: S608  # nosec B608
            f"VALUES ({placeholders(conn, len(_ACTIVITY_COLUMNS))})"
        )
    mark = "?" if sqlite else "%s"
    update_names = (*_ACTIVITY_COLUMNS[2:12], "updated_at", "source")
    update_sql = (
        f"UPDATE activities SET {', '.join(f'{c} = {mark}' for c in update_names)} "  # noqa: S608  # nosec B608
        f"WHERE id = {mark}"
    )
    col = sheet.columns
    i_case, i_type, i_prov, i_start = (
        col["case_ref"],
        col["type"],
        col["provider"],
        col["start_date"],
    )
    i_ref, i_end, i_hours = col.get("activity_ref"), col.get("end_date"), col.get("hours")
    i_cost, i_funder, i_prog = col.get("cost"), col.get("funder"), col.get("programme")
    dates: dict[Any, tuple[date, Any, bool]] = {}
    numbers: dict[Any, int] = {}
    types: dict[Any, tuple[str, str]] = {}
    funders: dict[Any, str] = {}
    seen: dict[tuple[int, str], int] = {}  # (case, key) -> the row it is on
    case_ids: set[int] = set()
    inserts: list[tuple[Any, ...]] = []
    updates: list[tuple[Any, ...]] = []
    last_day = today()
    add = err.add
    cell_text = values.cell_text
    errors = report.errors

    def get_date(raw: Any) -> tuple[date, Any, bool]:
        d = values.parse_date(raw)
        hit = (d, d.isoformat() if sqlite else d, d > last_day)
        if isinstance(raw, str):
            dates[raw] = hit
        return hit

    def get_number(raw: Any, maximum: int) -> int:
        hit = _fast_cents(raw) if isinstance(raw, str) else None
        if hit is None:
            hit = values.parse_scaled(raw, 2)
        if isinstance(raw, str) and len(numbers) < 10_000 and hit <= maximum:
            numbers[raw] = hit
        if hit > maximum:
            raise ValueError(f"more than the maximum of {maximum // 100:,}")
        return hit

    def check(n: int, cells: Sequence[Any]) -> tuple[Any, ...] | None:
        """Every check of one row, with an error for each problem; None when it is bad."""
        bad = False
        raw: Any = cells[i_case]
        case_ref = raw.strip() if isinstance(raw, str) else cell_text(raw)
        found = cases.get(case_ref)
        case_id = 0
        if found is None:
            reason = (
                f"no case with this reference in {municipality}"
                if case_ref
                else "the case reference is required"
            )
            add(n, "case_ref", case_ref, reason)
            bad = True
        elif not found[1]:
            add(n, "case_ref", case_ref, "the case has no consent for registration")
            bad = True
        else:
            case_id = found[0]
        raw = cells[i_type]
        t = types.get(raw)
        if t is None:
            code = codes.lookup("activity_type", cell_text(raw))
            if code is None:
                add(
                    n,
                    "type",
                    raw,
                    "unknown activity type; allowed: " + ", ".join(ACTIVITY_TYPE),
                )
                bad = True
                t = ("", "")
            else:
                t = (code, str(ACTIVITY_TYPE[code].condition))
                types[raw] = t
        raw = cells[i_prov]
        provider = raw.strip() if isinstance(raw, str) else cell_text(raw)
        if not provider:
            add(n, "provider", "", "a provider is required")
            bad = True
        elif len(provider) > 120:
            add(n, "provider", provider, "longer than 120 characters")
            bad = True
        raw = cells[i_start]
        start = dates.get(raw)
        if start is None:
            try:
                start = get_date(raw)
            except ValueError as e:
                add(
                    n,
                    "start_date",
                    raw,
                    str(e) if cell_text(raw) else "a start date is required",
                )
                bad = True
        if start is not None and start[0] > last_day:
            add(n, "start_date", raw, "lies in the future")
            bad = True
        end = None
        if i_end is not None and (raw := cells[i_end]) not in ("", None):
            end = dates.get(raw)
            try:
                if end is None:
                    end = get_date(raw)
                if start is not None and end[0] < start[0]:
                    add(n, "end_date", raw, "before the start date")
                    bad = True
            except ValueError as e:
                add(n, "end_date", raw, str(e))
                bad = True
        hours = None
        if i_hours is not None and (raw := cells[i_hours]) not in ("", None):
            hours = numbers.get(raw)
            if hours is None or hours > MAX_HOURS_X100:
                try:
                    hours = get_number(raw, MAX_HOURS_X100)
                except ValueError as e:
                    add(n, "hours", raw, str(e))
                    bad = True
        cost = 0
        if i_cost is not None and (raw := cells[i_cost]) not in ("", None):
            hit = numbers.get(raw)
            if hit is None:
                try:
                    hit = get_number(raw, MAX_COST_CENTS)
                except ValueError as e:
                    add(n, "cost", raw, str(e))
                    bad = True
            cost = hit or 0
            if cost > MAX_COST_CENTS:
                add(n, "cost", raw, "more than the maximum of 10,000,000")
                bad = True
        funder = None
        if i_funder is not None and (raw := cells[i_funder]) not in ("", None):
            funder = funders.get(raw)
            if funder is None:
                funder = codes.lookup("funder", cell_text(raw))
                if funder is None:
                    add(n, "funder", raw, "unknown funder; allowed: gemeente, rijk, overig")
                    bad = True
                else:
                    funders[raw] = funder
        if cost and funder is None and not bad:
            add(n, "funder", "", "a cost needs its funder (gemeente, rijk, overig)")
            bad = True
        programme = None
        if i_prog is not None and (raw := cells[i_prog]) not in ("", None):
            programme = raw.strip() if isinstance(raw, str) else cell_text(raw)
            if len(programme) > 100:
                add(n, "programme", programme, "longer than 100 characters")
                bad = True
            programme = programme or None
        ref = None
        if i_ref is not None and (raw := cells[i_ref]) not in ("", None):
            ref = raw.strip() if isinstance(raw, str) else cell_text(raw)
            if len(ref) > 64:
                add(n, "activity_ref", ref, "longer than 64 characters")
                bad = True
            ref = ref or None
        if bad or start is None:
            return None
        return (case_id, t[0], t[1], provider, start[0], start[1], end and end[0],
                end and end[1], hours, cost, funder, programme, ref)  # fmt: skip

    def take(n: int, row: tuple[Any, ...]) -> None:
        """A checked row (as ``check`` returns it): a repeat of an earlier row is an error."""
        case_id, type_, provider, start, ref = row[0], row[1], row[3], row[4], row[12]
        key = f"ref:{ref}" if ref else f"{type_}|{start.isoformat()}|{provider}"[:200]
        k = (case_id, key)
        case_ids.add(case_id)
        if write and k not in existing:
            settle(k, row)  # a repeat of an earlier row: the unique index will say so
            return
        first = seen.get(k)
        if first is not None:
            if write:
                raise _Diagnose
            where = "activity_ref" if ref else "type"
            add(n, where, ref or type_, f"the same activity is on row {first}")
            return
        seen[k] = n
        if not errors:  # else nothing will be written: only look for more errors
            settle(k, row)

    def settle(k: tuple[int, str], row: tuple[Any, ...]) -> None:
        """Insert, update or unchanged, against what is stored (dates compared in the form
        they are bound and read back in: ISO text on SQLite, dates elsewhere)."""
        (case_id, type_, condition, provider, _, start_bind, _, end_bind, hours, cost, funder,
         programme, ref) = row  # fmt: skip
        key = k[1]
        old = existing.get(k)
        if old is not None:
            if old[1] == (type_, provider, start_bind, end_bind, hours, cost, funder, programme):
                report.unchanged += 1
                return
            if write:
                updates.append(
                    (ref, type_, condition, provider, start_bind, end_bind, hours, cost, funder,
                     programme, stamp, source, old[0])
                )  # fmt: skip
        elif write:
            inserts.append(
                (case_id, key, ref, type_, condition, provider, start_bind, end_bind, hours,
                 cost, funder, programme, *tail)
            )  # fmt: skip
        report.applied += 1

    # --- the column-wise check of a whole chunk ---
    consenting = {ref: v[0] for ref, v in cases.items() if v[1] and ref == ref.strip()}
    type_code: dict[str, str] = {}
    type_condition: dict[str, str] = {}
    provider_of: dict[str, str] = {}
    start_of: dict[str, Any] = {}  # the value to bind: ISO text on SQLite, a date elsewhere
    end_of: dict[str, Any] = {"": None}
    hours_of: dict[str, int | None] = {"": None}
    cents_of: dict[str, int] = {"": 0}
    funder_of: dict[str, str | None] = {"": None}
    programme_of: dict[str, str | None] = {"": None}
    blank: tuple[str, ...] = ()

    def through(
        cache: dict[str, Any],
        column: Sequence[str],
        fill: Callable[[str], bool],
        *also: dict[str, Any],
    ) -> list[Any] | None:
        """``column`` mapped through ``cache``; values not yet in it are first added by
        ``fill`` (False: the value needs the row check, and so does the chunk: None). A cache
        grown too large (with the caches ``fill`` fills beside it, ``also``) starts again."""
        try:
            return list(map(cache.__getitem__, column))
        except KeyError:
            pass
        fresh = set(column).difference(cache)
        if len(cache) > _CACHE_LIMIT:
            for d in (cache, *also):
                keep = {"": d[""]} if "" in d else {}
                d.clear()
                d.update(keep)
            fresh = set(column).difference(cache)
        for raw in fresh:
            if not fill(raw):
                return None
        return list(map(cache.__getitem__, column))

    def fill_type(raw: str) -> bool:
        code = codes.lookup("activity_type", cell_text(raw))
        if code is None:
            return False
        type_code[raw], type_condition[raw] = code, str(ACTIVITY_TYPE[code].condition)
        return True

    def fill_provider(raw: str) -> bool:
        provider = raw.strip()
        if not provider or len(provider) > 120:
            return False
        provider_of[raw] = provider
        return True

    def fill_start(raw: str) -> bool:
        try:
            d = values.parse_date(raw)
        except ValueError:
            return False
        if d > last_day:
            return False
        start_of[raw] = d.isoformat() if sqlite else d
        return True

    def fill_end(raw: str) -> bool:
        try:
            d = values.parse_date(raw)
        except ValueError:
            return False
        end_of[raw] = d.isoformat() if sqlite else d
        return True

    def scaled(raw: str, maximum: int) -> int | None:
        hit = _fast_cents(raw)
        if hit is None:
            try:
                hit = values.parse_scaled(raw, 2)
            except ValueError:
                return None
        return hit if hit <= maximum else None

    def fill_hours(raw: str) -> bool:
        h = scaled(raw, MAX_HOURS_X100)
        if h is None:
            return False
        hours_of[raw] = h
        return True

    def fill_cents(raw: str) -> bool:
        k = scaled(raw, MAX_COST_CENTS)
        if k is None:
            return False
        cents_of[raw] = k
        return True

    def fill_funder(raw: str) -> bool:
        f = codes.lookup("funder", cell_text(raw))
        if f is None:
            return False
        funder_of[raw] = f
        return True

    def fill_programme(raw: str) -> bool:
        programme = raw.strip()
        if len(programme) > 100:
            return False
        programme_of[raw] = programme or None
        return True

    def fast(ns: Sequence[int], columns: list[Sequence[str]]) -> bool:
        """Check and take a chunk of CSV rows column by column; False (having changed nothing
        but caches) when any row needs the row-by-row check."""
        nonlocal blank
        m = len(ns)
        if len(blank) != m:
            blank = ("",) * m

        def column(i: int | None) -> Sequence[str]:
            return blank if i is None else columns[i]

        try:
            ids = list(map(consenting.__getitem__, columns[i_case]))
        except KeyError:
            found = list(map(consenting.get, map(str.strip, columns[i_case])))
            if None in found:
                return False
            ids = found  # type: ignore[assignment]  # no None left
        c_type = columns[i_type]
        if (type_codes := through(type_code, c_type, fill_type, type_condition)) is None:
            return False
        c_prov = columns[i_prov]
        if (providers := through(provider_of, c_prov, fill_provider)) is None:
            return False
        if (starts := through(start_of, columns[i_start], fill_start)) is None:
            return False
        if (ends := through(end_of, column(i_end), fill_end)) is None:
            return False
        if any(map(operator.lt, filter(None, ends), itertools.compress(starts, ends))):
            return False  # an end before its start
        if (hours := through(hours_of, column(i_hours), fill_hours)) is None:
            return False
        costs = _cents_column(columns[i_cost]) if i_cost is not None else None
        if costs is None:
            if (costs := through(cents_of, column(i_cost), fill_cents)) is None:
                return False
        elif max(costs) > MAX_COST_CENTS:
            return False
        if (funds := through(funder_of, column(i_funder), fill_funder)) is None:
            return False
        if None in funds and any(k for k, f in zip(costs, funds, strict=True) if f is None):
            return False  # a cost without its funder
        programmes = through(programme_of, column(i_prog), fill_programme)
        if programmes is None:
            return False
        refs = list(map(str.strip, column(i_ref)))
        if max(map(len, refs)) > 64:
            return False
        if "" in refs:
            iso = starts if sqlite else [s.isoformat() for s in starts]
            keys = [
                f"ref:{r}" if r else f"{t}|{s}|{p}"[:200]
                for r, t, s, p in zip(refs, type_codes, iso, providers, strict=True)
            ]
            refs_or_none: list[str | None] = [r or None for r in refs]
        else:
            keys = list(map("ref:".__add__, refs))
            refs_or_none = list(refs)
        case_ids.update(ids)
        if write:
            if not existing or existing.keys().isdisjoint(zip(ids, keys, strict=True)):
                # all new: a repeated activity is refused by the unique index on (case, key)
                inserts.extend(
                    zip(ids, keys, refs_or_none, type_codes,
                        list(map(type_condition.__getitem__, c_type)), providers, starts, ends,
                        hours, costs, funds, programmes, *map(itertools.repeat, tail),
                        strict=False)
                )  # fmt: skip
                report.applied += m
                return True
        else:
            # a repeated activity, in the chunk or with a row before: row by row, for the report
            fresh = dict(zip(zip(ids, keys, strict=True), ns, strict=True))
            if len(fresh) < m or not seen.keys().isdisjoint(fresh):
                return False
            seen.update(fresh)
            if errors:
                return True  # nothing will be written: only look for more errors
            if not existing or existing.keys().isdisjoint(fresh):
                report.applied += m
                return True
        # some rows are stored already: insert, update or unchanged, row by row
        conditions = list(map(type_condition.__getitem__, c_type))
        for j in range(m):
            k = (ids[j], keys[j])
            if write and k in existing:
                if k in seen:
                    raise _Diagnose
                seen[k] = ns[j]
            settle(
                k,
                (ids[j], type_codes[j], conditions[j], providers[j], None, starts[j], None,
                 ends[j], hours[j], costs[j], funds[j], programmes[j], refs_or_none[j]),
            )  # fmt: skip
        return True

    def flush() -> None:
        nonlocal inserts, updates
        try:
            if inserts:
                # in case order (stable: a case keeps the file's order): the unique index on
                # (case, key) is then filled page after page instead of all over
                inserts.sort(key=_CASE_ID)
                execute_many(conn, insert_sql, inserts)
            if updates:
                execute_many(conn, update_sql, updates)
        except integrity_error as e:  # a repeated activity (or a concurrent import)
            raise _Diagnose(e) from e
        inserts, updates = [], []

    # CSV cells are text; XLSX cells may be numbers and dates: those take the row check
    columnwise = sheet.delimiter is not None

    def sheet_chunks() -> Chunks:
        rows = _rows(sheet, err)
        try:
            while chunk := list(itertools.islice(rows, CHUNK_ROWS)):
                ns, cells = zip(*chunk, strict=True)
                yield ns, cells, None
        finally:
            rows.close()  # the file, when a problem ends the pass early

    # writing, a plain CSV file is read faster than Sheet.rows reads it (the same rows)
    start = _plain_start(sheet.path, sheet.encoding) if write and columnwise else None
    feed = sheet_chunks()
    if start is not None:
        next(feed, None)  # started, so that closing it closes its file (a problem: an error)
        feed.close()
        assert sheet.encoding is not None  # noqa: S101
        assert sheet.delimiter is not None  # noqa: S101
        feed = _plain_chunks(sheet.path, start, sheet.encoding, sheet.delimiter, len(sheet.header))
    collecting = gc.isenabled()
    gc.disable()  # hundreds of thousands of new tuples: the collector would rescan them all
    try:
        n_rows = 0
        for ns, cells, columns in feed:
            n_rows += len(ns)
            if columnwise and columns is None:
                columns = list(zip(*cells or (), strict=True))  # rows are padded to the header
            if not (columnwise and columns and fast(ns, columns)):
                if cells is None:
                    cells = list(zip(*columns or (), strict=True))
                for n, row_cells in zip(ns, cells, strict=True):
                    row = check(n, row_cells)
                    if row is not None:
                        take(n, row)
            if write:
                if errors or report.more_errors:  # (a damaged file, too)
                    raise _Diagnose
                if len(inserts) + len(updates) >= FLUSH_ROWS:
                    flush()
        report.rows = n_rows
        if write:
            if errors or report.more_errors:
                raise _Diagnose
            flush()
    finally:
        feed.close()  # the file, when a problem ends the pass early
        # a million keys: freed here, before the collector would walk them once more
        seen.clear()
        inserts.clear()
        if collecting:
            gc.enable()
    if not write or report.errors or report.more_errors:
        return
    _end_import(conn, report)
    audit(
        conn,
        actor,
        "activities_imported",
        None,
        {
            "import_id": report.import_id,
            "municipality": municipality,
            "applied": report.applied,
            "unchanged": report.unchanged,
            "cases": len(case_ids),
        },
        at=now,
    )


def _existing_activities(
    conn: Connection, municipality: str
) -> dict[tuple[int, str], tuple[int, tuple[Any, ...]]]:
    """The municipality's stored activities, in one read through the driver: (case, key) ->
    (id, the values an import compares, as the driver gives them: dates as ISO text on
    SQLite, as dates elsewhere, which is also how the import binds them)."""
    sql = (
        "SELECT a.id, a.case_id, a.key, a.type, a.provider, a.start_date, a.end_date,"
        " a.hours_x100, a.cost_cents, a.funder, a.programme"
        " FROM activities a JOIN reintegration_cases c ON c.id = a.case_id"
        " WHERE c.municipality = ?"
    )
    if conn.dialect.name != "sqlite":
        sql = sql.replace("?", "%s")
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql, (municipality,))
        return {(r[1], r[2]): (r[0], tuple(r[3:])) for r in cursor.fetchall()}
    finally:
        cursor.close()


# --- intake screenings (the prison administration) ------------------------------------------


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
    sheet = _open(report, SCREENING_ALIASES, ("period_ref", "screened_on"))
    if sheet is None:
        return _finish(report, write_report=write_report)
    err = _Collector(report, sheet)
    parsed: list[tuple[int, str, date, dict[str, str | None]]] = []
    for n, cells in _rows(sheet, err):
        report.rows += 1
        before = len(report.errors)
        ref = values.cell_text(_cell(cells, sheet, "period_ref"))
        if not ref:
            err.add(n, "period_ref", "", "the detention reference is required")
        raw_day = _cell(cells, sheet, "screened_on")
        day = None
        try:
            day = values.parse_date(raw_day)
            if day > today():
                err.add(n, "screened_on", raw_day, "lies in the future")
        except ValueError as e:
            err.add(n, "screened_on", raw_day, str(e))
        found: dict[str, str | None] = {}
        for c in CONDITIONS:
            raw = _cell(cells, sheet, c.value)
            if values.cell_text(raw) == "":
                found[c.value] = None
                continue
            try:
                found[c.value] = values.parse_code(c.value, raw)
            except ValueError as e:
                err.add(n, c.value, raw, str(e))
        raw_needs = _cell(cells, sheet, "care_needs")
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
    with engine.begin() as conn:
        periods: dict[str, int] = {}
        for chunk in chunks(sorted({p[1] for p in parsed})):
            for r in conn.execute(
                select(detention_periods.c.id, detention_periods.c.period_ref).where(
                    among(conn, detention_periods.c.period_ref, chunk)
                )
            ):
                periods[r.period_ref] = r.id
        stored: dict[int, Any] = {}
        for chunk in chunks(list(periods.values())):
            for r in conn.execute(
                select(intake_screenings).where(among(conn, intake_screenings.c.period_id, chunk))
            ):
                stored[r.period_id] = r
        seen: dict[str, int] = {}
        writes: list[tuple[int, date, dict[str, str | None], Any]] = []
        for n, ref, day, found in parsed:
            period_id = periods.get(ref)
            if period_id is None:
                err.add(n, "period_ref", ref, "no detention period with this reference")
                continue
            if ref in seen:
                err.add(n, "period_ref", ref, f"this period is already on row {seen[ref]}")
                continue
            seen[ref] = n
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
        if report.errors or report.more_errors:
            return _finish(report, write_report=write_report)
        report.applied = len(writes)
        if dry_run:
            return _finish(report, write_report=write_report)
        report.import_id = _start_import(conn, report, actor, _sha256(path), now)
        new_rows, changed = [], []
        for period_id, day, found, old in writes:
            row = {
                "screened_on": day,
                **{f"{c.value}_status": found[c.value] for c in CONDITIONS},
                "care_needs": found["care_needs"],
                "imported_at": now,
                "import_id": report.import_id,
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
        _end_import(conn, report)
    return _finish(report, write_report=write_report)
