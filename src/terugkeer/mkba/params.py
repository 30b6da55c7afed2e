"""Parameters of the cost-benefit analysis: read from a versioned TOML file in the package
(``parameters/*.toml``), validated, indexed to one price year with the CPI series, and drawn
for the Monte Carlo analysis (docs/mkba.md, "Parameters").

Every parameter has a value, a unit, a price year (amounts in euros only), an uncertainty
distribution and a source; ``assumption = true`` marks a value without a public source, and
every report lists those.

Distributions and their fields (the point value ``value`` is what the deterministic result
uses):

* ``fixed``: no uncertainty.
* ``normal``: ``sd``; mean = value.
* ``lognormal``: median = value and ``sigma`` (the standard deviation of the logarithm), or
  ``ci95 = [low, high]`` (a 95 % interval, as published for a hazard or odds ratio:
  sigma = ln(high/low) / (2 · 1.96)).
* ``triangular``: ``low`` and ``high``; the mode = value.
* ``beta`` (a probability or share): ``sd``; mean = value (method of moments).
* ``uniform``: ``low`` and ``high``; value must lie between them.

Draws outside a parameter's range (below 0 for an amount, outside [0, 1] for a probability)
are clipped to it; with the spreads in the shipped files that is rare.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from terugkeer.mkba.discount import F64
from terugkeer.mkba.errors import MkbaError

DISTRIBUTIONS = ("fixed", "normal", "lognormal", "triangular", "beta", "uniform")
KINDS = ("amount", "probability", "ratio", "months", "share", "count", "difference")
Z95 = 1.959963984540054
DEFAULT_FILE = "default.toml"


@dataclass(frozen=True)
class Param:
    name: str
    label: str
    value: float
    unit: str
    kind: str
    distribution: str
    source: str
    assumption: bool = False
    price_year: int | None = None
    sd: float | None = None
    sigma: float | None = None
    low: float | None = None
    high: float | None = None
    note: str = ""
    indexed_from: float | None = None  # the value in its own price year, before indexing

    @property
    def uncertain(self) -> bool:
        return self.distribution != "fixed"

    def spread(self) -> str:
        """The distribution in words, for the report."""
        d = self.distribution
        if d == "fixed":
            return "vast"
        if d in ("normal", "beta"):
            return f"{d}, sd {_g(self.sd)}"
        if d == "lognormal":
            return f"lognormaal, sigma {_g(self.sigma)}"
        return f"{d} {_g(self.low)}–{_g(self.high)}"

    def quantile(self, q: float) -> float:
        """The ``q`` quantile of the distribution (the point value when fixed)."""
        from scipy import stats  # type: ignore[import-untyped]

        v = self.value
        if self.distribution == "fixed":
            return v
        if self.distribution == "normal":
            x = float(stats.norm.ppf(q, loc=v, scale=self.sd))
        elif self.distribution == "lognormal":
            x = float(v * math.exp(float(stats.norm.ppf(q)) * (self.sigma or 0.0)))
        elif self.distribution == "beta":
            a, b = beta_shape(v, self.sd or 0.0)
            x = float(stats.beta.ppf(q, a, b))
        else:
            lo, hi = float(self.low or 0.0), float(self.high or 0.0)
            if self.distribution == "uniform":
                x = lo + q * (hi - lo)
            else:
                c = (v - lo) / (hi - lo) if hi > lo else 0.5
                x = float(stats.triang.ppf(q, c, loc=lo, scale=hi - lo))
        return float(clip(self.kind, np.array([x]))[0])


def _g(x: float | None) -> str:
    if x is None:
        return ""
    return f"{x:,.0f}".replace(",", ".") if abs(x) >= 1000 else f"{x:.4g}"


def beta_shape(mean: float, sd: float) -> tuple[float, float]:
    """Alpha and beta of the beta distribution with this mean and standard deviation."""
    var = sd * sd
    if not 0 < mean < 1 or var <= 0 or var >= mean * (1 - mean):
        raise MkbaError("a beta distribution needs 0 < mean < 1 and 0 < sd² < mean·(1−mean)")
    k = mean * (1 - mean) / var - 1
    return mean * k, (1 - mean) * k


def clip(kind: str, x: F64) -> F64:
    """Draws within the kind's range (a difference, such as an effect size d, has none)."""
    if kind == "difference":
        return x
    if kind in ("probability", "share"):
        out: F64 = np.clip(x, 0.0, 1.0)
        return out
    out = np.maximum(x, 0.0)
    return out


@dataclass(frozen=True)
class ParameterSet:
    """A validated parameter file, every amount indexed to ``price_year``."""

    version: str
    title: str
    price_year: int
    cpi: dict[int, float]
    cpi_source: str
    params: dict[str, Param]
    populations: dict[str, dict[str, Param]]
    source_file: str = ""
    notes: list[str] = field(default_factory=list)

    def for_population(self, population: str) -> dict[str, Param]:
        if population not in self.populations:
            known = ", ".join(sorted(self.populations))
            raise MkbaError(f"unknown population [{population}] (known: {known})")
        return {**self.params, **self.populations[population]}


