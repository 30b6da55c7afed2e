"""The operator's overview (notify/assurance/overview.py) on both stores: feed health, held
bursts, obligations due, unresolved recipients and naming their municipality, dead letters,
the reconciliation's status and the backfill's preview."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select

from terugkeer.detention.ingest import ingest_text
from terugkeer.intake import deliver
from terugkeer.notify.assurance import overview
from terugkeer.notify.delivery.dispatch import dispatch_once
from terugkeer.notify.hook import notify_hook
from terugkeer.notify.tables import obligations
from terugkeer.security.actor import Actor
from terugkeer.security.tables import audit_log
from tests.feedutil import intake, lines, msg
from tests.notify.assurance.test_watch import burst
from tests.notify.delivery.test_channels import Receiver
from tests.notify.delivery.test_dispatch import channels, endpoint

HOOK = [notify_hook()]
WHO = Actor.system("test", "overview test")
NOW = datetime.now(UTC)


def reads(engine: Engine, record_type: str) -> int:
    with engine.connect() as conn:
        return len(
            conn.execute(
                select(audit_log.c.id).where(
                    audit_log.c.actor == WHO.name,
                    audit_log.c.record_type == record_type,
                    audit_log.c.action == "read",
                )
            ).all()
        )


def test_feed_health_and_a_held_burst(engine: Engine) -> None:
    assert ingest_text(engine, burst(25), hooks=HOOK, batch_size=10).quarantined == 0
    with engine.connect() as conn:
        health = {h.code: h for h in overview.feed_health(conn, NOW + timedelta(days=10))}
        (b,) = overview.open_bursts(conn)
    zwo = health["PI-ZWO"]
    assert zwo.last_received_at is not None
    assert zwo.stale
    assert zwo.held_bursts == 1
    assert health["PI-VUG"].last_received_at is None
    assert not health["PI-VUG"].stale
    assert (b.source, b.releases) == ("PI-ZWO", 25)
    assert b.held_obligations >= 25
    with engine.connect() as conn:
        fresh = {h.code: h for h in overview.feed_health(conn, NOW)}
        first = overview.feed_health(conn, NOW + timedelta(days=10))[0]
    assert not fresh["PI-ZWO"].stale
    assert first.code == "PI-ZWO"  # stale ones first


def test_due_obligations_unresolved_and_naming_the_municipality(engine: Engine) -> None:
    before = reads(engine, "notice")  # SQLite's audit log carries over from earlier tests
    text = lines(intake("e1", fields={"residence_municipality": None}))
    assert ingest_text(engine, text, hooks=HOOK).quarantined == 0
    with engine.begin() as conn:
        overdue = overview.due_obligations(conn, actor=WHO, window="overdue", now=NOW)
        soon = overview.due_obligations(conn, actor=WHO, window="soon", hours=24, now=NOW)
        page = overview.unresolved_recipients(conn, actor=WHO, limit=2)
    assert overdue.total == 3  # the test feed is in 2025: everything is past due
    assert soon.total == 0
    assert page.total == 3
    assert len(page.items) == 2
    assert {r["institution"] for r in page.items} == {"PI-VUG"}
    assert reads(engine, "notice") - before == 3 + 2
    first = page.items[0]["id"]
    with engine.connect() as conn:
        with pytest.raises(overview.NamingError, match="not a municipality"):
            overview.naming_message(conn, first, "GM9999")
        message = overview.naming_message(conn, first, "gm0599")
    assert message["return_municipality"] == "GM0599"
    assert message["planned_release_date"] == "2026-02-10"  # unchanged: only the municipality
    done = deliver(engine, [message], origin="test:naming", actor=WHO)
    assert done.outcomes[0].status == "applied"
    with engine.connect() as conn:
        rows = conn.execute(select(obligations.c.status, obligations.c.recipient_ref)).all()
        assert {tuple(r) for r in rows} == {("open", "GM0599")}
        with pytest.raises(overview.NamingError, match="not waiting"):
            overview.naming_message(conn, first, "GM0599")


def test_an_ended_period_cannot_be_named_by_a_message(engine: Engine) -> None:
    text = lines(
        intake("e1", fields={"residence_municipality": None}),
        msg("release", "e2", 30, release_kind="end_of_sentence"),
    )
    assert ingest_text(engine, text, hooks=HOOK).quarantined == 0
    with engine.begin() as conn:
        page = overview.unresolved_recipients(conn, actor=WHO)
        with pytest.raises(overview.NamingError, match="has ended"):
            overview.naming_message(conn, page.items[0]["id"], "GM0599")


def test_dead_letters(engine: Engine) -> None:
    receiver = Receiver(hang_seconds=0.2)
    try:
        endpoint(engine, "mayor", "GM0363", "webhook", receiver.url)
        assert ingest_text(engine, lines(intake("e1")), hooks=HOOK).quarantined == 0
        receiver.fail(404)
        assert (
            dispatch_once(
                engine, datetime.now(UTC) + timedelta(seconds=1), channels=channels()
            ).dead
            == 1
        )
    finally:
        receiver.close()
    before = reads(engine, "delivery")
    with engine.begin() as conn:
        page = overview.dead_letters(conn, actor=WHO)
        none = overview.dead_letters(conn, actor=WHO, channel="email")
    (dead,) = page.items
    assert (dead["channel"], dead["rule_id"], dead["recipient_ref"]) == (
        "webhook",
        "mayor.release",
        "GM0363",
    )
    assert "404" in dead["last_error"]
    assert none.total == 0
    assert reads(engine, "delivery") - before == 1
