"""The readers of an import's rows: the fast CSV reader gives what the reference reader
(``Sheet.rows``) gives, on the files municipal systems write and on any input."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from terugkeer.reintegration.importing import ACTIVITY_ALIASES
from terugkeer.reintegration.importing.readers import (
    PlainCsvReader,
    Reader,
    SheetReader,
    reader_for,
)
from terugkeer.reintegration.sheets import SheetError, open_sheet

ACTIVITIES_HEADER = (
    "dossiernummer;activiteitnummer;soort;aanbieder;startdatum;einddatum;uren;kosten;financier;"
    "programma"
)


def read(reader: Reader, size: int) -> list[tuple[int, list[Any]]]:
    return [(n, list(cells)) for block in reader.blocks(size) for n, cells in block]


def outcome(reader: Reader, size: int) -> list[tuple[int, list[Any]]] | str:
    """The rows, or the refusal."""
    try:
        return read(reader, size)
    except SheetError:
        return "refused"


PLAIN_LINES = [
    "NZ-001;A1;apply_id;Gemeente;01-02-2025;;1;10,00;gemeente;",
    "",  # an empty line: skipped, its number used
    ";;;;;;;;;",  # only separators: skipped
    "NZ-001;A2;apply_id;Gemeente €;01-02-2025",  # short: padded
    "NZ-001;A3;apply_id;Gemeente;01-02-2025;;;;;;;",  # empty cells beyond the header: dropped
    " ; ;",  # blank: skipped
    "NZ-001;A4;apply_id; José ;01-02-2025;;;;;",
]


@pytest.mark.parametrize("block", [16, 100, 1 << 18])
@pytest.mark.parametrize(
    ("encoding", "newline", "quoted"),
    [
        ("cp1252", "\r\n", False),
        ("utf-8-sig", "\n", False),
        ("utf-8", "\r\n", True),
        ("cp1252", "\n", True),
    ],
)
def test_the_plain_reader_reads_what_the_sheet_reads(
    tmp_path: Path, block: int, encoding: str, newline: str, quoted: bool
) -> None:
    """The writing pass splits plain CSV itself; rows, numbers and cells are those of
    ``Sheet.rows``, up to and after the first quoted field (read by the csv module)."""
    lines = list(PLAIN_LINES)
    if quoted:
        lines[4:4] = ['NZ-001;"A;5";apply_id;"Gemeente\r\nNoord";01-02-2025;;;;;', "x;y"]
    lines += [f"NZ-002;B{k};soort;aanbieder;01-02-2025;;;;;" for k in range(20)]
    path = tmp_path / "a.csv"
    path.write_bytes((newline.join([ACTIVITIES_HEADER, *lines]) + newline).encode(encoding))
    expected = read(SheetReader(open_sheet(path, ACTIVITY_ALIASES)), 2)
    plain = PlainCsvReader.of(open_sheet(path, ACTIVITY_ALIASES))
    assert plain is not None
    plain.block_bytes = block
    assert read(plain, 2) == expected
    assert len(expected) == len(lines) - 3


def test_a_file_the_fast_reader_cannot_take_is_read_by_the_reference(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes(b'"dossiernummer";soort;aanbieder;startdatum\nNZ-1;x;y;z\n')
    sheet = open_sheet(path, ACTIVITY_ALIASES)
    assert PlainCsvReader.of(sheet) is None
    reader = reader_for(sheet, fast=True)
    assert isinstance(reader, SheetReader)
    assert read(reader, 10) == [(2, ["NZ-1", "x", "y", "z"])]


# any cell text: quotes, the three delimiters, line breaks of every kind, a BOM, NUL,
# Windows-1252 letters and signs, spaces
CELL = st.text(alphabet=st.sampled_from(list('";,\t\r\n\ufeff\x00 aZ0€éš…ÿ‰\x81')), max_size=6)
ROW = st.lists(CELL, max_size=13)  # ragged: shorter and longer than the header


@st.composite
def files(draw: st.DrawFn) -> tuple[bytes, int, int]:
    """A CSV file with an activity header and any body; the block size of the fast reader
    and the rows a block of the csv module."""
    delimiter = draw(st.sampled_from([";", ",", "\t"]))
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "cp1252"]))
    header = delimiter.join(ACTIVITIES_HEADER.split(";"))
    lines = []
    for cells in draw(st.lists(ROW, max_size=12)):
        if draw(st.booleans()):  # written by a CSV writer: quoted where needed
            cells = ['"' + c.replace('"', '""') + '"' if any(x in c for x in '";,\t\r\n') else c
                     for c in cells]  # fmt: skip
        lines.append(delimiter.join(cells) + draw(st.sampled_from(["\n", "\r\n", "\r", ""])))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    # plain rows before the drawn ones: beyond the 8 kB the header is read with, the reference
    # meets a bad byte only while reading the rows
    filler = delimiter.join(["NZ-1", "A", "x", "y", "01-02-2025"]) + newline
    text = header + newline + filler * draw(st.sampled_from([0, 3, 400])) + "".join(lines)
    data = text.encode(encoding, errors="replace")
    if draw(st.booleans()):  # a byte neither UTF-8 nor Windows-1252 has
        at = draw(st.integers(min_value=max(len(data) - 200, len(header) + 1), max_value=len(data)))
        data = data[:at] + b"\x81" + data[at:]
    return data, draw(st.sampled_from([1, 7, 64, 1 << 18])), draw(st.sampled_from([1, 3, 2048]))


@settings(max_examples=400, deadline=None)
@given(files())
def test_the_fast_reader_and_the_reference_agree_on_any_input(
    case: tuple[bytes, int, int],
) -> None:
    """The same rows (numbers and cells), or both refuse the file."""
    data, block_bytes, size = case
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "a.csv"
        path.write_bytes(data)
        try:
            reference = open_sheet(path, ACTIVITY_ALIASES)
        except SheetError:
            return  # refused at the header: neither reader is asked
        expected = outcome(SheetReader(reference), size)
        plain = PlainCsvReader.of(open_sheet(path, ACTIVITY_ALIASES))
        assert plain is not None  # the header is plain
        plain.block_bytes = block_bytes
        assert outcome(plain, size) == expected
        event("refused" if expected == "refused" else "read")
        event(f"{len(data) // 8192 * 8} kB and more")
