"""Benchmark: import activity rows from a Dutch-style CSV (Windows-1252, ``;``, dd-mm-jjjj,
decimal commas) with full validation into SQLite, against moving the same data without checking
it: ``pandas.read_csv`` parsing the file plus a bare ``executemany`` insert of its rows into a
one-table SQLite database, in the same run.

    python bench/import.py [--rows N] [--cases C] [--seed S]

Target (issue 4): ratio >= 0.5 and at least 50,000 rows/s. The last line is the contract JSON.

What "ours" does, timed from opening the file to the commit, is exactly ``terugkeer import
activities``: hash the file and detect its encoding, decode and split the CSV, map the header,
check every row (the case reference against the municipality's cases and their consent, the
activity type against the code list, the provider, both dates: real calendar dates, end not
before start, start not in the future nor long before the case's intake; hours and euros: decimal comma, at most two decimals,
ranges; the funder, required with a cost; the programme and reference lengths), decide insert,
update or unchanged against what is stored, and insert in one transaction into the real
``activities`` table with its unique index on (case, key) and its foreign key in place (which
refuse a repeated activity and an unknown case), then record the import and its audit row.
Setting up the cases (persons, periods, cases with consent) is not timed. The baseline does none
of the checks and inserts into a table without indexes or keys.

Beside the contract's figures the JSON carries ``same_table_value`` and ``same_table_ratio``:
``pandas.read_csv`` plus an unchecked load into terugkeer's own ``activities`` table (primary key,
unique index, foreign key, 16 columns), written the way the import writes (batches of 20,000
rows in case order, the four columns that are the same on every row as literals), which
separates what the checks cost from what the constrained table costs.
"""

from __future__ import annotations

import argparse
import json
import operator
import random
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert

from terugkeer.db.engine import make_engine
from terugkeer.detention.tables import detention_periods, persons
from terugkeer.migrations import upgrade
from terugkeer.reintegration.codes import ACTIVITY_TYPES
from terugkeer.reintegration.importing import import_activities
from terugkeer.reintegration.tables import reintegration_cases

MUNICIPALITY = "GM0363"
HEADER = (
    "dossiernummer;activiteitnummer;soort;aanbieder;startdatum;einddatum;uren;kosten;"
    "financier;programma"
)
PROVIDERS = ("Gemeente", "Leger des Heils", "Kredietbank", "UWV", "Stichting Exodus", "GGZ Noord")
FUNDERS = ("gemeente", "rijk", "overig")


def setup_cases(engine: object, cases: int) -> None:
    # intake mid-2024: the activities (starting in 2024) lie in the plausible window around it
    now = datetime(2024, 7, 1, tzinfo=UTC)
    with engine.begin() as conn:  # type: ignore[attr-defined]
        conn.execute(
            insert(persons),
            [{"id": i, "prison_number": f"DJ{i:08d}"} for i in range(1, cases + 1)],
        )
        conn.execute(
            insert(detention_periods),
            [
                {
                    "id": i,
                    "period_ref": f"DP{i:08d}",
                    "person_id": i,
                    "source": "PI-VUG",
                    "institution": "PI-VUG",
                    "title": "prison_sentence",
                    "intake_at": now,
                    "status": "released",
                    "release_kind": "end_of_sentence",
                    "ended_at": now + timedelta(days=60),
                    "return_municipality": MUNICIPALITY,
                    "last_event_at": now,
                    "last_event_id": f"E{i}",
                    "event_count": 2,
                }
                for i in range(1, cases + 1)
            ],
        )
        conn.execute(
            insert(reintegration_cases),
            [
                {
                    "id": i,
                    "period_id": i,
                    "person_id": i,
                    "municipality": MUNICIPALITY,
                    "municipal_ref": f"NZ-{i:06d}",
                    "status": "returned",
                    "consent": "given",
                    "consent_scope": "registration",
                    "opened_at": now,
                    "opened_by": "bench",
                    "updated_at": now,
                }
                for i in range(1, cases + 1)
            ],
        )


def write_csv(path: Path, rows: int, cases: int, seed: int) -> None:
    rng = random.Random(seed)
    types = [t.label for t in ACTIVITY_TYPES[:7]] + [t.code for t in ACTIVITY_TYPES[7:]]
    days = [date(2024, 1, 1) + timedelta(days=k) for k in range(365)]
    with path.open("w", encoding="cp1252", newline="") as fh:
        fh.write(HEADER + "\r\n")
        lines = []
        for k in range(1, rows + 1):
            start = rng.choice(days)
            end = start + timedelta(days=rng.randint(0, 200))
            hours = rng.randint(1, 400) / 2
            cost = rng.randint(0, 500_000) / 100
            lines.append(
                f"NZ-{rng.randint(1, cases):06d};A{k:08d};{rng.choice(types)};"
                f"{rng.choice(PROVIDERS)};{start:%d-%m-%Y};{end:%d-%m-%Y};"
                f"{hours:.1f}".replace(".", ",")
                + f";{cost:.2f}".replace(".", ",")
                + f";{rng.choice(FUNDERS)};{'Aanpak nazorg Amsterdam' if k % 3 else ''}\r\n"
            )
            if len(lines) >= 50_000:
                fh.write("".join(lines))
                lines.clear()
        fh.write("".join(lines))


