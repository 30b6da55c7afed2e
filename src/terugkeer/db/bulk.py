"""Bulk writes through the driver's own ``executemany``, for the ingest hot path.

SQLAlchemy's per-parameter processing costs more than the insert itself at tens of thousands
of rows per second. These helpers take plain tuples and adapt values the way SQLAlchemy's
types would store them on each dialect (so reading them back through the tables in
``db/tables.py`` gives the same values), inside the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Table, any_, bindparam
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

# Table and column names in the SQL below come from db/tables.py, never from input; values
# always travel as parameters. Hence the S608 exemptions.


def sqlite_datetime(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError(f"naive datetime [{value.isoformat()}] cannot be stored")
    # the format SQLAlchemy's DateTime uses on SQLite, in UTC like UTCDateTime
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.isoformat(" ", "microseconds")[:26]  # without the "+00:00"


def _sqlite_date(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


def _adapter(
    conn: Connection, table: Table, columns: Sequence[str]
) -> tuple[str, Callable[[Sequence[Any]], Sequence[Any]] | None]:
    """The placeholder and a row converter (None: rows go as they are)."""
    if conn.dialect.name != "sqlite":
        return "%s", None
    converters: list[tuple[int, Callable[[Any], Any]]] = []
    for i, name in enumerate(columns):
        column_type = table.c[name].type
        # a TypeDecorator (UTCDateTime) reports `object`; its implementation knows
        python_type = getattr(column_type, "impl", column_type).python_type
        if python_type is datetime:
            converters.append((i, sqlite_datetime))
        elif python_type is date:
            converters.append((i, _sqlite_date))
    if not converters:
        return "?", None

    # Rows share value objects (one receive time per batch; a period's times are its
    # events'): each distinct object is formatted once. Keys are ids, valid because the
    # caller's rows keep every object alive while one adapter is in use.
    formatted: dict[int, Any] = {}

    def convert(row: Sequence[Any]) -> Sequence[Any]:
        values = list(row)
        for i, fn in converters:
            v = values[i]
            if v is not None:
                text = formatted.get(id(v))
                if text is None:
                    text = formatted[id(v)] = fn(v)
                values[i] = text
        return values

    return "?", convert


def insert_rows(
    conn: Connection, table: Table, columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    """INSERT ``rows`` (tuples in the order of ``columns``) into ``table``: with COPY on
    PostgreSQL, with ``executemany`` on SQLite."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            with cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        finally:
            cursor.close()
        return
    mark, adapt = _adapter(conn, table, columns)
    sql = (
        f"INSERT INTO {table.name} ({', '.join(columns)}) "  # noqa: S608  # nosec B608
        f"VALUES ({', '.join([mark] * len(columns))})"
    )
    execute_many(conn, sql, rows if adapt is None else [adapt(r) for r in rows])


def update_rows(
    conn: Connection, table: Table, key: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    """UPDATE ``table`` SET columns WHERE key = last value of each row tuple."""
    if not rows:
        return
    mark, adapt = _adapter(conn, table, [*columns, key])
    sql = (
        f"UPDATE {table.name} SET {', '.join(f'{c} = {mark}' for c in columns)} "  # noqa: S608  # nosec B608
        f"WHERE {key} = {mark}"
    )
    execute_many(conn, sql, rows if adapt is None else [adapt(r) for r in rows])


def execute_many(conn: Connection, sql: str, rows: Sequence[Sequence[Any]]) -> None:
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.executemany(sql, rows)
    finally:
        cursor.close()


def reserve_ids(conn: Connection, table: Table, n: int) -> list[int]:
    """``n`` new primary-key values for ``table``, safe against concurrent writers: a sequence
    on PostgreSQL; on SQLite the write lock is taken first, so max(id) cannot move."""
    if n == 0:
        return []
    if conn.dialect.name == "postgresql":
        seq = f"{table.name}_id_seq"
        rows = conn.exec_driver_sql(
            f"SELECT nextval('{seq}') FROM generate_series(1, {int(n)})"  # noqa: S608  # nosec B608
        ).all()
        return [int(r[0]) for r in rows]
    # Any write statement takes SQLite's RESERVED lock for the rest of the transaction.
    conn.exec_driver_sql(f"UPDATE {table.name} SET id = id WHERE 0")  # noqa: S608  # nosec B608
    top = conn.exec_driver_sql(f"SELECT coalesce(max(id), 0) FROM {table.name}")  # noqa: S608  # nosec B608
    start = int(top.scalar_one())
    return list(range(start + 1, start + 1 + n))


def placeholders(conn: Connection, n: int) -> str:
    mark = "?" if conn.dialect.name == "sqlite" else "%s"
    return ", ".join([mark] * n)


def read_datetime(value: Any) -> datetime | None:
    """A UTCDateTime column value read through the driver (string on SQLite)."""
    if value is None or isinstance(value, datetime):
        return value if value is None or value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


def read_date(value: Any) -> date | None:
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(value)


def select_rows(conn: Connection, sql: str, params: Sequence[Any]) -> list[Any]:
    """Rows of a driver-level SELECT (tuples), for hot paths; ``sql`` uses the dialect's
    placeholders (see :func:`placeholders`)."""
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql, tuple(params))
        return list(cursor.fetchall())
    finally:
        cursor.close()


