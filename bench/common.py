"""Helpers shared by the benchmarks: temporary databases on each store."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

# synthetic data only: the product refuses to guess its environment (config.check_environment)
os.environ.setdefault("TERUGKEER_ENVIRONMENT", "development")
PG_ADMIN_URL = os.environ.get(
    "TERUGKEER_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


KEPT_PREFIX = "terugkeer_bench_kept_"  # PostgreSQL stores kept between benchmark runs


def _pg_url(database: str) -> str:
    return make_url(PG_ADMIN_URL).set(database=database).render_as_string(hide_password=False)


def kept_exists(name: str) -> bool:
    admin = create_engine(PG_ADMIN_URL)
    with admin.connect() as conn:
        found = conn.execute(
            text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": KEPT_PREFIX + name}
        ).first()
    admin.dispose()
    return found is not None


@contextmanager
def temporary_database(
    store: str, folder: Path, *, keep: str | None = None, template: str | None = None
) -> Iterator[str]:
    """The SQLAlchemy URL of a new database on ``store``; dropped afterwards. On PostgreSQL,
    ``template`` starts it as a copy of the store kept as that name (a file copy: seconds for
    ten years of history), and ``keep`` keeps it under that name instead of dropping it (a
    store kept earlier under the name is replaced), for later runs to copy."""
    if store == "sqlite":
        if keep or template:
            raise ValueError("only PostgreSQL stores are kept")
        path = folder / f"{uuid.uuid4().hex[:8]}.db"
        yield f"sqlite:///{path}"
        return
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"terugkeer_bench_{uuid.uuid4().hex[:10]}"
    source = f' TEMPLATE "{KEPT_PREFIX + template}"' if template else ""
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"{source}'))
    kept = False
    try:
        yield _pg_url(name)
        kept = keep is not None
    finally:
        with admin.connect() as conn:
            if kept:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{KEPT_PREFIX}{keep}" WITH (FORCE)'))
                conn.execute(text(f'ALTER DATABASE "{name}" RENAME TO "{KEPT_PREFIX}{keep}"'))
            else:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def postgres_available() -> bool:
    try:
        engine = create_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
    except Exception:
        return False
    return True
