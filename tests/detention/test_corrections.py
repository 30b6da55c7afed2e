"""A correction need not name the period (issue 12, finding 2): the period is the withdrawn
event's, also when that event arrives after the correction. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select

from terugkeer.detention.ingest import ingest_text
from terugkeer.detention.tables import detention_periods, feed_events, quarantine
from tests.feedutil import intake, lines, msg


def period(engine: Engine, ref: str = "P1") -> Any:
    with engine.connect() as conn:
        return conn.execute(
            select(detention_periods).where(detention_periods.c.period_ref == ref)
        ).one()


def stored(engine: Engine, event_id: str) -> Any:
    with engine.connect() as conn:
        return conn.execute(select(feed_events).where(feed_events.c.event_id == event_id)).one()


def open_reasons(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return list(
            conn.execute(select(quarantine.c.reason).where(quarantine.c.status == "open")).scalars()
        )


def correction(event_id: str, days: float, withdraws: str, **kw: Any) -> dict[str, Any]:
    return msg("correction", event_id, days, period=None, withdraws=withdraws, **kw)


def release(event_id: str, days: float, period: str = "P1") -> dict[str, Any]:
    return msg("release", event_id, days, period, release_kind="end_of_sentence")


def test_a_correction_without_period_withdraws_the_event_of_its_period(engine: Engine) -> None:
    ingest_text(engine, lines(intake("e1"), intake("f1", period="P2", bsn="999990019")))
    ingest_text(engine, lines(release("e2", 400)))
    result = ingest_text(engine, lines(correction("c1", 401, "e2")))
    assert (result.applied, result.quarantined) == (1, 0), open_reasons(engine)
    assert (period(engine).status, period(engine).ended_at) == ("in_custody", None)
    assert stored(engine, "e2").withdrawn_by == "c1"
    assert stored(engine, "c1").period_ref == "P1"
    # sent again, it is a duplicate
    assert ingest_text(engine, lines(correction("c1", 401, "e2"))).duplicates == 1


def test_a_correction_without_period_waits_for_the_event_it_withdraws(engine: Engine) -> None:
    ingest_text(engine, lines(intake("e1")))
    first = ingest_text(engine, lines(correction("c1", 401, "e2")))
    assert (first.quarantined, open_reasons(engine)) == (1, ["unknown_event"])
    then = ingest_text(engine, lines(release("e2", 400)))
    assert (then.applied, then.unparked) == (1, 1)
    assert period(engine).status == "in_custody"
    assert stored(engine, "c1").period_ref == "P1"
    assert open_reasons(engine) == []


def test_a_correction_without_period_in_one_batch_with_its_event(engine: Engine) -> None:
    result = ingest_text(
        engine, lines(correction("c1", 401, "e2"), intake("e1"), release("e2", 400))
    )
    assert (result.applied, result.quarantined) == (3, 0), open_reasons(engine)
    assert period(engine).status == "in_custody"


def test_a_correction_naming_another_period_is_still_refused(engine: Engine) -> None:
    ingest_text(engine, lines(intake("e1"), release("e2", 400)))
    result = ingest_text(engine, lines(msg("correction", "c1", 401, period="P7", withdraws="e2")))
    assert (result.quarantined, open_reasons(engine)) == (1, ["sequence"])
