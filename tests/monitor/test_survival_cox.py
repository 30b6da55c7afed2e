"""The Cox wrapper against R's published fit on the Rossi et al. (1980) data, and its tests of
proportional hazards against lifelines'."""

from __future__ import annotations

import pandas as pd
import pytest
from lifelines.datasets import load_rossi
from lifelines.statistics import proportional_hazard_test

from terugkeer.monitor.cox import fit_cox

COVARIATES = ["fin", "age", "race", "wexp", "mar", "paro", "prio"]
# R: coxph(Surv(week, arrest) ~ fin + age + race + wexp + mar + paro + prio, data = Rossi)
# (Fox and Weisberg, "Cox Proportional-Hazards Regression for Survival Data in R", appendix to
# An R Companion to Applied Regression): coef, exp(coef), se(coef)
R_FIT = {
    "fin": (-0.37942, 0.6843, 0.19138),
    "age": (-0.05744, 0.9442, 0.02200),
    "race": (0.31390, 1.3688, 0.30799),
    "wexp": (-0.14980, 0.8609, 0.21222),
    "mar": (-0.43370, 0.6481, 0.38187),
    "paro": (-0.08487, 0.9186, 0.19576),
    "prio": (0.09150, 1.0958, 0.02865),
}


@pytest.fixture(scope="module")
def rossi() -> pd.DataFrame:
    frame: pd.DataFrame = load_rossi()
    return frame


def test_rossi_reproduces_r(rossi: pd.DataFrame) -> None:
    result = fit_cox(rossi, "week", "arrest", COVARIATES)
    assert (result.n, result.events, result.ties) == (432, 114, "efron")
    for name, (coef, hr, se) in R_FIT.items():
        term = result.term(name)
        assert round(term.coef, 5) == coef, name
        assert round(term.hazard_ratio, 4) == hr, name
        assert round(term.se, 5) == se, name
        assert term.lower < term.hazard_ratio < term.upper
    assert round(result.likelihood_ratio.statistic, 2) == 33.27
    assert result.likelihood_ratio.df == 7
    assert 0.5 < result.concordance < 1


@pytest.mark.filterwarnings("ignore:Starting with pandas version 4.0")  # inside lifelines
def test_ph_tests_are_lifelines_and_the_global_test_adds_up(rossi: pd.DataFrame) -> None:
    result = fit_cox(rossi, "week", "arrest", COVARIATES, ph_transform="km")
    from lifelines import CoxPHFitter

    fitted = CoxPHFitter().fit(rossi, "week", "arrest")
    theirs = proportional_hazard_test(fitted, rossi, time_transform="km")
    expected = dict(zip(theirs.name, theirs.test_statistic, strict=True))
    for test in result.ph_tests:
        assert test.statistic == pytest.approx(expected[test.name], rel=1e-9)
    assert result.ph_global.df == 7
    assert 0 < result.ph_global.p < 1
    # with one covariate, the global test is that covariate's test
    one = fit_cox(rossi, "week", "arrest", ["age"])
    assert one.ph_global.statistic == pytest.approx(one.ph_tests[0].statistic, rel=1e-9)


def test_strata_have_their_own_baseline(rossi: pd.DataFrame) -> None:
    plain = fit_cox(rossi, "week", "arrest", ["fin", "age", "prio"])
    stratified = fit_cox(rossi, "week", "arrest", ["fin", "age", "prio"], strata=["wexp"])
    assert stratified.strata == ["wexp"]
    assert [t.name for t in stratified.terms] == ["fin", "age", "prio"]
    assert stratified.term("fin").coef != plain.term("fin").coef
    assert stratified.to_dict()["terms"][0]["name"] == "fin"


@pytest.mark.parametrize(
    ("change", "covariates", "message"),
    [
        ({}, ["nope"], r"no column \[nope\]"),
        ({"age": "x"}, ["age"], r"\[age\] has 1 missing or non-numeric"),
        ({"arrest": 2}, ["age"], r"\[arrest\] must be 0 or 1"),
        ({}, [], "at least one covariate"),
    ],
)
def test_bad_input_is_a_value_error(
    rossi: pd.DataFrame, change: dict[str, object], covariates: list[str], message: str
) -> None:
    frame = rossi.copy()
    for column, value in change.items():
        frame[column] = frame[column].astype(object)
        frame.loc[3, column] = value
    with pytest.raises(ValueError, match=message):
        fit_cox(frame, "week", "arrest", covariates)
