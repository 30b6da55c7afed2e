"""Comparing the required obligations with the stored ones: FULL OUTER JOINs that return only
the differences, and the details of the obligations found missing or differing."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Connection, Select, and_, or_, select, text, union_all

from terugkeer.db.bulk import chunks
from terugkeer.notify.assurance.reconcile.dialect import Sql
from terugkeer.notify.assurance.reconcile.expected import Expected
from terugkeer.notify.assurance.reconcile.report import VOIDED, Gap, ReconcileReport
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
    leave_from: str | None
    intake_at: datetime | None
    ended_at: datetime | None


def _difference(
    selects: Sequence[Select[Any]], rule_ids: frozenset[str], inside: bool
) -> Select[Any]:
    """The differences between the obligations required by ``selects`` and those stored for
    the rules ``rule_ids`` (``inside``) or all other rules (not ``inside``; also rules no longer
    in the rule file)."""
    expected = (union_all(*selects) if len(selects) > 1 else selects[0]).subquery("expected")
    x, o = expected.c, obligations.c
    ours = o.rule_id.in_(sorted(rule_ids)) if inside else o.rule_id.not_in(sorted(rule_ids))
    return (
        select(
            x.key,
            x.recipient_ref,
            x.period_id,
            o.id.label("o_id"),
            o.key.label("o_key"),
            o.rule_id.label("o_rule_id"),
            o.period_ref.label("o_period_ref"),
            o.occurrence.label("o_occurrence"),
            o.recipient_kind.label("o_recipient_kind"),
            o.recipient_ref.label("o_recipient_ref"),
            o.status.label("o_status"),
            o.due_at.label("o_due_at"),
            o.cause_event_id.label("o_cause_event_id"),
        )
        .select_from(expected.join(obligations, o.key == x.key, full=True))
        .where(
            or_(
                o.id.is_(None),
                and_(x.key.is_(None), o.status != VOIDED, ours),
                and_(
                    x.key.is_not(None),
                    or_(o.status == VOIDED, o.recipient_ref.is_distinct_from(x.recipient_ref)),
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


def find_differences(
    conn: Connection,
    rules: RuleSet,
    report: ReconcileReport,
    *,
    apart: bool = False,
    meanwhile: Callable[[], None] = lambda: None,
) -> list[Row]:
    """Fill ``report.extra`` and ``recipient_differs``; return the obligations that are
    required but absent or voided.

    FULL OUTER JOINs of the required keys with the stored obligations return only the
    differences: one for the bulk (the nazorg signals of every adult) and one for the other
    rules — with ``apart``, at the same time on two connections. The details of the missing
    obligations are then computed again for their periods alone (the same SQL, restricted)."""
    sql = Sql(conn.dialect.name)
    built = Expected(sql, rules)
    selects = built.period_rules() + built.event_rules()
    rest = [s for s in selects if s is not built.bulk]
    if built.bulk is None or not rest:
        statements = [_difference(selects, frozenset(), inside=False)]
    else:
        statements = [
            _difference([built.bulk], built.bulk_rules, inside=True),
            _difference(rest, built.bulk_rules, inside=False),
        ]
    results = _run(conn, statements, apart, meanwhile)
    # The required side may name one leave twice (a grant and its leave_start, two grants
    # for one day): group by key.
    by_key: dict[str, list[Any]] = defaultdict(list)
    extra: list[Any] = []
    for row in (r for rows in results for r in rows):
        if row.key is None:
            extra.append(row)
        else:
            by_key[row.key].append(row)
    missing: set[str] = set()
    differs: dict[str, Any] = {}  # key -> the stored side
    for key, found in by_key.items():
        first = found[0]
        if first.o_id is None or first.o_status == VOIDED:
            missing.add(key)
        else:
            differs[key] = first
    # the details: of the missing, in full; of the differing, which of the ways the facts
    # name the obligation counts (a leave announced by a grant is the grant's)
    periods = sorted({r.period_id for k in (*missing, *differs) for r in by_key[k]})
    detailed = _details(conn, sql, rules, periods, missing | set(differs))
    for key, stored in sorted(differs.items()):
        facts = detailed.get(key)
        if facts is None or facts.recipient_ref == stored.o_recipient_ref:
            continue
        report.recipient_differs.append(
            Gap(
                "recipient_differs",
                key,
                stored.o_rule_id,
                stored.o_period_ref,
                stored.o_occurrence,
                stored.o_recipient_kind,
                stored.o_recipient_ref,
                utc(stored.o_due_at),
                stored.o_status,
                stored.o_id,
                stored.o_cause_event_id,
                expected_recipient=facts.recipient_ref,
                note=(
                    "the recipient is known now"
                    if stored.o_recipient_ref is None
                    else f"the stored facts give {facts.recipient_ref or 'no known recipient'}"
                ),
            )
        )
    for row in sorted(extra, key=lambda r: r.o_key):
        report.extra.append(
            Gap(
                "extra",
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
            )
        )
    return [detailed[k] for k in sorted(missing) if k in detailed]


def _details(
    conn: Connection, sql: Sql, rules: RuleSet, periods: list[int], keys: set[str]
) -> dict[str, Row]:
    """The required obligations ``keys`` in full, computed for their periods only (a key
    whose facts changed since the comparison read them is left out: the next run decides)."""
    found: dict[str, list[Any]] = defaultdict(list)
    for chunk in chunks(periods):
        detail = Expected(sql, rules, period_ids=chunk).query()
        for row in conn.execute(select(detail)):
            if row.key in keys:
                found[row.key].append(row)
    out: dict[str, Row] = {}
    for key, rows in found.items():
        # a leave announced by a grant is the grant's (the earliest, if several)
        rows.sort(key=lambda r: (r.source != "grant", utc(r.event_at) or _NEVER))
        r = rows[0]
        out[key] = Row(
            key,
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
            r.leave_from,
            utc(r.intake_at),
            utc(r.ended_at),
        )
    return out


_NEVER = datetime.max.replace(tzinfo=UTC)


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
