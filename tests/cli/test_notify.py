"""`terugkeer reconcile`, `terugkeer notify backfill`, `notify explain` and `notify
obligations`, end to end on each store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Engine, update
from typer.testing import CliRunner

from terugkeer.cli import app
from terugkeer.config import get_settings
from terugkeer.notify.delivery.dispatch import dispatch_once
from terugkeer.notify.tables import obligations
from tests.feedutil import intake, msg
from tests.notify.assurance.test_reconcile import feed, remove, stored

runner = CliRunner()


def acknowledge_all(engine: Engine) -> None:
    """Everything told and acknowledged: the state of a quiet day (the notices delivered
    by the dispatcher, so that the reconciliation finds the proof of each)."""
    dispatch_once(engine, limit=10_000)
    with engine.begin() as conn:
        conn.execute(
            update(obligations)
            .where(obligations.c.status != "voided")
            .values(
                status="acknowledged",
                delivered_at=obligations.c.created_at,
                acknowledged_at=obligations.c.created_at,
            )
        )


def test_reconcile_exit_codes_and_json(cli_db: Engine) -> None:
    feed(cli_db, intake("e1"), msg("escape", "e2", 20))
    acknowledge_all(cli_db)
    result = runner.invoke(app, ["reconcile"])
    assert result.exit_code == 0, result.output
    assert "OK: missing_obligation 0" in result.stdout

    remove(cli_db, ["mayor.escape|P1|escape:e2|-"])
    result = runner.invoke(app, ["reconcile", "--json"])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["ok"] is False
    assert report["counts"]["missing_obligation"] == 1
    (gap,) = report["missing_obligation"]
    assert (gap["key"], gap["recipient_ref"], gap["cause_event_id"]) == (
        "mayor.escape|P1|escape:e2|-",
        "GM0363",
        "e2",
    )
    assert report["alerts"]["open"] == 1

    text = runner.invoke(app, ["reconcile"])
    assert text.exit_code == 1
    assert "missing obligation: mayor.escape for period P1 (escape:e2) to mayor GM0363" in (
        text.stdout
    )


def test_backfill_command(cli_db: Engine) -> None:
    feed(cli_db, intake("e1"), msg("escape", "e2", 20))
    remove(cli_db, ["mayor.escape|P1|escape:e2|-"])
    result = runner.invoke(app, ["notify", "backfill", "--since", "2025-01-20", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["created"], report["remaining"], report["by_source"]["dispatcher"]) == (1, 0, 1)
    assert report["items"][0]["key"] == "mayor.escape|P1|escape:e2|-"
    assert stored(cli_db)["mayor.escape|P1|escape:e2|-"].backfilled

    again = runner.invoke(app, ["notify", "backfill", "--since", "2025-01-20"])
    assert again.exit_code == 0
    assert "missing obligations: 0" in again.stdout

    bad = runner.invoke(app, ["notify", "backfill", "--since", "20-01-2025"])
    assert bad.exit_code == 2
    assert "is not a date YYYY-MM-DD" in bad.output


def test_explain_command(cli_db: Engine) -> None:
    feed(cli_db, intake("e1"), msg("escape", "e2", 20))
    result = runner.invoke(app, ["notify", "explain", "P1"])
    assert result.exit_code == 0, result.output
    assert "e2 escape at 2025-01-26T08:00+00:00" in result.stdout
    assert "state: escaped, title prison_sentence" in result.stdout
    assert "mayor.escape: fired: offence category zeden" in result.stdout
    assert "idv.escape: did not fire: no victim registered with the IDV" in result.stdout
    assert "+ required: mayor.escape escape:e2 to mayor GM0363" in result.stdout
    assert "== mayor.escape escape:e2 (mayor.escape|P1|escape:e2|-)" in result.stdout
    assert "0 of 4 obligations differ between the store and the facts" in result.stdout
    as_json = json.loads(runner.invoke(app, ["notify", "explain", "P1", "--json"]).stdout)
    assert as_json["period_ref"] == "P1"
    escape = next(s for s in as_json["events"] if s["event_id"] == "e2")
    assert {"rule_id": "mayor.escape", "fired": True}.items() <= next(
        t for t in escape["rules"] if t["rule_id"] == "mayor.escape"
    ).items()
    assert (as_json["differences"], as_json["replay_agrees"]) == (0, True)

    unknown = runner.invoke(app, ["notify", "explain", "P9"])
    assert unknown.exit_code == 2
    assert "no detention period [P9]" in unknown.output


def test_obligations_command(cli_db: Engine) -> None:
    feed(cli_db, intake("e1"), msg("escape", "e2", 20))
    result = runner.invoke(app, ["notify", "obligations", "--period", "P1", "--json"])
    assert result.exit_code == 0, result.output
    listed = json.loads(result.stdout)
    rows = listed["obligations"]
    assert (listed["total"], listed["limit"], listed["offset"]) == (len(rows), 1000, 0)
    escape = next(r for r in rows if r["rule_id"] == "mayor.escape")
    assert {k: escape[k] for k in ("recipient_kind", "recipient_ref", "occurrence",
                                   "cause_event_id", "status", "late", "rule_version")} == {
        "recipient_kind": "mayor", "recipient_ref": "GM0363", "occurrence": "escape:e2",
        "cause_event_id": "e2", "status": "open", "late": False, "rule_version": "2026.1",
    }  # fmt: skip
    text = runner.invoke(app, ["notify", "obligations", "--status", "open"])
    assert "P1 mayor.escape@2026.1 to mayor GM0363: escape:e2 (event e2)" in text.stdout
    assert f"{len(rows)} obligations" in text.stdout
    voided = runner.invoke(app, ["notify", "obligations", "--status", "voided", "--json"])
    assert json.loads(voided.stdout)["obligations"] == []
    bad = runner.invoke(app, ["notify", "obligations", "--status", "done"])
    assert bad.exit_code == 2
    assert "unknown status [done]" in bad.output


def test_a_database_without_schema_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TERUGKEER_DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    get_settings.cache_clear()
    try:
        result = runner.invoke(app, ["reconcile"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2
    assert "cannot read the database" in result.output
    assert "terugkeer db upgrade" in result.output


def test_burst_void_says_what_was_held_and_what_corrected(cli_db: Engine) -> None:
    from datetime import UTC, datetime, timedelta

    from terugkeer.detention.ingest import ingest_text
    from terugkeer.notify.delivery.dispatch import dispatch_once
    from tests.notify.assurance.test_watch import HOOK, open_alerts, releases

    ingest_text(cli_db, releases(0, 30), hooks=HOOK)
    dispatch_once(cli_db, datetime.now(UTC) + timedelta(seconds=1), limit=1000)
    ingest_text(cli_db, releases(30, 30), hooks=HOOK)
    first, second = open_alerts(cli_db, "burst")
    result = runner.invoke(app, ["notify", "burst", "void", str(first.id), "--by", "operator-1"])
    assert result.exit_code == 0, result.output
    assert (
        "voided 60 obligations: 30 held notices will not be sent; 30 corrections queued for "
        "notices that had gone out before the brake"
    ) in result.stdout
    confirmed = runner.invoke(
        app, ["notify", "burst", "confirm", str(second.id), "--by", "operator-1"]
    )
    assert "released 30 held notices (30 obligations); 30 notices of this burst had gone out" in (
        confirmed.stdout
    )
    again = runner.invoke(app, ["notify", "burst", "void", str(first.id), "--by", "operator-1"])
    assert again.exit_code == 2
    assert "already decided" in again.output
