"""Planner statistics kept by terugkeer itself (db.engine.refresh_statistics): a table with
none, or changed by more than a tenth since its last ANALYZE, is analysed; on SQLite nothing.
Only the table the test writes is asserted on: the server's counters of the others may carry
what earlier tests on the same database did."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, insert, text

from terugkeer.db.engine import refresh_statistics
from terugkeer.migrations import upgrade
from terugkeer.notify.worker import CHECKS, run_checks
from terugkeer.security.tables import login_throttle as throttle


def _rows(n: int, start: int = 0) -> list[dict[str, object]]:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    return [{"key": f"k{i}", "failures": 0, "window_start": at} for i in range(start, start + n)]


def _insert(engine: Engine, rows: list[dict[str, object]]) -> None:
    with engine.begin() as conn:
        conn.execute(insert(throttle), rows)
        conn.execute(text("SELECT pg_stat_force_next_flush()"))  # counted for others at once


def test_stale_tables_are_analysed_and_fresh_ones_left(engine: Engine) -> None:
    upgrade(engine)
    if engine.dialect.name != "postgresql":
        assert refresh_statistics(engine) == []
        return
    with engine.begin() as conn:  # a table new to the server: no statistics yet
        conn.execute(text("DROP TABLE IF EXISTS statistics_probe"))
        conn.execute(text("CREATE TABLE statistics_probe (id integer)"))
    try:
        assert "statistics_probe" in refresh_statistics(engine)
        assert "statistics_probe" not in refresh_statistics(engine)  # analysed: has them now
    finally:
        with engine.begin() as conn:
            conn.execute(text("DROP TABLE statistics_probe"))
    refresh_statistics(engine)  # whatever earlier tests left stale
    assert "login_throttle" not in refresh_statistics(engine)  # not changed since
    _insert(engine, _rows(1000))
    assert "login_throttle" in refresh_statistics(engine)
    with engine.connect() as conn:
        tuples = conn.execute(
            text("SELECT reltuples FROM pg_class WHERE relname = 'login_throttle'")
        ).scalar_one()
    assert tuples == 1000  # the planner now knows the table's size
    _insert(engine, _rows(50, 1000))  # 5 % more: below the share that calls for another look
    assert "login_throttle" not in refresh_statistics(engine)
    _insert(engine, _rows(100, 1050))
    assert "login_throttle" in refresh_statistics(engine)
    _insert(engine, _rows(1000, 2000))
    assert refresh_statistics(engine, every=3600) == []  # looked less than an hour ago
    assert "login_throttle" in refresh_statistics(engine)


def test_the_workers_check_cycle_analyses_the_store(engine: Engine) -> None:
    """The worker's check cycle keeps the statistics too: a store the portal, the imports and
    the dispatcher write to, with no ingest running, is analysed all the same."""
    upgrade(engine)
    statistics = [check for check in CHECKS if check.name == "statistics"]
    if engine.dialect.name != "postgresql":
        assert run_checks(engine, checks=statistics)["statistics"] == {"analysed": []}
        return
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS statistics_probe"))
        conn.execute(text("CREATE TABLE statistics_probe (id integer)"))
    try:
        results = run_checks(engine, checks=statistics)
        assert results["errors"] == {}
        assert "statistics_probe" in results["statistics"]["analysed"]
        again = run_checks(engine, checks=statistics)["statistics"]["analysed"]
        assert "statistics_probe" not in again
    finally:
        with engine.begin() as conn:
            conn.execute(text("DROP TABLE statistics_probe"))
