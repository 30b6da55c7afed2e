"""Every number the generator draws from, with its source.

"DF" means ``/work/shared/brief/domain-facts.md`` (the project's fact sheet), followed by the
source it quotes. "ASSUMPTION" marks values for which no public figure was at hand; they were
chosen to be plausible and to make the aggregate figures (the ones with a source) come out
right. ``docs/synth.md`` lists the aggregate figures and the tolerances the tests hold them to.
"""

from __future__ import annotations

from typing import Final

# --- volume -----------------------------------------------------------------------------------
# DF: adults leaving detention per year 32,000-38,000, about 35,000 (SEOR 2016; RSJ 2017).
DEFAULT_RELEASES: Final = 35_000
# ASSUMPTION: deaths in custody per release (about 45 a year at 35,000: suicides and natural
# deaths in Dutch institutions are a few dozen a year). Deaths end a period instead of a release
# and come on top of ``releases``.
DEATH_RATE: Final = 0.0013

# --- groups: the path a period takes ----------------------------------------------------------
# Index = group id (see generator.Group). Shares of all releases.
# DF: JJI leavers 1,000-1,800 a year at 35,000 (SEOR 2016) -> 4.5 % (about 1,575), of whom
#   about three quarters with a juvenile title (juvenile_detention or pij).
# ASSUMPTION (tuned): the adult split below, chosen so that with the stay distributions the
#   flow reproduces DF's "about 20,000 of 35,000 after more than 2 weeks" (SEOR/Monitor
#   Nazorg), "2.8 months actually served on average" (SPACE I 2016) and "44 % pre-trial among
#   the detained on a given day" (CBS via NOS 2019).
# ASSUMPTION: tbs releases (end of tbs) about 0.6 % (about 200 a year, roughly the outflow of a
#   population of 1,300-1,500 patients with stays of 6-8 years); into-tbs about 0.4 %.
GROUP_SHARES: Final[dict[str, float]] = {
    "pt_court": 0.360,  # pre-trial, released by order of the court or OM while still pre-trial
    "pt_sentence": 0.240,  # pre-trial, sentenced at trial, released at the end or on v.i.
    "sentence": 0.146,  # prison sentence from the start (self-report, arrest on warrant)
    "replacement": 0.199,  # vervangende hechtenis: unpaid fines and orders
    "jji_pt": 0.0120,  # juvenile, pre-trial in a JJI
    "jji_det": 0.0285,  # juvenile detention (after pre-trial or directly)
    "pij": 0.0045,  # PIJ measure
    "tbs": 0.0060,  # end of tbs in a forensic psychiatric centre
    "into_tbs": 0.0040,  # prison sentence ends, person moves on to tbs (not into society)
}

# --- stays (days) -----------------------------------------------------------------------------
# ASSUMPTION (tuned to the DF aggregates above): lognormal (median, sigma) per part of a stay.
PT_COURT_SHORT_SHARE: Final = 0.52  # released when the 14-day inbewaringstelling ends or earlier
PT_COURT_SHORT: Final = (5.0, 0.7)
PT_COURT_LONG: Final = (40.0, 0.90)
PT_SENTENCE_PRETRIAL: Final = (60.0, 0.90)
PT_SENTENCE_TIME_SERVED: Final = 0.35  # sentence equals the pre-trial time: released at trial
PT_SENTENCE_EXTRA: Final = (90.0, 1.40)  # sentence beyond the pre-trial part
SENTENCE: Final = (14.0, 1.60)
REPLACEMENT: Final = (7.0, 0.80)
REPLACEMENT_EARLY_SHARE: Final = 0.12  # fine paid during the stay: released early by the OM
JJI_PT: Final = (28.0, 0.80)
JJI_DET_FROM_PT: Final = 0.75
JJI_DET_PRETRIAL: Final = (45.0, 0.70)
JJI_DET_EXTRA: Final = (60.0, 0.80)
JJI_DET_MAX: Final = 730  # juvenile detention: at most 2 years for 16-17-year-olds
PIJ_YEARS: Final = (3.0, 0.30)
TBS_YEARS: Final = (6.5, 0.35)
INTO_TBS_PRETRIAL: Final = (200.0, 0.50)
INTO_TBS_SENTENCE_YEARS: Final = (4.0, 0.50)

