"""`notify explain`: a period's events replayed in event order (the state then, what each
rule decided then), and the stored obligations beside the ones the facts require now, on
SQLite and PostgreSQL (issue 11, finding 7)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, update

from terugkeer.notify.assurance.backfill import explain_period, list_obligations
from terugkeer.notify.delivery.dispatch import dispatch_once
from terugkeer.notify.tables import obligations
from terugkeer.security.actor import Actor
from tests.feedutil import intake, msg
from tests.notify.assurance.test_reconcile import feed, grant, remove, victim

TEST = Actor.system("test", "testing")
MAYOR = "mayor.release|P1|release|-"


def history(engine: Engine) -> None:
    """A planned date set at intake and moved; a second move withdrawn by a correction; the
    mayor told of the moved date; a court-order release two weeks before it; a victim (who
    spoke in court) registered three weeks after the release."""
    feed(
        engine,
        intake("e1"),
        msg("release_date_set", "e2", 10, planned_release_date="2025-03-01"),
    )
    dispatch_once(engine, datetime.now(UTC) + timedelta(seconds=1))  # the mayor is told
    feed(
        engine,
        msg("release_date_set", "e3", 20, planned_release_date="2025-03-15"),
        msg("correction", "c1", 25, withdraws="e3"),
        msg("release", "e4", 40, release_kind="court_order"),
        victim("v1", 60, "V1"),
    )


def step(explanation: Any, event_id: str) -> dict[str, Any]:
    return next(s for s in explanation.events if s["event_id"] == event_id)


def change(s: dict[str, Any], key: str) -> dict[str, Any]:
    return next(o for o in s["obligations"] if o["key"] == key)


def test_the_replay_shows_each_event_with_the_state_and_the_decisions_then(
    engine: Engine,
) -> None:
    history(engine)
    e = explain_period(engine, "P1", actor=TEST)
    assert [s["event_id"] for s in e.events] == ["e1", "e2", "e3", "c1", "e4", "v1"]
    assert [s["marked"] for s in e.events] == [
        None, None, "withdrawn", "correction", None, "victim_registration",
    ]  # fmt: skip

    intake_step = step(e, "e1")
    assert intake_step["state"]["planned_release_date"].isoformat() == "2026-02-10"
    fired = {t["rule_id"]: t for t in intake_step["rules"]}
    assert fired["mayor.release"]["fired"] is True
    assert fired["idv.release"] == {
        "rule_id": "idv.release",
        "fired": False,
        "why": "no victim registered with the IDV",
    }  # then: no victim yet (the victim registered later)
    assert change(intake_step, MAYOR)["change"] == "new"

    moved = change(step(e, "e2"), MAYOR)
    assert moved["change"] == "changed"
    assert {"planned_for", "due_at", "cause_event_id"} <= set(moved["fields"])
    assert moved["due_at"] == datetime(2025, 2, 22, 8, tzinfo=UTC)  # 7 days before 1 March

    assert "withdrawn by correction [c1]" in step(e, "e3")["note"]
    assert step(e, "e3")["obligations"] == []
    correction = step(e, "c1")
    assert correction["note"].startswith("withdraws [e3] (release_date_set")
    assert correction["state"]["planned_release_date"].isoformat() == "2025-03-01"

    released = step(e, "e4")
    assert released["state"]["status"] == "released"
    late = change(released, MAYOR)
    assert late["late"] is True
    assert "late" in late["fields"]
    assert late["late_reason"] == (
        "released on 2025-02-15 (court_order), not on the planned 2025-03-01"
    )

    registered = step(e, "v1")
    assert registered["note"] == "victim V1 registered: wants information, spoke in court"
    assert registered["state"]["victims"] == ["V1"]
    new = {o["key"]: o for o in registered["obligations"]}
    assert set(new) == {"idv.release|P1|release|-", "victim.release|P1|release|V1"}
    assert all(o["change"] == "new" and o["late"] for o in new.values())
    assert (
        "recipient known only at 2025-03-07 09:00" in new["idv.release|P1|release|-"]["late_reason"]
    )  # the victim heard of a release that had already happened

    # stored and recomputed side by side: the same, and the same as `notify obligations`
    assert e.replay_agrees is True
    assert e.differences == 0
    side = {c["key"]: c for c in e.obligations}
    listed = {o["key"]: o for o in list_obligations(engine, period_ref="P1", actor=TEST).items}
    mayor = side[MAYOR]
    assert mayor["stored"]["due_at"] == mayor["recomputed"]["due_at"]
    assert mayor["stored"]["due_at"].isoformat() == listed[MAYOR]["due_at"]
    assert mayor["stored"]["status"] == "open"  # a change notice to send
    sent = [(n["notice"], n["status"]) for n in mayor["stored"]["notices"]]
    assert sent[0] == ("notice", "delivered")  # told of 1 March
    assert sent[-1] == ("change", "pending")  # then of the release on 15 February


def test_every_difference_between_store_and_facts_is_marked(engine: Engine) -> None:
    history(engine)
    later = datetime(2025, 3, 1, 12, tzinfo=UTC)
    with engine.begin() as conn:
        conn.execute(update(obligations).where(obligations.c.key == MAYOR).values(due_at=later))
    remove(engine, ["victim.release|P1|release|V1"])
    e = explain_period(engine, "P1", actor=TEST)
    side = {c["key"]: c for c in e.obligations}
    assert side[MAYOR]["differences"] == ["due_at"]
    assert side[MAYOR]["stored"]["due_at"] == later  # the stored value, labelled as stored
    assert side[MAYOR]["recomputed"]["due_at"] == datetime(2025, 2, 15, 9, tzinfo=UTC)
    missing = side["victim.release|P1|release|V1"]
    assert (missing["stored"], missing["differences"]) == (None, ["missing"])
    assert e.differences == 2


def test_a_death_voids_are_listed_once(engine: Engine) -> None:
    feed(
        engine,
        intake("e1"),
        victim("v1", 1, "V1"),
        grant("g1", 5, "2025-02-01T10:00:00+01:00"),
        msg("death", "d1", 20),
    )
    e = explain_period(engine, "P1", actor=TEST)
    everything = {
        "mayor.leave", "mayor.release", "idv.leave", "idv.release", "victim.leave",
        "victim.release", "nazorg.release",
    }  # fmt: skip
    # once per rule, not once per rule that hears of the death, nor again as "period deceased"
    assert sorted((v["rule_id"], v["occurrence"], v["why"]) for v in e.voids) == sorted(
        (rule, "*", "the person died") for rule in everything
    )
    assert step(e, "d1")["voids"] == e.voids  # brought by the death, listed at it
    assert all(s["voids"] == [] for s in e.events if s["event_id"] != "d1")
    voided = [c for c in e.obligations if c["rule_id"] in everything]
    assert len(voided) == 7
    for c in voided:
        assert (c["recomputed"], c["void"], c["stored"]["status"]) == (
            None,
            "the person died",
            "voided",
        )
    assert e.differences == 0
