"""The monitor's reads: the store in columnar form (pandas frames from SQLAlchemy Core
selects, one query per table, the same code on SQLite and PostgreSQL), never row by row.

:func:`load` returns :class:`MonitorData`:

* ``periods``: one row per detention period that ended (released or died), with the person's
  sex and birth date, the main offence, the municipality, the local (Europe/Amsterdam) intake
  and end dates, whether the release was into society, the person's next intake after it and
  the person's date of death;
* ``reconvictions``: the counting cases (conviction, settlement, policy dismissal) known at the
  data cut-off (registered on or before it), by person and offence date;
* ``conditions``: per period and moment, each basic condition as ``yes``/``no``/``unknown``
  (the newest fact of a case; nothing recorded is ``unknown``).

Dates are midnight ``datetime64[s]`` columns (``NaT`` where unknown); :func:`days` turns them
into day numbers for arithmetic."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped,unused-ignore]
from sqlalchemy import Connection, Engine, String, and_, case, func, select, type_coerce

from terugkeer.detention.tables import (
    detention_periods,
    period_offences,
    persons,
    reconvictions,
)
from terugkeer.domain.codes import (
    COUNTS_AS_RECIDIVISM,
    RELEASES_INTO_SOCIETY,
    PeriodStatus,
)
from terugkeer.domain.refdata import refdata
from terugkeer.reintegration.codes import CONDITIONS, MOMENTS, STATUSES, InOrder
from terugkeer.reintegration.tables import condition_facts, reintegration_cases

TZ = "Europe/Amsterdam"
UNKNOWN = "onbekend"

# populations: adult prison (PI), juvenile institution (JJI), tbs clinic, PIJ measure
POPULATIONS = ("pi", "jji", "tbs", "pij")


@dataclass
class MonitorData:
    periods: pd.DataFrame
    reconvictions: pd.DataFrame
    conditions: pd.DataFrame
    cutoff: date

    @property
    def released(self) -> pd.DataFrame:
        """The periods that ended in a release into society (the monitor's population)."""
        return self.periods[self.periods["into_society"]]


def local_day(values: pd.Series) -> pd.Series:
    """UTC timestamps (as the store returns them: text on SQLite, datetimes on PostgreSQL)
    to their Europe/Amsterdam calendar date (midnight, ``datetime64[s]``)."""
    ts = pd.to_datetime(values, utc=True, format="ISO8601")
    local = ts.dt.tz_convert(TZ).dt.tz_localize(None).dt.normalize()
    return local.astype("datetime64[s]")


def _day(values: pd.Series) -> pd.Series:
    """A date column (text on SQLite, dates on PostgreSQL) as midnight ``datetime64[s]``."""
    return pd.to_datetime(values, format="ISO8601").astype("datetime64[s]")


def days(values: pd.Series) -> np.ndarray:
    """Day numbers (days since 1970-01-01) as floats, ``nan`` for ``NaT``."""
    arr = values.to_numpy(dtype="datetime64[s]")
    out = (arr.astype("int64") // 86400).astype("float64")
    out[np.isnat(arr)] = np.nan
    result: np.ndarray = out
    return result


def _raw(column: Any) -> Any:
    """A date or timestamp column as the driver returns it (text on SQLite, date and datetime
    objects on PostgreSQL), without SQLAlchemy's conversion of each value in Python: pandas
    converts the whole column at once."""
    return type_coerce(column, String).label(column.name)


def _read(conn: Connection, stmt: object) -> pd.DataFrame:
    return pd.read_sql(stmt, conn)


def _periods(conn: Connection) -> pd.DataFrame:
    p, pe = detention_periods, persons
    main = (
        select(period_offences.c.period_id, func.min(period_offences.c.position).label("pos"))
        .group_by(period_offences.c.period_id)
        .subquery()
    )
    off = period_offences.alias("main_offence")
    stmt = (
        select(
            p.c.id.label("period_id"),
            p.c.person_id,
            p.c.institution,
            p.c.title,
            p.c.residence_municipality,
            p.c.return_municipality,
            _raw(p.c.intake_at),
            p.c.status,
            p.c.release_kind,
            _raw(p.c.ended_at),
            _raw(pe.c.birth_date),
            pe.c.sex,
            _raw(pe.c.died_at),
            off.c.category.label("offence"),
            off.c.statutory_max_years.label("offence_max"),
        )
        .select_from(
            p.join(pe, pe.c.id == p.c.person_id)
            .outerjoin(main, main.c.period_id == p.c.id)
            .outerjoin(off, and_(off.c.period_id == p.c.id, off.c.position == main.c.pos))
        )
        .where(p.c.status != PeriodStatus.WITHDRAWN.value)
    )
    df = _read(conn, stmt)
    df["intake_day"] = local_day(df["intake_at"])
    df = df.sort_values(["person_id", "intake_day", "period_id"], kind="stable")
    # the person's next intake (periods of one person do not overlap)
    df["next_intake_day"] = df.groupby("person_id")["intake_day"].shift(-1)
    # criminal history as the store knows it: the person's earlier detention periods
    df["prior_periods"] = df.groupby("person_id").cumcount()
    ended = df["status"].isin([PeriodStatus.RELEASED.value, PeriodStatus.DECEASED.value])
    df = df[ended].copy()
    cases = _read(
        conn,
        select(reintegration_cases.c.period_id).where(reintegration_cases.c.status != "cancelled"),
    )
    df["has_case"] = df["period_id"].isin(cases["period_id"])
    df["end_day"] = local_day(df["ended_at"])
    df["death_day"] = local_day(df["died_at"])
    df["birth_date"] = _day(df["birth_date"])
    df["into_society"] = (df["status"] == PeriodStatus.RELEASED.value) & df["release_kind"].isin(
        [k.value for k in RELEASES_INTO_SOCIETY]
    )
    types = {code: inst.type for code, inst in refdata().institutions.items()}
    kind = df["institution"].map(types).fillna("pi")
    df["population"] = np.where(
        df["title"] == "pij", "pij", np.where(kind.isin(POPULATIONS), kind, "pi")
    )
    df["municipality"] = (
        df["return_municipality"].fillna(df["residence_municipality"]).fillna(UNKNOWN)
    )
    df["stay_days"] = (df["end_day"] - df["intake_day"]).dt.days
    df["sex"] = df["sex"].fillna(UNKNOWN)
    df["offence"] = df["offence"].fillna(UNKNOWN)
    keep = [
        "period_id",
        "person_id",
        "population",
        "municipality",
        "sex",
        "birth_date",
        "offence",
        "offence_max",
        "release_kind",
        "intake_day",
        "end_day",
        "stay_days",
        "into_society",
        "has_case",
        "next_intake_day",
        "death_day",
        "prior_periods",
    ]
    return df[keep].set_index("period_id").sort_index()


def _reconvictions(conn: Connection, cutoff: date) -> pd.DataFrame:
    r = reconvictions
    # known at the cut-off: registered on or before it (the day after, midnight UTC)
    until = pd.Timestamp(cutoff, tz="UTC") + pd.Timedelta(days=1)
    stmt = select(
        r.c.person_id,
        _raw(r.c.offence_date),
        r.c.statutory_max_years,
        r.c.custodial,
    ).where(
        r.c.decision.in_([d.value for d in COUNTS_AS_RECIDIVISM]),
        r.c.registered_at < until.to_pydatetime(),
    )
    df = _read(conn, stmt)
    df["offence_day"] = _day(df["offence_date"])
    df["custodial"] = df["custodial"].astype(bool)
    return df.drop(columns=["offence_date"])


def _pairs(value: InOrder) -> list[str]:
    return [f"{c.value}:{s.code}" for c in CONDITIONS for s in STATUSES[c] if s.in_order is value]


def _conditions(conn: Connection) -> pd.DataFrame:
    """Wide: index (period_id, moment), a column per condition with yes/no/unknown; only the
    (period, moment) pairs where something was recorded. The newest fact per case, condition
    and moment, its in-order value and the pivot to one row per (period, moment) are done by
    the database, so few rows come back."""
    f, c = condition_facts, reintegration_cases
    newest = (
        select(func.max(f.c.id).label("id"))
        .group_by(f.c.case_id, f.c.condition, f.c.moment)
        .subquery()
    )
    pair = f.c.condition + ":" + f.c.status
    code = case((pair.in_(_pairs(InOrder.YES)), 2), (pair.in_(_pairs(InOrder.NO)), 1), else_=0)
    columns = [
        func.max(case((f.c.condition == cond.value, code), else_=0)).label(cond.value)
        for cond in CONDITIONS
    ]
    stmt = (
        select(c.c.period_id, f.c.moment, *columns)
        .select_from(f.join(newest, newest.c.id == f.c.id).join(c, c.c.id == f.c.case_id))
        .where(f.c.moment.in_([m.value for m in MOMENTS]))
        .group_by(c.c.period_id, f.c.moment)
    )
    df = _read(conn, stmt).set_index(["period_id", "moment"])
    names = np.array([InOrder.UNKNOWN.value, InOrder.NO.value, InOrder.YES.value], dtype=object)
    wide = pd.DataFrame(
        {
            cond.value: names[df[cond.value].fillna(0).to_numpy(dtype=np.int64)]
            for cond in CONDITIONS
        },
        index=df.index,
    )
    return wide.sort_index()


def default_cutoff(conn: Connection, today: date | None = None) -> date:
    """The data cut-off when none is given: today, or the newest reconviction's registration
    day when that is earlier (data delivered up to then)."""
    today = today or pd.Timestamp.now(tz=TZ).date()
    newest = conn.execute(select(func.max(reconvictions.c.registered_at))).scalar_one_or_none()
    if newest is None:
        return today
    day: date = pd.Timestamp(local_day(pd.Series([newest])).iloc[0]).date()
    return min(today, day)


def load(engine: Engine, cutoff: date | None = None) -> MonitorData:
    """Everything the monitor computes from, read once."""
    with engine.connect() as conn:
        cut = cutoff or default_cutoff(conn)
        return MonitorData(
            periods=_periods(conn),
            reconvictions=_reconvictions(conn, cut),
            conditions=_conditions(conn),
            cutoff=cut,
        )
