"""The estimators on a researcher's own CSV file: reading the columns with plain errors, and the
stable JSON documents of ``terugkeer monitor km`` and ``terugkeer monitor cox``.

Documents (version 1; fields are only ever added, never renamed or removed):

``terugkeer.monitor.km/1``::

    {"schema": "terugkeer.monitor.km/1", "file": ..., "time": COL, "event": COL, "by": COL|null,
     "method": {"estimator": "kaplan-meier", "interval": "exponential Greenwood (log(-log))",
                "level": 0.95},
     "groups": [{"group": LABEL, "n": int, "events": int, "censored": int,
                 "median_time": number|null,
                 "at": [{"t", "cumulative_incidence", "lower", "upper", "at_risk", "events",
                         "censored_before", "observed"}, ...],
                 "rows": [{"time", "at_risk", "events", "censored", "survival", "lower",
                           "upper", "cumulative_incidence"}, ...]}, ...]}

``rows`` has one entry per distinct time (event or censoring) of the group; ``lower``/``upper``
bound the survival S(t); ``at`` holds the cumulative incidence 1 - S(t) at each ``--at`` horizon
with its own bounds (see :class:`terugkeer.monitor.survival.Prevalence`). The group is
``"all"`` without ``--by``.

``terugkeer.monitor.cox/1``: ``{"schema", "file", "time", "event", "covariates", "strata",
"method": {"estimator": "cox proportional hazards", "ties": "efron", "level": 0.95},
"n", "events", "terms": [{"name", "coef", "se", "hazard_ratio", "lower", "upper", "z", "p"}],
"log_likelihood", "likelihood_ratio": {"statistic", "df", "p"}, "concordance",
"proportional_hazards": {"transform", "tests": [{"name", "statistic", "df", "p"}],
"global": {...}}, "notes": [...], "interpretation": "..."}``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped]

from terugkeer.monitor.cox import CoxResult
from terugkeer.monitor.survival import KMResult, prevalence_at

KM_SCHEMA = "terugkeer.monitor.km/1"
COX_SCHEMA = "terugkeer.monitor.cox/1"
ASSOCIATION = "hazard ratios describe an association in these data, not the effect of a covariate"


def read_columns(
    path: Path,
    numeric: Sequence[str],
    labels: Sequence[str] = (),
    *,
    binary: Sequence[str] = (),
) -> pd.DataFrame:
    """The named columns of a CSV file (comma or semicolon separated, header on the first
    line): ``numeric`` ones as floats, ``labels`` as read; the ``binary`` ones among the
    numeric must hold 0 or 1. A missing column, an empty cell or a value that is not a number
    (or not 0/1) raises ValueError naming the file, the column and the first line."""
    with path.open(encoding="utf-8-sig") as f:
        header = f.readline()
    if not header.strip():
        raise ValueError(f"{path}: empty file (a header line is needed)")
    sep = ";" if header.count(";") > header.count(",") else ","
    frame = pd.read_csv(path, sep=sep, encoding="utf-8-sig", skipinitialspace=True)
    columns = [*numeric, *labels]
    missing = [c for c in dict.fromkeys(columns) if c not in frame.columns]
    if missing:
        names = ", ".join(f"[{c}]" for c in missing)
        have = ", ".join(str(c) for c in frame.columns[:12])
        raise ValueError(f"{path}: no column {names} (the file has: {have})")
    out = pd.DataFrame(index=frame.index)
    for c in dict.fromkeys(columns):
        raw = frame[c]
        if c in numeric:
            values = pd.to_numeric(raw, errors="coerce")
            bad = values.isna().to_numpy() | ~np.isfinite(values.to_numpy(dtype=float))
        else:
            values = raw
            bad = raw.isna().to_numpy()
        if bad.any():
            line = int(np.flatnonzero(bad)[0]) + 2  # the header is line 1
            kind = "empty or non-numeric" if c in numeric else "empty"
            raise ValueError(
                f"{path}: column [{c}] has {int(bad.sum())} {kind} values (first on line {line})"
            )
        out[c] = values.astype(float) if c in numeric else values
        if c in binary and not out[c].isin([0.0, 1.0]).all():
            wrong = ~out[c].isin([0.0, 1.0]).to_numpy()
            line = int(np.flatnonzero(wrong)[0]) + 2
            raise ValueError(
                f"{path}: column [{c}] must be 0 or 1; {int(wrong.sum())} values are not "
                f"(first on line {line})"
            )
    if out.empty:
        raise ValueError(f"{path}: no data rows")
    return out


def _plain(value: Any) -> Any:
    """A JSON-ready scalar: numpy numbers as Python numbers, NaN and infinities as None."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def median_times(result: KMResult) -> list[float | None]:
    """Per group, the first time at which S(t) ≤ 0.5 (lifelines' and R's median), or None."""
    below = result.survival <= 0.5
    medians: list[float | None] = []
    for g in range(result.groups.size):  # one cheap slice per group, for the document
        rows = slice(int(result.offsets[g]), int(result.offsets[g + 1]))
        hits = np.flatnonzero(below[rows])
        medians.append(float(result.time[rows][hits[0]]) if hits.size else None)
    return medians


