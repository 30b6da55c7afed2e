"""The parameter file: every parameter carries a source, amounts are indexed with the CPI
series, assumptions are marked, and bad files are refused with a clear message."""

from __future__ import annotations

import math
import tomllib
from importlib import resources
from typing import Any

import numpy as np
import pytest

from terugkeer.mkba import params, scenario
from terugkeer.mkba.errors import MkbaError


def shipped() -> dict[str, Any]:
    ref = resources.files("terugkeer.mkba") / "parameters" / params.DEFAULT_FILE
    return tomllib.loads(ref.read_text("utf-8"))


def test_the_shipped_file_is_complete() -> None:
    pset = params.load()
    assert pset.version
    assert pset.price_year == 2024
    for pop in ("adult", "jji"):
        ps = pset.for_population(pop)
        for p in ps.values():
            assert p.source.strip()
            assert p.unit.strip()
            assert p.distribution in params.DISTRIBUTIONS
            assert (p.price_year is not None) == (p.kind == "amount")
            assert p.assumption == p.source.startswith("assumption") or not p.assumption
    assert any(p.assumption for p in pset.params.values())


def test_cpi_indexing_by_hand() -> None:
    pset = params.load()
    by_hand = 1.014 * 1.017 * 1.026 * 1.013 * 1.027 * 1.10 * 1.038 * 1.033  # 2017-2024
    assert params.cpi_factor(pset.cpi, 2016, 2024) == pytest.approx(by_hand, rel=1e-12)
    assert params.cpi_factor(pset.cpi, 2024, 2016) == pytest.approx(1 / by_hand, rel=1e-12)
    day = pset.params["prison_day_adult"]
    assert day.indexed_from == 250.0
    assert day.price_year == 2016
    assert day.value == pytest.approx(250.0 * by_hand)
    assert day.low == pytest.approx(235.0 * by_hand)
    with pytest.raises(MkbaError, match="outside the CPI series"):
        params.cpi_factor(pset.cpi, 2005, 2024)


def _with(change: dict[str, Any]) -> dict[str, Any]:
    data = shipped()
    data["parameters"]["chain_cost_per_case"] = {
        **data["parameters"]["chain_cost_per_case"],
        **change,
    }
    return data


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"source": ""}, "source is missing"),
        ({"distribution": "cauchy"}, "distribution must be one of"),
        ({"price_year": None}, "needs a price_year"),
        ({"price_year": 2005}, "outside the CPI series"),
        ({"distribution": "normal", "sd": None}, "needs sd"),
        ({"distribution": "triangular", "low": 6000.0, "high": 7000.0}, "low ≤ value ≤ high"),
        ({"value": "veel"}, "must be a number"),
        ({"colour": "red"}, "unknown field"),
        ({"assumption": "yes"}, "true or false"),
    ],
)
def test_bad_parameters_are_refused_by_name(change: dict[str, Any], message: str) -> None:
    data = _with({k: v for k, v in change.items() if v is not None})
    for k, v in change.items():
        if v is None:
            data["parameters"]["chain_cost_per_case"].pop(k, None)
    with pytest.raises(MkbaError, match=message) as e:
        params.parse_set(data)
    assert "chain_cost_per_case" in str(e.value) or "CPI" in str(e.value)


def test_probabilities_and_beta() -> None:
    data = shipped()
    data["populations"]["adult"]["reconviction_2y"]["value"] = 1.4
    with pytest.raises(MkbaError, match="between 0 and 1"):
        params.parse_set(data)
    data = shipped()
    data["populations"]["adult"]["reconviction_2y"]["sd"] = 0.6
    with pytest.raises(MkbaError, match="sd²"):
        params.parse_set(data)


def test_draws_follow_their_distributions() -> None:
    pset = params.load()
    ps = pset.for_population("adult")
    x = params.draw(ps, 40000, np.random.default_rng(1))
    p2y = ps["reconviction_2y"]
    assert x["reconviction_2y"].mean() == pytest.approx(p2y.value, abs=0.001)
    assert x["reconviction_2y"].std() == pytest.approx(p2y.sd, rel=0.05)
    day = ps["prison_day_adult"]
    assert x["prison_day_adult"].min() >= day.low
    assert x["prison_day_adult"].max() <= day.high
    assert np.all(x["social_assistance_month"] == ps["social_assistance_month"].value)
    chain = ps["chain_cost_per_case"]
    assert np.median(x["chain_cost_per_case"]) == pytest.approx(chain.value, rel=0.02)
    assert chain.quantile(0.5) == pytest.approx(chain.value)
    assert chain.quantile(0.95) == pytest.approx(chain.value * math.exp(1.644854 * 0.5), rel=1e-5)


def test_scenarios_ship_and_bad_ones_are_refused() -> None:
    assert {"pit-amsterdam", "npi-prison", "gemeente-registratie"} <= set(scenario.shipped())
    for name in scenario.shipped():
        assert scenario.load(name).title
    with pytest.raises(MkbaError, match="no scenario"):
        scenario.load("nope")
    good = {
        "name": "x",
        "title": "X",
        "effect": {"measure": "odds_ratio", "value": 0.9, "source": "s"},
        "costs": {"value": 10.0, "unit": "EUR/p", "price_year": 2020, "source": "s"},
    }
    assert scenario.parse(good).setup.effect_measure == "odds_ratio"
    for bad, message in [
        ({**good, "effect": {**good["effect"], "measure": "cohen"}}, "effect measure"),
        ({**good, "horizon_months": 0}, "horizon_months"),
        ({**good, "timing": "later"}, "timing"),
        ({**good, "colour": 1}, "unknown key"),
        ({**good, "costs": {**good["costs"], "unit": "uur"}}, "amount in euros"),
        ({k: v for k, v in good.items() if k != "costs"}, "costs"),
    ]:
        with pytest.raises(MkbaError, match=message):
            scenario.parse(bad)


def test_overrides_are_indexed_and_checked() -> None:
    from terugkeer.mkba import analysis

    base = {
        "name": "x",
        "title": "X",
        "effect": {"measure": "hazard_ratio", "value": 0.9, "source": "s"},
        "costs": {"value": 10.0, "unit": "EUR/p", "price_year": 2024, "source": "s"},
    }
    day = {"value": 300.0, "unit": "EUR/dag", "price_year": 2016, "source": "elsewhere"}
    prep = analysis.prepare(scenario.parse({**base, "parameters": {"prison_day_adult": day}}))
    pset = params.load()
    assert prep.params["prison_day_adult"].value == pytest.approx(
        300.0 * params.cpi_factor(pset.cpi, 2016, 2024)
    )
    assert prep.params["prison_day_adult"].source == "elsewhere"
    share = {"value": 0.5, "unit": "aandeel", "kind": "share", "source": "s"}
    with pytest.raises(MkbaError, match="add up to"):
        analysis.prepare(scenario.parse({**base, "parameters": {"share_zeden": share}}))
    with pytest.raises(MkbaError, match="not in the parameter file"):
        analysis.prepare(scenario.parse({**base, "parameters": {"moon_phase": share}}))
