"""Benchmark: ingest synthetic detention events, against storing the same feed without
understanding it (read line by line, json.loads, executemany-insert event id, kind, time and
raw line into a one-table database on the same store, same batch size, one commit per batch).

    python bench/ingest.py [--events N] [--stores sqlite,postgresql] [--batch-size B] [--hooks]

The last line is the contract JSON. Its baseline is the *minimal correct store* (below):
issue 12 withdrew issue 2's target (half the speed of an unindexed bare insert, which no
correct ingest can reach on SQLite, docs/benchmarks.md) for ratio >= 0.3 against the minimal
correct store at 1,000,000 events, on both stores. Value, baseline and ratio are those of the
store with the lowest ratio; `stores` holds all, with the bare insert's figures beside.

Each store also reports its *storage floor*: the time to write, into a fresh database of the
same schema, exactly the rows the ingest stored (persons, periods, offences, events, read
back from its database), through the same bulk writer, 5,000 rows per transaction, with no
understanding at all. Ingest also updates each period once per later event, which the floor
leaves out, so the floor is a lower bound. Its ratio to the baseline is the best ratio this
schema allows. What the target leaves per event once those rows are written is printed as
the understanding budget, in microseconds, beside what the feed layer spends.

And the *minimal correct store*: the baseline's own method (json.loads, executemany), but into
the least that any correct ingest must keep whatever its schema: event ids unique, events
findable by period, one row per period (`bare_store(minimal=True)`).

With --hooks, the ingest is also timed as `terugkeer ingest` runs it: with the notification
rules and the reintegration cases evaluated in every batch's transaction.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import msgspec
import psycopg
from sqlalchemy import select
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).parent))
from common import postgres_available, temporary_database
from terugkeer import intake
from terugkeer.db.bulk import insert_rows
from terugkeer.db.engine import SQLITE_PRAGMAS, make_engine
from terugkeer.demo import demo_endpoints
from terugkeer.detention.ingest import ingest_files
from terugkeer.detention.tables import detention_periods, feed_events, period_offences, persons
from terugkeer.migrations import upgrade
from terugkeer.synth import generate

TARGET = 0.3  # issue 12: the feed layer at least 0.3 of the minimal correct store's speed


def make_feed(folder: Path, events: int, seed: int) -> Path:
    """The first ``events`` lines (in time order, so every period stays consistent) of a
    synthetic national year large enough to have them."""
    releases = max(1000, events // 3)
    feed = folder / "feed.jsonl"
    while True:
        summary = generate(folder / "synth", releases=releases, seed=seed)
        source = summary.files["detention.jsonl"]
        with source.open() as fh:
            available = sum(1 for _ in fh)
        if available >= events:
            break
        releases = int(releases * events / max(available, 1) * 1.1) + 1000
    with source.open() as src, feed.open("w") as dst:
        for n, line in enumerate(src):
            if n >= events:
                break
            dst.write(line)
    return feed


# The baseline's one table, and the least any correct ingest must keep (see `minimal_store`).
BARE_SCHEMA = ("CREATE TABLE raw_events (event_id TEXT, kind TEXT, occurred_at TEXT, raw TEXT)",)
MINIMAL_SCHEMA = (
    "CREATE TABLE raw_events (event_id TEXT NOT NULL UNIQUE, kind TEXT, occurred_at TEXT,"
    " period_ref TEXT, raw TEXT)",
    "CREATE INDEX ix_raw_events_period_ref ON raw_events (period_ref)",
    "CREATE TABLE periods (period_ref TEXT PRIMARY KEY, person TEXT, intake_at TEXT)",
)


def bare_store(url: str, feed: Path, batch_size: int, *, minimal: bool = False) -> float:
    """Seconds to store the feed without understanding it: read line by line, ``json.loads``,
    ``executemany`` per batch, one commit per batch.

    With ``minimal``, into the least a correct ingest must keep: event ids unique (the same
    event twice is applied once), events findable by period (a period is rebuilt from its
    events when a correction withdraws one), and one row per period. No validation, no
    period state, no persons or offences: a lower bound for any implementation."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        import sqlite3

        conn: Any = sqlite3.connect(parsed.database or ":memory:")
        for pragma in SQLITE_PRAGMAS:  # the store configured as terugkeer configures it
            conn.execute(pragma)
        mark = "?"
    else:
        conn = psycopg.connect(
            host=parsed.host, port=parsed.port, user=parsed.username, dbname=parsed.database
        )
        mark = "%s"
    cur = conn.cursor()
    for ddl in MINIMAL_SCHEMA if minimal else BARE_SCHEMA:
        cur.execute(ddl)
    conn.commit()
    columns = 5 if minimal else 4
    sql = f"INSERT INTO raw_events VALUES ({', '.join([mark] * columns)})"
    period_sql = f"INSERT INTO periods VALUES ({mark}, {mark}, {mark})"
    started = time.perf_counter()
    rows: list[tuple[Any, ...]] = []
    periods: list[tuple[Any, ...]] = []

    def write() -> None:
        cur.executemany(sql, rows)
        if periods:
            cur.executemany(period_sql, periods)
        conn.commit()
        rows.clear()
        periods.clear()

    with feed.open() as fh:
        for line in fh:
            obj = json.loads(line)
            if minimal:
                rows.append(
                    (obj["event_id"], obj["kind"], obj["occurred_at"], obj.get("period"), line)
                )
                if obj["kind"] == "intake":
                    person = obj["person"]
                    key = person.get("bsn") or person.get("prison_number")
                    periods.append((obj["period"], key, obj["occurred_at"]))
            else:
                rows.append((obj["event_id"], obj["kind"], obj["occurred_at"], line))
            if len(rows) >= batch_size:
                write()
    if rows:
        write()
    seconds = time.perf_counter() - started
    conn.close()
    return seconds


