"""API of the bulk import from a municipality's own system (``cases:write``), under /api/v1:
the same import as ``terugkeer import cases|activities`` and the caseworker's upload page, for
the caller's municipality; the answer is the import's report with every bad row.

All or nothing: with any error nothing is written and the answer lists every bad row (row as
the spreadsheet numbers it, column as the file names it, the value, the reason; a BSN masked).
The import records the account's name as who imported (``reintegration_imports``, the audit
rows of the cases it changes)."""

from __future__ import annotations

import tempfile
from pathlib import Path as FilePath
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, HTTPException, Query, Request, UploadFile
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from terugkeer.reintegration.importing.activities import import_activities
from terugkeer.reintegration.importing.cases import import_cases
from terugkeer.reintegration.importing.report import ImportReport
from terugkeer.security.roles import Permission, Principal
from terugkeer.web.auth import engine_of, requires

router = APIRouter(tags=["nazorg"])
PATH = "/nazorgdossiers/importen"
KINDS = ("cases", "activities")
SUFFIXES = (".csv", ".xlsx", ".txt")
MAX_FILE = 20 * 1024 * 1024  # bytes of one uploaded file (the command line takes more)

PROBLEM: dict[str, object] = {"content": {"application/problem+json": {}}}
ERRORS: dict[int | str, dict[str, object]] = {
    400: {"description": "no file, or not a CSV or XLSX file", **PROBLEM},
    401: {"description": "not signed in", **PROBLEM},
    403: {"description": "not allowed for this role, or no municipality", **PROBLEM},
    413: {"description": "the file is too large", **PROBLEM},
}
Writer = Annotated[Principal, Depends(requires(Permission.CASES_WRITE))]


def municipality_of(principal: Principal) -> str:
    if principal.municipality is None:
        raise HTTPException(403, "your role works on no municipality's cases")
    return principal.municipality


def run_import(
    engine: Engine,
    principal: Principal,
    kind: str,
    filename: str,
    content: bytes,
    *,
    dry_run: bool,
) -> ImportReport:
    """The import of an uploaded file for the principal's municipality, written to a private
    temporary file for the reader and removed after; no error file beside it (the report is
    the answer). Raises HTTPException 400 for a file that is no CSV or XLSX file."""
    municipality = municipality_of(principal)
    if kind not in KINDS:
        raise HTTPException(400, f"unknown kind [{kind[:20]}]; use one of {KINDS}")
    suffix = FilePath(filename).suffix.lower()
    if suffix not in SUFFIXES:
        raise HTTPException(400, "the file must be a CSV (.csv, .txt) or XLSX (.xlsx) file")
    if len(content) > MAX_FILE:
        raise HTTPException(413, f"the file is larger than {MAX_FILE} bytes")
    run = import_cases if kind == "cases" else import_activities
    with tempfile.TemporaryDirectory(prefix="terugkeer-import-") as folder:
        path = FilePath(folder) / f"upload{suffix}"
        path.write_bytes(content)
        return run(
            engine,
            path,
            municipality=municipality,
            actor=principal.name,
            dry_run=dry_run,
            write_report=False,
        )


def report_json(report: ImportReport) -> dict[str, Any]:
    return {
        **report.as_json(),
        "ok": not report.bad,
        "rows_with_errors": [
            {"row": e.row, "column": e.column, "value": e.value, "reason": e.reason}
            for e in report.errors
        ],
        "more_errors": report.more_errors,
    }


@router.post(
    PATH,
    responses=ERRORS,
    summary="Import cases or activities from a CSV or XLSX file (all or nothing)",
)
async def post_import(
    request: Request,
    principal: Writer,
    bestand: Annotated[UploadFile, File(description="the CSV or XLSX file")],
    soort: Annotated[str, Query(pattern="^(cases|activities)$")] = "cases",
    proef: Annotated[bool, Query(description="check only; write nothing")] = False,
) -> dict[str, Any]:
    content = await bestand.read(MAX_FILE + 1)
    report = await run_in_threadpool(
        run_import,
        engine_of(request),
        principal,
        soort,
        bestand.filename or "",
        content,
        dry_run=proef,
    )
    return report_json(report)
