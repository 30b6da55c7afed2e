"""The monthly state model of a released cohort (after SEOR, working paper 2019/2), as a
Markov cohort model vectorised over draws (docs/mkba.md, "Het model").

Each month a person is in one of four states: **work**, on a **benefit**, back in
**detention**, or **other** (no work and no benefit). The state distribution of the cohort is
propagated as probabilities: ``occupancy[state, row]`` for every row (a Monte Carlo draw, a
sensitivity point) at once, month by month (arrays states × rows, so each step is a few
vector operations over all rows). Month 0 is the month of release.

Transitions per month, from the parameters of a row:

* a new criminal case (reconviction) with monthly chance ``h`` outside detention, lower in
  work (``work_reconviction_rr``); ``h`` follows from the two-year chance ``reconviction_2y``
  (``1 − (1 − h)^24``, averaged over the mix at release); a share ``c`` of cases brings the
  person back into detention, ``c`` from ``detention_2y`` in the same way;
* the labour market: from benefit or other to work (``job_finding_month``), from work to
  benefit or other (``job_loss_month``, ``benefit_after_job_loss``), other to benefit and
  back (``benefit_inflow_month``, ``benefit_outflow_month``);
* out of detention after ``months_per_return`` on average, into the mix at release.

Cases fall into offence categories by fixed shares (``share_<category>``), each with its
victim costs. The scenario arm has the programme's effect for ``effect_months``: the monthly
survival ``1 − h`` raised to the hazard ratio (``effect.py``) and the job-finding chance
multiplied by ``work_effect``; the counterfactual arm has neither and no programme costs.

What follows is linear in the occupancy, so it is accumulated discounted per state and per
phase (effect on, effect off) and turned into amounts at the end: detention days, cases
(criminal-justice chain and victims), benefit payments and their administration, production
and net wages from work, the programme's costs. Each item's difference (scenario minus
counterfactual) is attributed to the perspectives by ``SIGNS``; society is their sum, where
transfers (benefits, taxes and premiums) cancel.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from terugkeer.mkba import discount, effect
from terugkeer.mkba.discount import F64, Timing
from terugkeer.mkba.errors import MkbaError

STATES = ("work", "benefit", "detention", "other")
WORK, BENEFIT, DETENTION, OTHER = range(4)
FREE = (WORK, BENEFIT, OTHER)
DAYS_PER_MONTH = 365.25 / 12
CATEGORIES = ("zeden", "zwaar_geweld", "overig_geweld", "vermogen", "opiumwet", "overig")

ITEMS = (
    "detention",
    "chain",
    "victims",
    "benefit_paid",
    "benefit_admin",
    "production",
    "net_wage",
    "taxes",
    "programme_central",
    "programme_municipal",
)
ITEM_LABELS = {
    "detention": "detentiedagen",
    "chain": "strafrechtketen (zaken)",
    "victims": "slachtofferkosten",
    "benefit_paid": "uitkeringen (overdracht)",
    "benefit_admin": "uitvoeringskosten uitkeringen",
    "production": "productie uit werk",
    "net_wage": "nettoloon",
    "taxes": "belastingen en premies (overdracht)",
    "programme_central": "kosten programma (Rijk)",
    "programme_municipal": "kosten programma (gemeenten)",
}
PERSPECTIVES = ("central_government", "municipalities", "victims", "ex_detainee", "society")
SOCIETY = PERSPECTIVES.index("society")
PERSPECTIVE_LABELS = {
    "central_government": "Rijk",
    "municipalities": "gemeenten",
    "victims": "slachtoffers",
    "ex_detainee": "ex-gedetineerde",
    "society": "maatschappij",
}
# rows: items (a difference in the amount, scenario minus counterfactual); columns:
# perspectives. +1: a gain to the perspective, -1: a cost. Society is the sum of the others.
_S = {
    "detention": (-1, 0, 0, 0),
    "chain": (-1, 0, 0, 0),
    "victims": (0, 0, -1, 0),
    "benefit_paid": (0, -1, 0, 1),
    "benefit_admin": (0, -1, 0, 0),
    "production": (0, 0, 0, 0),
    "net_wage": (0, 0, 0, 1),
    "taxes": (1, 0, 0, 0),
    "programme_central": (-1, 0, 0, 0),
    "programme_municipal": (0, -1, 0, 0),
}
_PARTS = np.array([_S[i] for i in ITEMS], dtype=np.float64)
# society: the real resources; production is gained by whoever is paid from it (net wage to
# the ex-detainee, taxes and premiums to the government, nothing left to the employer when
# productivity equals the wage cost), so the perspectives add up to it
SIGNS = np.column_stack([_PARTS, _PARTS.sum(axis=1)])
SIGNS[ITEMS.index("production"), :] = (0, 0, 0, 0, 1)
SIGNS[ITEMS.index("net_wage"), 4] = 0
SIGNS[ITEMS.index("taxes"), 4] = 0
PROGRAMME_ITEMS = (ITEMS.index("programme_central"), ITEMS.index("programme_municipal"))

POPULATION_PARAMS = (
    "reconviction_2y",
    "detention_2y",
    "months_per_return",
    "work_at_release",
    "benefit_at_release",
    "job_finding_month",
    "job_loss_month",
    "benefit_after_job_loss",
    "benefit_inflow_month",
    "benefit_outflow_month",
    "work_reconviction_rr",
)
SHARED_PARAMS = (
    "chain_cost_per_case",
    "social_assistance_month",
    "benefit_admin_year",
    "minimum_wage_month",
    "employer_cost_share",
    "net_wage_share",
    "hours_share",
    *(f"victim_cost_{c}" for c in CATEGORIES),
    *(f"share_{c}" for c in CATEGORIES),
)
SCENARIO_PARAMS = ("effect", "work_effect", "programme_cost")


@dataclass(frozen=True)
class Setup:
    """What is not drawn: the scenario's frame."""

    population: str = "adult"
    horizon_months: int = 120
    rate: float = 0.0225
    timing: Timing = Timing.MIDDLE
    effect_measure: str = "hazard_ratio"
    effect_months: int = 24
    cost_months: int = 12
    municipal_share: float = 1.0  # of the programme's costs; the rest is central government

    def check(self) -> None:
        if not 1 <= self.horizon_months <= 1200:
            raise MkbaError("the horizon must be 1 to 1,200 months")
        if not 0 <= self.effect_months <= self.horizon_months:
            raise MkbaError("the effect's duration must lie within the horizon")
        if not 1 <= self.cost_months <= self.horizon_months:
            raise MkbaError("the programme's costs must fall within the horizon (1+ months)")
        if not 0 <= self.municipal_share <= 1:
            raise MkbaError("the municipalities' share of the costs lies between 0 and 1")
        effect.check_measure(self.effect_measure)
        discount.check_rate(self.rate)

    @property
    def prison_day(self) -> str:
        return f"prison_day_{self.population}"

    def needs(self) -> tuple[str, ...]:
        return (*POPULATION_PARAMS, *SHARED_PARAMS, self.prison_day, *SCENARIO_PARAMS)


