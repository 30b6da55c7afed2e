"""The drill's command line: ``python -m tools.drill [--quick] …`` from the repository root
(``make drill DRILL_ARGS="…"``).

Break delivery on purpose and count: SIGKILL dispatcher and ingest processes, make the
loopback receivers fail, feed duplicated and out-of-order events, let it settle and report
obligations required, delivered, missing (must be 0) and delivered more than once. Exit
status: 0 nothing missing; 1 something missing (or the queue did not drain); 2 the drill could
not run. Needs PostgreSQL (and aiosmtpd, from the ``dev`` extra).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from rich.console import Console

from tools.drill import DEFAULT_SERVER, DrillConfig, DrillError, new_seed, run_drill


def _int_in(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse type: an integer in [low, high]."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from e
        if value < low or (high is not None and value > high):
            bounds = f">= {low}" if high is None else f"in [{low}, {high}]"
            raise argparse.ArgumentTypeError(f"{value} is not {bounds}")
        return value

    return parse


def parser() -> argparse.ArgumentParser:
    """The options of ``python -m tools.drill`` (those of the former ``terugkeer drill``)."""
    p = argparse.ArgumentParser(
        prog="python -m tools.drill",
        description=(__doc__ or "").split("\n\n")[1].replace("\n", " "),
    )
    p.add_argument(
        "--events", type=_int_in(1), help="at least this many feed lines [10000; --quick: 400]"
    )
    p.add_argument(
        "--kills", type=_int_in(0), help="dispatcher processes to kill with SIGKILL [20; 4]"
    )
    p.add_argument(
        "--ingest-kills", type=_int_in(0), help="ingest processes to kill with SIGKILL [3; 1]"
    )
    p.add_argument("--workers", type=_int_in(2, 32), help="dispatcher processes [3]")
    p.add_argument("--chunks", type=_int_in(1, 1000), help="parts the feed arrives in [10; 4]")
    p.add_argument("--seed", type=int, help="seed of every random choice (default: a new one)")
    p.add_argument(
        "--quick", action="store_true", help="a short drill: 400 events, 4 kills, 4 chunks"
    )
    p.add_argument("--url", help="an empty PostgreSQL database to use instead of a temporary one")
    p.add_argument(
        "--server",
        help="PostgreSQL server (an admin URL) for the temporary database "
        "[TERUGKEER_DRILL_SERVER_URL or postgres@127.0.0.1:5432]",
    )
    p.add_argument(
        "--control",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also ingest the same feed calmly into a second temporary database and compare "
        "the obligations [on]",
    )
    p.add_argument("--json", dest="as_json", action="store_true", help="the report as JSON")
    p.add_argument("--verbose", action="store_true", help="the child processes log warnings too")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the drill as the options say; the exit status."""
    args = parser().parse_args(argv)
    out = Console()
    err = Console(stderr=True)
    chosen = args.seed if args.seed is not None else new_seed()
    sizes: dict[str, Any] = {
        name: getattr(args, name)
        for name in ("events", "kills", "ingest_kills", "workers", "chunks")
        if getattr(args, name) is not None
    }
    sizes["control"] = args.control
    if args.verbose:
        sizes["log_level"] = "warning"
    try:
        base = DrillConfig.quick(chosen) if args.quick else DrillConfig(seed=chosen)
        config = replace(base, **sizes)
    except ValueError as e:
        err.print(f"[red]{e}[/red]")
        return 2
    try:
        report = run_drill(
            config,
            url=args.url,
            server=args.server or DEFAULT_SERVER,
            say=lambda line: err.print(line, highlight=False),
        )
    except DrillError as e:
        err.print(f"[red]drill could not run (seed {chosen}): {e}[/red]")
        return 2
    if args.as_json:
        out.print_json(json.dumps(report.as_json(), default=str))
    else:
        for line in report.lines():
            out.print(line, highlight=False, markup=False)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
