"""km_many and prevalence_at on small data worked out by hand, and their input checks."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from terugkeer.monitor.survival import ALL, km_many, prevalence_at

# seven members: events at 1, 2, 3, 4; censored at 2, 4, 5
TIME = [1, 2, 2, 3, 4, 4, 5]
EVENT = [1, 1, 0, 1, 0, 1, 0]


def _product_limit(time: list[int], event: list[int]) -> dict[int, Fraction]:
    """S(t) at each distinct time, the textbook way, in exact fractions."""
    s = Fraction(1)
    out = {}
    for u in sorted(set(time)):
        n = sum(1 for x in time if x >= u)
        d = sum(1 for x, e in zip(time, event, strict=True) if x == u and e)
        s *= Fraction(n - d, n)
        out[u] = s
    return out


def test_one_group_equals_the_product_limit_by_hand() -> None:
    r = km_many(np.array(TIME, dtype=float), np.array(EVENT))
    assert r.groups.tolist() == [ALL]
    curve = r.curve(ALL)
    expected = _product_limit(TIME, EVENT)
    assert curve.time.tolist() == sorted(expected)
    assert curve.survival == pytest.approx([float(v) for v in expected.values()], abs=1e-15)
    assert curve.at_risk.tolist() == [7, 6, 4, 3, 1]
    assert curve.events.tolist() == [1, 1, 1, 1, 0]
    assert curve.censored.tolist() == [0, 1, 0, 1, 1]
    assert (np.diff(curve.survival) <= 0).all()
    assert (curve.lower <= curve.survival).all()
    assert (curve.survival <= curve.upper).all()


def test_groups_are_independent_and_sorted() -> None:
    time = np.array([*TIME, 3, 1, 6], dtype=float)
    event = np.array([*EVENT, 1, 0, 1])
    group = np.array(["b"] * 7 + ["a"] * 3)
    r = km_many(time, event, group)
    assert r.groups.tolist() == ["a", "b"]
    assert r.n.tolist() == [3, 7]
    b = r.curve("b")
    alone = km_many(np.array(TIME, dtype=float), np.array(EVENT)).curve(ALL)
    assert b.survival.tolist() == alone.survival.tolist()
    a = r.curve("a")
    assert a.time.tolist() == [1, 3, 6]
    assert a.survival == pytest.approx([1.0, 0.5, 0.0])
    frame = r.to_frame()
    assert frame["group"].tolist()[:3] == ["a", "a", "a"]
    assert len(frame) == 8


def test_prevalence_observed_and_estimated() -> None:
    r = km_many(np.array(TIME, dtype=float), np.array(EVENT))
    # by t = 1.5 nobody was censored: observed, the plain share 1/7
    early = prevalence_at(r, 1.5)
    assert early.observed.tolist() == [True]
    assert early.cumulative_incidence[0] == 1 / 7
    assert early.at_risk.tolist() == [6]
    assert early.events.tolist() == [1]
    # by t = 2 the one censored at 2 was followed up to 2: still observed, 2/7
    at_two = prevalence_at(r, 2)
    assert at_two.observed.tolist() == [True]
    assert at_two.cumulative_incidence[0] == 2 / 7
    # by t = 3 someone was censored at 2: estimated, 1 - S(3)
    later = prevalence_at(r, 3.5)
    assert later.observed.tolist() == [False]
    assert later.censored_before.tolist() == [1]
    assert later.cumulative_incidence[0] == pytest.approx(1 - float(Fraction(15, 28)))
    assert later.lower[0] <= later.cumulative_incidence[0] <= later.upper[0]
    assert later.at_risk.tolist() == [3]
    # before the first time: nothing happened yet
    start = prevalence_at(r, 0)
    assert start.cumulative_incidence[0] == 0.0
    assert start.at_risk.tolist() == [7]


def test_float_times_and_a_group_that_all_reoffend() -> None:
    time = np.array([0.5, 0.25, 1.75, 0.5, 3.0])
    event = np.array([True, True, True, False, True])
    group = np.array([2, 2, 2, 7, 7])
    r = km_many(time, event, group)
    assert r.groups.tolist() == [2, 7]
    two = r.curve(2)
    assert two.survival.tolist() == pytest.approx([2 / 3, 1 / 3, 0.0])
    assert two.lower[-1] == 0.0
    seven = r.curve(7)
    assert seven.time.tolist() == [0.5, 3.0]
    assert seven.survival.tolist() == [1.0, 0.0]
    assert seven.lower[0] == 1.0  # undefined at S = 1: 1, as lifelines


@pytest.mark.parametrize(
    ("time", "event", "group", "message"),
    [
        ([], [], None, "empty"),
        ([1, float("nan")], [1, 0], None, "missing"),
        ([1, -2], [1, 0], None, "negative"),
        ([1, 2], [1, 2], None, "0 or 1"),
        ([1, 2], [1], None, "one value per time"),
        ([1, 2], [1, 0], ["a"], "one value per time"),
        ([1, 2], [1, 0], ["a", None], "missing"),
        (["x", 2], [1, 0], None, "numbers"),
    ],
)
def test_bad_input_is_a_value_error(
    time: list[object], event: list[object], group: list[object] | None, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        km_many(time, event, group)  # type: ignore[arg-type]
