"""The command line leaves a trace in the hash-chained audit log: every command that shows or
changes personal data appends one row per record (who, when, which record, which action, with
which purpose); bulk jobs one row per run; figures-only commands none. End to end through the
real CLI on each store, each test ending with `terugkeer audit verify`."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import typer
from sqlalchemy import Engine, func, select, update
from typer.testing import CliRunner, Result

from terugkeer.cli import app
from terugkeer.cli import common as audit_cli
from terugkeer.cli.common import actor_name
from terugkeer.config import get_settings
from terugkeer.detention.ingest import ingest_text
from terugkeer.detention.tables import detention_periods
from terugkeer.notify.delivery.dispatch import dispatch_once
from terugkeer.notify.tables import alerts, deliveries, obligations
from terugkeer.reintegration.cases import reintegration_hook
from terugkeer.reintegration.service import (
    ConditionsIn,
    ConsentIn,
    record_conditions,
    record_consent,
)
from terugkeer.reintegration.tables import reintegration_cases
from terugkeer.security import audit
from terugkeer.security.tables import audit_log
from tests.cli.test_notify import acknowledge_all
from tests.feedutil import BSN, BSN2, intake, lines, msg
from tests.notify.assurance.test_reconcile import HOOK, feed, remove
from tests.notify.assurance.test_watch import burst
from tests.notify.delivery.test_dispatch import channels, clock

runner = CliRunner()
GM = "GM0363"


@pytest.fixture
def cli_db(cli_db: Engine, monkeypatch: pytest.MonkeyPatch) -> Engine:
    """The shared command-line store (tests/conftest.py), with no actor in the environment."""
    for name in ("TERUGKEER_ACTOR", "TERUGKEER_USER"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    return cli_db


def mark(engine: Engine) -> int:
    """The newest audit row's id (on SQLite the log carries on across tests)."""
    with engine.connect() as conn:
        return int(conn.execute(select(func.coalesce(func.max(audit_log.c.id), 0))).scalar_one())


def rows_since(engine: Engine, since: int) -> list[Any]:
    with engine.connect() as conn:
        return list(
            conn.execute(select(audit_log).where(audit_log.c.id > since).order_by(audit_log.c.id))
        )


def trail(engine: Engine, since: int) -> list[tuple[str, str, str, str, str, str]]:
    """(actor, role, action, record type, record id, purpose) of each row since the mark."""
    return [
        (r.actor, r.role, r.action, r.record_type, r.record_id, r.purpose)
        for r in rows_since(engine, since)
    ]


def run(*args: str, code: int = 0) -> Result:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result


def chain_intact() -> None:
    result = run("audit", "verify")
    assert "audit log intact" in result.stdout


def no_personal_data(engine: Engine, since: int) -> None:
    """Rows name records, never people."""
    for r in rows_since(engine, since):
        for bsn in (BSN, BSN2):
            assert bsn not in f"{r.record_id} {r.details}"


# -- who runs the command ----------------------------------------------------------------------


