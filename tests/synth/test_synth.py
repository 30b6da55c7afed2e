"""The synthetic national year: valid feeds, consistent sequences, realistic figures.

The realism checks run on one generated year of N = 20,000 releases (scaled figures are per
35,000, the national volume). Tolerances are a few standard errors of sampling at this N plus
the slack stated in docs/synth.md; the sources of the targets are in synth/params.py.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from statistics import median
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from terugkeer.detention.parse import parse_line
from terugkeer.detention.periods import PeriodState, fold
from terugkeer.domain.bsn import is_valid_bsn
from terugkeer.domain.codes import (
    COUNTS_AS_RECIDIVISM,
    DETENTION_KINDS,
    CaseDecision,
    EventKind,
)
from terugkeer.domain.events import FeedError, FeedEvent
from terugkeer.domain.refdata import refdata
from terugkeer.synth import MessyRates, SynthSummary, clock, generate
from terugkeer.synth import params as P
from terugkeer.synth.messy import FAILS_PARSE

N = 20_000
SCALE = N / 35_000
AMS = ZoneInfo("Europe/Amsterdam")
FEEDS = ("detention.jsonl", "victims.jsonl", "reconvictions.jsonl")
CONDITIONS = ("id", "housing", "income", "debts", "care")


@dataclass
class Year:
    summary: SynthSummary
    out: Path
    events: dict[str, list[FeedEvent]]
    lines: dict[str, list[str]]
    truth: list[dict[str, str]]
    states: dict[str, PeriodState]
    by_period: dict[str, list[FeedEvent]]

    @property
    def released(self) -> list[dict[str, str]]:
        return [r for r in self.truth if r["end"] == "release"]

    @property
    def into_society(self) -> list[dict[str, str]]:
        return [r for r in self.released if r["release_kind"] != "into_tbs"]


def share(rows: list[dict[str, str]], pred: Any) -> float:
    return sum(1 for r in rows if pred(r)) / max(1, len(rows))


@pytest.fixture(scope="module")
def year(tmp_path_factory: pytest.TempPathFactory) -> Year:
    out = tmp_path_factory.mktemp("synth")
    summary = generate(out, releases=N, seed=11, year=2024)
    rd = refdata()
    events: dict[str, list[FeedEvent]] = {}
    lines: dict[str, list[str]] = {}
    for name in FEEDS:
        lines[name] = (out / name).read_text("utf-8").splitlines()
        events[name] = [parse_line(line, i, name, rd) for i, line in enumerate(lines[name], 1)]
    by_period: dict[str, list[FeedEvent]] = defaultdict(list)
    for e in events["detention.jsonl"]:
        by_period[e.period_ref or ""].append(e)
    states = {ref: s for ref, evs in by_period.items() if (s := fold(evs)) is not None}
    with (out / "truth.csv").open(encoding="utf-8") as fh:
        truth = list(csv.DictReader(fh))
    return Year(summary, out, events, lines, truth, states, by_period)


# --- determinism and the API ------------------------------------------------------------------


def _digests(out: Path) -> dict[str, str]:
    return {
        name: hashlib.sha256((out / name).read_bytes()).hexdigest()
        for name in (*FEEDS, "truth.csv")
    }


def test_same_seed_gives_byte_identical_files(tmp_path: Path) -> None:
    steps: list[int] = []
    a = generate(tmp_path / "a", releases=2_000, seed=3, progress=steps.append)
    b = generate(tmp_path / "b", releases=2_000, seed=3, messy=None)
    generate(tmp_path / "c", releases=2_000, seed=4)
    assert _digests(tmp_path / "a") == _digests(tmp_path / "b")
    assert (
        _digests(tmp_path / "a")["detention.jsonl"] != _digests(tmp_path / "c")["detention.jsonl"]
    )
    assert (a.events, a.persons) == (b.events, b.persons)
    assert sum(steps) == 2_000
    assert all(s > 0 for s in steps)
    assert set(a.files) == {*FEEDS, "truth.csv"}
    assert (a.seed, a.year) == (3, 2024)


def test_same_seed_with_messy_is_identical_too(tmp_path: Path) -> None:
    generate(tmp_path / "a", releases=1_000, seed=5, messy=MessyRates())
    generate(tmp_path / "b", releases=1_000, seed=5, messy=MessyRates())
    assert _digests(tmp_path / "a") == _digests(tmp_path / "b")


def test_summary_counts_match_the_files(year: Year) -> None:
    s = year.summary
    assert s.releases == N
    assert s.periods == len(year.truth) == len(year.by_period)
    assert s.events == sum(len(v) for v in year.lines.values())
    kinds = Counter(e.kind.value for evs in year.events.values() for e in evs)
    assert dict(kinds) == {k: v for k, v in s.events_by_kind.items() if v}
    assert s.victims == len(year.lines["victims.jsonl"])
    assert s.reconvictions == len(year.lines["reconvictions.jsonl"])
    assert s.persons == len({r["person_key"] for r in year.truth})
    assert s.messy == {}


def test_clock_matches_zoneinfo() -> None:
    start = datetime(2023, 1, 1, tzinfo=UTC)
    for hours in range(0, 2 * 365 * 24, 7):
        t = start + timedelta(hours=hours, minutes=13)
        utc = int(t.timestamp())
        assert clock.iso(utc) == t.astimezone(AMS).isoformat()
    # the two changes of 2024 to the second
    for moment in ("2024-03-31T01:00:00+00:00", "2024-10-27T01:00:00+00:00"):
        t = datetime.fromisoformat(moment)
        for delta in (-1, 0, 1):
            u = t + timedelta(seconds=delta)
            assert clock.iso(int(u.timestamp())) == u.astimezone(AMS).isoformat()


# --- the feeds are valid --------------------------------------------------------------------


def test_every_line_parses_with_the_right_source_and_kinds(year: Year) -> None:
    rd = refdata()
    det = year.events["detention.jsonl"]
    assert {rd.institutions[e.source].type.value for e in det} == {"pi", "jji", "tbs"}
    assert {e.kind for e in det} == DETENTION_KINDS
    assert {(e.source, e.kind) for e in year.events["victims.jsonl"]} == {
        ("OM-IDV", EventKind.VICTIM_REGISTERED)
    }
    assert {(e.source, e.kind) for e in year.events["reconvictions.jsonl"]} == {
        ("JUSTID-JD", EventKind.RECONVICTION)
    }
    for name in FEEDS:
        ids = [e.event_id for e in year.events[name]]
        assert len(ids) == len(set(ids)), name
        first = json.loads(year.lines[name][0])
        assert first["feed_version"] == 1
        assert first["occurred_at"][-6:] in ("+01:00", "+02:00")


def test_the_event_columns_name_each_detention_kind() -> None:
    """synth.events numbers the detention kinds in EventKind's order; K_* name the numbers."""
    from terugkeer.synth import events as columns

    assert len(columns.KINDS) == len(DETENTION_KINDS)
    assert set(columns.KINDS) == DETENTION_KINDS
    named = {"K_INTAKE": "INTAKE", "K_RDS": "RELEASE_DATE_SET", "K_GRANT": "LEAVE_GRANTED",
             "K_LSTART": "LEAVE_START", "K_LEND": "LEAVE_END", "K_ESCAPE": "ESCAPE",
             "K_RECAPTURE": "RECAPTURE", "K_TRANSFER": "TRANSFER", "K_TITLE": "TITLE_CHANGE",
             "K_RELEASE": "RELEASE", "K_DEATH": "DEATH"}  # fmt: skip
    for index, kind in named.items():
        assert columns.KINDS[getattr(columns, index)] is EventKind[kind], index