def baseline(folder: Path, csv_path: Path) -> float:
    """Seconds for pandas.read_csv + a bare executemany into a one-table SQLite database."""
    import pandas as pd

    conn = sqlite3.connect(folder / "baseline.db")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(
        "CREATE TABLE activities (case_ref TEXT, activity_ref TEXT, type TEXT, provider TEXT,"
        " start_date TEXT, end_date TEXT, hours REAL, cost REAL, funder TEXT, programme TEXT)"
    )
    conn.commit()
    started = time.perf_counter()
    frame = pd.read_csv(csv_path, sep=";", encoding="cp1252", decimal=",")
    rows = frame.astype(object).where(frame.notna(), None).itertuples(index=False, name=None)
    conn.executemany("INSERT INTO activities VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    conn.commit()
    seconds = time.perf_counter() - started
    conn.close()
    return seconds


def same_table(folder: Path, csv_path: Path, cases: int) -> float:
    """Seconds for pandas.read_csv + an unchecked load into terugkeer's own activities table
    (its primary key, unique index and foreign key) in one transaction, written as the import
    writes: what moving the data costs on the real schema without checking it. Not the
    contract's baseline; shown beside it to separate the cost of checking from the cost of the
    constrained table."""
    import pandas as pd

    engine = make_engine(f"sqlite:///{folder / 'same.db'}")
    upgrade(engine)
    setup_cases(engine, cases)
    raw = engine.raw_connection()
    stamp = "2025-01-01 00:00:00.000000"
    started = time.perf_counter()
    frame = pd.read_csv(csv_path, sep=";", encoding="cp1252", decimal=",")
    ids = {f"NZ-{i:06d}": i for i in range(1, cases + 1)}
    rows = [
        (ids[c], "ref:" + a, a, t, "", p, s, e, h, k, f, g)
        for c, a, t, p, s, e, h, k, f, g in frame.itertuples(index=False, name=None)
    ]
    cursor = raw.cursor()
    cursor.execute("PRAGMA cache_size=-131072")
    sql = (
        "INSERT INTO activities (case_id, key, municipal_ref, type, condition, provider,"
        " start_date, end_date, hours_x100, cost_cents, funder, programme, recorded_at,"
        " recorded_by, source, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
        f" '{stamp}', 'bench', 'import:0', '{stamp}')"
    )
    for i in range(0, len(rows), 20_000):
        cursor.executemany(sql, sorted(rows[i : i + 20_000], key=operator.itemgetter(0)))
    raw.commit()
    seconds = time.perf_counter() - started
    raw.close()
    engine.dispose()
    return seconds


def ours(folder: Path, csv_path: Path, cases: int) -> tuple[float, dict[str, int]]:
    engine = make_engine(f"sqlite:///{folder / 'ours.db'}")
    upgrade(engine)
    setup_cases(engine, cases)
    started = time.perf_counter()
    report = import_activities(
        engine, csv_path, municipality=MUNICIPALITY, actor="bench", write_report=False
    )
    seconds = time.perf_counter() - started
    engine.dispose()
    if not report.ok:
        print(report.text(5), file=sys.stderr)
    return seconds, report.as_json()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--cases", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="terugkeer-bench-") as tmp:
        folder = Path(tmp)
        csv_path = folder / "activiteiten.csv"
        write_csv(csv_path, args.rows, args.cases, args.seed)
        size = csv_path.stat().st_size / 1e6
        print(f"file: {args.rows:,} rows ({size:.0f} MB, cp1252, ';')", file=sys.stderr)
        base = baseline(folder, csv_path)
        seconds, counts = ours(folder, csv_path, args.cases)
        same = same_table(folder, csv_path, args.cases)
    if counts["applied"] != args.rows or counts["errors"]:
        print(f"not every row applied: {counts}", file=sys.stderr)
        return 1
    value, base_value = args.rows / seconds, args.rows / base
    print(
        f"sqlite: {value:,.0f} rows/s ({seconds:.2f} s) against {base_value:,.0f} rows/s "
        f"({base:.2f} s): ratio {value / base_value:.2f}; {counts}",
        file=sys.stderr,
    )
    print(
        f"beside it, unchecked into the same constrained table: {args.rows / same:,.0f} rows/s "
        f"({same:.2f} s): ratio of ours to that {same / seconds:.2f}",
        file=sys.stderr,
    )
    print(
        json.dumps(
            {
                "bench": "import",
                "value": round(value, 1),
                "unit": "rows/s",
                "baseline": "pandas.read_csv + bare executemany into a one-table SQLite database",
                "baseline_value": round(base_value, 1),
                "ratio": round(value / base_value, 3),
                "n": args.rows,
                "store": "sqlite",
                "seconds": round(seconds, 2),
                "baseline_seconds": round(base, 2),
                "same_table_value": round(args.rows / same, 1),
                "same_table_ratio": round(same / seconds, 3),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
