"""The population's parameters and a municipality's registered costs, estimated from the
store (docs/mkba.md, "Uit de eigen registratie"). Aggregates only: nothing of a person leaves
this module. Read with ``pandas.read_sql`` on SQLAlchemy Core selects, so the same code runs
on SQLite and PostgreSQL.

* Releases into society (end of sentence, conditional release, court order) from a PI
  (adults) or a JJI (by the institution's type in the reference data), whose two-year follow-up lies within the data (the newest registration
  in the store at least two years after the release; when fewer than ``MIN_RELEASES`` qualify,
  all releases are used and the estimate says so).
* ``reconviction_2y``: a counting case (conviction, settlement, policy dismissal) with an
  offence date within 730 days after the release; ``detention_2y``: a new intake within 730
  days; ``months_per_return``: the mean length of those new periods that ended.
* ``work_at_release`` and ``benefit_at_release``: the newest *income* fact at release of the
  cases (work or education: work; benefit: benefit; unknown left out).
* Registered costs: the activities of one municipality's named programme (``programme``
  column): cost per case with such an activity, the number of those cases, and the share
  paid by the municipality (funder ``municipality`` or ``other``: municipal; ``central_
  government``: the Rijk).

A probability estimated from ``n`` people gets a beta distribution with the binomial standard
error; ``MIN_RELEASES`` protects against estimates from a handful of people (the file's value
stays, and the result says why). A programme's costs and the length of new stays rest on at
least the monitor's minimum cell of people (``min_cases``), so no figure describes a few.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

import pandas as pd  # type: ignore[import-untyped]
from sqlalchemy import Connection, and_, func, select

from terugkeer.detention.tables import detention_periods, reconvictions
from terugkeer.domain.codes import COUNTS_AS_RECIDIVISM, RELEASES_INTO_SOCIETY, InstitutionType
from terugkeer.domain.refdata import refdata
from terugkeer.mkba.errors import MkbaError
from terugkeer.mkba.params import Param
from terugkeer.reintegration.tables import activities, condition_facts, reintegration_cases

MIN_RELEASES = 30
MIN_CASES = 5  # at least; the monitor's minimum cell (TERUGKEER_MONITOR_MIN_CELL) if larger


def min_cases() -> int:
    """The fewest people an aggregate may rest on: as the monitor's small-cell rule."""
    from terugkeer.config import get_settings

    return max(MIN_CASES, get_settings().monitor_min_cell)


INSTITUTION = {"adult": InstitutionType.PI, "jji": InstitutionType.JJI}
DAYS_2Y = 730


@dataclass
class StoreEstimates:
    population: str
    releases: int = 0
    complete_follow_up: bool = True
    params: dict[str, Param] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


@dataclass
class RegisteredCosts:
    municipality: str
    programme: str
    cases: int
    cost_per_case: float
    sd_of_mean: float  # the standard error of the cost per case
    municipal_share: float
    year: int
    activities: int


def institutions(population: str) -> list[str]:
    """The codes of the institutions a population leaves (refdata's institution list)."""
    kind = INSTITUTION[population]
    return sorted(code for code, i in refdata().institutions.items() if i.type == kind)


def _frame(conn: Connection, stmt: Any) -> Any:
    return pd.read_sql(stmt, conn)


def _as_days(series: Any) -> Any:
    return pd.to_datetime(series, utc=True)


def _probability(name: str, template: Param, k: int, n: int, source: str) -> Param:
    p = min(max(k / n, 0.5 / n), 1 - 0.5 / n)
    sd = max(math.sqrt(p * (1 - p) / n), 1e-4)
    sd = min(sd, 0.99 * math.sqrt(p * (1 - p)))
    return replace(
        template,
        value=p,
        distribution="beta",
        sd=sd,
        low=None,
        high=None,
        sigma=None,
        source=source,
        assumption=False,
        note=f"{k:,} of {n:,}",
    )


