"""No poison message (issue 12): a value the store cannot hold is refused as ``invalid_value``
naming its field, its raw content is kept escaped visibly, and any error while a batch is
written quarantines the one message that causes it (``store_error``) and applies the rest.
Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, select

from terugkeer.detention.ingest import AppliedBatch, IngestResult, ingest_files, ingest_text
from terugkeer.detention.quarantine import QuarantineEntry, list_quarantine, replay
from terugkeer.detention.tables import detention_periods, feed_events
from terugkeer.intake import hooks
from terugkeer.security.actor import Actor
from tests.feedutil import intake, lines, msg

TEST = Actor.system("test", "testing")


def rows(engine: Engine) -> list[QuarantineEntry]:
    return list(list_quarantine(engine, actor=TEST, status="all").items)


def body(engine: Engine, event_id: str) -> str:
    with engine.connect() as conn:
        return str(
            conn.execute(
                select(feed_events.c.body).where(feed_events.c.event_id == event_id)
            ).scalar_one()
        )


def periods(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return sorted(conn.execute(select(detention_periods.c.period_ref)).scalars())


def balanced(result: IngestResult) -> IngestResult:
    assert result.read == result.applied + result.duplicates + result.quarantined
    return result


VICTIM = {
    "source": "OM-IDV",
    "victim_ref": "V1",
    "relation": "victim",
    "spoke_in_court": True,
    "wants_information": True,
    "contact": {"name": "Slachtoffer 1"},
}
RECONVICTION = {
    "period": None,
    "source": "JUSTID-JD",
    "case_ref": "C1",
    "offence_date": "2026-04-01",
    "category": "vermogen",
    "statutory_max_years": 4,
    "decision": "conviction",
    "custodial": False,
}


def _with(message: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    out = json.loads(json.dumps(message))
    *parents, last = path.split(".")
    target = out
    for p in parents:
        target = target[int(p)] if isinstance(target, list) else target[p]
    target[last] = value
    return out


# (message, field path in the message, field named in the quarantine row)
UNSTORABLE_TEXT = [
    (intake("x1", period="P2"), "period", "period"),
    (intake("x2", period="P2", prison_number="D1"), "person.prison_number", "person.prison_number"),
    (intake("x3", period="P2"), "event_id", "event_id"),
    (msg("correction", "x4", 30, withdraws="e1"), "withdraws", "withdraws"),
    (msg("victim_registered", "x5", 3, **VICTIM), "victim_ref", "victim_ref"),
    (msg("victim_registered", "x6", 3, **VICTIM), "contact.name", "contact.name"),
    (msg("reconviction", "x7", 600, **RECONVICTION), "case_ref", "case_ref"),
]


@pytest.mark.parametrize(
    "bad", ["P\u000028", "P\ud800", "\udcff"], ids=["nul", "surrogate", "byte"]
)
@pytest.mark.parametrize(("message", "path", "field"), UNSTORABLE_TEXT, ids=lambda v: str(v)[:12])
def test_a_string_the_store_cannot_hold_is_refused_naming_its_field(
    engine: Engine, message: dict[str, Any], path: str, field: str, bad: str
) -> None:
    poisoned = _with(message, path, bad)
    text = lines(intake("e1"), poisoned, intake("e9", period="P9", bsn="999990019"))
    result = balanced(ingest_text(engine, text))
    assert (result.applied, result.quarantined) == (2, 1)
    assert periods(engine) == ["P1", "P9"]
    (row,) = rows(engine)
    assert (row.reason, row.field) == ("invalid_value", field)
    assert "\x00" not in row.value
    assert "\x00" not in row.raw


def test_a_nul_in_the_period_is_refused_on_both_stores_not_a_traceback(engine: Engine) -> None:
    # issue 12, finding 1: on PostgreSQL this ended in a DataError with nothing applied,
    # on SQLite the message was applied
    text = lines(intake("e1"), intake("e2", period="P\u000028", bsn="999990019"))
    result = balanced(ingest_text(engine, text))
    assert (result.applied, result.quarantined) == (1, 1)
    (row,) = rows(engine)
    assert (row.reason, row.field, row.value) == ("invalid_value", "period", "P\\x0028")


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        ("sentence_days", 2**64, "sentence_days"),
        ("sentence_days", -(2**70), "sentence_days"),
        ("offences.0.statutory_max_years", 2**63, "offences[0].statutory_max_years"),
        ("feed_version", 2**64 + 1, "feed_version"),
        ("occurred_at", "0001-01-01T00:00:00+14:00", "occurred_at"),
        ("occurred_at", "9999-12-31T23:59:59-10:00", "occurred_at"),
        ("planned_release_date", "0001-01-01", "planned_release_date"),
        ("birth_date", "9999-12-31", "birth_date"),
    ],
)
def test_a_number_or_date_the_store_cannot_hold_is_refused(
    engine: Engine, path: str, value: Any, field: str
) -> None:
    text = lines(intake("e1"), _with(intake("e2", period="P2"), path, value))
    result = balanced(ingest_text(engine, text))
    assert (result.applied, result.quarantined) == (1, 1)
    (row,) = rows(engine)
    assert (row.reason, row.field) == ("invalid_value", field)


def test_a_raw_line_with_nul_or_bad_bytes_is_kept_escaped(engine: Engine, tmp_path: Path) -> None:
    good = json.dumps(intake("e1")).encode()
    feed = tmp_path / "feed.jsonl"
    feed.write_bytes(b'{"event_id": "a\x00b"\n' + b'{"event_id": "\xff\xfe"}\n' + good + b"\n")
    csv = tmp_path / "feed.csv"
    csv.write_bytes(
        b"event_id,source,occurred_at,kind,bsn,period,title,offences,extra\n"
        b"c1,PI-VUG,2025-01-06T09:00:00+01:00,intake,999990019,P\xff2,pre_trial,zeden:8,x\n"
        b"c2,PI-VUG,2025-01-06T09:00:00+01:00,intake,999990019,P3,pre_trial,zeden:8,\xfe\n"
    )
    result = balanced(ingest_files(engine, [feed, csv]))
    assert (result.read, result.applied, result.quarantined) == (5, 2, 3)
    raw = {(r.origin, r.line_no): (r.reason, r.field, r.raw) for r in rows(engine)}
    assert raw[("feed.jsonl", 1)] == ("invalid_json", None, '{"event_id": "a\\x00b"')
    assert raw[("feed.jsonl", 2)] == ("invalid_json", None, '{"event_id": "\\xff\\xfe"}')
    reason, field, cells = raw[("feed.csv", 2)]
    assert (reason, field) == ("invalid_value", "period")
    assert "P\\xff2" in cells
    # an undecodable byte in a column the feed does not know: applied, its body kept escaped
    assert json.loads(body(engine, "c2"))["extra"] == "\udcfe"


def test_a_lone_surrogate_outside_the_known_fields_is_stored_as_its_json_escape(
    engine: Engine,
) -> None:
    line = json.dumps({**intake("e1"), "note": "\ud83d"}, ensure_ascii=False)
    assert balanced(ingest_text(engine, line + "\n")).applied == 1
    stored = body(engine, "e1")
    assert "\\ud83d" in stored
    assert json.loads(stored)["note"] == "\ud83d"
    # the same line again is a duplicate, not a conflict
    assert balanced(ingest_text(engine, line + "\n")).duplicates == 1


def test_a_correction_of_an_event_with_a_very_long_id_can_wait_for_it(engine: Engine) -> None:
    long_id = "E" * 100
    ingest_text(engine, lines(intake("e1")))
    first = balanced(ingest_text(engine, lines(msg("correction", "c1", 30, withdraws=long_id))))
    assert (first.quarantined, rows(engine)[0].reason) == (1, "unknown_event")
    then = ingest_text(engine, lines(msg("escape", long_id, 20)))
    assert (then.applied, then.unparked) == (1, 1)


def _failing_on(event_id: str) -> Any:
    def hook(_conn: Connection, applied: AppliedBatch) -> None:
        if any(e.event_id == event_id for e in applied.events):
            raise ZeroDivisionError("a hook failed")

    return hook


def test_an_error_while_writing_quarantines_that_one_message_and_applies_the_rest(
    engine: Engine,
) -> None:
    messages = [intake(f"e{i}", period=f"P{i}", prison_number=f"D{i}", bsn=None) for i in range(9)]
    result = balanced(
        ingest_text(engine, lines(*messages), hooks=[_failing_on("e5")], keep_outcomes=True)
    )
    assert (result.read, result.applied, result.quarantined) == (9, 8, 1)
    assert result.reasons == {"store_error": 1}
    assert periods(engine) == sorted(f"P{i}" for i in range(9) if i != 5)
    (row,) = rows(engine)
    assert (row.reason, row.event_id, row.value) == (
        "store_error",
        "e5",
        "builtins.ZeroDivisionError",
    )
    assert row.raw == json.dumps(messages[5])
    (outcome,) = [o for o in result.outcomes if o.error is not None]
    assert (outcome.event_id, outcome.error.reason) == ("e5", "store_error")
    # replayed once the fault is gone, it is applied
    assert replay(engine).applied == 1
    assert "P5" in periods(engine)


def test_a_parked_message_that_fails_when_woken_does_not_hold_back_what_it_waited_for(
    engine: Engine,
) -> None:
    release = msg("release", "e2", 400, release_kind="end_of_sentence")
    parked = balanced(ingest_text(engine, lines(release)))
    assert (parked.quarantined, rows(engine)[0].reason) == (1, "unknown_period")
    other = intake("f1", period="P2", bsn="999990019")
    result = balanced(ingest_text(engine, lines(intake("e1"), other), hooks=[_failing_on("e2")]))
    # the intake it waited for is applied; the release that fails is set aside, not the intake
    assert (result.read, result.applied, result.quarantined) == (2, 2, 0)
    assert periods(engine) == ["P1", "P2"]
    (row,) = rows(engine)
    assert (row.event_id, row.reason, row.status) == ("e2", "store_error", "open")
    assert row.waits_for is None
    # a later event of the period does not wake it again
    later = msg("release_date_set", "e3", 20, planned_release_date="2026-01-01")
    assert balanced(ingest_text(engine, lines(later))).applied == 1
    assert rows(engine)[0].reason == "store_error"
    assert balanced(replay(engine)).applied == 1


def test_the_first_and_last_dates_held_pass_through_the_hooks(engine: Engine) -> None:
    first = intake("e1", fields={"planned_release_date": "1800-01-01", "birth_date": "1800-01-01"})
    first["occurred_at"] = "1800-01-01T00:00:00+14:00"
    last = intake("e2", period="P2", bsn="999990019", fields={"planned_release_date": "2999-12-31"})
    last["occurred_at"] = "2999-12-31T23:59:59-12:00"
    releases = [
        msg("release_date_set", "e3", 1, planned_release_date="2999-12-31"),
        msg("release", "e4", 2, "P2", bsn="999990019", release_kind="end_of_sentence"),
    ]
    result = balanced(ingest_text(engine, lines(first, last, *releases), hooks=hooks()))
    assert "store_error" not in result.reasons
    assert result.applied >= 2
