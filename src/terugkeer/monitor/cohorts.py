"""Cohorts: the dimensions a release can be grouped by, as columns of the released periods.

Every dimension has a fixed list of values (plus ``onbekend``), so a published table always
has the same rows whatever the data; the release year is the cohort proper (the Recidivemonitor
follows release cohorts) and every table is published per release year and for all years
together (``docs/monitor.md``, "Cohorts").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd  # type: ignore[import-untyped,unused-ignore]

from terugkeer.monitor.frame import UNKNOWN, MonitorData
from terugkeer.reintegration.codes import CONDITIONS, InOrder, Moment

ALL = "totaal"


@dataclass(frozen=True, slots=True)
class Dimension:
    code: str
    label: str  # Dutch


DIMENSIONS: tuple[Dimension, ...] = (
    Dimension("quarter", "kwartaal van ontslag"),
    Dimension("population", "populatie"),
    Dimension("municipality", "gemeente"),
    Dimension("age_band", "leeftijd bij ontslag"),
    Dimension("sex", "geslacht"),
    Dimension("stay", "verblijfsduur"),
    Dimension("offence", "hoofddelict"),
    Dimension("conditions_release", "basisvoorwaarden bij ontslag"),
    Dimension("in_order_release", "aantal basisvoorwaarden op orde bij ontslag"),
)
DIMENSION = {d.code: d for d in DIMENSIONS}

Band = tuple[int, int, str]
AGE_BANDS: tuple[Band, ...] = (
    (0, 18, "jonger dan 18"),
    (18, 25, "18-24"),
    (25, 35, "25-34"),
    (35, 45, "35-44"),
    (45, 55, "45-54"),
    (55, 200, "55 en ouder"),
)
STAY_BANDS: tuple[Band, ...] = (
    (0, 15, "tot 15 dagen"),
    (15, 92, "15 dagen tot 3 maanden"),
    (92, 366, "3 maanden tot 1 jaar"),
    (366, 10**6, "meer dan 1 jaar"),
)
POPULATION_LABELS = {"pi": "volwassenen (PI)", "jji": "jeugd (JJI)", "tbs": "tbs", "pij": "pij"}
SEX_LABELS = {"M": "man", "F": "vrouw", "X": "anders"}
ALL_IN_ORDER = {
    InOrder.YES.value: "alle vijf op orde",
    InOrder.NO.value: "niet alle vijf op orde",
    InOrder.UNKNOWN.value: UNKNOWN,
}


def _bands(values: np.ndarray, bands: tuple[Band, ...]) -> np.ndarray:
    out = np.full(len(values), UNKNOWN, dtype=object)
    for lo, hi, label in bands:
        out[(values >= lo) & (values < hi)] = label
    return out


def release_conditions(data: MonitorData) -> pd.DataFrame:
    """Per released period: each condition at release (yes/no/unknown; nothing recorded is
    unknown), ``all_in_order`` (the rule of docs/conditions.md) and ``in_order`` (how many of
    the five are in order when all five are known, else nan)."""
    idx = data.released.index
    cond = data.conditions
    at = cond.xs(Moment.RELEASE.value, level="moment") if len(cond) else cond
    at = at.astype(object).reindex(idx).fillna(InOrder.UNKNOWN.value)
    cols = [c.value for c in CONDITIONS]
    if not len(at.columns):
        at = pd.DataFrame(InOrder.UNKNOWN.value, index=idx, columns=cols)
    values = at[cols].to_numpy(dtype=object)
    yes = (values == InOrder.YES.value).sum(axis=1)
    no = (values == InOrder.NO.value).sum(axis=1)
    unknown = (values == InOrder.UNKNOWN.value).sum(axis=1)
    out = at[cols].copy()
    out["all_in_order"] = np.where(
        no > 0, InOrder.NO.value, np.where(yes == 5, InOrder.YES.value, InOrder.UNKNOWN.value)
    )
    out["in_order"] = np.where(unknown == 0, yes, np.nan)
    return out


def cohort_columns(data: MonitorData) -> pd.DataFrame:
    """The released periods with a column per dimension (Dutch labels) plus ``year``."""
    rel = data.released
    end = rel["end_day"]
    out = pd.DataFrame(index=rel.index)
    out["year"] = end.dt.year.astype(str)
    out["quarter"] = end.dt.year.astype(str) + "-K" + end.dt.quarter.astype(str)
    out["population"] = rel["population"].map(POPULATION_LABELS).fillna(UNKNOWN)
    out["municipality"] = rel["municipality"]
    age = (end - rel["birth_date"]).dt.days.to_numpy(dtype=float) / 365.2425
    out["age_band"] = _bands(np.floor(age), AGE_BANDS)
    out["sex"] = rel["sex"].map(SEX_LABELS).fillna(UNKNOWN)
    out["stay"] = _bands(rel["stay_days"].to_numpy(dtype=float), STAY_BANDS)
    out["offence"] = rel["offence"]
    conds = release_conditions(data)
    out["conditions_release"] = conds["all_in_order"].map(ALL_IN_ORDER)
    n = conds["in_order"].to_numpy(dtype=float)
    out["in_order_release"] = np.where(
        np.isnan(n), UNKNOWN, np.nan_to_num(n).astype(int).astype(str)
    )
    return out


def dimension_values(code: str, columns: pd.DataFrame) -> list[str]:
    """A dimension's values that occur, in display order: the fixed lists where there is
    one, else sorted; ``onbekend`` last."""
    fixed: dict[str, list[str]] = {
        "population": list(POPULATION_LABELS.values()),
        "age_band": [b[2] for b in AGE_BANDS],
        "sex": list(SEX_LABELS.values()),
        "stay": [b[2] for b in STAY_BANDS],
        "conditions_release": [ALL_IN_ORDER[k] for k in ("yes", "no")],
        "in_order_release": [str(i) for i in range(6)],
    }
    present = set(pd.unique(columns[code]))
    if code in fixed:
        values = [v for v in fixed[code] if v in present]
    else:
        values = sorted(v for v in present if v != UNKNOWN)
    # values nobody has are left out (a row of zeros says nothing about a person)
    return [*values, UNKNOWN] if UNKNOWN in present else values
