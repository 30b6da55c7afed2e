"""Comparing the required obligations with the stored ones: FULL OUTER JOINs that return only
the differences, and the details of the obligations found missing or differing."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Connection, Select, and_, or_, select, text, union_all

from terugkeer.db.bulk import chunks
from terugkeer.notify.assurance.reconcile.dialect import Sql
from terugkeer.notify.assurance.reconcile.expected import Expected
from terugkeer.notify.assurance.reconcile.report import VOIDED, Gap, ReconcileReport, iso
from terugkeer.notify.rules.ruleset import RuleSet
from terugkeer.notify.tables import obligations


@dataclass(slots=True)
class Row:
    """One expected obligation, as the SQL gave it."""

    key: str
    rule_id: str
    recipient_kind: str
    period_ref: str
    occurrence: str
    recipient_ref: str | None
    source: str
    cause_event_id: str | None
    event_at: datetime | None
    scope_known_at: datetime | None
    planned_release_date: date | None
    planned_for: datetime | None
    due_at: datetime | None
    late: bool
    intake_at: datetime | None
    ended_at: datetime | None


def _difference(
    selects: Sequence[Select[Any]], rule_ids: frozenset[str], inside: bool
) -> Select[Any]:
    """The differences between the obligations required by ``selects`` and those stored for
    the rules ``rule_ids`` (``inside``) or all other rules (not ``inside``; also rules no longer
    in the rule file): required but absent or voided, stored but not required, and stored
    with another recipient, due time or lateness than required (the lateness of a backfilled
    obligation is always "alsnog")."""
    expected = (union_all(*selects) if len(selects) > 1 else selects[0]).subquery("expected")
    x, o = expected.c, obligations.c
    ours = o.rule_id.in_(sorted(rule_ids)) if inside else o.rule_id.not_in(sorted(rule_ids))
    return (
        select(
            x.key,
            x.recipient_ref,
            x.period_id,
            x.due_at,
            x.late,
            o.id.label("o_id"),
            o.key.label("o_key"),
            o.rule_id.label("o_rule_id"),
            o.period_ref.label("o_period_ref"),
            o.occurrence.label("o_occurrence"),
            o.recipient_kind.label("o_recipient_kind"),
            o.recipient_ref.label("o_recipient_ref"),
            o.status.label("o_status"),
            o.due_at.label("o_due_at"),
            o.late.label("o_late"),
            o.cause_event_id.label("o_cause_event_id"),
        )
        .select_from(expected.join(obligations, o.key == x.key, full=True))
        .where(
            or_(
                o.id.is_(None),
                and_(x.key.is_(None), o.status != VOIDED, ours),
                and_(
                    x.key.is_not(None),
                    or_(
                        o.status == VOIDED,
                        o.recipient_ref.is_distinct_from(x.recipient_ref),
                        o.due_at.is_distinct_from(x.due_at),
                        and_(o.backfilled.is_(False), o.late != x.late),
                    ),
                ),
            )
        )
    )


def settings(conn: Connection) -> None:
    """Per transaction, on PostgreSQL: the comparison is a hash join of two large sets, so
    give it the memory; and the query is large, so compiling it (JIT) costs more than it
    saves."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SET LOCAL work_mem = '256MB'"))
        conn.execute(text("SET LOCAL jit = off"))


def _run(
    conn: Connection, statements: list[Select[Any]], apart: bool, meanwhile: Callable[[], None]
) -> list[list[Any]]:
    """Run the statements, and ``meanwhile`` on ``conn``. With ``apart``, each statement runs
    on its own connection, at the same time (the store runs them on different cores, and the
    Python of ``meanwhile`` runs while they wait); each compares a disjoint set of rules
    within one snapshot."""
    if not apart or len(statements) < 2:
        meanwhile()
        return [list(conn.execute(stmt)) for stmt in statements]
    engine = conn.engine

    def one(stmt: Select[Any]) -> list[Any]:
        with engine.connect() as own, own.begin():
            settings(own)
            return list(own.execute(stmt))

    with ThreadPoolExecutor(len(statements), thread_name_prefix="reconcile") as pool:
        running = [pool.submit(one, stmt) for stmt in statements]
        meanwhile()
        return [f.result() for f in running]


