"""Test fixtures: every database test runs on SQLite and on PostgreSQL.

PostgreSQL is the local server by default, or ``TERUGKEER_TEST_POSTGRES_URL``. When it cannot
be reached the PostgreSQL variants are skipped and the summary says so loudly; with
``TERUGKEER_REQUIRE_POSTGRES=1`` (as in CI) they fail instead.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from terugkeer.config import get_settings
from terugkeer.db.engine import make_engine
from terugkeer.logs import configure as configure_logging
from terugkeer.migrations import schema_metadata, upgrade
from tests.logscan import personal_data_in

metadata = schema_metadata()

PG_ADMIN_URL = os.environ.get(
    "TERUGKEER_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
REQUIRE_PG = os.environ.get("TERUGKEER_REQUIRE_POSTGRES") == "1"
# the product refuses to guess its environment (config.check_environment): the tests say it
os.environ.setdefault("TERUGKEER_ENVIRONMENT", "development")
_pg_skip_reason: list[str] = []


def _pg_admin() -> Engine | None:
    url = make_url(PG_ADMIN_URL)
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    engine = create_engine(url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            conn.execute(text("select 1"))
    except Exception as e:  # any failure to connect means: no server for these tests
        engine.dispose()
        _pg_skip_reason.append(f"PostgreSQL at {url.render_as_string()} unreachable: {e}")
        return None
    return engine


def make_pg_database(admin: Engine) -> str:
    """A fresh, empty PostgreSQL database; returns its URL."""
    name = f"terugkeer_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    return admin.url.set(database=name).render_as_string(hide_password=False)


def drop_pg_database(admin: Engine, url: str) -> None:
    name = make_url(url).database
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[Engine]:
    admin = _pg_admin()
    if admin is None:
        if REQUIRE_PG:
            pytest.fail(_pg_skip_reason[-1])
        pytest.skip(_pg_skip_reason[-1])
    yield admin
    admin.dispose()


@pytest.fixture
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL of an empty database of the requested store (for migration tests)."""
    store = request.param
    if store == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    admin = request.getfixturevalue("pg_admin")
    url = make_pg_database(admin)
    yield url
    drop_pg_database(admin, url)


@pytest.fixture(scope="session")
def _sqlite_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}")
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def _pg_engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    admin = request.getfixturevalue("pg_admin")
    url = make_pg_database(admin)
    engine = make_engine(url)
    upgrade(engine)
    yield engine
    engine.dispose()
    drop_pg_database(admin, url)


def empty_all(engine: Engine) -> None:
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            names = ", ".join(t.name for t in metadata.sorted_tables)
            # the audit log refuses TRUNCATE (migration 0008): the tests' owner lifts that
            conn.execute(text("ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_truncate"))
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
            conn.execute(text("ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_truncate"))
        else:
            # the audit log refuses DELETE (append-only triggers): it carries on across tests
            # deleting notices appends to their inbox tallies (migration 0015): those go last
            last = ("audit_log", "inbox_tallies")
            for table in reversed(metadata.sorted_tables):
                if table.name not in last:
                    conn.execute(table.delete())
            conn.execute(metadata.tables["inbox_tallies"].delete())


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest) -> Engine:
    """A migrated, empty database on each store."""
    name = "_sqlite_engine" if request.param == "sqlite" else "_pg_engine"
    eng: Engine = request.getfixturevalue(name)
    empty_all(eng)
    return eng


@pytest.fixture
def cli_db(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """The store of ``engine`` as the command line's configured database."""
    monkeypatch.setenv("TERUGKEER_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    get_settings.cache_clear()
    yield engine
    get_settings.cache_clear()


# -- no personal data in the logs ---------------------------------------------------------------

_LOG_TEE = Path(
    os.environ.setdefault(
        "TERUGKEER_LOG_TEE",
        str(Path(tempfile.gettempdir()) / f"terugkeer-test-log-{os.getpid()}.txt"),
    )
)
_leaks: list[str] = []


def pytest_configure(config: pytest.Config) -> None:
    _LOG_TEE.write_text("", encoding="utf-8")
    configure_logging("info")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run when anything logged looks like a BSN, a name or contact details."""
    if not _LOG_TEE.exists():
        return
    _leaks.extend(personal_data_in(_LOG_TEE.read_text(encoding="utf-8").splitlines()))
    _LOG_TEE.unlink(missing_ok=True)
    if _leaks:
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _leaks:
        terminalreporter.section("personal data in the log output", sep="!", red=True, bold=True)
        for line in _leaks[:20]:
            terminalreporter.write_line(line, red=True)
    if _pg_skip_reason:
        terminalreporter.section("PostgreSQL tests SKIPPED", sep="!", red=True, bold=True)
        terminalreporter.write_line(_pg_skip_reason[-1], red=True)
        terminalreporter.write_line(
            "Start PostgreSQL or set TERUGKEER_TEST_POSTGRES_URL; CI sets TERUGKEER_REQUIRE_POSTGRES=1.",
            red=True,
        )
