"""The inbox's history counted as it changes: how many told notices (with a ``delivered_at``)
each organisation's inbox holds, without counting them on every request.

Triggers on ``obligations`` (migration 0015) append a row of +1 or -1 to ``inbox_tallies`` in
the transaction that tells a notice, untells it (sent again to a new recipient) or moves it to
another recipient; an organisation's count is the sum of its rows. Rows are only appended, so
concurrent transactions never wait for one another on a counter. The worker folds them every
check cycle (:func:`fold`) into one row per organisation, so that the sum reads a few rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    and_,
    case,
    false,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    union_all,
)

from terugkeer.notify.tables import inbox_tallies, obligations

VICTIM = "victim"  # counted under the reference "": the IDV's inbox holds every victim's notices

Key = tuple[str, str]


def key(recipient_kind: str, recipient_ref: str | None) -> Key:
    """The row an obligation counts under (as the triggers of migration 0015 name it)."""
    return (recipient_kind, "" if recipient_kind == VICTIM else recipient_ref or "")


def told(keys: Sequence[Key]) -> ColumnElement[Any]:
    """The number of told notices of these organisations: a scalar subquery."""
    t = inbox_tallies.c
    return (
        select(func.coalesce(func.sum(t.n), 0))
        .where(or_(false(), *(and_(t.recipient_kind == k, t.recipient_ref == r) for k, r in keys)))
        .scalar_subquery()
    )


FOLD_POSTGRES = """
WITH gone AS (
    DELETE FROM inbox_tallies
    WHERE (recipient_kind, recipient_ref) IN (
        SELECT recipient_kind, recipient_ref FROM inbox_tallies
        GROUP BY recipient_kind, recipient_ref HAVING count(*) > 1)
    RETURNING recipient_kind, recipient_ref, n),
folded AS (
    INSERT INTO inbox_tallies (recipient_kind, recipient_ref, n)
    SELECT recipient_kind, recipient_ref, sum(n) FROM gone
    GROUP BY recipient_kind, recipient_ref HAVING sum(n) <> 0
    RETURNING 1)
SELECT (SELECT count(*) FROM gone) - (SELECT count(*) FROM folded)
"""


def fold(engine: Engine) -> int:
    """Replace each organisation's rows by one holding their sum (none when it is 0); the
    number of rows removed. Safe beside anything else: on PostgreSQL one statement deletes
    the rows it sums (a concurrent fold skips those already gone, and rows appended meanwhile
    are not in its snapshot); on SQLite it holds the write lock throughout."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            return int(conn.execute(text(FOLD_POSTGRES)).scalar_one())
        return _fold_sqlite(conn)


def _sqlite_write_lock(conn: Connection) -> None:
    """SQLite's write lock for the rest of the transaction: no other writer until it ends."""
    conn.exec_driver_sql("UPDATE inbox_tallies SET n = n WHERE 0")


def _fold_sqlite(conn: Connection) -> int:
    _sqlite_write_lock(conn)
    t = inbox_tallies.c
    sums = conn.execute(
        select(t.recipient_kind, t.recipient_ref, func.sum(t.n), func.count())
        .group_by(t.recipient_kind, t.recipient_ref)
        .having(func.count() > 1)
    ).all()
    for kind, ref, total, _ in sums:
        conn.execute(inbox_tallies.delete().where(t.recipient_kind == kind, t.recipient_ref == ref))
        if total:
            conn.execute(
                inbox_tallies.insert().values(recipient_kind=kind, recipient_ref=ref, n=total)
            )
    return sum(rows - (1 if total else 0) for _, _, total, rows in sums)


def _counted_key() -> tuple[ColumnElement[Any], ColumnElement[Any]]:
    """An obligation's tally key in SQL, as the triggers name it."""
    o = obligations.c
    ref = case((o.recipient_kind == VICTIM, literal("")), else_=func.coalesce(o.recipient_ref, ""))
    return o.recipient_kind, ref


def differences(engine: Engine) -> dict[Key, tuple[int, int]]:
    """The organisations whose tally is not the number of their told notices: (tallied,
    counted), read in one statement (one snapshot). Counts every told notice: for an
    operator's check, not for each request."""
    kind, ref = _counted_key()
    t = inbox_tallies.c
    both = union_all(
        select(t.recipient_kind.label("k"), t.recipient_ref.label("r"), t.n, literal(0).label("c")),
        select(kind, ref, literal(0), literal(1)).where(obligations.c.delivered_at.is_not(None)),
    ).subquery()
    tallied, counted = func.sum(both.c.n), func.sum(both.c.c)
    with engine.connect() as conn:
        rows = conn.execute(
            select(both.c.k, both.c.r, tallied, counted)
            .group_by(both.c.k, both.c.r)
            .having(tallied != counted)
        ).all()
    return {(k, r): (int(n), int(c)) for k, r, n, c in rows}


def recount(engine: Engine) -> int:
    """Write the tallies anew from the notices, one row per organisation, with the notices
    locked against change meanwhile (after a repair that bypassed the triggers); the number
    of organisations."""
    kind, ref = _counted_key()
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("LOCK TABLE obligations IN SHARE MODE"))
        else:
            _sqlite_write_lock(conn)
        conn.execute(inbox_tallies.delete())
        counts = (
            select(kind, ref, func.count())
            .where(obligations.c.delivered_at.is_not(None))
            .group_by(kind, ref)
        )
        conn.execute(
            insert(inbox_tallies).from_select(["recipient_kind", "recipient_ref", "n"], counts)
        )
        return int(conn.execute(select(func.count()).select_from(inbox_tallies)).scalar_one())


def fold_check(engine: Engine, _now: Any) -> dict[str, int]:
    """The worker's check (``notify/worker.py`` ``CHECKS``): fold the tallies."""
    return {"folded": fold(engine)}
