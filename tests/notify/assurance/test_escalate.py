"""Escalation on SQLite and PostgreSQL: a notice not acknowledged in time goes to the second
channel, then to the operator; unresolved recipients past due are raised; the outbox check
queues what a race left out."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select, text, update

from terugkeer.notify.assurance.escalate import LOCK_ID, escalate
from terugkeer.notify.delivery.dispatch import dispatch_once
from terugkeer.notify.delivery.inbox import acknowledge
from terugkeer.notify.tables import alerts, deliveries, obligations
from terugkeer.notify.worker import CHECKS, run_checks
from terugkeer.security.actor import Actor
from tests.feedutil import intake, msg
from tests.notify.delivery.test_channels import Receiver
from tests.notify.delivery.test_dispatch import channels, clock, endpoint, feed, obligation, outbox

TEST = Actor.system("test", "testing")

H = timedelta(hours=1)
S = timedelta(seconds=1)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def alert_rows(engine: Engine, kind: str, status: str = "open") -> list[Any]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                select(alerts)
                .where(alerts.c.kind == kind, alerts.c.status == status)
                .order_by(alerts.c.id)
            ).all()
        )


def test_an_unacknowledged_notice_goes_to_the_second_channel_then_to_the_operator(
    engine: Engine, receiver: Receiver
) -> None:
    endpoint(engine, "mayor", "GM0363", "webhook", receiver.url, priority=2)
    feed(engine, intake("e1"))
    dispatch_once(engine, clock(), channels=channels())
    mayor = obligation(engine, "mayor.release")
    sent = mayor.delivered_at

    assert escalate(engine, sent + 23 * H).as_json()["reminders"] == 0
    counts = escalate(engine, sent + 24 * H + S)
    # the mayor has a second channel; the nazorg coordinator has none: the operator at once
    assert (counts.reminders, counts.unacknowledged) == (1, 2)
    assert obligation(engine, "mayor.release").escalation == 1
    assert obligation(engine, "nazorg.release").escalation == 2
    assert [(r.notice, r.channel, r.status) for r in outbox(engine, mayor.id)] == [
        ("notice", "portal", "delivered"), ("reminder", "webhook", "pending"),
    ]  # fmt: skip
    dispatch_once(engine, sent + 24 * H + 2 * S, channels=channels())
    assert [b["notice"] for b in receiver.bodies] == ["reminder"]
    assert receiver.delivered == [f"{mayor.id}:reminder:1:webhook"]
    assert obligation(engine, "mayor.release").status == "delivered"  # still not acknowledged

    reminded = sent + 24 * H + S
    assert escalate(engine, reminded + 23 * H).unacknowledged == 0
    assert escalate(engine, reminded + 24 * H + S).unacknowledged == 1
    raised = [
        a for a in alert_rows(engine, "unacknowledged") if a.key == f"unacknowledged:{mayor.id}"
    ]
    assert len(raised) == 1
    assert "re-sent on the second channel" in raised[0].message
    assert json.loads(raised[0].details)["ack_window_hours"] == 24
    assert obligation(engine, "mayor.release").escalation == 2
    assert escalate(engine, reminded + 72 * H).unacknowledged == 0  # raised once while open

    acknowledge(engine, mayor.id, "OOV-adviseur Amsterdam", now=reminded + 73 * H, actor=TEST)
    assert f"unacknowledged:{mayor.id}" in {
        a.key for a in alert_rows(engine, "unacknowledged", "resolved")
    }


def test_an_escape_notice_has_two_hours(engine: Engine) -> None:
    feed(engine, intake("e1"), msg("escape", "e2", 20))
    dispatch_once(engine, clock(), channels=channels())
    escape = obligation(engine, "mayor.escape")
    assert escalate(engine, escape.delivered_at + 2 * H - S).unacknowledged == 0
    assert escalate(engine, escape.delivered_at + 2 * H + S).unacknowledged == 1
    (alert,) = alert_rows(engine, "unacknowledged")
    assert alert.key == f"unacknowledged:{escape.id}"
    assert "no second channel" in alert.message


def test_reconciliation_and_escalation_put_an_unacknowledged_notice_in_the_queue_once(
    engine: Engine,
) -> None:
    from terugkeer.notify.assurance.reconcile import reconcile

    feed(engine, intake("e1"), msg("escape", "e2", 20))
    dispatch_once(engine, clock(), channels=channels())
    escape = obligation(engine, "mayor.escape")
    late = escape.delivered_at + 2 * H + S

    mine = {f"reconcile:unacknowledged:{escape.key}", f"unacknowledged:{escape.id}"}

    def queue_for_escape() -> list[str]:
        return [a.key for a in alert_rows(engine, "unacknowledged") if a.key in mine]

    # reconciliation first: it raises its own alert (escalation has not run)
    first = reconcile(engine, late)
    assert escape.key in {g.key for g in first.unacknowledged}
    assert queue_for_escape() == [f"reconcile:unacknowledged:{escape.key}"]
    # escalation raises its alert; the next reconciliation leaves the queue to that one
    assert escalate(engine, late).unacknowledged >= 1
    again = reconcile(engine, late + S)
    assert escape.key in {g.key for g in again.unacknowledged}  # still reported
    assert again.alerts_escalated >= 1
    assert queue_for_escape() == [f"unacknowledged:{escape.id}"]
    # acknowledged: nothing left open for it
    acknowledge(engine, escape.id, "OOV Amsterdam", now=late + 2 * S, actor=TEST)
    assert escape.key not in {g.key for g in reconcile(engine, late + 3 * S).unacknowledged}
    assert queue_for_escape() == []


def test_an_acknowledged_notice_is_not_escalated(engine: Engine) -> None:
    feed(engine, intake("e1"))
    dispatch_once(engine, clock(), channels=channels())
    for ob in ("mayor.release", "nazorg.release", "nazorg.intake"):
        acknowledge(engine, obligation(engine, ob).id, "someone", actor=TEST)
    assert escalate(engine, clock() + 100 * H).as_json() == {
        "reminders": 0, "unacknowledged": 0, "unresolved": 0, "requeued": 0,
        "corrections": 0, "resolved": 0, "skipped": False,
    }  # fmt: skip


def test_an_unresolved_recipient_past_due_is_raised_once_and_resolved_when_known(
    engine: Engine,
) -> None:
    feed(engine, intake("e1", fields={"residence_municipality": None}))
    with engine.connect() as conn:
        unresolved = {
            r.id: r.due_at
            for r in conn.execute(select(obligations).where(obligations.c.status == "unresolved"))
        }
    assert len(unresolved) == 3
    mayor = obligation(engine, "mayor.release")
    before = mayor.due_at - S
    counts = escalate(engine, before)
    expected = {f"unresolved:{i}" for i, due in unresolved.items() if due <= before}
    assert {a.key for a in alert_rows(engine, "unresolved")} == expected
    assert counts.unresolved == len(expected) < 3
    assert escalate(engine, mayor.due_at + S).unresolved == 3 - len(expected)
    assert escalate(engine, mayor.due_at + 10 * H).unresolved == 0  # once while open
    assert "period P1" in alert_rows(engine, "unresolved")[0].message

    feed(engine, msg("release_date_set", "e2", 3, planned_release_date="2026-02-10",
                     return_municipality="GM0599"))  # fmt: skip
    with engine.connect() as conn:
        still = {
            f"unresolved:{i}"
            for (i,) in conn.execute(
                select(obligations.c.id).where(obligations.c.status == "unresolved")
            )
        }
    assert obligation(engine, "mayor.release").status == "open"
    # resolved with the obligation, in the same transaction: not one check cycle later
    assert {a.key for a in alert_rows(engine, "unresolved")} == still
    counts = escalate(engine, mayor.due_at + 11 * H)
    assert counts.resolved == 0
    assert {a.key for a in alert_rows(engine, "unresolved")} == still


def test_the_outbox_check_queues_what_a_race_left_out(engine: Engine) -> None:
    feed(engine, intake("e1"))
    now = clock()
    dispatch_once(engine, now, channels=channels())
    mayor = obligation(engine, "mayor.release")
    nazorg = obligation(engine, "nazorg.release")
    with engine.begin() as conn:
        # a change applied from a stale read: a new version, open, and no notice for it
        conn.execute(
            update(obligations).where(obligations.c.id == mayor.id).values(status="open", version=2)
        )
        # voided after the recipient was told, without a correction
        conn.execute(
            update(obligations)
            .where(obligations.c.id == nazorg.id)
            .values(status="voided", version=2, void_reason="test")
        )
    counts = escalate(engine, now + S)
    assert (counts.requeued, counts.corrections) == (1, 1)
    assert [(r.notice, r.obligation_version, r.status) for r in outbox(engine, mayor.id)][-1] == (
        "change", 2, "pending",
    )  # fmt: skip
    assert [(r.notice, r.obligation_version) for r in outbox(engine, nazorg.id)][-1] == (
        "correction", 2,
    )  # fmt: skip
    again = escalate(engine, now + 2 * S)
    assert (again.requeued, again.corrections) == (0, 0)
    dispatch_once(engine, now + 3 * S, channels=channels())
    assert obligation(engine, "mayor.release").status == "delivered"
    with engine.connect() as conn:
        assert (
            conn.execute(
                select(deliveries.c.status).where(deliveries.c.notice == "correction")
            ).scalar_one()
            == "delivered"
        )


def test_one_escalation_pass_at_a_time_on_postgresql(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite runs one worker")
    with engine.connect() as other:
        other.execute(text("SELECT pg_advisory_lock(:k)"), {"k": LOCK_ID})
        try:
            assert escalate(engine).skipped
        finally:
            other.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": LOCK_ID})
            other.commit()
    assert not escalate(engine).skipped


def test_the_check_cycle_runs_escalation_feed_watch_and_reconciliation(engine: Engine) -> None:
    feed(engine, intake("e1"))
    dispatch_once(engine, clock(), channels=channels())
    results = run_checks(engine)
    assert results["errors"] == {}
    names = [
        "escalation",
        "feed_watch",
        "reconciliation",
        "audit_checkpoint",
        "statistics",
        "inbox_tallies",
    ]
    assert [check.name for check in CHECKS] == names  # in this order
    assert set(results) == {"errors", *names}
    assert results["escalation"]["skipped"] is False
