"""Importing a municipality's activities: one row per activity of a case (named by the
municipality's case reference).

Optimistic: the file is checked and written in one pass, in one transaction, read by the fast
CSV reader where the file allows it (:mod:`.readers`); a repeated activity is left to the
table's unique index. At the first problem of any kind (a bad row, a repeat, a damaged file)
that transaction is rolled back and the file is checked again without writing, read by the
reference reader, with every row's own check and a record of every (case, key) seen, for the
report of every error. ``--dry-run`` is that second pass only.

Rows are read in blocks of ``CHUNK_ROWS`` and checked column by column
(:class:`~.activity_checks.ColumnCheck`); a block with any doubt (a bad or unusual value, a
repeated activity) is checked again row by row (:class:`~.activity_checks.RowCheck`), which
reports every problem with its row, column, value and reason.
"""

from __future__ import annotations

import contextlib
import itertools
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, select
from sqlalchemy.exc import SQLAlchemyError

from terugkeer.db.bulk import execute_many, placeholders, read_datetime, sqlite_datetime
from terugkeer.detention.tables import detention_periods
from terugkeer.reintegration.audit import audit, audit_many, now_utc
from terugkeer.reintegration.codes import ConsentScope, ConsentStatus
from terugkeer.reintegration.importing.activity_checks import (
    Checked,
    ColumnCheck,
    Columns,
    Row,
    RowCheck,
)
from terugkeer.reintegration.importing.readers import Blocks, Reader, reader_for
from terugkeer.reintegration.importing.report import Collector, ImportReport, finish
from terugkeer.reintegration.importing.shared import (
    check_municipality,
    end_import,
    open_for,
    sha256_of,
    start_import,
)
from terugkeer.reintegration.scope import local_date, today
from terugkeer.reintegration.service import ACTIVITY_BEFORE_INTAKE
from terugkeer.reintegration.sheets import Sheet, SheetError
from terugkeer.reintegration.tables import reintegration_cases

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
_REQUIRED = ("case_ref", "type", "provider", "start_date")
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

Existing = dict[tuple[int, str], tuple[int, tuple[Any, ...]]]


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
    municipality = check_municipality(municipality)
    report = ImportReport("activities", path, municipality, dry_run)
    sheet = open_for(report, ACTIVITY_ALIASES, _REQUIRED)
    if sheet is None:
        return finish(report, write_report=write_report)
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
                    _Pass(conn, sheet, report, municipality, actor, now, write=True).run()
                return finish(report, write_report=write_report)
            except Diagnose as e:  # rolled back: start again, to report every problem
                cause = e.cause
            report = ImportReport("activities", path, municipality, dry_run)
            sheet = open_for(report, ACTIVITY_ALIASES, _REQUIRED)
            if sheet is None:  # the file changed under us
                return finish(report, write_report=write_report)
        with conn.begin() as trans:
            _Pass(conn, sheet, report, municipality, actor, now, write=False).run()
            trans.rollback()
        if cause is not None and report.ok:
            raise cause  # not a problem of the file (a concurrent import of the same rows?)
    finally:
        if cache_size is not None:
            with contextlib.suppress(SQLAlchemyError):  # never hide the error that got us here
                conn.exec_driver_sql(f"PRAGMA cache_size={int(cache_size)}")
        conn.close()
    return finish(report, write_report=write_report)


class Diagnose(Exception):  # a signal, not an error
    """The optimistic pass met a problem: check the whole file again, reporting every error.
    ``cause`` is the database's error when it was the unique index that found it."""

    def __init__(self, cause: Exception | None = None) -> None:
        super().__init__("check the file again")
        self.cause = cause


