"""Benchmark: the time of `terugkeer monitor report` over K synthetic years.

    python bench/monitor_report.py [--years K] [--releases R] [--seed S]
                                   [--store-dir DIR] [--no-registrations]
                                   [--store postgresql [--database NAME]]

K consecutive synthetic years (`terugkeer synth --years`) are ingested into one SQLite store
(with the hooks, so reintegration cases are opened) and each year's synthetic municipal
registrations are imported (as `make demo` does); then the monitor's report is computed and
written (`terugkeer monitor report`: read, indicators, recidivism, link, corrected rates,
curves, HTML/CSV/XLSX/PNG/SVG). ``--store-dir`` keeps the store there and reuses it on the
next run (building ten years takes long; the report is what is timed). ``--store postgresql``
builds the store in a temporary PostgreSQL database, or, with ``--database NAME``, copies the
store `bench/growth.py --registrations --keep-database NAME` kept (the same years, ingested
with the hooks, registrations imported).

The baseline, measured in the same run, is the columnar read alone (`monitor.frame.load`: the
least any report must do, reading the store into pandas); the ratio is the baseline's time over
the report's (higher is better, 1 would be a report as cheap as reading). The issue's target:
the report under 60 s for ten years of 35,000 releases (`--years 10 --releases 35000`).
The defaults (one year of 3,000 releases) finish in about a minute.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from rich.console import Console
from sqlalchemy import func, select

from common import kept_exists, temporary_database
from terugkeer.db.engine import make_engine
from terugkeer.demo.registration import demo_step
from terugkeer.detention.tables import detention_periods
from terugkeer.intake import ingest_files
from terugkeer.migrations import upgrade
from terugkeer.monitor.frame import default_cutoff, load
from terugkeer.monitor.report import compute, write_report
from terugkeer.synth import generate_years

FEEDS = ("detention.jsonl", "victims.jsonl", "reconvictions.jsonl")


def build(folder: Path, years: int, releases: int, seed: int, registrations: bool) -> str:
    """A SQLite store of the years in ``folder``, reused when it holds them already."""
    db = folder / "store.db"
    done = folder / "built.json"
    wanted = {"years": years, "releases": releases, "seed": seed, "reg": registrations}
    if db.is_file() and done.is_file() and json.loads(done.read_text()) == wanted:
        print(f"reusing {db}", file=sys.stderr)
        return f"sqlite:///{db}"
    db.unlink(missing_ok=True)
    populate(f"sqlite:///{db}", folder, years, releases, seed, registrations)
    done.write_text(json.dumps(wanted))
    return f"sqlite:///{db}"


def populate(
    url: str, folder: Path, years: int, releases: int, seed: int, registrations: bool
) -> None:
    engine = make_engine(url)
    upgrade(engine)
    started = time.perf_counter()
    summaries = generate_years(folder / "feeds", years=years, releases=releases, seed=seed)
    quiet = Console(file=None, quiet=True)
    for i, s in enumerate(summaries):
        ingest_files(engine, [s.files[name] for name in FEEDS])
        if registrations:
            year_dir = s.files["detention.jsonl"].parent
            demo_step(engine, year_dir, folder / f"work-{i}", quiet, seed=seed + i, messy=False)
        print(
            f"year {s.year}: {s.releases:,} releases in ({time.perf_counter() - started:.0f} s)",
            file=sys.stderr,
            flush=True,
        )
    engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--years", type=int, default=1)
    parser.add_argument("--releases", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--store-dir", type=Path, default=None)
    parser.add_argument("--no-registrations", action="store_true")
    parser.add_argument("--store", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument(
        "--database",
        metavar="NAME",
        help="PostgreSQL: copy the store bench/growth.py --keep-database NAME kept",
    )
    args = parser.parse_args()
    if args.database and (args.store != "postgresql" or not kept_exists(args.database)):
        print(f"no kept PostgreSQL store {args.database!r}: see bench/growth.py", file=sys.stderr)
        return 2
    with ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory())
        folder = args.store_dir or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        registrations = not args.no_registrations
        if args.store == "sqlite":
            url = build(folder, args.years, args.releases, args.seed, registrations)
        else:
            url = stack.enter_context(
                temporary_database("postgresql", folder, template=args.database)
            )
            if not args.database:
                populate(url, folder, args.years, args.releases, args.seed, registrations)
        engine = make_engine(url)
        with engine.connect() as conn:
            periods = conn.execute(select(func.count()).select_from(detention_periods)).scalar()
            # the synthetic years lie partly in the future: cut off where their data end, so
            # every year has its follow-up (not today, which would leave the later years empty)
            cutoff = default_cutoff(conn, today=date(9999, 12, 31))
        started = time.perf_counter()
        load(engine, cutoff)
        baseline = time.perf_counter() - started
        started = time.perf_counter()
        figures = compute(engine, cutoff=cutoff)
        write_report(figures, Path(tmp) / "report")
        seconds = time.perf_counter() - started
        print(f"parts: {json.dumps(figures.seconds)}", file=sys.stderr)
        engine.dispose()
    print(
        json.dumps(
            {
                "bench": "monitor_report",
                "value": round(seconds, 2),
                "unit": "s",
                "baseline": "columnar read of the store alone (monitor.frame.load)",
                "baseline_value": round(baseline, 2),
                "ratio": round(baseline / seconds, 3),
                "n": periods,
                "years": None if args.database else args.years,  # a kept store: as built
                "store": args.store,
                "kept_store": args.database,
                "cutoff": cutoff.isoformat(),
                "target": "under 60 s for 10 years of 35,000 releases",
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
