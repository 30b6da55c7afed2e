"""`terugkeer monitor report` and `monitor extract` end to end through the CLI, on each store:
the report's files, a cohort that is not in the data, an extract without a key (one plain
line, exit 2) and with one (a file with the key id and an audit row)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from terugkeer.cli import app
from terugkeer.config import get_settings
from terugkeer.security.tables import audit_log
from tests.feedutil import intake, lines, msg

runner = CliRunner()


@pytest.fixture
def cli_db(cli_db: Engine, monkeypatch: pytest.MonkeyPatch) -> Engine:
    """The shared command-line store (tests/conftest.py), with no extract keys configured."""
    monkeypatch.delenv("TERUGKEER_MONITOR_EXTRACT_KEYS", raising=False)
    get_settings.cache_clear()
    return cli_db


def feed(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "feed.jsonl"
    path.write_text(
        lines(intake("e1"), msg("release", "e2", 40, release_kind="end_of_sentence")),
        encoding="utf-8",
    )
    result = runner.invoke(app, ["ingest", str(path)])
    assert result.exit_code == 0, result.output


def test_report_writes_its_files(cli_db: Engine, tmp_path: Path) -> None:
    feed(cli_db, tmp_path)
    out = tmp_path / "report"
    result = runner.invoke(app, ["monitor", "report", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "samenhang, geen effect" in result.stdout
    names = {p.name for p in out.iterdir()}
    assert {"index.html", "monitor.xlsx", "indicatoren.csv", "recidive.csv"} <= names
    assert {"km_year.png", "km_year.svg", "basisvoorwaarden.png", "basisvoorwaarden.svg"} <= names
    # one release: every count is under 10, so nothing but suppressed cells
    recid = (out / "recidive.csv").read_text(encoding="utf-8").splitlines()
    assert all(",1," not in line for line in recid[1:])
    bad = runner.invoke(app, ["monitor", "report", "--out", str(out), "--cohort", "2024-K1"])
    assert bad.exit_code == 2
    assert "release year" in bad.stderr
    assert "Traceback" not in bad.output


def test_extract_needs_a_key_and_is_audited(
    cli_db: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    feed(cli_db, tmp_path)
    target = tmp_path / "extract.csv"
    refused = runner.invoke(app, ["monitor", "extract", "--out", str(target), "--as", "ana"])
    assert refused.exit_code == 2
    assert "TERUGKEER_MONITOR_EXTRACT_KEYS" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) <= 2
    assert not target.exists()
    monkeypatch.setenv("TERUGKEER_MONITOR_EXTRACT_KEYS", "2026a:een-geheim-van-16-tekens")
    get_settings.cache_clear()
    done = runner.invoke(app, ["monitor", "extract", "--out", str(target), "--as", "ana"])
    assert done.exit_code == 0, done.output
    assert "2026a" in done.stdout
    header, *rows = target.read_text(encoding="utf-8").splitlines()
    assert header.startswith("key_id,person,release,")
    assert len(rows) == 1
    assert "bsn" not in header
    assert "birth_date" not in header
    with cli_db.connect() as conn:
        actors = [
            a
            for (a,) in conn.execute(
                select(audit_log.c.actor).where(audit_log.c.record_type == "monitor_extract")
            )
        ]
    assert "cli:ana" in actors
