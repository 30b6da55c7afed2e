"""A scenario's analysis: the parameters it uses, the deterministic result, the Monte Carlo
analysis, the break-even effect, one-way sensitivity (tornado) and a two-way grid
(docs/mkba.md, "Resultaten").

Monte Carlo streams: ``numpy.random.SeedSequence(seed).spawn(k)`` gives one independent
stream per chunk of ``CHUNK`` draws; chunks may run in threads (``workers``), and the result
of a (scenario, draws, seed) is the same whatever the number of workers. The seed is in every
result.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from sqlalchemy import Engine

from terugkeer.mkba import discount, effect, params
from terugkeer.mkba.discount import F64
from terugkeer.mkba.errors import MkbaError
from terugkeer.mkba.estimate import RegisteredCosts, StoreEstimates
from terugkeer.mkba.model import CATEGORIES, PERSPECTIVES, SOCIETY, Outcome, Setup, simulate
from terugkeer.mkba.params import Param, ParameterSet
from terugkeer.mkba.scenario import Scenario

CHUNK = 8192
BREAK_EVEN_DRAWS = 2000
BREAK_EVEN_HIGH = 4.0  # the largest hazard ratio searched
PERCENTILES = (5, 25, 50, 75, 95)
GRID_POINTS = 9
MAX_DRAWS = 1_000_000


@dataclass
class Prepared:
    scenario: Scenario
    setup: Setup
    params: dict[str, Param]
    parameter_set: ParameterSet
    participants: int
    store: StoreEstimates | None = None
    registered: RegisteredCosts | None = None
    notes: list[str] = field(default_factory=list)

    def uncertain(self) -> list[str]:
        return [n for n in sorted(self.params) if self.params[n].uncertain]

    def assumptions(self) -> list[Param]:
        return [self.params[n] for n in sorted(self.params) if self.params[n].assumption]


def prepare(
    scenario: Scenario,
    *,
    parameter_set: ParameterSet | None = None,
    engine: Engine | None = None,
) -> Prepared:
    """Everything the analysis needs: the file's parameters for the population, the
    scenario's overrides, estimates from the store where the scenario asks for them."""
    from terugkeer.mkba import estimate

    pset = parameter_set or params.load()
    setup = scenario.setup
    chosen = dict(pset.for_population(setup.population))
    for name, p in scenario.overrides.items():
        if name not in chosen:
            raise MkbaError(f"scenario: parameter [{name}] is not in the parameter file")
        if p.kind == "amount":
            assert p.price_year is not None  # noqa: S101 - parse_param checks
            p = params.index(p, params.cpi_factor(pset.cpi, p.price_year, pset.price_year))
        chosen[name] = p
    cost = scenario.programme_cost
    assert cost.price_year is not None  # noqa: S101 - an amount has one
    chosen["programme_cost"] = params.index(
        cost, params.cpi_factor(pset.cpi, cost.price_year, pset.price_year)
    )
    chosen["effect"] = scenario.effect
    chosen["work_effect"] = scenario.work_effect
    prep = Prepared(scenario, setup, chosen, pset, scenario.participants)
    if scenario.from_store:
        if engine is None:
            raise MkbaError(f"scenario {scenario.name} reads the store: give a database")
        with engine.connect() as conn:
            prep.store = estimate.population(conn, setup.population, chosen)
            chosen.update(prep.store.params)
            prep.notes += prep.store.notes
            if scenario.monitor_effect is not None:
                _use_monitor(prep, estimate.monitor_effect(engine, scenario.monitor_effect))
            if scenario.registered is not None:
                reg = estimate.registered_costs(
                    conn, scenario.registered.municipality, scenario.registered.programme
                )
                prep.registered = reg
                _use_registered(prep, reg)
    shares = sum(chosen[f"share_{c}"].value for c in CATEGORIES)
    if abs(shares - 1) > 1e-6:
        raise MkbaError(f"the offence shares add up to {shares:.4f}, not 1")
    _check_relative_risk(setup.effect_measure, chosen["effect"], chosen["reconviction_2y"].value)
    return prep


def _check_relative_risk(measure: str, eff: params.Param, p0: float) -> None:
    """A relative risk multiplies the two-year chance ``p0``: one that takes it to 1 or
    beyond (the value or its interval's upper bound) describes no possible programme, and
    the model would clip it into a meaningless hazard ratio."""
    if measure != "relative_risk":
        return
    top = max(eff.value, eff.high or eff.value)
    if top * p0 >= 1:
        raise MkbaError(
            f"scenario: a relative risk of {top:g} on a two-year reconviction chance of"
            f" {p0:.3f} gives a chance of {top * p0:.2f}; it must stay below 1"
            f" (below {1 / p0:.2f})"
        )