def decode_only(feed: Path) -> float:
    """Seconds to decode every line with msgspec (C, no validation): less than any
    understanding can cost."""
    decode = msgspec.json.decode
    started = time.perf_counter()
    with feed.open("rb") as fh:
        for line in fh:
            decode(line)
    return time.perf_counter() - started


def ours(
    url: str, feed: Path, batch_size: int, *, hooks: bool = False
) -> tuple[float, dict[str, int]]:
    """Seconds to ingest the feed: the feed layer alone, or (``hooks``) as `terugkeer ingest`
    does, with the notification rules and reintegration cases evaluated in each batch and
    every mayor reachable, as in the demo."""
    engine = make_engine(url)
    upgrade(engine)
    ingest = ingest_files
    if hooks:
        demo_endpoints(engine)
        ingest = intake.ingest_files
    started = time.perf_counter()
    result = ingest(engine, [feed], batch_size=batch_size)
    seconds = time.perf_counter() - started
    engine.dispose()
    return seconds, result.as_json()


FLOOR_TABLES = (persons, detention_periods, period_offences, feed_events)


def storage_floor(stored_url: str, fresh_url: str, batch_size: int) -> float:
    """Seconds to write the rows ingest stored into a fresh database, without understanding."""
    source = make_engine(stored_url)
    with source.connect() as conn:
        tables = [
            (
                t,
                [c.name for c in t.columns],
                [tuple(r) for r in conn.execute(select(t).order_by(t.c.id))],
            )
            for t in FLOOR_TABLES
        ]
    source.dispose()
    engine = make_engine(fresh_url)
    upgrade(engine)
    started = time.perf_counter()
    for table, columns, rows in tables:
        for i in range(0, len(rows), batch_size):
            with engine.begin() as conn:
                insert_rows(conn, table, columns, rows[i : i + batch_size])
    seconds = time.perf_counter() - started
    engine.dispose()
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--stores", default="sqlite,postgresql")
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--hooks",
        action="store_true",
        help="also time the ingest as `terugkeer ingest` runs it, with its hooks",
    )
    args = parser.parse_args()
    stores = [s for s in args.stores.split(",") if s]
    if "postgresql" in stores and not postgres_available():
        print("PostgreSQL not reachable: benchmark on SQLite only", file=sys.stderr)
        stores.remove("postgresql")

    figures: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="terugkeer-bench-") as tmp:
        folder = Path(tmp)
        feed = make_feed(folder, args.events, args.seed)
        n = sum(1 for _ in feed.open())
        decode_us = decode_only(feed) / n * 1e6
        print(f"feed: {n:,} events ({feed.stat().st_size / 1e6:.0f} MB)", file=sys.stderr)
        for store in stores:
            with temporary_database(store, folder) as url:
                base = bare_store(url, feed, args.batch_size)
            with temporary_database(store, folder) as url:
                minimal = bare_store(url, feed, args.batch_size, minimal=True)
            with temporary_database(store, folder) as url:
                seconds, counts = ours(url, feed, args.batch_size)
                with temporary_database(store, folder) as fresh:
                    floor = storage_floor(url, fresh, args.batch_size)
            if counts["applied"] + counts["duplicates"] != n:
                print(f"{store}: not everything applied: {counts}", file=sys.stderr)
            value, base_value = n / seconds, n / base
            figures[store] = {
                "value": round(value, 1),
                "baseline_value": round(base_value, 1),
                "ratio": round(value / base_value, 3),
                "seconds": round(seconds, 2),
                "baseline_seconds": round(base, 2),
                "floor_seconds": round(floor, 2),
                # the best feed-layer ratio this schema allows: its rows written, nothing else
                "floor_ratio": round(minimal / floor, 3),
                "minimal_seconds": round(minimal, 2),
                # issue 12's ratio: the feed layer against the minimal correct store
                "minimal_value": round(n / minimal, 1),
                "feed_layer_ratio": round(minimal / seconds, 3),
                # what the target leaves per event for reading, validating, deduplicating and
                # deriving period state once this schema's rows are written, and what we spend
                "understanding_budget_us": round((minimal / TARGET - floor) / n * 1e6, 2),
                "understanding_us": round((seconds - floor) / n * 1e6, 2),
                "decode_only_us": round(decode_us, 2),
            }
            if args.hooks:
                with temporary_database(store, folder) as url:
                    hooked, _ = ours(url, feed, args.batch_size, hooks=True)
                figures[store]["with_hooks_value"] = round(n / hooked, 1)
                figures[store]["with_hooks_ratio"] = round(base / hooked, 3)
            print(
                f"{store}: {value:,.0f} events/s in {seconds:.2f} s: {minimal / seconds:.2f} of"
                f" the minimal correct store's {minimal:.2f} s (target {TARGET}); {counts}\n"
                f"  storage floor {floor:.2f} s: at most ratio {minimal / floor:.2f} for this"
                f" schema; the target leaves {figures[store]['understanding_budget_us']:.2f} µs"
                f" per event for understanding, we spend {figures[store]['understanding_us']:.1f}"
                f" (decoding a line with msgspec, without validating it: {decode_us:.2f})\n"
                f"  bare insert {base:.2f} s ({base_value:,.0f}/s): ratio {value / base_value:.2f}",
                file=sys.stderr,
            )
            if args.hooks:
                print(
                    f"  with the hooks of `terugkeer ingest` (rules, cases): {n / hooked:,.0f}"
                    f" events/s, ratio {base / hooked:.2f}",
                    file=sys.stderr,
                )
    worst = min(figures, key=lambda s: figures[s]["feed_layer_ratio"])
    print(
        json.dumps(
            {
                "bench": "ingest",
                "value": figures[worst]["value"],
                "unit": "events/s",
                "baseline": "the minimal correct store: json.loads + executemany into unique event"
                " ids, events by period, a row per period",
                "baseline_value": figures[worst]["minimal_value"],
                "ratio": figures[worst]["feed_layer_ratio"],
                "n": n,
                "store": worst,
                "stores": figures,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