def km_document(
    result: KMResult,
    *,
    source: str,
    time: str,
    event: str,
    by: str | None,
    horizons: Sequence[float] = (),
) -> dict[str, Any]:
    """The ``terugkeer.monitor.km/1`` document (the module's docstring)."""
    prevalences = [prevalence_at(result, h) for h in horizons]
    medians = median_times(result)
    frame = result.to_frame()
    groups = []
    for g, label in enumerate(result.groups.tolist()):
        rows = frame.iloc[int(result.offsets[g]) : int(result.offsets[g + 1])]
        groups.append(
            {
                "group": _plain(label),
                "n": int(result.n[g]),
                "events": int(rows["events"].sum()),
                "censored": int(rows["censored"].sum()),
                "median_time": medians[g],
                "at": [
                    {
                        "t": p.t,
                        "cumulative_incidence": float(p.cumulative_incidence[g]),
                        "lower": float(p.lower[g]),
                        "upper": float(p.upper[g]),
                        "at_risk": int(p.at_risk[g]),
                        "events": int(p.events[g]),
                        "censored_before": int(p.censored_before[g]),
                        "observed": bool(p.observed[g]),
                    }
                    for p in prevalences
                ],
                "rows": [
                    {
                        "time": float(r.time),
                        "at_risk": int(r.at_risk),
                        "events": int(r.events),
                        "censored": int(r.censored),
                        "survival": float(r.survival),
                        "lower": float(r.lower),
                        "upper": float(r.upper),
                        "cumulative_incidence": float(r.cumulative_incidence),
                    }
                    for r in rows.itertuples(index=False)
                ],
            }
        )
    return {
        "schema": KM_SCHEMA,
        "file": source,
        "time": time,
        "event": event,
        "by": by,
        "method": {
            "estimator": "kaplan-meier",
            "interval": "exponential Greenwood (log(-log))",
            "level": 1 - result.alpha,
        },
        "groups": groups,
    }


def cox_document(
    result: CoxResult, *, source: str, time: str, event: str, covariates: Sequence[str]
) -> dict[str, Any]:
    """The ``terugkeer.monitor.cox/1`` document (the module's docstring)."""
    data = result.to_dict()

    def test(t: dict[str, Any]) -> dict[str, Any]:
        return {k: _plain(v) for k, v in t.items()}

    return {
        "schema": COX_SCHEMA,
        "file": source,
        "time": time,
        "event": event,
        "covariates": list(covariates),
        "strata": data["strata"],
        "method": {
            "estimator": "cox proportional hazards",
            "ties": data["ties"],
            "level": 1 - result.alpha,
        },
        "n": result.n,
        "events": result.events,
        "terms": [{k: _plain(v) for k, v in t.items()} for t in data["terms"]],
        "log_likelihood": _plain(result.log_likelihood),
        "likelihood_ratio": {
            k: _plain(v) for k, v in data["likelihood_ratio"].items() if k != "name"
        },
        "concordance": _plain(result.concordance),
        "proportional_hazards": {
            "transform": result.ph_transform,
            "tests": [test(t) for t in data["ph_tests"]],
            "global": test(data["ph_global"]),
        },
        "notes": data["notes"],
        "interpretation": ASSOCIATION,
    }
