"""The inbox read in parts (inbox._SEGMENTS, read from the inbox indexes) gives the same pages and
totals as one query over all of an organisation's notices would: whatever the notices (read
or not, awaiting acknowledgement or not, sent again to a new recipient without a delivered_at
of their own), in both orders, with every filter, at every offset. Hypothesis, on both stores."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, insert

from terugkeer.notify.delivery.inbox import list_notices
from terugkeer.notify.tables import deliveries, obligations
from terugkeer.security.actor import Actor
from tests.conftest import empty_all
from tests.plans import assert_served_by, statements

T0 = datetime(2026, 1, 1, tzinfo=UTC)
ACTOR = Actor.system("test", "inbox pages")

notice = st.fixed_dictionaries(
    {
        # a delivered_at, or none: not delivered yet, or sent again to a new recipient
        "told": st.booleans(),
        "delivered_before": st.booleans(),  # without a delivered_at: an older delivery arrived
        "read": st.booleans(),
        "awaiting": st.booleans(),
        # the mayor of GM0363's, another mayor's, the IDV's own, a victim's (the IDV's inbox)
        "ours": st.sampled_from(["mine", "mine", "mine", "other", "idv", "victim", "victim"]),
        "minute": st.integers(0, 5),  # ties in delivered_at and due_at are common
        "due": st.integers(0, 5),
    }
)


NOTICE = {"told": True, "delivered_before": False, "read": False, "awaiting": True,
          "ours": "mine", "minute": 0, "due": 0}  # fmt: skip


# the IDV's own notices and the victims' interleaved: merged page by page
MIXED = [
    dict(NOTICE, ours=ours, minute=minute, due=due, awaiting=due % 2 == 0)
    for ours, minute, due in [
        ("idv", 5, 3),
        ("victim", 4, 1),
        ("idv", 3, 0),
        ("victim", 2, 2),
        ("victim", 1, 5),
        ("idv", 0, 4),
    ]
]


def _store(engine: Engine, notices: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The notices as rows (with their deliveries); returns the expected inbox order's input."""
    rows = []
    with engine.begin() as conn:
        for i, n in enumerate(notices, start=1):
            at = T0 + timedelta(minutes=n["minute"])
            kind, ref = RECIPIENTS[n["ours"]]
            row = {
                "id": i, "key": f"k{i}", "rule_id": f"{kind}.release", "rule_version": "1",
                "period_ref": f"P{i}", "occurrence": "release", "subject": "release",
                "recipient_kind": kind,
                "recipient_ref": ref if kind != "victim" else f"V{i % 3}",
                "cause_event_id": f"e{i}", "planned_for": None,
                "due_at": T0 + timedelta(hours=n["due"]),
                "status": "delivered" if n["awaiting"] else "acknowledged", "late": False,
                "late_reason": None, "facts": json.dumps({}), "version": 1, "created_at": T0,
                "updated_at": T0, "delivered_at": at if n["told"] else None,
                "acknowledged_at": None, "acknowledged_by": None, "ack_note": None,
                "void_reason": None, "escalation": 0, "backfilled": False,
            }  # fmt: skip
            conn.execute(insert(obligations).values(**row))
            delivered = n["told"] or n["delivered_before"]  # the dispatcher's invariant
            conn.execute(
                insert(deliveries).values(
                    obligation_id=i, notice="notice", obligation_version=1, channel="portal",
                    address=None, idempotency_key=f"d{i}",
                    status="delivered" if delivered else "pending", attempts=1,
                    next_attempt_at=T0, last_error=None, created_at=T0,
                    delivered_at=at if delivered else None,
                    read_at=at if delivered and n["read"] else None,
                )
            )  # fmt: skip
            rows.append({**row, "in": delivered, "unread": delivered and not n["read"]})
    return rows


RECIPIENTS = {"mine": ("mayor", "GM0363"), "other": ("mayor", "GM0599"),
              "idv": ("idv", "OM-IDV"), "victim": ("victim", None)}  # fmt: skip
# an inbox as list_notices is asked for it, and the recipient kinds it holds
INBOXES = {
    "mayor": (("mayor", "GM0363", None), {("mayor", "GM0363")}),
    "idv": (("idv", "OM-IDV", None), {("idv", "OM-IDV"), ("victim", None)}),
    "victims": (("idv", "OM-IDV", ["victim"]), {("victim", None)}),
}


