"""What every kind of import shares: opening its file, reading its rows, the municipality it
is for, and its record in ``reintegration_imports``."""

from __future__ import annotations

import hashlib
from collections.abc import Generator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, update

from terugkeer.reintegration.errors import ReintegrationError
from terugkeer.reintegration.importing.report import Collector, ImportReport, RowError
from terugkeer.reintegration.sheets import Sheet, SheetError, open_sheet
from terugkeer.reintegration.tables import reintegration_imports


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def open_for(
    report: ImportReport, aliases: Mapping[str, Sequence[str]], required: tuple[str, ...]
) -> Sheet | None:
    """The report's file opened, its header mapped; None (with the error in the report) when
    it cannot be read."""
    try:
        sheet = open_sheet(report.path, aliases, required)
    except SheetError as e:
        report.errors.append(RowError(e.row, e.column, e.value, e.message))
        return None
    report.encoding, report.delimiter = sheet.encoding, sheet.delimiter
    return sheet


def sheet_rows(sheet: Sheet, errors: Collector) -> Generator[tuple[int, list[Any]], None, None]:
    """The sheet's rows; a damage found halfway (a bad byte) becomes an error of the file."""
    try:
        yield from sheet.rows
    except SheetError as e:
        errors.add(e.row, e.column, e.value, e.message)


def cell(cells: list[Any], sheet: Sheet, name: str) -> Any:
    """The cell of canonical column ``name``; None when the file has no such column."""
    i = sheet.columns.get(name)
    return None if i is None else cells[i]


def check_municipality(code: str) -> str:
    from terugkeer.domain.refdata import refdata

    resolved = refdata().resolve_municipality(code.strip().upper())  # gm0363 is GM0363
    if resolved is None:
        raise ReintegrationError(f"unknown municipality code [{code}]", field="municipality")
    return resolved


def start_import(
    conn: Connection, report: ImportReport, actor: str, sha: str, now: datetime
) -> int:
    """The import's record, with its counts still zero; its id."""
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


def end_import(conn: Connection, report: ImportReport) -> None:
    """The import's record gets the report's counts."""
    conn.execute(
        update(reintegration_imports)
        .where(reintegration_imports.c.id == report.import_id)
        .values(rows=report.rows, applied=report.applied, unchanged=report.unchanged)
    )
