"""The model of ``model.py`` written the straightforward way: one draw at a time, month by
month, in plain Python floats. It is the baseline of ``bench/mkba.py`` and, written
independently, a check on the vectorised model (tests/mkba/test_model.py): both must give the
same results for the same draws."""

from __future__ import annotations

import math
from collections.abc import Mapping

from terugkeer.mkba import effect
from terugkeer.mkba.model import CATEGORIES, DAYS_PER_MONTH, PERSPECTIVES, Setup

W, B, D, O = 0, 1, 2, 3  # noqa: E741 - the states, as in model.py


def _matrix(
    x: Mapping[str, float], hr: float, job_rr: float
) -> tuple[list[list[float]], list[float]]:
    h = 1 - (1 - min(x["reconviction_2y"], 1 - 1e-12)) ** (1 / 24)
    hd = 1 - (1 - min(x["detention_2y"], 1 - 1e-12)) ** (1 / 24)
    w0 = min(max(x["work_at_release"], 0.0), 1.0)
    b0 = min(max(x["benefit_at_release"], 0.0), 1 - w0)
    rr = x["work_reconviction_rr"]
    h_non = min(max(h / (1 - w0 + w0 * rr), 0.0), 1.0)
    h_work = min(max(rr * h_non, 0.0), 1.0)
    c = min(max(hd / h, 0.0), 1.0) if h > 0 else 0.0
    h_non = 1 - (1 - h_non) ** hr
    h_work = 1 - (1 - h_work) ** hr
    f = min(max(x["job_finding_month"] * job_rr, 0.0), 1.0)
    loss, q = x["job_loss_month"], x["benefit_after_job_loss"]
    leave = min(max(1 / max(x["months_per_return"], 1e-9), 0.0), 1.0)
    start = [w0, b0, 0.0, 1 - w0 - b0]
    p = [[0.0] * 4 for _ in range(4)]
    free = 1 - h_work * c
    p[W][D] = h_work * c
    p[W][B] = free * loss * q
    p[W][O] = free * loss * (1 - q)
    p[W][W] = free * (1 - loss)
    for s, move, to in ((B, x["benefit_outflow_month"], O), (O, x["benefit_inflow_month"], B)):
        free = 1 - h_non * c
        moved = min(move, 1 - f)
        stay = min(max(1 - f - move, 0.0), 1.0)
        total = f + moved + stay
        p[s][D] = h_non * c
        p[s][W] = free * f / total
        p[s][to] = free * moved / total
        p[s][s] = free * stay / total
    p[D][D] = 1 - leave
    for s in (W, B, O):
        p[D][s] = leave * start[s]
    return p, [h_work, h_non, 0.0, h_non]


def _hazard_ratio(measure: str, value: float, p0: float) -> float:
    """effect.to_hazard_ratio for one value."""
    if measure == "hazard_ratio":
        return value
    p0 = min(max(p0, 1e-12), 1 - 1e-12)
    if measure == "relative_risk":
        p1 = value * p0
    else:
        odds_ratio = math.exp(-value * effect.CHINN) if measure == "smd" else value
        p1 = odds_ratio * p0 / (1 - p0 + odds_ratio * p0)
    p1 = min(max(p1, 0.0), 1 - 1e-12)
    return math.log1p(-p1) / math.log1p(-p0)


def _arm(
    x: Mapping[str, float], setup: Setup, df: list[float], hr: float, job: float
) -> list[float]:
    """Discounted detention months, cases, benefit months and work months of one arm."""
    phases = [_matrix(x, hr, job), _matrix(x, 1.0, 1.0)]
    w0 = min(max(x["work_at_release"], 0.0), 1.0)
    b0 = min(max(x["benefit_at_release"], 0.0), 1 - w0)
    occ = [w0, b0, 0.0, 1 - w0 - b0]
    det = cases = ben = work = 0.0
    for t in range(setup.horizon_months):
        p, hz = phases[0 if t < setup.effect_months else 1]
        det += df[t] * occ[D]
        ben += df[t] * occ[B]
        work += df[t] * occ[W]
        cases += df[t] * sum(occ[s] * hz[s] for s in range(4))
        occ = [sum(occ[s] * p[s][k] for s in range(4)) for k in range(4)]
    return [det, cases, ben, work]


def simulate_one(x: Mapping[str, float], setup: Setup) -> dict[str, float]:
    """The net present value per perspective (per participant) of one draw."""
    r = setup.rate
    shift = {"start": 0.0, "middle": 0.5, "end": 1.0}[setup.timing.value]
    df = [(1 + r) ** (-(t + shift) / 12) for t in range(setup.horizon_months)]
    hr = _hazard_ratio(setup.effect_measure, x["effect"], x["reconviction_2y"])
    treated = _arm(x, setup, df, hr, x["work_effect"])
    control = _arm(x, setup, df, 1.0, 1.0)
    d_det, d_cases, d_ben, d_work = (a - b for a, b in zip(treated, control, strict=True))
    victim = sum(x[f"share_{c}"] * x[f"victim_cost_{c}"] for c in CATEGORIES)
    gross = d_work * x["minimum_wage_month"] * x["hours_share"]
    production = gross * (1 + x["employer_cost_share"])
    net_wage = gross * x["net_wage_share"]
    cost = x["programme_cost"] * sum(df[: setup.cost_months]) / setup.cost_months
    municipal = cost * setup.municipal_share
    central = cost - municipal
    detention = d_det * DAYS_PER_MONTH * x[setup.prison_day]
    chain = d_cases * x["chain_cost_per_case"]
    paid = d_ben * x["social_assistance_month"]
    admin = d_ben * x["benefit_admin_year"] / 12
    result = {
        "central_government": -detention - chain + (production - net_wage) - central,
        "municipalities": -paid - admin - municipal,
        "victims": -d_cases * victim,
        "ex_detainee": paid + net_wage,
        "society": -detention - chain - d_cases * victim - admin + production - cost,
    }
    assert set(result) == set(PERSPECTIVES)  # noqa: S101 - one list of perspectives
    return result
