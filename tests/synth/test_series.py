"""Consecutive synthetic years: distinct identifiers, people who come back, one store."""

from __future__ import annotations

import csv
import hashlib
import json
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from terugkeer import intake
from terugkeer.detention.store import check_periods
from terugkeer.detention.tables import detention_periods, persons
from terugkeer.synth import History, SynthSummary, generate, generate_years
from terugkeer.synth import params as P

FEEDS = ("detention.jsonl", "victims.jsonl", "reconvictions.jsonl")
YEARS = 3
RELEASES = 1_500


@pytest.fixture(scope="module")
def series(tmp_path_factory: pytest.TempPathFactory) -> list[SynthSummary]:
    return generate_years(
        tmp_path_factory.mktemp("series"), years=YEARS, first_year=2022, releases=RELEASES, seed=9
    )


def _lines(summary: SynthSummary, name: str) -> list[dict[str, Any]]:
    with summary.files[name].open() as fh:
        return [json.loads(line) for line in fh]


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def _key(person: dict[str, str]) -> str:
    return person.get("bsn") or person["prison_number"]


def test_the_first_year_is_the_single_year(series: list[SynthSummary], tmp_path: Path) -> None:
    generate(tmp_path / "single", releases=RELEASES, seed=9, year=2022)
    first = series[0].files["detention.jsonl"].parent
    assert first.name == "2022"
    assert _digests(first) == _digests(tmp_path / "single")
    assert [s.year for s in series] == [2022, 2023, 2024]
    assert [s.seed for s in series] == [9, 10, 11]


def test_identifiers_never_repeat_across_years(series: list[SynthSummary]) -> None:
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for s in series:
        for name in FEEDS:
            for o in _lines(s, name):
                counts["event_id"][o["event_id"]] += 1
                if o["kind"] == "intake":
                    counts["period"][o["period"]] += 1
                for field in ("victim_ref", "case_ref"):
                    if field in o:
                        counts[field][o[field]] += 1
    for field, seen in counts.items():
        assert seen, field
        assert max(seen.values()) == 1, (field, seen.most_common(3))
    periods = sorted(counts["period"])
    assert periods[0] == "DP00000001"
    assert periods[-1] == f"DP{sum(s.periods for s in series):08d}"


def test_people_of_earlier_years_come_back_as_themselves(series: list[SynthSummary]) -> None:
    """Same BSN or prison number, same birth date and sex, a new period taken in at least a
    week after their last release; nobody who died comes back; everyone else is new."""
    seen: dict[str, tuple[str, str]] = {}  # person -> birth date, sex
    numbers: dict[str, str | None] = {}  # prison number -> BSN
    last_end: dict[str, datetime] = {}
    dead: set[str] = set()
    for i, s in enumerate(series):
        detention = _lines(s, "detention.jsonl")
        intakes = [o for o in detention if o["kind"] == "intake"]
        people = {_key(o["person"]) for o in intakes}
        back = people & set(seen)
        if i == 0:
            assert not back
        else:
            assert len(back) > 0.15 * len(people), (len(back), len(people))
            assert len(back) < 1.2 * P.RETURNING_SHARE * len(people)
        assert not back & dead
        ends: dict[str, datetime] = {}
        for o in intakes:
            key, at = _key(o["person"]), datetime.fromisoformat(o["occurred_at"])
            pn, bsn = o["person"]["prison_number"], o["person"].get("bsn")
            assert numbers.setdefault(pn, bsn) == bsn, f"prison number {pn} of another person"
            if key in seen and key not in ends:
                assert seen[key] == (o["birth_date"], o["sex"])
                assert at >= last_end[key] + timedelta(days=P.RETURN_GAP_DAYS)
            ends.setdefault(key, at)
        for o in detention:
            if o["kind"] in ("release", "death"):
                key = _key(o["person"])
                last_end[key] = datetime.fromisoformat(o["occurred_at"])
                if o["kind"] == "death":
                    dead.add(key)
        for o in intakes:
            seen.setdefault(_key(o["person"]), (o["birth_date"], o["sex"]))
    with series[-1].files["truth.csv"].open() as fh:
        truth = list(csv.DictReader(fh))
    assert len(truth) == series[-1].periods


def test_history_counts_the_series(tmp_path: Path) -> None:
    history = History()
    a = generate(tmp_path / "a", releases=800, seed=3, year=2023, history=history)
    b = generate(tmp_path / "b", releases=800, seed=4, year=2024, history=history)
    assert history.years == 2
    assert history.periods == a.periods + b.periods
    assert history.victims == a.victims + b.victims
    assert history.reconvictions == a.reconvictions + b.reconvictions
    assert history.persons == a.persons + b.persons - history.returned
    assert history.returned > 0


@pytest.mark.parametrize("years", [0, -1])
def test_a_series_has_at_least_one_year(tmp_path: Path, years: int) -> None:
    with pytest.raises(ValueError, match="years must be at least 1"):
        generate_years(tmp_path, years=years)


def test_consecutive_years_ingest_into_one_store(engine: Engine, tmp_path: Path) -> None:
    """Year after year, with the hooks: nothing quarantined, the returners are one person with
    periods in two years, every period consistent with its events."""
    summaries = generate_years(tmp_path, years=2, first_year=2023, releases=600, seed=4)
    for s in summaries:
        result = intake.ingest_files(engine, [s.files[name] for name in FEEDS])
        assert result.quarantined == 0, result.reasons
        assert result.applied == s.events
    with engine.connect() as conn:
        stored_persons = conn.execute(select(func.count()).select_from(persons)).scalar_one()
        stored_periods = conn.execute(
            select(func.count()).select_from(detention_periods)
        ).scalar_one()
        assert check_periods(conn) == []
    assert stored_periods == sum(s.periods for s in summaries)
    assert stored_persons < sum(s.persons for s in summaries)


def test_the_command_writes_consecutive_years(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from terugkeer.cli import app

    args = ["synth", "--out", str(tmp_path), "--releases", "300", "--seed", "2"]
    result = CliRunner().invoke(app, [*args, "--year", "2020", "--years", "2"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["2020", "2021"]
    assert "2021: 300 releases" in result.output
    one = CliRunner().invoke(app, ["synth", "--out", str(tmp_path / "one"), "--releases", "300"])
    assert one.exit_code == 0, one.output
    assert (tmp_path / "one" / "detention.jsonl").is_file()
