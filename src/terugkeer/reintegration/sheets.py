"""Reading CSV and XLSX files as municipal systems and spreadsheets write them.

CSV: UTF-8 (with or without BOM) or Windows-1252, detected from the bytes; separator ``;``,
``,`` or tab, detected from the header line. XLSX: the first sheet, through openpyxl (imported
only when an XLSX file is read). Rows are numbered as a spreadsheet shows them: the header is
row 1. Empty rows are skipped.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import re
import unicodedata
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class SheetError(Exception):
    """The file as a whole cannot be read (encoding, format, header)."""

    def __init__(self, message: str, *, row: int = 1, column: str = "", value: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.row = row
        self.column = column
        self.value = value


def norm_header(text: str) -> str:
    """``Werk en inkomen`` -> ``werk_en_inkomen``; accents and punctuation dropped."""
    text = unicodedata.normalize("NFKD", str(text)).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


@dataclass
class Sheet:
    path: Path
    header: list[str]  # as written in the file
    columns: dict[str, int]  # canonical column name -> position
    rows: Iterator[tuple[int, list[Any]]]  # (row number, cells padded to the header)
    encoding: str | None = None
    delimiter: str | None = None
    sha256: str | None = None

    closer: Callable[[], None] | None = None  # closes the file when ``rows`` was not read

    def name_of(self, column: str) -> str:
        """The column's name as the file writes it (for error reports)."""
        i = self.columns.get(column)
        return self.header[i] if i is not None else column

    def close(self) -> None:
        """Let go of the file, read to the end or not (another reader reads it instead)."""
        close = getattr(self.rows, "close", None)
        if close is not None:
            close()
        if self.closer is not None:
            self.closer()


def detect_encoding(path: Path) -> str:
    return inspect_file(path)[0]


def inspect_file(path: Path) -> tuple[str, str]:
    """(encoding, SHA-256) of a text file, in one pass: UTF-8 with or without BOM (UTF-16 with
    a BOM), else Windows-1252."""
    digest = hashlib.sha256()
    encoding = "utf-8"
    decoder = codecs.getincrementaldecoder("utf-8")()
    with path.open("rb") as fh:
        first = True
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
            if first:
                first = False
                if chunk.startswith(codecs.BOM_UTF8):
                    encoding = "utf-8-sig"
                elif chunk.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
                    encoding = "utf-16"
            # ASCII is valid UTF-8 unless a multi-byte sequence is pending from the last chunk
            if encoding == "utf-8" and (not chunk.isascii() or decoder.getstate()[0]):
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError:
                    encoding = "cp1252"
    if encoding == "utf-8":
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            encoding = "cp1252"
    return encoding, digest.hexdigest()


def _delimiter(line: str) -> str:
    counts = {d: line.count(d) for d in (";", ",", "\t")}
    best = max(counts, key=lambda d: (counts[d], d == ";"))
    return best if counts[best] else ";"


def open_sheet(
    path: Path, aliases: Mapping[str, Sequence[str]], required: Sequence[str] = ()
) -> Sheet:
    """Open ``path`` and map its header onto canonical columns (``aliases``: canonical name ->
    accepted header spellings, normalised with :func:`norm_header`). Unknown or repeated
    columns and missing required ones raise :class:`SheetError`."""
    if not path.is_file():
        raise SheetError(f"no such file: {path}", row=0)
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        header, rows, closer = _xlsx(path)
        encoding, delimiter, sha = None, None, None
    elif suffix in (".csv", ".txt"):
        encoding, sha = inspect_file(path)
        header, rows, delimiter, closer = _csv(path, encoding)
    else:
        raise SheetError(f"unsupported file type [{path.suffix}]: use .csv or .xlsx", row=0)
    try:
        columns = _columns(header, aliases, required)
    except SheetError:
        closer()
        raise
    return Sheet(path, header, columns, rows, encoding, delimiter, sha, closer)


