"""The command line, end to end on each store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from terugkeer.cli import app
from tests.feedutil import intake, lines, msg

runner = CliRunner()


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


# --- issue 14: steering figures and dates as a municipal officer reads them ----------------


@pytest.fixture
def registered(cli_db: Engine, tmp_path: Path) -> Engine:
    """P1 back in Amsterdam on 05-02-2025 with consent and two activities."""
    from terugkeer.detention.ingest import ingest_text
    from terugkeer.reintegration.cases import reintegration_hook

    text = lines(intake("e1"), msg("release", "e2", 30, release_kind="end_of_sentence"))
    assert ingest_text(cli_db, text, hooks=[reintegration_hook()]).quarantined == 0
    cases = tmp_path / "d.csv"
    cases.write_text(
        "dossiernummer;detentiekenmerk;toestemming;toestemming_datum;moment;onderdak\n"
        "NZ-1;P1;gegeven;20-01-2025;bij ontslag;dakloos\n",
        encoding="utf-8",
    )
    assert runner.invoke(app, ["import", "cases", str(cases), "-m", "GM0363"]).exit_code == 0
    acts = tmp_path / "a.csv"
    acts.write_text(
        "dossiernummer;soort;aanbieder;startdatum;kosten;financier;programma\n"
        "NZ-1;schuldhulpverlening;Kredietbank Amsterdam met een lange naam;01-02-2025;"
        "1.234,56;gemeente;Aanpak nazorg Amsterdam\n"
        "NZ-1;apply_id;Gemeente;03-03-2025;70,38;gemeente;\n",
        encoding="utf-8",
    )
    assert runner.invoke(app, ["import", "activities", str(acts), "-m", "GM0363"]).exit_code == 0
    return cli_db


def test_costs_in_dutch_with_totals_and_a_period(registered: Engine) -> None:
    result = runner.invoke(app, ["reintegration", "costs", "-m", "gm0363"])
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "basisvoorwaarde" in text
    assert "kosten" in text
    assert "schulden" in text
    assert "identiteitsbewijs" in text
    assert "€ 1.234,56" in text
    assert "€ 1.304,94" in text  # the total
    assert "totaal" in text
    assert not any(c in text for c in "┃│━─")  # plain text: not a terminal
    march = runner.invoke(
        app, ["reintegration", "costs", "--van", "1-3-2025", "--tot", "31-3-2025"]
    )
    assert "€ 70,38" in march.stdout
    assert "€ 1.234,56" not in march.stdout
    assert json.loads(
        runner.invoke(app, ["reintegration", "costs", "--van", "2025-03-01", "--json"]).stdout
    ) == [
        {
            "condition": "id",
            "programme": None,
            "activities": 1,
            "cases": 1,
            "hours": "0.00",
            "cost_eur": "70.38",
        }
    ]
    none = runner.invoke(app, ["reintegration", "costs", "--van", "01-01-2026"])
    assert none.exit_code == 0
    assert "niets geregistreerd" in none.stdout
    unknown = runner.invoke(app, ["reintegration", "costs", "-m", "GM9999"])
    assert unknown.exit_code == 2
    assert "unknown municipality code [GM9999]" in unknown.stderr


def test_dates_in_both_spellings_and_looking_back(registered: Engine) -> None:
    done = runner.invoke(app, ["reintegration", "completeness", "--on", "1-1-2025"])
    assert done.exit_code == 0, done.output
    assert "bij ontslag" in done.stdout  # Dutch moment headers
    assert "01-01-2025" in done.stdout
    back = runner.invoke(
        app, ["reintegration", "upcoming", "-m", "GM0363", "--on", "01-01-2025", "--days", "60"]
    )
    assert back.exit_code == 0, back.output
    assert "teruggekeerd" in back.stdout  # P1 was still to come on 01-01-2025
    assert "05-02-2025" in back.stdout
    rows = json.loads(
        runner.invoke(
            app,
            [
                "reintegration",
                "upcoming",
                "-m",
                "GM0363",
                "--on",
                "2025-01-01",
                "--days",
                "40",
                "--json",
            ],
        ).stdout
    )
    assert [(r["period_ref"], r["status"], r["planned_release_date"]) for r in rows] == [
        ("P1", "returned", "2025-02-05")
    ]
    bad = runner.invoke(app, ["reintegration", "upcoming", "-m", "GM0363", "--on", "31-02-2025"])
    assert bad.exit_code == 2
    assert "Traceback" not in bad.output
    orders = runner.invoke(app, ["reintegration", "not-in-order", "-m", "GM0363"])
    assert "onderdak" in orders.stdout
    assert "['" not in orders.stdout  # no Python lists


def test_the_readme_says_what_terugkeer_is_for() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    opening = readme.split("make demo")[0]
    assert "../" not in opening
    assert "/work/" not in opening
    assert "shared/" not in opening
    for word in ("municipal", "mayor", "victim", "release"):
        assert word in opening.lower()


def test_values_in_brackets_are_printed_as_they_are(cli_db: Engine) -> None:
    added = runner.invoke(
        app,
        ["user", "add", "alice", "--role", "analyst"],
        input="a long enough password for alice 42\n",
    )
    assert added.exit_code == 0, added.output
    assert "alice" in added.stdout  # Rich markup swallowed "[alice]" before
