"""Property: km_many gives, per group, what a loop of lifelines' KaplanMeierFitter gives, to
1e-9, on random data with ties, censoring and groups; on both of its counting paths (the dense
grid and the sorted cells)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lifelines import KaplanMeierFitter

from terugkeer.monitor import survival
from terugkeer.monitor.survival import km_many, prevalence_at

TOL = 1e-9


@st.composite
def samples(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    n = draw(st.integers(1, 40))
    whole = draw(st.booleans())
    if whole:  # days: many ties
        values = st.integers(0, draw(st.sampled_from([3, 10, 400])))
        time = np.array(draw(st.lists(values, min_size=n, max_size=n)), dtype=float)
    else:  # a few distinct fractional times, also ties
        pool = draw(st.lists(st.floats(0, 50, allow_nan=False), min_size=1, max_size=8))
        time = np.array(draw(st.lists(st.sampled_from(pool), min_size=n, max_size=n)))
    event = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    group = np.array(draw(st.lists(st.integers(0, 2), min_size=n, max_size=n)))
    sparse = draw(st.booleans())
    return time, event, group, sparse


def _compare(time: np.ndarray, event: np.ndarray, group: np.ndarray) -> None:
    result = km_many(time, event, group)
    assert result.groups.tolist() == sorted(set(group.tolist()))
    for label in result.groups:
        members = group == label
        fitted = KaplanMeierFitter().fit(time[members], event[members])
        curve = result.curve(label)
        assert curve.time.tolist() == sorted(set(time[members].tolist()))
        table = fitted.event_table.loc[curve.time]
        assert curve.at_risk.tolist() == table["at_risk"].tolist()
        assert curve.events.tolist() == table["observed"].tolist()
        assert curve.censored.tolist() == table["censored"].tolist()
        expected = fitted.survival_function_.iloc[:, 0].loc[curve.time].to_numpy()
        bounds = fitted.confidence_interval_.loc[curve.time].to_numpy()
        np.testing.assert_allclose(curve.survival, expected, rtol=0, atol=TOL)
        np.testing.assert_allclose(curve.lower, bounds[:, 0], rtol=0, atol=TOL)
        np.testing.assert_allclose(curve.upper, bounds[:, 1], rtol=0, atol=TOL)
        # a survival curve never rises and stays in [0, 1]
        assert (np.diff(curve.survival) <= 0).all()
        assert ((curve.survival >= 0) & (curve.survival <= 1)).all()
        # the horizon's figure is the step function's value at it
        horizon = float(np.median(time[members]))
        prevalence = prevalence_at(result, horizon)
        g = result.group_index(label)
        at = fitted.survival_function_at_times(horizon).iloc[0]
        assert prevalence.cumulative_incidence[g] == pytest.approx(1 - at, abs=TOL)
        assert prevalence.at_risk[g] == int((time[members] >= horizon).sum())
        censored_early = (time[members] < horizon) & ~event[members]
        assert bool(prevalence.observed[g]) == (not censored_early.any())


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(samples())
def test_km_many_agrees_with_a_lifelines_loop(
    sample: tuple[np.ndarray, np.ndarray, np.ndarray, bool],
) -> None:
    time, event, group, sparse = sample
    with pytest.MonkeyPatch.context() as mp:
        if sparse:  # no grid: the sorted (group, time) cells
            mp.setattr(survival, "_GRID_CELLS", 0)
        _compare(time, event, group)
