"""Query plans in tests: capture the statements a piece of code sends, then read back how
each store would run them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, event


@contextmanager
def statements(engine: Engine, wanted: Callable[[str], bool]) -> Iterator[list[tuple[str, Any]]]:
    """The statements (with their parameters) sent to ``engine`` inside the block that
    ``wanted`` keeps."""
    asked: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if wanted(statement):
            asked.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        yield asked
    finally:
        event.remove(engine, "before_cursor_execute", capture)


def assert_served_by(
    engine: Engine, asked: list[tuple[str, Any]], index: str, *, in_order: bool = False
) -> None:
    """Each statement's plan uses ``index``. On PostgreSQL sequential scans are forbidden
    first: on a test's handful of rows one would do; with ``in_order``, sorts too: the
    index must give the statement's order (on a handful of rows sorting them is cheaper,
    and the planner's choice then depends on the statistics other tests left)."""
    assert asked
    postgres = engine.dialect.name == "postgresql"
    with engine.begin() as conn:
        if postgres:
            conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
            if in_order:
                conn.exec_driver_sql("SET LOCAL enable_sort = off")
        for statement, parameters in asked:
            explain = "EXPLAIN " if postgres else "EXPLAIN QUERY PLAN "
            plan = " ".join(
                str(r[-1]) for r in conn.exec_driver_sql(explain + statement, parameters)
            )
            assert index in plan, plan