# The longest fixed-term prison sentence in Dutch law is 30 years (art. 10 Sr); life sentences
# are left out (they end in release only after a pardon or review, a handful of cases).
MAX_SENTENCE_DAYS: Final = 30 * 365
# Conditional release (v.i.). DF: "Conditional release (v.i.) ends detention under conditions".
# Rule used (simplified Wet straffen en beschermen, 2021): sentences over one year are released
# on v.i. after serving the sentence minus a third, the v.i. period capped at two years.
# ASSUMPTION: v.i. withheld or deferred for 10 %.
VI_MIN_SENTENCE: Final = 365
VI_MAX_DAYS: Final = 730
VI_WITHHELD: Final = 0.10
# Share of sentenced periods whose planned release date changes later (ASSUMPTION), and the
# share of those changes passed on in the last week (DF: IDV late notices "mostly release dates
# passed on late by prisons").
RELEASE_DATE_CHANGE: Final = 0.12
RELEASE_DATE_LATE_CHANGE: Final = 0.20
PLANNED_DATE_IN_INTAKE: Final = 0.30  # else a release_date_set event follows the intake

# --- persons ----------------------------------------------------------------------------------
# DF: 95 % male (CBS via NOS 2019).
FEMALE_SHARE: Final = 0.05
# DF: 15 % aged 18-25 (CBS via NOS 2019). Age bands at release for adults [lo, hi) and
# weights; ASSUMPTION for the other bands (a mean age in the late thirties).
ADULT_AGE_BANDS: Final = ((18, 26, 0.135), (26, 36, 0.31), (36, 46, 0.25), (46, 56, 0.19),
                          (56, 66, 0.085), (66, 80, 0.03))  # fmt: skip
# DF: juveniles 16-23 in JJIs (SEOR 2016). ASSUMPTION: 60 % aged 16-17 at release.
JUVENILE_AGE_BANDS: Final = ((16, 18, 0.60), (18, 23, 0.40))
# DF: "about 5 % without a BSN" is the brief's figure (foreign nationals, unknown identity).
NO_BSN_SHARE: Final = 0.05
# Brief: 3-5 % without a known municipality.
NO_MUNICIPALITY_SHARE: Final = 0.04
# ASSUMPTION: the return municipality differs from the residence for 10 %; for 5 % of periods
# the return municipality is only set (changed) during the stay.
OTHER_RETURN_SHARE: Final = 0.10
RETURN_CHANGED_LATER: Final = 0.05
# ASSUMPTION: share of releases that are a person's second release in the same year (short-stay
# repeat offenders); the person is reconvicted between the two.
SECOND_RELEASE_SHARE: Final = 0.08
# ASSUMPTION: in a series of consecutive years (synth.series), the share of a year's persons who
# are people of earlier years coming back (about a third of releases are back in detention
# within two years, SEOR 2016, so in a steady state roughly this share of a year's releases
# were released before). Matched by sex, BSN or not, and birth day (within RETURN_BIRTH_DAYS,
# the nearest of at most RETURN_SEARCH candidates), taken in at least RETURN_GAP_DAYS after
# their last release.
RETURNING_SHARE: Final = 0.30
RETURN_BIRTH_DAYS: Final = 31
RETURN_SEARCH: Final = 200
RETURN_GAP_DAYS: Final = 7
# ASSUMPTION: probability of an institution in the person's province of residence.
SAME_PROVINCE_INSTITUTION: Final = 0.75

# --- offences ---------------------------------------------------------------------------------
# DF: about 1,500 serious violent and sex offenders return each year (VNG 2014), and mayors
# hear about serious violent/sex offenders, tbs and PIJ (Justid). The generator calibrates the
# chance of a serious offence (rising with the length of the stay) so that releases into
# society with a zeden/zwaar_geweld offence, or from tbs or pij, number SERIOUS_PER_35000.
SERIOUS_PER_35000: Final = 1_500
SERIOUS_STAY_SLOPE: Final = 1.3  # logit per unit of ln(stay days), ASSUMPTION
ZEDEN_SHARE_OF_SERIOUS: Final = 0.30  # ASSUMPTION
# ASSUMPTION: categories of the other offences, and of fines (replacement detention).
OTHER_CATEGORIES: Final = {
    "vermogen": 0.38,
    "overig_geweld": 0.22,
    "opiumwet": 0.17,
    "overig": 0.23,
}
REPLACEMENT_CATEGORIES: Final = {"vermogen": 0.35, "overig": 0.45, "opiumwet": 0.10,
                                 "overig_geweld": 0.10}  # fmt: skip