def test_feeds_are_in_time_order(year: Year) -> None:
    for name in FEEDS:
        times = [e.occurred_at for e in year.events[name]]
        assert times == sorted(times), name


def test_every_period_folds_and_ends_in_release_or_death(year: Year) -> None:
    statuses = Counter(s.status for s in year.states.values())
    assert statuses["released"] == N
    assert statuses["deceased"] == len(year.truth) - N
    truth = {r["period"]: r for r in year.truth}
    for ref, state in year.states.items():
        row = truth[ref]
        assert state.person_key == row["person_key"]
        if row["end"] == "release":
            assert state.release_kind == row["release_kind"]
            assert state.ended_at is not None
            assert state.ended_at.astimezone(AMS).date().isoformat() == row["end_date"]
        assert state.intake_at.astimezone(AMS).date().isoformat() == row["intake_date"]
        released_in = state.ended_at.astimezone(AMS).year if state.ended_at else None
        assert released_in == 2024


def test_planned_release_date_is_the_release_day_when_released_as_planned(year: Year) -> None:
    checked = 0
    for state in year.states.values():
        as_planned = state.release_kind in ("end_of_sentence", "conditional_release", "into_tbs")
        if as_planned and state.planned_release_date is not None and state.ended_at is not None:
            assert state.planned_release_date == state.ended_at.astimezone(AMS).date()
            checked += 1
    assert checked > 0.3 * N


