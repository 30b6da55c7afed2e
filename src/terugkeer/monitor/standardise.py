"""Corrected (standardised) recidivism rates, as the WODC Recidivemonitor makes them.

The share of a release cohort that reoffends within a fixed horizon (say two years) moves when
the cohort's make-up moves: more young men with long criminal records means more recidivism,
whatever happened to reintegration. The Recidivemonitor therefore also publishes a *corrected*
figure (*gecorrigeerde recidive*):

1. In the **reference cohort** (a fixed base year) a logistic regression relates the outcome
   (reoffended within the horizon: 1/0) to the background characteristics: sex, age, criminal
   history, offence type (the Recidivemonitor also uses country of birth).
2. For every cohort the model gives each member a predicted chance; their mean is the cohort's
   **expected** rate: what the reference year's risks would give with this cohort's make-up.
3. The **corrected** rate is the reference cohort's observed rate plus the cohort's difference
   between observed and expected::

       corrected = reference_observed + (observed - expected)

   For the reference cohort itself, expected = observed (a logistic regression with an
   intercept reproduces its own mean), so its corrected rate is its observed rate. A cohort
   whose members are riskier than the reference has expected > reference, and its corrected
   rate is lower than its observed rate.

Only members whose follow-up covers the horizon (or who reoffended within it) have a known
outcome; :func:`horizon_outcome` gives the outcome and that mask from times and events.

The logistic regression is fitted by iteratively reweighted least squares (Newton-Raphson on
the log-likelihood) in numpy: :func:`fit_logistic`. Tests hold it to closed-form results (a
saturated model reproduces the cell shares) and a published fit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd  # type: ignore[import-untyped]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True, eq=False)
class Logistic:
    """A fitted logistic regression: ``P(y = 1 | x) = 1 / (1 + exp(-(b0 + b'x)))``.

    ``names`` of the columns (``"intercept"`` first), ``coef`` and their standard errors ``se``
    (from the inverse information matrix), the maximised ``log_likelihood``, the number of
    Newton steps taken and whether they ``converged``."""

    names: list[str]
    coef: FloatArray
    se: FloatArray
    log_likelihood: float
    iterations: int
    converged: bool

    def predict(self, x: npt.ArrayLike) -> FloatArray:
        """The predicted chance for each row of ``x`` (the covariates, without intercept)."""
        design = _design(np.asarray(x, dtype=np.float64))
        if design.shape[1] != self.coef.size:
            raise ValueError(f"expected {self.coef.size - 1} covariates, got {design.shape[1] - 1}")
        return _sigmoid(design @ self.coef)


def _design(x: FloatArray) -> FloatArray:
    if x.ndim == 1:
        x = x[:, None]
    return np.column_stack([np.ones(x.shape[0]), x])


def _sigmoid(eta: FloatArray) -> FloatArray:
    out: FloatArray = np.exp(-np.logaddexp(0.0, -eta))
    return out


def fit_logistic(
    x: npt.ArrayLike,
    y: npt.ArrayLike,
    names: Sequence[str] | None = None,
    *,
    max_iter: int = 50,
    tol: float = 1e-10,
) -> Logistic:
    """Maximum-likelihood logistic regression of ``y`` (0/1) on the columns of ``x`` (an
    intercept is added) by Newton-Raphson / IRLS: ``b += (X'WX)^-1 X'(y - p)``, ``W =
    diag(p(1-p))``, until the largest step is below ``tol``. Collinear covariates raise
    ValueError; a fit that does not settle (complete separation) returns ``converged=False``."""
    xa = np.asarray(x, dtype=np.float64)
    ya = np.asarray(y, dtype=np.float64)
    design = _design(xa)
    if ya.shape != (design.shape[0],):
        raise ValueError("the outcome must have one value per row of the covariates")
    if design.shape[0] == 0:
        raise ValueError("no rows to fit")
    if not np.isin(ya, (0.0, 1.0)).all():
        raise ValueError("the outcome must be 0 or 1")
    if not np.isfinite(design).all():
        raise ValueError("the covariates have missing or infinite values")
    labels = ["intercept", *(names or [f"x{i}" for i in range(1, design.shape[1])])]
    if len(labels) != design.shape[1]:
        raise ValueError("one name per covariate column")
    if np.linalg.matrix_rank(design) < design.shape[1]:
        raise ValueError("the covariates are collinear (or a column is constant)")
    beta = np.zeros(design.shape[1])
    converged = False
    steps = 0
    for steps in range(1, max_iter + 1):  # noqa: B007 - the count is reported
        p = _sigmoid(design @ beta)
        w = p * (1 - p)
        info = design.T @ (design * w[:, None])
        step = np.linalg.solve(info, design.T @ (ya - p))
        beta = beta + step
        if np.max(np.abs(step)) < tol:
            converged = True
            break
    eta = design @ beta
    p = _sigmoid(eta)
    info = design.T @ (design * (p * (1 - p))[:, None])
    with np.errstate(divide="ignore", invalid="ignore"):
        cov = np.linalg.pinv(info)
        se = np.sqrt(np.diag(cov))
    loglik = float(np.sum(ya * eta - np.logaddexp(0.0, eta)))
    return Logistic(labels, beta, se, loglik, steps, converged)


def horizon_outcome(
    time: npt.ArrayLike, event: npt.ArrayLike, horizon: float
) -> tuple[BoolArray, BoolArray]:
    """For a fixed horizon: ``outcome`` (the event happened at or before it) and ``known``
    (the outcome is known: the event happened by the horizon, or follow-up reached it)."""
    t = np.asarray(time, dtype=np.float64)
    e = np.asarray(event).astype(bool)
    outcome: BoolArray = e & (t <= horizon)
    known: BoolArray = outcome | (t >= horizon)
    return outcome, known


@dataclass(frozen=True)
class CorrectedRate:
    """One cohort: members ``n``, ``observed`` share, ``expected`` share under the reference
    model, and ``corrected`` = reference observed + (observed - expected)."""

    cohort: Any
    n: int
    observed: float
    expected: float
    corrected: float


@dataclass(frozen=True, eq=False)
class Standardised:
    """What :func:`corrected_rates` returns: the reference cohort and its observed rate, the
    model fitted on it (its covariate columns after coding categories as 0/1 columns) and a
    :class:`CorrectedRate` per cohort, in the order of the cohort labels."""

    reference: Any
    reference_observed: float
    model: Logistic
    rates: list[CorrectedRate]

    def rate(self, cohort: Any) -> CorrectedRate:
        """The figures of one cohort."""
        for r in self.rates:
            if r.cohort == cohort:
                return r
        raise KeyError(f"no cohort [{cohort}]")


def _encode(frame: pd.DataFrame, covariates: Sequence[str], is_ref: BoolArray) -> pd.DataFrame:
    """Numbers stay; any other column becomes 0/1 columns, one per level seen in the
    reference cohort except its first (sorted) level, the baseline."""
    parts = []
    for c in covariates:
        col = frame[c]
        if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
            parts.append(col.astype(float).rename(c))
            continue
        levels = sorted(col[is_ref].astype(str).unique())
        values = col.astype(str)
        unknown = sorted(set(values.unique()) - set(levels))
        if unknown:
            raise ValueError(
                f"column [{c}] has values the reference cohort lacks: {', '.join(unknown[:5])}"
            )
        for level in levels[1:]:
            parts.append((values == level).astype(float).rename(f"{c}={level}"))
    return pd.concat(parts, axis=1)


def corrected_rates(
    frame: pd.DataFrame,
    outcome: str,
    covariates: Sequence[str],
    cohort: str,
    reference: Any,
) -> Standardised:
    """Observed, expected and corrected rates of every cohort in ``frame`` (one row per
    member with a known outcome: ``outcome`` 0/1, the ``covariates``, and the ``cohort``
    label), standardised to the cohort labelled ``reference`` (see the module's docstring).
    Numeric covariates enter the model as they are; other columns as 0/1 columns per level."""
    missing = [c for c in [outcome, cohort, *covariates] if c not in frame.columns]
    if missing:
        raise ValueError(f"no column {', '.join(f'[{c}]' for c in missing)} in the data")
    if frame[[outcome, cohort, *covariates]].isna().to_numpy().any():
        raise ValueError("missing values in the outcome, cohort or covariates")
    is_ref = (frame[cohort] == reference).to_numpy()
    if not is_ref.any():
        raise ValueError(f"no members in the reference cohort [{reference}]")
    x = _encode(frame, covariates, is_ref)
    y = frame[outcome].to_numpy(dtype=np.float64)
    model = fit_logistic(x.to_numpy()[is_ref], y[is_ref], list(x.columns))
    if not model.converged:
        raise ValueError("the reference model did not converge (complete separation?)")
    predicted = model.predict(x.to_numpy())
    ref_observed = float(y[is_ref].mean())
    labels = frame[cohort].to_numpy()
    rates = []
    for label in sorted(set(labels.tolist())):  # one pass per cohort, a handful of them
        members = labels == label
        observed = float(y[members].mean())
        expected = float(predicted[members].mean())
        rates.append(
            CorrectedRate(
                cohort=label,
                n=int(members.sum()),
                observed=observed,
                expected=expected,
                corrected=ref_observed + (observed - expected),
            )
        )
    return Standardised(reference, ref_observed, model, rates)