class _Pass:
    """One pass over an activity file inside the caller's transaction; with ``write`` it
    stores the file.

    Writing, the first problem raises :class:`Diagnose`; repeated activities are found by the
    table's unique index (and, for rows that update a stored activity, here). Not writing,
    every problem is reported and every (case, key) is remembered to report a repeat with the
    row it repeats."""

    def __init__(
        self,
        conn: Connection,
        sheet: Sheet,
        report: ImportReport,
        municipality: str,
        actor: str,
        now: datetime,
        *,
        write: bool,
    ) -> None:
        self.conn, self.sheet, self.report, self.write = conn, sheet, report, write
        self.municipality, self.actor, self.now = municipality, actor, now
        self.err = Collector(report, sheet)
        self.sqlite = sqlite = conn.dialect.name == "sqlite"
        self.integrity_error: type[Exception] = conn.dialect.dbapi.IntegrityError  # type: ignore[union-attr]
        cases = _cases(conn, municipality)
        self.existing = _existing_activities(conn, municipality)
        if write:
            sha = sheet.sha256 or sha256_of(sheet.path)
            report.import_id = start_import(conn, report, actor, sha, now)
        self.source = f"import:{report.import_id}"
        self.stamp: Any = sqlite_datetime(now) if sqlite else now
        self.insert_sql, self.update_sql, self.tail = self._statements()
        last_day = today()
        columns = Columns(sheet.columns)
        self.row_check = RowCheck(columns, cases, municipality, last_day, self.err, sqlite=sqlite)
        self.column_check = ColumnCheck(columns, cases, last_day, sqlite=sqlite)
        self.seen: dict[tuple[int, str], int] = {}  # (case, key) -> the row it is on
        self.case_ids: set[int] = set()
        # what the import does to each case, for its audit row: activities added, and the
        # activities changed with their old values
        self.added: Counter[int] = Counter()
        self.changed: dict[int, list[dict[str, Any]]] = {}
        # the rows to insert, column by column (a row's own 12 values): no object per row
        # lives until the flush, so the garbage collector has nothing to walk
        self.inserts: list[list[Any]] = [[] for _ in range(12)]
        self.updates: list[tuple[Any, ...]] = []

    def _statements(self) -> tuple[str, str, tuple[Any, ...]]:
        """The insert and the update, and the values an insert binds after a row's own.

        recorded_at, recorded_by, source and updated_at are the same on every row: on SQLite
        they go into the statement as literals instead of being bound a million times."""
        conn = self.conn
        constants = (self.stamp, self.actor[:100], self.source, self.stamp)
        literals = [_sql_text(v) for v in constants] if self.sqlite else [None]
        tail: tuple[Any, ...] = ()
        names = ", ".join(_ACTIVITY_COLUMNS)
        if self.sqlite and None not in literals:
            insert_sql = (
                f"INSERT INTO activities ({names}) "  # noqa: S608  # nosec B608
                f"VALUES ({placeholders(conn, 12)}, {', '.join(map(str, literals))})"
            )
        else:
            tail = constants
            insert_sql = (
                f"INSERT INTO activities ({names}) "  # noqa: S608  # nosec B608
                f"VALUES ({placeholders(conn, len(_ACTIVITY_COLUMNS))})"
            )
        mark = "?" if self.sqlite else "%s"
        update_names = (*_ACTIVITY_COLUMNS[2:12], "updated_at", "source")
        update_sql = (
            f"UPDATE activities SET {', '.join(f'{c} = {mark}' for c in update_names)} "  # noqa: S608  # nosec B608
            f"WHERE id = {mark}"
        )
        return insert_sql, update_sql, tail

    def run(self) -> None:
        """Read, check, take every row; writing, flush and record the import."""
        report = self.report
        # CSV cells are text; XLSX cells may be numbers and dates: those take the row check
        columnwise = self.sheet.delimiter is not None
        # writing, a plain CSV file is read faster than Sheet.rows reads it (the same rows)
        reader = reader_for(self.sheet, fast=self.write and columnwise)
        feed = _recorded(reader, self.err)
        try:
            n_rows = 0
            for block in feed:
                n_rows += len(block.numbers)
                columns = block.columns() if columnwise else None
                if not (columns and self._take_block(block.numbers, columns)):
                    for n, cells in block:
                        row = self.row_check.check(n, cells)
                        if row is not None:
                            self._take(n, row)
                if self.write:
                    if report.bad:  # (a damaged file, too)
                        raise Diagnose
                    if len(self.inserts[0]) + len(self.updates) >= FLUSH_ROWS:
                        self._flush()
            report.rows = n_rows
            if self.write:
                if report.bad:
                    raise Diagnose
                self._flush()
        finally:
            feed.close()  # the file, when a problem ends the pass early
            self.seen.clear()
            for column in self.inserts:
                column.clear()
        if self.write and not report.bad:
            self._record()

    def _take_block(self, ns: Sequence[int], columns: list[Sequence[str]]) -> bool:
        """Check and take a block of CSV rows column by column; False (having changed nothing
        but caches) when any row needs the row-by-row check."""
        c = self.column_check.check(columns)
        if c is None:
            return False
        m = len(ns)
        self.case_ids.update(c.ids)
        existing, report = self.existing, self.report
        if self.write:
            if not existing or existing.keys().isdisjoint(zip(c.ids, c.keys, strict=True)):
                # all new: a repeated activity is refused by the unique index on (case, key)
                for buffer, column in zip(self.inserts, c.insert_columns(), strict=True):
                    buffer.extend(column)
                self.added.update(c.ids)
                report.applied += m
                return True
        else:
            # a repeated activity, in the block or with a row before: row by row, for the report
            fresh = dict(zip(zip(c.ids, c.keys, strict=True), ns, strict=True))
            if len(fresh) < m or not self.seen.keys().isdisjoint(fresh):
                return False
            self.seen.update(fresh)
            if report.errors:
                return True  # nothing will be written: only look for more errors
            if not existing or existing.keys().isdisjoint(fresh):
                report.applied += m
                return True
        self._settle_block(ns, c)
        return True

    def _settle_block(self, ns: Sequence[int], c: Checked) -> None:
        """Some rows of the block are stored already: insert, update or unchanged, row by
        row."""
        for j in range(len(ns)):
            k = (c.ids[j], c.keys[j])
            if self.write and k in self.existing:
                if k in self.seen:
                    raise Diagnose
                self.seen[k] = ns[j]
            self._settle(
                k,
                (c.ids[j], c.types[j], c.conditions[j], c.providers[j], None, c.starts[j], None,
                 c.ends[j], c.hours[j], c.costs[j], c.funders[j], c.programmes[j], c.refs[j]),
            )  # fmt: skip

    def _take(self, n: int, row: Row) -> None:
        """A checked row (as ``RowCheck.check`` returns it): a repeat of an earlier row is an
        error."""
        case_id, type_, provider, start, ref = row[0], row[1], row[3], row[4], row[12]
        key = f"ref:{ref}" if ref else f"{type_}|{start.isoformat()}|{provider}"[:200]
        k = (case_id, key)
        self.case_ids.add(case_id)
        if self.write and k not in self.existing:
            self._settle(k, row)  # a repeat of an earlier row: the unique index will say so
            return
        first = self.seen.get(k)
        if first is not None:
            if self.write:
                raise Diagnose
            where = "activity_ref" if ref else "type"
            self.err.add(n, where, ref or type_, f"the same activity is on row {first}")
            return
        self.seen[k] = n
        if not self.report.errors:  # else nothing will be written: only look for more errors
            self._settle(k, row)

    def _settle(self, k: tuple[int, str], row: Row) -> None:
        """Insert, update or unchanged, against what is stored (dates compared in the form
        they are bound and read back in: ISO text on SQLite, dates elsewhere)."""
        (case_id, type_, condition, provider, _, start_bind, _, end_bind, hours, cost, funder,
         programme, ref) = row  # fmt: skip
        old = self.existing.get(k)
        if old is not None:
            if old[1] == (type_, provider, start_bind, end_bind, hours, cost, funder, programme):
                self.report.unchanged += 1
                return
            if self.write:
                self.updates.append(
                    (ref, type_, condition, provider, start_bind, end_bind, hours, cost, funder,
                     programme, self.stamp, self.source, old[0])
                )  # fmt: skip
                new = (type_, provider, start_bind, end_bind, hours, cost, funder, programme)
                self.changed.setdefault(case_id, []).append(
                    {
                        "activity_id": old[0],
                        "old": {
                            name: _audit_value(was)
                            for name, was, now in zip(_COMPARED, old[1], new, strict=True)
                            if was != now
                        },
                    }
                )
        elif self.write:
            self.added[case_id] += 1
            row_values = (case_id, k[1], ref, type_, condition, provider, start_bind, end_bind,
                          hours, cost, funder, programme)  # fmt: skip
            for buffer, value in zip(self.inserts, row_values, strict=True):
                buffer.append(value)
        self.report.applied += 1

    def _flush(self) -> None:
        try:
            if self.inserts[0]:
                cursor = self.conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
                try:  # the driver takes the rows one at a time
                    # sqlite3 and psycopg take any iterable of rows
                    cursor.executemany(self.insert_sql, self._insert_rows())  # type: ignore[arg-type]
                finally:
                    cursor.close()
            if self.updates:
                execute_many(self.conn, self.update_sql, self.updates)
        except self.integrity_error as e:  # a repeated activity (or a concurrent import)
            raise Diagnose(e) from e
        self.inserts, self.updates = [[] for _ in range(12)], []

    def _insert_rows(self) -> Iterator[tuple[Any, ...]]:
        """The rows to insert, in case order (stable: a case keeps the file's order): the
        unique index on (case, key) is then filled page after page instead of all over. Made
        one at a time as the driver binds them."""
        case_ids = self.inserts[0]
        order = sorted(range(len(case_ids)), key=case_ids.__getitem__)
        columns = [list(map(column.__getitem__, order)) for column in self.inserts]
        return zip(*columns, *map(itertools.repeat, self.tail), strict=False)

    def _record(self) -> None:
        """The import's counts and its audit rows (the one place an activity import writes
        them): one for the import, and one for each case it changed, with the activities added
        and the old values of those changed."""
        end_import(self.conn, self.report)
        audit_many(
            self.conn,
            self.actor,
            "activities_imported",
            [
                (
                    case_id,
                    {
                        "import_id": self.report.import_id,
                        "added": self.added.get(case_id, 0),
                        "changed": self.changed.get(case_id, []),
                    },
                )
                for case_id in sorted(self.added.keys() | self.changed.keys())
            ],
            at=self.now,
        )
        audit(
            self.conn,
            self.actor,
            "activities_imported",
            None,
            {
                "import_id": self.report.import_id,
                "municipality": self.municipality,
                "applied": self.report.applied,
                "unchanged": self.report.unchanged,
                "cases": len(self.case_ids),
            },
            at=self.now,
        )