def cpi_factor(cpi: Mapping[int, float], from_year: int, to_year: int) -> float:
    """Prices of ``from_year`` expressed in prices of ``to_year``, with the yearly CPI
    changes (percent, each year over the one before)."""
    first = min(cpi) - 1
    last = max(cpi)
    for y in (from_year, to_year):
        if not first <= y <= last:
            raise MkbaError(f"price year {y} is outside the CPI series ({first}–{last})")
    factor = 1.0
    for y in range(min(from_year, to_year) + 1, max(from_year, to_year) + 1):
        factor *= 1 + cpi[y] / 100
    return factor if to_year >= from_year else 1 / factor


def _num(raw: Mapping[str, Any], key: str, where: str) -> float | None:
    if key not in raw:
        return None
    x = raw[key]
    if isinstance(x, bool) or not isinstance(x, int | float) or not math.isfinite(x):
        raise MkbaError(f"{where}: {key} must be a number, not [{x}]")
    return float(x)


ALLOWED = {
    "label",
    "value",
    "unit",
    "kind",
    "distribution",
    "source",
    "assumption",
    "price_year",
    "sd",
    "sigma",
    "ci95",
    "low",
    "high",
    "note",
}


def parse_param(name: str, raw: Mapping[str, Any], where: str) -> Param:
    """One parameter table, validated (``where`` names it in messages)."""
    if not isinstance(raw, Mapping):
        raise MkbaError(f"{where}: a table with value, unit, distribution and source")
    unknown = sorted(set(raw) - ALLOWED)
    if unknown:
        raise MkbaError(f"{where}: unknown field(s) {', '.join(unknown)}")
    for key in ("value", "unit", "source"):
        if key not in raw or raw[key] in ("", None):
            raise MkbaError(f"{where}: {key} is missing")
    value = _num(raw, "value", where)
    assert value is not None  # noqa: S101 - checked above
    kind = str(raw.get("kind", "amount" if str(raw["unit"]).startswith("EUR") else ""))
    if kind not in KINDS:
        raise MkbaError(f"{where}: kind must be one of {', '.join(KINDS)}, not [{kind}]")
    distribution = str(raw.get("distribution", "fixed"))
    if distribution not in DISTRIBUTIONS:
        raise MkbaError(
            f"{where}: distribution must be one of {', '.join(DISTRIBUTIONS)}, not [{distribution}]"
        )
    price_year = raw.get("price_year")
    if kind == "amount":
        if not isinstance(price_year, int) or isinstance(price_year, bool):
            raise MkbaError(f"{where}: an amount needs a price_year (a year)")
    elif price_year is not None:
        raise MkbaError(f"{where}: only an amount in euros has a price_year")
    assumption = raw.get("assumption", False)
    if not isinstance(assumption, bool):
        raise MkbaError(f"{where}: assumption must be true or false")
    p = Param(
        name=name,
        label=str(raw.get("label", name)),
        value=value,
        unit=str(raw["unit"]),
        kind=kind,
        distribution=distribution,
        source=str(raw["source"]),
        assumption=assumption,
        price_year=price_year,
        sd=_num(raw, "sd", where),
        sigma=_num(raw, "sigma", where),
        low=_num(raw, "low", where),
        high=_num(raw, "high", where),
        note=str(raw.get("note", "")),
    )
    if "ci95" in raw:
        ci = raw["ci95"]
        if not (
            isinstance(ci, list) and len(ci) == 2 and all(isinstance(x, int | float) for x in ci)
        ):
            raise MkbaError(f"{where}: ci95 must be [low, high]")
        lo, hi = float(ci[0]), float(ci[1])
        if not 0 < lo < value < hi:
            raise MkbaError(f"{where}: ci95 must satisfy 0 < low < value < high")
        p = replace(p, sigma=math.log(hi / lo) / (2 * Z95), low=lo, high=hi)
    _check_distribution(p, where)
    return p


def _check_distribution(p: Param, where: str) -> None:
    d = p.distribution
    if p.kind in ("probability", "share") and not 0 <= p.value <= 1:
        raise MkbaError(f"{where}: a {p.kind} lies between 0 and 1, not {p.value}")
    if p.kind not in ("probability", "share", "difference") and p.value < 0:
        raise MkbaError(f"{where}: value must be at least 0, not {p.value}")
    if d in ("normal", "beta") and (p.sd is None or p.sd <= 0):
        raise MkbaError(f"{where}: a {d} distribution needs sd > 0")
    if d == "beta":
        if not 0 < p.value < 1:
            raise MkbaError(f"{where}: a beta distribution needs 0 < value < 1")
        try:
            beta_shape(p.value, p.sd or 0.0)
        except MkbaError as e:
            raise MkbaError(f"{where}: {e}") from None
    if d == "lognormal" and (p.sigma is None or p.sigma <= 0 or p.value <= 0):
        raise MkbaError(f"{where}: a lognormal distribution needs value > 0 and sigma (or ci95)")
    if d in ("triangular", "uniform") and (
        p.low is None or p.high is None or not p.low <= p.value <= p.high or p.low >= p.high
    ):
        raise MkbaError(f"{where}: a {d} distribution needs low ≤ value ≤ high, low < high")


