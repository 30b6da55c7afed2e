"""Engine creation for both stores."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url

from terugkeer.config import get_settings

# Set on every SQLite connection. Bulk ingest writes index pages all over the file: a 64 MiB
# page cache and a checkpoint every ~32 MiB of WAL (instead of every 4 MiB) write each page
# less often.
SQLITE_PRAGMAS = (
    "PRAGMA foreign_keys=ON",
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA busy_timeout=30000",
    "PRAGMA cache_size=-65536",
    "PRAGMA wal_autocheckpoint=8000",
)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    for pragma in SQLITE_PRAGMAS:
        cursor.execute(pragma)
    cursor.close()


def make_engine(url: str | None = None, **kwargs: Any) -> Engine:
    """An engine for ``url`` (default: the configured database). Creates the SQLite folder.
    Errors and logs never carry bound values (``hide_parameters``): they can be personal data."""
    url = url or get_settings().resolved_database_url()
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, **{"hide_parameters": True, **kwargs})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if parsed.drivername == "postgresql":
        url = parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    engine = create_engine(url, pool_pre_ping=True, **{"hide_parameters": True, **kwargs})
    event.listen(engine, "connect", _postgresql_settings)
    return engine


def _postgresql_settings(dbapi_connection: Any, _record: Any) -> None:
    # psycopg prepares a statement it has run five times, and PostgreSQL may then plan it once
    # for any parameters. For `column = ANY(array)` (db.bulk.among) such a generic plan
    # compares each row with every value instead of probing a hash of them: 55 ms instead
    # of under 1 ms per lookup of 900 ids. Plan for the actual values every time.
    with dbapi_connection.cursor() as cursor:
        cursor.execute("SET plan_cache_mode = force_custom_plan")
    dbapi_connection.commit()


ConnOrEngine = Connection | Engine


@contextmanager
def transaction(target: ConnOrEngine) -> Iterator[Connection]:
    """A connection in a transaction: a new one from an engine (committed on success), or the
    caller's connection as it is (the caller's transaction decides)."""
    if isinstance(target, Engine):
        with target.begin() as conn:
            yield conn
    else:
        yield target


# -- planner statistics on PostgreSQL ------------------------------------------------------

STALE_SHARE = 0.1  # a table is analysed again once a tenth of it changed (autovacuum's default)
CHECK_EVERY_S = 60.0  # how often a running ingest looks (one query on the statistics views)
_checked: WeakKeyDictionary[Engine, float] = WeakKeyDictionary()


def refresh_statistics(engine: Engine, *, every: float = 0.0) -> list[str]:
    """On PostgreSQL, ``ANALYZE`` every table of the store that has no statistics yet or whose
    rows changed by more than :data:`STALE_SHARE` since it was last analysed; the tables
    analysed. With ``every``, at most once in that many seconds per engine (a no-op in
    between). Nothing on SQLite, whose planner keeps no statistics (the hot paths' queries are
    written to need none: ``db.bulk.unindexed``).

    This is what autovacuum does, done by terugkeer itself: where autovacuum is off (as in
    this project's CI cluster) or lags a bulk ingest, the planner plans for an empty table and
    reads tables whole that grow every year. Ten national years on PostgreSQL took 204 µs an
    event in the first year and 474 in the tenth, with sequential scans of the events and
    obligations for a batch's few thousand periods (docs/benchmarks.md, *growth*)."""
    if engine.dialect.name != "postgresql":
        return []
    now = time.monotonic()
    if every and now - _checked.get(engine, -every) < every:
        return []
    _checked[engine] = now
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT s.relname, c.reltuples, s.n_mod_since_analyze "
                "FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid "
                "WHERE s.schemaname = current_schema()"
            )
        ).all()
    stale = sorted(
        name
        for name, tuples, changed in rows
        if tuples < 0 or changed > max(50.0, STALE_SHARE * tuples)
    )
    if stale:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for name in stale:  # names from the catalogue, quoted
                conn.execute(text(f'ANALYZE "{name}"'))
    return stale
