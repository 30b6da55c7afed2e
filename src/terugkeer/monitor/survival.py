"""Kaplan-Meier for many groups at once, and the cumulative recidivism it gives at 1, 2 and 5 years.

:func:`km_many` computes the product-limit (Kaplan-Meier) estimate for every group in one pass
over the data with numpy: the rows are counted per (group, time) cell with ``bincount`` (or
a sort when the times do not fit a grid), and the products are cumulative sums of logs
within each group. There is no Python loop over groups or times, so a million releases in a
hundred groups take a fraction of a second (``bench/km.py``).

The figures are exactly those of ``lifelines.KaplanMeierFitter`` (a property test holds them to
1e-9 on data with ties and censoring, ``tests/monitor/test_survival_properties.py``):

* at each distinct time ``t`` of a group, ``n`` members are at risk (time ≥ ``t``), ``d`` have
  the event at ``t`` and ``c`` are censored at ``t`` (events before censorings at the same time);
* ``S(t) = prod over times u ≤ t of (1 - d_u / n_u)``, computed as ``exp(cumsum(log(n - d) -
  log(n)))``;
* Greenwood's sum ``V(t) = sum over u ≤ t of d_u / (n_u (n_u - d_u))`` (a term with ``n = d``
  counts 0, as in lifelines);
* the 1 - alpha confidence interval is the exponential Greenwood ("log(-log)") interval::

      lower = exp(-exp(log(-log S) - z sqrt(V) / log S))
      upper = exp(-exp(log(-log S) + z sqrt(V) / log S))

  with ``z`` the 1 - alpha/2 normal quantile; where this is undefined (``S = 1``) both are 1.

The cumulative incidence (the share that has reoffended by ``t``) is ``1 - S(t)``, its interval
``(1 - upper, 1 - lower)``.

:func:`prevalence_at` reads the step function at one horizon (1, 2, 5 years) per group, with its
interval and the number still at risk, and says whether the figure is *observed* (every member
was followed up to the horizon or had the event before it, so the share is a plain count) or
*estimated* (some members were censored earlier, so Kaplan-Meier estimates their part).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd  # type: ignore[import-untyped]
from scipy.special import ndtri  # type: ignore[import-untyped]

ALL = "all"
"""The label of the one group when :func:`km_many` is called without groups."""

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

_GRID_CELLS = 1 << 22  # the largest (groups x distinct times) grid counted with bincount


@dataclass(frozen=True, eq=False)
class KMCurve:
    """One group's Kaplan-Meier table: one row per distinct time (event or censoring)."""

    group: Any
    n: int
    time: FloatArray
    at_risk: IntArray
    events: IntArray
    censored: IntArray
    survival: FloatArray
    lower: FloatArray
    upper: FloatArray
    variance: FloatArray

    @property
    def cumulative_incidence(self) -> FloatArray:
        """1 - S(t): the share with the event by t."""
        return 1.0 - self.survival


