"""The main job runs end to end on a fresh SQLite file and reports what it did."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from terugkeer.cli import app


def test_demo_end_to_end(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["demo", "--releases", "500", "--workdir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())
    assert "detention periods" in text
    assert "released" in text
    assert "0 differences" in text
    # the messy feed puts malformed lines in quarantine, with reasons
    assert "invalid_json" in text
    assert (tmp_path / "demo.db").is_file()
    # a second run starts from a fresh database: the same counts, not twice as many
    again = CliRunner().invoke(app, ["demo", "--releases", "500", "--workdir", str(tmp_path)])
    assert again.exit_code == 0
    assert periods(" ".join(again.stdout.split())) == periods(text) > 500


def periods(text: str) -> int:
    match = re.search(r"detention periods: ([\d,]+)", text)
    assert match, text
    return int(match.group(1).replace(",", ""))
