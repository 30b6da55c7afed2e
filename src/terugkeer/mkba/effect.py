"""Effect measures and their conversion to the model's one effect: a hazard ratio on the
monthly chance of a new criminal case (docs/mkba.md, "Het effect").

``p0`` is the chance of reconviction within two years without the programme (the population's
``reconviction_2y``); ``p1`` that chance with it. With a constant monthly hazard ``h`` the
two-year chance is ``1 − (1 − h)^24``, and a hazard ratio ``HR`` turns the monthly survival
``1 − h`` into ``(1 − h)^HR``, so ``p1 = 1 − (1 − p0)^HR`` and ``HR = ln(1 − p1) / ln(1 − p0)``.

* ``hazard_ratio``: used as it is (e.g. a Cox model's adjusted HR, such as the monitor's HR for
  conditions in order: an association, not a proven effect, and labelled so).
* ``relative_risk``: on the two-year chance, ``p1 = RR · p0`` (at most just below 1).
* ``odds_ratio``: ``p1 = OR · p0 / (1 − p0 + OR · p0)``.
* ``smd`` (a standardised mean difference, Cohen's d): converted to a log odds ratio after
  Chinn (2000), ``ln OR = −d · π / √3``; **a positive d means less reconviction** (the
  direction meta-analyses of programmes report), a negative d more.

Every measure below 1 (or d above 0) means less reconviction; 1 (d = 0) means no effect.
"""

from __future__ import annotations

import math

import numpy as np

from terugkeer.mkba.discount import F64
from terugkeer.mkba.errors import MkbaError

MEASURES = ("hazard_ratio", "relative_risk", "odds_ratio", "smd")
LABELS = {
    "hazard_ratio": "hazard ratio",
    "relative_risk": "relatief risico",
    "odds_ratio": "odds ratio",
    "smd": "gestandaardiseerde effectgrootte (d)",
}
NO_EFFECT = {"hazard_ratio": 1.0, "relative_risk": 1.0, "odds_ratio": 1.0, "smd": 0.0}
CHINN = math.pi / math.sqrt(3)
_TOP = 1 - 1e-12


def check_measure(measure: str) -> str:
    if measure not in MEASURES:
        raise MkbaError(f"effect measure must be one of {', '.join(MEASURES)}, not [{measure}]")
    return measure


def p1_from_hr(hr: F64, p0: F64) -> F64:
    out: F64 = 1 - np.power(1 - p0, hr)
    return out


def to_p1(measure: str, value: F64, p0: F64) -> F64:
    """The two-year chance of reconviction with the programme."""
    check_measure(measure)
    if measure == "hazard_ratio":
        return p1_from_hr(value, p0)
    if measure == "relative_risk":
        p1 = value * p0
    else:
        odds_ratio = np.exp(-value * CHINN) if measure == "smd" else value
        p1 = odds_ratio * p0 / (1 - p0 + odds_ratio * p0)
    out: F64 = np.clip(p1, 0.0, _TOP)
    return out


def to_hazard_ratio(measure: str, value: F64, p0: F64) -> F64:
    """The monthly hazard ratio equivalent to ``value`` given ``p0``."""
    if measure == "hazard_ratio":
        return np.asarray(value, dtype=np.float64)
    p0c = np.clip(p0, 1e-12, _TOP)
    p1 = to_p1(measure, value, p0c)
    out: F64 = np.log1p(-p1) / np.log1p(-p0c)
    return out


def from_hazard_ratio(measure: str, hr: F64, p0: F64) -> F64:
    """The value of ``measure`` equivalent to the hazard ratio ``hr`` given ``p0``."""
    check_measure(measure)
    if measure == "hazard_ratio":
        return np.asarray(hr, dtype=np.float64)
    p0c = np.clip(p0, 1e-12, _TOP)
    p1 = np.clip(p1_from_hr(hr, p0c), 1e-300, _TOP)
    if measure == "relative_risk":
        out: F64 = p1 / p0c
        return out
    odds_ratio = p1 * (1 - p0c) / (p0c * (1 - p1))
    if measure == "odds_ratio":
        return odds_ratio
    out = -np.log(odds_ratio) / CHINN
    return out
