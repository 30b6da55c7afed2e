"""The logistic regression against known results, and the corrected rates' arithmetic."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from terugkeer.monitor.standardise import corrected_rates, fit_logistic, horizon_outcome

# the 23 space-shuttle flights before Challenger: launch temperature (°F) and O-ring distress
# (Dalal, Fowlkes and Hoadley, JASA 1989). R: glm(distress ~ temp, binomial) gives
# (Intercept) 15.0429 (SE 7.3786), temp -0.2322 (SE 0.1082), residual deviance 20.315 on 21 df.
TEMP = [66, 70, 69, 68, 67, 72, 73, 70, 57, 63, 70, 78, 67, 53, 67, 75, 70, 81, 76, 79, 75, 76, 58]
DISTRESS = [0, 1, 0, 0, 0, 0, 0, 0, 1, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0, 1]


def test_logistic_reproduces_the_published_challenger_fit() -> None:
    m = fit_logistic(np.array(TEMP, dtype=float), DISTRESS, ["temp"])
    assert m.converged
    assert m.names == ["intercept", "temp"]
    assert round(m.coef[0], 4) == 15.0429
    assert round(m.coef[1], 4) == -0.2322
    assert round(m.se[0], 4) == 7.3786
    assert round(m.se[1], 4) == 0.1082
    assert round(-2 * m.log_likelihood, 3) == 20.315


def test_logistic_with_one_binary_covariate_is_the_odds_ratio() -> None:
    # 2x2 table: x=0: 3 of 10, x=1: 12 of 20; the MLE is closed-form
    x = np.array([0] * 10 + [1] * 20, dtype=float)
    y = np.array([1] * 3 + [0] * 7 + [1] * 12 + [0] * 8)
    m = fit_logistic(x, y)
    assert m.coef[0] == pytest.approx(math.log(3 / 7), abs=1e-12)
    assert m.coef[1] == pytest.approx(math.log((12 / 8) / (3 / 7)), abs=1e-12)
    assert m.se[1] == pytest.approx(math.sqrt(1 / 3 + 1 / 7 + 1 / 12 + 1 / 8), abs=1e-9)
    assert m.predict(np.array([0.0, 1.0])) == pytest.approx([0.3, 0.6], abs=1e-12)


def test_logistic_refuses_collinear_columns_and_reports_separation() -> None:
    x = np.column_stack([np.arange(6.0), 2 * np.arange(6.0)])
    with pytest.raises(ValueError, match="collinear"):
        fit_logistic(x, [0, 1, 0, 1, 0, 1])
    separated = fit_logistic(np.arange(6.0), [0, 0, 0, 1, 1, 1], max_iter=25)
    assert not separated.converged


def _cohort(year: int, cells: dict[tuple[str, str], tuple[int, int]]) -> pd.DataFrame:
    """Members per (sex, record) cell: (number, of whom reoffended)."""
    rows = []
    for (sex, record), (n, k) in cells.items():
        rows += [(year, sex, record, 1)] * k + [(year, sex, record, 0)] * (n - k)
    return pd.DataFrame(rows, columns=["cohort", "sex", "record", "reoffended"])


def test_same_risks_other_make_up_gives_the_reference_rate() -> None:
    reference = _cohort(
        2010, {("m", "long"): (40, 28), ("m", "short"): (40, 12), ("v", "long"): (10, 5)}
    )
    reference = pd.concat([reference, _cohort(2010, {("v", "short"): (10, 2)})])
    # 2014: the same risk per cell, more men with a long record: more recidivism observed
    later = _cohort(
        2014,
        {
            ("m", "long"): (80, 56),
            ("m", "short"): (20, 6),
            ("v", "long"): (10, 5),
            ("v", "short"): (10, 2),
        },
    )
    frame = pd.concat([reference, later], ignore_index=True)
    # sex and record with their interaction: a saturated model, predicted = cell shares
    frame["cell"] = frame["sex"] + "/" + frame["record"]
    result = corrected_rates(frame, "reoffended", ["cell"], "cohort", 2010)
    ref = result.rate(2010)
    assert ref.observed == pytest.approx(47 / 100)
    assert ref.expected == pytest.approx(ref.observed, abs=1e-12)
    assert ref.corrected == pytest.approx(ref.observed, abs=1e-12)
    new = result.rate(2014)
    assert new.observed == pytest.approx(69 / 120)
    assert new.expected == pytest.approx(new.observed, abs=1e-10)
    assert new.corrected == pytest.approx(47 / 100, abs=1e-10)
    assert result.model.names == ["intercept", "cell=m/short", "cell=v/long", "cell=v/short"]


def test_corrected_rate_is_reference_plus_observed_minus_expected() -> None:
    rng = np.random.default_rng(5)
    n = 4000
    frame = pd.DataFrame(
        {
            "cohort": rng.choice([2019, 2020], n),
            "age": rng.integers(18, 60, n).astype(float),
            "sex": rng.choice(["m", "v"], n, p=[0.9, 0.1]),
        }
    )
    risk = 1 / (1 + np.exp(-(1.5 - 0.05 * frame["age"] + 0.4 * (frame["sex"] == "m"))))
    frame["y"] = (rng.random(n) < risk).astype(int)
    result = corrected_rates(frame, "y", ["age", "sex"], "cohort", 2019)
    ref = result.rate(2019)
    for r in result.rates:
        assert r.corrected == pytest.approx(ref.observed + r.observed - r.expected, abs=1e-15)
    assert ref.corrected == pytest.approx(ref.observed, abs=1e-10)
    assert result.model.coef[1] == pytest.approx(-0.05, abs=0.02)


def test_unknown_category_and_missing_column_are_errors() -> None:
    frame = pd.DataFrame({"c": [1, 1, 2], "x": ["a", "b", "z"], "y": [0, 1, 1]})
    with pytest.raises(ValueError, match="lacks: z"):
        corrected_rates(frame, "y", ["x"], "c", 1)
    with pytest.raises(ValueError, match=r"\[nope\]"):
        corrected_rates(frame, "y", ["nope"], "c", 1)


def test_horizon_outcome_knows_who_was_followed_long_enough() -> None:
    outcome, known = horizon_outcome([100, 800, 300, 730, 900], [1, 1, 0, 0, 0], 730)
    assert outcome.tolist() == [True, False, False, False, False]
    assert known.tolist() == [True, True, False, True, True]
