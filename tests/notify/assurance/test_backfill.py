"""Backfill after a fault, on SQLite and PostgreSQL: the missing obligations are created
through the normal writing path, marked late ("alsnog"), with their notice queued; only
those caused since the date given; idempotent."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select

from terugkeer.notify.assurance import backfill as backfill_module
from terugkeer.notify.assurance.backfill import backfill, explain_period, list_obligations
from terugkeer.notify.assurance.reconcile import reconcile
from terugkeer.notify.rules.evaluate import Evaluation
from terugkeer.notify.tables import deliveries
from terugkeer.security.actor import Actor
from tests.feedutil import T0, intake, msg
from tests.notify.assurance.test_reconcile import (
    EARLY,
    check,
    feed,
    grant,
    remove,
    rich_period,
    set_status,
    stored,
    victim,
)

LATER = datetime(2026, 3, 1, tzinfo=UTC)
TEST = Actor.system("test", "testing")


def notices_of(engine: Engine, obligation_id: int) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        return [
            (r.notice, r.status)
            for r in conn.execute(
                select(deliveries).where(deliveries.c.obligation_id == obligation_id)
            )
        ]


def test_backfill_creates_the_missing_marked_late_and_queues_them(engine: Engine) -> None:
    rich_period(engine)
    before = stored(engine)
    lost = [k for k in before if k.startswith(("mayor.", "victim."))]
    remove(engine, lost)
    assert {g.key for g in check(engine, LATER).missing} == set(lost)

    report = backfill(engine, T0 - timedelta(days=1), LATER)
    assert (report.missing, report.created, report.reopened, report.remaining) == (
        len(lost),
        len(lost),
        0,
        0,
    )
    assert report.notices == len(lost)
    assert {i.key for i in report.items} == set(lost)
    assert {i.source for i in report.items} == {"dispatcher"}
    after = stored(engine)
    for key in lost:
        row = after[key]
        assert (row.backfilled, row.late, row.status) == (True, True, "open")
        assert row.late_reason.startswith(f"alsnog: created by backfill at {LATER.isoformat()}")
        assert row.recipient_ref == before[key].recipient_ref
        assert notices_of(engine, row.id) == [("notice", "pending")]
    assert check(engine, LATER).missing == []

    again = backfill(engine, T0 - timedelta(days=1), LATER)
    assert (again.missing, again.created, again.items) == (0, 0, [])


def test_backfill_leaves_what_happened_before_the_date_alone(engine: Engine) -> None:
    feed(
        engine,
        intake("e1"),
        msg("escape", "e2", 20),
        msg("recapture", "e3", 21),
    )
    remove(engine, ["mayor.escape|P1|escape:e2|-", "mayor.recapture|P1|recapture:e3|-"])
    since = T0 + timedelta(days=20, hours=12)  # after the escape, before the recapture
    report = backfill(engine, since, LATER)
    assert (report.missing, report.before_since, report.created) == (2, 1, 1)
    assert [i.key for i in report.items] == ["mayor.recapture|P1|recapture:e3|-"]
    (gap,) = check(engine, LATER).missing
    assert gap.key == "mayor.escape|P1|escape:e2|-"


def test_backfill_reopens_a_wrongly_voided_obligation(engine: Engine) -> None:
    feed(engine, intake("e1"))
    key = "mayor.release|P1|release|-"
    set_status(engine, key, status="voided", void_reason="a bug")
    report = backfill(engine, T0 - timedelta(days=1), EARLY)
    assert (report.created, report.reopened, report.remaining) == (0, 1, 0)
    row = stored(engine)[key]
    assert (row.status, row.late, row.backfilled) == ("open", True, True)
    assert row.late_reason.startswith("alsnog: reopened by backfill")
    assert ("notice", "pending") in notices_of(engine, row.id)


def test_backfill_writes_the_reconciliations_row_when_the_rule_code_has_none(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The dispatcher's evaluation is still wrong (here: it produces nothing at all): backfill
    does not depend on it, it writes the obligation as the reconciliation computed it."""
    feed(engine, intake("e1"), grant("e2", 10, "2025-02-01T10:00:00+01:00", "GM0599"))
    key = "mayor.leave|P1|leave:2025-02-01|-"
    remove(engine, [key])
    (gap,) = check(engine, LATER).missing
    assert (gap.key, gap.recipient_ref, gap.cause_event_id) == (key, "GM0599", "e2")
    assert gap.due_at == datetime(2025, 1, 25, 9, tzinfo=UTC)  # a week before the leave

    monkeypatch.setattr(backfill_module, "evaluate_period", lambda *args: Evaluation())
    report = backfill(engine, T0, LATER)
    ((source, note),) = [(i.source, i.note) for i in report.items]
    assert (source, note) == ("reconciliation", "the dispatcher's rule code does not produce it")
    row = stored(engine)[key]
    assert (row.recipient_ref, row.cause_event_id, row.backfilled, row.late) == (
        "GM0599",
        "e2",
        True,
        True,
    )
    assert row.planned_for == datetime(2025, 2, 1, 9, tzinfo=UTC)
    assert json.loads(row.facts)["source"] == "reconciliation"
    assert notices_of(engine, row.id) == [("notice", "pending")]
    assert reconcile(engine, LATER).missing == []


