"""Ingest: idempotent, order-tolerant, nothing lost. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from terugkeer.detention.ingest import ingest_files, ingest_text
from terugkeer.detention.tables import (
    detention_periods,
    feed_events,
    period_offences,
    persons,
    quarantine,
    reconvictions,
    victims,
)
from terugkeer.security.crypto import open_raw, seal_waits_for
from tests.feedutil import BSN, BSN2, T0, intake, lines, msg
from tests.plans import assert_served_by, statements


def count(engine: Engine, table) -> int:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def period(engine: Engine, ref: str = "P1"):  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return conn.execute(
            select(detention_periods).where(detention_periods.c.period_ref == ref)
        ).one()


def owner(engine: Engine, ref: str = "P1") -> str:
    """The BSN of the person a period's row names."""
    with engine.connect() as conn:
        return str(
            conn.execute(
                select(persons.c.bsn)
                .join(detention_periods, detention_periods.c.person_id == persons.c.id)
                .where(detention_periods.c.period_ref == ref)
            ).scalar_one()
        )


def open_quarantine(engine: Engine) -> list:  # type: ignore[type-arg]
    with engine.connect() as conn:
        return conn.execute(
            select(quarantine).where(quarantine.c.status == "open").order_by(quarantine.c.id)
        ).all()


def release(event_id: str, days: float, period: str = "P1", **kw) -> dict:  # type: ignore[no-untyped-def, type-arg]
    return msg("release", event_id, days, period, release_kind="end_of_sentence", **kw)


def test_a_period_is_built_from_its_events(engine: Engine) -> None:
    text = lines(
        intake("e1"),
        msg(
            "leave_granted",
            "e2",
            30,
            leave_from="2025-02-10T10:00:00+01:00",
            leave_until="2025-02-11T18:00:00+01:00",
            leave_municipality="GM0599",
        ),
        msg("leave_start", "e3", 35, leave_municipality="GM0599"),
        msg("leave_end", "e4", 36),
        msg("transfer", "e5", 40, to_institution="PI-ZWO"),
        release("e6", 400),
    )
    result = ingest_text(engine, text)
    assert result.as_json() == {"read": 6, "applied": 6, "duplicates": 0, "quarantined": 0}
    p = period(engine)
    assert p.status == "released"
    assert p.institution == "PI-ZWO"
    assert p.release_kind == "end_of_sentence"
    assert p.leave_municipality == "GM0599"
    assert p.event_count == 6
    assert p.return_municipality == "GM0363"  # defaults to the residence
    assert count(engine, period_offences) == 1
    assert count(engine, persons) == 1


def test_same_event_twice_is_applied_once(engine: Engine) -> None:
    text = lines(intake("e1"), release("e2", 400))
    assert ingest_text(engine, text).applied == 2
    again = ingest_text(engine, text + lines(intake("e1")))
    assert again.as_json() == {"read": 3, "applied": 0, "duplicates": 3, "quarantined": 0}
    assert count(engine, feed_events) == 2
    assert period(engine).event_count == 2


def test_whitespace_and_key_order_do_not_make_a_conflict(engine: Engine) -> None:
    message = intake("e1")
    ingest_text(engine, json.dumps(message) + "\n")
    reordered = json.dumps(
        dict(reversed(list(message.items()))), indent=None, separators=(", ", " : ")
    )
    assert ingest_text(engine, reordered + "\n").duplicates == 1


def test_same_event_id_with_other_content_is_a_conflict(engine: Engine) -> None:
    ingest_text(engine, lines(intake("e1")))
    result = ingest_text(engine, lines(intake("e1", fields={"sentence_days": 10})))
    assert result.quarantined == 1
    (row,) = open_quarantine(engine)
    assert row.reason == "conflict"
    assert row.event_id == "e1"
    assert '"sentence_days": 10' in open_raw(row.raw)  # kept encrypted
    # ...and within one file as well
    result = ingest_text(engine, lines(release("e9", 400), release("e9", 401)))
    assert (result.applied, result.quarantined) == (1, 1)


def test_out_of_order_events_give_the_same_period(engine: Engine) -> None:
    ingest_text(engine, lines(release("e3", 400), msg("escape", "e2", 100), intake("e1")))
    ingest_text(engine, lines(msg("recapture", "e4", 101)))
    p = period(engine)
    assert p.status == "released"
    assert p.event_count == 4
    assert p.last_event_id == "e3"
    assert open_quarantine(engine) == []


