"""Discounting, pure numpy: present value, net present value, benefit-cost ratio and the
internal rate of return (docs/mkba.md, "Rekenregels").

Timing convention. A cash flow of period ``t`` (``t = 0, 1, …``, period 0 first) is counted at
time ``t + s`` periods from now, where ``s`` is 0 for ``start`` (the textbook convention: the
flow of period 0 is not discounted), ½ for ``middle`` (flows spread evenly over the period) and
1 for ``end``. Its discount factor is ``(1 + r) ** (-(t + s) / periods_per_year)`` with ``r``
the yearly rate, so monthly flows (``periods_per_year = 12``) are discounted at the yearly rate
without converting it by hand.

Internal rate of return. The yearly rate ``r > -1`` at which the net present value (benefits
minus costs) is zero. The timing convention multiplies every discount factor by the same
``(1 + r) ** (-s / periods_per_year)``, which is never zero, so it does not move the root: the
IRR is the same under all three conventions. It is searched on a grid of rates from -99.9999 % to
10^14 % a year and every bracket with a sign change is refined with Brent's method
(``scipy.optimize.brentq``). Without any sign change on the grid the IRR is absent (``None``):
for instance when all net flows have one sign. A net flow series that changes sign more than
once can have several IRRs (Descartes' rule of signs bounds their number by the number of sign
changes); then :func:`irr` returns the one closest to zero, the same choice as
``numpy_financial.irr``, and :func:`irr_roots` returns all that were found. A root where the
net present value only touches zero without crossing it is not found.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from enum import StrEnum

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import brentq  # type: ignore[import-untyped]

from terugkeer.mkba.errors import MkbaError

F64 = NDArray[np.float64]


class Timing(StrEnum):
    START = "start"
    MIDDLE = "middle"
    END = "end"


SHIFT = {Timing.START: 0.0, Timing.MIDDLE: 0.5, Timing.END: 1.0}


def timing(value: str | Timing) -> Timing:
    try:
        return Timing(value)
    except ValueError:
        raise MkbaError(f"timing must be start, middle or end, not [{value}]") from None


def check_rate(rate: float) -> float:
    if not math.isfinite(rate) or rate <= -1:
        raise MkbaError(f"the discount rate must be a number above -1 (-100 %), not [{rate}]")
    return float(rate)


def discount_factors(
    periods: ArrayLike,
    rate: float,
    when: str | Timing = Timing.START,
    *,
    periods_per_year: int = 1,
) -> F64:
    """The discount factor of each period (an array of period numbers, 0 first)."""
    r = check_rate(rate)
    t = np.asarray(periods, dtype=np.float64) + SHIFT[timing(when)]
    out: F64 = np.power(1.0 + r, -t / periods_per_year)
    return out


def present_value(
    flows: ArrayLike,
    rate: float,
    when: str | Timing = Timing.START,
    *,
    periods: ArrayLike | None = None,
    periods_per_year: int = 1,
) -> F64:
    """The present value of ``flows`` along their last axis (one value per row); ``periods``
    defaults to 0, 1, 2, …"""
    values = np.asarray(flows, dtype=np.float64)
    t = np.arange(values.shape[-1]) if periods is None else np.asarray(periods)
    df = discount_factors(t, rate, when, periods_per_year=periods_per_year)
    out: F64 = np.asarray(values @ df, dtype=np.float64)
    return out


def npv(
    costs: ArrayLike,
    benefits: ArrayLike,
    rate: float,
    when: str | Timing = Timing.START,
    *,
    periods: ArrayLike | None = None,
    periods_per_year: int = 1,
) -> F64:
    """Present value of benefits minus present value of costs."""
    net = np.asarray(benefits, dtype=np.float64) - np.asarray(costs, dtype=np.float64)
    return present_value(net, rate, when, periods=periods, periods_per_year=periods_per_year)


def bc_ratio(pv_benefits: float, pv_costs: float) -> float | None:
    """Benefits over costs (present values); absent when there are no costs."""
    if pv_costs == 0:
        return None
    return float(pv_benefits / pv_costs)


# Rates (yearly) at which the sign of the NPV is looked at: dense near zero, where IRRs of
# social investments lie, and reaching far enough for a programme that pays back in a month.
_GRID = np.unique(
    np.concatenate(
        [
            -1 + np.geomspace(1e-6, 0.5, 60),
            np.linspace(-0.5, 1.0, 301),
            np.geomspace(1.0, 1e4, 200),
            np.geomspace(1e4, 1e12, 60),
        ]
    )
)


def _npv_at(net: F64, t: F64, periods_per_year: int, r: float) -> float:
    # in logs: (1 + r) ** -t overflows for large t near r = -1
    with np.errstate(over="ignore", under="ignore"):
        return float(np.sum(net * np.exp(-t / periods_per_year * math.log1p(r))))


def irr_roots(
    net: Sequence[float] | ArrayLike,
    *,
    periods: ArrayLike | None = None,
    periods_per_year: int = 1,
) -> list[float]:
    """Every yearly rate (ascending) at which the NPV of the ``net`` flows crosses zero."""
    values = np.asarray(net, dtype=np.float64)
    if values.ndim != 1:
        raise MkbaError("the IRR needs one series of net flows")
    t = (np.arange(len(values)) if periods is None else np.asarray(periods)).astype(np.float64)
    if not np.any(values > 0) or not np.any(values < 0):
        return []  # one sign only: the NPV never crosses zero
    scale = float(np.abs(values).max())
    norm = values / scale
    signs = np.array([_npv_at(norm, t, periods_per_year, float(r)) for r in _GRID])
    roots: list[float] = []
    for i in range(len(_GRID) - 1):
        a, b = signs[i], signs[i + 1]
        if not (np.isfinite(a) and np.isfinite(b)):
            continue
        if a == 0:
            roots.append(float(_GRID[i]))
        elif b != 0 and np.sign(a) != np.sign(b):
            root = brentq(
                lambda r: _npv_at(norm, t, periods_per_year, r),
                float(_GRID[i]),
                float(_GRID[i + 1]),
                xtol=1e-14,
                rtol=1e-12,
                maxiter=200,
            )
            roots.append(float(root))
    return roots


def irr(
    net: Sequence[float] | ArrayLike,
    *,
    periods: ArrayLike | None = None,
    periods_per_year: int = 1,
) -> float | None:
    """The internal rate of return (yearly), ``None`` when the NPV never changes sign; with
    several, the one closest to zero (module docstring)."""
    roots = irr_roots(net, periods=periods, periods_per_year=periods_per_year)
    if not roots:
        return None
    return min(roots, key=abs)