# Statutory maxima (years) per category, with weights; ASSUMPTION, after typical articles of the
# Wetboek van Strafrecht/Opiumwet (theft 4, burglary 6, assault 3, threats 2, rape 12, ...).
STATUTORY_MAX: Final[dict[str, tuple[tuple[int, float], ...]]] = {
    "zeden": ((4, 0.2), (6, 0.3), (8, 0.2), (12, 0.3)),
    "zwaar_geweld": ((6, 0.2), (8, 0.3), (12, 0.3), (15, 0.2)),
    "overig_geweld": ((2, 0.35), (3, 0.4), (4, 0.25)),
    "vermogen": ((4, 0.6), (6, 0.3), (12, 0.1)),
    "opiumwet": ((1, 0.2), (4, 0.3), (6, 0.2), (8, 0.2), (12, 0.1)),
    "overig": ((0, 0.2), (1, 0.2), (2, 0.2), (3, 0.2), (4, 0.2)),
}
EXTRA_OFFENCES_MEAN: Final = 0.4  # Poisson, capped at 2 extra (ASSUMPTION)

# --- during the stay --------------------------------------------------------------------------
# DF: about 500 leave notices a year to mayors (Justid 2020) for the serious group; leave is
# also granted to others on longer stays. ASSUMPTION: Poisson means per period, tuned to the 500.
LEAVES_TBS: Final = 0.6
LEAVES_PIJ: Final = 0.5
LEAVES_LONG_SENTENCE: Final = 0.25  # served >= 180 days
LEAVES_VERY_LONG_SENTENCE: Final = 0.5  # served >= 365 days
LEAVES_JUVENILE: Final = 0.4  # juvenile detention served >= 90 days
MAX_LEAVES: Final = 8
DAY_LEAVE_SHARE: Final = 0.6  # else leave over 1-3 nights
# ASSUMPTION: escapes are rare; every escape is followed by a recapture before release.
ESCAPE_FROM_CUSTODY: Final = 0.0008  # per period with a stay of 7 days or more
NON_RETURN_FROM_LEAVE: Final = 0.03  # per period with leave: the last leave ends in an escape
# ASSUMPTION: transfers between institutions of the same type.
TRANSFER_OVER_30_DAYS: Final = 0.30
TRANSFER_OVER_180_DAYS: Final = 0.60
SECOND_TRANSFER_OVER_365_DAYS: Final = 0.25

# --- the five basic conditions (share in order) -----------------------------------------------
# DF: Monitor Nazorg measurements 1-3 (Kamerstuk 29270-74), 6 and 7.
#   id: 84-86 % before and at release; measurement 6: 14 % no valid ID at release -> 86 %.
#   housing: 81-85 % before; measurement 6: 22 % not registered at an address -> 78 %.
#   income: 71-77 % before, 58-62 % at release; measurement 6: "a third without income" -> 2/3.
#   debts: 71-73 % had debts before; measurement 7: over 60 % problem debts -> 40 % in order.
#   care: 28-30 % in care before. ASSUMPTION: care need about 45 %, so "in order" (no need, or
#   need met) about 80 % at intake and 75 % at release (continuity breaks at release).
CONDITIONS: Final = ("id", "housing", "income", "debts", "care")
CONDITION_AT_INTAKE: Final = {
    "id": 0.85,
    "housing": 0.84,
    "income": 0.74,
    "debts": 0.33,
    "care": 0.80,
}
CONDITION_AT_RELEASE: Final = {"id": 0.86, "housing": 0.78, "income": 0.667, "debts": 0.40,
                               "care": 0.75}  # fmt: skip
# ASSUMPTION: loading of each condition on the latent risk (logit scale) and the effect of a long
# stay (per unit of ln(stay/30 days)) on keeping it at release.
CONDITION_RISK_LOADING: Final = {
    "id": 0.7,
    "housing": 0.9,
    "income": 0.8,
    "debts": 0.3,
    "care": 0.7,
}
CONDITION_STAY_EFFECT: Final = {"id": 0.15, "housing": -0.35, "income": -0.45, "debts": 0.1,
                                "care": -0.1}  # fmt: skip