def test_event_before_intake_arrives_parks_until_the_intake_comes(engine: Engine) -> None:
    first = ingest_text(engine, lines(release("e2", 400)))
    assert first.quarantined == 1
    (row,) = open_quarantine(engine)
    assert (row.reason, row.waits_for) == ("unknown_period", "period:P1")
    second = ingest_text(engine, lines(intake("e1")))
    assert (second.applied, second.unparked) == (1, 1)
    assert open_quarantine(engine) == []
    assert period(engine).status == "released"


def test_release_before_intake_is_quarantined(engine: Engine) -> None:
    result = ingest_text(engine, lines(intake("e1", days=10), release("e2", 5)))
    assert result.quarantined == 1
    (row,) = open_quarantine(engine)
    assert row.reason == "sequence"
    assert "before the intake" in row.message
    assert row.line_no == 2
    assert period(engine).status == "in_custody"


def test_event_for_a_dead_person_is_quarantined(engine: Engine) -> None:
    text = lines(intake("e1"), msg("death", "e2", 50), release("e3", 60))
    result = ingest_text(engine, text)
    assert result.quarantined == 1
    assert open_quarantine(engine)[0].reason == "dead_person"
    assert period(engine).status == "deceased"
    # a new detention of the same person after the death is refused too
    later = ingest_text(engine, lines(intake("e4", days=70, period="P2")))
    assert later.quarantined == 1
    with engine.connect() as conn:
        assert conn.execute(select(persons.c.died_at)).scalar_one() is not None


def test_correction_withdraws_an_event_and_what_waited_for_it_is_applied(engine: Engine) -> None:
    first = ingest_text(engine, lines(intake("e1"), msg("escape", "e2", 20), release("e3", 400)))
    assert first.quarantined == 1  # a release of an escaped person cannot be
    assert period(engine).status == "escaped"
    result = ingest_text(engine, lines(msg("correction", "c1", 21, withdraws="e2")))
    assert (result.applied, result.unparked) == (1, 1)  # the escape was wrong; the release holds
    assert period(engine).status == "released"
    assert open_quarantine(engine) == []


def test_correction_of_a_release_reopens_the_period(engine: Engine) -> None:
    ingest_text(engine, lines(intake("e1"), release("e2", 400)))
    result = ingest_text(engine, lines(msg("correction", "c1", 401, withdraws="e2")))
    assert result.applied == 1
    p = period(engine)
    assert (p.status, p.ended_at, p.event_count) == ("in_custody", None, 1)
    with engine.connect() as conn:
        assert (
            conn.execute(
                select(feed_events.c.withdrawn_by).where(feed_events.c.event_id == "e2")
            ).scalar_one()
            == "c1"
        )
    # withdrawing it twice is refused
    assert ingest_text(engine, lines(msg("correction", "c2", 402, withdraws="e2"))).quarantined == 1


def test_correction_of_a_death_clears_the_date_of_death(engine: Engine) -> None:
    ingest_text(engine, lines(intake("e1"), msg("death", "e2", 50)))
    ingest_text(engine, lines(msg("correction", "c1", 51, withdraws="e2")))
    assert period(engine).status == "in_custody"
    with engine.connect() as conn:
        assert conn.execute(select(persons.c.died_at)).scalar_one() is None


def test_correction_of_an_intake_withdraws_the_period(engine: Engine) -> None:
    ingest_text(engine, lines(intake("e1")))
    ingest_text(engine, lines(msg("correction", "c1", 1, withdraws="e1")))
    assert period(engine).status == "withdrawn"
    assert ingest_text(engine, lines(release("e2", 400))).quarantined == 1
    # a corrected intake brings it back, with the release that waited for it
    again = ingest_text(engine, lines(intake("e1b", days=0.5)))
    assert (again.applied, again.unparked) == (1, 1)
    assert period(engine).status == "released"


@pytest.mark.parametrize("batches", ["one", "three"])
def test_a_period_whose_intake_was_withdrawn_belongs_to_the_person_of_its_new_intake(
    engine: Engine, batches: str
) -> None:
    """The intake named the wrong person; it is withdrawn and the period taken in again for
    the right one. The period must name the new person, in its key as in its row."""
    messages = [
        intake("e1"),
        msg("correction", "c1", 1, withdraws="e1"),
        intake("e1b", days=0.5, bsn=BSN2),
    ]
    if batches == "one":
        result = ingest_text(engine, lines(*messages))
        assert (result.applied, result.quarantined) == (3, 0)
    else:
        for message in messages:
            assert ingest_text(engine, lines(message)).applied == 1
    assert owner(engine) == BSN2
    assert period(engine).status == "in_custody"


