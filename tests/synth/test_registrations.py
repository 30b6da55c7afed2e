"""Synthetic registrations from a synthetic year, and the demo step that imports them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from rich.console import Console
from sqlalchemy import Engine

from terugkeer.demo.registration import demo_step
from terugkeer.detention.ingest import ingest_files
from terugkeer.reintegration.cases import reintegration_hook
from terugkeer.synth import MessyRates, generate
from terugkeer.synth.registrations import MessyRegistrations, write_registrations


@pytest.fixture(scope="module")
def year(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth")
    generate(out, releases=800, seed=5, messy=MessyRates())
    return out


def _cells(path: Path) -> list[list[object]]:
    if path.suffix == ".xlsx":
        openpyxl = pytest.importorskip("openpyxl")
        return [list(r) for r in openpyxl.load_workbook(path).active.iter_rows(values_only=True)]
    return [[line] for line in path.read_bytes().splitlines()]


def test_deterministic_and_messy_only_where_said(year: Path, tmp_path: Path) -> None:
    a = write_registrations(year, tmp_path / "a", seed=2)
    b = write_registrations(year, tmp_path / "b", seed=2)
    messy = write_registrations(year, tmp_path / "m", seed=2, messy=MessyRegistrations(0.3, 0.05))
    assert a.screenings > 0
    assert a.case_rows > 0
    assert a.activity_rows > 0
    assert (tmp_path / "a" / "screenings.csv").read_bytes() == (
        tmp_path / "b" / "screenings.csv"
    ).read_bytes()
    assert sorted(a.municipalities) == sorted(b.municipalities) == sorted(messy.municipalities)
    for code, files in a.municipalities.items():
        assert _cells(files.cases) == _cells(b.municipalities[code].cases)
        spoiled = messy.municipalities[code]
        if spoiled.bad_rows == 0:  # clean files are the same with or without messiness
            assert _cells(files.cases) == _cells(spoiled.cases)
    assert messy.messy_files > 0
    assert messy.bad_rows >= messy.messy_files
    assert a.messy_files == 0
    formats = {f.cases.suffix for f in a.municipalities.values()}
    assert ".csv" in formats


def test_demo_step_imports_the_municipal_files(engine: Engine, year: Path, tmp_path: Path) -> None:
    result = ingest_files(engine, [year / "detention.jsonl"], hooks=[reintegration_hook()])
    assert result.applied > 0
    console = Console(record=True, width=200)
    demo = demo_step(engine, year, tmp_path, console, seed=4)
    text = console.export_text()
    assert demo.opened.opened == 0  # the hook opened them during ingest
    assert demo.screenings.ok
    assert demo.screenings.applied > 0
    assert demo.imported
    assert demo.rejected
    assert demo.synth is not None
    for report in demo.rejected:  # only files with planted bad rows are rejected
        assert report.municipality is not None
        assert demo.synth.municipalities[report.municipality].bad_rows > 0
        assert report.error_file is not None
        assert report.error_file.is_file()
    assert "registration completeness" in text
    assert re.search(r"release\s+│\s+[\d,]+\s+│\s+[\d,]+\s+│\s+\d+%", text), text
    with_data = [c for c in demo.completeness if c.with_consent]
    assert with_data
    release = [m for c in with_data for m in c.moments if m.moment == "release"]
    assert sum(m.recorded for m in release) > 0
