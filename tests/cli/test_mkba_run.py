"""``terugkeer mkba run`` and ``mkba scenarios``: the report (HTML, PDF, JSON) and errors."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import Engine
from typer.testing import CliRunner

from terugkeer.cli import app
from tests.mkba.store import build

runner = CliRunner()


def test_run_writes_the_report(tmp_path: Path) -> None:
    out = tmp_path / "rapport"
    result = runner.invoke(
        app,
        ["mkba", "run", "npi-prison", "--draws", "400", "--seed", "9", "--out", str(out),
         "--grid", "effect,chain_cost_per_case"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "report:" in result.stdout
    html = (out / "report.html").read_text("utf-8")
    assert "Programma in detentie" in html
    assert "Parameters, bronnen en aannames" in html
    assert "aanname" in html
    assert "maatschappij" in html
    assert html.count("data:image/png;base64,") == 3
    assert (out / "report.pdf").read_bytes().startswith(b"%PDF")
    got = json.loads((out / "result.json").read_text("utf-8"))
    assert got["seed"] == 9
    assert got["draws"] == 400
    assert got["grid"]["x"] == "effect"
    assert got["grid"]["y"] == "chain_cost_per_case"
    assert set(got["per_participant"]) == {
        "central_government", "municipalities", "victims", "ex_detainee", "society",
    }  # fmt: skip
    assert "chain_cost_per_case" in got["parameters"]["assumptions"]


def test_run_on_the_store(engine: Engine, tmp_path: Path) -> None:
    if engine.dialect.name != "sqlite":
        url = engine.url.render_as_string(hide_password=False)
    else:
        url = str(engine.url)
    build(engine)
    result = runner.invoke(
        app,
        ["mkba", "run", "gemeente-registratie", "--draws", "100", "--out", str(tmp_path),
         "--database", url, "--json", "--format", "json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    got = json.loads(result.stdout)
    assert got["scenario"]["participants"] > 0
    assert got["registered"]["programme"] == "Aanpak nazorg Teststad"
    assert (tmp_path / "result.json").is_file()
    assert not (tmp_path / "report.html").exists()
    assert not (tmp_path / "report.pdf").exists()


def test_errors_are_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\ntitle = "X"\n[effect]\nmeasure = "magic"\n', encoding="utf-8")
    for args in (
        ["mkba", "run", "nope", "--out", str(tmp_path)],
        ["mkba", "run", str(bad), "--out", str(tmp_path)],
        ["mkba", "run", "pit-amsterdam", "--out", str(tmp_path), "--grid", "effect"],
        ["mkba", "run", "pit-amsterdam", "--out", str(tmp_path), "--grid", "effect,nope"],
        ["mkba", "run", "pit-amsterdam", "--out", str(tmp_path), "--draws", "0"],
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert "Traceback" not in result.output
        assert 1 <= len([x for x in result.stderr.splitlines() if x.strip()]) <= 2


def test_scenarios() -> None:
    result = runner.invoke(app, ["mkba", "scenarios", "--json"])
    assert result.exit_code == 0
    names = {s["name"] for s in json.loads(result.stdout)}
    assert {"pit-amsterdam", "npi-prison", "gemeente-registratie"} <= names