@dataclass(frozen=True, eq=False)
class KMResult:
    """Kaplan-Meier tables of many groups, stored flat: the rows of group ``groups[g]`` are
    ``offsets[g]:offsets[g + 1]``, in ascending time. ``row_group[i]`` is the index (into
    ``groups``) of row ``i``.

    Per row: ``time``, ``at_risk`` (members with time ≥ it), ``events`` and ``censored`` at it,
    ``survival`` S(t), its confidence interval ``lower``/``upper`` (level 1 - ``alpha``,
    exponential Greenwood) and Greenwood's sum ``variance`` (the variance of log S, the same as
    lifelines' ``_cumulative_sq_``). Per group: ``n`` members. The time-0 row lifelines adds
    when no time is 0 (S = 1, everyone at risk) is implicit: before a group's first row, S = 1.
    """

    groups: npt.NDArray[Any]
    n: IntArray
    offsets: IntArray
    row_group: IntArray
    time: FloatArray
    at_risk: IntArray
    events: IntArray
    censored: IntArray
    survival: FloatArray
    lower: FloatArray
    upper: FloatArray
    variance: FloatArray
    alpha: float

    @property
    def cumulative_incidence(self) -> FloatArray:
        """1 - S(t) per row: the cumulative share with the event (cumulative recidivism)."""
        return 1.0 - self.survival

    @property
    def incidence_lower(self) -> FloatArray:
        """The lower confidence bound of the cumulative incidence, 1 - upper."""
        return 1.0 - self.upper

    @property
    def incidence_upper(self) -> FloatArray:
        """The upper confidence bound of the cumulative incidence, 1 - lower."""
        return 1.0 - self.lower

    def group_index(self, label: Any) -> int:
        """The index of the group named ``label``; KeyError when there is none."""
        for i, g in enumerate(self.groups.tolist()):
            if g == label:
                return i
        raise KeyError(f"no group [{label}] in this result")

    def curve(self, label: Any) -> KMCurve:
        """The table of one group."""
        g = self.group_index(label)
        s = slice(int(self.offsets[g]), int(self.offsets[g + 1]))
        return KMCurve(
            group=self.groups[g],
            n=int(self.n[g]),
            time=self.time[s],
            at_risk=self.at_risk[s],
            events=self.events[s],
            censored=self.censored[s],
            survival=self.survival[s],
            lower=self.lower[s],
            upper=self.upper[s],
            variance=self.variance[s],
        )

    def to_frame(self) -> pd.DataFrame:
        """All rows as a table: group, time, at_risk, events, censored, survival, lower, upper,
        cumulative_incidence, incidence_lower, incidence_upper."""
        return pd.DataFrame(
            {
                "group": self.groups[self.row_group],
                "time": self.time,
                "at_risk": self.at_risk,
                "events": self.events,
                "censored": self.censored,
                "survival": self.survival,
                "lower": self.lower,
                "upper": self.upper,
                "cumulative_incidence": self.cumulative_incidence,
                "incidence_lower": self.incidence_lower,
                "incidence_upper": self.incidence_upper,
            }
        )


@dataclass(frozen=True, eq=False)
class Prevalence:
    """The cumulative share with the event by horizon ``t``, per group (arrays over ``groups``).

    ``cumulative_incidence`` = 1 - S(t), with its interval ``lower``/``upper``; ``survival`` S(t)
    and its interval ``survival_lower``/``survival_upper``; ``at_risk``: members still followed
    and without the event at ``t`` (time ≥ t); ``events``: events at or before ``t``;
    ``censored_before``: members censored before ``t`` without the event; ``observed``: True
    where ``censored_before`` is 0, so every member was followed up to ``t`` or had the event
    by then, and the share is simply ``events / n`` (then exactly that quotient is reported);
    False where Kaplan-Meier estimates the part of those censored earlier (*estimated*).
    A horizon past a group's last time keeps the last value of the step function (as
    lifelines does); ``at_risk`` is then 0 and ``observed`` False unless nobody was censored.
    """

    t: float
    groups: npt.NDArray[Any]
    n: IntArray
    survival: FloatArray
    survival_lower: FloatArray
    survival_upper: FloatArray
    cumulative_incidence: FloatArray
    lower: FloatArray
    upper: FloatArray
    at_risk: IntArray
    events: IntArray
    censored_before: IntArray
    observed: BoolArray

    def to_frame(self) -> pd.DataFrame:
        """One row per group."""
        return pd.DataFrame(
            {
                "group": self.groups,
                "t": self.t,
                "n": self.n,
                "cumulative_incidence": self.cumulative_incidence,
                "lower": self.lower,
                "upper": self.upper,
                "at_risk": self.at_risk,
                "events": self.events,
                "censored_before": self.censored_before,
                "observed": self.observed,
            }
        )


# --- input checks ----------------------------------------------------------------------------


