"""The model and the analysis: analytic properties, the per-draw reference, Monte Carlo, the
break-even effect, sensitivity, and a comparison with SEOR 2016."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from terugkeer.mkba import analysis, discount, effect, params, reference, scenario
from terugkeer.mkba.discount import F64
from terugkeer.mkba.errors import MkbaError
from terugkeer.mkba.model import ITEMS, PERSPECTIVES, SIGNS, SOCIETY, simulate


@pytest.fixture(scope="module")
def pit() -> analysis.Prepared:
    return analysis.prepare(scenario.load("pit-amsterdam"))


@pytest.fixture(scope="module")
def npi() -> analysis.Prepared:
    return analysis.prepare(scenario.load("npi-prison"))


def point(prep: analysis.Prepared, n: int = 1, **values: float) -> dict[str, F64]:
    x = params.point(prep.params, n)
    for k, v in values.items():
        x[k] = np.full(n, v)
    return x


@pytest.mark.parametrize("name", ["pit-amsterdam", "npi-prison"])
def test_no_effect_gives_no_benefit(name: str) -> None:
    prep = analysis.prepare(scenario.load(name))
    none = effect.NO_EFFECT[prep.setup.effect_measure]
    out = simulate(point(prep, effect=none, work_effect=1.0, programme_cost=5000.0), prep.setup)
    programme = [ITEMS.index("programme_central"), ITEMS.index("programme_municipal")]
    others = [i for i in range(len(ITEMS)) if i not in programme]
    assert np.all(out.items[:, others] == 0)
    assert np.all(out.benefits == 0)
    assert out.net[0, SOCIETY] == pytest.approx(-out.costs[0, SOCIETY])
    assert out.costs[0, SOCIETY] > 0
    assert out.cases is not None
    assert out.cases[0] == 0


def test_results_are_linear_in_costs(pit: analysis.Prepared) -> None:
    costs = np.array([0.0, 1000.0, 2000.0, 7000.0])
    x = point(pit, 4)
    x["programme_cost"] = costs
    npv = simulate(x, pit.setup).net[:, SOCIETY]
    slope = (npv[1] - npv[0]) / 1000
    assert npv[2] - npv[0] == pytest.approx(2000 * slope, rel=1e-9)
    assert npv[3] - npv[0] == pytest.approx(7000 * slope, rel=1e-9)
    assert slope < 0
    # every amount (unit costs and the programme) times k: every result times k
    amounts = {n for n, p in pit.params.items() if p.kind == "amount"}
    y = point(pit, 1)
    z = {k: (v * 3 if k in amounts else v) for k, v in y.items()}
    a, b = simulate(y, pit.setup), simulate(z, pit.setup)
    assert b.net == pytest.approx(3 * a.net, rel=1e-9)


def test_society_is_the_sum_of_the_perspectives_and_transfers_cancel(
    pit: analysis.Prepared,
) -> None:
    (x,) = analysis.draw_inputs(pit, 64, 5)
    out = simulate(x, pit.setup)
    parts = out.net[:, :SOCIETY].sum(axis=1)
    assert out.net[:, SOCIETY] == pytest.approx(parts, rel=1e-9, abs=1e-6)
    for transfer in ("benefit_paid", "taxes", "net_wage"):
        assert SIGNS[ITEMS.index(transfer), SOCIETY] == 0


def test_the_vectorised_model_equals_the_per_draw_loop(npi: analysis.Prepared) -> None:
    (x,) = analysis.draw_inputs(npi, 40, 11)
    out = simulate(x, npi.setup)
    for i in range(40):
        one = reference.simulate_one({k: float(v[i]) for k, v in x.items()}, npi.setup)
        got = out.net[i]
        want = np.array([one[p] for p in PERSPECTIVES])
        assert got == pytest.approx(want, rel=1e-9, abs=1e-7)


def test_less_reconviction_saves_detention_and_cases(pit: analysis.Prepared) -> None:
    x = point(pit, 2, work_effect=1.0)
    x["effect"] = np.array([1.0, 0.7])
    out = simulate(x, pit.setup)
    assert out.cases is not None
    assert out.detention_months is not None
    assert out.cases[1] < 0
    assert out.detention_months[1] < 0
    assert out.net[1, PERSPECTIVES.index("victims")] > 0


def test_monte_carlo_mean_approaches_the_deterministic_result() -> None:
    # only amounts uncertain (the model is linear in them) and symmetric around the point
    # value: the Monte Carlo mean is an unbiased estimate of the deterministic result
    prep = analysis.prepare(scenario.load("npi-prison"))
    fixed = {
        n: (
            replace(p, distribution="normal", sd=0.2 * p.value, low=None, high=None, sigma=None)
            if p.kind == "amount" and p.value > 0
            else replace(p, distribution="fixed")
        )
        for n, p in prep.params.items()
    }
    prep = replace(prep, params=fixed)
    det = analysis.deterministic(prep).perspectives["society"].npv
    errors = []
    for draws in (500, 8000, 60000):
        mc = analysis.monte_carlo(prep, draws, seed=7)
        x = mc.net[:, SOCIETY]
        se = x.std(ddof=1) / np.sqrt(draws)
        assert abs(x.mean() - det) < 4.5 * se
        errors.append(se)
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < abs(det) * 0.01


def test_monte_carlo_is_reproducible_and_independent_of_workers(pit: analysis.Prepared) -> None:
    a = analysis.monte_carlo(pit, 10000, seed=3)
    b = analysis.monte_carlo(pit, 10000, seed=3, workers=2)
    c = analysis.monte_carlo(pit, 10000, seed=4)
    assert a.seed == 3
    assert np.array_equal(a.net, b.net)
    assert not np.array_equal(a.net, c.net)
    # the chunks are independent streams: the first chunk is the same for more draws
    d = analysis.monte_carlo(pit, 9000, seed=3)
    assert np.array_equal(a.net[: analysis.CHUNK], d.net[: analysis.CHUNK])
    s = a.summary()["society"]
    assert s["p5"] is not None
    assert s["p95"] is not None
    assert s["p5"] < s["p50"] < s["p95"]
    assert 0 <= (s["p_benefits_exceed_costs"] or 0) <= 1


@pytest.mark.parametrize("name", ["pit-amsterdam", "npi-prison"])
def test_the_break_even_effect_gives_npv_zero(name: str) -> None:
    prep = analysis.prepare(scenario.load(name))
    be = analysis.break_even(prep)
    assert be.value is not None
    assert be.hazard_ratio is not None
    at = simulate(point(prep, effect=be.value), prep.setup).net[0, SOCIETY]
    cost = analysis.deterministic(prep).perspectives["society"].costs
    assert abs(at) < 1e-4 * cost
    # a stronger effect than break-even pays, a weaker one does not
    stronger = be.hazard_ratio * 0.9
    x = point(
        prep,
        effect=float(
            effect.from_hazard_ratio(
                prep.setup.effect_measure, np.array([stronger]), np.array([be.p0])
            )[0]
        ),
    )
    assert simulate(x, prep.setup).net[0, SOCIETY] > 0


def test_break_even_absent_when_even_no_reconviction_cannot_pay(pit: analysis.Prepared) -> None:
    x = point(pit, 1, programme_cost=1e9, work_effect=1.0)
    assert np.isnan(analysis.break_even_hr(pit, x)[0])


def test_break_even_uncertainty(pit: analysis.Prepared) -> None:
    mc = analysis.monte_carlo(pit, 300, seed=1)
    be = analysis.break_even(pit, mc)
    assert be.draws == 300
    assert 0 < be.found <= 1
    assert be.percentiles["p5"] <= be.percentiles["p50"] <= be.percentiles["p95"]


def test_tornado_and_grid(pit: analysis.Prepared) -> None:
    base, bars = analysis.tornado(pit)
    assert base == pytest.approx(analysis.deterministic(pit).perspectives["society"].npv)
    assert [b.swing for b in bars] == sorted((b.swing for b in bars), reverse=True)
    names = {b.name for b in bars}
    assert {"effect", "programme_cost"} <= names
    cost = next(b for b in bars if b.name == "programme_cost")
    assert cost.npv_low > base > cost.npv_high  # higher costs, lower NPV
    g = analysis.grid(pit, "effect", "programme_cost", points=5)
    npv = np.array(g.npv)
    assert npv.shape == (5, 5)
    assert np.all(np.diff(npv, axis=0) < 0)  # more costs: less
    assert np.all(np.diff(npv, axis=1) < 0)  # a higher hazard ratio (less effect): less


def test_effect_conversions() -> None:
    p0 = np.array([0.473])
    for measure in effect.MEASURES:
        none = np.array([effect.NO_EFFECT[measure]])
        assert effect.to_hazard_ratio(measure, none, p0)[0] == pytest.approx(1.0)
        hr = effect.to_hazard_ratio(measure, np.array([0.8 if measure != "smd" else 0.2]), p0)
        assert hr[0] < 1
        back = effect.from_hazard_ratio(measure, hr, p0)
        assert back[0] == pytest.approx(0.8 if measure != "smd" else 0.2, rel=1e-9)
    # relative risk on the two-year chance; Chinn (2000): ln OR = d * pi / sqrt(3)
    assert effect.to_p1("relative_risk", np.array([0.9]), p0)[0] == pytest.approx(0.9 * 0.473)
    d = 0.5
    odds = np.exp(-d * np.pi / np.sqrt(3))
    p1 = effect.to_p1("smd", np.array([d]), p0)[0]
    assert (p1 / (1 - p1)) / (0.473 / (1 - 0.473)) == pytest.approx(odds)


def test_seor_2016_order_of_magnitude(npi: analysis.Prepared) -> None:
    """SEOR (2016) found benefits "of the same order as the costs". With its per-person cost
    of reintegration during detention (adults €2,200–5,300) and a small effect, the society
    benefit-cost ratio lies within a factor 3 of 1; the government's (Rijk and municipalities:
    SEOR counted savings on detention and benefits) as well. See docs/mkba.md."""
    det = analysis.deterministic(npi)
    society = det.perspectives["society"]
    assert society.bc_ratio is not None
    assert 1 / 3 < society.bc_ratio < 3
    gov_b = (
        det.perspectives["central_government"].benefits
        + det.perspectives["municipalities"].benefits
    )
    gov_c = det.perspectives["central_government"].costs + det.perspectives["municipalities"].costs
    assert 1 / 3 < gov_b / gov_c < 3


def test_a_perspectives_irr_zeroes_its_monthly_npv(pit: analysis.Prepared) -> None:
    det = analysis.deterministic(pit)
    monthly = det.outcome.monthly_net
    assert monthly is not None
    society = det.perspectives["society"]
    assert society.irr is not None
    pv = discount.present_value(monthly[:, SOCIETY], society.irr, periods_per_year=12)
    assert abs(float(pv)) < 1e-6 * np.abs(monthly[:, SOCIETY]).sum()
    # the monthly amounts, discounted at the scenario's rate and timing, are the NPV that
    # the model accumulates month by month
    npv = discount.present_value(
        monthly[:, SOCIETY], pit.setup.rate, pit.setup.timing, periods_per_year=12
    )
    assert float(npv) == pytest.approx(society.npv, rel=1e-9)
    assert det.perspectives["victims"].irr is None  # bears no costs


def test_a_jji_scenario_uses_the_juvenile_parameters() -> None:
    data = {
        "name": "jji-test",
        "title": "JJI",
        "population": "jji",
        "effect": {"measure": "relative_risk", "value": 0.9, "source": "test"},
        "costs": {"value": 20000.0, "unit": "EUR/deelnemer", "price_year": 2016, "source": "t"},
    }
    prep = analysis.prepare(scenario.parse(data))
    assert (
        prep.params["reconviction_2y"].value
        == params.load().populations["jji"]["reconviction_2y"].value
    )
    det = analysis.deterministic(prep)
    out = det.outcome
    assert out.detention_months is not None
    day = prep.params["prison_day_jji"].value
    assert np.isfinite(out.items).all()
    assert det.perspectives["society"].costs > 0
    # the juvenile day price: the detention item scales with it, not with the adult one
    x = point(prep)
    y = {
        **x,
        "prison_day_jji": x["prison_day_jji"] * 2,
        "prison_day_adult": x["prison_day_adult"] * 5,
    }
    a, b = simulate(x, prep.setup), simulate(y, prep.setup)
    i = ITEMS.index("detention")
    assert b.items[0, i] == pytest.approx(2 * a.items[0, i])
    assert day > prep.params["prison_day_adult"].value


@pytest.mark.parametrize(
    ("value", "ci95"),
    [(2.5, None), (1.2, [1.1, 3.0])],  # the value, or its interval's top
)
def test_a_relative_risk_that_takes_the_chance_past_1_is_refused(
    value: float, ci95: list[float] | None
) -> None:
    """It was clipped into a hazard ratio of 43 and a benefit-cost ratio of -26."""
    eff: dict[str, object] = {"measure": "relative_risk", "value": value, "source": "test"}
    if ci95:
        eff |= {"distribution": "lognormal", "ci95": ci95}
    data = {
        "name": "rr-test",
        "title": "RR",
        "effect": eff,
        "costs": {"value": 2000.0, "unit": "EUR/deelnemer", "price_year": 2016, "source": "t"},
    }
    with pytest.raises(MkbaError, match="must stay below 1"):
        analysis.prepare(scenario.parse(data))
    data["effect"] = {"measure": "relative_risk", "value": 0.9, "source": "test"}
    assert analysis.prepare(scenario.parse(data)).params["effect"].value == 0.9
