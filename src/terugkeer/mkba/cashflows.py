"""A plain cash-flow file, evaluated by the engine of ``discount.py``: ``terugkeer mkba
cashflows FILE --rate R --timing start|middle|end``.

The file is CSV (comma or semicolon separated, UTF-8) with a header naming the columns
``period``, ``cost`` and ``benefit`` (other columns are ignored). Periods are whole numbers
from 0, ascending without repeats (a missing period has no flows); costs and benefits are
amounts of at least zero (a decimal point or a decimal comma with semicolons). Any problem
is an :class:`MkbaError` naming the line."""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from terugkeer.mkba import discount
from terugkeer.mkba.discount import F64, Timing
from terugkeer.mkba.errors import MkbaError

COLUMNS = ("period", "cost", "benefit")
MAX_ROWS = 100_000


@dataclass(frozen=True)
class CashFlows:
    periods: F64
    costs: F64
    benefits: F64


@dataclass(frozen=True)
class CashFlowResult:
    npv: float
    bc_ratio: float | None
    irr: float | None
    irr_roots: list[float]
    pv_costs: float
    pv_benefits: float
    rate: float
    timing: str

    def as_json(self) -> dict[str, Any]:
        """The contract of ``--json``: exactly these three keys."""
        return {"npv": self.npv, "bc_ratio": self.bc_ratio, "irr": self.irr}


def _number(text: str, column: str, line: int, *, decimal_comma: bool) -> float:
    raw = text.strip()
    if decimal_comma:
        raw = raw.replace(".", "").replace(",", ".") if "," in raw else raw
    try:
        value = float(raw)
    except ValueError:
        raise MkbaError(f"line {line}, {column}: not a number [{text.strip()[:40]}]") from None
    if not math.isfinite(value):
        raise MkbaError(f"line {line}, {column}: not a finite number [{text.strip()[:40]}]")
    return value


def parse(text: str, *, name: str = "the file") -> CashFlows:
    """The cash flows in ``text`` (CSV, see the module docstring)."""
    lines = text.lstrip("\ufeff").splitlines()
    if not lines or not lines[0].strip():
        raise MkbaError(f"{name} is empty: expected a header with period, cost, benefit")
    delimiter = ";" if lines[0].count(";") > lines[0].count(",") else ","
    reader = csv.reader(io.StringIO("\n".join(lines)), delimiter=delimiter)
    header = [h.strip().lower() for h in next(reader)]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise MkbaError(
            f"{name}: missing column(s) {', '.join(missing)} (the header has "
            f"{', '.join(header)[:80] or 'nothing'}; expected period, cost, benefit)"
        )
    at = {c: header.index(c) for c in COLUMNS}
    periods: list[float] = []
    costs: list[float] = []
    benefits: list[float] = []
    for row in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if len(periods) >= MAX_ROWS:
            raise MkbaError(f"{name}: more than {MAX_ROWS:,} periods")
        if len(row) < len(header):
            raise MkbaError(f"line {line}: {len(row)} cells, the header has {len(header)}")
        comma = delimiter == ";"
        period = _number(row[at["period"]], "period", line, decimal_comma=comma)
        if period != int(period) or period < 0:
            raise MkbaError(
                f"line {line}, period: a whole number from 0, not [{row[at['period']]}]"
            )
        if periods and period <= periods[-1]:
            raise MkbaError(
                f"line {line}, period: {int(period)} does not follow {int(periods[-1])}"
            )
        if not periods and period != 0:
            raise MkbaError(f"line {line}, period: the first period must be 0, not {int(period)}")
        values = []
        for column in ("cost", "benefit"):
            value = _number(row[at[column]], column, line, decimal_comma=comma)
            if value < 0:
                raise MkbaError(f"line {line}, {column}: an amount of at least 0, not {value:g}")
            values.append(value)
        periods.append(period)
        costs.append(values[0])
        benefits.append(values[1])
    if not periods:
        raise MkbaError(f"{name}: no periods (only a header)")
    return CashFlows(np.array(periods), np.array(costs), np.array(benefits))


def read(path: Path) -> CashFlows:
    if not path.is_file():
        raise MkbaError(f"no such file: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise MkbaError(f"{path}: not UTF-8 text (save the file as CSV, UTF-8)") from None
    return parse(text, name=str(path))


def evaluate(
    flows: CashFlows, rate: float, when: str | Timing = Timing.START, *, periods_per_year: int = 1
) -> CashFlowResult:
    """NPV, benefit-cost ratio and IRR of the flows at ``rate`` per year."""
    kw: dict[str, Any] = {"periods": flows.periods, "periods_per_year": periods_per_year}
    pv_costs = float(discount.present_value(flows.costs, rate, when, **kw))
    pv_benefits = float(discount.present_value(flows.benefits, rate, when, **kw))
    roots = discount.irr_roots(flows.benefits - flows.costs, **kw)
    return CashFlowResult(
        npv=pv_benefits - pv_costs,
        bc_ratio=discount.bc_ratio(pv_benefits, pv_costs),
        irr=min(roots, key=abs) if roots else None,
        irr_roots=roots,
        pv_costs=pv_costs,
        pv_benefits=pv_benefits,
        rate=rate,
        timing=discount.timing(when).value,
    )
