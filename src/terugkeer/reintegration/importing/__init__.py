"""Bulk import from municipal systems (cases with consent and conditions; activities) and from
the prison administration (intake screenings), as CSV or XLSX.

Every file is all-or-nothing: every row is checked (values, then against the store); with any
bad row nothing is written and the report lists each bad row with its row number, column,
value and reason, as text and as ``<file>.errors.csv`` beside the file. A valid file is applied
in one transaction. Rows are upserted on the municipality's own references (case reference,
activity reference), so importing the same file again changes nothing. BSNs never appear in
reports or logs in full (only their last three digits).

The parts: :mod:`.report` (the report and its error file), :mod:`.cases`,
:mod:`.activities` (with its checks in :mod:`.activity_checks`), :mod:`.screenings`,
:mod:`.readers` (the reference reader and the fast CSV reader, one interface) and
:mod:`.shared` (the import record, opening a file).
"""

from terugkeer.reintegration.importing.activities import ACTIVITY_ALIASES, import_activities
from terugkeer.reintegration.importing.cases import CASE_ALIASES, import_cases
from terugkeer.reintegration.importing.report import (
    MAX_REPORTED_ERRORS,
    ImportReport,
    RowError,
    error_file_for,
    write_error_report,
)
from terugkeer.reintegration.importing.screenings import SCREENING_ALIASES, import_screenings

__all__ = [
    "ACTIVITY_ALIASES",
    "CASE_ALIASES",
    "MAX_REPORTED_ERRORS",
    "SCREENING_ALIASES",
    "ImportReport",
    "RowError",
    "error_file_for",
    "import_activities",
    "import_cases",
    "import_screenings",
    "write_error_report",
]
