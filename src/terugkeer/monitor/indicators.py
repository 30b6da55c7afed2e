"""Indicators of the five basic conditions: per cohort and moment, how many are in order, not
in order, and unknown — unknown is counted on its own, never as "not in order" — and the share
in order among those whose status is known.

The population is the releases into society that have a reintegration case (adults after a
stay of more than 10 days, in their municipality: ``reintegration.scope``); a condition with
nothing recorded at a moment is unknown. Every figure comes out of a suppressed cube
(:mod:`terugkeer.monitor.suppress`): release year × one dimension × status, all suppressed
together so that the national figures, the persons per municipality and each table agree.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd  # type: ignore[import-untyped,unused-ignore]

from terugkeer.monitor.cohorts import DIMENSIONS, dimension_values, release_conditions
from terugkeer.monitor.frame import MonitorData
from terugkeer.monitor.suppress import TOTAL, codes, count_codes, suppress_family
from terugkeer.reintegration.codes import (
    CONDITION_LABELS,
    CONDITIONS,
    MOMENT_LABELS,
    MOMENTS,
    InOrder,
    Moment,
)

ALL_FIVE = "all"
CONDITION_NAMES = {**{c.value: CONDITION_LABELS[c] for c in CONDITIONS}, ALL_FIVE: "alle vijf"}
STATUS_AXIS = (InOrder.YES.value, InOrder.NO.value, InOrder.UNKNOWN.value)
LEAD_MOMENTS = (Moment.INTAKE.value, Moment.RELEASE.value, Moment.MONTH_12.value)
COLUMNS = ["op_orde", "niet_op_orde", "onbekend", "personen"]


@dataclass
class Indicators:
    """``table``: one row per dimension, value, release year (or ``totaal``), condition and
    moment, with the counts (None where suppressed) and ``aandeel_op_orde`` (in order among
    the known; None where it cannot be published). ``lead``: the national rows (dimension
    ``totaal``)."""

    table: pd.DataFrame
    k: int

    @property
    def lead(self) -> pd.DataFrame:
        t = self.table
        return t[(t["dimensie"] == DIMENSIONS[0].code) & (t["waarde"] == TOTAL)].drop(
            columns=["dimensie", "waarde"]
        )


def statuses(data: MonitorData, index: pd.Index) -> dict[tuple[str, str], np.ndarray]:
    """Per (condition, moment): each period's status (yes/no/unknown), for ``index``; the
    five together under the condition ``all``."""
    out: dict[tuple[str, str], np.ndarray] = {}
    cond = data.conditions
    moments_present = set(cond.index.get_level_values("moment")) if len(cond) else set()
    for moment in MOMENTS:
        if moment.value in moments_present:
            at = cond.xs(moment.value, level="moment").reindex(index)
        else:
            at = pd.DataFrame(index=index, columns=[c.value for c in CONDITIONS])
        at = at.astype(object).fillna(InOrder.UNKNOWN.value)
        values = at[[c.value for c in CONDITIONS]].to_numpy(dtype=object)
        for i, c in enumerate(CONDITIONS):
            out[(c.value, moment.value)] = values[:, i]
        no = (values == InOrder.NO.value).any(axis=1)
        yes = (values == InOrder.YES.value).all(axis=1)
        out[(ALL_FIVE, moment.value)] = np.where(
            no, InOrder.NO.value, np.where(yes, InOrder.YES.value, InOrder.UNKNOWN.value)
        )
    return out


def indicators(
    data: MonitorData, columns: pd.DataFrame, k: int, moments: tuple[str, ...] | None = None
) -> Indicators:
    """Every indicator cube (each dimension × condition × moment), suppressed together."""
    rel = data.released
    index = rel.index[rel["has_case"].to_numpy()]
    cols = columns.loc[index]
    st = statuses(data, index)
    moments = moments or tuple(m.value for m in MOMENTS)
    years = sorted(pd.unique(cols["year"]))
    keys = [(c, m) for c in [*(x.value for x in CONDITIONS), ALL_FIVE] for m in moments]
    year_codes = codes(cols["year"], years)
    status_codes = {key: codes(st[key], STATUS_AXIS) for key in keys}
    fulls, shared, meta = [], [], []
    for dim in DIMENSIONS:
        values = dimension_values(dim.code, cols)
        dim_codes = codes(cols[dim.code], values)
        shape = (len(years), len(values), len(STATUS_AXIS))
        for c, m in keys:
            fulls.append(count_codes([year_codes, dim_codes, status_codes[(c, m)]], shape))
            shared.append(
                [
                    (("lead", c, m), (slice(None), -1, slice(None))),
                    (("persons", dim.code), (slice(None), slice(None), -1)),
                ]
            )
            meta.append((dim.code, values, c, m))
    masks = suppress_family(fulls, shared, k)
    rows = []
    for full, mask, (dim_code, values, c, m) in zip(fulls, masks, meta, strict=True):
        counts = np.where(mask, -1, full)
        for yi, year in enumerate([*years, TOTAL]):
            for vi, value in enumerate([*values, TOTAL]):
                cell = counts[yi, vi]
                rows.append((dim_code, value, year, c, m, *cell.tolist()))
    table = pd.DataFrame(
        rows, columns=["dimensie", "waarde", "jaar", "voorwaarde", "moment", *COLUMNS]
    )
    for col in COLUMNS:
        table[col] = table[col].astype(object).where(table[col] >= 0, None)
    yes, no = table["op_orde"], table["niet_op_orde"]
    ok = yes.notna() & no.notna()
    known = yes.where(ok, 0).astype(float) + no.where(ok, 0).astype(float)
    share = yes.where(ok, 0).astype(float) / known.where(known > 0, np.nan)
    table["aandeel_op_orde"] = share.where(ok & (known > 0), None).astype(object)
    table["voorwaarde_naam"] = table["voorwaarde"].map(CONDITION_NAMES)
    table["moment_naam"] = table["moment"].map(MOMENT_LABELS)
    return Indicators(table, k)


def lead_table(ind: Indicators, year: str = TOTAL) -> pd.DataFrame:
    """The Monitor-Nazorg-style table: per condition, the share in order (of the known) at
    intake (before detention), at release and 12 months after, with the persons known."""
    lead = ind.lead
    lead = lead[(lead["jaar"] == year) & lead["moment"].isin(LEAD_MOMENTS)]
    out = lead.pivot_table(
        index="voorwaarde", columns="moment", values="aandeel_op_orde", aggfunc="first"
    )
    order = [*(c.value for c in CONDITIONS), ALL_FIVE]
    out = out.reindex(index=order, columns=list(LEAD_MOMENTS))
    out.index = [CONDITION_NAMES[c] for c in out.index]
    out.columns = [MOMENT_LABELS[m] for m in out.columns]
    return out


__all__ = ["Indicators", "indicators", "lead_table", "release_conditions"]
