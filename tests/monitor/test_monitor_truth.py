"""On a small synthetic year ingested into each store, the monitor's observed 2-year
recidivism per cohort equals the generator's ground truth (truth.csv) exactly; the report,
the extract and its audit row work on the same store."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rich.console import Console
from sqlalchemy import Engine, select

from terugkeer.demo.registration import demo_step
from terugkeer.detention.tables import persons
from terugkeer.intake import ingest_files
from terugkeer.monitor.cohorts import cohort_columns, dimension_values
from terugkeer.monitor.extract import write_extract
from terugkeer.monitor.frame import load
from terugkeer.monitor.indicators import STATUS_AXIS, statuses
from terugkeer.monitor.recidivism import (
    CRITERION,
    OBSERVED,
    followup,
    prevalence,
    recidivism_table,
)
from terugkeer.monitor.report import compute, write_report
from terugkeer.monitor.suppress import codes, count_codes, suppress_cube
from terugkeer.security.actor import Actor
from terugkeer.security.tables import audit_log
from terugkeer.synth import generate
from tests.conftest import empty_all
from tests.monitor.test_suppress import linear_attack

RELEASES = 400
CUTOFF = date(2029, 6, 30)  # the year is 2024: 2 years + lag after every release, all registered


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Engine, Path]]:
    name = "_sqlite_engine" if request.param == "sqlite" else "_pg_engine"
    engine: Engine = request.getfixturevalue(name)
    empty_all(engine)
    work = tmp_path_factory.mktemp(f"monitor-{request.param}")
    synth = generate(work / "feeds", releases=RELEASES, seed=7)
    feeds = [synth.files[f"{n}.jsonl"] for n in ("detention", "victims", "reconvictions")]
    ingest_files(engine, feeds)
    demo_step(engine, work / "feeds", work, Console(file=None, quiet=True), seed=7, messy=False)
    yield engine, work
    empty_all(engine)


def truth(work: Path) -> pd.DataFrame:
    with (work / "feeds" / "truth.csv").open(encoding="utf-8") as f:
        df = pd.DataFrame(list(csv.DictReader(f)))
    df = df[(df["end"] == "release") & (df["release_kind"] != "into_tbs")].copy()
    end = pd.to_datetime(df["end_date"])
    df["quarter"] = end.dt.year.astype(str) + "-K" + end.dt.quarter.astype(str)
    df["reconvicted_2y"] = df["reconvicted_2y"].astype(int)
    return df


def test_observed_two_year_share_equals_the_truth(store: tuple[Engine, Path]) -> None:
    engine, work = store
    data = load(engine, CUTOFF)
    fu = followup(data, CRITERION["general"], 6)
    cols = cohort_columns(data)
    prev = prevalence(fu, cols.loc[fu.index, "quarter"])
    two = prev[prev["horizon"] == "2 jaar"].set_index("group")
    expected = truth(work).groupby("quarter")["reconvicted_2y"].agg(["size", "sum"])
    assert list(two.index) == list(expected.index)
    assert (two["label"] == OBSERVED).all()  # follow-up complete: the plain share
    for quarter, row in expected.iterrows():
        assert two.loc[quarter, "persons"] == row["size"]
        assert two.loc[quarter, "events"] == row["sum"]
        assert two.loc[quarter, "share"] == row["sum"] / row["size"]
    # the published table (suppressed cubes) carries the same figures where it publishes them
    table = recidivism_table(data, cols, 10, 6)
    published = table[
        (table["criterium"] == "general")
        & (table["termijn"] == "2 jaar")
        & (table["dimensie"] == "quarter")
        & (table["jaar"] == "2024")
    ].set_index("waarde")
    shown = 0
    for quarter, row in expected.iterrows():
        cell = published.loc[quarter]
        if cell["aandeel"] is not None:
            assert cell["personen"] == row["size"]
            assert cell["recidivisten"] == row["sum"]
            assert cell["aandeel"] == row["sum"] / row["size"]
            assert cell["soort"] == OBSERVED
            shown += 1
    assert shown == len(expected)  # quarters of ~150 releases: nothing suppressed
    total = published.loc["totaal"]
    assert total["aandeel"] == expected["sum"].sum() / expected["size"].sum()


def test_a_cut_off_inside_the_follow_up_makes_it_estimated(store: tuple[Engine, Path]) -> None:
    engine, _ = store
    data = load(engine, date(2026, 8, 31))
    fu = followup(data, CRITERION["general"], 6)
    assert set(fu.loc[~fu["event"], "censor"]) <= {"cutoff", "death", "detention"}
    prev = prevalence(fu, cohort_columns(data).loc[fu.index, "year"])
    labels = dict(zip(prev["horizon"], prev["label"], strict=True))
    assert labels["1 jaar"] == OBSERVED
    assert labels["2 jaar"] != OBSERVED


def test_report_and_extract(store: tuple[Engine, Path], tmp_path: Path) -> None:
    engine, _ = store
    figures = compute(engine, cutoff=CUTOFF, k=10)
    with pytest.raises(ValueError, match="a release year in the data"):
        write_report(figures, tmp_path / "none", "1999")
    files = {p.name for p in write_report(figures, tmp_path / "report", "2024")}
    assert {"index.html", "monitor.xlsx", "recidive.csv", "km_year.svg", "km_year.png"} <= files
    html = (tmp_path / "report" / "index.html").read_text(encoding="utf-8")
    assert "Samenhang, geen effect" in html
    # every published count is at least k
    for name in ("indicatoren.csv", "recidive.csv"):
        table = pd.read_csv(tmp_path / "report" / name)
        for col in ("op_orde", "niet_op_orde", "onbekend", "personen", "recidivisten"):
            if col in table:
                assert (table[col].dropna() >= 10).all()
    # the curves' intervals give no count away: inverted as an attacker would (the
    # Greenwood variance from the log(-log) interval, and each step's drop), every step
    # between two published points holds at least k events
    curves = pd.read_csv(tmp_path / "report" / "km_curves.csv")
    steps = 0
    for _, c in curves.groupby(["indeling", "group"]):
        assert c["days"].is_monotonic_increasing
        s = 1.0 - c["cumulative"].to_numpy()
        lower_s = 1.0 - c["upper"].to_numpy()
        sigma = (np.log(-np.log(lower_s)) - np.log(-np.log(s))) / 1.959964
        greenwood = (sigma * np.log(s)) ** 2  # the sum of d / (n (n - d)) up to each point
        s, greenwood = np.r_[1.0, s], np.r_[0.0, greenwood]  # from the start: nobody yet
        q = 1.0 - s[1:] / s[:-1]
        drops = q > 0  # a point where the curve does not drop holds no event
        n = q[drops] / ((1.0 - q[drops]) * np.diff(greenwood)[drops])
        events = q[drops] * n
        assert (events >= 10 - 0.5).all(), events.min()
        steps += len(events)
    assert steps > 0
    actor = Actor.cli("onderzoeker", "test extract")
    result = write_extract(
        engine, tmp_path / "x.csv", actor=actor, cutoff=CUTOFF, keys="k1:0123456789abcdef0123"
    )
    text = (tmp_path / "x.csv").read_text(encoding="utf-8")
    extract = pd.read_csv(tmp_path / "x.csv")
    assert result.rows == len(extract) > 0
    assert set(extract["key_id"]) == {"k1"}
    assert "birth_date" not in extract.columns
    assert "DP0" not in text
    assert "DJ" not in text
    with engine.connect() as conn:
        bsns = [b for (b,) in conn.execute(select(persons.c.bsn)) if b]
        rows = conn.execute(
            select(audit_log.c.actor, audit_log.c.record_type).where(
                audit_log.c.record_type == "monitor_extract"
            )
        ).all()
    assert not any(b in text for b in bsns[:200])
    assert ("cli:onderzoeker", "monitor_extract") in [tuple(r) for r in rows]
    # rotating the key gives other pseudonyms
    again = write_extract(
        engine,
        tmp_path / "y.csv",
        actor=actor,
        cutoff=CUTOFF,
        keys="k1:0123456789abcdef0123,k2:fedcba9876543210fedc",
    )
    assert again.key_id == "k2"
    assert set(pd.read_csv(tmp_path / "y.csv")["person"]).isdisjoint(extract["person"])


def test_the_attack_pins_no_cell_of_the_synthetic_tables(store: tuple[Engine, Path]) -> None:
    """The linear-programming attack of test_suppress on real tables of the synthetic year:
    ID at release by each dimension (by municipality: many small cells)."""
    engine, _ = store
    data = load(engine, CUTOFF)
    cols = cohort_columns(data)
    rel = data.released
    index = rel.index[rel["has_case"].to_numpy()]
    status = statuses(data, index)[("id", "release")]
    attacked = 0
    for dim in ("population", "age_band", "stay", "offence", "municipality"):
        values = dimension_values(dim, cols.loc[index])
        full = count_codes(
            [codes(cols.loc[index, dim], values), codes(status, STATUS_AXIS)], (len(values), 3)
        )
        hidden = suppress_cube(full, 10)
        linear_attack(full, hidden)
        attacked += int(hidden.sum())
    assert attacked > 20