def _wrong_then_right_intake_in_every_order(
    engine: Engine, correction_period: str | None
) -> dict[str, tuple[str, int]]:
    """Per arrival order of (A) an intake for the wrong person, (C) its correction (naming
    the period or not) and (B) the intake for the right one, each in a batch of its own:
    the period's person and the number of messages left open in quarantine."""
    import itertools

    from tests.conftest import empty_all

    messages = {
        "A": intake("e1"),
        "C": msg("correction", "c1", 1, period=correction_period, withdraws="e1"),
        "B": intake("e1b", days=0.5, bsn=BSN2),
    }
    found = {}
    for order in itertools.permutations("ACB"):
        empty_all(engine)
        for key in order:
            ingest_text(engine, lines(messages[key]))
        found["".join(order)] = (owner(engine), len(open_quarantine(engine)))
    return found


@pytest.mark.parametrize("correction_period", ["P1", None])
def test_the_right_intake_owns_the_period_in_every_order(
    engine: Engine, correction_period: str | None
) -> None:
    found = _wrong_then_right_intake_in_every_order(engine, correction_period)
    assert {order: owner for order, (owner, _) in found.items()} == dict.fromkeys(found, BSN2)


@pytest.mark.parametrize("correction_period", ["P1", None])
def test_a_correction_withdraws_an_event_that_never_fitted_in_every_order(
    engine: Engine, correction_period: str | None
) -> None:
    """When the right intake is applied before the wrong one arrives, the wrong one does not
    fit (the period has its intake) and its correction waits for it. The correction
    withdraws it all the same: stored as withdrawn, never applied, nothing left parked.
    Before, both stayed parked in three of the six orders."""
    found = _wrong_then_right_intake_in_every_order(engine, correction_period)
    assert {order: left for order, (_, left) in found.items()} == dict.fromkeys(found, 0)


def test_person_known_by_bsn_may_later_be_named_by_prison_number_only(engine: Engine) -> None:
    ingest_text(engine, lines(intake("e1", prison_number="D123")))
    result = ingest_text(engine, lines(release("e2", 400, bsn=None, prison_number="D123")))
    assert result.applied == 1
    assert period(engine).status == "released"
    other = ingest_text(engine, lines(msg("escape", "e3", 10, period="P1", bsn=BSN2)))
    assert open_quarantine(engine)[0].reason == "person_mismatch"
    assert other.quarantined == 1


def test_victims_and_reconvictions(engine: Engine) -> None:
    victim = msg(
        "victim_registered",
        "v1",
        5,
        source="OM-IDV",
        victim_ref="V1",
        relation="victim",
        spoke_in_court=True,
        wants_information=True,
        contact={"name": "Slachtoffer 1", "email": "s1@example.org"},
    )
    conviction = msg(
        "reconviction",
        "r1",
        600,
        period=None,
        source="JUSTID-JD",
        case_ref="C1",
        offence_date="2026-04-01",
        category="vermogen",
        statutory_max_years=4,
        decision="conviction",
        custodial=False,
    )
    result = ingest_text(engine, lines(victim, conviction))
    assert result.quarantined == 2
    # a person waited for by BSN is kept as a keyed digest, not the BSN
    waiting = {"period:P1", seal_waits_for(f"person:bsn:{BSN}")}
    assert {r.waits_for for r in open_quarantine(engine)} == waiting
    result = ingest_text(engine, lines(intake("e1"), release("e2", 400)))
    assert result.unparked == 2
    assert count(engine, victims) == 1
    assert count(engine, reconvictions) == 1
    # a newer registration updates the victim; withdrawing it restores the older one
    update = dict(
        victim,
        event_id="v2",
        occurred_at=victim["occurred_at"].replace("2025-01-11", "2025-01-12"),
        wants_information=False,
    )
    ingest_text(engine, lines(update))
    with engine.connect() as conn:
        assert conn.execute(select(victims.c.wants_information)).scalar_one() is False
    ingest_text(engine, lines(msg("correction", "c1", 7, source="OM-IDV", withdraws="v2")))
    with engine.connect() as conn:
        assert conn.execute(select(victims.c.wants_information)).scalar_one() is True
    # an older registration arriving late is kept as an event but changes nothing
    older = dict(
        victim,
        event_id="v0",
        occurred_at=victim["occurred_at"].replace("2025-01-11", "2025-01-10"),
        wants_information=False,
    )
    assert ingest_text(engine, lines(older)).applied == 1
    with engine.connect() as conn:
        assert conn.execute(select(victims.c.wants_information, victims.c.event_id)).one() == (
            True,
            "v1",
        )
    ingest_text(
        engine, lines(msg("correction", "c2", 700, period=None, source="JUSTID-JD", withdraws="r1"))
    )
    assert count(engine, reconvictions) == 0


