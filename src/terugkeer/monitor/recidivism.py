"""Recidivism as the WODC Recidivemonitor measures it, from the store's reconvictions.

* **Criteria**: general (a counting decision — conviction, settlement, policy dismissal — for
  any crime), serious (statutory maximum of 4 years or more), very serious (8 years or more),
  and a new custodial sentence. Acquittals and technical dismissals never count.
* **Dated at the offence date**; an offence on the release day itself is not after the release.
* **Follow-up** starts at the release into society and ends at the first of: the data cut-off
  less the registration lag (``monitor_registration_lag_months``), the person's death, and the
  person's next intake. Every criterion counts offences committed in freedom, so each needs
  freedom: time back in detention is not time at risk, and the follow-up is censored at the
  new intake (an offence dated on or before that day still counts: it is what brought the
  person back).
* **Kaplan-Meier** cumulative recidivism per group with a 95 % confidence interval (lifelines'
  exponential Greenwood interval) and the numbers at risk; the 1, 2 and 5-year prevalence is
  *observed* when every member's follow-up reaches the horizon (or ends in recidivism before it)
  — then it is the plain share, events over persons — and *estimated* (Kaplan-Meier) otherwise.

Figures here are not suppressed; :mod:`terugkeer.monitor.suppress` does that before anything is
published.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd  # type: ignore[import-untyped,unused-ignore]

from terugkeer.monitor.frame import MonitorData, days


@dataclass(frozen=True, slots=True)
class Criterion:
    code: str
    label: str  # Dutch
    min_statutory_max: int | None = None  # years
    custodial: bool = False


CRITERIA: tuple[Criterion, ...] = (
    Criterion("general", "algemene recidive"),
    Criterion("serious", "ernstige recidive (strafmaximum 4 jaar of meer)", 4),
    Criterion("very_serious", "zeer ernstige recidive (strafmaximum 8 jaar of meer)", 8),
    Criterion("custodial", "nieuwe vrijheidsbenemende straf", custodial=True),
)
CRITERION = {c.code: c for c in CRITERIA}

# horizons in days: an offence on day 730 after the release day is within two years
HORIZONS: dict[str, int] = {"1 jaar": 365, "2 jaar": 730, "5 jaar": 1826}
OBSERVED = "waargenomen"
ESTIMATED = "geschat"


def followup_end(cutoff: date, lag_months: int) -> pd.Timestamp:
    """The last day of follow-up any release can have: the cut-off less the lag."""
    return pd.Timestamp(cutoff) - pd.DateOffset(months=lag_months)


def followup(data: MonitorData, criterion: Criterion, lag_months: int) -> pd.DataFrame:
    """Per release into society (index: period_id): ``time`` in days from the release to the
    first qualifying offence (``event``) or to the end of follow-up; ``reach``: the days of
    follow-up the person has whatever happens (to the end of follow-up); ``censor``: why the
    follow-up ended without an event (``cutoff``, ``death``, ``detention``). Releases without
    any follow-up (released on or after its end) are left out."""
    rel = data.released
    rec = data.reconvictions
    mask = np.ones(len(rec), dtype=bool)
    if criterion.min_statutory_max is not None:
        mask &= rec["statutory_max_years"].to_numpy() >= criterion.min_statutory_max
    if criterion.custodial:
        mask &= rec["custodial"].to_numpy()
    right = rec.loc[mask, ["person_id", "offence_day"]].sort_values("offence_day")
    left = rel[["person_id", "end_day"]].reset_index().sort_values("end_day")
    merged = pd.merge_asof(
        left,
        right,
        left_on="end_day",
        right_on="offence_day",
        by="person_id",
        direction="forward",
        allow_exact_matches=False,
    ).set_index("period_id")
    merged = merged.reindex(rel.index)
    release = days(rel["end_day"])
    first = days(merged["offence_day"])
    admin = float(days(pd.Series([followup_end(data.cutoff, lag_months)]))[0])
    death = np.nan_to_num(days(rel["death_day"]), nan=np.inf)
    back = np.nan_to_num(days(rel["next_intake_day"]), nan=np.inf)
    end = np.minimum(np.minimum(admin, death), back)
    event = ~np.isnan(first) & (first <= end)
    time = np.where(event, first - release, end - release)
    censor = np.where(
        event,
        "",
        np.where(end == back, "detention", np.where(end == death, "death", "cutoff")),
    )
    out = pd.DataFrame(
        {
            "time": time,
            "event": event,
            "reach": np.where(event, np.inf, end - release),
            "censor": censor,
        },
        index=rel.index,
    )
    return out[(out["time"] > 0) | out["event"]]


# --- Kaplan-Meier -----------------------------------------------------------------------------


def km_curves(time: np.ndarray, event: np.ndarray, group: np.ndarray) -> pd.DataFrame:
    """Kaplan-Meier per group: the one place the monitor calls the estimator. Long form:
    ``group, time, at_risk, events, survival, lower, upper`` (95 % interval of the survival),
    one row per distinct time of each group, starting at time 0."""
    from lifelines import KaplanMeierFitter  # type: ignore[import-untyped,unused-ignore]

    frames = []
    keys = pd.unique(group)
    for key in keys:
        sel = group == key
        kmf = KaplanMeierFitter().fit(time[sel], event[sel])
        table = kmf.event_table
        ci = kmf.confidence_interval_survival_function_
        frames.append(
            pd.DataFrame(
                {
                    "group": key,
                    "time": table.index.to_numpy(dtype=float),
                    "at_risk": table["at_risk"].to_numpy(dtype=np.int64),
                    "events": table["observed"].to_numpy(dtype=np.int64),
                    "survival": kmf.survival_function_.iloc[:, 0].to_numpy(dtype=float),
                    "lower": ci.iloc[:, 0].to_numpy(dtype=float),
                    "upper": ci.iloc[:, 1].to_numpy(dtype=float),
                }
            )
        )
    if not frames:
        return pd.DataFrame(
            columns=["group", "time", "at_risk", "events", "survival", "lower", "upper"]
        )
    return pd.concat(frames, ignore_index=True)


def at(curves: pd.DataFrame, horizon: float) -> pd.DataFrame:
    """Each group's survival (with its interval) at ``horizon``: the step at or before it."""
    upto = curves[curves["time"] <= horizon]
    return upto.groupby("group", sort=False).last()[["survival", "lower", "upper"]]