def _use_monitor(prep: Prepared, found: Any) -> None:
    from terugkeer.mkba.estimate import MonitorEffect

    if not isinstance(found, MonitorEffect):
        prep.notes.append(f"the monitor gives no hazard ratio ({found}): the stated effect is used")
        return
    hr = min(found.hazard_ratio, 0.999999)
    lo, hi = min(found.lower, hr * 0.999), max(found.upper, hr * 1.001)
    prep.params["effect"] = replace(
        prep.params["effect"],
        value=hr,
        distribution="lognormal",
        sigma=math.log(hi / lo) / (2 * params.Z95),
        low=lo,
        high=hi,
        sd=None,
        source=(
            f"terugkeer-monitor: gecorrigeerde hazard ratio {found.hazard_ratio:.3f} "
            f"({found.lower:.3f}–{found.upper:.3f}), {found.condition}; samenhang, geen effect"
        ),
        assumption=False,
        note="an association read as an effect: an assumption of the scenario",
    )


def _use_registered(prep: Prepared, reg: RegisteredCosts) -> None:
    pset = prep.parameter_set
    try:
        factor = params.cpi_factor(pset.cpi, reg.year, pset.price_year)
    except MkbaError:
        factor = 1.0
        prep.notes.append(f"registered costs of {reg.year} not indexed (outside the CPI series)")
    value = reg.cost_per_case * factor
    prep.params["programme_cost"] = replace(
        prep.params["programme_cost"],
        value=value,
        indexed_from=reg.cost_per_case,
        price_year=reg.year,
        distribution="normal" if reg.sd_of_mean > 0 else "fixed",
        sd=reg.sd_of_mean * factor if reg.sd_of_mean > 0 else None,
        low=None,
        high=None,
        sigma=None,
        source=(
            f"terugkeer-registratie: {reg.activities:,} activiteiten van {reg.cases:,} dossiers, "
            f"{reg.programme} ({reg.municipality})"
        ),
        assumption=False,
    )
    prep.participants = reg.cases
    prep.setup = replace(prep.setup, municipal_share=min(max(reg.municipal_share, 0.0), 1.0))


# --- results -----------------------------------------------------------------------------------


@dataclass
class PerspectiveResult:
    npv: float
    benefits: float
    costs: float
    bc_ratio: float | None
    irr: float | None


@dataclass
class Deterministic:
    outcome: Outcome
    perspectives: dict[str, PerspectiveResult]


def deterministic(prep: Prepared) -> Deterministic:
    out = simulate(params.point(prep.params), prep.setup, monthly=True)
    assert out.monthly_net is not None  # noqa: S101 - asked for
    result = {}
    for i, name in enumerate(PERSPECTIVES):
        monthly = out.monthly_net[:, i]
        result[name] = PerspectiveResult(
            npv=float(out.net[0, i]),
            benefits=float(out.benefits[0, i]),
            costs=float(out.costs[0, i]),
            bc_ratio=discount.bc_ratio(float(out.benefits[0, i]), float(out.costs[0, i])),
            irr=_irr(monthly, float(out.costs[0, i])),
        )
    return Deterministic(out, result)


def _irr(monthly: F64, costs: float) -> float | None:
    """The IRR of a perspective's monthly net amounts: only for a perspective that bears
    costs (a return on what it invests) and only when there is exactly one (with several,
    no single rate describes the flows; docs/mkba.md)."""
    if costs <= 0 or not np.any(monthly):
        return None
    roots = discount.irr_roots(monthly, periods_per_year=12)
    return roots[0] if len(roots) == 1 else None


@dataclass
class MonteCarlo:
    seed: int
    draws: int
    net: F64  # draws x PERSPECTIVES, per participant
    benefits: F64
    costs: F64
    inputs: dict[str, F64]

    def summary(self) -> dict[str, dict[str, float | None]]:
        out: dict[str, dict[str, float | None]] = {}
        for i, name in enumerate(PERSPECTIVES):
            x = self.net[:, i]
            pct = np.percentile(x, PERCENTILES)
            b, c = float(self.benefits[:, i].mean()), float(self.costs[:, i].mean())
            out[name] = {
                "mean": float(x.mean()),
                "sd": float(x.std(ddof=1)) if len(x) > 1 else 0.0,
                **{f"p{q}": float(v) for q, v in zip(PERCENTILES, pct, strict=True)},
                "p_benefits_exceed_costs": float((x > 0).mean()),
                "mean_benefits": b,
                "mean_costs": c,
                "bc_ratio_of_means": discount.bc_ratio(b, c),
            }
        return out


