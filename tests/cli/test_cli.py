"""The command line, end to end on each store."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from terugkeer.cli import app
from terugkeer.config import get_settings
from tests.feedutil import intake, lines, msg

runner = CliRunner()


@pytest.fixture
def cli_db(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    monkeypatch.setenv("TERUGKEER_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    get_settings.cache_clear()
    yield engine
    get_settings.cache_clear()


def test_ingest_json_counts_and_exit_codes(cli_db: Engine, tmp_path: Path) -> None:
    good = tmp_path / "good.jsonl"
    good.write_text(lines(intake("e1"), msg("release", "e2", 400, release_kind="court_order")))
    result = runner.invoke(app, ["ingest", "--json", str(good)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"read": 2, "applied": 2, "duplicates": 0, "quarantined": 0}

    again = runner.invoke(app, ["ingest", "--json", str(good)])
    assert json.loads(again.stdout)["duplicates"] == 2

    bad = tmp_path / "bad.jsonl"
    bad.write_text(lines(msg("teleport", "e3", 1)) + "not json\n")
    result = runner.invoke(app, ["ingest", "--json", str(bad)])
    assert result.exit_code == 1
    assert json.loads(result.stdout) == {"read": 2, "applied": 0, "duplicates": 0, "quarantined": 2}


def test_missing_file_is_a_clear_error(cli_db: Engine, tmp_path: Path) -> None:
    result = runner.invoke(app, ["ingest", str(tmp_path / "nope.jsonl")])
    assert result.exit_code == 2
    assert "no such file" in result.output


def test_quarantine_list_and_replay(cli_db: Engine, tmp_path: Path) -> None:
    early = tmp_path / "early.jsonl"
    early.write_text(lines(msg("release", "e2", 400, release_kind="end_of_sentence")))
    assert runner.invoke(app, ["ingest", str(early)]).exit_code == 1
    listed = runner.invoke(app, ["quarantine", "list", "--json"])
    entries = json.loads(listed.stdout)["entries"]
    assert [(e["reason"], e["origin"], e["line_no"]) for e in entries] == [
        ("unknown_period", "early.jsonl", 1)
    ]
    # replay before the fix: still quarantined, exit 1
    replayed = runner.invoke(app, ["quarantine", "replay", "--json"])
    assert replayed.exit_code == 1
    # the intake arrives: the parked release is applied with it
    late = tmp_path / "late.jsonl"
    late.write_text(lines(intake("e1")))
    assert runner.invoke(app, ["ingest", str(late)]).exit_code == 0
    assert json.loads(runner.invoke(app, ["quarantine", "list", "--json"]).stdout)["entries"] == []
    applied = json.loads(
        runner.invoke(app, ["quarantine", "list", "--status", "applied", "--json"]).stdout
    )["entries"]
    assert len(applied) == 1
    assert runner.invoke(app, ["periods", "check"]).exit_code == 0
    assert runner.invoke(app, ["quarantine", "list", "--status", "bogus"]).exit_code == 2
