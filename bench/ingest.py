"""Benchmark: ingest synthetic detention events, against storing the same feed without
understanding it (read line by line, json.loads, executemany-insert event id, kind, time and
raw line into a one-table database on the same store, same batch size, one commit per batch).

    python bench/ingest.py [--events N] [--stores sqlite,postgresql] [--batch-size B]

Target (issue 2): ratio >= 0.5 on both stores. The last line is the contract JSON; its value,
baseline and ratio are those of the store with the lowest ratio, and `stores` holds all.

Each store also reports its *storage floor*: the time to write, into a fresh database of the
same schema, exactly the rows the ingest stored (persons, periods, offences, events, read
back from its database), through the same bulk writer, 5,000 rows per transaction, with no
understanding at all. Ingest also updates each period once per later event, which the floor
leaves out, so the floor is a lower bound. Its ratio to the baseline is the best ratio this
schema allows.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import psycopg
from sqlalchemy import select
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).parent))
from common import postgres_available, temporary_database
from terugkeer.db.bulk import insert_rows
from terugkeer.db.engine import make_engine
from terugkeer.db.migrate import upgrade
from terugkeer.db.tables import detention_periods, feed_events, period_offences, persons
from terugkeer.feed.ingest import ingest_files
from terugkeer.synth import generate


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


def baseline(url: str, feed: Path, batch_size: int) -> float:
    """Seconds to store the feed without understanding it."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        import sqlite3

        conn: object = sqlite3.connect(parsed.database or ":memory:")
        conn.execute("PRAGMA journal_mode=WAL")  # type: ignore[attr-defined]
        conn.execute("PRAGMA synchronous=NORMAL")  # type: ignore[attr-defined]
        placeholder = "?"
    else:
        conn = psycopg.connect(
            host=parsed.host, port=parsed.port, user=parsed.username, dbname=parsed.database
        )
        placeholder = "%s"
    cur = conn.cursor()  # type: ignore[attr-defined]
    cur.execute("CREATE TABLE raw_events (event_id TEXT, kind TEXT, occurred_at TEXT, raw TEXT)")
    conn.commit()  # type: ignore[attr-defined]
    sql = f"INSERT INTO raw_events VALUES ({', '.join([placeholder] * 4)})"
    started = time.perf_counter()
    rows = []
    with feed.open() as fh:
        for line in fh:
            obj = json.loads(line)
            rows.append((obj["event_id"], obj["kind"], obj["occurred_at"], line))
            if len(rows) >= batch_size:
                cur.executemany(sql, rows)
                conn.commit()  # type: ignore[attr-defined]
                rows = []
    if rows:
        cur.executemany(sql, rows)
        conn.commit()  # type: ignore[attr-defined]
    seconds = time.perf_counter() - started
    conn.close()  # type: ignore[attr-defined]
    return seconds


def ours(url: str, feed: Path, batch_size: int) -> tuple[float, dict[str, int]]:
    engine = make_engine(url)
    upgrade(engine)
    started = time.perf_counter()
    result = ingest_files(engine, [feed], batch_size=batch_size)
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
        print(f"feed: {n:,} events ({feed.stat().st_size / 1e6:.0f} MB)", file=sys.stderr)
        for store in stores:
            with temporary_database(store, folder) as url:
                base = baseline(url, feed, args.batch_size)
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
                "floor_ratio": round(base / floor, 3),
            }
            print(
                f"{store}: {value:,.0f} events/s (baseline {base_value:,.0f}/s): ratio "
                f"{value / base_value:.2f}; storage floor {floor:.2f} s, at most ratio "
                f"{base / floor:.2f} for this schema; {counts}",
                file=sys.stderr,
            )
    worst = min(figures, key=lambda s: figures[s]["ratio"])
    print(
        json.dumps(
            {
                "bench": "ingest",
                "value": figures[worst]["value"],
                "unit": "events/s",
                "baseline": "json.loads + bare executemany insert of (event_id, kind, time, raw line)",
                "baseline_value": figures[worst]["baseline_value"],
                "ratio": figures[worst]["ratio"],
                "n": n,
                "store": worst,
                "stores": figures,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
