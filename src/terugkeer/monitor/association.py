"""The link between the basic conditions at release and recidivism, and corrected rates.

**The link** (*samenhang*): general recidivism after release by each condition's status at
release (in order vs not in order; unknown left out) and by the number of conditions in order
(0 to 5, all five known), as hazard ratios from Cox proportional hazards models
(:func:`terugkeer.monitor.cox.fit_cox`, lifelines): *crude* (the condition alone) and
*adjusted* (also age at release, sex, the number of earlier detention periods and the main
offence), each with its 95 % interval, its p-value and a test of proportional hazards; time
in whole weeks, and on a fixed random sample of 10,000 releases when there are more. It is
an association, not an effect: people whose conditions are in order differ in many ways the
models cannot see.

**Corrected rates** (*gecorrigeerde recidive*): the 2-year rate of each release year
standardised to the first year's composition (sex, age band, criminal history, offence type)
through a logistic regression (:func:`terugkeer.monitor.standardise.corrected_rates`).

Published only where the counts behind them are at least ``k``: a hazard ratio where each
compared group has at least ``k`` persons, ``k`` recidivists and ``k`` others (the counts
themselves are not published with it: they are a population no cube holds); a corrected rate where the
year's persons and recidivists (with a known 2-year outcome) are published in a suppressed
cube.
"""

from __future__ import annotations

import numpy as np
import pandas as pd  # type: ignore[import-untyped,unused-ignore]

from terugkeer.monitor.cohorts import release_conditions
from terugkeer.monitor.cox import fit_cox
from terugkeer.monitor.frame import MonitorData
from terugkeer.monitor.indicators import CONDITION_NAMES
from terugkeer.monitor.recidivism import CRITERION, followup
from terugkeer.monitor.standardise import corrected_rates, horizon_outcome
from terugkeer.monitor.suppress import count_cube, suppress_cube
from terugkeer.reintegration.codes import CONDITIONS, InOrder

ASSOCIATION = "samenhang, geen effect"
MAX_MODEL_ROWS = 10_000
BIN_DAYS = 7.0  # the time unit of the models
SAMPLE_SEED = 15
IN_ORDER_COUNT = "aantal op orde"
LINK_COLUMNS = [
    "voorwaarde",
    "model",
    "hr",
    "ondergrens",
    "bovengrens",
    "p",
    "ph_p",
    "toelichting",
]


def _covariates(data: MonitorData, index: pd.Index) -> pd.DataFrame:
    rel = data.released.loc[index]
    age = (rel["end_day"] - rel["birth_date"]).dt.days.to_numpy(dtype=float) / 365.2425
    out = pd.DataFrame(index=index)
    known = age[~np.isnan(age)]
    out["age"] = np.where(np.isnan(age), float(np.median(known)) if len(known) else 30.0, age)
    out["female"] = (rel["sex"] == "F").astype(float)
    out["prior"] = np.minimum(rel["prior_periods"].to_numpy(dtype=float), 3)
    for cat in sorted(pd.unique(rel["offence"]))[1:]:
        out[f"offence_{cat}"] = (rel["offence"] == cat).astype(float)
    return out


def _fit(frame: pd.DataFrame, covariates: list[str]) -> tuple[float, float, float, float, float]:
    result = fit_cox(frame, "years", "event", covariates)
    term = result.terms[0]
    ph = next((t.p for t in result.ph_tests if t.name == term.name), float("nan"))
    return term.hazard_ratio, term.lower, term.upper, term.p, ph


