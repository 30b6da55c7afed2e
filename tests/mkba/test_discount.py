"""The discounting engine against hand computations and textbook examples."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from terugkeer.mkba import cashflows, discount
from terugkeer.mkba.errors import MkbaError

FLOWS = [100.0, 50.0, 25.0, 10.0]


@pytest.mark.parametrize(("timing", "shift"), [("start", 0.0), ("middle", 0.5), ("end", 1.0)])
def test_present_value_by_hand_for_each_timing(timing: str, shift: float) -> None:
    r = 0.03
    by_hand = (
        100 / 1.03**shift
        + 50 / 1.03 ** (1 + shift)
        + 25 / 1.03 ** (2 + shift)
        + 10 / 1.03 ** (3 + shift)
    )
    assert discount.present_value(FLOWS, r, timing) == pytest.approx(by_hand, rel=1e-13)


def test_start_leaves_period_zero_undiscounted_and_end_discounts_it_a_whole_period() -> None:
    assert discount.present_value([100.0], 0.05, "start") == pytest.approx(100.0)
    assert discount.present_value([100.0], 0.05, "end") == pytest.approx(100 / 1.05)
    assert discount.present_value([100.0], 0.05, "middle") == pytest.approx(100 / math.sqrt(1.05))


def test_monthly_flows_at_a_yearly_rate() -> None:
    monthly = np.ones(12)
    by_hand = sum(1.0225 ** (-(m + 0.5) / 12) for m in range(12))
    pv = discount.present_value(monthly, 0.0225, "middle", periods_per_year=12)
    assert pv == pytest.approx(by_hand, rel=1e-13)
    assert discount.present_value(monthly, 0.0, "end", periods_per_year=12) == pytest.approx(12)


def test_textbook_single_irr() -> None:
    # Brealey, Myers and Allen, Principles of Corporate Finance, ch. 5 ("the rate of return
    # rule"): C0 = -4,000, C1 = +2,000, C2 = +4,000 has an IRR of 28.08 %.
    flows = cashflows.CashFlows(
        np.arange(3.0), np.array([4000.0, 0, 0]), np.array([0, 2000, 4000.0])
    )
    result = cashflows.evaluate(flows, 0.10, "start")
    assert result.irr == pytest.approx(0.2808, abs=5e-5)
    # at 10 %: -4000 + 2000/1.1 + 4000/1.21, by hand
    assert result.npv == pytest.approx(-4000 + 2000 / 1.1 + 4000 / 1.21, rel=1e-12)
    assert result.bc_ratio == pytest.approx((2000 / 1.1 + 4000 / 1.21) / 4000, rel=1e-12)


def test_textbook_multiple_irrs() -> None:
    # the same book's pitfall "multiple rates of return": -4,000, +25,000, -25,000 has an NPV
    # of zero at 25 % and at 400 %; irr() gives the one closest to zero.
    net = [-4000.0, 25000.0, -25000.0]
    assert discount.irr_roots(net) == pytest.approx([0.25, 4.0], rel=1e-9)
    assert discount.irr(net) == pytest.approx(0.25, rel=1e-9)


@pytest.mark.parametrize("timing", ["start", "middle", "end"])
def test_irr_solves_npv_zero_and_does_not_depend_on_timing(timing: str) -> None:
    costs, benefits = np.array([1000.0, 200, 0, 0, 0]), np.array([0.0, 300, 400, 400, 300])
    rate = discount.irr(benefits - costs)
    assert rate is not None
    assert discount.npv(costs, benefits, rate, timing) == pytest.approx(0.0, abs=1e-8)


@pytest.mark.parametrize("net", [[100.0, 50, 10], [-100.0, -1, 0], [0.0, 0, 0], [-5.0]])
def test_irr_absent_without_a_sign_change(net: list[float]) -> None:
    assert discount.irr(net) is None


def test_irr_absent_when_the_npv_never_crosses_zero_despite_sign_changes() -> None:
    # +1, -3, +3: NPV = 1 - 3x + 3x^2 > 0 for every x = 1/(1+r)
    assert discount.irr([1.0, -3.0, 3.0]) is None


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.floats(1, 1e6), min_size=1, max_size=3),
    st.lists(st.floats(0, 1e6), min_size=1, max_size=30),
)
def test_one_investment_then_returns_has_one_irr_that_zeroes_the_npv(
    invest: list[float], returns: list[float]
) -> None:
    net = np.array([-x for x in invest] + returns)
    roots = discount.irr_roots(net)
    if sum(returns) <= sum(invest) * 1.0000001 or max(returns) == 0:
        return  # IRR at or below 0 or none: only checked where it certainly lies above 0
    assert len(roots) == 1
    scale = np.abs(net).sum()
    assert abs(float(discount.present_value(net, roots[0]))) <= 1e-7 * scale


def test_bc_ratio_absent_without_costs() -> None:
    assert discount.bc_ratio(10.0, 0.0) is None
    assert discount.bc_ratio(10.0, 4.0) == 2.5


@pytest.mark.parametrize("rate", [-1.0, -2.0, math.nan, math.inf])
def test_bad_rate(rate: float) -> None:
    with pytest.raises(MkbaError, match="rate"):
        discount.present_value([1.0], rate)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("period,cost\n0,1\n", "missing column"),
        ("period,cost,benefit\n", "no periods"),
        ("period,cost,benefit\n1,1,1\n", "first period must be 0"),
        ("period,cost,benefit\n0,1,1\n0,1,1\n", "does not follow"),
        ("period,cost,benefit\n0,1.5x,1\n", "line 2, cost: not a number"),
        ("period,cost,benefit\n0,1,-1\n", "at least 0"),
        ("period,cost,benefit\n0.5,1,1\n", "whole number"),
        ("period,cost,benefit\n0,nan,1\n", "finite"),
        ("period,cost,benefit\n0,1\n", "cells"),
    ],
)
def test_bad_cash_flow_files(text: str, message: str) -> None:
    with pytest.raises(MkbaError, match=message):
        cashflows.parse(text)


def test_semicolons_and_decimal_commas() -> None:
    flows = cashflows.parse("Period;Cost;Benefit;note\n0;1.000,50;0;x\n2;0;2.000,25;y\n")
    assert list(flows.periods) == [0, 2]
    assert list(flows.costs) == [1000.5, 0]
    assert list(flows.benefits) == [0, 2000.25]
    # a gap: period 2 is discounted two periods
    assert cashflows.evaluate(flows, 0.1).pv_benefits == pytest.approx(2000.25 / 1.21)