# the stored values an import compares (``_existing_activities``), by column
_COMPARED = (
    "type",
    "provider",
    "start_date",
    "end_date",
    "hours_x100",
    "cost_cents",
    "funder",
    "programme",
)


def _audit_value(value: Any) -> Any:
    """A stored value as the audit row keeps it (a date as ISO text on either store)."""
    return value.isoformat() if isinstance(value, date) else value


def _recorded(reader: Reader, errors: Collector) -> Blocks:
    """The reader's blocks; a file it refuses halfway becomes an error of the file."""
    blocks = reader.blocks(CHUNK_ROWS)
    try:
        yield from blocks
    except SheetError as e:
        errors.add(e.row, e.column, e.value, e.message)
    finally:
        blocks.close()


def _sql_text(value: str) -> str | None:
    """``value`` as an SQLite string literal; None when it cannot be one (a NUL)."""
    if "\x00" in value:
        return None
    return "'" + value.replace("'", "''") + "'"


def _cases(conn: Connection, municipality: str) -> dict[str, tuple[int, bool, date]]:
    """The municipality's cases with a reference: reference -> (id, consent for
    registration, the first plausible start of an activity: ``ACTIVITY_BEFORE_INTAKE`` days
    before the intake)."""
    cases: dict[str, tuple[int, bool, date]] = {}
    t = reintegration_cases
    before = timedelta(days=ACTIVITY_BEFORE_INTAKE)
    for r in conn.execute(
        select(
            t.c.id, t.c.municipal_ref, t.c.consent, t.c.consent_scope, detention_periods.c.intake_at
        )
        .join(detention_periods, detention_periods.c.id == t.c.period_id)
        .where(t.c.municipality == municipality, t.c.municipal_ref.is_not(None))
    ):
        ok = r.consent == ConsentStatus.GIVEN and ConsentScope.REGISTRATION in (
            r.consent_scope or ""
        ).split(",")
        intake = read_datetime(r.intake_at)
        assert intake is not None  # noqa: S101 - a period always has its intake
        cases[r.municipal_ref] = (r.id, ok, local_date(intake) - before)
    return cases


def _existing_activities(conn: Connection, municipality: str) -> Existing:
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
