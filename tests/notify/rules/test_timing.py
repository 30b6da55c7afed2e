"""The same facts give the same obligations, whatever the batching, the arrival order or the
moment of ingest (issue: notifications that are right whatever the batch, the order and the
clock). Scenario tests for each finding, and a property test that re-batches and re-orders."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select

from terugkeer.detention.ingest import ingest_text
from terugkeer.intake import hooks
from terugkeer.notify.assurance.escalate import escalate
from terugkeer.notify.delivery.dispatch import dispatch_once
from terugkeer.notify.tables import alerts, deliveries, obligations
from tests.conftest import empty_all
from tests.feedutil import BSN, BSN2, T0, intake, msg

FIELDS = ("recipient_ref", "planned_for", "due_at", "late", "late_reason", "status", "cause")


def feed(engine: Engine, *messages: dict[str, Any], batch_size: int = 5000) -> None:
    lines = [json.dumps(m) for m in messages]
    for i in range(0, len(lines), batch_size):
        result = ingest_text(engine, "\n".join(lines[i : i + batch_size]) + "\n", hooks=hooks())
        assert result.quarantined == 0, result


def stored(engine: Engine, *, voided: bool = True) -> dict[str, dict[str, Any]]:
    """Every obligation by key, with the fields that the facts decide (``voided=False``: not
    those voided before anyone was told, which are as good as never required)."""
    with engine.connect() as conn:
        rows = [
            r
            for r in conn.execute(select(obligations))
            if voided or r.status != "voided" or r.delivered_at is not None
        ]
    return {
        r.key: {
            "recipient_ref": r.recipient_ref,
            "planned_for": r.planned_for,
            "due_at": r.due_at,
            "late": r.late,
            "late_reason": r.late_reason,
            "status": r.status,
            "cause": r.cause_event_id,
        }
        for r in rows
    }


def notices(engine: Engine, key: str) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        return [
            (r.notice, r.status)
            for r in conn.execute(
                select(deliveries.c.notice, deliveries.c.status)
                .join(obligations, obligations.c.id == deliveries.c.obligation_id)
                .where(obligations.c.key == key)
                .order_by(deliveries.c.id)
            )
        ]


# -- scenarios ----------------------------------------------------------------------------------

# 25 March: release on 4 May; released on 4 May as planned.
PLANNED = (
    intake("e1", 0, fields={"planned_release_date": None}),
    msg("release_date_set", "e2", 78, planned_release_date="2025-05-04"),
    msg("release", "e3", 118, release_kind="end_of_sentence"),
)


def _without_none(m: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in m.items() if v is not None}


def test_a_release_in_the_same_batch_as_its_planned_date_is_announced(engine: Engine) -> None:
    messages = [_without_none(m) for m in PLANNED]
    feed(engine, *messages, batch_size=1)
    one_by_one = stored(engine)
    empty_all(engine)
    feed(engine, *messages)
    whole = stored(engine)
    assert whole == one_by_one
    release = whole["mayor.release|P1|release|-"]
    assert release["late"] is False
    assert release["due_at"] == datetime(2025, 4, 27, 7, tzinfo=UTC)  # a week before 09:00 CEST
    assert release["cause"] == "e2"


def test_an_early_release_after_the_mayor_was_told_is_a_change(engine: Engine) -> None:
    messages = [_without_none(m) for m in PLANNED[:2]]
    feed(engine, *messages)
    dispatch_once(engine)
    key = "mayor.release|P1|release|-"
    assert notices(engine, key) == [("notice", "delivered")]
    # released by court order on 10 April, three weeks before the date the mayor was told
    feed(engine, msg("release", "e3", 94, release_kind="court_order"))
    row = stored(engine)[key]
    assert row["late"] is True
    assert row["planned_for"].date().isoformat() == "2025-04-10"
    assert "not on the planned 2025-05-04" in row["late_reason"]
    assert notices(engine, key) == [("notice", "delivered"), ("change", "pending")]


def test_a_release_later_than_told_is_a_change_too(engine: Engine) -> None:
    feed(engine, *[_without_none(m) for m in PLANNED[:2]])
    dispatch_once(engine)
    feed(engine, msg("release", "e3", 125, release_kind="end_of_sentence"))  # 11 May
    key = "mayor.release|P1|release|-"
    assert stored(engine)[key]["late"] is True
    assert notices(engine, key)[-1] == ("change", "pending")


def test_naming_the_municipality_later_re_evaluates_every_obligation(engine: Engine) -> None:
    """No municipality at intake; named on 20 April, after the notice was due on 27 April?
    No: named on 1 May, after it was due. The notice is late, says why, and the nazorg
    start-of-detention signal is resolved too."""
    first = _without_none(
        intake(
            "e1",
            0,
            fields={"residence_municipality": None, "planned_release_date": "2025-05-04"},
        )
    )
    feed(engine, first)
    before = stored(engine)
    assert before["mayor.release|P1|release|-"]["status"] == "unresolved"
    assert before["nazorg.intake|P1|intake|-"]["status"] == "unresolved"
    feed(engine, msg("release_date_set", "e2", 115, planned_release_date="2025-05-04",
                     return_municipality="GM0363"))  # fmt: skip
    after = stored(engine)
    release = after["mayor.release|P1|release|-"]
    assert (release["status"], release["recipient_ref"], release["late"]) == (
        "open",
        "GM0363",
        True,
    )
    assert "recipient known only at 2025-05-01" in release["late_reason"]
    assert release["due_at"] > before["mayor.release|P1|release|-"]["due_at"]
    signal = after["nazorg.intake|P1|intake|-"]
    assert (signal["status"], signal["recipient_ref"]) == ("open", "GM0363")


def victim(event_id: str, days: float, ref: str = "V1", **kw: Any) -> dict[str, Any]:
    return msg(
        "victim_registered",
        event_id,
        days,
        source="OM-IDV",
        victim_ref=ref,
        relation="victim",
        spoke_in_court=False,
        wants_information=True,
        contact={"name": "Slachtoffer Een", "email": "een@example.org"},
        **kw,
    )


LONG = {"sentence_days": 3650}


def test_a_victim_registered_after_the_release_hears_of_it(engine: Engine) -> None:
    feed(
        engine,
        intake("e1", 0, fields=LONG),
        msg("release", "e2", 30, release_kind="conditional_release"),
        victim("v1", 40),
    )
    rows = stored(engine)
    for key in ("idv.release|P1|release|-", "victim.release|P1|release|V1"):
        assert rows[key]["status"] == "open"
        assert rows[key]["late"] is True
        assert "recipient known only at 2025-02-15" in rows[key]["late_reason"]


def test_no_notice_of_a_past_release_once_the_person_is_back_inside(engine: Engine) -> None:
    feed(
        engine,
        intake("e1", 0, fields=LONG),
        msg("release", "e2", 30, release_kind="conditional_release"),
        intake("f1", 35, period="P2", fields=LONG),
        victim("v1", 40),
    )
    assert "idv.release|P1|release|-" not in stored(engine)


def test_what_the_facts_no_longer_require_is_voided_and_not_corrected(engine: Engine) -> None:
    """A victim's registration withdrawn, a victim who no longer wants information: in a
    later batch their obligations are voided, as if the facts had come in one batch and they
    had never been made. A notice already told stands without a correction (it was true when
    told); one not sent yet is not sent."""
    feed(
        engine,
        intake("e1", 0, fields=LONG),
        victim("v1", 1),
        victim("v2", 1, "V2"),
        victim("v4", 1, "V4"),
    )
    dispatch_once(engine)
    told = ["victim.release|P1|release|V1", "victim.release|P1|release|V2"]
    for key in told:
        assert notices(engine, key) == [("notice", "delivered")]
    feed(engine, victim("v3", 2, "V3"))  # not dispatched: its notice waits
    untold = "victim.release|P1|release|V3"
    assert notices(engine, untold) == [("notice", "pending")]
    feed(
        engine,
        msg("correction", "c1", 3, withdraws="v1"),
        {**victim("v2b", 3, "V2"), "wants_information": False},
        msg("correction", "c3", 3, withdraws="v3"),
    )
    rows = stored(engine)
    for key in [*told, untold]:
        assert rows[key]["status"] == "voided", key
    with engine.connect() as conn:
        found = conn.execute(select(obligations.c.key, obligations.c.void_reason))
        reasons = {r.key: r.void_reason for r in found}
    for key in told:  # the release they were told of is still planned: no correction
        assert reasons[key] == "the period's facts no longer require it"
        assert notices(engine, key) == [("notice", "delivered")]
    assert notices(engine, untold) == [("notice", "voided")]
    # the IDV and the victim who still wants to be told keep theirs
    for key in ["idv.release|P1|release|-", "victim.release|P1|release|V4"]:
        assert rows[key]["status"] == "delivered"


# -- one set of facts, one answer ---------------------------------------------------------------

MUNICIPALITIES = ["GM0363", "GM0599", None]


@st.composite
def history(draw: st.DrawFn, n: int) -> list[dict[str, Any]]:
    """A consistent history of one period: intake, planning, leaves, escapes, a release or a
    death, victims and corrections, with event times that make every timing rule matter."""
    ref, bsn = f"P{n}", (BSN, BSN2)[n % 2]
    day = float(draw(st.integers(0, 3)))
    residence = draw(st.sampled_from(MUNICIPALITIES))
    planned = draw(st.sampled_from([None, "2025-02-20", "2025-03-10"]))
    category = draw(st.sampled_from(["zeden", "vermogen"]))
    fields: dict[str, Any] = {
        "offences": [{"category": category, "statutory_max_years": 8}],
        "sentence_days": draw(st.sampled_from([300, 3650])),
        "residence_municipality": residence,
        "planned_release_date": planned,
    }
    out = [_without_none(intake(f"{ref}-0", day, ref, bsn=bsn, fields=fields))]
    status, withdrawable, victims = "in_custody", [], []
    for i in range(1, draw(st.integers(0, 6)) + 1):
        day += draw(st.sampled_from([0.5, 2, 5, 9]))
        eid = f"{ref}-{i}"
        options = {
            "in_custody": [
                "release_date_set",
                "leave_granted",
                "leave_start",
                "escape",
                "victim",
                "title_change",
            ],
            "on_leave": ["leave_end", "victim"],
            "escaped": ["recapture", "victim"],
        }[status]
        kind = draw(st.sampled_from(options))
        if kind == "victim":
            # a new victim, or one registered before who no longer wants to be told
            if victims and draw(st.booleans()):
                again = victim(eid, day, draw(st.sampled_from(victims)), bsn=bsn, period=ref)
                out.append({**again, "wants_information": False})
            else:
                victims.append(f"V{n}{i}")
                out.append(victim(eid, day, victims[-1], bsn=bsn, period=ref))
            withdrawable.append(eid)
            continue
        extra: dict[str, Any] = {}
        if kind == "title_change":  # in and out of the serious titles' and victims' scope
            extra["title"] = draw(st.sampled_from(["tbs", "prison_sentence", "pre_trial"]))
        if kind == "release_date_set":
            extra["planned_release_date"] = draw(st.sampled_from(["2025-02-20", "2025-03-10"]))
            if draw(st.booleans()):
                extra["return_municipality"] = draw(st.sampled_from(MUNICIPALITIES[:2]))
            withdrawable.append(eid)
        elif kind == "leave_granted":
            start = msg("x", "x", day + draw(st.sampled_from([3, 10])))["occurred_at"]
            extra.update(leave_from=start, leave_until=start, leave_municipality="GM0599")
            withdrawable.append(eid)
        elif kind == "leave_start":
            extra["leave_municipality"] = "GM0599"
            status = "on_leave"
        elif kind in ("leave_end", "recapture"):
            status = "in_custody"
        elif kind == "escape":
            status = "escaped"
        out.append(msg(kind, eid, day, ref, bsn=bsn, **extra))
    if status == "in_custody" and draw(st.booleans()):
        day += draw(st.sampled_from([1, 20, 45]))
        kind = draw(st.sampled_from(["end_of_sentence", "court_order", "death"]))
        if kind == "death":
            out.append(msg("death", f"{ref}-end", day, ref, bsn=bsn))
        else:
            out.append(msg("release", f"{ref}-end", day, ref, bsn=bsn, release_kind=kind))
        if draw(st.booleans()):
            out.append(victim(f"{ref}-late", day + 3, f"V{n}late", bsn=bsn, period=ref))
    for j, target in enumerate(withdrawable):
        if draw(st.booleans()):
            out.append(msg("correction", f"{ref}-c{j}", day + 1, ref, bsn=bsn, withdraws=target))
    return out


@st.composite
def feeds(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[int]]:
    messages = [m for n in range(draw(st.integers(1, 2))) for m in draw(history(n))]
    arrival = draw(st.permutations(messages))
    sizes = draw(st.lists(st.integers(1, 6), min_size=1, max_size=6))
    return messages, arrival, sizes


@settings(
    max_examples=int(os.environ.get("TERUGKEER_TEST_EXAMPLES", "30")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(feed_=feeds())
def test_any_batching_and_order_give_the_same_obligations(
    engine: Engine,
    feed_: tuple[list[dict[str, Any]], list[dict[str, Any]], list[int]],
) -> None:
    """Obligations (recipient, planned moment, due time, lateness and its reason, status,
    cause) of the whole feed in one batch equal those fed one message at a time in event
    order, and those of any other batching and arrival order. No worker runs here, so nobody is told before the end: an obligation that
    one path created and voided again is one the other path rightly never made."""
    messages, arrival, sizes = feed_
    empty_all(engine)
    ordered = sorted(messages, key=lambda m: (m["occurred_at"], m["event_id"]))
    ingest_text(engine, "".join(json.dumps(m) + "\n" for m in ordered), hooks=hooks())
    in_one_batch = stored(engine, voided=False)

    empty_all(engine)
    for m in ordered:
        ingest_text(engine, json.dumps(m) + "\n", hooks=hooks())
    one_at_a_time = stored(engine, voided=False)
    assert one_at_a_time == in_one_batch

    empty_all(engine)
    i = k = 0
    while i < len(arrival):
        size = sizes[k % len(sizes)]
        chunk = "\n".join(json.dumps(m) for m in arrival[i : i + size]) + "\n"
        ingest_text(engine, chunk, hooks=hooks())
        i, k = i + size, k + 1
    assert stored(engine, voided=False) == one_at_a_time


# -- when a notice may go out -------------------------------------------------------------------


def _days_ago(days: float) -> float:
    """``days`` before now, as the feed builders count (days after T0)."""
    return (datetime.now(UTC) - T0).total_seconds() / 86400 - days


def test_the_start_of_detention_signal_waits_for_its_due_time(engine: Engine) -> None:
    """The nazorg signal (send = at_due) is not sent before the stay reaches 10 days, so a
    municipality never hears of a stay that ends sooner; a planned notice goes out at once."""
    feed(engine, intake("e1", _days_ago(1), fields={"planned_release_date": "2099-01-01"}))
    dispatch_once(engine)
    assert notices(engine, "nazorg.intake|P1|intake|-") == [("notice", "pending")]
    assert notices(engine, "mayor.release|P1|release|-") == [("notice", "delivered")]
    due = stored(engine)["nazorg.intake|P1|intake|-"]["due_at"]
    dispatch_once(engine, due)
    assert notices(engine, "nazorg.intake|P1|intake|-") == [("notice", "delivered")]


def test_a_stay_that_ends_within_ten_days_never_reaches_the_municipality(engine: Engine) -> None:
    feed(engine, intake("e1", _days_ago(3)))
    dispatch_once(engine)
    feed(engine, msg("release", "e2", _days_ago(1), release_kind="court_order"))
    dispatch_once(engine, datetime.now(UTC) + timedelta(days=30))
    assert notices(engine, "nazorg.intake|P1|intake|-") == [("notice", "voided")]


def test_naming_the_municipality_resolves_the_operator_s_alert(engine: Engine) -> None:
    feed(
        engine,
        _without_none(
            intake("e1", 0, fields={"residence_municipality": None, "planned_release_date": None})
        ),
    )
    escalate(engine, datetime.now(UTC))
    key = stored_ids(engine)["nazorg.intake|P1|intake|-"]
    assert open_alert_keys(engine) >= {f"unresolved:{key}"}
    feed(engine, msg("release_date_set", "e2", 5, planned_release_date="2025-06-01",
                     return_municipality="GM0363"))  # fmt: skip
    assert f"unresolved:{key}" not in open_alert_keys(engine)


def stored_ids(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {r.key: r.id for r in conn.execute(select(obligations.c.key, obligations.c.id))}


def open_alert_keys(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(select(alerts.c.key).where(alerts.c.status == "open")).scalars())
