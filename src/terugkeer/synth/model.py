"""The population model: one row per detention period, as numpy columns.

Draws, in order: the path of each period (group), its stay, dates and times, offences, the
person (with second releases of the same person in the year), municipalities, institutions,
the five basic conditions and the reconviction outcome. Nothing here writes files; see
:mod:`terugkeer.synth.events` and :mod:`terugkeer.synth.writer`.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from enum import IntEnum

import numpy as np
import numpy.typing as npt

from terugkeer.domain.codes import (
    CaseDecision,
    DetentionTitle,
    InstitutionType,
    OffenceCategory,
    ReleaseKind,
)
from terugkeer.synth import clock
from terugkeer.synth import params as P
from terugkeer.synth.clock import DAY, HOUR, I64
from terugkeer.synth.places import Places

F64 = npt.NDArray[np.float64]
B8 = npt.NDArray[np.bool_]


class Group(IntEnum):
    PT_COURT = 0
    PT_SENTENCE = 1
    SENTENCE = 2
    REPLACEMENT = 3
    JJI_PT = 4
    JJI_DET = 5
    PIJ = 6
    TBS = 7
    INTO_TBS = 8


GROUP_KEYS = (
    "pt_court",
    "pt_sentence",
    "sentence",
    "replacement",
    "jji_pt",
    "jji_det",
    "pij",
    "tbs",
    "into_tbs",
)
ADULT_PI = (Group.PT_COURT, Group.PT_SENTENCE, Group.SENTENCE, Group.REPLACEMENT)
JUVENILE = (Group.JJI_PT, Group.JJI_DET, Group.PIJ)

TITLES = list(DetentionTitle)
T_PRE_TRIAL = TITLES.index(DetentionTitle.PRE_TRIAL)
T_PRISON = TITLES.index(DetentionTitle.PRISON_SENTENCE)
T_JUVENILE = TITLES.index(DetentionTitle.JUVENILE_DETENTION)
T_PIJ = TITLES.index(DetentionTitle.PIJ)
T_TBS = TITLES.index(DetentionTitle.TBS)
T_REPLACEMENT = TITLES.index(DetentionTitle.REPLACEMENT_DETENTION)

RELEASE_KINDS = list(ReleaseKind)
R_END = RELEASE_KINDS.index(ReleaseKind.END_OF_SENTENCE)
R_VI = RELEASE_KINDS.index(ReleaseKind.CONDITIONAL_RELEASE)
R_COURT = RELEASE_KINDS.index(ReleaseKind.COURT_ORDER)
R_INTO_TBS = RELEASE_KINDS.index(ReleaseKind.INTO_TBS)

CATEGORIES = list(OffenceCategory)
C_ZEDEN = CATEGORIES.index(OffenceCategory.ZEDEN)
C_ZWAAR = CATEGORIES.index(OffenceCategory.ZWAAR_GEWELD)
C_OVERIG_GEWELD = CATEGORIES.index(OffenceCategory.OVERIG_GEWELD)

DECISIONS = list(CaseDecision)

# Per-group fixed category mixes for the forensic groups (ASSUMPTION).
_FORENSIC_CATEGORIES: dict[Group, dict[str, float]] = {
    Group.TBS: {"zwaar_geweld": 0.6, "zeden": 0.3, "overig_geweld": 0.1},
    Group.INTO_TBS: {"zwaar_geweld": 0.65, "zeden": 0.3, "overig_geweld": 0.05},
    Group.PIJ: {"zwaar_geweld": 0.55, "zeden": 0.2, "overig_geweld": 0.15, "vermogen": 0.1},
}
# Death periods: which path the stay was on (ASSUMPTION: deaths concentrate in pre-trial).
_DEATH_GROUPS = {Group.PT_COURT: 0.4, Group.PT_SENTENCE: 0.3, Group.SENTENCE: 0.25,
                 Group.REPLACEMENT: 0.05}  # fmt: skip


def sigmoid(x: F64) -> F64:
    out: F64 = 1.0 / (1.0 + np.exp(-np.clip(x, -500.0, 500.0)))
    return out


def bisect(f: Callable[[float], float], target: float, lo: float, hi: float) -> float:
    """The x in [lo, hi] where the increasing function f reaches target."""
    for _ in range(60):
        mid = (lo + hi) / 2
        if f(mid) < target:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


@dataclass
class Population:
    """Columns per period (length n) and per person (length n_persons)."""

    year: int
    n_releases: int
    n: int
    is_death: B8
    group: I64
    # stay
    stay_days: I64  # local calendar days from intake to release/death
    pt_days: I64  # days from intake to the title change (0: no title change)
    sentence: I64  # imposed sentence in days (0: none)
    released_at_trial: B8
    release_kind: I64  # index into RELEASE_KINDS (-1 for deaths)
    title_in: I64
    title_out: I64
    has_tc: B8
    planned_day: I64  # planned release day known at the sentence (-1: none)
    day_in: I64
    day_out: I64
    t_in: I64
    t_out: I64
    t_tc: I64  # -1 if none
    # offences: up to three, primary first
    n_off: I64
    off_cat: I64  # (n, 3)
    off_max: I64  # (n, 3)
    serious: B8  # the notification group: zeden/zwaar_geweld, tbs, pij
    # person
    person: I64  # person index per period
    second_of: I64  # for a second release: the period index of the person's first (else -1)
    next_period: I64  # for a first release: the second one (else -1)
    p_female: B8  # per person
    p_birth_day: I64
    p_risk: F64
    p_has_bsn: B8
    p_residence: I64  # municipality index, -1 none
    p_province: I64  # province index, -1 none
    # per period places
    return_muni: I64  # -1 none
    return_changed_later: B8
    institution: I64  # initial institution index
    # conditions (n, 5) at intake and release
    cond_in: B8
    cond_out: B8
    # outcome
    p_recid: F64
    forced_recid: B8
    recid_draw: B8
    age_at_release: I64
    ref_number: I64  # period reference number (by intake order)

    @property
    def into_society(self) -> B8:
        out: B8 = ~self.is_death & (self.release_kind != R_INTO_TBS)
        return out


def _lognormal(rng: np.random.Generator, median: float, sigma: float, size: int) -> F64:
    out: F64 = median * np.exp(sigma * rng.standard_normal(size))
    return out


def _choice_keys(rng: np.random.Generator, mix: dict[str, float], size: int) -> I64:
    keys = list(mix)
    p = np.array([mix[k] for k in keys], dtype=np.float64)
    picks = rng.choice(len(keys), size=size, p=p / p.sum())
    lookup = np.array([CATEGORIES.index(OffenceCategory(k)) for k in keys], dtype=np.int64)
    out: I64 = lookup[picks]
    return out


def _served(sentence: I64, vi: B8) -> I64:
    cut = np.minimum(sentence // 3, P.VI_MAX_DAYS)
    out: I64 = np.where(vi, sentence - cut, sentence)
    return out


def build_population(
    rng: np.random.Generator,
    pyrng: random.Random,
    places: Places,
    *,
    releases: int,
    year: int,
) -> Population:
    """The population, drawn in the order of the module's docstring (the order of the draws
    is part of the output: the same seed gives the same year)."""
    is_death, group = _draw_groups(rng, releases)
    n = len(group)
    s = _draw_stays(rng, group)
    _end_by_death(rng, s, is_death)
    y0 = clock.day_number(date(year, 1, 1))
    tm = _draw_times(rng, y0, year, group, is_death, s)
    off = _draw_offences(rng, group, is_death, s, releases)
    ps = _draw_persons(rng, pyrng, places, group, is_death, s.stay_days, tm, y0, releases)
    person = ps.person

    # --- ages at release in completed years ---------------------------------------------------
    age_years = completed_years(ps.p_birth_day[person], tm.day_out)

    # --- conditions -------------------------------------------------------------------------
    cond_in, cond_out = _conditions(rng, ps.p_risk[person], s.stay_days, is_death)

    forced = ps.next_period >= 0
    in_society = ~is_death & (s.release_kind != R_INTO_TBS)
    p_recid, recid_draw = _draw_reconvictions(
        rng, group, ps, age_years, cond_out, off.off_cat, forced, in_society
    )

    # period reference numbers in order of intake
    order = np.lexsort((np.arange(n), tm.t_in))
    ref_number = np.empty(n, dtype=np.int64)
    ref_number[order] = np.arange(1, n + 1, dtype=np.int64)

    return Population(
        year=year,
        n_releases=releases,
        n=n,
        is_death=is_death,
        group=group,
        **vars(s),  # the steps' fields are named as the population's
        **vars(tm),
        **vars(off),
        **vars(ps),
        cond_in=cond_in,
        cond_out=cond_out,
        p_recid=p_recid,
        forced_recid=forced,
        recid_draw=recid_draw,
        age_at_release=age_years,
        ref_number=ref_number,
    )


def _draw_groups(rng: np.random.Generator, releases: int) -> tuple[B8, I64]:
    """Which periods end in death (the last ones) and the path of each period."""
    n_death = int(rng.binomial(releases, P.DEATH_RATE)) if releases > 0 else 0
    n = releases + n_death
    is_death = np.zeros(n, dtype=np.bool_)
    is_death[releases:] = True

    shares = np.array([P.GROUP_SHARES[k] for k in GROUP_KEYS], dtype=np.float64)
    group = np.empty(n, dtype=np.int64)
    group[:releases] = rng.choice(len(GROUP_KEYS), size=releases, p=shares / shares.sum())
    dg = np.array([int(g) for g in _DEATH_GROUPS], dtype=np.int64)
    dp = np.array(list(_DEATH_GROUPS.values()), dtype=np.float64)
    group[releases:] = dg[rng.choice(len(dg), size=n_death, p=dp / dp.sum())]
    return is_death, group


@dataclass
class _Stays:
    stay_days: I64
    pt_days: I64
    sentence: I64
    release_kind: I64
    title_in: I64
    title_out: I64
    has_tc: B8
    released_at_trial: B8


def _draw_stays(rng: np.random.Generator, group: I64) -> _Stays:
    """Stay, pre-trial part, sentence, release kind and titles per group."""
    n = len(group)
    stay = np.zeros(n, dtype=np.int64)
    pt = np.zeros(n, dtype=np.int64)
    sentence = np.zeros(n, dtype=np.int64)
    kind = np.full(n, R_END, dtype=np.int64)
    title_in = np.zeros(n, dtype=np.int64)
    title_out = np.zeros(n, dtype=np.int64)
    u = rng.random(n)
    u2 = rng.random(n)

    def ln(median: float, sigma: float) -> F64:
        return _lognormal(rng, median, sigma, n)

    def ceil_i(x: F64) -> I64:
        out: I64 = np.ceil(x).astype(np.int64)
        return out

    g = Group.PT_COURT
    m = group == g
    short = np.clip(ln(*P.PT_COURT_SHORT), 1, 14)
    long_ = np.clip(ln(*P.PT_COURT_LONG), 15, 900)
    stay[m] = ceil_i(np.where(u < P.PT_COURT_SHORT_SHARE, short, long_))[m]
    kind[m] = R_COURT
    title_in[m] = title_out[m] = T_PRE_TRIAL

    vi_ok = rng.random(n) >= P.VI_WITHHELD
    m = group == Group.PT_SENTENCE
    pre = ceil_i(np.clip(ln(*P.PT_SENTENCE_PRETRIAL), 3, 1200))
    extra = np.where(u < P.PT_SENTENCE_TIME_SERVED, 0, ceil_i(ln(*P.PT_SENTENCE_EXTRA)))
    s = np.minimum(pre + extra, P.MAX_SENTENCE_DAYS)
    vi = (s > P.VI_MIN_SENTENCE) & vi_ok
    served = np.maximum(_served(s, vi), pre)
    pt[m], sentence[m], stay[m] = pre[m], s[m], served[m]
    kind[m] = np.where(vi, R_VI, R_END)[m]
    title_in[m], title_out[m] = T_PRE_TRIAL, T_PRISON

    m = group == Group.SENTENCE
    s = ceil_i(np.clip(ln(*P.SENTENCE), 1, P.MAX_SENTENCE_DAYS))
    vi = (s > P.VI_MIN_SENTENCE) & vi_ok
    sentence[m], stay[m] = s[m], _served(s, vi)[m]
    kind[m] = np.where(vi, R_VI, R_END)[m]
    title_in[m] = title_out[m] = T_PRISON

    m = group == Group.REPLACEMENT
    s = ceil_i(np.clip(ln(*P.REPLACEMENT), 1, 365))
    early = (u < P.REPLACEMENT_EARLY_SHARE) & (s >= 2)
    served = np.where(early, np.maximum(1, np.floor(s * (0.1 + 0.8 * u2))).astype(np.int64), s)
    sentence[m], stay[m] = s[m], served[m]
    kind[m] = np.where(early, R_COURT, R_END)[m]
    title_in[m] = title_out[m] = T_REPLACEMENT

    m = group == Group.JJI_PT
    stay[m] = ceil_i(np.clip(ln(*P.JJI_PT), 1, 365))[m]
    kind[m] = R_COURT
    title_in[m] = title_out[m] = T_PRE_TRIAL

    m = group == Group.JJI_DET
    from_pt = u < P.JJI_DET_FROM_PT
    pre = ceil_i(np.clip(ln(*P.JJI_DET_PRETRIAL), 2, 500))
    extra = np.where(u2 < 0.3, 0, ceil_i(ln(*P.JJI_DET_EXTRA)))
    s_pt = np.minimum(pre + extra, P.JJI_DET_MAX)
    s_direct = ceil_i(np.clip(ln(*P.JJI_DET_EXTRA), 1, P.JJI_DET_MAX))
    s = np.where(from_pt, s_pt, s_direct)
    pt[m] = np.where(from_pt, pre, 0)[m]
    sentence[m], stay[m] = s[m], s[m]
    title_in[m] = np.where(from_pt, T_PRE_TRIAL, T_JUVENILE)[m]
    title_out[m] = T_JUVENILE

    m = group == Group.PIJ
    stay[m] = ceil_i(np.clip(ln(P.PIJ_YEARS[0] * 365.25, P.PIJ_YEARS[1]), 365, 7 * 365))[m]
    kind[m] = np.where(u < 0.7, R_VI, R_END)[m]
    title_in[m] = title_out[m] = T_PIJ

    m = group == Group.TBS
    stay[m] = ceil_i(np.clip(ln(P.TBS_YEARS[0] * 365.25, P.TBS_YEARS[1]), 730, 20 * 365))[m]
    kind[m] = np.where(u < 0.5, R_VI, R_COURT)[m]
    title_in[m] = title_out[m] = T_TBS

    m = group == Group.INTO_TBS
    pre = ceil_i(np.clip(ln(*P.INTO_TBS_PRETRIAL), 30, 900))
    s = ceil_i(np.clip(ln(P.INTO_TBS_SENTENCE_YEARS[0] * 365.25, P.INTO_TBS_SENTENCE_YEARS[1]),
                       365, 15 * 365))  # fmt: skip
    served = np.maximum(pre, ceil_i(s * 2 / 3))
    pt[m], sentence[m], stay[m] = pre[m], s[m], served[m]
    kind[m] = R_INTO_TBS
    title_in[m], title_out[m] = T_PRE_TRIAL, T_PRISON

    stay = np.maximum(stay, 1)
    has_tc = pt > 0
    released_at_trial = has_tc & (stay <= pt)
    stay = np.where(has_tc, np.maximum(stay, pt), stay)
    return _Stays(stay, pt, sentence, kind, title_in, title_out, has_tc, released_at_trial)


def _end_by_death(rng: np.random.Generator, s: _Stays, is_death: B8) -> None:
    """Deaths: the period ends somewhere in its planned stay (changes ``s``)."""
    n = len(is_death)
    died_after = np.maximum(1, np.floor(s.stay_days * (0.05 + 0.95 * rng.random(n)))).astype(
        np.int64
    )
    s.stay_days = np.where(is_death, np.minimum(s.stay_days, died_after), s.stay_days)
    s.release_kind = np.where(is_death, -1, s.release_kind)
    no_tc = is_death & s.has_tc & (s.pt_days >= s.stay_days)
    s.has_tc &= ~no_tc
    s.released_at_trial &= ~is_death
    s.title_out = np.where(no_tc, s.title_in, s.title_out)
    s.pt_days = np.where(s.has_tc, s.pt_days, 0)


@dataclass
class _Times:
    day_in: I64
    day_out: I64
    t_in: I64
    t_out: I64
    t_tc: I64
    planned_day: I64  # planned release day as known once sentenced (-1: none)


def _draw_times(
    rng: np.random.Generator, y0: int, year: int, group: I64, is_death: B8, s: _Stays
) -> _Times:
    """Release days (fewer on weekends), intake days, moments of intake, judgment and release,
    and the planned release day."""
    n = len(group)
    stay, pt, kind, sentence, has_tc = s.stay_days, s.pt_days, s.release_kind, s.sentence, s.has_tc
    y1 = clock.day_number(date(year + 1, 1, 1))
    days = np.arange(y0, y1, dtype=np.int64)
    weekday = (days + 3) % 7  # 1970-01-01 was a Thursday (weekday 3, Monday = 0)
    weekend = weekday >= 5
    w_planned = np.where(weekend, 0.35, 1.0)
    w_court = np.where(weekend, 0.8, 1.0)
    court = (kind == R_COURT) | is_death
    day_out = np.where(
        court,
        days[rng.choice(len(days), size=n, p=w_court / w_court.sum())],
        days[rng.choice(len(days), size=n, p=w_planned / w_planned.sum())],
    )
    day_in = day_out - stay

    def tod(lo_h: float, hi_h: float) -> I64:
        out: I64 = (lo_h * HOUR + rng.random(n) * (hi_h - lo_h) * HOUR).astype(np.int64)
        return out

    pretrial_in = s.title_in == T_PRE_TRIAL
    forensic = np.isin(group, [Group.TBS, Group.PIJ])
    s_in = np.where(pretrial_in, tod(10, 19), np.where(forensic, tod(10, 16), tod(8, 21)))
    s_in = np.where(np.isin(group, JUVENILE) & ~forensic, tod(10, 18), s_in)
    t_in = clock.local_to_utc(day_in, s_in)
    s_out = np.where(court, tod(10, 20), tod(8.5, 12))
    s_out = np.where(is_death, tod(5, 23.5), s_out)
    t_out = clock.local_to_utc(day_out, s_out)

    tc_day = day_in + pt
    t_tc = np.where(has_tc, clock.local_to_utc(tc_day, tod(10, 17)), -1)
    # released at trial: the release follows the judgment by one to four hours
    t_tc = np.where(s.released_at_trial, clock.local_to_utc(tc_day, tod(11, 16)), t_tc)
    t_out = np.where(s.released_at_trial, t_tc + tod(1, 4), t_out)
    # a death on the day of the trial comes after it
    t_out = np.where(has_tc & (t_tc >= t_out), t_tc + tod(1, 4), t_out)

    # planned release day as known once sentenced
    planned = np.full(n, -1, dtype=np.int64)
    sentenced = np.isin(group, [Group.PT_SENTENCE, Group.SENTENCE, Group.REPLACEMENT,
                                Group.JJI_DET, Group.INTO_TBS])  # fmt: skip
    planned = np.where(sentenced, day_out, planned)
    early_repl = (group == Group.REPLACEMENT) & (kind == R_COURT)
    planned = np.where(early_repl, day_in + sentence, planned)
    planned = np.where(is_death & sentenced, day_in + np.maximum(sentence, stay + 1), planned)
    planned = np.where(is_death & (group == Group.PT_SENTENCE) & ~has_tc, -1, planned)
    return _Times(day_in, day_out, t_in, t_out, t_tc, planned)


@dataclass
class _Offences:
    n_off: I64
    off_cat: I64
    off_max: I64
    serious: B8


def _draw_offences(
    rng: np.random.Generator, group: I64, is_death: B8, s: _Stays, releases: int
) -> _Offences:
    """Up to three offences per period with their statutory maximum; the serious share is
    calibrated to the target number per 35,000 releases."""
    n = len(group)
    stay, kind, title_in = s.stay_days, s.release_kind, s.title_in
    off_cat = np.zeros((n, 3), dtype=np.int64)
    off_max = np.zeros((n, 3), dtype=np.int64)
    primary = _choice_keys(rng, P.OTHER_CATEGORIES, n)
    primary = np.where(
        group == Group.REPLACEMENT, _choice_keys(rng, P.REPLACEMENT_CATEGORIES, n), primary
    )
    for g_, mix in _FORENSIC_CATEGORIES.items():
        primary = np.where(group == g_, _choice_keys(rng, mix, n), primary)
    eligible = ~np.isin(group, [Group.REPLACEMENT, Group.TBS, Group.INTO_TBS, Group.PIJ])
    log_stay = np.log(stay.astype(np.float64))
    in_society = ~is_death & (kind != R_INTO_TBS)
    fixed = int(np.sum(in_society & np.isin(group, [Group.TBS, Group.PIJ])))
    target = P.SERIOUS_PER_35000 * releases / 35_000 - fixed
    cal = eligible & in_society
    slope = P.SERIOUS_STAY_SLOPE
    c0 = bisect(lambda c: float(sigmoid(c + slope * log_stay[cal]).sum()), target, -40, 20)
    serious_draw = eligible & (rng.random(n) < sigmoid(c0 + slope * log_stay))
    serious_cat = np.where(rng.random(n) < P.ZEDEN_SHARE_OF_SERIOUS, C_ZEDEN, C_ZWAAR)
    primary = np.where(serious_draw, serious_cat, primary)
    off_cat[:, 0] = primary
    n_extra = np.minimum(rng.poisson(P.EXTRA_OFFENCES_MEAN, n), 2)
    off_cat[:, 1] = _choice_keys(rng, P.OTHER_CATEGORIES, n)
    off_cat[:, 2] = _choice_keys(rng, P.OTHER_CATEGORIES, n)
    n_off = 1 + n_extra
    needs_four = title_in == T_PRE_TRIAL  # pre-trial detention needs a 4-year offence
    for c_idx, cat in enumerate(CATEGORIES):
        table = P.STATUTORY_MAX[cat.value]
        vals = np.array([v for v, _ in table], dtype=np.int64)
        w = np.array([x for _, x in table], dtype=np.float64)
        high = vals >= 4
        for col in range(3):
            mask = off_cat[:, col] == c_idx
            k = int(mask.sum())
            if not k:
                continue
            draw = vals[rng.choice(len(vals), size=k, p=w / w.sum())]
            if col == 0 and high.any():
                wh = np.where(high, w, 0.0)
                draw_hi = vals[rng.choice(len(vals), size=k, p=wh / wh.sum())]
                draw = np.where(needs_four[mask], draw_hi, draw)
            off_max[mask, col] = draw
    off_max[:, 0] = np.where(needs_four, np.maximum(off_max[:, 0], 4), off_max[:, 0])
    serious = np.isin(off_cat[:, 0], [C_ZEDEN, C_ZWAAR]) | np.isin(group, [Group.TBS, Group.PIJ])
    return _Offences(n_off, off_cat, off_max, serious)


@dataclass
class _Persons:
    person: I64  # person index per period
    second_of: I64
    next_period: I64
    p_female: B8
    p_birth_day: I64
    p_risk: F64
    p_has_bsn: B8
    p_residence: I64
    p_province: I64
    return_muni: I64
    return_changed_later: B8
    institution: I64


def _draw_persons(
    rng: np.random.Generator,
    pyrng: random.Random,
    places: Places,
    group: I64,
    is_death: B8,
    stay: I64,
    tm: _Times,
    y0: int,
    releases: int,
) -> _Persons:
    """One person per period first; second releases then share the first's person. Then the
    persons' municipalities, the periods' return municipalities and first institutions."""
    n = len(group)
    risk = rng.standard_normal(n)
    female = rng.random(n) < P.FEMALE_SHARE
    age = _ages(rng, group, n)
    juvenile = np.isin(group, JUVENILE)
    age = np.where(
        juvenile,
        np.minimum(np.maximum(age, 14.05 + stay / 365.25), 22.95),
        np.maximum(age, 18.05 + stay / 365.25),
    )
    has_bsn = rng.random(n) >= P.NO_BSN_SHARE
    second_of = _pair_second_releases(
        rng, pyrng, group, is_death, risk, tm.t_in, tm.t_out, y0, releases
    )
    person_of = np.arange(n, dtype=np.int64)
    is_second = second_of >= 0
    person_of[is_second] = second_of[is_second]
    next_period = np.full(n, -1, dtype=np.int64)
    next_period[second_of[is_second]] = np.nonzero(is_second)[0]
    reps = np.nonzero(~is_second)[0]
    person_index = np.full(n, -1, dtype=np.int64)
    person_index[reps] = np.arange(len(reps), dtype=np.int64)
    person = person_index[person_of]

    birth = tm.day_out - np.floor(age * 365.25).astype(np.int64) - rng.integers(0, 2, n)
    p_birth = birth[reps]
    p_female = female[reps]
    p_risk = risk[reps]
    p_has_bsn = has_bsn[reps]
    n_persons = len(reps)
    known = rng.random(n_persons) >= P.NO_MUNICIPALITY_SHARE
    n_muni = len(places.municipality_codes)
    p_res = rng.choice(n_muni, size=n_persons, p=places.municipality_weights)
    p_res = np.where(known, p_res, -1)
    p_prov = np.where(known, places.municipality_province[np.maximum(p_res, 0)], -1)

    res = p_res[person]
    other = rng.choice(n_muni, size=n, p=places.municipality_weights)
    return_muni = np.where(rng.random(n) < P.OTHER_RETURN_SHARE, other, res)
    return_muni = np.where(res >= 0, return_muni, -1)
    changed_later = (return_muni >= 0) & (rng.random(n) < P.RETURN_CHANGED_LATER)
    changed_later &= return_muni != res
    changed_later |= (return_muni >= 0) & (return_muni != res) & (rng.random(n) < 0.5)

    institution = _institutions(rng, places, group, p_prov[person])
    return _Persons(person, second_of, next_period, p_female, p_birth, p_risk, p_has_bsn,
                    p_res, p_prov, return_muni, changed_later, institution)  # fmt: skip


def _draw_reconvictions(
    rng: np.random.Generator,
    group: I64,
    ps: _Persons,
    age_years: I64,
    cond_out: B8,
    off_cat: I64,
    forced: B8,
    in_society: B8,
) -> tuple[F64, B8]:
    """The reconviction propensity per period (calibrated to the two-year share) and the draw;
    a first release followed by a second one (``forced``) is reconvicted."""
    n = len(group)
    person = ps.person
    ok = cond_out.sum(axis=1)
    logit = (
        P.RISK_EFFECT * ps.p_risk[person]
        + P.AGE_EFFECT * (age_years - 30) / 10
        + P.FEMALE_EFFECT * ps.p_female[person]
        + P.CONDITION_EFFECT * (ok - ok.mean())
        + P.DEBTS_EFFECT * ~cond_out[:, 3]
        + P.ZEDEN_EFFECT * (off_cat[:, 0] == C_ZEDEN)
    )
    for key, eff in P.GROUP_EFFECT.items():
        logit = logit + eff * (group == GROUP_KEYS.index(key))
    soc = in_society
    free = soc & ~forced
    n_soc = max(1, int(soc.sum()))
    n_forced = int((soc & forced).sum())

    def share(a: float) -> float:
        return (float(sigmoid(a + logit[free]).sum()) + n_forced) / n_soc

    alpha = bisect(share, P.RECIDIVISM_2Y, -20, 20)
    p_recid = np.where(soc, sigmoid(alpha + logit), 0.0)
    recid_draw = soc & (forced | (rng.random(n) < p_recid))
    return p_recid, recid_draw


def _ages(rng: np.random.Generator, group: I64, n: int) -> F64:
    def banded(bands: tuple[tuple[int, int, float], ...]) -> F64:
        w = np.array([b[2] for b in bands], dtype=np.float64)
        pick = rng.choice(len(bands), size=n, p=w / w.sum())
        lo = np.array([b[0] for b in bands], dtype=np.float64)[pick]
        hi = np.array([b[1] for b in bands], dtype=np.float64)[pick]
        out: F64 = lo + rng.random(n) * (hi - lo)
        return out

    adult = banded(P.ADULT_AGE_BANDS)
    juvenile = banded(P.JUVENILE_AGE_BANDS)
    out: F64 = np.where(np.isin(group, JUVENILE), juvenile, adult)
    return out


def completed_years(birth: I64, day: I64) -> I64:
    b = birth.astype("datetime64[D]")
    d = day.astype("datetime64[D]")
    by = b.astype("datetime64[Y]").astype(np.int64)
    dy = d.astype("datetime64[Y]").astype(np.int64)
    bm = b.astype("datetime64[M]").astype(np.int64) - by * 12
    dm = d.astype("datetime64[M]").astype(np.int64) - dy * 12
    bd = (b - b.astype("datetime64[M]").astype("datetime64[D]")).astype(np.int64)
    dd = (d - d.astype("datetime64[M]").astype("datetime64[D]")).astype(np.int64)
    before = (dm < bm) | ((dm == bm) & (dd < bd))
    out: I64 = (dy - by - before).astype(np.int64)
    return out


def _pair_second_releases(
    rng: np.random.Generator,
    pyrng: random.Random,
    group: I64,
    is_death: B8,
    risk: F64,
    t_in: I64,
    t_out: I64,
    year_start_day: int,
    releases: int,
) -> I64:
    """Pick periods that are the same person's second release this year.

    A second period (B) is a new pre-trial or sentenced stay whose intake comes at least a week
    after the release of the person's first period (A) this year; A's person is re-used for B
    and A is reconvicted in between (see :mod:`terugkeer.synth.outcomes`). A's are drawn from
    the higher-risk half, so repeat releases are of higher-risk persons.
    """
    n = len(group)
    second_of = np.full(n, -1, dtype=np.int64)
    target = round(P.SECOND_RELEASE_SHARE * releases)
    if target == 0:
        return second_of
    b_ok = (
        ~is_death
        & np.isin(group, [Group.PT_COURT, Group.PT_SENTENCE, Group.SENTENCE])
        & (t_in >= (year_start_day + 21) * DAY)
    )
    b_cand = rng.permutation(np.nonzero(b_ok)[0])[: int(target * 1.5)]
    is_b = np.zeros(n, dtype=np.bool_)
    is_b[b_cand] = True
    a_ok = ~is_death & np.isin(group, ADULT_PI) & ~is_b & (risk > 0)
    a_cand = np.nonzero(a_ok)[0]
    a_sorted = a_cand[np.argsort(t_out[a_cand], kind="stable")].tolist()
    a_release = t_out[a_sorted].tolist() if a_sorted else []
    b_sorted = b_cand[np.argsort(t_in[b_cand], kind="stable")].tolist()
    b_intake = t_in[b_sorted].tolist() if b_sorted else []
    available: list[int] = []
    ptr = 0
    made = 0
    week = 7 * DAY
    for b, tb in zip(b_sorted, b_intake, strict=True):
        limit = tb - week
        while ptr < len(a_sorted) and a_release[ptr] <= limit:
            available.append(a_sorted[ptr])
            ptr += 1
        if not available:
            continue
        j = int(pyrng.random() * len(available))
        a = available[j]
        available[j] = available[-1]
        available.pop()
        second_of[b] = a
        made += 1
        if made == target:
            break
    return second_of


def _institutions(rng: np.random.Generator, places: Places, group: I64, province: I64) -> I64:
    n = len(group)
    itype = np.where(np.isin(group, JUVENILE), 1, np.where(group == Group.TBS, 2, 0))
    types = (InstitutionType.PI, InstitutionType.JJI, InstitutionType.TBS)
    out = np.zeros(n, dtype=np.int64)
    local = rng.random(n) < P.SAME_PROVINCE_INSTITUTION
    pick = rng.integers(0, 1 << 30, n)
    for ti, t in enumerate(types):
        everywhere = places.by_type[t]
        mask = itype == ti
        out[mask] = everywhere[pick[mask] % len(everywhere)]
        for pi in range(len(places.provinces)):
            near = places.by_type_province.get((t, pi))
            if near is None:
                continue
            m = mask & local & (province == pi)
            out[m] = near[pick[m] % len(near)]
    return out


def _conditions(rng: np.random.Generator, risk: F64, stay: I64, is_death: B8) -> tuple[B8, B8]:
    """Each condition: in order at intake when a - loading * risk + logistic noise > 0; at
    release the same latent value plus a shift, a stay effect and noise. The intercept and the
    shift are calibrated on the drawn sample to the DF shares (release shares over releases)."""
    n = len(risk)
    k = len(P.CONDITIONS)
    cond_in = np.zeros((n, k), dtype=np.bool_)
    cond_out = np.zeros((n, k), dtype=np.bool_)
    log_stay = np.log(np.maximum(stay, 1) / 30.0)
    alive = ~is_death
    for j, c in enumerate(P.CONDITIONS):
        uu = np.clip(rng.random(n), 1e-12, 1 - 1e-12)
        noise = np.log(uu / (1 - uu))
        base = -P.CONDITION_RISK_LOADING[c] * risk + noise
        t_in = P.CONDITION_AT_INTAKE[c]
        a = bisect(_share_above(base), t_in, -30, 30)
        latent = a + base
        cond_in[:, j] = latent > 0
        noise_out = P.CONDITION_RELEASE_NOISE * rng.standard_normal(n)
        drift = P.CONDITION_STAY_EFFECT[c] * log_stay + noise_out
        rel = latent + drift
        t_out = P.CONDITION_AT_RELEASE[c]
        d = bisect(_share_above(rel[alive]), t_out, -30, 30) if alive.any() else 0.0
        cond_out[:, j] = rel + d > 0
    return cond_in, cond_out


def _share_above(values: F64) -> Callable[[float], float]:
    """x -> the share of ``values + x`` above zero (increasing in x)."""

    def f(x: float) -> float:
        return float(np.mean(values + x > 0))

    return f
