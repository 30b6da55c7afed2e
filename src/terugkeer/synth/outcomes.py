"""Reconvictions (Justid) and victim registrations (IDV), as numpy columns.

Reconvictions follow each release into society for three years (no censoring: the data are
complete, whatever today's date). A period's 2-year outcome was drawn in the model
(``Population.recid_draw``); here it becomes cases:

* a first *counting* case (conviction, settlement or policy dismissal) at an offence date within
  two years when the outcome is yes, front-loaded (``729 * u**1.6`` days: about 40 % of the
  first offences fall in the first six months); otherwise, for some, in year three;
* further counting cases after the first (Poisson, more for higher risk);
* cases ending in acquittal or technical dismissal, anywhere in the follow-up: these do not
  count as recidivism (WODC), so a person with only those is not reconvicted;
* when the same person has a second release this year, the first period's follow-up stops at
  the second intake, and the first counting case is the offence that brought them back, dated
  1-21 days before that intake, with the category of the new period's main offence.

The ground truth per period is computed back from the cases, by offence date.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from terugkeer.domain.codes import CaseDecision
from terugkeer.synth import clock
from terugkeer.synth import params as P
from terugkeer.synth.clock import HOUR, I64
from terugkeer.synth.model import (
    B8,
    C_OVERIG_GEWELD,
    C_ZEDEN,
    C_ZWAAR,
    CATEGORIES,
    DECISIONS,
    Group,
    Population,
)

D_CONVICTION = DECISIONS.index(CaseDecision.CONVICTION)


@dataclass
class Reconvictions:
    period: I64  # the release it follows
    person: I64
    offence_day: I64
    decision: I64
    category: I64
    statutory_max: I64
    custodial: B8
    t_registered: I64
    # per period, by offence date
    reconvicted_2y: B8
    custodial_2y: B8
    first_offence_day: I64  # -1: none within 2 years

    def __len__(self) -> int:
        return len(self.period)


@dataclass
class Victims:
    period: I64
    relation_survivor: B8
    spoke_in_court: B8
    wants_information: B8
    t_registered: I64
    per_period: I64

    def __len__(self) -> int:
        return len(self.period)


def _pick(rng: np.random.Generator, mix: dict[str, float], size: int, lookup: list[str]) -> I64:
    keys = list(mix)
    p = np.array([mix[k] for k in keys], dtype=np.float64)
    idx = np.array([lookup.index(k) for k in keys], dtype=np.int64)
    out: I64 = idx[rng.choice(len(keys), size=size, p=p / p.sum())]
    return out


def _statutory(rng: np.random.Generator, category: I64) -> I64:
    out = np.zeros(len(category), dtype=np.int64)
    for c_idx, cat in enumerate(CATEGORIES):
        mask = category == c_idx
        k = int(mask.sum())
        if not k:
            continue
        table = P.STATUTORY_MAX[cat.value]
        vals = np.array([v for v, _ in table], dtype=np.int64)
        w = np.array([x for _, x in table], dtype=np.float64)
        out[mask] = vals[rng.choice(len(vals), size=k, p=w / w.sum())]
    return out


def _registration_times(rng: np.random.Generator, days: I64, lo_h: float, hi_h: float) -> I64:
    secs = (lo_h * HOUR + rng.random(len(days)) * (hi_h - lo_h) * HOUR).astype(np.int64)
    return clock.local_to_utc(days, secs)


def build_reconvictions(pop: Population, rng: np.random.Generator) -> Reconvictions:
    n = pop.n
    soc = pop.into_society
    nxt = pop.next_period
    forced = soc & (nxt >= 0)
    window_end = np.where(
        nxt >= 0, pop.day_in[np.maximum(nxt, 0)] - 1, pop.day_out + P.FOLLOW_UP_DAYS
    )
    window = window_end - pop.day_out  # offence days day_out+1 .. window_end
    risk = pop.p_risk[pop.person]
    cat_names = [c.value for c in CATEGORIES]
    dec_names = [d.value for d in DECISIONS]

    # first counting case
    u = rng.random(n)
    t1 = np.where(pop.recid_draw, 1 + np.floor(729 * u**1.6), 0).astype(np.int64)
    year3 = soc & ~pop.recid_draw & (rng.random(n) < P.YEAR_3_SHARE)
    t1 = np.where(year3, 731 + np.floor(364 * u), t1).astype(np.int64)
    gap = np.maximum(window, 1)
    back = np.minimum(rng.integers(1, 22, n), np.maximum(gap - 1, 1))
    t1 = np.where(forced, np.maximum(gap - back + 1, 1), t1)  # offence day = next intake - back
    has_first = soc & ((t1 > 0) & (t1 <= window))
    first_p = np.nonzero(has_first)[0]

    # further counting cases, after the first (not in a window cut short by a new intake)
    lam = P.FURTHER_CASES * np.exp(0.4 * risk)
    m = np.where(has_first & ~forced & (nxt < 0), rng.poisson(lam), 0)
    further_p = np.repeat(np.arange(n, dtype=np.int64), m)
    lo = t1[further_p] + 1
    span = np.maximum(window[further_p] - lo + 1, 1)
    further_t = lo + np.floor(rng.random(len(further_p)) * span).astype(np.int64)
    keep = further_t <= window[further_p]
    further_p, further_t = further_p[keep], further_t[keep]

    # cases that do not count
    k = np.where(soc & (window >= 1), rng.poisson(P.NON_COUNTING_CASES, n), 0)
    nc_p = np.repeat(np.arange(n, dtype=np.int64), k)
    nc_t = 1 + np.floor(rng.random(len(nc_p)) * np.maximum(window[nc_p], 1)).astype(np.int64)

    period = np.concatenate([first_p, further_p, nc_p])
    t_rel = np.concatenate([t1[first_p], further_t, nc_t])
    counting = np.concatenate(
        [np.ones(len(first_p) + len(further_p), dtype=np.bool_), np.zeros(len(nc_p), np.bool_)]
    )
    is_forced = np.concatenate(
        [forced[first_p], np.zeros(len(further_p) + len(nc_p), dtype=np.bool_)]
    )
    c = len(period)
    offence_day = pop.day_out[period] + t_rel

    # category: the original one recurs; the forced case is the new period's main offence
    category = _pick(rng, P.RECONVICTION_CATEGORIES, c, cat_names)
    same = rng.random(c) < P.SAME_CATEGORY
    category = np.where(same, pop.off_cat[period, 0], category)
    statutory = _statutory(rng, category)
    nxt_p = np.maximum(nxt[period], 0)
    category = np.where(is_forced, pop.off_cat[nxt_p, 0], category)
    statutory = np.where(is_forced, pop.off_max[nxt_p, 0], statutory)

    decision = np.where(
        counting,
        _pick(rng, P.COUNTING_DECISIONS, c, dec_names),
        _pick(rng, P.NON_COUNTING_DECISIONS, c, dec_names),
    )
    to_prison = np.isin(pop.group[nxt_p], [Group.PT_SENTENCE, Group.SENTENCE])
    decision = np.where(is_forced & to_prison, D_CONVICTION, decision)
    p_cust = np.array([P.CUSTODIAL[name] for name in cat_names], dtype=np.float64)[category]
    custodial = (decision == D_CONVICTION) & (rng.random(c) < p_cust)
    custodial |= is_forced & to_prison

    lag = np.maximum(
        7, np.ceil(P.REGISTRATION_LAG[0] * np.exp(P.REGISTRATION_LAG[1] * rng.standard_normal(c)))
    )
    t_reg = _registration_times(rng, offence_day + lag.astype(np.int64), 8, 18)

    person = pop.person[period]
    recon2, cust2, first_day = _two_year_truth(pop, person, offence_day, counting, custodial)
    return Reconvictions(
        period=period,
        person=person,
        offence_day=offence_day,
        decision=decision,
        category=category,
        statutory_max=statutory,
        custodial=custodial,
        t_registered=t_reg,
        reconvicted_2y=recon2,
        custodial_2y=cust2,
        first_offence_day=first_day,
    )


def _two_year_truth(
    pop: Population, person: I64, offence_day: I64, counting: B8, custodial: B8
) -> tuple[B8, B8, I64]:
    """Per period: a counting case of the person with an offence date in the two years after
    the release day (exclusive), and whether one of those was custodial."""
    base = int(offence_day.min(initial=0)) - 1
    width = np.int64(1 << 22)
    soc = pop.into_society
    lo_day = pop.day_out + 1 - base
    hi_day = pop.day_out + 730 - base
    p_person = pop.person

    def search(mask: B8) -> tuple[I64, I64, I64]:
        keys = np.sort(person[mask] * width + (offence_day[mask] - base))
        lo = np.searchsorted(keys, p_person * width + lo_day, side="left")
        hi = np.searchsorted(keys, p_person * width + hi_day, side="right")
        return keys, lo, hi

    keys, lo, hi = search(counting)
    recon = soc & (hi > lo)
    if len(keys):
        first = np.where(recon, keys[np.minimum(lo, len(keys) - 1)] % width + base, -1)
    else:
        first = np.full(len(recon), -1, dtype=np.int64)
    _, lo2, hi2 = search(counting & custodial)
    cust = soc & (hi2 > lo2)
    return recon, cust, first.astype(np.int64)


def build_victims(pop: Population, rng: np.random.Generator) -> Victims:
    n = pop.n
    primary = pop.off_cat[:, 0]
    released = ~pop.is_death
    forensic = np.isin(pop.group, [Group.TBS, Group.PIJ, Group.INTO_TBS])
    serious = np.isin(primary, [C_ZEDEN, C_ZWAAR]) | forensic
    p_case = np.where(serious, P.VICTIM_CASE_SERIOUS, 0.0)
    p_case = np.where(~serious & (primary == C_OVERIG_GEWELD), P.VICTIM_CASE_OTHER_VIOLENCE, p_case)
    has = released & (rng.random(n) < p_case)
    survivors = has & (primary == C_ZWAAR) & (rng.random(n) < P.SURVIVING_RELATIVES)
    count = np.where(
        survivors,
        1 + rng.poisson(2 * P.EXTRA_VICTIMS_MEAN, n),
        1 + rng.poisson(P.EXTRA_VICTIMS_MEAN, n),
    )
    count = np.where(has, count, 0)
    period = np.repeat(np.arange(n, dtype=np.int64), count)
    v = len(period)
    tried = pop.group[period] != Group.PT_COURT
    tried &= pop.group[period] != Group.JJI_PT
    spoke = tried & (rng.random(v) < P.SPOKE_IN_COURT)
    wants = rng.random(v) < P.WANTS_INFORMATION
    d_lo = pop.day_in[period] + 1
    d_hi = np.maximum(d_lo, pop.day_out[period] - 1)
    day = d_lo + np.floor(rng.random(v) * (d_hi - d_lo + 1)).astype(np.int64)
    t_reg = _registration_times(rng, day, 9, 17)
    return Victims(
        period=period,
        relation_survivor=survivors[period],
        spoke_in_court=spoke,
        wants_information=wants,
        t_registered=t_reg,
        per_period=count.astype(np.int64),
    )