@dataclass(frozen=True)
class Outcome:
    """Per row: present values (per participant) of each item's difference and of each
    perspective's net result, the perspectives' benefits and costs, and undiscounted counts."""

    items: F64  # rows x ITEMS: scenario minus counterfactual, in euros
    net: F64  # rows x PERSPECTIVES
    benefits: F64  # rows x PERSPECTIVES: net without the programme's costs
    costs: F64  # rows x PERSPECTIVES: the programme's costs borne
    detention_months: F64 | None  # rows: difference (None unless counted)
    cases: F64 | None  # rows: difference in new criminal cases
    work_months: F64 | None  # rows: difference
    monthly_net: F64 | None = None  # months x PERSPECTIVES, row 0 only, undiscounted

    def society(self) -> F64:
        out: F64 = self.net[:, PERSPECTIVES.index("society")]
        return out


def _hazards(x: Mapping[str, F64]) -> tuple[F64, F64, F64]:
    """Monthly chance of a case outside work and in work, and the custodial share."""
    h = 1 - np.power(1 - np.clip(x["reconviction_2y"], 0, 1 - 1e-12), 1 / 24)
    hd = 1 - np.power(1 - np.clip(x["detention_2y"], 0, 1 - 1e-12), 1 / 24)
    w0 = x["work_at_release"]
    rr = x["work_reconviction_rr"]
    h_non = np.clip(h / (1 - w0 + w0 * rr), 0, 1)
    h_work = np.clip(rr * h_non, 0, 1)
    custodial = np.clip(np.divide(hd, h, out=np.zeros_like(h), where=h > 0), 0, 1)
    return h_non, h_work, custodial