def _stored_gap(kind: str, row: Any, **extra: Any) -> Gap:
    return Gap(
        kind,
        row.o_key,
        row.o_rule_id,
        row.o_period_ref,
        row.o_occurrence,
        row.o_recipient_kind,
        row.o_recipient_ref,
        utc(row.o_due_at),
        row.o_status,
        row.o_id,
        row.o_cause_event_id,
        late=bool(row.o_late),
        **extra,
    )


def find_differences(
    conn: Connection,
    rules: RuleSet,
    report: ReconcileReport,
    *,
    apart: bool = False,
    meanwhile: Callable[[], None] = lambda: None,
) -> list[Row]:
    """Fill ``report.extra``, ``wrong_recipient`` and ``wrong_timing``; return the
    obligations that are required but absent or voided.

    FULL OUTER JOINs of the required obligations with the stored ones return only the
    differences: one for the release obligations and one for all others — with ``apart``, at
    the same time on two connections. The details of the missing
    obligations are then computed again for their periods alone (the same SQL, restricted)."""
    sql = Sql(conn.dialect.name)
    built = Expected(sql, rules)
    # two halves of about the same size, each one pass over the periods: the release
    # obligations (which read when each planned date became known) and all others (the
    # intake signal of every adult, and the event-level obligations)
    releases = frozenset(r.id for r in rules.rules if r.subject == "release")
    first, second = (
        built.period_rules(("release",)),
        [
            *built.period_rules(("intake",)),
            *built.event_rules(),
        ],
    )
    statements = [
        _difference(selects, releases, inside=inside)
        for selects, inside in ((first, True), (second, False))
        if selects
    ]
    results = _run(conn, statements, apart, meanwhile)
    missing: dict[str, int] = {}  # key -> period id
    for row in sorted((r for rows in results for r in rows), key=lambda r: r.key or r.o_key):
        if row.key is None:
            report.extra.append(_stored_gap("extra", row))
        elif row.o_id is None or row.o_status == VOIDED:
            missing.setdefault(row.key, row.period_id)
        elif row.o_recipient_ref != row.recipient_ref:
            report.wrong_recipient.append(
                _stored_gap(
                    "wrong_recipient",
                    row,
                    expected_recipient=row.recipient_ref,
                    note=(
                        "the recipient is known now"
                        if row.o_recipient_ref is None
                        else f"the stored facts give {row.recipient_ref or 'no known recipient'}"
                    ),
                )
            )
        else:
            due, late = utc(row.due_at), bool(row.late)
            report.wrong_timing.append(
                _stored_gap(
                    "wrong_timing",
                    row,
                    expected_due_at=due,
                    expected_late=late,
                    note=(
                        f"the stored facts give due {iso(due)}"
                        + (", late" if late else ", not late")
                    ),
                )
            )
    detailed = _details(conn, sql, rules, sorted(set(missing.values())), set(missing))
    return [detailed[k] for k in sorted(missing) if k in detailed]


def _details(
    conn: Connection, sql: Sql, rules: RuleSet, periods: list[int], keys: set[str]
) -> dict[str, Row]:
    """The required obligations ``keys`` in full, computed for their periods only (a key
    whose facts changed since the comparison read them is left out: the next run decides)."""
    out: dict[str, Row] = {}
    for chunk in chunks(periods):
        detail = Expected(sql, rules, period_ids=chunk).query()
        for r in conn.execute(select(detail)):
            if r.key not in keys or r.key in out:
                continue
            out[r.key] = Row(
                r.key,
                r.rule_id,
                r.recipient_kind,
                r.period_ref,
                r.occurrence,
                r.recipient_ref,
                r.source,
                r.cause_event_id,
                utc(r.event_at),
                utc(r.scope_known_at),
                as_date(r.planned_release_date),
                utc(r.planned_for),
                utc(r.due_at),
                bool(r.late),
                utc(r.intake_at),
                utc(r.ended_at),
            )
    return out


def utc(value: Any) -> Any:
    if isinstance(value, str):  # a computed column on SQLite comes back as text
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value


def as_date(value: Any) -> date | None:
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value))