IN_CHUNK = 900  # bound parameters per IN (...) query on SQLite


def among(
    conn: Connection, column: ColumnElement[Any], values: Sequence[Any]
) -> ColumnElement[bool]:
    """``column IN values`` for values known at run time (at most :data:`IN_CHUNK` of them on
    SQLite: see ``detention.store.chunks``). On PostgreSQL one array parameter, ``= ANY(...)``:
    a list of bound parameters is not a constant to the planner, so on a sequential scan
    (a table growing faster than its statistics, as in a bulk ingest) each row was compared
    with every value; a 900-value lookup in 30,000 obligations took 0.44 s that way, against
    10 ms with the array (docs/architecture.md, "Lookups by many values")."""
    if conn.dialect.name == "postgresql":
        return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))
    return column.in_(values)


class unindexed(FunctionElement[Any]):
    """A text ``column`` as a filter that no index may serve, for a code column (``kind``,
    ``status``) beside a lookup by key: ``+column`` on SQLite (its documented way to keep a
    term from choosing an index), ``(column || '')`` on PostgreSQL.

    SQLite keeps no statistics, and PostgreSQL's lag behind a bulk ingest (autovacuum
    analyses a table once a share of it has changed). With either, the planner took the index
    of the code for a search by the code alone, or ANDed it with the key's index, and read
    every stored row with that code: a batch's periods' events among every stored event of
    eight kinds, a cost that grew with each year of history (docs/benchmarks.md, *growth*).
    The key's index finds a batch's few rows; the code only filters them."""

    inherit_cache = True
    name = "unindexed"

    def __init__(self, column: ColumnElement[str]) -> None:
        super().__init__(column)
        self.type = column.type


@compiles(unindexed)
def _unindexed(element: unindexed, compiler: SQLCompiler, **kw: Any) -> str:
    return f"({compiler.process(element.clauses, **kw)} || '')"


@compiles(unindexed, "sqlite")
def _unindexed_sqlite(element: unindexed, compiler: SQLCompiler, **kw: Any) -> str:
    return "+" + compiler.process(element.clauses, **kw)


def select_in(conn: Connection, sql: str, column: str, values: Sequence[Any]) -> list[Any]:
    """Rows of ``sql`` (a driver-level SELECT without WHERE) restricted to ``column`` in
    ``values``: one ``= ANY(array)`` query on PostgreSQL, ``IN`` lists of at most
    :data:`IN_CHUNK` parameters on SQLite."""
    if not values:
        return []
    if conn.dialect.name == "postgresql":
        return select_rows(conn, f"{sql} WHERE {column} = ANY(%s)", (list(values),))
    rows: list[Any] = []
    for i in range(0, len(values), IN_CHUNK):
        chunk = values[i : i + IN_CHUNK]
        rows.extend(
            select_rows(conn, f"{sql} WHERE {column} IN ({placeholders(conn, len(chunk))})", chunk)
        )
    return rows


def chunks(seq: Sequence[Any], size: int = IN_CHUNK) -> Iterable[Sequence[Any]]:
    for i in range(0, len(seq), size):
        yield seq[i : i + size]