def _start(x: Mapping[str, F64]) -> F64:
    w0 = np.clip(x["work_at_release"], 0, 1)
    b0 = np.minimum(np.clip(x["benefit_at_release"], 0, 1), 1 - w0)
    return np.stack([w0, b0, np.zeros_like(w0), 1 - w0 - b0])


def transitions(x: Mapping[str, F64], hr: F64, job_rr: F64) -> tuple[F64, F64]:
    """The transition matrices, ``[from, to, row]``, and the monthly chance of a case per
    state ``[state, row]`` (0 in detention), with hazard ratio ``hr`` and job-finding
    multiplier ``job_rr``."""
    h_non, h_work, c = _hazards(x)
    h_non = 1 - np.power(1 - h_non, hr)
    h_work = 1 - np.power(1 - h_work, hr)
    f = np.clip(x["job_finding_month"] * job_rr, 0, 1)
    loss = x["job_loss_month"]
    q = x["benefit_after_job_loss"]
    b_out = x["benefit_outflow_month"]
    b_in = x["benefit_inflow_month"]
    leave = np.clip(1 / np.maximum(x["months_per_return"], 1e-9), 0, 1)
    start = _start(x)
    n = len(hr)
    p = np.zeros((4, 4, n))
    free_w = 1 - h_work * c
    p[WORK, DETENTION] = h_work * c
    p[WORK, BENEFIT] = free_w * loss * q
    p[WORK, OTHER] = free_w * loss * (1 - q)
    p[WORK, WORK] = free_w * (1 - loss)
    for s, move, to in ((BENEFIT, b_out, OTHER), (OTHER, b_in, BENEFIT)):
        free = 1 - h_non * c
        stay = np.clip(1 - f - move, 0, 1)
        total = f + np.minimum(move, 1 - f) + stay
        p[s, DETENTION] = h_non * c
        p[s, WORK] = free * f / total
        p[s, to] = free * np.minimum(move, 1 - f) / total
        p[s, s] = free * stay / total
    p[DETENTION, DETENTION] = 1 - leave
    for s in FREE:
        p[DETENTION, s] = leave * start[s]
    hazard = np.stack([h_work, h_non, np.zeros_like(h_non), h_non])
    return p, hazard


BLOCK = 8192  # rows per pass of the month loop: a block's arrays stay in the CPU's cache


def _run(
    start: F64, phases: tuple[F64, F64], setup: Setup, df: F64, *, counts: bool, monthly: bool
) -> tuple[F64, F64 | None, list[F64]]:
    """Discounted (and, with ``counts``, undiscounted) occupancy per phase ``[phase, state,
    row]`` and (with ``monthly``) the occupancy of every month, from ``start`` with the
    transition matrices of the two phases (effect on, effect off). Rows go through the
    months in blocks of ``BLOCK``."""
    n = start.shape[1]
    disc = np.zeros((2, 4, n))
    plain = np.zeros((2, 4, n)) if counts else None
    months: list[F64] = []
    if monthly:
        months = [np.empty((4, n)) for _ in range(setup.horizon_months)]
    for lo in range(0, n, BLOCK):
        hi = min(lo + BLOCK, n)
        ps = (phases[0][:, :, lo:hi], phases[1][:, :, lo:hi])
        d = disc[:, :, lo:hi]
        u = plain[:, :, lo:hi] if plain is not None else None
        occ = start[:, lo:hi].copy()
        new = np.empty_like(occ)
        tmp = np.empty_like(occ)
        for t in range(setup.horizon_months):
            phase = 0 if t < setup.effect_months else 1
            p = ps[phase]
            np.multiply(occ, df[t], out=tmp)
            d[phase] += tmp
            if u is not None:
                u[phase] += occ
            if monthly:
                months[t][:, lo:hi] = occ
            np.multiply(p[0], occ[0], out=new)
            for s in (1, 2, 3):
                np.multiply(p[s], occ[s], out=tmp)
                new += tmp
            occ, new = new, occ
    return disc, plain, months


def _amounts(x: Mapping[str, F64], setup: Setup, occ: F64, hazards: list[F64]) -> F64:
    """Items ``[item, row]`` (without the programme) for occupancy per phase ``[phase, state,
    row]`` and the chance of a case per phase ``[state, row]``."""
    cases = sum((occ[p] * hazards[p]).sum(axis=0) for p in range(2))
    victim = sum(x[f"share_{c}"] * x[f"victim_cost_{c}"] for c in CATEGORIES)
    total = occ.sum(axis=0)
    gross = total[WORK] * x["minimum_wage_month"] * x["hours_share"]
    production = gross * (1 + x["employer_cost_share"])
    net_wage = gross * x["net_wage_share"]
    zero = np.zeros_like(gross)
    return np.stack(
        [
            total[DETENTION] * DAYS_PER_MONTH * x[setup.prison_day],
            cases * x["chain_cost_per_case"],
            cases * victim,
            total[BENEFIT] * x["social_assistance_month"],
            total[BENEFIT] * x["benefit_admin_year"] / 12,
            production,
            net_wage,
            production - net_wage,
            zero,
            zero,
        ]
    )