def _chunk(
    prep: Prepared, seq: np.random.SeedSequence, size: int
) -> tuple[Outcome, dict[str, F64]]:
    rng = np.random.Generator(np.random.PCG64(seq))
    x = params.draw(prep.params, size, rng)
    return simulate(x, prep.setup, counts=False), x


def draw_inputs(prep: Prepared, draws: int, seed: int) -> list[dict[str, F64]]:
    """The parameter draws of each chunk (the same streams :func:`monte_carlo` uses)."""
    sizes = _sizes(draws)
    seqs = np.random.SeedSequence(seed).spawn(len(sizes))
    return [
        params.draw(prep.params, n, np.random.Generator(np.random.PCG64(s)))
        for s, n in zip(seqs, sizes, strict=True)
    ]


def _sizes(draws: int) -> list[int]:
    if not 1 <= draws <= MAX_DRAWS:
        raise MkbaError(f"draws must be 1 to {MAX_DRAWS:,}")
    full, rest = divmod(draws, CHUNK)
    return [CHUNK] * full + ([rest] if rest else [])


def monte_carlo(prep: Prepared, draws: int, seed: int, *, workers: int = 1) -> MonteCarlo:
    """``draws`` draws of every uncertain parameter, through the model."""
    if seed < 0:
        raise MkbaError("the seed must be a whole number of at least 0")
    sizes = _sizes(draws)
    seqs = np.random.SeedSequence(seed).spawn(len(sizes))
    jobs = list(zip(seqs, sizes, strict=True))
    if workers > 1 and len(jobs) > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            parts = list(pool.map(lambda job: _chunk(prep, *job), jobs))
    else:
        parts = [_chunk(prep, s, n) for s, n in jobs]
    return MonteCarlo(
        seed=seed,
        draws=draws,
        net=np.concatenate([o.net for o, _ in parts]),
        benefits=np.concatenate([o.benefits for o, _ in parts]),
        costs=np.concatenate([o.costs for o, _ in parts]),
        inputs={k: np.concatenate([x[k] for _, x in parts]) for k in parts[0][1]},
    )


# --- break-even ---------------------------------------------------------------------------------


def _society_at_hr(prep: Prepared, x: dict[str, F64], hr: F64) -> F64:
    setup = replace(prep.setup, effect_measure="hazard_ratio")
    return simulate({**x, "effect": hr}, setup).net[:, SOCIETY]


def break_even_hr(prep: Prepared, x: dict[str, F64], *, tol: float = 1e-6) -> F64:
    """Per row of ``x``: the hazard ratio at which society's NPV is zero (NaN when there is
    none between 0 and ``BREAK_EVEN_HIGH``), by bisection over all rows at once."""
    n = len(x["reconviction_2y"])
    lo, hi = np.zeros(n), np.full(n, BREAK_EVEN_HIGH)
    f_lo, f_hi = _society_at_hr(prep, x, lo), _society_at_hr(prep, x, hi)
    ok = np.sign(f_lo) * np.sign(f_hi) < 0
    exact_lo, exact_hi = f_lo == 0, f_hi == 0
    rising = f_hi > f_lo
    for _ in range(math.ceil(math.log2(BREAK_EVEN_HIGH / tol))):
        mid = (lo + hi) / 2
        f_mid = _society_at_hr(prep, x, mid)
        go_up = (f_mid < 0) == rising  # the root lies above mid
        lo = np.where(go_up, mid, lo)
        hi = np.where(go_up, hi, mid)
    root = (lo + hi) / 2
    root = np.where(exact_lo, 0.0, np.where(exact_hi, BREAK_EVEN_HIGH, root))
    out: F64 = np.where(ok | exact_lo | exact_hi, root, np.nan)
    return out


@dataclass
class BreakEven:
    measure: str
    value: float | None  # in the scenario's measure, at the point values
    hazard_ratio: float | None
    p0: float
    p1: float | None  # the two-year reconviction chance at break-even
    draws: int
    found: float  # share of draws with a break-even
    percentiles: dict[str, float]  # of the measure, over draws with one