def test_the_actor_is_named_explicitly_or_by_environment_or_by_login(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("TERUGKEER_ACTOR", raising=False)
    monkeypatch.delenv("TERUGKEER_USER", raising=False)
    monkeypatch.setattr(audit_cli, "login", lambda: "ops")
    assert actor_name() == "cli:ops"
    monkeypatch.setenv("TERUGKEER_USER", "legacy")
    assert actor_name() == "cli:legacy"
    monkeypatch.setenv("TERUGKEER_ACTOR", " j.jansen ")
    assert actor_name() == "cli:j.jansen"
    assert actor_name("a.de.vries") == "cli:a.de.vries"
    assert actor_name("cli:a.de.vries") == "cli:a.de.vries"  # not cli:cli:
    assert len(actor_name("x" * 300)) == 100
    with pytest.raises(typer.BadParameter):
        actor_name("bad\nname")
    monkeypatch.setenv("TERUGKEER_ACTOR", "   ")
    monkeypatch.delenv("TERUGKEER_USER")
    monkeypatch.setattr(audit_cli, "login", lambda: "")
    with pytest.raises(typer.BadParameter):
        actor_name()


def test_a_bad_actor_or_purpose_is_refused_before_anything_is_read(cli_db: Engine) -> None:
    since = mark(cli_db)
    result = run("quarantine", "list", "--as", "two\nlines", code=2)
    assert "--as" in result.output
    run("quarantine", "list", "--purpose", " ", code=2)
    run("quarantine", "list", "--purpose", "x" * 201, code=2)
    assert trail(cli_db, since) == []


# -- feed intake and quarantine ----------------------------------------------------------------


def test_quarantine_list_and_replay_leave_a_row_per_message(
    cli_db: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    early = tmp_path / "early.jsonl"
    early.write_text(
        lines(
            msg("release", "e2", 400, release_kind="end_of_sentence"),
            msg("release", "f2", 400, period="P2", bsn=BSN2, release_kind="end_of_sentence"),
        )
    )
    since = mark(cli_db)
    run("ingest", str(early), "--as", "feedbeheer", code=1)  # both wait for their intake
    (job,) = rows_since(cli_db, since)
    assert (job.actor, job.role, job.action, job.record_type, job.record_id, job.purpose) == (
        "cli:feedbeheer", "cli", "run", "job", "ingest", "feed intake",
    )  # fmt: skip
    details = json.loads(job.details)
    assert (details["files"], details["read"], details["quarantined"]) == (["early.jsonl"], 2, 2)
    assert details["outcome"] == "done"

    since = mark(cli_db)
    monkeypatch.setenv("TERUGKEER_ACTOR", "j.jansen")
    listed = json.loads(run("quarantine", "list", "--json").stdout)["entries"]
    assert BSN in listed[0]["raw"]  # what the command shows is personal data...
    ids = [str(e["id"]) for e in listed]
    assert len(ids) == 2
    assert trail(cli_db, since) == [  # ...so each entry shown is in the log
        ("cli:j.jansen", "cli", "read", "quarantine", i, "feed quarantine handling") for i in ids
    ]
    assert json.loads(rows_since(cli_db, since)[0].details) == {
        "command": "terugkeer quarantine list",
        "raw": True,  # the raw lines were shown
    }

    since = mark(cli_db)
    run("quarantine", "list", "--limit", "1", "--as", "a.de.vries", "--purpose", "ticket 4711")
    assert trail(cli_db, since) == [
        ("cli:a.de.vries", "cli", "read", "quarantine", ids[0], "ticket 4711")
    ]

    since = mark(cli_db)
    run("quarantine", "replay", ids[1], code=1)  # still no intake: stays quarantined
    assert trail(cli_db, since) == [
        ("cli:j.jansen", "cli", "update", "quarantine", ids[1], "feed quarantine handling")
    ]
    # a mistyped id or reason replays nothing and says so (it exited 0 with "read 0")
    for wrong in (["999999"], ["--reason", "no_such_reason"]):
        since = mark(cli_db)
        refused = run("quarantine", "replay", *wrong, code=2)
        assert refused.stderr.startswith("no open quarantined message with")
        assert trail(cli_db, since) == []
    since = mark(cli_db)
    applied = json.loads(run("quarantine", "list", "--status", "applied", "--json").stdout)
    assert applied["entries"] == []
    assert trail(cli_db, since) == []  # nothing shown, nothing logged
    no_personal_data(cli_db, 0)
    chain_intact()


def test_no_audit_row_no_output(cli_db: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    ingest_text(cli_db, lines(msg("release", "e2", 400, release_kind="end_of_sentence")))

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the audit log cannot be written")

    monkeypatch.setattr(audit, "record_many", broken)
    result = runner.invoke(app, ["quarantine", "list", "--json"])
    assert result.exit_code != 0
    assert BSN not in result.stdout


def test_periods_check_logs_only_the_periods_it_shows(cli_db: Engine) -> None:
    feed(cli_db, intake("e1"), intake("f1", period="P2", bsn=BSN2))
    since = mark(cli_db)
    assert "0 differences" in run("periods", "check").stdout
    assert trail(cli_db, since) == []
    with cli_db.begin() as conn:
        conn.execute(
            update(detention_periods)
            .where(detention_periods.c.period_ref == "P2")
            .values(status="released")
        )
    shown = run("periods", "check", "--as", "beheer", code=1)
    assert "period [P2]" in shown.stdout
    assert trail(cli_db, since) == [
        ("cli:beheer", "cli", "read", "detention_period", "P2", "consistency check")
    ]
    chain_intact()


# -- notifications -------------------------------------------------------------------------------


def test_inbox_and_acknowledgement(cli_db: Engine) -> None:
    feed(cli_db, intake("e1"))
    dispatch_once(cli_db, clock(), channels=channels())
    since = mark(cli_db)
    shown = json.loads(
        run(
            "notify", "inbox", "--recipient-kind", "nazorg", "--recipient", GM, "--json",
            "--as", "nazorg.ams",
        ).stdout
    )  # fmt: skip
    ids = [str(n["id"]) for n in shown["notices"]]
    assert len(ids) == 2
    assert trail(cli_db, since) == [
        ("cli:nazorg.ams", "cli", "read", "notice", i, "notice inbox") for i in ids
    ]
    assert json.loads(rows_since(cli_db, since)[0].details)["inbox"] == f"nazorg:{GM}"

    since = mark(cli_db)
    run("notify", "ack", ids[0], "--by", "nazorg.ams", "--as", "nazorg.ams")
    assert trail(cli_db, since) == [
        ("cli:nazorg.ams", "cli", "update", "notice", ids[0], "notice inbox")
    ]
    since = mark(cli_db)
    run("notify", "ack", ids[0], "--by", "nazorg.ams", code=2)  # already: nothing changed
    assert trail(cli_db, since) == []
    unknown = run("notify", "ack", "999999", "--by", "nazorg.ams", code=2)  # the contract's exit
    assert len(unknown.stderr.strip().splitlines()) == 1
    chain_intact()


def test_obligations_explain_reconcile_alerts_and_backfill(
    cli_db: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TERUGKEER_ACTOR", "operator-1")
    feed(cli_db, intake("e1"), msg("escape", "e2", 20))
    feed(cli_db, intake("f1", period="P2", bsn=BSN2))
    acknowledge_all(cli_db)

    since = mark(cli_db)
    page = json.loads(run("notify", "obligations", "--period", "P1", "--json").stdout)
    listed = page["obligations"]
    assert len(listed) >= 2
    assert trail(cli_db, since) == [
        ("cli:operator-1", "cli", "read", "notice", str(o["id"]), "notification oversight")
        for o in listed
    ]

    since = mark(cli_db)
    run("notify", "explain", "P2", "--purpose", "question from GM0363")
    assert trail(cli_db, since) == [
        ("cli:operator-1", "cli", "read", "detention_period", "P2", "question from GM0363")
    ]
    since = mark(cli_db)
    run("notify", "explain", "P9", code=2)
    assert trail(cli_db, since) == []

    # a quiet day: reconciliation is one job row, no period shown
    since = mark(cli_db)
    run("reconcile")
    assert trail(cli_db, since) == [
        ("cli:operator-1", "cli", "run", "job", "reconcile", "completeness check")
    ]
    # a missing obligation: the job row and the one period it shows
    remove(cli_db, ["mayor.escape|P1|escape:e2|-"])
    since = mark(cli_db)
    assert "period P1" in run("reconcile", code=1).stdout
    assert trail(cli_db, since) == [
        ("cli:operator-1", "cli", "run", "job", "reconcile", "completeness check"),
        ("cli:operator-1", "cli", "read", "detention_period", "P1", "completeness check"),
    ]
    job, period = rows_since(cli_db, since)
    assert json.loads(job.details)["missing_obligation"] == 1
    assert json.loads(period.details)["gaps"] == 1
    since = mark(cli_db)
    run("reconcile", "--show", "0", code=1)  # nothing shown: only the job row
    assert [t[3] for t in trail(cli_db, since)] == ["job"]

    with cli_db.connect() as conn:
        alert_ids = [
            str(i) for i in conn.execute(select(alerts.c.id).order_by(alerts.c.id)).scalars()
        ]
    assert alert_ids
    since = mark(cli_db)
    run("notify", "alerts")
    assert trail(cli_db, since) == [
        ("cli:operator-1", "cli", "read", "alert", i, "operator queue") for i in alert_ids
    ]

    since = mark(cli_db)
    run("notify", "backfill", "--since", "2025-01-20", "--json")
    with cli_db.connect() as conn:
        created = conn.execute(
            select(obligations.c.id).where(obligations.c.key == "mayor.escape|P1|escape:e2|-")
        ).scalar_one()
    assert trail(cli_db, since) == [
        ("cli:operator-1", "cli", "create", "notice", str(created), "completeness repair")
    ]
    no_personal_data(cli_db, 0)
    chain_intact()


def test_a_burst_decision_logs_each_notice_it_releases(cli_db: Engine) -> None:
    ingest_text(cli_db, burst(25), hooks=HOOK)
    with cli_db.connect() as conn:
        alert_id = conn.execute(select(alerts.c.id).where(alerts.c.kind == "burst")).scalar_one()
        held = [
            str(i)
            for i in conn.execute(
                select(obligations.c.id)
                .where(obligations.c.status == "held")
                .order_by(obligations.c.id)
            ).scalars()
        ]
    assert len(held) >= 25
    since = mark(cli_db)
    run("notify", "burst", "confirm", str(alert_id), "--by", "operator-1", "--as", "operator-1")
    assert trail(cli_db, since) == [
        ("cli:operator-1", "cli", "update", "notice", i, "burst brake decision") for i in held
    ]
    assert json.loads(rows_since(cli_db, since)[0].details)["decision"] == "confirmed"
    since = mark(cli_db)
    run("notify", "burst", "void", str(alert_id), "--by", "operator-1", code=2)  # decided
    assert trail(cli_db, since) == []
    chain_intact()


def test_retry_worker_and_dispatch(cli_db: Engine) -> None:
    feed(cli_db, intake("e1"))
    with cli_db.begin() as conn:
        dead = conn.execute(select(deliveries.c.id).order_by(deliveries.c.id).limit(1)).scalar()
        conn.execute(update(deliveries).where(deliveries.c.id == dead).values(status="dead"))
    since = mark(cli_db)
    run("notify", "retry", str(dead), "--as", "operator-1")
    assert trail(cli_db, since) == [
        ("cli:operator-1", "cli", "update", "delivery", str(dead), "delivery repair")
    ]
    # machine jobs: one row when they start, none per notice delivered
    since = mark(cli_db)
    delivered = json.loads(run("notify", "dispatch", "--once", "--as", "ops").stdout)
    assert delivered["delivered"] == 3
    run("worker", "--once", "--as", "ops")
    assert trail(cli_db, since) == [
        ("cli:ops", "cli", "start", "job", "notify dispatch", "notification delivery"),
        ("cli:ops", "cli", "start", "job", "worker", "notification delivery"),
    ]
    chain_intact()


# -- reintegration -----------------------------------------------------------------------------


def _case(engine: Engine, period: str) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(reintegration_cases.c.id)
                .join(detention_periods, detention_periods.c.id == reintegration_cases.c.period_id)
                .where(detention_periods.c.period_ref == period)
            ).scalar_one()
        )


def test_reintegration_lists_log_each_case_and_figures_log_nothing(cli_db: Engine) -> None:
    result = ingest_text(
        cli_db,
        lines(
            intake("e1", fields={"planned_release_date": "2025-03-01", "return_municipality": GM}),
            intake("f1", period="P2", bsn=BSN2, fields={"planned_release_date": "2025-02-01"}),
            msg("release", "f2", 26, period="P2", bsn=BSN2, release_kind="end_of_sentence"),
        ),
        hooks=[reintegration_hook()],
    )
    assert result.quarantined == 0
    p1, p2 = _case(cli_db, "P1"), _case(cli_db, "P2")
    record_consent(cli_db, p2, ConsentIn("given", date(2025, 1, 10)), actor="caseworker:ams-1")
    record_conditions(
        cli_db,
        p2,
        ConditionsIn("release", {"id": "valid", "housing": "homeless", "income": "work"}),
        actor="caseworker:ams-1",
    )

    since = mark(cli_db)
    upcoming = json.loads(
        run(
            "reintegration", "upcoming", "-m", GM, "--on", "2025-02-10", "--json",
            "--as", "nazorg.ams",
        ).stdout
    )  # fmt: skip
    assert [u["case_id"] for u in upcoming] == [p1]
    bad = json.loads(run("reintegration", "not-in-order", "-m", GM, "--json").stdout)
    assert [b["case_id"] for b in bad] == [p2]
    assert trail(cli_db, since) == [
        (
            "cli:nazorg.ams",
            "cli",
            "case_listed",
            "reintegration_case",
            str(p1),
            "preparing returns",
        ),
        (
            actor_name(),
            "cli",
            "case_listed",
            "reintegration_case",
            str(p2),
            "reintegration follow-up",
        ),
    ]
    since = mark(cli_db)
    run("reintegration", "upcoming", "-m", GM, "--on", "2024-01-01")  # none in the window
    assert trail(cli_db, since) == []

    # figures only: no row at all
    run("reintegration", "completeness", "--on", "2025-06-01", "--json")
    run("reintegration", "costs", "--json")
    assert runner.invoke(app, ["notify", "watch", "--json"]).exit_code in (0, 1)  # 1: stale
    run("audit", "verify")
    run("reintegration", "open-cases")  # every period has its case: nothing changes
    assert trail(cli_db, since) == []

    # the back-fill writes a row per case it opens, in the name of whoever runs it
    feed(cli_db, intake("g1", period="P3", fields={"return_municipality": GM}))  # no case hook
    run("reintegration", "open-cases", "--as", "beheer")
    assert trail(cli_db, since) == [
        ("cli:beheer", "cli", "case_opened", "reintegration_case", str(_case(cli_db, "P3")),
         "reintegration registration"),
    ]  # fmt: skip
    chain_intact()


# -- accounts and keys -------------------------------------------------------------------------


def test_accounts_tokens_and_key_rotation(cli_db: Engine) -> None:
    since = mark(cli_db)
    made = runner.invoke(
        app,
        ["user", "add", "feed-pi", "--role", "feed", "--as", "admin"],
        input="een heel lang wachtwoord\n",
    )
    assert made.exit_code == 0, made.output
    run("token", "create", "pi-vught", "--user", "feed-pi", "--as", "admin")
    run("keys", "rotate", "--as", "admin")
    mine = [t for t in trail(cli_db, since) if t[1] == "cli"]
    assert mine == [
        ("cli:admin", "cli", "create", "user", "feed-pi", "account administration"),
        ("cli:admin", "cli", "create", "api_token", "pi-vught", "account administration"),
        ("cli:admin", "cli", "run", "job", "keys rotate", "key rotation"),
    ]
    rotation = json.loads(rows_since(cli_db, since)[-1].details)
    assert (rotation["outcome"], rotation["rewritten"]) == ("done", 0)
    run("keys", "generate")
    run("db", "upgrade")
    assert rows_since(cli_db, since)[-1].record_id == "keys rotate"  # nothing since
    chain_intact()