def prevalence(
    fu: pd.DataFrame, groups: pd.Series, horizons: dict[str, int] | None = None
) -> pd.DataFrame:
    """Cumulative recidivism per group at each horizon: ``group, horizon, persons, events``
    (recidivists by the horizon), ``share`` and its 95 % interval, ``label``
    (observed/estimated). ``groups`` maps the period ids of ``fu`` to a group."""
    horizons = horizons or HORIZONS
    g = groups.reindex(fu.index).to_numpy()
    time = fu["time"].to_numpy(dtype=float)
    event = fu["event"].to_numpy(dtype=bool)
    reach = fu["reach"].to_numpy(dtype=float)
    curves = km_curves(time, event, g)
    rows = []
    frame = pd.DataFrame({"group": g, "time": time, "event": event, "reach": reach})
    for name, h in horizons.items():
        hit = frame["event"] & (frame["time"] <= h)
        complete = hit | (frame["reach"] >= h)
        agg = (
            frame.assign(hit=hit, complete=complete)
            .groupby("group", sort=True)
            .agg(persons=("hit", "size"), events=("hit", "sum"), complete=("complete", "all"))
        )
        km = at(curves, h).reindex(agg.index)
        observed = agg["complete"].to_numpy()
        share = np.where(observed, agg["events"] / agg["persons"], 1.0 - km["survival"].to_numpy())
        rows.append(
            pd.DataFrame(
                {
                    "group": agg.index,
                    "horizon": name,
                    "days": h,
                    "persons": agg["persons"].to_numpy(),
                    "events": agg["events"].to_numpy(),
                    "share": share,
                    "lower": 1.0 - km["upper"].to_numpy(),
                    "upper": 1.0 - km["lower"].to_numpy(),
                    "label": np.where(observed, OBSERVED, ESTIMATED),
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


def curve_table(fu: pd.DataFrame, groups: pd.Series) -> pd.DataFrame:
    """Kaplan-Meier curves as cumulative recidivism (1 − S) per group, for plots and CSV."""
    g = groups.reindex(fu.index).to_numpy()
    curves = km_curves(fu["time"].to_numpy(float), fu["event"].to_numpy(bool), g)
    return pd.DataFrame(
        {
            "group": curves["group"],
            "days": curves["time"],
            "at_risk": curves["at_risk"],
            "events": curves["events"],
            "cumulative": 1.0 - curves["survival"],
            "lower": 1.0 - curves["upper"],
            "upper": 1.0 - curves["lower"],
        }
    )


def at_risk_at(fu: pd.DataFrame, groups: pd.Series, points: Sequence[int]) -> pd.DataFrame:
    """Numbers at risk (still followed, no event yet) at the start of each day in ``points``."""
    g = groups.reindex(fu.index)
    out: dict[Hashable, list[int]] = {}
    for key, idx in g.groupby(g, sort=True).groups.items():
        t = fu.loc[idx, "time"].to_numpy(float)
        out[key] = [int((t >= p).sum()) for p in points]
    return pd.DataFrame.from_dict(out, orient="index", columns=[f"dag {p}" for p in points])
