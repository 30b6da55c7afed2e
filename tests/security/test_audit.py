"""The audit log: append-only (the database refuses changes) and hash-chained (a change made
around the triggers is found)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from terugkeer.cli import app
from terugkeer.db.engine import make_engine
from terugkeer.migrations import upgrade
from terugkeer.security import audit
from terugkeer.security.roles import Principal, Role

STORES = pytest.mark.parametrize("empty_database_url", ["sqlite", "postgresql"], indirect=True)


@pytest.fixture
def fresh(empty_database_url: str) -> Iterator[Engine]:
    """An empty, migrated database of its own: these tests tamper with it."""
    engine = make_engine(empty_database_url)
    upgrade(engine)
    yield engine
    engine.dispose()


def write(engine: Engine, n: int) -> None:
    who = Principal("idv.medewerker", Role.IDV_OFFICER)
    with engine.begin() as conn:
        for i in range(n):
            audit.record(conn, who, "read", "victim_contact", f"V{i}", "informing the victim")


@STORES
def test_the_chain_verifies_and_finds_a_change(fresh: Engine) -> None:
    write(fresh, 5)
    report = audit.verify(fresh)
    assert (report.ok, report.entries) == (True, 5)
    with pytest.raises(DBAPIError, match="append-only"), fresh.begin() as conn:
        conn.execute(text("UPDATE audit_log SET actor = 'someone else' WHERE id = 3"))
    with pytest.raises(DBAPIError, match="append-only"), fresh.begin() as conn:
        conn.execute(text("DELETE FROM audit_log WHERE id = 3"))
    # Someone with the power to drop the triggers changes a row: the chain shows it.
    with fresh.begin() as conn:
        if fresh.dialect.name == "postgresql":
            conn.execute(text("ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update"))
        else:
            conn.execute(text("DROP TRIGGER audit_log_no_update"))
            conn.execute(text("DROP TRIGGER audit_log_no_delete"))
        conn.execute(text("UPDATE audit_log SET record_id = 'V9' WHERE id = 3"))
    broken = audit.verify(fresh)
    assert (broken.ok, broken.first_bad_id) == (False, 3)
    assert "changed" in (broken.problem or "")


@STORES
def test_a_removed_entry_breaks_the_chain_and_the_command_says_so(
    fresh: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from terugkeer.config import get_settings

    write(fresh, 4)
    monkeypatch.setenv("TERUGKEER_DATABASE_URL", fresh.url.render_as_string(hide_password=False))
    get_settings.cache_clear()
    try:
        assert CliRunner().invoke(app, ["audit", "verify"]).exit_code == 0
        with fresh.begin() as conn:
            if fresh.dialect.name == "postgresql":
                conn.execute(text("ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update"))
            else:
                conn.execute(text("DROP TRIGGER audit_log_no_delete"))
            conn.execute(text("DELETE FROM audit_log WHERE id = 2"))
        result = CliRunner().invoke(app, ["audit", "verify"])
        assert result.exit_code == 1
        assert "broken at entry 3" in result.stdout
    finally:
        get_settings.cache_clear()
