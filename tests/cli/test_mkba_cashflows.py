"""``terugkeer mkba cashflows``: the JSON contract and one plain line with exit 2 on bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from terugkeer.cli import app

runner = CliRunner()


def test_json(tmp_path: Path) -> None:
    f = tmp_path / "flows.csv"
    f.write_text("period,cost,benefit\n0,4000,0\n1,0,2000\n2,0,4000\n", encoding="utf-8")
    result = runner.invoke(app, ["mkba", "cashflows", str(f), "--rate", "10%", "--json"])
    assert result.exit_code == 0, result.output
    got = json.loads(result.stdout)
    assert set(got) == {"npv", "bc_ratio", "irr"}
    assert got["npv"] == pytest.approx(-4000 + 2000 / 1.1 + 4000 / 1.21)
    assert got["irr"] == pytest.approx(0.2808, abs=5e-5)
    end = runner.invoke(
        app, ["mkba", "cashflows", str(f), "--rate", "0.1", "--timing", "end", "--json"]
    )
    assert json.loads(end.stdout)["npv"] == pytest.approx(got["npv"] / 1.1)
    text = runner.invoke(app, ["mkba", "cashflows", str(f), "--rate", "0,1"])
    assert text.exit_code == 0
    assert "28,08 %" in text.stdout


def test_no_sign_change_gives_null(tmp_path: Path) -> None:
    f = tmp_path / "flows.csv"
    f.write_text("period,cost,benefit\n0,0,10\n1,0,10\n", encoding="utf-8")
    result = runner.invoke(app, ["mkba", "cashflows", str(f), "--rate", "0.03", "--json"])
    assert json.loads(result.stdout) == {
        "npv": pytest.approx(10 + 10 / 1.03),
        "bc_ratio": None,
        "irr": None,
    }


@pytest.mark.parametrize(
    ("content", "args", "needle"),
    [
        (None, ["--rate", "0.03"], "no such file"),
        ("period,kosten,baten\n0,1,1\n", ["--rate", "0.03"], "missing column"),
        ("period,cost,benefit\n0,abc,1\n", ["--rate", "0.03"], "not a number"),
        ("period,cost,benefit\n0,1,1\n", ["--rate", "3"], "fraction"),
        ("period,cost,benefit\n0,1,1\n", ["--rate", "veel"], "a rate such as"),
        ("period,cost,benefit\n0,1,1\n", ["--rate", "0.03", "--timing", "later"], "timing"),
    ],
)
def test_bad_input_is_one_plain_line(
    tmp_path: Path, content: str | None, args: list[str], needle: str
) -> None:
    f = tmp_path / "flows.csv"
    if content is not None:
        f.write_text(content, encoding="utf-8")
    result = runner.invoke(app, ["mkba", "cashflows", str(f), *args])
    assert result.exit_code == 2, result.output
    assert needle in result.stderr
    assert "Traceback" not in result.output
    assert len([line for line in result.stderr.splitlines() if line.strip()]) == 1
