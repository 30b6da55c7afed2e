"""The inbox read in parts (inbox._segments, for ix_obligations_inbox) gives the same pages and
totals as one query over all of an organisation's notices would: whatever the notices (read
or not, awaiting acknowledgement or not, sent again to a new recipient without a delivered_at
of their own), in both orders, with every filter, at every offset. Hypothesis, on both stores."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
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
        "ours": st.sampled_from(["mine", "mine", "mine", "other"]),
        "minute": st.integers(0, 5),  # ties in delivered_at and due_at are common
        "due": st.integers(0, 5),
    }
)


def _store(engine: Engine, notices: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The notices as rows (with their deliveries); returns the expected inbox order's input."""
    rows = []
    with engine.begin() as conn:
        for i, n in enumerate(notices, start=1):
            at = T0 + timedelta(minutes=n["minute"])
            row = {
                "id": i, "key": f"k{i}", "rule_id": "mayor.release", "rule_version": "1",
                "period_ref": f"P{i}", "occurrence": "release", "subject": "release",
                "recipient_kind": "mayor",
                "recipient_ref": "GM0363" if n["ours"] == "mine" else "GM0599",
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


def _expected(rows: list[dict[str, Any]], urgent: bool, **filters: bool) -> list[int]:
    """One sort over all the organisation's notices, as the inbox was written before."""
    mine = [
        r
        for r in rows
        if r["recipient_ref"] == "GM0363"
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
    max_examples=12,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    notices=st.lists(notice, max_size=14),
    urgent=st.booleans(),
    unread=st.booleans(),
    unacknowledged=st.booleans(),
    limit=st.integers(1, 4),
)
def test_pages_and_totals_are_those_of_one_sort(
    engine: Engine,
    notices: list[dict[str, Any]],
    urgent: bool,
    unread: bool,
    unacknowledged: bool,
    limit: int,
) -> None:
    empty_all(engine)
    rows = _store(engine, notices)
    expected = _expected(rows, urgent, unread=unread, unacknowledged=unacknowledged)
    seen: list[int] = []
    with engine.begin() as conn:
        for offset in range(0, len(expected) + limit, limit):
            page = list_notices(
                conn, "mayor", "GM0363", actor=ACTOR, unread=unread,
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


NOTICE = {"told": True, "delivered_before": False, "read": False, "awaiting": True,
          "ours": "mine", "minute": 0, "due": 0}  # fmt: skip


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