def _columns(
    header: list[str], aliases: Mapping[str, Sequence[str]], required: Sequence[str]
) -> dict[str, int]:
    """Canonical column name -> position, for ``header``."""
    lookup = {norm_header(a): canonical for canonical, names in aliases.items() for a in names}
    columns: dict[str, int] = {}
    for i, name in enumerate(header):
        key = norm_header(name)
        if not key:
            continue
        canonical = lookup.get(key)
        if canonical is None:
            known = ", ".join(names[0] for names in aliases.values())
            raise SheetError(
                f"unknown column [{name}]; known columns: {known}", column=name, value=name
            )
        if canonical in columns:
            raise SheetError(f"column [{name}] appears twice", column=name, value=name)
        columns[canonical] = i
    missing = [aliases[c][0] for c in required if c not in columns]
    if missing:
        raise SheetError(f"missing column(s): {', '.join(missing)}", column=missing[0])
    return columns


def undecodable(e: UnicodeDecodeError) -> SheetError:
    """The refusal of a file with a byte its encoding lacks."""
    return SheetError(f"the file is neither UTF-8 nor Windows-1252: {e.reason}", row=0)


def unreadable(e: csv.Error) -> SheetError:
    """The refusal of a file the csv module cannot read."""
    return SheetError(f"not a readable CSV file: {e}", row=0)


def padded(n: int, cells: list[str], width: int, delimiter: str) -> list[str] | None:
    """CSV record ``n`` as the import reads it: None for an empty one (skipped, its number
    used), a short one padded to ``width`` cells, empty cells beyond the header dropped; a
    value beyond the header raises :class:`SheetError`."""
    if len(cells) == width:
        return cells if any(cells) else None
    if len(cells) < width:
        if not any(c.strip() for c in cells):
            return None
        cells = cells + [""] * (width - len(cells))
    else:
        if any(c.strip() for c in cells[width:]):
            raise SheetError(
                f"row {n} has {len(cells)} cells, the header {width}",
                row=n,
                column="",
                value=delimiter.join(cells[width:])[:40],
            )
        cells = cells[:width]
    return cells if any(cells) else None


def _csv(
    path: Path, encoding: str
) -> tuple[list[str], Iterator[tuple[int, list[Any]]], str, Callable[[], None]]:
    fh = path.open(encoding=encoding, newline="")
    try:
        first = fh.readline()
    except UnicodeDecodeError as e:
        fh.close()
        raise undecodable(e) from e
    if not first.strip():
        fh.close()
        raise SheetError("the file is empty or its first row (the header) is empty", row=1)
    delimiter = _delimiter(first)
    header = next(csv.reader([first], delimiter=delimiter))
    width = len(header)

    def rows() -> Iterator[tuple[int, list[Any]]]:
        try:
            reader = csv.reader(fh, delimiter=delimiter)
            for n, record in enumerate(reader, start=2):
                cells = padded(n, record, width, delimiter)
                if cells is not None:
                    yield n, cells
        except UnicodeDecodeError as e:
            raise undecodable(e) from e
        except csv.Error as e:
            raise unreadable(e) from e
        finally:
            fh.close()

    return header, rows(), delimiter, fh.close


def _xlsx(path: Path) -> tuple[list[str], Iterator[tuple[int, list[Any]]], Callable[[], None]]:
    try:
        import openpyxl  # type: ignore[import-untyped,import-not-found,unused-ignore]
    except ImportError as e:  # pragma: no cover - depends on the installation
        raise SheetError(
            "reading XLSX needs the openpyxl package, which is not installed", row=0
        ) from e
    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as e:  # openpyxl raises many kinds for a damaged file
        raise SheetError(f"not a readable XLSX file: {type(e).__name__}: {e}", row=0) from e
    sheet = book.worksheets[0]
    it = sheet.iter_rows(values_only=True)
    try:
        first = next(it)
    except StopIteration:
        book.close()
        raise SheetError("the sheet is empty", row=1) from None
    header = ["" if v is None else str(v).strip() for v in first]
    while header and not header[-1]:
        header.pop()
    width = len(header)

    def rows() -> Iterator[tuple[int, list[Any]]]:
        try:
            for n, values in enumerate(it, start=2):
                cells = list(values[:width]) + [None] * (width - len(values))
                extra = [v for v in values[width:] if v not in (None, "")]
                if extra:
                    raise SheetError(
                        f"row {n} has values beyond the header's columns",
                        row=n,
                        value=str(extra[0])[:40],
                    )
                if all(v is None or (isinstance(v, str) and not v.strip()) for v in cells):
                    continue
                yield n, cells
        finally:
            book.close()

    return header, rows(), book.close
