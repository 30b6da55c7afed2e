"""Listing commands page explicitly: `--limit`, `--offset`, "showing X–Y of Z" when not
everything is shown, and `total`, `limit`, `offset` in `--json`; on each store (issue 11:
`notify obligations` stopped silently at 1,000 rows)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlalchemy import Engine

from terugkeer.cli import app
from terugkeer.detention.ingest import ingest_text
from terugkeer.notify.alerts import raise_alert
from tests.cli.test_notify import runner
from tests.feedutil import BSN2, intake, lines, msg
from tests.notify.assurance.test_reconcile import feed


def test_notify_obligations_pages(cli_db: Engine) -> None:
    feed(cli_db, intake("e1"), intake("f1", period="P2", bsn=BSN2), msg("escape", "e2", 20))
    everything = json.loads(runner.invoke(app, ["notify", "obligations", "--json"]).stdout)
    total = everything["total"]
    assert total == len(everything["obligations"]) > 3
    assert (everything["limit"], everything["offset"]) == (1000, 0)

    text = runner.invoke(app, ["notify", "obligations", "--limit", "2"])
    assert text.exit_code == 0, text.output
    assert f"showing 1–2 of {total} obligations (--limit and --offset for others)" in text.stdout
    assert len([line for line in text.stdout.splitlines() if " due " in line]) == 2

    page = json.loads(
        runner.invoke(app, ["notify", "obligations", "--limit", "2", "--offset", "2", "--json"])
        .stdout
    )  # fmt: skip
    assert (page["total"], page["limit"], page["offset"]) == (total, 2, 2)
    assert page["obligations"] == everything["obligations"][2:4]

    rest = runner.invoke(app, ["notify", "obligations", "--offset", "3"])
    assert f"showing 4–{total} of {total} obligations" in rest.stdout
    past = runner.invoke(app, ["notify", "obligations", "--offset", str(total)])
    assert f"showing none of {total} obligations" in past.stdout
    whole = runner.invoke(app, ["notify", "obligations", "--limit", "0"])
    assert f"\n{total} obligations\n" in whole.stdout  # everything: no "showing"
    assert runner.invoke(app, ["notify", "obligations", "--limit", "-1"]).exit_code == 2


def test_notify_alerts_pages(cli_db: Engine) -> None:
    with cli_db.begin() as conn:
        for i in range(5):
            raise_alert(conn, "test", f"test:{i}", f"alert {i}", {}, datetime.now(UTC))
    text = runner.invoke(app, ["notify", "alerts", "--limit", "2", "--offset", "1"])
    assert text.exit_code == 0, text.output
    assert "showing 2–3 of 5 alerts" in text.stdout
    assert "alert 1" in text.stdout
    assert "alert 0" not in text.stdout
    listed = json.loads(runner.invoke(app, ["notify", "alerts", "--json"]).stdout)
    assert (listed["total"], listed["limit"], listed["offset"]) == (5, 100, 0)
    assert [a["message"] for a in listed["alerts"]] == [f"alert {i}" for i in range(5)]
    assert "5 alerts" in runner.invoke(app, ["notify", "alerts"]).stdout


def test_quarantine_list_pages(cli_db: Engine) -> None:
    early = [msg("release", f"r{i}", 400, period=f"P{i}", release_kind="court_order")
             for i in range(3)]  # fmt: skip
    ingest_text(cli_db, lines(*early))
    text = runner.invoke(app, ["quarantine", "list", "--limit", "1"])
    assert text.exit_code == 0, text.output
    assert "showing 1–1 of 3 quarantined messages" in text.stdout
    listed = json.loads(
        runner.invoke(app, ["quarantine", "list", "--offset", "1", "--json"]).stdout
    )
    assert (listed["total"], listed["limit"], listed["offset"]) == (3, 100, 1)
    assert [e["event_id"] for e in listed["entries"]] == ["r1", "r2"]
