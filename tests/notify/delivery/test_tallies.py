"""The inbox tallies (migration 0015, notify/delivery/tallies.py): whatever is done to the
notices, each organisation's tally is the number of its told notices, before and after the
worker folds them; the inbox's total is read from them. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, delete, func, insert, select, update
from typer.testing import CliRunner

from terugkeer.cli import app
from terugkeer.db.engine import make_engine
from terugkeer.detention.ingest import ingest_text
from terugkeer.migrations import upgrade
from terugkeer.notify.delivery import tallies
from terugkeer.notify.delivery.inbox import list_notices
from terugkeer.notify.hook import notify_hook
from terugkeer.notify.tables import inbox_tallies, obligations
from terugkeer.security.actor import Actor
from tests.conftest import empty_all
from tests.feedutil import intake, lines, msg
from tests.plans import statements

T0 = datetime(2026, 1, 1, tzinfo=UTC)
ACTOR = Actor.system("test", "inbox tallies")
RECIPIENTS = [("mayor", "GM0363"), ("mayor", "GM0599"), ("victim", "V1"), ("victim", "V2"),
              ("idv", "OM-IDV"), ("mayor", None)]  # fmt: skip


def counted(engine: Engine) -> Counter[tallies.Key]:
    """Each organisation's told notices, counted from the notices themselves."""
    with engine.connect() as conn:
        found = conn.execute(
            select(obligations.c.recipient_kind, obligations.c.recipient_ref).where(
                obligations.c.delivered_at.is_not(None)
            )
        ).all()
    return Counter(tallies.key(kind, ref) for kind, ref in found)


def tallied(engine: Engine) -> Counter[tallies.Key]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(inbox_tallies.c.recipient_kind, inbox_tallies.c.recipient_ref, inbox_tallies.c.n)
        ).all()
    sums: Counter[tallies.Key] = Counter()
    for kind, ref, n in rows:
        sums[(kind, ref)] += n
    return +sums  # without the organisations whose count went back to 0


def tally_rows(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(inbox_tallies)).scalar_one())


def _row(i: int, recipient: tuple[str, str | None], told: bool) -> dict[str, Any]:
    kind, ref = recipient
    return {
        "id": i, "key": f"k{i}", "rule_id": f"{kind}.release", "rule_version": "1",
        "period_ref": f"P{i}", "occurrence": "release", "subject": "release",
        "recipient_kind": kind, "recipient_ref": ref, "cause_event_id": f"e{i}",
        "planned_for": None, "due_at": T0, "status": "delivered" if told else "open",
        "late": False, "late_reason": None, "facts": json.dumps({}), "version": 1,
        "created_at": T0, "updated_at": T0, "delivered_at": T0 if told else None,
        "acknowledged_at": None, "acknowledged_by": None, "ack_note": None,
        "void_reason": None, "escalation": 0, "backfilled": False,
    }  # fmt: skip


recipient = st.sampled_from(RECIPIENTS)
change = st.one_of(
    st.tuples(st.just("insert"), recipient, st.booleans()),
    st.tuples(st.just("tell"), st.integers(0, 20), st.integers(0, 3)),  # a new delivered_at
    st.tuples(st.just("untell"), st.integers(0, 20)),  # sent again to a new recipient
    st.tuples(st.just("move"), st.integers(0, 20), recipient),
    st.tuples(st.just("delete"), st.integers(0, 20)),
    st.tuples(st.just("fold")),
)


