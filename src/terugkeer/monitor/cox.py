"""Cox proportional hazards: a thin, documented wrapper around ``lifelines.CoxPHFitter``.

:func:`fit_cox` fits ``h(t | x) = h0(t) exp(b'x)`` by partial likelihood with Efron's method
for tied event times (lifelines' only method, and R ``survival::coxph``'s default), optionally
stratified (a baseline hazard per stratum, as R's ``strata()``), and returns per covariate the
coefficient ``b``, its standard error, the hazard ratio ``exp(b)`` with its Wald interval
``exp(b ± z se)``, the Wald z and two-sided p-value; for the model the likelihood-ratio test
against the empty model, Harrell's concordance and the test of proportional hazards.

The test of proportional hazards is the Grambsch-Therneau score test on the scaled Schoenfeld
residuals as R's ``cox.zph`` computed it before survival 3.0 (2019) and lifelines still does
(``lifelines.statistics.proportional_hazard_test``): per covariate ``j``, with ``g`` the
transformed event times less their mean, ``U`` the Schoenfeld residuals (one row per event),
``V`` the coefficients' covariance and ``d`` the number of events::

    T_j = (g' U V[:, j])^2 d / (V[j, j] sum g^2)      chi-squared, 1 df
    T_global = (g' U) V (g' U)' d / sum g^2            chi-squared, p df

The time transform is lifelines' default ``rank`` (also ``km``, ``identity``, ``log``). R 3.0
and later uses an exact score test, so its ``cox.zph`` figures differ somewhat from these.

Covariates must be numbers (code a category as 0/1 columns). The results describe an
*association* in the data, not the effect of a covariate.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped]
from scipy.stats import chi2  # type: ignore[import-untyped]

TRANSFORMS = ("rank", "km", "identity", "log")


@dataclass(frozen=True)
class CoxTerm:
    """One covariate: coefficient (log hazard ratio), its standard error, the hazard ratio and
    its confidence interval, the Wald z and its two-sided p-value."""

    name: str
    coef: float
    se: float
    hazard_ratio: float
    lower: float
    upper: float
    z: float
    p: float


@dataclass(frozen=True)
class ChiSquareTest:
    """A chi-squared test: its name, statistic, degrees of freedom and p-value."""

    name: str
    statistic: float
    df: int
    p: float


@dataclass(frozen=True)
class CoxResult:
    """What :func:`fit_cox` returns; :meth:`to_dict` gives it as plain JSON values."""

    n: int
    events: int
    alpha: float
    ties: str
    strata: list[str]
    terms: list[CoxTerm]
    log_likelihood: float
    likelihood_ratio: ChiSquareTest
    concordance: float
    ph_transform: str
    ph_tests: list[ChiSquareTest]
    ph_global: ChiSquareTest
    notes: list[str] = field(default_factory=list)

    def term(self, name: str) -> CoxTerm:
        """The covariate named ``name``."""
        for t in self.terms:
            if t.name == name:
                return t
        raise KeyError(f"no covariate [{name}] in this model")

    def to_dict(self) -> dict[str, Any]:
        """The result as a dictionary of plain values (the CLI's ``--json`` document)."""
        return asdict(self)


def _check_frame(
    frame: pd.DataFrame, time: str, event: str, covariates: Sequence[str], strata: Sequence[str]
) -> pd.DataFrame:
    if not covariates:
        raise ValueError("give at least one covariate")
    columns = [time, event, *covariates, *strata]
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"no column {', '.join(f'[{c}]' for c in missing)} in the data")
    if len(set(columns)) != len(columns):
        raise ValueError("a column is named twice among time, event, covariates and strata")
    data = frame[columns].copy()
    for c in [time, event, *covariates]:
        values = pd.to_numeric(data[c], errors="coerce")
        bad = values.isna() | ~np.isfinite(values.astype(float))
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise ValueError(
                f"column [{c}] has {int(bad.sum())} missing or non-numeric values "
                f"(first in data row {row + 1})"
            )
        data[c] = values.astype(float)
    if (data[time] <= 0).any():
        raise ValueError(f"column [{time}] must be > 0 for a Cox model")
    if not data[event].isin([0.0, 1.0]).all():
        raise ValueError(f"column [{event}] must be 0 or 1")
    if data[event].sum() == 0:
        raise ValueError(f"column [{event}] has no events: nothing to fit")
    if data[list(strata)].isna().to_numpy().any():
        raise ValueError("a strata column has missing values")
    return data