def test_files_in_jsonl_and_csv_with_bad_lines_kept(engine: Engine, tmp_path: Path) -> None:
    jsonl = tmp_path / "feed.jsonl"
    jsonl.write_bytes(
        lines(intake("e1")).encode() + b'{"broken\n' + b"\xff\xfe not utf-8\n" + b"\n"
    )
    csv_file = tmp_path / "feed.csv"
    csv_file.write_text(
        "event_id,source,occurred_at,kind,bsn,prison_number,period,release_kind,offences\n"
        f"e2,PI-VUG,2026-02-10T10:00:00+01:00,release,{BSN},,P1,end_of_sentence,\n"
        "e3,PI-VUG,2026-02-10T10:00:00,release,,D9,P9,end_of_sentence,\n",
        encoding="utf-8-sig",
    )
    result = ingest_files(engine, [jsonl, csv_file])
    assert result.as_json() == {"read": 5, "applied": 2, "duplicates": 0, "quarantined": 3}
    rows = open_quarantine(engine)
    assert [(r.origin, r.line_no, r.reason) for r in rows] == [
        ("feed.jsonl", 2, "invalid_json"),
        ("feed.jsonl", 3, "invalid_json"),
        ("feed.csv", 3, "naive_timestamp"),
    ]
    assert "\\xff" in open_raw(rows[1].raw)
    assert rows[2].format == "csv"
    assert period(engine).status == "released"


def test_bulk_written_times_compare_like_orm_written_ones(engine: Engine) -> None:
    """Rows written by the bulk path and parameters bound by SQLAlchemy must use one format,
    or range queries on SQLite silently miss rows at the boundary."""
    ingest_text(engine, lines(intake("e1"), release("e2", 400)))
    exact = T0.astimezone(UTC)
    with engine.connect() as conn:
        found = (
            conn.execute(
                select(feed_events.c.event_id).where(
                    feed_events.c.occurred_at >= exact, feed_events.c.occurred_at <= exact
                )
            )
            .scalars()
            .all()
        )
        period_hit = (
            conn.execute(
                select(detention_periods.c.period_ref).where(detention_periods.c.intake_at == exact)
            )
            .scalars()
            .all()
        )
    assert found == ["e1"]
    assert period_hit == ["P1"]


def test_updating_stored_periods_leaves_their_indexes_alone_postgresql(engine: Engine) -> None:
    """Ingest updates a stored period in place: a HOT update on PostgreSQL (no new entry in
    any index of detention_periods), as migration 0012 leaves room on each page for it.
    Before, 300 periods filled their pages and an update of one in four moved every row it
    changed. (A batch changes a few periods of each page: room for all of them at
    once is not kept.)"""
    from sqlalchemy import text

    from terugkeer.detention.ingest import process_batch
    from terugkeer.detention.items import Item

    if engine.dialect.name != "postgresql":
        pytest.skip("heap-only tuples are PostgreSQL's")
    periods = [f"P{i}" for i in range(300)]
    ingest_text(engine, lines(*(intake(f"i{p}", period=p) for p in periods)))
    released = periods[::4]
    releases = lines(*(release(f"r{p}", 400, period=p) for p in released)).splitlines()
    # HOT updates counted by this connection, before and after (PostgreSQL 15 keeps earlier
    # transactions' counts here until it reports them)
    hot = text(
        "SELECT n_tup_hot_upd FROM pg_stat_xact_user_tables WHERE relname = 'detention_periods'"
    )
    with engine.begin() as conn:
        before = conn.execute(hot).scalar_one()
        result = process_batch(conn, [Item(n, "t", line) for n, line in enumerate(releases)])
        assert result.applied == len(released)
        after = conn.execute(hot).scalar_one()
    # HOT is the page's room, not a promise: nearly all (before migration 0012: none)
    assert after - before >= 0.9 * len(released)


def test_a_parked_event_is_found_by_its_id_through_its_index(engine: Engine) -> None:
    """A correction naming no period looks for the event it withdraws among the parked ones
    by event id: through ``ix_quarantine_event_id`` (migration 0013), on both stores, not by
    reading every open or parked message."""
    from terugkeer.detention.parking import parked_events

    ingest_text(engine, lines(intake("e1b", days=0.5, bsn=BSN2)))
    ingest_text(engine, lines(intake("e2", days=9), intake("e1")))  # e1 does not fit: parked
    by_event = lambda sql: "FROM quarantine" in sql and "event_id" in sql  # noqa: E731
    with statements(engine, by_event) as asked, engine.begin() as conn:
        assert [i.line_no for i in parked_events(conn, ["e1"])] == [2]
    assert_served_by(engine, asked, "ix_quarantine_event_id")