@settings(
    max_examples=25,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(changes=st.lists(change, max_size=30), batch=st.integers(1, 5))
@example(  # each kind of change once, to a told notice
    changes=[
        ("insert", ("mayor", "GM0363"), True),
        ("insert", ("victim", "V1"), True),
        ("move", 0, ("mayor", "GM0599")),  # to another municipality
        ("move", 0, ("mayor", None)),  # to none known
        ("move", 1, ("victim", "V2")),  # another victim: still the IDV's
        ("fold",),
        ("move", 1, ("idv", "OM-IDV")),
        ("untell", 0),
        ("tell", 0, 1),
        ("tell", 0, 2),  # told again: no change
        ("delete", 1),
    ],
    batch=1,
)
def test_a_tally_is_the_number_of_told_notices_whatever_happens(
    engine: Engine, changes: list[tuple[Any, ...]], batch: int
) -> None:
    """Notices told, told again, untold, moved to another recipient and deleted, in
    transactions of ``batch`` changes, with folds in between: after each transaction, and
    after a last fold, the tallies are the counts; a fold leaves one row per organisation."""
    empty_all(engine)
    ids: list[int] = []
    for start in range(0, len(changes), batch):
        with engine.begin() as conn:
            for c in changes[start : start + batch]:
                if c[0] == "insert":
                    ids.append(len(ids) + 1)
                    conn.execute(insert(obligations).values(**_row(ids[-1], c[1], c[2])))
                    continue
                if c[0] == "fold" or not ids:
                    continue
                target = obligations.c.id == ids[c[1] % len(ids)]
                if c[0] == "tell":
                    at = T0 + timedelta(minutes=c[2])
                    conn.execute(update(obligations).where(target).values(delivered_at=at))
                elif c[0] == "untell":
                    conn.execute(update(obligations).where(target).values(delivered_at=None))
                elif c[0] == "move":
                    kind, ref = c[2]
                    conn.execute(
                        update(obligations)
                        .where(target)
                        .values(recipient_kind=kind, recipient_ref=ref)
                    )
                else:
                    conn.execute(delete(obligations).where(target))
        if any(c[0] == "fold" for c in changes[start : start + batch]):
            tallies.fold(engine)
        assert tallied(engine) == +counted(engine)
    tallies.fold(engine)
    assert tallied(engine) == +counted(engine)
    assert tally_rows(engine) == len(+counted(engine))
    assert tallies.differences(engine) == {}


def test_the_notices_the_rules_and_the_dispatcher_change_are_tallied(engine: Engine) -> None:
    """Through the real paths: a notice delivered to the mayor of Amsterdam, then sent again
    to another municipality named later (it leaves Amsterdam's inbox), delivered there."""
    hook = [notify_hook()]
    ingest_text(engine, lines(intake("e1")), hooks=hook)
    with engine.begin() as conn:
        (mayor,) = conn.execute(
            select(obligations.c.id).where(obligations.c.rule_id == "mayor.release")
        ).all()
        conn.execute(  # as the dispatcher records a delivered notice
            update(obligations)
            .where(obligations.c.id == mayor.id)
            .values(status="delivered", delivered_at=T0)
        )
    assert tallied(engine)[("mayor", "GM0363")] == 1
    ingest_text(
        engine,
        lines(msg("release_date_set", "e2", 5, planned_release_date="2026-02-10",
                  return_municipality="GM0599")),
        hooks=hook,
    )  # fmt: skip
    assert tallied(engine) == +counted(engine)
    assert tallied(engine)[("mayor", "GM0363")] == 0


def test_the_inbox_total_is_read_from_the_tally(engine: Engine) -> None:
    """Without a filter the inbox does not count its history: its total is the tally's, in
    the statement that counts the rest."""
    empty_all(engine)
    with engine.begin() as conn:
        for i in range(1, 6):
            conn.execute(insert(obligations).values(**_row(i, ("mayor", "GM0363"), told=True)))
            conn.execute(insert(obligations).values(**_row(i + 5, ("victim", f"V{i}"), told=True)))
    with statements(engine, lambda sql: "count(" in sql) as asked, engine.begin() as conn:
        mayor = list_notices(conn, "mayor", "GM0363", actor=ACTOR, limit=2)
        idv = list_notices(conn, "idv", "OM-IDV", actor=ACTOR, limit=2)
        victims = list_notices(conn, "idv", "OM-IDV", actor=ACTOR, kinds=["victim"], limit=2)
        none = list_notices(conn, "idv", "OM-IDV", actor=ACTOR, kinds=["idv"], limit=2)
    # the told notices are in the tallies only; the untold ones ask their deliveries
    assert all("inbox_tallies" in sql for sql, _ in asked)
    assert (mayor.total, idv.total, victims.total, none.total) == (5, 5, 5, 0)


@pytest.mark.parametrize("empty_database_url", ["sqlite", "postgresql"], indirect=True)
def test_the_migration_counts_what_is_told_already(empty_database_url: str) -> None:
    """A store with notices before migration 0015 starts with their tallies, one row per
    organisation."""
    engine = make_engine(empty_database_url)
    try:
        upgrade(engine, "0014")
        with engine.begin() as conn:
            before = [(0, True), (0, True), (2, True), (3, True), (1, False)]
            for i, (to, told) in enumerate(before, start=1):
                conn.execute(insert(obligations).values(**_row(i, RECIPIENTS[to], told)))
        upgrade(engine)
        assert tallied(engine) == {("mayor", "GM0363"): 2, ("victim", ""): 2}
        assert tally_rows(engine) == 2
    finally:
        engine.dispose()


def test_the_command_line_finds_a_wrong_tally_and_writes_them_anew(cli_db: Engine) -> None:
    """``terugkeer notify tallies`` compares each tally with a count of the notices (exit 1
    and one line per organisation when one differs); ``--recount`` writes them anew."""
    with cli_db.begin() as conn:
        for i in range(1, 4):
            conn.execute(insert(obligations).values(**_row(i, RECIPIENTS[i % 2], told=True)))
    assert CliRunner().invoke(app, ["notify", "tallies"]).exit_code == 0
    with cli_db.begin() as conn:  # a repair that bypassed the triggers
        conn.execute(delete(inbox_tallies).where(inbox_tallies.c.recipient_ref == "GM0599"))
        conn.execute(insert(inbox_tallies).values(recipient_kind="victim", recipient_ref="", n=1))
    assert tallies.differences(cli_db) == {("mayor", "GM0599"): (0, 2), ("victim", ""): (1, 0)}
    found = CliRunner().invoke(app, ["notify", "tallies"])
    assert found.exit_code == 1
    assert "mayor GM0599: tallied 0, counted 2" in found.output
    assert "victim (every victim): tallied 1, counted 0" in found.output
    written = CliRunner().invoke(app, ["notify", "tallies", "--recount"])
    assert written.exit_code == 0, written.output
    assert "2 organisations" in written.output
    assert tallies.differences(cli_db) == {}
    assert tally_rows(cli_db) == 2
    assert CliRunner().invoke(app, ["notify", "tallies"]).exit_code == 0
