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
  — then it is the plain share, events over persons — and *estimated* (Kaplan-Meier) otherwise;
  not given at all when nobody in the group was followed that long.

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
from terugkeer.monitor.suppress import TOTAL, codes, count_codes, suppress_family
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
OBSERVED = "geobserveerd"
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
        reach = p.observed | (p.at_risk > 0)  # else nobody was followed that long
        rows.append(
            pd.DataFrame(
                {
                    "group": p.groups,
                    "horizon": name,
                    "days": h,
                    "persons": p.n,
                    "events": p.events,
                    "share": np.where(reach, p.cumulative_incidence, np.nan),
                    "lower": np.where(reach, p.lower, np.nan),
                    "upper": np.where(reach, p.upper, np.nan),
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


Grid = dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]


def _km_cells(time: np.ndarray, event: np.ndarray, cell: np.ndarray, size: int) -> Grid:
    """Kaplan-Meier prevalence of every cell code (0 .. size-1) in one ``km_many`` call: per
    horizon, flat arrays of the share, its interval and whether it is observed (nan/False where
    a cell has nobody)."""
    keep = cell >= 0
    out: Grid = {}
    for name in HORIZONS:
        empty = np.full(size, np.nan)
        out[name] = (empty, empty.copy(), empty.copy(), np.zeros(size, dtype=bool))
    if not keep.any():
        return out
    result = km_many(time[keep], event[keep], cell[keep])
    where = result.groups.astype(np.int64)
    for name, h in HORIZONS.items():
        p = prevalence_at(result, h)
        share, lower, upper, observed = out[name]
        # nobody followed that long and not observed: no estimate (the curve stops earlier)
        reach = p.observed | (p.at_risk > 0)
        share[where] = np.where(reach, p.cumulative_incidence, np.nan)
        lower[where] = np.where(reach, p.lower, np.nan)
        upper[where] = np.where(reach, p.upper, np.nan)
        observed[where] = p.observed
    return out


def _grid_prevalence(
    time: np.ndarray,
    event: np.ndarray,
    year: np.ndarray,
    value: np.ndarray,
    years_grid: Grid,
    shape: tuple[int, int],
) -> Grid:
    """Every cell of a (year + total) × (value + total) grid: the cells and the value margin
    from one call here, the year margin and the grand total from ``years_grid`` (computed
    once per criterion: they are the same for every dimension)."""
    ny, nv = shape  # with the margins
    ok = (year >= 0) & (value >= 0)
    cell = np.where(ok, year * nv + value, -1)
    margin = np.where(value >= 0, (ny - 1) * nv + value, -1)
    both = _km_cells(
        np.concatenate([time, time]),
        np.concatenate([event, event]),
        np.concatenate([cell, margin]),
        ny * nv,
    )
    out: Grid = {}
    for name in HORIZONS:
        arrays = []
        for part, by_year in zip(both[name], years_grid[name], strict=True):
            grid = part.reshape(shape).copy()
            grid[:, nv - 1] = by_year  # the year margin and the grand total
            arrays.append(grid)
        out[name] = (arrays[0], arrays[1], arrays[2], arrays[3])
    return out


def recidivism_table(
    data: MonitorData, columns: pd.DataFrame, k: int, lag_months: int
) -> pd.DataFrame:
    """Per criterion, horizon, dimension, value and release year (or ``totaal``): persons
    followed, recidivists by the horizon and the share (observed or estimated) with its 95 %
    interval; counts from cubes (year × value × recidivist or not) suppressed together; a
    share only where both counts are published."""
    fulls, shared, meta = [], [], []
    for crit in CRITERIA:
        fu = followup(data, crit, lag_months)
        cols = columns.loc[fu.index]
        years = sorted(pd.unique(cols["year"]))
        year = codes(cols["year"], years)
        time = fu["time"].to_numpy(float)
        event = fu["event"].to_numpy(bool)
        ny = len(years) + 1
        years_grid = _km_cells(
            np.concatenate([time, time]),
            np.concatenate([event, event]),
            np.concatenate([year, np.where(year >= 0, ny - 1, -1)]),
            ny,
        )
        for dim in DIMENSIONS:
            values = dimension_values(dim.code, cols)
            value = codes(cols[dim.code], values)
            shape = (ny, len(values) + 1)
            grid = _grid_prevalence(time, event, year, value, years_grid, shape)
            for name, h in HORIZONS.items():
                hit = np.where(event & (time <= h), 0, 1)
                fulls.append(count_codes([year, value, hit], (len(years), len(values), 2)))
                shared.append(
                    [
                        (("lead", crit.code, name), (slice(None), -1, slice(None))),
                        (("persons", dim.code), (slice(None), slice(None), -1)),
                    ]
                )
                meta.append((crit.code, name, dim.code, years, values, grid[name]))
    masks = suppress_family(fulls, shared, k)
    frames = []
    for full, mask, (crit_code, name, dim_code, years, values, cell) in zip(
        fulls, masks, meta, strict=True
    ):
        share, lower, upper, observed = cell
        ny, nv = len(years) + 1, len(values) + 1
        open_share = ~mask[:, :, 0] & ~mask[:, :, 1] & ~np.isnan(share)
        frames.append(
            pd.DataFrame(
                {
                    "criterium": crit_code,
                    "termijn": name,
                    "dimensie": dim_code,
                    "waarde": np.tile(np.array([*values, TOTAL], dtype=object), ny),
                    "jaar": np.repeat(np.array([*years, TOTAL], dtype=object), nv),
                    "personen": np.where(mask[:, :, 2], -1, full[:, :, 2]).ravel(),
                    "recidivisten": np.where(mask[:, :, 0], -1, full[:, :, 0]).ravel(),
                    "aandeel": np.where(open_share, share, np.nan).ravel(),
                    "ondergrens": np.where(open_share, lower, np.nan).ravel(),
                    "bovengrens": np.where(open_share, upper, np.nan).ravel(),
                    "soort": np.where(
                        open_share, np.where(observed, OBSERVED, ESTIMATED).astype(object), ""
                    ).ravel(),
                }
            )
        )
    columns_out = [
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
    ]
    if not frames:
        return pd.DataFrame(columns=columns_out)
    table = pd.concat(frames, ignore_index=True)
    for col in ("personen", "recidivisten"):
        table[col] = table[col].astype(object).where(table[col] >= 0, None)
    for col in ("aandeel", "ondergrens", "bovengrens"):
        table[col] = table[col].astype(object).where(table[col].notna(), None)
    table["soort"] = table["soort"].where(table["soort"] != "", None)
    return table[columns_out]
