"""Estimates from the store and the registered scenario, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from terugkeer.mkba import analysis, estimate, params, runner, scenario
from terugkeer.mkba.errors import MkbaError
from tests.mkba.store import GM, PROGRAMME, build


def test_population_estimates_are_the_data(engine: Engine) -> None:
    truth = build(engine)
    file_params = params.load().for_population("adult")
    with engine.connect() as conn:
        est = estimate.population(conn, "adult", file_params)
    assert est.releases == truth.releases
    assert est.complete_follow_up
    assert est.params["reconviction_2y"].value == pytest.approx(truth.reconvicted / truth.releases)
    assert est.params["detention_2y"].value == pytest.approx(truth.back / truth.releases)
    assert est.params["months_per_return"].value == pytest.approx(
        sum(truth.return_months) / len(truth.return_months), rel=1e-6
    )
    assert est.params["work_at_release"].value == pytest.approx(truth.work / truth.known_income)
    assert est.params["benefit_at_release"].value == pytest.approx(
        truth.benefit / truth.known_income
    )
    assert "terugkeer-registratie" in est.params["reconviction_2y"].source
    assert not est.params["reconviction_2y"].assumption
    with engine.connect() as conn:  # no JJI releases: the file's values stay, and it says so
        jji = estimate.population(conn, "jji", params.load().for_population("jji"))
    assert jji.params == {}
    assert any("only 0 releases" in n for n in jji.notes)


def test_registered_costs(engine: Engine) -> None:
    truth = build(engine)
    with engine.connect() as conn:
        reg = estimate.registered_costs(conn, "auto", "auto")
        with pytest.raises(MkbaError, match="no programme activities"):
            estimate.registered_costs(conn, "GM0014", "auto")
        with pytest.raises(MkbaError, match="small-cell rule"):
            estimate.registered_costs(conn, GM, "Aanpak die er niet is")
    assert (reg.municipality, reg.programme) == (GM, PROGRAMME)
    assert reg.cases == truth.programme_cases
    assert reg.cost_per_case == pytest.approx(truth.programme_cost / truth.programme_cases)
    assert reg.municipal_share == pytest.approx(1 - truth.central_cost / truth.programme_cost)


def test_the_registered_scenario_runs_on_the_store(engine: Engine) -> None:
    truth = build(engine)
    sc = scenario.load("gemeente-registratie")
    with pytest.raises(MkbaError, match="reads the store"):
        analysis.prepare(sc)
    result = runner.run(sc, draws=200, seed=2, engine=engine)
    got = result.as_json()
    assert got["scenario"]["participants"] == truth.programme_cases
    assert "reconviction_2y" in got["parameters"]["from_store"]
    assert got["per_participant"]["society"]["costs"] > 0
    assert got["seed"] == 2
    # aggregates only: nothing of a person in the result
    text = str(got)
    assert "T000001" not in text
    assert "P1'" not in text


def test_the_monitors_association_as_the_effect(engine: Engine) -> None:
    build(engine)
    sc = scenario.load("monitor-basisvoorwaarden")
    assert sc.monitor_effect == "per basisvoorwaarde meer op orde"
    prep = analysis.prepare(sc, engine=engine)
    effect = prep.params["effect"]
    assert effect.source.startswith("terugkeer-monitor: gecorrigeerde hazard ratio")
    assert "samenhang, geen effect" in effect.source
    assert effect.low is not None
    assert effect.high is not None
    assert effect.low < effect.value < effect.high
    assert effect.distribution == "lognormal"
    with pytest.raises(MkbaError, match="no link"):
        estimate.monitor_effect(engine, "per maanstand")


def test_a_suppressed_association_leaves_the_stated_effect(engine: Engine) -> None:
    build(engine, n=12)  # fewer people than the monitor's minimum cell
    sc = scenario.load("monitor-basisvoorwaarden")
    prep = analysis.prepare(sc, engine=engine)
    assert prep.params["effect"].value == sc.effect.value
    assert any("monitor gives no hazard ratio" in n for n in prep.notes)
