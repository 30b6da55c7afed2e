"""The audit log: append-only (the database refuses changes) and hash-chained (a change made
around the triggers is found)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from terugkeer.cli import app
from terugkeer.db.engine import make_engine
from terugkeer.migrations import upgrade
from terugkeer.notify.worker import CHECKS, run_checks
from terugkeer.security import audit
from terugkeer.security.crypto import FieldCipher, generate_key, parse_keys
from terugkeer.security.roles import Principal, Role
from terugkeer.web.portal.auditor import chain_text
from tests.plans import assert_served_by, statements
from tests.web.portal.test_portal_auditor import assert_dutch

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
    assert_dutch(chain_text(broken.problem, "nl"))


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


# -- a log that survives its owner (issue 13, finding 2) -----------------------------------------
# Each attack is done as the database's owner would: the triggers dropped or disabled first.


def lift_triggers(engine: Engine) -> None:
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("ALTER TABLE audit_log DISABLE TRIGGER USER"))
        else:
            for name in ("audit_log_no_update", "audit_log_no_delete", "audit_log_no_replace"):
                conn.execute(text(f"DROP TRIGGER IF EXISTS {name}"))


def checkpointed(engine: Engine, path: Path, n: int = 6) -> None:
    """``n`` entries, pinned by a checkpoint; the chain verifies against it."""
    write(engine, n)
    assert audit.write_checkpoint(engine, path=path) is not None
    report = audit.verify(engine, checkpoint_file=path)
    assert (report.ok, report.entries, report.checkpoint) == (True, n, n)


def broken(engine: Engine, path: Path) -> str:
    report = audit.verify(engine, checkpoint_file=path)
    assert not report.ok
    assert_dutch(chain_text(report.problem, "nl"))  # the auditor's page says it in Dutch
    return report.problem or ""


def recompute(engine: Engine, *, strip_marks: bool = False) -> None:
    """Rewrite every entry's links as the (public) unkeyed formula gives them: what someone
    without the key can do after changing a row."""
    with engine.begin() as conn:
        rows = conn.execute(text("SELECT * FROM audit_log ORDER BY id")).all()
        prev = audit.GENESIS
        for r in rows:
            at = r.at if isinstance(r.at, datetime) else datetime.fromisoformat(r.at)
            digest = audit.entry_hash(
                prev, at.replace(tzinfo=at.tzinfo or UTC), r.actor, r.role, r.action,
                r.record_type, r.record_id, r.purpose, r.details,
            )  # fmt: skip
            conn.execute(
                text(
                    "UPDATE audit_log SET prev_hash = :p, hash = :h"
                    + (", mac = NULL" if strip_marks else "")
                    + " WHERE id = :id"
                ),
                {"p": prev, "h": digest, "id": r.id},
            )
            prev = digest


@STORES
def test_cutting_the_tail_is_found_by_the_checkpoint(fresh: Engine, tmp_path: Path) -> None:
    path = tmp_path / "checkpoints"
    checkpointed(fresh, path)
    lift_triggers(fresh)
    with fresh.begin() as conn:
        conn.execute(text("DELETE FROM audit_log WHERE id > 3"))
    assert audit.verify(fresh, checkpoint_file=tmp_path / "none").ok  # without: not seen
    assert "entries were removed" in broken(fresh, path)


@STORES
def test_deleting_everything_is_found_by_the_checkpoint(fresh: Engine, tmp_path: Path) -> None:
    path = tmp_path / "checkpoints"
    checkpointed(fresh, path)
    lift_triggers(fresh)
    with fresh.begin() as conn:
        conn.execute(text("DELETE FROM audit_log"))
    assert "entries were removed" in broken(fresh, path)


@STORES
def test_rewriting_with_recomputed_hashes_is_found(fresh: Engine, tmp_path: Path) -> None:
    path = tmp_path / "checkpoints"
    checkpointed(fresh, path)
    lift_triggers(fresh)
    with fresh.begin() as conn:
        conn.execute(text("UPDATE audit_log SET record_id = 'V99' WHERE id = 3"))
    recompute(fresh)
    # the links fit again; the marks, made with a key the database does not hold, do not
    report = audit.verify(fresh, checkpoint_file=path)
    assert (report.ok, report.first_bad_id) == (False, 3)
    assert "key mark" in (report.problem or "")
    assert_dutch(chain_text(report.problem, "nl"))
    # without the marks (made to look like entries from before marks): the checkpoint differs
    recompute(fresh, strip_marks=True)
    assert "differs from the checkpoint" in broken(fresh, path)


@STORES
def test_replacing_an_entry_is_refused_and_found(fresh: Engine, tmp_path: Path) -> None:
    path = tmp_path / "checkpoints"
    checkpointed(fresh, path)
    if fresh.dialect.name == "postgresql":
        replace = (
            "INSERT INTO audit_log (id, at, actor, role, action, record_type, record_id, purpose,"
            " details, prev_hash, hash) SELECT id, at, 'iemand', role, action, record_type,"
            " record_id, purpose, details, prev_hash, hash FROM audit_log WHERE id = 3"
            " ON CONFLICT (id) DO UPDATE SET actor = EXCLUDED.actor"
        )
    else:
        replace = (
            "INSERT OR REPLACE INTO audit_log (id, at, actor, role, action, record_type,"
            " record_id, purpose, details, prev_hash, hash, mac) SELECT id, at, 'iemand', role,"
            " action, record_type, record_id, purpose, details, prev_hash, hash, mac"
            " FROM audit_log WHERE id = 3"
        )
    with pytest.raises(DBAPIError, match="append-only"), fresh.begin() as conn:
        conn.execute(text(replace))
    lift_triggers(fresh)
    with fresh.begin() as conn:
        conn.execute(text(replace))
    report = audit.verify(fresh, checkpoint_file=path)
    assert (report.ok, report.first_bad_id) == (False, 3)


@STORES
def test_truncate_is_refused_where_the_store_has_it_and_found(
    fresh: Engine, tmp_path: Path
) -> None:
    path = tmp_path / "checkpoints"
    checkpointed(fresh, path)
    # SQLite has no TRUNCATE: an unqualified DELETE is its truncate optimisation
    truncate = (
        "TRUNCATE audit_log" if fresh.dialect.name == "postgresql" else "DELETE FROM audit_log"
    )
    with pytest.raises(DBAPIError, match="append-only"), fresh.begin() as conn:
        conn.execute(text(truncate))
    lift_triggers(fresh)
    with fresh.begin() as conn:
        conn.execute(text(truncate))
    assert "entries were removed" in broken(fresh, path)


@STORES
def test_entries_from_before_the_marks_still_verify(fresh: Engine, tmp_path: Path) -> None:
    """Entries written before migration 0008 (no mark) verify as a prefix of the chain; an
    unmarked entry after marked ones is a break."""
    write(fresh, 3)
    lift_triggers(fresh)
    with fresh.begin() as conn:
        conn.execute(text("UPDATE audit_log SET mac = NULL"))  # as the older code wrote them
    write(fresh, 2)
    report = audit.verify(fresh, checkpoint_file=tmp_path / "none")
    assert (report.ok, report.entries) == (True, 5)
    with fresh.begin() as conn:
        conn.execute(text("UPDATE audit_log SET mac = NULL WHERE id = 5"))
    report = audit.verify(fresh, checkpoint_file=tmp_path / "none")
    assert (report.ok, report.first_bad_id) == (False, 5)


@STORES
def test_a_forged_or_unverifiable_checkpoint_fails_and_a_new_key_takes_over(
    fresh: Engine, tmp_path: Path
) -> None:
    path = tmp_path / "checkpoints"
    k1 = FieldCipher((("k1", parse_keys(f"k1:{generate_key()}")[0][1]),))
    k2 = FieldCipher((("k2", parse_keys(f"k2:{generate_key()}")[0][1]),))
    write(fresh, 3)
    audit.write_checkpoint(fresh, path=path, cipher=k1)
    # the entries are marked with the development key, retired here: the checkpoint pins them
    assert audit.verify(fresh, k1, path).ok
    retired = audit.verify(fresh, k2, path).problem
    assert "not configured" in (retired or "")
    assert_dutch(chain_text(retired, "nl"))
    audit.write_checkpoint(fresh, path=path, cipher=k2)
    assert audit.verify(fresh, k2, path).ok
    # a checkpoint written by someone without the key
    line = json.loads(path.read_text(encoding="utf-8").splitlines()[-1])
    line["entries"], line["last_id"] = 0, 0
    with path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(line) + "\n")
    forged = audit.verify(fresh, k2, path).problem
    assert "wrong signature" in (forged or "")
    assert_dutch(chain_text(forged, "nl"))


@STORES
def test_the_worker_writes_a_checkpoint_every_cycle_and_the_command_checks_it(
    fresh: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from terugkeer.config import get_settings

    path = tmp_path / "checkpoints"
    monkeypatch.setenv("TERUGKEER_DATABASE_URL", fresh.url.render_as_string(hide_password=False))
    monkeypatch.setenv("TERUGKEER_AUDIT_CHECKPOINT_FILE", str(path))
    get_settings.cache_clear()
    try:
        write(fresh, 2)
        assert run_checks(fresh, checks=[c for c in CHECKS if c.name == "audit_checkpoint"])[
            "audit_checkpoint"
        ] == {"configured": True, "written": True, "last_id": 2, "entries": 2}
        result = CliRunner().invoke(app, ["audit", "verify"])
        assert result.exit_code == 0
        assert "up to the checkpoint of entry 2" in result.stdout
        lift_triggers(fresh)
        with fresh.begin() as conn:
            conn.execute(text("DELETE FROM audit_log"))
        result = CliRunner().invoke(app, ["audit", "verify"])
        assert result.exit_code == 1
        assert "entries were removed" in result.stdout
    finally:
        get_settings.cache_clear()


@STORES
def test_the_auditors_search_by_actor_and_by_period_reads_their_indexes(fresh: Engine) -> None:
    """A search by actor or by period does not read the whole log (migration 0017): the
    page and its count are served by ``ix_audit_log_actor`` and ``ix_audit_log_at``."""
    write(fresh, 30)
    auditor = Principal("auditor-1", Role.AUDITOR)
    now = datetime.now(UTC)
    searches = {  # the period first: each search adds the auditor's own entry
        "ix_audit_log_at": {"since": now - timedelta(hours=1), "until": now + timedelta(hours=1)},
        "ix_audit_log_actor": {"actor": "idv.medewerker"},
    }
    for index, search in searches.items():
        searched = lambda sql: "WHERE audit_log.actor" in sql or "WHERE audit_log.at" in sql  # noqa: E731
        with statements(fresh, searched) as asked, fresh.begin() as conn:
            page = audit.search_entries(conn, auditor, limit=10, **search)
        assert (page.total, len(page.items)) == (30, 10)
        assert [e.id for e in page.items] == sorted((e.id for e in page.items), reverse=True)
        assert len(asked) == 2  # the count and the page
        assert_served_by(fresh, asked, index)


@STORES
def test_the_log_runs_past_two_billion_entries(fresh: Engine) -> None:
    """Ids beyond a 32-bit integer (migration 0018): the portal writes 25 rows a page and
    would run through 2^31 in months. SQLite's rowid is 64-bit already."""
    if fresh.dialect.name != "postgresql":
        pytest.skip("SQLite's rowid is 64-bit")
    write(fresh, 2)
    with fresh.begin() as conn:
        conn.execute(text("SELECT setval('audit_log_id_seq', 3000000000)"))
    write(fresh, 2)
    assert audit.verify(fresh).ok
    with fresh.connect() as conn:
        assert conn.execute(text("SELECT max(id) FROM audit_log")).scalar_one() == 3000000002