def fit_cox(
    frame: pd.DataFrame,
    time: str,
    event: str,
    covariates: Sequence[str],
    *,
    strata: Sequence[str] = (),
    alpha: float = 0.05,
    ph_transform: str = "rank",
) -> CoxResult:
    """Fit a Cox model of ``time``/``event`` on ``covariates`` (columns of ``frame``),
    stratified by ``strata`` columns if given. Bad input raises ValueError naming the column;
    a model that does not converge raises ValueError (lifelines' ConvergenceError)."""
    from lifelines import CoxPHFitter  # type: ignore[import-untyped]

    if ph_transform not in TRANSFORMS:
        raise ValueError(f"time transform must be one of {', '.join(TRANSFORMS)}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie between 0 and 1, not {alpha}")
    strata = list(strata)
    data = _check_frame(frame, time, event, covariates, strata)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fitted = CoxPHFitter(alpha=alpha, strata=strata or None)
        fitted.fit(data, duration_col=time, event_col=event)
        ph_tests, ph_global = _ph_tests(fitted, data, ph_transform)
        lr = fitted.log_likelihood_ratio_test()
    summary = fitted.summary
    level = f"{round(100 * (1 - alpha))}%"
    terms = [
        CoxTerm(
            name=str(name),
            coef=float(row["coef"]),
            se=float(row["se(coef)"]),
            hazard_ratio=float(row["exp(coef)"]),
            lower=float(row[f"exp(coef) lower {level}"]),
            upper=float(row[f"exp(coef) upper {level}"]),
            z=float(row["z"]),
            p=float(row["p"]),
        )
        for name, row in summary.iterrows()
    ]
    # lifelines' own warnings (convergence, statistics) are RuntimeWarnings; others are noise
    notes = sorted(
        {
            str(w.message).strip().splitlines()[0]
            for w in caught
            if issubclass(w.category, RuntimeWarning)
        }
    )
    return CoxResult(
        n=len(data),
        events=int(data[event].sum()),
        alpha=alpha,
        ties="efron",
        strata=strata,
        terms=terms,
        log_likelihood=float(fitted.log_likelihood_),
        likelihood_ratio=ChiSquareTest(
            "likelihood ratio", float(lr.test_statistic), int(lr.degrees_freedom), float(lr.p_value)
        ),
        concordance=float(fitted.concordance_index_),
        ph_transform=ph_transform,
        ph_tests=ph_tests,
        ph_global=ph_global,
        notes=notes,
    )


def _ph_tests(
    fitted: Any, data: pd.DataFrame, transform: str
) -> tuple[list[ChiSquareTest], ChiSquareTest]:
    """Per-covariate and global tests of proportional hazards (the module's docstring)."""
    from lifelines.statistics import (  # type: ignore[import-untyped]
        TimeTransformers,
        proportional_hazard_test,
    )

    per = proportional_hazard_test(fitted, data, time_transform=transform)
    by_name = {
        str(name): float(stat) for name, stat in zip(per.name, per.test_statistic, strict=True)
    }
    events = fitted.event_observed
    times = TimeTransformers().get(transform)(fitted.durations, events, fitted.weights)
    times = pd.Series(np.asarray(times, dtype=float), index=fitted.durations.index)
    resid = fitted.compute_residuals(data, kind="schoenfeld")
    g = times.loc[resid.index].to_numpy()
    g = g - g.mean()
    cov = fitted.variance_matrix_.loc[resid.columns, resid.columns].to_numpy()
    score = g @ resid.to_numpy()
    d = float(np.asarray(events).sum())
    ss = float(g @ g)
    tests = []
    for j, name in enumerate(resid.columns):
        stat = by_name.get(str(name), float((score @ cov[:, j]) ** 2 * d / (cov[j, j] * ss)))
        tests.append(ChiSquareTest(str(name), stat, 1, float(chi2.sf(stat, 1))))
    total = float(score @ cov @ score * d / ss)
    p = len(resid.columns)
    return tests, ChiSquareTest("global", total, p, float(chi2.sf(total, p)))
