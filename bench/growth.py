"""Benchmark: does ingest slow down as the store keeps years of history?

    python bench/growth.py [--years K] [--releases R] [--stores sqlite,postgresql]
                           [--batch-size B] [--seed S] [--feed-events N | --feed-events 0]
                           [--registrations] [--keep-database NAME]

K consecutive synthetic years (`terugkeer synth --years`: distinct ids, people who come
back) are ingested one after the other into one store, as `terugkeer ingest` runs it: with
the notification rules and the reintegration cases evaluated in every batch, every mayor
reachable (as in the demo). The time of each year is printed. The baseline is the first
year, into the empty store, in the same run; the ratio is the first year's time per event
over the last year's (issue 12: at least 0.67, the last year at most 1.5 times the first).

Also printed, per store: the feed-layer ratio of `bench/ingest.py` (the feed layer alone,
without hooks, against the minimal correct store: json.loads and executemany into the least
any correct ingest must keep) on the first N lines of a fresh synthetic year (issue 12:
at least 0.3 at 1,000,000 events). ``--feed-events 0`` leaves it out.

The last line is the contract JSON: value, baseline and ratio of the store with the lowest
growth ratio; ``stores`` holds every store's years and feed-layer figures.

The defaults (3 years of 3,000 releases, 100,000 feed events) finish in about two minutes
on both stores; the issue's size is ``--years 10 --releases 35000 --feed-events 1000000``.

``--keep-database NAME`` keeps the PostgreSQL store of the years (with ``--registrations``,
also each year's municipal registrations, imported after its timed ingest) for
`bench/feed_api.py --history NAME` and `bench/monitor_report.py --database NAME`, which copy
it instead of ingesting ten years again.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from rich.console import Console
from sqlalchemy import Engine, func, select

from common import postgres_available, temporary_database
from ingest import bare_store, make_feed, ours
from terugkeer import intake
from terugkeer.db.engine import make_engine
from terugkeer.demo import demo_endpoints
from terugkeer.demo.registration import demo_step
from terugkeer.detention.tables import detention_periods, feed_events, persons
from terugkeer.migrations import upgrade
from terugkeer.notify.tables import obligations
from terugkeer.synth import SynthSummary, generate_years

FEEDS = ("detention.jsonl", "victims.jsonl", "reconvictions.jsonl")


def _stored(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            t.name: int(conn.execute(select(func.count()).select_from(t)).scalar_one())
            for t in (feed_events, detention_periods, persons, obligations)
        }


def ingest_years(
    url: str,
    years: list[SynthSummary],
    batch_size: int,
    store: str,
    registrations: Path | None = None,
) -> list[dict[str, Any]]:
    """Ingest the years one after the other into one store, with the hooks; per year its
    events, seconds and what the store holds afterwards. With ``registrations`` (a work
    folder), each year's synthetic municipal registrations are imported after its ingest, as
    `make demo` does, outside the timing (so the store is what the monitor reads)."""
    engine = make_engine(url)
    upgrade(engine)
    demo_endpoints(engine)
    out: list[dict[str, Any]] = []
    quiet = Console(file=None, quiet=True)
    for i, s in enumerate(years):
        started = time.perf_counter()
        result = intake.ingest_files(engine, [s.files[n] for n in FEEDS], batch_size=batch_size)
        seconds = time.perf_counter() - started
        if registrations is not None:
            began = time.perf_counter()
            year_dir = s.files["detention.jsonl"].parent
            demo_step(engine, year_dir, registrations / str(i), quiet, seed=i + 1, messy=False)
            print(
                f"{store} {s.year}: registrations imported in {time.perf_counter() - began:.0f} s"
                " (not timed)",
                file=sys.stderr,
                flush=True,
            )
        counts = result.as_json()
        if counts["applied"] + counts["duplicates"] != s.events or counts["quarantined"]:
            print(f"{store} {s.year}: not everything applied: {counts}", file=sys.stderr)
        row = {
            "year": s.year,
            "events": s.events,
            "seconds": round(seconds, 2),
            "events_per_s": round(s.events / seconds, 1),
            "us_per_event": round(seconds / s.events * 1e6, 1),
            "stored": _stored(engine),
        }
        out.append(row)
        print(
            f"{store} {s.year}: {s.events:,} events in {seconds:.1f} s "
            f"({s.events / seconds:,.0f} events/s, {row['us_per_event']} µs/event); "
            f"store now {row['stored']}",
            file=sys.stderr,
            flush=True,
        )
    engine.dispose()
    return out


def feed_layer(store: str, folder: Path, feed: Path, batch_size: int) -> dict[str, Any]:
    """The feed layer alone against the minimal correct store (as bench/ingest.py)."""
    n = sum(1 for _ in feed.open())
    with temporary_database(store, folder) as url:
        minimal = bare_store(url, feed, batch_size, minimal=True)
    with temporary_database(store, folder) as url:
        seconds, counts = ours(url, feed, batch_size)
    if counts["applied"] + counts["duplicates"] != n:
        print(f"{store}: feed layer: not everything applied: {counts}", file=sys.stderr)
    figures = {
        "n": n,
        "seconds": round(seconds, 2),
        "minimal_seconds": round(minimal, 2),
        "ratio": round(minimal / seconds, 3),
    }
    print(
        f"{store}: feed layer {n:,} events in {seconds:.1f} s, minimal correct store "
        f"{minimal:.1f} s: ratio {minimal / seconds:.2f} (target 0.3)",
        file=sys.stderr,
        flush=True,
    )
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--years", type=int, default=3)
    parser.add_argument("--releases", type=int, default=3000, help="releases per year")
    parser.add_argument("--first-year", type=int, default=2015)
    parser.add_argument("--stores", default="sqlite,postgresql")
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--feed-events", type=int, default=100_000)
    parser.add_argument("--keep", type=Path, help="write the years here and keep them")
    parser.add_argument(
        "--keep-database",
        metavar="NAME",
        help="keep the PostgreSQL store after the run under NAME, for bench/feed_api.py "
        "--history NAME and bench/monitor_report.py --database NAME to copy",
    )
    parser.add_argument(
        "--registrations",
        action="store_true",
        help="import each year's synthetic registrations after its ingest (not timed)",
    )
    args = parser.parse_args()
    if args.years < 2:
        parser.error("--years must be at least 2 (the first year is the baseline)")
    stores = [s for s in args.stores.split(",") if s]
    if "postgresql" in stores and not postgres_available():
        print("PostgreSQL not reachable: benchmark on SQLite only", file=sys.stderr)
        stores.remove("postgresql")

    figures: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="terugkeer-bench-") as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        years = generate_years(
            args.keep or folder / "years",
            years=args.years,
            first_year=args.first_year,
            releases=args.releases,
            seed=args.seed,
        )
        print(
            f"{args.years} years of {args.releases:,} releases: "
            f"{sum(s.events for s in years):,} events "
            f"(synth {time.perf_counter() - started:.0f} s)",
            file=sys.stderr,
            flush=True,
        )
        feed = make_feed(folder, args.feed_events, args.seed) if args.feed_events else None
        for store in stores:
            keep = args.keep_database if store == "postgresql" else None
            with temporary_database(store, folder, keep=keep) as url:
                work = folder / f"registrations-{store}" if args.registrations else None
                per_year = ingest_years(url, years, args.batch_size, store, work)
            first, last = per_year[0], per_year[-1]
            ratio = first["us_per_event"] / last["us_per_event"]
            figures[store] = {
                "value": last["events_per_s"],
                "baseline_value": first["events_per_s"],
                "ratio": round(ratio, 3),
                "last_over_first_seconds": round(last["seconds"] / first["seconds"], 3),
                "years": per_year,
            }
            print(
                f"{store}: year {args.years} {last['us_per_event']} µs/event against year 1 "
                f"{first['us_per_event']}: ratio first/last {ratio:.2f} (target 0.67)",
                file=sys.stderr,
                flush=True,
            )
            if feed is not None:
                figures[store]["feed_layer"] = feed_layer(store, folder, feed, args.batch_size)
    worst = min(figures, key=lambda s: figures[s]["ratio"])
    print(
        json.dumps(
            {
                "bench": "growth",
                "value": figures[worst]["value"],
                "unit": "events/s (last year, with hooks)",
                "baseline": "the first year into the empty store, same run (events/s)",
                "baseline_value": figures[worst]["baseline_value"],
                "ratio": figures[worst]["ratio"],
                "n": sum(s.events for s in years),
                "store": worst,
                "stores": figures,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