def test_sentenced_persons_get_a_release_date_at_intake_and_some_change_later(year: Year) -> None:
    sentenced = 0
    with_date = 0
    changed = 0
    for evs in year.by_period.values():
        evs = sorted(evs, key=FeedEvent.sort_key)
        intake = evs[0]
        if intake.fields["title"].value not in ("prison_sentence", "replacement_detention"):
            continue
        sentenced += 1
        rds = [e for e in evs if e.kind is EventKind.RELEASE_DATE_SET]
        if "planned_release_date" in intake.fields or (
            rds and rds[0].occurred_at - intake.occurred_at < timedelta(days=2)
        ):
            with_date += 1
        if len({e.fields["planned_release_date"] for e in rds}) > 1:
            changed += 1
    assert with_date == sentenced
    assert 0.01 < changed / sentenced < 0.15


def test_transfers_move_the_source(year: Year) -> None:
    moved = 0
    for ref, evs in year.by_period.items():
        evs = sorted(evs, key=FeedEvent.sort_key)
        transfers = [e for e in evs if e.kind is EventKind.TRANSFER]
        if not transfers:
            continue
        moved += 1
        assert (
            evs[-1].source == transfers[-1].fields["to_institution"] == year.states[ref].institution
        )
    assert moved > 0.08 * N


# --- realism ----------------------------------------------------------------------------------


def test_stays_short_mostly_with_a_long_tail(year: Year) -> None:
    rel = year.released
    # DF: about 20,000 of 35,000 after more than 2 weeks
    assert share(rel, lambda r: int(r["stay_days"]) > 14) == pytest.approx(20 / 35, abs=0.04)
    # DF: 2.8 months actually served on average (prisons and JJIs; tbs clinics excluded)
    pj = [int(r["stay_days"]) for r in rel if r["institution_type"] != "tbs"]
    assert sum(pj) / len(pj) == pytest.approx(2.8 * 30.44, rel=0.15)
    stays = [int(r["stay_days"]) for r in rel]
    assert median(stays) < 30
    assert sum(s > 5 * 365 for s in stays) > 0.003 * N
    # DF: 44 % pre-trial among the detained on a given day; flow estimate = pre-trial days share
    pi = [r for r in rel if r["institution_type"] == "pi"]
    pretrial = sum(int(r["pretrial_days"]) for r in pi) / sum(int(r["stay_days"]) for r in pi)
    assert pretrial == pytest.approx(0.44, abs=0.06)
    kinds = Counter(r["release_kind"] for r in rel)
    assert kinds["court_order"] > 0.3 * N  # many pre-trial releases by order of the court
    assert kinds["conditional_release"] > 0.005 * N
    assert 0 < kinds["into_tbs"] < 0.01 * N


def test_persons_sex_age_and_identifiers(year: Year) -> None:
    rel = year.released
    assert share(rel, lambda r: r["sex"] == "M") == pytest.approx(0.95, abs=0.015)
    assert share(rel, lambda r: 18 <= int(r["age_at_release"]) <= 25) == pytest.approx(
        0.15, abs=0.03
    )
    assert min(int(r["age_at_release"]) for r in rel) >= 16
    persons = {r["person_key"] for r in year.truth}
    assert share([{"k": k} for k in persons], lambda r: r["k"].startswith("pn:")) == pytest.approx(
        0.05, abs=0.015
    )
    # everyone has a prison number; a BSN is in the test range and passes the 11-proef
    for e in year.events["detention.jsonl"][:20_000]:
        assert e.prison_number
        if e.bsn:
            assert e.bsn.startswith("9")
            assert is_valid_bsn(e.bsn)
    # some persons are released twice this year
    assert 0.03 * N < len(year.truth) - len(persons) < 0.12 * N