def _times(time: Any) -> FloatArray:
    try:
        t = np.asarray(time, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(f"time must be numbers: {e}") from e
    if t.ndim != 1:
        raise ValueError(f"time must be one-dimensional, not of shape {t.shape}")
    if t.size == 0:
        raise ValueError("no observations: time is empty")
    if not np.isfinite(t).all():
        raise ValueError(f"time has {int((~np.isfinite(t)).sum())} missing or infinite values")
    if (t < 0).any():
        raise ValueError(f"time has {int((t < 0).sum())} negative values")
    return t


def _events(event: Any, n: int) -> BoolArray:
    e = np.asarray(event)
    if e.shape != (n,):
        raise ValueError(f"event must have one value per time ({n}), not shape {e.shape}")
    if e.dtype == np.bool_:
        return e
    try:
        f = e.astype(np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"event must be 0 or 1: {err}") from err
    bad = ~((f == 0) | (f == 1))
    if bad.any():
        raise ValueError(f"event must be 0 or 1; {int(bad.sum())} values are not")
    observed: BoolArray = f == 1
    return observed


def _factorize(group: Any, n: int) -> tuple[IntArray, npt.NDArray[Any], IntArray]:
    """Codes 0..G-1 per row, the sorted labels and the number of rows per label."""
    if group is None:
        return np.zeros(n, dtype=np.int64), np.array([ALL], dtype=object), np.array([n])
    g = np.asarray(group)
    if g.shape != (n,):
        raise ValueError(f"group must have one value per time ({n}), not shape {g.shape}")
    if g.dtype.kind in "iu":
        gi = g.astype(np.int64, copy=False)
        lo, hi = int(gi.min()), int(gi.max())
        if hi - lo <= 4 * n + 1024:  # small range: codes without a sort
            if lo != 0:
                gi = gi - lo
            counts = np.bincount(gi, minlength=hi - lo + 1)
            present = counts > 0
            if present.all():
                return gi, np.arange(lo, hi + 1, dtype=np.int64), counts.astype(np.int64)
            lookup = np.cumsum(present) - 1
            labels = np.flatnonzero(present) + lo
            return lookup[gi].astype(np.int64), labels, counts[present].astype(np.int64)
    try:
        codes, uniques = pd.factorize(g, sort=True)
    except TypeError as e:
        raise ValueError(f"group labels cannot be ordered: {e}") from e
    if (codes < 0).any():
        raise ValueError(f"group has {int((codes < 0).sum())} missing values")
    counts = np.bincount(codes, minlength=len(uniques)).astype(np.int64)
    return codes.astype(np.int64), np.asarray(uniques), counts


# --- the estimator -----------------------------------------------------------------------------


_Rows = tuple[IntArray, FloatArray, IntArray, IntArray, IntArray, FloatArray, FloatArray]
"""Per row (non-empty (group, time) cell, group-major, time ascending): group index, time,
number at risk, events, removed (events + censored), log S and Greenwood's sum."""


def _steps(at_risk: Any, events: Any) -> tuple[Any, Any, Any]:
    """Per cell: the term of log S, log(n - d) - log(n) (0 without events); Greenwood's term
    d / (n (n - d)); and where n = d (everyone left has the event: S drops to 0, a term that
    lifelines counts as 0 in both sums, and necessarily the group's last row)."""
    survivors = at_risk - events
    zero = (survivors == 0) & (events > 0)
    hit = (events > 0) & ~zero
    with np.errstate(divide="ignore", invalid="ignore"):
        safe_survivors = np.where(hit, survivors, 1).astype(np.float64)
        safe_at_risk = np.where(hit, at_risk, 1).astype(np.float64)
        step = np.where(hit, np.log(safe_survivors) - np.log(safe_at_risk), 0.0)
        green = np.where(hit, events / (safe_at_risk * safe_survivors), 0.0)
    return step, green, zero


def _km_on_grid(
    t: FloatArray, ev: BoolArray, codes: IntArray, sizes: IntArray, width: int
) -> _Rows:
    """Whole-number times in a small range: one bincount over (group, time, event) keys built
    in place, on a grid of groups x times, and sums along each group's row of the grid (the
    same sequence of additions as lifelines makes); no sort."""
    n_groups = sizes.size
    key = codes * (2 * width)
    rank = t.astype(np.int64)
    rank <<= 1
    rank += ev
    key += rank
    counts = np.bincount(key, minlength=2 * n_groups * width).reshape(n_groups, width, 2)
    events = counts[:, :, 1]
    removed = counts[:, :, 0] + events
    at_risk = sizes[:, None] - (np.cumsum(removed, axis=1) - removed)
    step, green, zero = _steps(at_risk, events)
    log_s = np.cumsum(step, axis=1)
    log_s[zero] = -np.inf
    variance = np.cumsum(green, axis=1)
    used = np.flatnonzero(removed)
    return (
        (used // width).astype(np.int64),
        (used % width).astype(np.float64),
        at_risk.ravel()[used].astype(np.int64),
        events.ravel()[used].astype(np.int64),
        removed.ravel()[used].astype(np.int64),
        log_s.ravel()[used],
        variance.ravel()[used],
    )


def _segment_cumsum(values: npt.NDArray[Any], start: IntArray) -> Any:
    """Cumulative sums that restart at each group's first row (``start[i]``: the first row of
    row ``i``'s group), in one pass: the running total less the total before the group's first
    row. Callers pass floats in extended precision, so the subtraction costs no accuracy that
    a sum per group would keep (and a group's leading zeros stay exactly 0)."""
    total = np.cumsum(values)
    return total - (total - values)[start]


def _km_sorted(t: FloatArray, ev: BoolArray, codes: IntArray, sizes: IntArray) -> _Rows:
    """Any times: sort by time, then stably by group (a radix sort for up to 65,536 groups),
    cut where the group or the time changes, and sum within groups along the rows."""
    n_groups = sizes.size
    order = np.argsort(t)  # ties in any order: the group sort below is stable
    by_group = codes[order]
    if n_groups <= 1 << 16:
        by_group = by_group.astype(np.uint16)
    order = order[np.argsort(by_group, kind="stable")]
    ts, cs = t[order], codes[order]
    new = np.empty(t.size, dtype=bool)
    new[0] = True
    np.not_equal(ts[1:], ts[:-1], out=new[1:])
    new[1:] |= cs[1:] != cs[:-1]
    starts = np.flatnonzero(new)
    removed = np.diff(np.append(starts, t.size)).astype(np.int64)
    events = np.add.reduceat(ev[order].astype(np.int64), starts)
    row_group = cs[starts]
    per_group = np.bincount(row_group, minlength=n_groups)
    first = np.repeat(np.cumsum(per_group) - per_group, per_group)  # each row's group's first
    at_risk = sizes[row_group] - _segment_cumsum(removed, first) + removed
    step, green, zero = _steps(at_risk, events)
    log_s = _segment_cumsum(step.astype(np.longdouble), first).astype(np.float64)
    log_s = np.minimum(log_s, 0.0)
    log_s[zero] = -np.inf
    variance = _segment_cumsum(green.astype(np.longdouble), first).astype(np.float64)
    return row_group, ts[starts], at_risk, events, removed, log_s, np.maximum(variance, 0.0)


def km_many(
    time: npt.ArrayLike,
    event: npt.ArrayLike,
    group: npt.ArrayLike | None = None,
    *,
    alpha: float = 0.05,
) -> KMResult:
    """Kaplan-Meier estimates for every group at once (see the module's docstring for the
    formulas, which are lifelines' ``KaplanMeierFitter``'s).

    ``time``: follow-up time of each member (finite, ≥ 0; any unit); ``event``: 1 (or True) if
    the follow-up ended with the event, 0 if it was censored; ``group``: a label per member
    (numbers or strings, no missing values), or None for one group labelled ``"all"``.
    Groups come out sorted by label. Bad input raises ValueError naming what is wrong.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie between 0 and 1, not {alpha}")
    t = _times(time)
    ev = _events(event, t.size)
    codes, labels, sizes = _factorize(group, t.size)
    n, n_groups = t.size, labels.size
    tmax = float(t.max())  # times are ≥ 0
    small = tmax <= 4 * n + 1024 and n_groups * (tmax + 1) <= _GRID_CELLS
    if small and (t == np.rint(t)).all():
        rows = _km_on_grid(t, ev, codes, sizes, int(tmax) + 1)
    else:
        rows = _km_sorted(t, ev, codes, sizes)
    row_group, times, at_risk, events, removed, log_s, variance = rows
    per_group = np.bincount(row_group, minlength=n_groups)
    offsets = np.zeros(n_groups + 1, dtype=np.int64)
    np.cumsum(per_group, out=offsets[1:])
    with np.errstate(over="ignore", under="ignore"):
        survival = np.exp(log_s)
    lower, upper = _greenwood_bounds(log_s, variance, alpha)
    return KMResult(
        groups=labels,
        n=sizes,
        offsets=offsets,
        row_group=row_group,
        time=times,
        at_risk=at_risk,
        events=events,
        censored=removed - events,
        survival=survival,
        lower=lower,
        upper=upper,
        variance=variance,
        alpha=float(alpha),
    )


def _greenwood_bounds(
    log_s: FloatArray, variance: FloatArray, alpha: float
) -> tuple[FloatArray, FloatArray]:
    """The exponential Greenwood interval, undefined values (S = 1) set to 1 (lifelines)."""
    z = float(ndtri(1 - alpha / 2))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        centre = np.log(-log_s)
        width = z * np.sqrt(variance) / log_s
        lower = np.exp(-np.exp(centre - width))
        upper = np.exp(-np.exp(centre + width))
    return np.nan_to_num(lower, nan=1.0), np.nan_to_num(upper, nan=1.0)


def prevalence_at(result: KMResult, t: float) -> Prevalence:
    """The cumulative share with the event by ``t`` (in the unit of the times) per group: the
    step function's value at ``t`` (its last row at or before ``t``; 0 before the first), its
    confidence interval, the number at risk at ``t`` and whether it is observed or estimated
    (see :class:`Prevalence`)."""
    horizon = float(t)
    if not np.isfinite(horizon) or horizon < 0:
        raise ValueError(f"the horizon must be a finite time ≥ 0, not {t}")
    n_groups = result.groups.size
    upto = result.time <= horizon
    before = result.time < horizon
    rg = result.row_group
    count = np.bincount(rg[upto], minlength=n_groups)
    events = np.bincount(rg[upto], weights=result.events[upto], minlength=n_groups)
    removed_before = np.bincount(
        rg[before], weights=(result.events + result.censored)[before], minlength=n_groups
    )
    censored_before = np.bincount(rg[before], weights=result.censored[before], minlength=n_groups)
    any_row = count > 0
    last = np.where(any_row, result.offsets[:-1] + count - 1, 0)
    survival = np.where(any_row, result.survival[last], 1.0)
    s_lower = np.where(any_row, result.lower[last], 1.0)
    s_upper = np.where(any_row, result.upper[last], 1.0)
    events_i = events.astype(np.int64)
    observed = censored_before == 0
    incidence = 1.0 - survival
    exact = events_i / result.n  # with no one censored before t, the KM product telescopes
    incidence = np.where(observed, exact, incidence)
    return Prevalence(
        t=horizon,
        groups=result.groups,
        n=result.n,
        survival=np.where(observed, 1.0 - exact, survival),
        survival_lower=s_lower,
        survival_upper=s_upper,
        cumulative_incidence=incidence,
        lower=1.0 - s_upper,
        upper=1.0 - s_lower,
        at_risk=(result.n - removed_before).astype(np.int64),
        events=events_i,
        censored_before=censored_before.astype(np.int64),
        observed=observed,
    )
