"""Two readers of an import's rows, with one interface: ``blocks(size)`` gives the rows in
blocks (:class:`Block`: row numbers, and cells by row or by column), numbered and padded as
:attr:`Sheet.rows <terugkeer.reintegration.sheets.Sheet.rows>` numbers and pads them (the
header is row 1; empty rows are skipped, their numbers used), and a file that cannot be read
raises :class:`~terugkeer.reintegration.sheets.SheetError`.

- :class:`SheetReader`, the reference: ``Sheet.rows`` (CSV through the csv module, XLSX
  through openpyxl), for every file.
- :class:`PlainCsvReader`, the fast path for the CSV files municipal systems write: a block of
  whole lines without a quote, a NUL or a lone carriage return is one record per line, split
  with ``str.split`` straight into columns; from the first block with one of those the csv
  module reads the rest, as the reference does. It gives the same rows as the reference, and
  refuses what the reference refuses (a property test holds it to that on any input).
"""

from __future__ import annotations

import csv
import io
import itertools
import operator
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Any, Protocol

from terugkeer.reintegration.sheets import Sheet, padded, undecodable, unreadable

BLOCK_BYTES = 1 << 18  # the plain CSV reader decodes and splits this much at a time
_PLAIN_ENCODINGS = {"cp1252": "cp1252", "utf-8": "utf-8", "utf-8-sig": "utf-8"}


@dataclass(frozen=True, slots=True)
class Block:
    """Rows read together: their numbers, and their cells by row or by column (whichever the
    reader had; the other is made on demand)."""

    numbers: Sequence[int]
    by_row: Sequence[Sequence[Any]] | None = None
    by_column: list[Sequence[Any]] | None = None

    def rows(self) -> Sequence[Sequence[Any]]:
        if self.by_row is not None:
            return self.by_row
        return list(zip(*self.by_column or (), strict=True))

    def columns(self) -> list[Sequence[Any]]:
        """The cells column by column (rows are padded to the header)."""
        if self.by_column is not None:
            return self.by_column
        return list(zip(*self.by_row or (), strict=True))

    def __iter__(self) -> Iterator[tuple[int, Sequence[Any]]]:
        """(row number, cells), as ``Sheet.rows`` gives them."""
        return zip(self.numbers, self.rows(), strict=True)


Blocks = Generator[Block, None, None]


class Reader(Protocol):
    def blocks(self, size: int) -> Blocks:
        """The rows in blocks of about ``size``; closing the generator closes the file."""
        ...


class SheetReader:
    """The reference reader: ``Sheet.rows``, ``size`` rows a block."""

    def __init__(self, sheet: Sheet) -> None:
        self.sheet = sheet

    def blocks(self, size: int) -> Blocks:
        rows = self.sheet.rows
        try:
            while chunk := list(itertools.islice(rows, size)):
                numbers, cells = zip(*chunk, strict=True)
                yield Block(numbers, cells)
        finally:
            self.sheet.close()  # the file, when a problem ends the reading early


class PlainCsvReader:
    """The fast reader of a CSV file whose header is plain text ending in LF or CR LF, in an
    encoding whose line feeds are single bytes (:meth:`of` says whether a sheet's file is)."""

    def __init__(self, sheet: Sheet, start: int, codec: str, delimiter: str) -> None:
        self.sheet = sheet
        self.path = sheet.path
        self.start = start  # where the rows start: after the header line
        self.codec = codec
        self.delimiter = delimiter
        self.width = len(sheet.header)
        self.block_bytes = BLOCK_BYTES

    @classmethod
    def of(cls, sheet: Sheet) -> PlainCsvReader | None:
        """The fast reader of ``sheet``'s file; None when the file is not such a CSV file."""
        codec = _PLAIN_ENCODINGS.get(sheet.encoding or "")
        if codec is None or sheet.delimiter is None:
            return None
        with sheet.path.open("rb") as fh:
            head = fh.readline()
        body = head.removesuffix(b"\n").removesuffix(b"\r")
        if b"\r" in body or b'"' in body or b"\x00" in body:
            return None
        return cls(sheet, len(head), codec, sheet.delimiter)

    def blocks(self, size: int) -> Blocks:
        """Blocks of the whole lines in ``block_bytes`` (split into columns when every line
        has the header's width), and from the first block that is not plain, ``size`` rows a
        block from the csv module."""
        self.sheet.close()  # the rows are read here instead
        n = 2  # the header is row 1
        pos = self.start
        with self.path.open("rb") as fh:
            fh.seek(pos)
            rest = b""
            while True:
                piece = fh.read(self.block_bytes)
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
                    yield from self._csv_blocks(fh, n, size)
                    return
                try:
                    text = raw.decode(self.codec)
                except UnicodeDecodeError as e:
                    raise undecodable(e) from e
                lines = text.replace("\r\n", "\n").split("\n") if "\r" in text else text.split("\n")
                if lines[-1] == "":
                    lines.pop()  # after the last line feed
                block = self._split(n, lines)
                if block is not None:
                    yield block
                n += len(lines)
                pos += len(raw)
                if not piece:
                    return

    def _split(self, n: int, lines: list[str]) -> Block | None:
        """Lines ``n``, ``n + 1``, ... as a block: by column when every line has the header's
        width, else by row, padded."""
        delimiter, width = self.delimiter, self.width
        count = operator.methodcaller("count", delimiter)
        if delimiter * (width - 1) not in lines and set(map(count, lines)) == {width - 1}:
            flat = delimiter.join(lines).split(delimiter)
            return Block(range(n, n + len(lines)), None, [flat[i::width] for i in range(width)])
        numbers, rows = [], []
        for j, line in enumerate(lines):
            cells = padded(n + j, line.split(delimiter), width, delimiter)
            if cells is not None:
                numbers.append(n + j)
                rows.append(cells)
        return Block(numbers, rows) if numbers else None

    def _csv_blocks(self, fh: IO[bytes], n: int, size: int) -> Blocks:
        """The rest of the file from ``fh``'s position (row ``n``), read as ``Sheet.rows``
        reads it."""
        text = io.TextIOWrapper(fh, encoding=self.codec, newline="")
        try:
            reader = csv.reader(text, delimiter=self.delimiter)
            numbers: list[int] = []
            rows: list[list[str]] = []
            for n_row, record in enumerate(reader, start=n):
                cells = padded(n_row, record, self.width, self.delimiter)
                if cells is not None:
                    numbers.append(n_row)
                    rows.append(cells)
                    if len(numbers) >= size:
                        yield Block(numbers, rows)
                        numbers, rows = [], []
            if numbers:
                yield Block(numbers, rows)
        except UnicodeDecodeError as e:
            raise undecodable(e) from e
        except csv.Error as e:
            raise unreadable(e) from e
        finally:
            text.detach()  # the caller closes the file


def reader_for(sheet: Sheet, *, fast: bool) -> Reader:
    """The fast reader when ``fast`` is asked for and the file allows it; else the
    reference."""
    plain = PlainCsvReader.of(sheet) if fast else None
    return plain if plain is not None else SheetReader(sheet)
