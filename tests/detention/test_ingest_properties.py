"""Property: replaying a consistent feed in any order, with duplicates, in any batch sizes,
gives exactly the periods that folding its events in time order gives, and a rebuild of all
periods from the stored events agrees with what ingest stored."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select

from terugkeer.detention.ingest import ingest_text
from terugkeer.detention.parse import parse_line
from terugkeer.detention.periods import fold
from terugkeer.detention.store import check_periods, load_periods
from terugkeer.detention.tables import feed_events, quarantine
from tests.conftest import empty_all
from tests.feedutil import intake, msg

BSNS = ["999993653", "999990019", "111222333", "10000008"]


@st.composite
def period_events(draw: st.DrawFn, n: int) -> list[dict[str, Any]]:
    ref = f"P{n}"
    bsn = BSNS[n % len(BSNS)]
    day = float(draw(st.integers(0, 5)) + 10 * n)
    if draw(st.integers(0, 4)) == 0:
        # an intake for the wrong person, withdrawn, and the period taken in again for the
        # right one (before or after the correction in event time)
        wrong = BSNS[(n + 1) % len(BSNS)]
        again = day + draw(st.sampled_from([0.5, 2.0]))
        return [
            intake(f"{ref}-0", days=day, period=ref, bsn=wrong),
            msg(
                "correction",
                f"{ref}-c",
                day + 1,
                draw(st.sampled_from([ref, None])),  # a correction need not name the period
                bsn=wrong,
                withdraws=f"{ref}-0",
            ),
            intake(f"{ref}-0b", days=again, period=ref, bsn=bsn),
        ]
    out = [intake(f"{ref}-0", days=day, period=ref, bsn=bsn)]
    status = "in_custody"
    withdrawable: list[str] = []
    for i in range(1, draw(st.integers(0, 8)) + 1):
        day += draw(st.integers(1, 30)) + 0.25
        eid = f"{ref}-{i}"
        options = {
            "in_custody": ["release_date_set", "transfer", "leave_start", "escape", "title_change"],
            "on_leave": ["leave_end", "escape", "release_date_set"],
            "escaped": ["recapture", "release_date_set"],
        }[status]
        kind = draw(st.sampled_from(options))
        fields: dict[str, Any] = {}
        if kind == "release_date_set":
            fields["planned_release_date"] = f"2026-0{draw(st.integers(1, 9))}-15"
            withdrawable.append(eid)
        elif kind == "transfer":
            fields["to_institution"] = draw(st.sampled_from(["PI-ZWO", "PI-VUG", "PI-ALM"]))
            withdrawable.append(eid)
        elif kind == "title_change":
            fields["title"] = "prison_sentence"
            fields["sentence_days"] = draw(st.integers(20, 900))
            withdrawable.append(eid)
        elif kind == "leave_start":
            fields["leave_municipality"] = "GM0599"
            status = "on_leave"
        elif kind in ("leave_end", "recapture"):
            status = "in_custody"
        elif kind == "escape":
            status = "escaped"
        out.append(msg(kind, eid, day, ref, bsn=bsn, **fields))
    if status in ("in_custody", "on_leave") and draw(st.booleans()):
        day += 3
        if draw(st.integers(0, 9)) == 0:
            out.append(msg("death", f"{ref}-end", day, ref, bsn=bsn))
        else:
            out.append(
                msg("release", f"{ref}-end", day, ref, bsn=bsn, release_kind="end_of_sentence")
            )
    for j, target in enumerate(withdrawable):
        if draw(st.booleans()):
            out.append(
                msg("correction", f"{ref}-c{j}", day + 1 + j, ref, bsn=bsn, withdraws=target)
            )
    return out


@st.composite
def feeds(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[str], list[int]]:
    n = draw(st.integers(1, len(BSNS)))
    messages = [m for i in range(n) for m in draw(period_events(i))]
    arrival = draw(st.permutations([json.dumps(m) for m in messages]))
    dups = draw(st.lists(st.sampled_from(arrival), max_size=5))
    for d in dups:
        arrival.insert(draw(st.integers(0, len(arrival))), d)
    sizes = draw(st.lists(st.integers(1, 7), min_size=1, max_size=10))
    return messages, arrival, sizes


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(feed=feeds())
def test_any_order_and_duplicates_give_the_same_periods(
    engine: Engine, feed: tuple[list[dict[str, Any]], list[str], list[int]]
) -> None:
    messages, arrival, sizes = feed
    empty_all(engine)
    i = 0
    k = 0
    while i < len(arrival):
        size = sizes[k % len(sizes)]
        ingest_text(engine, "\n".join(arrival[i : i + size]) + "\n")
        i += size
        k += 1

    withdrawn = {m["withdraws"] for m in messages if m["kind"] == "correction"}
    by_period: dict[str, list[Any]] = {}
    for m in messages:
        if m["kind"] != "correction" and m["event_id"] not in withdrawn:
            by_period.setdefault(m["period"], []).append(parse_line(json.dumps(m)))
    expected = {ref: fold(evs) for ref, evs in by_period.items()}

    with engine.connect() as conn:
        assert (
            conn.execute(
                select(func.count()).select_from(quarantine).where(quarantine.c.status == "open")
            ).scalar_one()
            == 0
        )
        assert conn.execute(select(func.count()).select_from(feed_events)).scalar_one() == len(
            messages
        )
        stored = {ref: s.comparable() for ref, (_, _, s) in load_periods(conn).items()}
        assert stored == {ref: s.comparable() for ref, s in expected.items() if s is not None}
        assert check_periods(conn) == []
