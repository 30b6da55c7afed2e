"""The monitor's API resources, for the analyst (``monitor:read``): the same suppressed figures
as the report (``docs/monitor.md``), as JSON. Aggregates only: every count is at least the
minimum cell size or ``null`` (suppressed), and every table is a slice of the same suppressed
cubes, so asking for one year and for all years, or one municipality and all of them, gives
nothing to subtract.

The figures are computed once and kept while the store does not change (new feed events,
condition facts or cases), or for at most ten minutes when it does."""

from __future__ import annotations

import math
import threading
import time
from typing import Annotated, Any, Literal

import pandas as pd  # type: ignore[import-untyped,unused-ignore]
from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy import Engine, func, select

from terugkeer.detention.tables import feed_events
from terugkeer.monitor.report import Figures, compute
from terugkeer.reintegration.tables import condition_facts, reintegration_cases
from terugkeer.security.roles import Permission
from terugkeer.web.auth import requires

router = APIRouter(tags=["monitor"])
READ = Depends(requires(Permission.MONITOR_READ))
_lock = threading.Lock()
_cache: dict[str, tuple[tuple[Any, ...], Figures, float]] = {}
MAX_AGE = 600.0

# the code lists as types (a test holds them to cohorts.DIMENSIONS, codes.MOMENTS,
# recidivism.CRITERIA and recidivism.HORIZONS)
Dimensie = Literal[
    "quarter",
    "population",
    "municipality",
    "age_band",
    "sex",
    "stay",
    "offence",
    "conditions_release",
    "in_order_release",
]
MomentCode = Literal[
    "intake", "before_release", "release", "month_1", "month_6", "month_12", "month_24"
]
Criterium = Literal["general", "serious", "very_serious", "custodial"]
Termijn = Literal["1 jaar", "2 jaar", "5 jaar"]
Jaar = Annotated[
    str | None,
    Query(pattern=r"^(\d{4}|totaal)$", description="release year, or totaal (default: all)"),
]
Waarde = Annotated[
    str | None, Query(max_length=60, description="one value of the dimension (default: all)")
]


def _state(engine: Engine) -> tuple[Any, ...]:
    with engine.connect() as conn:
        return (
            conn.execute(select(func.max(feed_events.c.id))).scalar_one_or_none(),
            conn.execute(select(func.max(condition_facts.c.id))).scalar_one_or_none(),
            conn.execute(select(func.count()).select_from(reintegration_cases)).scalar_one(),
            pd.Timestamp.now(tz="Europe/Amsterdam").date(),
        )


def figures(request: Request) -> Figures:
    """The figures, computed again when the store changed and the kept ones are older than
    ``app.state.monitor_max_age`` seconds (default 600: a live feed changes the store all the
    time, and the monitor is not a minute-by-minute figure)."""
    engine: Engine = request.app.state.engine
    max_age = float(getattr(request.app.state, "monitor_max_age", MAX_AGE))
    key = engine.url.render_as_string(hide_password=True)
    state = _state(engine)
    with _lock:
        hit = _cache.get(key)
        if hit is not None and (hit[0] == state or time.monotonic() - hit[2] < max_age):
            return hit[1]
        found = compute(engine)
        _cache[key] = (state, found, time.monotonic())
        return found


Data = Annotated[Figures, Depends(figures)]


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = frame.to_dict("records")
    for row in rows:
        for key, value in row.items():
            if value is None or (isinstance(value, float) and math.isnan(value)):
                row[key] = None
            elif hasattr(value, "item"):
                row[key] = value.item()
    return rows


def _meta(data: Figures) -> dict[str, Any]:
    return {
        "peildatum": data.cutoff.isoformat(),
        "einde_followup": data.followup_end.isoformat(),
        "minimale_celgrootte": data.k,
        "let_op": "samenhang, geen effect",
    }


@router.get(
    "/monitor/indicatoren",
    dependencies=[READ],
    summary="Basisvoorwaarden op orde per cohort en moment (onderdrukt)",
)
def indicatoren(
    data: Data,
    dimensie: Dimensie = "quarter",
    moment: MomentCode = "release",
    jaar: Jaar = None,
    waarde: Waarde = None,
) -> dict[str, Any]:
    """Per value of the dimension and release year: in order, not in order, unknown, persons
    and the share in order of the known; ``null`` where suppressed."""
    t = data.indicators.table
    t = t[(t["dimensie"] == dimensie) & (t["moment"] == moment)]
    return {**_meta(data), "rijen": _records(_slice(t, jaar, waarde))}


def _slice(t: Any, jaar: str | None, waarde: str | None) -> Any:
    """The rows of one release year and one value of the dimension, where asked."""
    if jaar is not None:
        t = t[t["jaar"] == jaar]
    if waarde is not None:
        t = t[t["waarde"] == waarde]
    return t


@router.get(
    "/monitor/recidive",
    dependencies=[READ],
    summary="Recidive na ontslag per cohort (onderdrukt)",
)
def recidive(
    data: Data,
    criterium: Criterium = "general",
    termijn: Termijn = "2 jaar",
    dimensie: Dimensie = "quarter",
    jaar: Jaar = None,
    waarde: Waarde = None,
) -> dict[str, Any]:
    """Persons followed, recidivists by the horizon, the cumulative share (observed or
    estimated, Kaplan-Meier) with its 95 % interval; ``null`` where suppressed."""
    t = data.recidivism
    t = t[(t["criterium"] == criterium) & (t["termijn"] == termijn) & (t["dimensie"] == dimensie)]
    return {**_meta(data), "rijen": _records(_slice(t, jaar, waarde))}


@router.get(
    "/monitor/samenhang",
    dependencies=[READ],
    summary="Samenhang tussen basisvoorwaarden bij ontslag en recidive; gecorrigeerde recidive",
)
def samenhang(data: Data) -> dict[str, Any]:
    """Hazard ratios (crude and adjusted, Cox) per condition and per condition more in order,
    and the corrected 2-year rate per release year. An association, not an effect."""
    return {
        **_meta(data),
        "hazard_ratios": _records(data.link),
        "gecorrigeerde_recidive": _records(data.corrected),
    }