def index(p: Param, factor: float) -> Param:
    """The parameter with every amount multiplied by ``factor`` (to another price year);
    ``price_year`` keeps the year of the source, ``indexed_from`` its value there."""

    def s(x: float | None) -> float | None:
        return None if x is None else x * factor

    return replace(
        p, value=p.value * factor, sd=s(p.sd), low=s(p.low), high=s(p.high), indexed_from=p.value
    )


def _table(raw: Any, where: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise MkbaError(f"{where}: expected a table")
    return raw


def parse_set(data: Mapping[str, Any], *, source_file: str = "") -> ParameterSet:
    """A parameter file's content (TOML, already read), validated and indexed."""
    for key in ("version", "title", "price_year", "cpi", "parameters", "populations"):
        if key not in data:
            raise MkbaError(f"{source_file or 'the parameter file'}: {key} is missing")
    cpi_raw = _table(data["cpi"], "cpi")
    changes = _table(cpi_raw.get("changes"), "cpi.changes")
    try:
        cpi = {int(y): float(v) for y, v in changes.items()}
    except (TypeError, ValueError):
        raise MkbaError("cpi.changes: years as keys, percentages as values") from None
    years = sorted(cpi)
    if years != list(range(years[0], years[-1] + 1)):
        raise MkbaError("cpi.changes: every year between the first and the last is needed")
    price_year = data["price_year"]
    if not isinstance(price_year, int):
        raise MkbaError("price_year must be a year")
    cpi_factor(cpi, price_year, price_year)  # inside the series

    def load(table: Mapping[str, Any], prefix: str) -> dict[str, Param]:
        out = {}
        for name, raw in table.items():
            p = parse_param(name, raw, f"{prefix}{name}")
            if p.kind == "amount":
                assert p.price_year is not None  # noqa: S101 - checked in parse_param
                p = index(p, cpi_factor(cpi, p.price_year, price_year))
            out[name] = p
        return out

    shared = load(_table(data["parameters"], "parameters"), "parameters.")
    populations = {}
    for pop, table in _table(data["populations"], "populations").items():
        params = load(_table(table, f"populations.{pop}"), f"populations.{pop}.")
        clash = sorted(set(params) & set(shared))
        if clash:
            raise MkbaError(f"populations.{pop}: {', '.join(clash)} also a shared parameter")
        populations[pop] = params
    return ParameterSet(
        version=str(data["version"]),
        title=str(data["title"]),
        price_year=price_year,
        cpi=cpi,
        cpi_source=str(cpi_raw.get("source", "")),
        params=shared,
        populations=populations,
        source_file=source_file,
        notes=[str(n) for n in data.get("notes", [])],
    )


def read_toml(text: str, name: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise MkbaError(f"{name}: not valid TOML: {e}") from None


def load(path: Path | None = None) -> ParameterSet:
    """The shipped parameter file (``parameters/default.toml``) or the one at ``path``."""
    if path is None:
        ref = resources.files("terugkeer.mkba") / "parameters" / DEFAULT_FILE
        return parse_set(read_toml(ref.read_text("utf-8"), DEFAULT_FILE), source_file=DEFAULT_FILE)
    if not path.is_file():
        raise MkbaError(f"no such parameter file: {path}")
    return parse_set(read_toml(path.read_text("utf-8"), str(path)), source_file=str(path))


def draw(params: Mapping[str, Param], n: int, rng: np.random.Generator) -> dict[str, F64]:
    """``n`` draws of every parameter, in name order (so a seed gives the same draws)."""
    out: dict[str, F64] = {}
    for name in sorted(params):
        p = params[name]
        v = p.value
        d = p.distribution
        if d == "fixed":
            x = np.full(n, v)
        elif d == "normal":
            x = rng.normal(v, p.sd or 0.0, n)
        elif d == "lognormal":
            x = v * np.exp(rng.normal(0.0, p.sigma or 0.0, n))
        elif d == "beta":
            a, b = beta_shape(v, p.sd or 0.0)
            x = rng.beta(a, b, n)
        elif d == "uniform":
            x = rng.uniform(p.low or 0.0, p.high or 0.0, n)
        else:
            lo, hi = p.low or 0.0, p.high or 0.0
            x = rng.triangular(lo, v, hi, n) if hi > lo else np.full(n, v)
        out[name] = clip(p.kind, np.asarray(x, dtype=np.float64))
    return out


def point(params: Mapping[str, Param], n: int = 1) -> dict[str, F64]:
    """The point values, ``n`` rows of them."""
    return {name: np.full(n, p.value) for name, p in params.items()}