def population(conn: Connection, population: str, file_params: dict[str, Param]) -> StoreEstimates:
    """Estimates of the population's parameters (those with too little data stay)."""
    if population not in INSTITUTION:
        raise MkbaError(f"no estimates from the store for population [{population}]")
    est = StoreEstimates(population)
    p = detention_periods.c
    periods = _frame(
        conn,
        select(p.id, p.person_id, p.institution, p.intake_at, p.ended_at, p.release_kind).where(
            p.status == "released"
        ),
    )
    r = reconvictions.c
    cases = _frame(
        conn,
        select(r.person_id, r.offence_date, r.registered_at).where(
            r.decision.in_([d.value for d in COUNTS_AS_RECIDIVISM])
        ),
    )
    if periods.empty:
        est.notes.append("the store has no releases: the parameter file's values are used")
        return est
    periods["intake_at"] = _as_days(periods["intake_at"])
    periods["ended_at"] = _as_days(periods["ended_at"])
    kinds = [k.value for k in RELEASES_INTO_SOCIETY]
    released = periods[
        periods["institution"].isin(institutions(population)) & periods["release_kind"].isin(kinds)
    ]
    newest = periods["ended_at"].max()
    if not cases.empty:
        newest = max(newest, _as_days(cases["registered_at"]).max())
    complete = released[released["ended_at"] <= newest - timedelta(days=DAYS_2Y)]
    if len(complete) < MIN_RELEASES:
        est.complete_follow_up = False
        est.notes.append(
            f"fewer than {MIN_RELEASES} releases with two years of follow-up in the store: "
            "all releases are used, so the two-year figures are too low"
        )
        complete = released
    n = len(complete)
    est.releases = n
    if n < MIN_RELEASES:
        est.notes.append(
            f"only {n} releases of population {population} in the store: the file's values stay"
        )
        return est
    source = f"terugkeer-registratie: {n:,} ontslagen ({INSTITUTION[population].value.upper()})"
    # reconviction within two years, by offence date
    rel = complete[["id", "person_id", "ended_at"]].rename(columns={"id": "period"})
    if not cases.empty:
        cases["offence_date"] = pd.to_datetime(cases["offence_date"]).dt.tz_localize("UTC")
        joined = rel.merge(cases, on="person_id")
        days = (joined["offence_date"] - joined["ended_at"].dt.floor("D")).dt.days
        hit = joined[(days > 0) & (days <= DAYS_2Y)]["period"].nunique()
    else:
        hit = 0
    est.params["reconviction_2y"] = _probability(
        "reconviction_2y", file_params["reconviction_2y"], int(hit), n, source
    )
    # back in detention within two years, and how long
    later = periods[["person_id", "intake_at", "ended_at"]].rename(
        columns={"intake_at": "next_in", "ended_at": "next_out"}
    )
    last_intake = periods["intake_at"].max()
    if (complete["ended_at"] + timedelta(days=DAYS_2Y) > last_intake).any():
        est.notes.append(
            f"new detention periods are known until {last_intake.date().isoformat()}: for "
            "releases after "
            f"{(last_intake - timedelta(days=DAYS_2Y)).date().isoformat()} the share back in "
            "detention within two years is too low"
        )
    joined = rel.merge(later, on="person_id")
    gap = (joined["next_in"] - joined["ended_at"]).dt.total_seconds() / 86400
    back = joined[(gap > 0) & (gap <= DAYS_2Y)]
    est.params["detention_2y"] = _probability(
        "detention_2y", file_params["detention_2y"], int(back["period"].nunique()), n, source
    )
    stays = back.dropna(subset=["next_out"])
    if len(stays) >= min_cases():
        months = (stays["next_out"] - stays["next_in"]).dt.total_seconds() / 86400 / (365.25 / 12)
        mean = float(months.mean())
        sd = float(months.std(ddof=1)) / math.sqrt(len(months)) if len(months) > 1 else 0.1
        est.params["months_per_return"] = replace(
            file_params["months_per_return"],
            value=mean,
            distribution="normal",
            sd=max(sd, 1e-3),
            low=None,
            high=None,
            source=source,
            assumption=False,
            note=f"{len(stays):,} new periods",
        )
    _income(conn, est, file_params, source)
    return est