def test_juveniles_in_jjis(year: Year) -> None:
    jji = [r for r in year.released if r["institution_type"] == "jji"]
    assert 1_000 * SCALE <= len(jji) <= 1_800 * SCALE  # DF: 1,000-1,800 a year (SEOR 2016)
    juvenile = [r for r in jji if r["title"] in ("juvenile_detention", "pij")]
    assert 1_000 * SCALE * 0.8 <= len(juvenile) <= 1_800 * SCALE
    assert all(16 <= int(r["age_at_release"]) <= 23 for r in jji)
    assert all(r["institution_type"] == "jji" for r in year.released if r["title"] == "pij")


def test_serious_offenders_and_their_leaves(year: Year) -> None:
    serious = {r["period"] for r in year.into_society if r["serious"] == "1"}
    # DF: about 1,500 serious violent and sex offenders return each year (VNG 2014)
    assert len(serious) == pytest.approx(1_500 * SCALE, rel=0.2)
    tbs = sum(1 for r in year.released if r["title"] == "tbs")
    assert 0.003 * N < tbs < 0.01 * N
    leaves = [e for e in year.events["detention.jsonl"] if e.kind is EventKind.LEAVE_START]
    # DF: about 500 leave notices a year to mayors for this group (Justid 2020)
    assert sum(1 for e in leaves if e.period_ref in serious) == pytest.approx(500 * SCALE, rel=0.35)
    assert sum(1 for e in leaves if e.period_ref not in serious) > 100 * SCALE  # others too
    grants = {
        (e.period_ref, e.fields["leave_from"]): e
        for e in year.events["detention.jsonl"]
        if e.kind is EventKind.LEAVE_GRANTED
    }
    assert len(grants) >= len(leaves)
    for g in grants.values():
        assert g.fields["leave_from"] - g.occurred_at >= timedelta(days=6)
        assert g.fields["leave_until"] > g.fields["leave_from"]


def test_escapes_and_deaths_are_rare(year: Year) -> None:
    kinds = Counter(e.kind for e in year.events["detention.jsonl"])
    assert 0 < kinds[EventKind.ESCAPE] < 0.005 * N
    assert kinds[EventKind.RECAPTURE] == kinds[EventKind.ESCAPE]
    deaths = len(year.truth) - N
    assert 0 < deaths < 0.004 * N
    assert kinds[EventKind.DEATH] == deaths


def test_municipalities_weighted_to_cities_some_unknown(year: Year) -> None:
    intakes = [e for e in year.events["detention.jsonl"] if e.kind is EventKind.INTAKE]
    residence = Counter(e.fields.get("residence_municipality") for e in intakes)
    unknown = residence.pop(None, 0) / len(intakes)
    assert 0.025 < unknown < 0.055
    top = [code for code, _ in residence.most_common(4)]
    assert set(top) == {"GM0363", "GM0599", "GM0518", "GM0344"}  # the four big cities
    assert residence["GM0363"] > 20 * median(residence.values())
    assert len(residence) > 300
    with_return = [s for s in year.states.values() if s.return_municipality]
    differs = sum(1 for s in with_return if s.return_municipality != s.residence_municipality)
    assert 0.03 < differs / len(with_return) < 0.2


def test_five_basic_conditions_near_monitor_nazorg(year: Year) -> None:
    # DF: Monitor Nazorg; release: ID 86, housing 78, income 2/3, problem debts 60 (in order 40)
    at_release = {"id": 0.86, "housing": 0.78, "income": 0.667, "debts": 0.40, "care": 0.75}
    at_intake = {"id": 0.85, "housing": 0.84, "income": 0.74, "debts": 0.33, "care": 0.80}
    for c in CONDITIONS:
        assert share(year.released, lambda r, c=c: r[f"{c}_release"] == "1") == pytest.approx(
            at_release[c], abs=0.02
        )
        assert share(year.truth, lambda r, c=c: r[f"{c}_intake"] == "1") == pytest.approx(
            at_intake[c], abs=0.02
        )