def simulate(
    x: Mapping[str, F64], setup: Setup, *, monthly: bool = False, counts: bool = True
) -> Outcome:
    """The model for every row of ``x`` (a mapping of parameter name to values per row):
    both arms, their differences per item and perspective, per participant. Both arms run
    as one array (the counterfactual's rows first); ``counts``: also the undiscounted
    differences in detention months, cases and work months."""
    missing = [k for k in setup.needs() if k not in x]
    if missing:
        raise MkbaError(f"parameters missing for the model: {', '.join(missing)}")
    n = len(x["reconviction_2y"])
    ones = np.ones(n)
    months = np.arange(setup.horizon_months)
    df = discount.discount_factors(months, setup.rate, setup.timing, periods_per_year=12)
    hr = effect.to_hazard_ratio(setup.effect_measure, x["effect"], x["reconviction_2y"])
    base_p, base_h = transitions(x, ones, ones)
    treat_p, treat_h = transitions(x, hr, x["work_effect"])
    both = (np.concatenate([base_p, treat_p], axis=2), np.concatenate([base_p, base_p], axis=2))
    start = _start(x)
    disc, plain, occ_months = _run(
        np.concatenate([start, start], axis=1), both, setup, df, counts=counts, monthly=monthly
    )
    hz0, hz1 = [base_h, base_h], [treat_h, base_h]
    items = _amounts(x, setup, disc[:, :, n:], hz1) - _amounts(x, setup, disc[:, :, :n], hz0)
    cost = x["programme_cost"] * df[: setup.cost_months].sum() / setup.cost_months
    items[PROGRAMME_ITEMS[0]] = cost * (1 - setup.municipal_share)
    items[PROGRAMME_ITEMS[1]] = cost * setup.municipal_share
    items_rows = items.T
    net = items_rows @ SIGNS
    programme = np.zeros(len(ITEMS))
    programme[list(PROGRAMME_ITEMS)] = 1
    costs = -(items_rows * programme) @ SIGNS
    det = cases = work = None
    if plain is not None:
        p0, p1 = plain[:, :, :n], plain[:, :, n:]
        cases = np.asarray(
            sum(((p1[p] * hz1[p]) - (p0[p] * hz0[p])).sum(axis=0) for p in range(2)),
            dtype=np.float64,
        )
        diff = p1.sum(axis=0) - p0.sum(axis=0)
        det, work = diff[DETENTION], diff[WORK]
    monthly_net = None
    if monthly:
        m0 = [m[:, :n] for m in occ_months]
        m1 = [m[:, n:] for m in occ_months]
        monthly_net = _monthly(x, setup, (m0, hz0), (m1, hz1))
    return Outcome(
        items=items_rows,
        net=net,
        benefits=net + costs,
        costs=costs,
        detention_months=det,
        cases=cases,
        work_months=work,
        monthly_net=monthly_net,
    )


def _monthly(
    x: Mapping[str, F64],
    setup: Setup,
    arm0: tuple[list[F64], list[F64]],
    arm1: tuple[list[F64], list[F64]],
) -> F64:
    """Undiscounted net result per month and perspective for row 0 (for the IRR)."""
    rows = []
    per_month_cost = x["programme_cost"][0] / setup.cost_months
    for t in range(setup.horizon_months):
        phase = 0 if t < setup.effect_months else 1
        diff = np.zeros(len(ITEMS))
        for (occs, hz), sign in ((arm1, 1.0), (arm0, -1.0)):
            occ = np.zeros((2, 4, len(occs[t][0])))
            occ[phase] = occs[t]
            diff += sign * _amounts(x, setup, occ, hz)[:, 0]
        if t < setup.cost_months:
            diff[PROGRAMME_ITEMS[0]] = per_month_cost * (1 - setup.municipal_share)
            diff[PROGRAMME_ITEMS[1]] = per_month_cost * setup.municipal_share
        rows.append(diff @ SIGNS)
    return np.array(rows)