def test_backfill_refuses_a_naive_date(engine: Engine) -> None:
    with pytest.raises(ValueError, match="naive datetime"):
        backfill(engine, datetime(2025, 1, 1))


def test_explain_and_list(engine: Engine) -> None:
    feed(
        engine,
        intake("e1", fields={"offences": [{"category": "vermogen", "statutory_max_years": 4}]}),
        msg("release", "e2", 30, release_kind="court_order"),
    )
    explanation = explain_period(engine, "P1", actor=TEST)
    fired = {
        (step["event_id"], t["rule_id"]): (t["fired"], t["why"])
        for step in explanation.events
        for t in step["rules"]
    }
    assert fired[("e1", "mayor.release")][0] is False
    assert "no offence in ['zeden', 'zwaar_geweld']" in fired[("e1", "mayor.release")][1]
    assert fired[("e2", "nazorg.release")] == (
        True,
        "adult with a stay that may exceed 10 days; release into society",
    )
    assert {c["key"]: c["stored"]["status"] for c in explanation.obligations} == {
        "nazorg.intake|P1|intake|-": "open",
        "nazorg.release|P1|release|-": "open",
    }
    assert explanation.differences == 0
    page = list_obligations(engine, period_ref="P1", actor=TEST)
    assert (page.total, page.limit, page.offset) == (2, None, 0)
    listed = page.items
    assert [r["rule_id"] for r in listed] == ["nazorg.intake", "nazorg.release"]
    # released by court order a year before the planned date: the notice is of the real
    # release, late, saying so (not the planned date told before)
    assert listed[1]["late"] is True
    assert "not on the planned 2026-02-10" in listed[1]["late_reason"]
    assert list_obligations(engine, status="voided", actor=TEST).items == []
    with pytest.raises(ValueError, match=r"unknown status \[done\]"):
        list_obligations(engine, status="done", actor=TEST)


def test_a_victim_registration_that_arrives_late_is_caught_up(engine: Engine) -> None:
    """The victim registered long before the escape, but the registration reached the system
    after the escape was processed (the victims feed ingested after the detention feed, as
    `make demo` does): the IDV and the victim must still hear of the escape and the recapture.
    Whatever the dispatcher made of it, after a backfill they exist and nothing is missing."""
    feed(engine, intake("e1"), msg("escape", "e2", 20), msg("recapture", "e3", 22))
    feed(engine, victim("v1", 1, "V1"))  # registered on day 1, received after the recapture
    required = {
        "idv.escape|P1|escape:e2|-",
        "victim.escape|P1|escape:e2|V1",
        "idv.recapture|P1|recapture:e3|-",
        "victim.recapture|P1|recapture:e3|V1",
    }
    report = check(engine, LATER)
    assert {g.key for g in report.missing} <= required
    done = backfill(engine, T0, LATER)
    assert done.remaining == 0
    rows = stored(engine)
    assert required <= {k for k, r in rows.items() if r.status != "voided"}
    for item in done.items:
        assert rows[item.key].late_reason.startswith("alsnog")
    assert check(engine, LATER).missing == []