def test_recidivism_near_47_percent_and_lower_with_conditions_in_order(year: Year) -> None:
    soc = year.into_society
    # DF: 47.3 % reconvicted within 2 years (2010 cohort, WODC)
    assert share(soc, lambda r: r["reconvicted_2y"] == "1") == pytest.approx(0.473, abs=0.025)
    # DF: about a third back in detention within 2 years (SEOR 2016)
    assert share(soc, lambda r: r["custodial_2y"] == "1") == pytest.approx(1 / 3, abs=0.06)

    def ok(r: dict[str, str]) -> int:
        return sum(int(r[f"{c}_release"]) for c in CONDITIONS)

    good = share([r for r in soc if ok(r) >= 4], lambda r: r["reconvicted_2y"] == "1")
    poor = share([r for r in soc if ok(r) <= 2], lambda r: r["reconvicted_2y"] == "1")
    assert poor - good > 0.15
    debts = share(
        [r for r in soc if r["debts_release"] == "0"], lambda r: r["reconvicted_2y"] == "1"
    )
    no_debts = share(
        [r for r in soc if r["debts_release"] == "1"], lambda r: r["reconvicted_2y"] == "1"
    )
    assert debts / no_debts > 1.05  # DF measurement 7: problem debts, higher recidivism
    young = share(
        [r for r in soc if int(r["age_at_release"]) < 25], lambda r: r["reconvicted_2y"] == "1"
    )
    old = share(
        [r for r in soc if int(r["age_at_release"]) >= 45], lambda r: r["reconvicted_2y"] == "1"
    )
    assert young > old


def test_truth_recidivism_follows_from_the_reconviction_feed(year: Year) -> None:
    """Recompute the 2-year outcome from the feed itself: counting decisions, by offence date."""
    counting = {d.value for d in COUNTS_AS_RECIDIVISM}
    offences: dict[str, list[date]] = defaultdict(list)
    decisions = Counter()
    for e in year.events["reconvictions.jsonl"]:
        decisions[e.fields["decision"].value] += 1
        if e.fields["decision"].value in counting:
            offences[e.person_key].append(e.fields["offence_date"])
    for r in year.truth:
        end = date.fromisoformat(r["end_date"])
        hit = any(end < d <= end + timedelta(days=730) for d in offences.get(r["person_key"], []))
        assert hit == (r["reconvicted_2y"] == "1"), r["period"]
    # acquittals and technical dismissals occur and do not count
    assert decisions[CaseDecision.ACQUITTAL.value] > 0.02 * sum(decisions.values())
    assert decisions[CaseDecision.TECHNICAL_DISMISSAL.value] > 0.02 * sum(decisions.values())


def test_decision_mixes_agree_with_the_domain() -> None:
    # WODC: acquittals and technical dismissals are not recidivism
    assert {CaseDecision(d) for d in P.COUNTING_DECISIONS} == set(COUNTS_AS_RECIDIVISM)
    assert not {CaseDecision(d) for d in P.NON_COUNTING_DECISIONS} & COUNTS_AS_RECIDIVISM


def test_reconvictions_after_release_registered_weeks_to_months_later(year: Year) -> None:
    first_release: dict[str, date] = {}
    for r in year.into_society:
        d = date.fromisoformat(r["end_date"])
        first_release[r["person_key"]] = min(d, first_release.get(r["person_key"], d))
    lags = []
    for e in year.events["reconvictions.jsonl"]:
        offence = e.fields["offence_date"]
        assert offence > first_release[e.person_key]
        assert offence <= first_release[e.person_key] + timedelta(days=3 * 365 + 366)
        lag = (e.occurred_at.astimezone(AMS).date() - offence).days
        assert lag >= 7
        lags.append(lag)
    assert 20 <= median(lags) <= 120
    assert np.percentile(lags, 90) > 90