def break_even(prep: Prepared, mc: MonteCarlo | None = None) -> BreakEven:
    measure = prep.setup.effect_measure
    x0 = params.point(prep.params)
    hr0 = break_even_hr(prep, x0)
    p0 = float(x0["reconviction_2y"][0])
    value = effect.from_hazard_ratio(measure, hr0, x0["reconviction_2y"])[0]
    found, pct, k = 0.0, {}, 0
    if mc is not None:
        k = min(mc.draws, BREAK_EVEN_DRAWS)
        xs = {name: v[:k] for name, v in mc.inputs.items()}
        hrs = break_even_hr(prep, xs)
        vals = effect.from_hazard_ratio(measure, hrs, xs["reconviction_2y"])
        good = np.isfinite(vals)
        found = float(good.mean())
        if good.any():
            pct = {
                f"p{q}": float(v)
                for q, v in zip(PERCENTILES, np.percentile(vals[good], PERCENTILES), strict=True)
            }
    ok = math.isfinite(float(hr0[0]))
    return BreakEven(
        measure=measure,
        value=float(value) if ok else None,
        hazard_ratio=float(hr0[0]) if ok else None,
        p0=p0,
        p1=float(effect.p1_from_hr(hr0, x0["reconviction_2y"])[0]) if ok else None,
        draws=k,
        found=found,
        percentiles=pct,
    )


# --- sensitivity -------------------------------------------------------------------------------


@dataclass
class TornadoBar:
    name: str
    low: float
    high: float
    npv_low: float
    npv_high: float

    @property
    def swing(self) -> float:
        return abs(self.npv_high - self.npv_low)


def _rows(prep: Prepared, changes: list[dict[str, float]]) -> dict[str, F64]:
    x = params.point(prep.params, len(changes))
    for i, change in enumerate(changes):
        for name, value in change.items():
            x[name][i] = value
    return x


def tornado(prep: Prepared, *, q: float = 0.05) -> tuple[float, list[TornadoBar]]:
    """Society's NPV with each uncertain parameter at its ``q`` and ``1 − q`` quantile, the
    others at their point values; sorted by swing, largest first."""
    names = prep.uncertain()
    changes: list[dict[str, float]] = [{}]
    for n in names:
        p = prep.params[n]
        changes += [{n: p.quantile(q)}, {n: p.quantile(1 - q)}]
    npv = simulate(_rows(prep, changes), prep.setup).net[:, SOCIETY]
    bars = [
        TornadoBar(n, changes[1 + 2 * i][n], changes[2 + 2 * i][n], npv[1 + 2 * i], npv[2 + 2 * i])
        for i, n in enumerate(names)
    ]
    bars.sort(key=lambda b: b.swing, reverse=True)
    return float(npv[0]), bars


@dataclass
class Grid:
    x_name: str
    y_name: str
    x: list[float]
    y: list[float]
    npv: list[list[float]]  # [y][x], society, per participant


def check_grid(prep: Prepared, x_name: str, y_name: str) -> None:
    for name in (x_name, y_name):
        if name not in prep.params:
            known = ", ".join(sorted(prep.params))
            raise MkbaError(f"unknown parameter [{name[:60]}] (known: {known})")
    if x_name == y_name:
        raise MkbaError("a two-way grid needs two different parameters")


def grid(prep: Prepared, x_name: str, y_name: str, *, points: int = GRID_POINTS) -> Grid:
    """Society's NPV over a grid of two parameters (each from its 5th to its 95th
    percentile; a fixed parameter from half to one and a half times its value)."""
    check_grid(prep, x_name, y_name)

    def span(name: str) -> F64:
        p = prep.params[name]
        lo, hi = (
            (p.quantile(0.05), p.quantile(0.95)) if p.uncertain else (0.5 * p.value, 1.5 * p.value)
        )
        if p.kind in ("probability", "share"):
            lo, hi = max(lo, 0.0), min(hi, 1.0)
        return np.linspace(lo, hi, points)

    xs, ys = span(x_name), span(y_name)
    changes = [{x_name: float(a), y_name: float(b)} for b in ys for a in xs]
    npv = simulate(_rows(prep, changes), prep.setup).net[:, SOCIETY].reshape(points, points)
    return Grid(x_name, y_name, xs.tolist(), ys.tolist(), npv.tolist())