CONDITION_RELEASE_NOISE: Final = 0.9

# --- recidivism -------------------------------------------------------------------------------
# DF: 47.3 % of adults released from prison reconvicted within 2 years (2010 cohort, WODC
# Recidivemonitor), counting decisions other than acquittal and technical dismissal, dated at
# the offence date. The intercept is calibrated so the expected share is this target.
RECIDIVISM_2Y: Final = 0.473
# ASSUMPTION: logit effects.
RISK_EFFECT: Final = 0.9  # per standard deviation of latent risk
AGE_EFFECT: Final = -0.25  # per 10 years older than 30
FEMALE_EFFECT: Final = -0.4
CONDITION_EFFECT: Final = -0.12  # per condition in order at release
DEBTS_EFFECT: Final = 0.1  # problem debts; DF measurement 7: 12 % higher recidivism risk
GROUP_EFFECT: Final = {"replacement": 0.2, "jji_pt": 0.4, "jji_det": 0.4, "pij": 0.2, "tbs": -1.5}
ZEDEN_EFFECT: Final = -1.0
# Of those not reconvicted within 2 years, the share reconvicted in year 3 (ASSUMPTION; the
# Recidivemonitor's curves flatten after two years).
YEAR_3_SHARE: Final = 0.12
# Further cases after the first: Poisson mean (times exp(0.4 * risk)), ASSUMPTION.
FURTHER_CASES: Final = 1.3
# Cases ending in acquittal or technical dismissal (not recidivism): Poisson mean, ASSUMPTION.
NON_COUNTING_CASES: Final = 0.25
# Decisions of counting cases (ASSUMPTION, after the mix in WODC recidivism reports).
COUNTING_DECISIONS: Final = {"conviction": 0.78, "settlement": 0.14, "policy_dismissal": 0.08}
NON_COUNTING_DECISIONS: Final = {"acquittal": 0.35, "technical_dismissal": 0.65}
# Chance that a conviction is custodial, by category. DF: about a third of releases are back in
# detention within 2 years (SEOR 2016); these values are tuned to that.
CUSTODIAL: Final = {
    "zeden": 0.9,
    "zwaar_geweld": 0.9,
    "overig_geweld": 0.6,
    "vermogen": 0.7,
    "opiumwet": 0.6,
    "overig": 0.45,
}  # fmt: skip
# Category of a new case: ASSUMPTION; the original category recurs with this extra weight.
RECONVICTION_CATEGORIES: Final = {"vermogen": 0.36, "overig": 0.22, "overig_geweld": 0.2,
                                  "opiumwet": 0.14, "zwaar_geweld": 0.06, "zeden": 0.02}  # fmt: skip
SAME_CATEGORY: Final = 0.3
# DF: a follow-up needs about 2.5 years for a 2-year figure to be complete (registration lag).
# Registration lags the offence by a lognormal (median days, sigma), ASSUMPTION: weeks to months.
REGISTRATION_LAG: Final = (45.0, 0.8)
FOLLOW_UP_DAYS: Final = 3 * 365

# --- victims (IDV) ----------------------------------------------------------------------------
# DF: IDV sends 3,385-5,226 notices a year (OM via nu.nl) about leave, escape and release, to
# victims and surviving relatives who want them; criteria: sentence of 8 years or more, tbs, or
# the victim spoke in court. ASSUMPTION: registrations per case, tuned so notices come to a few
# thousand a year.
VICTIM_CASE_SERIOUS: Final = 0.55  # zeden / zwaar_geweld / tbs / pij
VICTIM_CASE_OTHER_VIOLENCE: Final = 0.08  # overig_geweld
EXTRA_VICTIMS_MEAN: Final = 0.8  # Poisson; at least one per case
SURVIVING_RELATIVES: Final = 0.15  # of zwaar_geweld cases: homicide, relatives register
WANTS_INFORMATION: Final = 0.85
SPOKE_IN_COURT: Final = 0.30  # of victims in cases tried (not for pre-trial-only periods)