def _income(conn: Connection, est: StoreEstimates, file_params: dict[str, Param], src: str) -> None:
    f = condition_facts.c
    c = reintegration_cases.c
    p = detention_periods.c
    newest = (
        select(func.max(f.id).label("id"))
        .where(and_(f.condition == "income", f.moment == "release"))
        .group_by(f.case_id)
        .subquery()
    )
    facts = _frame(
        conn,
        select(f.status)
        .join(newest, newest.c.id == f.id)
        .join(reintegration_cases, c.id == f.case_id)
        .join(detention_periods, p.id == c.period_id)
        .where(p.institution.in_(institutions(est.population))),
    )
    known = facts[facts["status"] != "unknown"]
    n = len(known)
    if n < MIN_RELEASES:
        est.notes.append(f"income at release registered for {n} cases: the file's shares stay")
        return
    work = int(known["status"].isin(["work", "education"]).sum())
    benefit = int((known["status"] == "benefit").sum())
    source = f"terugkeer-registratie: inkomen bij ontslag van {n:,} dossiers"
    est.params["work_at_release"] = _probability(
        "work_at_release", file_params["work_at_release"], work, n, source
    )
    est.params["benefit_at_release"] = _probability(
        "benefit_at_release", file_params["benefit_at_release"], benefit, n, source
    )
    del src


def registered_costs(conn: Connection, municipality: str, programme: str) -> RegisteredCosts:
    """A municipality's registered programme: cases, cost per case, who pays."""
    a = activities.c
    c = reintegration_cases.c
    frame = _frame(
        conn,
        select(c.municipality, a.case_id, a.programme, a.cost_cents, a.funder, a.start_date)
        .join(reintegration_cases, c.id == a.case_id)
        .where(and_(a.programme.is_not(None), a.programme != "")),
    )
    if frame.empty:
        raise MkbaError("the store has no activities registered under a programme")
    if municipality == "auto":
        per = frame.groupby(["municipality", "programme"])["case_id"].nunique()
        municipality, programme_auto = per.idxmax()
        programme = programme_auto if programme == "auto" else programme
    mine = frame[frame["municipality"] == municipality]
    if mine.empty:
        raise MkbaError(f"no programme activities registered for municipality {municipality}")
    if programme == "auto":
        programme = str(mine.groupby("programme")["case_id"].nunique().idxmax())
    chosen = mine[mine["programme"] == programme]
    cases = int(chosen["case_id"].nunique())
    if cases < min_cases():
        raise MkbaError(
            f"programme [{programme[:60]}] of {municipality} has {cases} cases: too few "
            f"(< {min_cases()}, the small-cell rule)"
        )
    total = float(chosen["cost_cents"].sum()) / 100
    central = float(chosen.loc[chosen["funder"] == "central_government", "cost_cents"].sum()) / 100
    year = int(pd.to_datetime(chosen["start_date"]).dt.year.median())
    per_case = chosen.groupby("case_id")["cost_cents"].sum() / 100
    sd = float(per_case.std(ddof=1)) / math.sqrt(cases) if cases > 1 else 0.0
    return RegisteredCosts(
        municipality=str(municipality),
        programme=str(programme),
        cases=cases,
        cost_per_case=total / cases,
        sd_of_mean=sd,
        municipal_share=1 - central / total if total > 0 else 1.0,
        year=year,
        activities=len(chosen),
    )


@dataclass
class MonitorEffect:
    """The monitor's adjusted hazard ratio of one row of its link table: an association."""

    condition: str
    hazard_ratio: float
    lower: float
    upper: float


def monitor_effect(engine: Any, condition: str) -> MonitorEffect | str:
    """The monitor's adjusted (*gecorrigeerd*) hazard ratio of general recidivism for the row
    of its link whose label starts with ``condition`` (e.g. "per basisvoorwaarde meer op
    orde"), with its 95 % interval; or why there is none (suppressed, not estimable)."""
    from terugkeer.config import get_settings
    from terugkeer.monitor.association import link
    from terugkeer.monitor.frame import load
    from terugkeer.monitor.suppress import min_cell

    data = load(engine)
    table = link(data, min_cell(None), get_settings().monitor_registration_lag_months)
    rows = table[table["voorwaarde"].str.startswith(condition) & (table["model"] == "gecorrigeerd")]
    if rows.empty:
        known = ", ".join(sorted(set(table["voorwaarde"])))
        raise MkbaError(f"the monitor has no link [{condition[:60]}] (known: {known})")
    row = rows.iloc[0]
    if row["hr"] is None or pd.isna(row["hr"]):
        return str(row["toelichting"])
    return MonitorEffect(
        str(row["voorwaarde"]), float(row["hr"]), float(row["ondergrens"]), float(row["bovengrens"])
    )
