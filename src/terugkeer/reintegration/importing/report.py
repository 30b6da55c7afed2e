"""What an import reports: its counts and every bad row (row, column, value, reason, sorted by
row), as text and as ``<file>.errors.csv`` beside the file. Any 9-digit number that passes the
11-proef appears only masked (its last three digits), whatever the column, also a cell that is
one written in groups (``999 993 653``, ``999.993.653``); a cell of the error file that a
spreadsheet would read as a formula is written with a leading apostrophe."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from terugkeer.domain.bsn import mask, mask_bsns
from terugkeer.reintegration import values
from terugkeer.reintegration.safety import bsn_digits, inert, looks_like_bsn
from terugkeer.reintegration.sheets import Sheet

MAX_REPORTED_ERRORS = 100_000  # a file that is wrong throughout: the first this many rows


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

    @property
    def bad(self) -> bool:
        """Any error found, reported one by one or only counted."""
        return bool(self.errors or self.more_errors)

    def as_json(self) -> dict[str, int | bool]:
        """The counts. A refused file applied nothing (``applied`` and ``unchanged`` 0); a dry
        run says so, and its ``applied`` is what a real run would apply."""
        bad = self.bad
        return {
            "rows": self.rows,
            "applied": 0 if bad else self.applied,
            "unchanged": 0 if bad else self.unchanged,
            "errors": len(self.errors) + self.more_errors,
            "dry_run": self.dry_run,
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
    """The errors as a CSV a Dutch spreadsheet opens as it is (``;``, UTF-8 with BOM), every
    cell inert."""
    target = error_file_for(report.path)
    with target.open("w", encoding="utf-8-sig", newline="") as fh:
        w = csv.writer(fh, delimiter=";", lineterminator="\r\n")
        w.writerow(["row", "column", "value", "reason"])
        for e in report.errors:
            w.writerow([e.row, inert(e.column), inert(e.value), inert(e.reason)])
    return target


def finish(report: ImportReport, *, write_report: bool) -> ImportReport:
    """The report, with its error file written (errors) or an earlier one removed (applied)."""
    stale = error_file_for(report.path)
    report.errors.sort(key=lambda e: e.row)  # stable: a row's errors keep their order
    if report.errors and write_report:
        report.error_file = write_error_report(report)
    elif not report.errors and not report.dry_run and stale.is_file():
        stale.unlink()  # an earlier attempt's report no longer applies
    return report


class Collector:
    """Adds a bad row's error to the report: the column named as the file names it, the value
    shortened (a BSN masked); beyond ``MAX_REPORTED_ERRORS`` only counted."""

    def __init__(self, report: ImportReport, sheet: Sheet | None) -> None:
        self.report = report
        self.sheet = sheet

    def add(self, row: int, column: str, value: Any, reason: str) -> None:
        if len(self.report.errors) >= MAX_REPORTED_ERRORS:
            self.report.more_errors += 1
            return
        name = self.sheet.name_of(column) if self.sheet is not None and column else column
        text = value if isinstance(value, str) else values.cell_text(value)
        if (column == "bsn" and text) or looks_like_bsn(text):
            # a BSN column always; another cell that is a BSN, in groups or not
            text = mask(values.cell_text(bsn_digits(text)))
        text = mask_bsns(text)
        if len(text) > 80:
            text = text[:77] + "..."
        self.report.errors.append(RowError(row, name, text, mask_bsns(reason)))

    @property
    def count(self) -> int:
        """Errors found so far, reported or only counted."""
        return len(self.report.errors) + self.report.more_errors