def link(data: MonitorData, k: int, lag: int) -> pd.DataFrame:
    """Hazard ratios of general recidivism per condition (in order vs not) and per condition
    in order more (the number in order), crude and adjusted; suppressed rows say why."""
    fu = followup(data, CRITERION["general"], lag)
    conds = release_conditions(data).reindex(fu.index)
    cov = _covariates(data, fu.index)
    # time in whole weeks (ties handled by Efron's method): the same model, far fewer
    # distinct times to sum over
    weeks = np.ceil(fu["time"].to_numpy(float) / BIN_DAYS) * (BIN_DAYS / 7.0)
    base = pd.DataFrame(
        {"years": weeks * 7.0 / 365.25, "event": fu["event"].astype(float)}, index=fu.index
    ).join(cov)
    adjust = list(cov.columns)
    rows: list[tuple[object, ...]] = []
    for name in [*(c.value for c in CONDITIONS), IN_ORDER_COUNT]:
        if name == IN_ORDER_COUNT:
            x = conds["in_order"].astype(float)
            label = "per basisvoorwaarde meer op orde"
            groups = [x >= 0]  # the number in order is known
        else:
            status = conds[name]
            x = (status == InOrder.YES.value).astype(float).where(status != "unknown")
            label = f"{CONDITION_NAMES[name]}: op orde tegenover niet op orde"
            groups = [status == InOrder.YES.value, status == InOrder.NO.value]
        frame = base.assign(x=x).dropna(subset=["x"])
        if len(frame) > MAX_MODEL_ROWS:  # a fixed random sample keeps the fits to seconds
            frame = frame.sample(MAX_MODEL_ROWS, random_state=SAMPLE_SEED)
        counts = [(int(g.sum()), int(fu["event"][g.fillna(False)].sum())) for g in groups]
        small = any(n < k or e < k or n - e < k for n, e in counts)
        for model, covs in (("ruw", ["x"]), ("gecorrigeerd", ["x", *adjust])):
            if small or not len(frame):
                rows.append((label, model, *[None] * 5, f"minder dan {k} personen of recidivisten"))
                continue
            try:
                hr, lo, hi, p, ph = _fit(frame, covs)
            except ValueError as e:
                rows.append((label, model, *[None] * 5, f"niet te schatten: {e}"))
                continue
            rows.append((label, model, hr, lo, hi, p, ph, ASSOCIATION))
    return pd.DataFrame(rows, columns=LINK_COLUMNS)


def corrected(data: MonitorData, columns: pd.DataFrame, k: int, lag: int) -> pd.DataFrame:
    """Per release year: persons and recidivists with a known 2-year outcome, the observed,
    expected and corrected 2-year rate (reference: the first year); suppressed where small."""
    fu = followup(data, CRITERION["general"], lag)
    outcome, known = horizon_outcome(fu["time"].to_numpy(float), fu["event"].to_numpy(bool), 730)
    idx = fu.index[known]
    if not len(idx):
        return pd.DataFrame(columns=["jaar", "personen", "recidivisten", "geobserveerd"])
    cols = columns.loc[idx]
    rel = data.released.loc[idx]
    frame = pd.DataFrame(
        {
            "y": outcome[known].astype(float),
            "year": cols["year"].to_numpy(),
            "sex": rel["sex"].to_numpy(),
            "age": cols["age_band"].to_numpy(),
            "history": np.minimum(rel["prior_periods"].to_numpy(), 2).astype(str),
            "offence": rel["offence"].to_numpy(),
        }
    )
    years = sorted(pd.unique(frame["year"]))
    full = count_cube(
        frame.assign(hit=np.where(frame["y"] > 0, "ja", "nee")),
        ["year", "hit"],
        [years, ("ja", "nee")],
    )
    hidden = suppress_cube(full, k)
    try:
        std = corrected_rates(frame, "y", ["sex", "age", "history", "offence"], "year", years[0])
        rates = {r.cohort: r for r in std.rates}
    except ValueError:
        rates = {}
    rows = []
    for i, year in enumerate(years):
        ok = not hidden[i].any()
        r = rates.get(year)
        rows.append(
            {
                "jaar": year,
                "personen": int(full[i, 2]) if not hidden[i, 2] else None,
                "recidivisten": int(full[i, 0]) if not hidden[i, 0] else None,
                "geobserveerd": r.observed if ok and r else None,
                "verwacht": r.expected if ok and r else None,
                "gecorrigeerd": r.corrected if ok and r else None,
                "referentiejaar": years[0],
            }
        )
    return pd.DataFrame(rows)
