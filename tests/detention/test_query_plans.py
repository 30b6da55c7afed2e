"""The cost of an ingest batch does not grow with the history in the store (issue 12).

Every statement the ingest path sends (the feed layer, the notification rules, the burst
brake, the reintegration cases, the audit trail) is captured while a year is ingested into a
store that already holds earlier years, and its query plan is read back on the same store:
no statement may read a growing table whole. On PostgreSQL each statement is EXPLAINed with
sequential scans switched off (``enable_seqscan = off``), so a ``Seq Scan`` that remains
means there is no index it could use; a scan of an index without a condition (a full index
scan) fails too, unless a ``Limit`` above it stops it at once. On SQLite, ``EXPLAIN QUERY
PLAN`` of each statement must SEARCH a growing table by something more selective than a code
(``kind``, ``status``: a search by one of those alone reads a growing share), never SCAN it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import event

from terugkeer import intake
from terugkeer.demo import demo_endpoints
from terugkeer.synth import History, MessyRates, generate

FEEDS = ("detention.jsonl", "victims.jsonl", "reconvictions.jsonl")

# Tables that grow with the years of history (everything but configuration and accounts).
GROWING = {
    "feed_events",
    "detention_periods",
    "persons",
    "period_offences",
    "victims",
    "reconvictions",
    "quarantine",
    "obligations",
    "deliveries",
    "delivery_attempts",
    "alerts",
    "audit_log",
    "reintegration_cases",
    "reintegration_consents",
    "condition_facts",
}

# Columns with a handful of values (codes): an index search on one of them alone reads a
# share of the table that grows with it. SQLite has no statistics to tell that from a search
# by key (it took the events of eight kinds, every one stored, for a batch's periods' events).
CODE_COLUMNS = ("kind", "status", "recipient_kind", "channel", "notice", "source")


class _Recorder:
    """Statements sent through psycopg cursors (SQLAlchemy's and the driver-level bulk
    helpers' alike), each once, with the parameters of its first use."""

    def __init__(self) -> None:
        self.on = False
        self.statements: dict[str, Any] = {}

    def cursor_class(self) -> type[psycopg.Cursor[Any]]:
        recorder = self

        class Recording(psycopg.Cursor[Any]):
            def execute(self, query: Any, params: Any = None, **kw: Any) -> Any:  # type: ignore[override]
                recorder.add(query, params)
                return super().execute(query, params, **kw)

            def executemany(self, query: Any, params_seq: Any, **kw: Any) -> None:  # type: ignore[override]
                rows = list(params_seq)
                if rows:
                    recorder.add(query, rows[0])
                super().executemany(query, rows, **kw)

        return Recording

    def add(self, query: Any, params: Any) -> None:
        if self.on and isinstance(query, str) and query not in self.statements:
            self.statements[query] = params


def _nodes(
    plan: dict[str, Any], parent: str | None = None
) -> Iterator[tuple[dict[str, Any], str | None]]:
    yield plan, parent
    for child in plan.get("Plans", ()):
        yield from _nodes(child, plan["Node Type"])


def _code_only(condition: str) -> str | None:
    """The code column an index condition of a PostgreSQL plan constrains alone, if any."""
    m = re.fullmatch(r"\(\((\w+)\)::text = (?:ANY \()?'[^']*'(?:::text(?:\[\])?)?\)?\)", condition)
    return m.group(1) if m and m.group(1) in CODE_COLUMNS else None


def whole_table_reads(plan: dict[str, Any]) -> list[str]:
    """The growing tables a PostgreSQL plan (EXPLAIN FORMAT JSON) reads whole, or by a code
    column alone (an index scan, or a bitmap index scan ANDed with the key's, on ``kind``:
    with statistics that lag a bulk ingest, PostgreSQL did that and read every event of the
    kinds), unless a ``Limit`` stops it at the first row (an existence check)."""
    found = []
    for node, parent in _nodes(plan):
        code = _code_only(node.get("Index Cond", ""))
        index = node.get("Index Name", "")
        if code and parent != "Limit" and any(index.startswith(f"ix_{t}_") for t in GROWING):
            found.append(f"{node['Node Type']} on {index} by {code} alone")
        table = node.get("Relation Name")
        if table not in GROWING:
            continue
        kind = node["Node Type"]
        if kind == "Seq Scan":
            found.append(f"Seq Scan on {table}")
        elif kind in ("Index Scan", "Index Only Scan", "Index Scan Backward") and (
            "Index Cond" not in node and parent != "Limit"
        ):
            found.append(f"{kind} on {table} without a condition")
    return found


# The history: two earlier years, ingested in big batches; then a year in small batches, as
# a live feed delivers it, each touching a small share of the store (where reading a table
# whole is never the cheaper plan, whatever the planner's statistics).
HISTORY_RELEASES = 1_000
RELEASES = 300
BATCH = 100


def _years(tmp_path: Path) -> list[Path]:
    """Two consecutive years and a third, messy (duplicates, lines out of order, malformed
    lines that are quarantined, early lines that are parked), whose persons partly return."""
    history = History()
    earlier = [
        generate(
            tmp_path / str(year), releases=HISTORY_RELEASES, seed=year, year=year, history=history
        )
        for year in (2022, 2023)
    ]
    last = generate(
        tmp_path / "2024", releases=RELEASES, seed=5, year=2024, messy=MessyRates(), history=history
    )
    return [s.files["detention.jsonl"].parent for s in (*earlier, last)]


@pytest.fixture
def pg_url(request: pytest.FixtureRequest) -> Iterator[str]:
    from tests.conftest import drop_pg_database, make_pg_database

    admin = request.getfixturevalue("pg_admin")
    url = make_pg_database(admin)
    yield url
    drop_pg_database(admin, url)


def test_no_statement_of_the_ingest_reads_a_growing_table_whole_postgresql(
    pg_url: str, tmp_path: Path
) -> None:
    from terugkeer.db.engine import make_engine
    from terugkeer.migrations import upgrade

    recorder = _Recorder()
    engine = make_engine(pg_url)

    @event.listens_for(engine, "connect")
    def _record(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.cursor_factory = recorder.cursor_class()

    upgrade(engine)
    demo_endpoints(engine)
    *earlier, last = _years(tmp_path)
    for folder in earlier:
        intake.ingest_files(engine, [folder / f for f in FEEDS])
    with engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")
    recorder.on = True
    result = intake.ingest_files(engine, [last / f for f in FEEDS], batch_size=BATCH)
    recorder.on = False
    assert result.applied > 1000
    assert result.quarantined > 0

    problems: dict[str, list[str]] = {}
    explained = 0
    raw = engine.raw_connection()
    try:
        cursor = raw.dbapi_connection.cursor()  # type: ignore[union-attr]
        cursor.execute("SET enable_seqscan = off")
        for sql, params in recorder.statements.items():
            head = sql.lstrip().split(None, 1)[0].upper()
            if head not in ("SELECT", "UPDATE", "DELETE", "INSERT", "WITH"):
                continue  # COPY, SET, transaction control, advisory locks
            if head == "INSERT" and "SELECT" not in sql.upper():
                continue  # a plain INSERT ... VALUES reads no table
            cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
            plan = cursor.fetchone()[0]
            plan = plan if isinstance(plan, list) else json.loads(plan)
            explained += 1
            found = whole_table_reads(plan[0]["Plan"])
            if found:
                problems[" ".join(sql.split())[:300]] = found
        raw.rollback()
    finally:
        raw.close()
        engine.dispose()
    assert explained > 20
    assert not problems, "\n".join(f"{found}: {sql}" for sql, found in problems.items())


def _walks_a_growing_table(detail: str) -> bool:
    """Whether an EXPLAIN QUERY PLAN line reads a growing table whole (SCAN) or by a code
    column alone (SEARCH … (kind=?))."""
    scan = re.match(r"SCAN (\w+)", detail)
    if scan:
        return scan.group(1) in GROWING
    search = re.match(r"SEARCH (\w+) USING (?:COVERING )?INDEX \w+ \((\w+)=\?\)$", detail)
    return bool(search and search.group(1) in GROWING and search.group(2) in CODE_COLUMNS)


def test_no_statement_of_the_ingest_scans_a_growing_table_sqlite(tmp_path: Path) -> None:
    from terugkeer.db.engine import make_engine
    from terugkeer.migrations import upgrade

    statements: set[str] = set()
    recording = [False]
    engine = make_engine(f"sqlite:///{tmp_path / 'plans.db'}")

    def trace(sql: str) -> None:
        if recording[0]:
            statements.add(sql)

    @event.listens_for(engine, "connect")
    def _trace(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.set_trace_callback(trace)

    upgrade(engine)
    demo_endpoints(engine)
    *earlier, last = _years(tmp_path)
    for folder in earlier:
        intake.ingest_files(engine, [folder / f for f in FEEDS])
    recording[0] = True
    result = intake.ingest_files(engine, [last / f for f in FEEDS], batch_size=BATCH)
    recording[0] = False
    assert result.applied > 1000
    assert result.quarantined > 0

    problems: dict[str, list[str]] = {}
    explained = 0
    shapes: set[str] = set()
    raw = engine.raw_connection()
    try:
        cursor = raw.dbapi_connection.cursor()  # type: ignore[union-attr]
        for sql in sorted(statements):
            head = sql.lstrip().split(None, 1)[0].upper()
            if head not in ("SELECT", "UPDATE", "DELETE", "WITH"):
                continue
            if re.search(r"\bWHERE 0$", sql):
                continue  # reserve_ids takes the write lock with a statement that reads nothing
            if re.search(r"ORDER BY \w+\.id DESC\s+LIMIT 1\b", sql):
                continue  # the newest row by its key (the audit chain's head): one row read
            if re.search(r"\bLIMIT\b", sql) and "ORDER BY" not in sql:
                continue  # whether any row is there: the first found ends the search
            shape = re.sub(r"'(?:[^']|'')*'|\b\d+(?:\.\d+)?\b", "?", sql)
            shape = re.sub(r"\?(?:, \?)+", "?", shape)
            if shape in shapes:
                continue
            shapes.add(shape)
            explained += 1
            found = [
                row[3]
                for row in cursor.execute(f"EXPLAIN QUERY PLAN {sql}").fetchall()
                if _walks_a_growing_table(row[3])
            ]
            if found:
                problems[" ".join(shape.split())[:300]] = found
    finally:
        raw.close()
        engine.dispose()
    assert explained > 20
    assert not problems, "\n".join(f"{found}: {sql}" for sql, found in problems.items())