def _expected(
    rows: list[dict[str, Any]], urgent: bool, inbox: str = "mayor", **filters: bool
) -> list[int]:
    """One sort over all the organisation's notices, as the inbox was written before."""
    holds = INBOXES[inbox][1]
    mine = [
        r
        for r in rows
        if (r["recipient_kind"], None if r["recipient_kind"] == "victim" else r["recipient_ref"])
        in holds
        and r["in"]
        and (not filters.get("unread") or r["unread"])
        and (not filters.get("unacknowledged") or r["status"] == "delivered")
    ]

    def key(r: dict[str, Any]) -> tuple[Any, ...]:
        awaiting = r["status"] == "delivered"
        told = r["delivered_at"] is not None
        newest = (not told, -(r["delivered_at"].timestamp() if told else 0), -r["id"])
        return ((not awaiting, r["due_at"] if awaiting else T0) if urgent else ()) + newest

    return [r["id"] for r in sorted(mine, key=key)]


@settings(
    max_examples=20,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    notices=st.lists(notice, max_size=14),
    inbox=st.sampled_from(sorted(INBOXES)),
    urgent=st.booleans(),
    unread=st.booleans(),
    unacknowledged=st.booleans(),
    limit=st.integers(1, 4),
)
@example(notices=MIXED, inbox="idv", urgent=False, unread=False, unacknowledged=False, limit=2)
@example(notices=MIXED, inbox="idv", urgent=True, unread=False, unacknowledged=False, limit=2)
def test_pages_and_totals_are_those_of_one_sort(
    engine: Engine,
    notices: list[dict[str, Any]],
    inbox: str,
    urgent: bool,
    unread: bool,
    unacknowledged: bool,
    limit: int,
) -> None:
    empty_all(engine)
    rows = _store(engine, notices)
    expected = _expected(rows, urgent, inbox, unread=unread, unacknowledged=unacknowledged)
    (kind, ref, kinds), _ = INBOXES[inbox]
    seen: list[int] = []
    with engine.begin() as conn:
        for offset in range(0, len(expected) + limit, limit):
            page = list_notices(
                conn, kind, ref, actor=ACTOR, unread=unread, kinds=kinds,
                unacknowledged=unacknowledged, urgent_first=urgent, limit=limit, offset=offset,
            )  # fmt: skip
            assert page.total == len(expected)
            seen += [n.id for n in page.notices]
    assert seen == expected


def test_the_new_filter_reads_the_unread_deliveries_index(engine: Engine) -> None:
    """The "new" filter asks each notice for a delivery delivered and not read yet: the
    partial index of those deliveries answers it (migration 0011), not the index of all
    deliveries with a read of each row from the table."""
    empty_all(engine)
    _store(engine, [dict(n, read=i % 2 == 0) for i, n in enumerate([NOTICE] * 6)])
    with statements(engine, lambda sql: "read_at IS NULL" in sql) as asked, engine.begin() as conn:
        page = list_notices(conn, "mayor", "GM0363", actor=ACTOR, unread=True)
    assert page.total == 3
    assert_served_by(engine, asked, "ix_deliveries_unread")  # the count and the page


def test_the_urgent_part_reads_the_awaiting_index(engine: Engine) -> None:
    """The urgent order's first part, the notices awaiting acknowledgement by due date, is
    read and counted from the partial index of those notices (migration 0014), not found
    among all the inbox's notices and sorted on every request."""
    empty_all(engine)
    _store(engine, [dict(NOTICE, awaiting=i % 3 == 0, due=i) for i in range(9)])
    urgent = "obligations.due_at ASC"
    with statements(engine, lambda sql: urgent in sql) as asked, engine.begin() as conn:
        page = list_notices(conn, "mayor", "GM0363", actor=ACTOR, urgent_first=True, limit=2)
    assert page.total == 9
    assert [n.status for n in page.notices] == ["delivered", "delivered"]
    assert_served_by(engine, asked, "ix_obligations_awaiting")


def test_the_idv_inbox_reads_the_victims_in_order_from_their_index(engine: Engine) -> None:
    """The IDV's inbox holds every victim's notices: a page reads them in delivery order from
    their partial index (migration 0016) and merges them with the IDV's own, instead of
    reading and sorting all of them. On PostgreSQL: SQLite's planner, without statistics,
    takes the index of all notices by recipient and sorts the victims' (the pages are the
    same: the test above)."""
    empty_all(engine)
    rows = _store(engine, MIXED)
    with statements(engine, lambda sql: "UNION ALL" in sql) as asked, engine.begin() as conn:
        page = list_notices(conn, "idv", "OM-IDV", actor=ACTOR, limit=2)
    assert [n.id for n in page.notices] == _expected(rows, False, "idv")[:2]
    assert len(asked) == 1  # the two parts merged in one statement
    if engine.dialect.name == "postgresql":
        assert_served_by(engine, asked, "ix_obligations_victims", in_order=True)
