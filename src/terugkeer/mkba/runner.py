"""One run of a scenario: the deterministic result, the Monte Carlo analysis, break-even,
tornado and two-way grid, as one object with its aggregates as JSON (what the command line
writes, the report shows and the API returns). Deterministic for (scenario, parameters,
store, draws, seed): the same request gives the same numbers."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import Engine

from terugkeer.mkba import analysis, effect
from terugkeer.mkba.analysis import BreakEven, Deterministic, Grid, MonteCarlo, Prepared, TornadoBar
from terugkeer.mkba.model import ITEM_LABELS, ITEMS, PERSPECTIVE_LABELS
from terugkeer.mkba.params import ParameterSet
from terugkeer.mkba.scenario import Scenario

DEFAULT_DRAWS = 10_000
DEFAULT_SEED = 20170222  # the letter's date

GENERAL_CAVEATS = [
    "Een MKBA ordent wat bekend is; zij bewijst geen effect. Het effect van een aanpak komt uit "
    "een aanname of uit onderzoek elders en is de grootste bron van onzekerheid.",
    "Een samenhang in de eigen registratie (zoals de hazard ratio van de monitor voor "
    "basisvoorwaarden op orde) is een associatie, geen bewezen oorzaak.",
    "Overdrachten (uitkeringen, belastingen en premies) vallen voor de maatschappij weg; zij "
    "tellen wel per perspectief.",
    "Niet gewaardeerd: gezondheid, welzijn en gezinsleven van de ex-gedetineerde en zijn "
    "omgeving, verdringing op de arbeidsmarkt, vrije tijd, zorgkosten.",
    "Het model volgt een cohort als kansen per maand (Markov); het houdt geen rekening met "
    "verschillen tussen personen buiten de gekozen populatie.",
    "Parameters met 'aanname' hebben geen openbare bron; de uitkomst hangt ervan af (zie de "
    "tornado).",
]


@dataclass
class RunResult:
    prep: Prepared
    deterministic: Deterministic
    mc: MonteCarlo
    break_even: BreakEven
    tornado_base: float
    tornado: list[TornadoBar]
    grid: Grid
    seconds: float
    caveats: list[str] = field(default_factory=list)

    @property
    def scenario(self) -> Scenario:
        return self.prep.scenario

    @property
    def parameter_set(self) -> ParameterSet:
        return self.prep.parameter_set

    def as_json(self) -> dict[str, Any]:
        return as_json(self)


def run(
    scenario: Scenario,
    *,
    draws: int = DEFAULT_DRAWS,
    seed: int = DEFAULT_SEED,
    engine: Engine | None = None,
    parameter_set: ParameterSet | None = None,
    grid: tuple[str, str] | None = None,
    workers: int = 1,
) -> RunResult:
    started = time.perf_counter()
    prep = analysis.prepare(scenario, parameter_set=parameter_set, engine=engine)
    if grid is not None:
        analysis.check_grid(prep, *grid)
    det = analysis.deterministic(prep)
    mc = analysis.monte_carlo(prep, draws, seed, workers=workers)
    be = analysis.break_even(prep, mc)
    base, bars = analysis.tornado(prep)
    if grid is None:
        top = [b.name for b in bars if b.name != "effect"]
        grid = ("effect", top[0] if top else "programme_cost")
    g = analysis.grid(prep, *grid)
    caveats = [*scenario.caveats, *prep.notes, *GENERAL_CAVEATS]
    return RunResult(prep, det, mc, be, base, bars, g, time.perf_counter() - started, caveats)


def _num(x: float | None) -> float | None:
    if x is None or not math.isfinite(x):
        return None
    return float(x)


def as_json(r: RunResult) -> dict[str, Any]:
    """The run's aggregates (no person anywhere), amounts in euros of the price year."""
    prep, sc, setup = r.prep, r.scenario, r.prep.setup
    n = prep.participants
    out = r.deterministic.outcome
    det = {
        name: {
            "label": PERSPECTIVE_LABELS[name],
            "npv": _num(p.npv),
            "benefits": _num(p.benefits),
            "costs": _num(p.costs),
            "bc_ratio": _num(p.bc_ratio),
            "irr": _num(p.irr),
            "npv_cohort": _num(p.npv * n),
        }
        for name, p in r.deterministic.perspectives.items()
    }
    be = r.break_even
    return {
        "scenario": {
            "name": sc.name,
            "title": sc.title,
            "population": setup.population,
            "participants": n,
            "horizon_months": setup.horizon_months,
            "discount_rate": setup.rate,
            "timing": setup.timing.value,
            "effect": {
                "measure": setup.effect_measure,
                "value": prep.params["effect"].value,
                "months": setup.effect_months,
                "hazard_ratio": _num(
                    float(
                        effect.to_hazard_ratio(
                            setup.effect_measure,
                            np.array([prep.params["effect"].value]),
                            np.array([prep.params["reconviction_2y"].value]),
                        )[0]
                    )
                ),
            },
            "municipal_share_of_costs": setup.municipal_share,
        },
        "parameters": {
            "version": prep.parameter_set.version,
            "price_year": prep.parameter_set.price_year,
            "file": prep.parameter_set.source_file,
            "assumptions": [p.name for p in prep.assumptions()],
            "from_store": sorted(prep.store.params) if prep.store else [],
        },
        "registered": None
        if prep.registered is None
        else {
            "municipality": prep.registered.municipality,
            "programme": prep.registered.programme,
            "cases": prep.registered.cases,
            "activities": prep.registered.activities,
            "cost_per_case": prep.registered.cost_per_case,
            "municipal_share": prep.registered.municipal_share,
        },
        "draws": r.mc.draws,
        "seed": r.mc.seed,
        "per_participant": det,
        "items": {
            name: {"label": ITEM_LABELS[name], "difference": _num(float(out.items[0, i]))}
            for i, name in enumerate(ITEMS)
        },
        "outcomes": {
            "detention_months": _num(float(out.detention_months[0]))
            if out.detention_months is not None
            else None,
            "cases": _num(float(out.cases[0])) if out.cases is not None else None,
            "work_months": _num(float(out.work_months[0])) if out.work_months is not None else None,
        },
        "monte_carlo": {
            k: {kk: _num(vv) for kk, vv in v.items()} for k, v in r.mc.summary().items()
        },
        "break_even": {
            "measure": be.measure,
            "value": _num(be.value),
            "hazard_ratio": _num(be.hazard_ratio),
            "reconviction_2y_without": be.p0,
            "reconviction_2y_at_break_even": _num(be.p1),
            "draws": be.draws,
            "share_of_draws_with_break_even": be.found,
            "percentiles": be.percentiles,
        },
        "tornado": [
            {
                "parameter": b.name,
                "low": b.low,
                "high": b.high,
                "npv_low": b.npv_low,
                "npv_high": b.npv_high,
            }
            for b in r.tornado
        ],
        "grid": {
            "x": r.grid.x_name,
            "y": r.grid.y_name,
            "x_values": r.grid.x,
            "y_values": r.grid.y,
            "npv": r.grid.npv,
        },
        "caveats": r.caveats,
        "seconds": round(r.seconds, 3),
    }
