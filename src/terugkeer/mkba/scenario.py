"""Scenarios: a reintegration approach against its counterfactual, in a TOML file
(``scenarios/*.toml`` in the package, or any path). See docs/mkba.md, "Een scenario".

A scenario names the population, the number of participants a year, the horizon, the
discount rate and timing, the effect (a measure from ``effect.MEASURES`` with its uncertainty
and its duration), optionally an effect on finding work, the programme's costs per participant
(stated, or ``registered``: the activity costs a municipality registered in terugkeer), who
pays them, and overrides of the parameter file. ``data = "store"`` estimates the population's
transition parameters from the store (``estimate.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

from terugkeer.mkba import discount, effect
from terugkeer.mkba.errors import MkbaError
from terugkeer.mkba.model import Setup
from terugkeer.mkba.params import Param, parse_param, read_toml

NAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789-_")
TOP_KEYS = {
    "name",
    "title",
    "description",
    "population",
    "participants",
    "horizon_months",
    "discount_rate",
    "timing",
    "data",
    "effect",
    "work_effect",
    "costs",
    "parameters",
    "caveats",
    "sources",
}


@dataclass(frozen=True)
class Registered:
    """Costs from the store: a municipality's registered activities (``auto``: the one with
    the most cases in a named programme) and a programme (``auto``: its largest)."""

    municipality: str = "auto"
    programme: str = "auto"


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    description: str
    setup: Setup
    participants: int
    effect: Param
    work_effect: Param
    programme_cost: Param
    overrides: dict[str, Param] = field(default_factory=dict)
    registered: Registered | None = None
    from_store: bool = False
    monitor_effect: str | None = None  # a row of the monitor's link: its adjusted HR
    caveats: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)

    def with_effect(self, value: float) -> Scenario:
        return replace(self, effect=replace(self.effect, value=value))


def _str(raw: Mapping[str, Any], key: str, default: str | None = None) -> str:
    value = raw.get(key, default)
    if not isinstance(value, str) or not value.strip():
        raise MkbaError(f"scenario: {key} must be a text")
    return value.strip()


def _int(raw: Mapping[str, Any], key: str, default: int, lo: int, hi: int) -> int:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise MkbaError(f"scenario: {key} must be a whole number from {lo} to {hi}")
    return value


def _effect(raw: Any, where: str) -> tuple[Param, str, int]:
    if not isinstance(raw, dict):
        raise MkbaError(f"scenario: [{where}] is missing or not a table")
    body = dict(raw)
    body.pop("monitor", None)
    measure = str(body.pop("measure", "hazard_ratio"))
    if where == "work_effect" and measure != "relative_risk":
        raise MkbaError("scenario: work_effect.measure must be relative_risk")
    effect.check_measure(measure)
    months = body.pop("months", 24)
    if isinstance(months, bool) or not isinstance(months, int) or months < 0:
        raise MkbaError(f"scenario: {where}.months must be a whole number of months")
    body.setdefault("unit", effect.LABELS[measure])
    body.setdefault(
        "label",
        "effect op recidive" if where == "effect" else "effect op de kans werk te vinden",
    )
    body["kind"] = "difference" if measure == "smd" else "ratio"
    return parse_param(where, body, f"scenario.{where}"), measure, months


def parse(data: Mapping[str, Any], *, origin: str = "scenario") -> Scenario:
    unknown = sorted(set(data) - TOP_KEYS)
    if unknown:
        raise MkbaError(f"{origin}: unknown key(s) {', '.join(unknown)}")
    name = _str(data, "name")
    if not set(name) <= NAME_CHARS or len(name) > 60:
        raise MkbaError(f"{origin}: name uses a-z, 0-9, - and _ only (at most 60)")
    population = _str(data, "population", "adult")
    rate = data.get("discount_rate", 0.0225)
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not -1 < rate < 1:
        raise MkbaError(f"{origin}: discount_rate must be a fraction such as 0.0225")
    when = discount.timing(_str(data, "timing", "middle"))
    horizon = _int(data, "horizon_months", 120, 1, 1200)
    eff, measure, effect_months = _effect(data.get("effect"), "effect")
    if "work_effect" in data:
        work, _, work_months = _effect(data["work_effect"], "work_effect")
        if work_months != effect_months:
            raise MkbaError(f"{origin}: work_effect.months must equal effect.months")
    else:
        work = Param(
            "work_effect", "effect op werk vinden", 1.0, "relatief risico", "ratio", "fixed",
            "geen effect op werk verondersteld", assumption=True,
        )  # fmt: skip
    costs = data.get("costs")
    if not isinstance(costs, dict):
        raise MkbaError(f"{origin}: [costs] is missing")
    costs = dict(costs)
    cost_months = costs.pop("months", 12)
    municipal = costs.pop("municipal_share", 1.0)
    registered = None
    if costs.pop("registered", False) is True:
        registered = Registered(
            str(costs.pop("municipality", "auto")), str(costs.pop("programme", "auto"))
        )
        costs.setdefault("value", 0.0)
        costs.setdefault("unit", "EUR/deelnemer")
        costs.setdefault("price_year", 2024)
        costs.setdefault("source", "geregistreerde activiteiten in terugkeer")
    if isinstance(cost_months, bool) or not isinstance(cost_months, int):
        raise MkbaError(f"{origin}: costs.months must be a whole number")
    if isinstance(municipal, bool) or not isinstance(municipal, int | float):
        raise MkbaError(f"{origin}: costs.municipal_share must be a number from 0 to 1")
    costs.setdefault("label", "kosten van de aanpak per deelnemer")
    if not str(costs.get("unit", "")).startswith("EUR") or costs.get("kind", "amount") != "amount":
        raise MkbaError(f"{origin}: costs must be an amount in euros (unit EUR/...)")
    programme = parse_param("programme_cost", costs, "scenario.costs")
    overrides = {}
    for key, raw in (data.get("parameters") or {}).items():
        overrides[key] = parse_param(key, raw, f"scenario.parameters.{key}")
    monitor = data["effect"].get("monitor") if isinstance(data["effect"], dict) else None
    if monitor is not None and (not isinstance(monitor, str) or measure != "hazard_ratio"):
        raise MkbaError(f"{origin}: effect.monitor names a link row, with measure hazard_ratio")
    data_source = str(data.get("data", "parameters"))
    if data_source not in ("parameters", "store"):
        raise MkbaError(f"{origin}: data must be parameters or store, not [{data_source}]")
    setup = Setup(
        population=population,
        horizon_months=horizon,
        rate=float(rate),
        timing=when,
        effect_measure=measure,
        effect_months=effect_months,
        cost_months=cost_months,
        municipal_share=float(municipal),
    )
    setup.check()
    return Scenario(
        name=name,
        title=_str(data, "title"),
        description=str(data.get("description", "")).strip(),
        setup=setup,
        participants=_int(data, "participants", 100, 1, 10_000_000),
        effect=eff,
        work_effect=work,
        programme_cost=programme,
        overrides=overrides,
        registered=registered,
        from_store=data_source == "store" or registered is not None or monitor is not None,
        monitor_effect=monitor,
        caveats=[str(c) for c in data.get("caveats", [])],
        sources=[str(s) for s in data.get("sources", [])],
    )


def shipped() -> list[str]:
    """The names of the scenarios in the package."""
    folder = resources.files("terugkeer.mkba") / "scenarios"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml"))


def load(name_or_path: str) -> Scenario:
    """A shipped scenario by name, or a scenario file by path."""
    if name_or_path in shipped():
        ref = resources.files("terugkeer.mkba") / "scenarios" / f"{name_or_path}.toml"
        return parse(read_toml(ref.read_text("utf-8"), name_or_path), origin=name_or_path)
    path = Path(name_or_path)
    if path.suffix == ".toml" and path.is_file():
        return parse(read_toml(path.read_text("utf-8"), str(path)), origin=str(path))
    raise MkbaError(
        f"no scenario [{name_or_path[:60]}]: give a file (.toml) or one of {', '.join(shipped())}"
    )
