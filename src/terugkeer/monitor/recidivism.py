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
* **Kaplan-Meier** cumulative recidivism per group (``survival.km_many``, lifelines' figures)
  with a 95 % confidence interval (the exponential Greenwood interval) and the numbers at risk; the 1, 2 and 5-year prevalence is
  *observed* when every member's follow-up reaches the horizon (or ends in recidivism before it)
  — then it is the plain share, events over persons — and *estimated* (Kaplan-Meier) otherwise.

Figures here are not suppressed; :mod:`terugkeer.monitor.suppress` does that before anything is
published.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd  # type: ignore[import-untyped,unused-ignore]

from terugkeer.monitor.cohorts import DIMENSIONS, dimension_values
from terugkeer.monitor.frame import MonitorData, days
from terugkeer.monitor.suppress import TOTAL, count_cube, suppress_family
from terugkeer.monitor.survival import km_many, prevalence_at


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
    right = right.astype({"person_id": "int64", "offence_day": "datetime64[s]"})
    left = rel[["person_id", "end_day"]].reset_index().sort_values("end_day")
    left = left.astype({"person_id": "int64", "end_day": "datetime64[s]"})
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


# --- Kaplan-Meier (terugkeer.monitor.survival: lifelines' figures, all groups at once) -------


def km_curves(time: np.ndarray, event: np.ndarray, group: np.ndarray) -> pd.DataFrame:
    """Kaplan-Meier per group. Long form: ``group, time, at_risk, events, survival, lower,
    upper`` (95 % interval of the survival), one row per distinct time of each group."""
    columns = ["group", "time", "at_risk", "events", "survival", "lower", "upper"]
    if not len(time):
        return pd.DataFrame(columns=columns)
    result = km_many(time, event, group)
    return result.to_frame()[["group", "time", "at_risk", "events", "survival", "lower", "upper"]]


def prevalence(
    fu: pd.DataFrame, groups: pd.Series, horizons: dict[str, int] | None = None
) -> pd.DataFrame:
    """Cumulative recidivism per group at each horizon: ``group, horizon, days, persons,
    events`` (recidivists by the horizon), ``share`` and its 95 % interval, ``label``
    (observed: the plain share; estimated: Kaplan-Meier). ``groups`` maps the period ids of
    ``fu`` to a group."""
    horizons = horizons or HORIZONS
    if not len(fu):
        return pd.DataFrame(
            columns=[
                "group",
                "horizon",
                "days",
                "persons",
                "events",
                "share",
                "lower",
                "upper",
                "label",
            ]
        )
    g = groups.reindex(fu.index).to_numpy(dtype=object).astype(str)
    result = km_many(fu["time"].to_numpy(float), fu["event"].to_numpy(bool), g)
    rows = []
    for name, h in horizons.items():
        p = prevalence_at(result, h)
        rows.append(
            pd.DataFrame(
                {
                    "group": p.groups,
                    "horizon": name,
                    "days": h,
                    "persons": p.n,
                    "events": p.events,
                    "share": p.cumulative_incidence,
                    "lower": p.lower,
                    "upper": p.upper,
                    "label": np.where(p.observed, OBSERVED, ESTIMATED),
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


def curve_table(fu: pd.DataFrame, groups: pd.Series) -> pd.DataFrame:
    """Kaplan-Meier curves as cumulative recidivism (1 − S) per group, for plots and CSV."""
    g = groups.reindex(fu.index).to_numpy(dtype=object).astype(str)
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


# --- published: suppressed cubes --------------------------------------------------------------


def recidivism_table(
    data: MonitorData, columns: pd.DataFrame, k: int, lag_months: int
) -> pd.DataFrame:
    """Per criterion, horizon, dimension, value and release year (or ``totaal``): persons
    followed, recidivists by the horizon and the share (observed or estimated) with its 95 %
    interval; counts from cubes (year × value × recidivist or not) suppressed together; a
    share only where both counts are published."""
    fulls, shared, meta = [], [], []
    shares: dict[tuple[str, str, str], pd.DataFrame] = {}
    for crit in CRITERIA:
        fu = followup(data, crit, lag_months)
        cols = columns.loc[fu.index]
        years = sorted(pd.unique(cols["year"]))
        for dim in DIMENSIONS:
            values = dimension_values(dim.code, cols)
            year = cols["year"].to_numpy(dtype=object)
            value = cols[dim.code].to_numpy(dtype=object)
            groups = {
                "cell": year + "|" + value,
                "year": year + "|" + TOTAL,
                "value": TOTAL + "|" + value,
                "all": np.full(len(cols), TOTAL + "|" + TOTAL, dtype=object),
            }
            prev = pd.concat(
                [prevalence(fu, pd.Series(gr, index=fu.index)) for gr in groups.values()],
                ignore_index=True,
            )
            for name, h in HORIZONS.items():
                hit = fu["event"].to_numpy(bool) & (fu["time"].to_numpy(float) <= h)
                frame = pd.DataFrame(
                    {"year": year, "dim": value, "hit": np.where(hit, "ja", "nee")}
                )
                fulls.append(
                    count_cube(frame, ["year", "dim", "hit"], [years, values, ("ja", "nee")])
                )
                shared.append(
                    [
                        (("lead", crit.code, name), (slice(None), -1, slice(None))),
                        (("persons", dim.code), (slice(None), slice(None), -1)),
                    ]
                )
                meta.append((crit.code, name, dim.code, years, values))
                shares[(crit.code, name, dim.code)] = prev[prev["horizon"] == name].set_index(
                    "group"
                )
    masks = suppress_family(fulls, shared, k)
    rows = []
    for full, mask, (crit_code, name, dim_code, years, values) in zip(
        fulls, masks, meta, strict=True
    ):
        prev = shares[(crit_code, name, dim_code)]
        for yi, year in enumerate([*years, TOTAL]):
            for vi, value in enumerate([*values, TOTAL]):
                hidden = mask[yi, vi]
                persons = None if hidden[2] else int(full[yi, vi, 2])
                events = None if hidden[0] else int(full[yi, vi, 0])
                key = f"{year}|{value}"
                share = lower = upper = label = None
                if not hidden[0] and not hidden[1] and key in prev.index:
                    r = prev.loc[key]
                    share, lower, upper = float(r["share"]), float(r["lower"]), float(r["upper"])
                    label = str(r["label"])
                rows.append(
                    (
                        crit_code,
                        name,
                        dim_code,
                        value,
                        year,
                        persons,
                        events,
                        share,
                        lower,
                        upper,
                        label,
                    )
                )
    return pd.DataFrame(
        rows,
        columns=[
            "criterium",
            "termijn",
            "dimensie",
            "waarde",
            "jaar",
            "personen",
            "recidivisten",
            "aandeel",
            "ondergrens",
            "bovengrens",
            "soort",
        ],
    )