def test_victims_registered_for_serious_cases_with_fake_contacts(year: Year) -> None:
    victims = year.events["victims.jsonl"]
    per_period = Counter(e.period_ref for e in victims)
    serious = [r for r in year.released if r["serious"] == "1"]
    with_victims = share(serious, lambda r: per_period[r["period"]] > 0)
    assert 0.35 < with_victims < 0.75
    assert 1.3 < len(victims) / len(per_period) < 3
    assert share([{"w": e.fields["wants_information"]} for e in victims], lambda r: r["w"]) > 0.75
    spoke = sum(e.fields["spoke_in_court"] for e in victims) / len(victims)
    assert 0.1 < spoke < 0.5
    assert any(e.fields["relation"].value == "surviving_relative" for e in victims)
    assert len({e.fields["victim_ref"] for e in victims}) == len(victims)
    for e in victims:
        contact = e.fields["contact"]
        assert contact["name"].startswith("Slachtoffer ")
        assert contact["email"].endswith("@example.org")
        assert contact["phone"].startswith("0600")
        assert len(contact["phone"]) == 10
        assert contact["address"].startswith("Teststraat ")
        assert contact["address"].endswith(" Voorbeeld")
        assert e.occurred_at > year.states[e.period_ref or ""].intake_at


# --- messy ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def messy_year(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, SynthSummary]:
    clean = tmp_path_factory.mktemp("clean")
    messy = tmp_path_factory.mktemp("messy")
    generate(clean, releases=5_000, seed=21)
    rates = MessyRates(duplicates=0.02, out_of_order=0.05, malformed=0.01)
    return clean, messy, generate(messy, releases=5_000, seed=21, messy=rates)


def test_messy_output_has_the_requested_mess(
    messy_year: tuple[Path, Path, SynthSummary],
) -> None:
    clean_dir, messy_dir, summary = messy_year
    rd = refdata()
    failing = 0
    by_reason: Counter[str] = Counter()
    total_clean = 0
    for name in FEEDS:
        clean = (clean_dir / name).read_text("utf-8").splitlines()
        messy = (messy_dir / name).read_text("utf-8").splitlines()
        total_clean += len(clean)
        clean_set = set(clean)
        counts = Counter(messy)
        # every clean line is still there; exact duplicates come on top
        assert clean_set <= set(counts)
        dupes = sum(c - 1 for line, c in counts.items() if line in clean_set)
        extra = [line for line in messy if line not in clean_set]
        for line in extra:
            try:
                parse_line(line, 0, name, rd)
            except FeedError as e:
                failing += 1
                by_reason[e.reason] += 1
        if name == "detention.jsonl":
            assert dupes / len(clean) == pytest.approx(0.02, abs=0.006)
            assert len(extra) / len(clean) == pytest.approx(0.01, abs=0.004)
            firsts = list(dict.fromkeys(line for line in messy if line in clean_set))
            assert firsts != clean  # some lines moved
            moved = sum(1 for a, b in zip(firsts, clean, strict=True) if a != b)
            assert moved > 0.05 * len(clean)
    m = summary.messy
    assert m["malformed"] == pytest.approx(0.01 * total_clean, rel=0.2)
    assert m["duplicate"] == pytest.approx(0.02 * total_clean, rel=0.15)
    assert m["out_of_order"] == pytest.approx(0.05 * total_clean, rel=0.1)
    # all malformed lines fail to parse, except those dated before their period's intake
    parses = m.get("malformed.release_before_intake", 0)
    assert failing == m["malformed"] - parses
    assert sum(m[f"malformed.{t}"] for t in FAILS_PARSE if f"malformed.{t}" in m) == failing
    assert {"invalid_json", "unknown_kind", "missing_field", "invalid_bsn", "naive_timestamp",
            "unknown_municipality"} <= set(by_reason)  # fmt: skip


def test_messy_release_before_intake_breaks_the_sequence(
    messy_year: tuple[Path, Path, SynthSummary],
) -> None:
    clean_dir, messy_dir, summary = messy_year
    assert summary.messy.get("malformed.release_before_intake", 0) > 0
    rd = refdata()
    clean = set((clean_dir / "detention.jsonl").read_text("utf-8").splitlines())
    by_period: dict[str, list[FeedEvent]] = defaultdict(list)
    suspects: list[FeedEvent] = []
    for line in (messy_dir / "detention.jsonl").read_text("utf-8").splitlines():
        try:
            e = parse_line(line, 0, "detention.jsonl", rd)
        except FeedError:
            continue
        if line in clean:
            by_period[e.period_ref or ""].append(e)
        else:
            suspects.append(e)
    assert len(suspects) == summary.messy["malformed.release_before_intake"]
    for e in suspects:
        with pytest.raises(FeedError) as info:
            fold([*by_period[e.period_ref or ""], e])
        assert info.value.reason == "sequence"
