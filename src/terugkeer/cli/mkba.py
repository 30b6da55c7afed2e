"""``terugkeer mkba …``: the social cost-benefit analysis (docs/mkba.md).

* ``mkba cashflows FILE --rate R --timing start|middle|end [--json]``: NPV, benefit-cost
  ratio and IRR of a plain cash-flow file (columns period, cost, benefit).

Errors (a missing file, a bad column or value, a bad rate) are one plain line and exit 2
(``cli/errors.py``): the library raises ``MkbaError``, a ``ValueError``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from terugkeer.cli.common import fail, number, out

mkba_app = typer.Typer(help="The social cost-benefit analysis (MKBA).", no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="print as JSON")]


def parse_rate(value: str) -> float:
    """A yearly rate as a fraction (``0.0225``) or a percentage (``2.25%``)."""
    text = value.strip().replace(",", ".")
    percent = text.endswith("%")
    try:
        rate = float(text.rstrip("%").strip())
    except ValueError:
        raise typer.BadParameter(f"[{value}]: a rate such as 0.0225 or 2.25%") from None
    rate = rate / 100 if percent else rate
    if not -1 < rate < 1:
        raise typer.BadParameter(
            f"[{value}]: give the rate as a fraction (0.0225) or a percentage (2.25%)"
        )
    return rate


RateOpt = Annotated[
    float,
    typer.Option(
        "--rate", parser=parse_rate, metavar="RATE", help="yearly discount rate: 0.0225 or 2.25%"
    ),
]


def _pct(value: float | None) -> str:
    return "absent (no sign change)" if value is None else f"{number(value * 100, 2)} %"


@mkba_app.command("cashflows")
def cashflows_command(
    file: Annotated[Path, typer.Argument(help="CSV with columns period, cost, benefit")],
    rate: RateOpt,
    timing: Annotated[
        str, typer.Option("--timing", help="when a period's flows count: start, middle or end")
    ] = "start",
    as_json: JsonOpt = False,
) -> None:
    """Net present value, benefit-cost ratio and internal rate of return of a cash-flow file."""
    from terugkeer.mkba import cashflows
    from terugkeer.mkba.discount import timing as parse_timing

    if timing not in ("start", "middle", "end"):
        fail(f"--timing must be start, middle or end, not [{timing}]")
    flows = cashflows.read(file)
    result = cashflows.evaluate(flows, rate, parse_timing(timing))
    if as_json:
        out.print(json.dumps(result.as_json()), soft_wrap=True)
        return
    ratio = "absent (no costs)" if result.bc_ratio is None else number(result.bc_ratio, 3)
    out.print(f"periods: {len(flows.periods)}; rate {_pct(rate)} a period; timing: {timing}")
    out.print(f"present value of benefits: {number(result.pv_benefits, 2)}")
    out.print(f"present value of costs: {number(result.pv_costs, 2)}")
    out.print(f"net present value: {number(result.npv, 2)}")
    out.print(f"benefit-cost ratio: {ratio}")
    out.print(f"internal rate of return: {_pct(result.irr)}")
    if len(result.irr_roots) > 1:
        roots = ", ".join(_pct(r) for r in result.irr_roots)
        out.print(f"  the net flows change sign more than once: IRRs {roots}; shown: closest to 0")


def register(app: typer.Typer) -> None:
    app.add_typer(mkba_app, name="mkba")
