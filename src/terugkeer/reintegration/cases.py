"""Opening cases from detention data: automatically from ingest (``reintegration_hook``), and
for every period already stored (``open_cases(engine, None)``, the back-fill).

Idempotent: a period has at most one case; running again only follows the period (its status
and municipality) and records each change in the audit trail.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, select, update

from terugkeer.db.bulk import among, chunks, insert_rows, read_date, read_datetime, reserve_ids
from terugkeer.db.engine import ConnOrEngine, transaction
from terugkeer.detention.ingest import AppliedBatch, BatchHook
from terugkeer.detention.tables import detention_periods, feed_events, persons
from terugkeer.domain import render
from terugkeer.domain.codes import DETENTION_KINDS
from terugkeer.reintegration.audit import actor_of, audit_many, now_utc
from terugkeer.reintegration.codes import ConsentStatus
from terugkeer.reintegration.scope import (
    CaseStatus,
    PeriodView,
    case_status,
    local_date,
    municipality,
    skip_reason,
)
from terugkeer.reintegration.tables import reintegration_cases
from terugkeer.security.actor import Actor

SYSTEM = "system:detention"


@dataclass
class OpenResult:
    periods: int = 0
    opened: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: Counter[str] = field(default_factory=Counter)

    def as_json(self) -> dict[str, Any]:
        return render.as_json(self)  # skipped: by reason, in order


_COLUMNS = (
    detention_periods.c.id,
    detention_periods.c.person_id,
    detention_periods.c.status,
    detention_periods.c.release_kind,
    detention_periods.c.intake_at,
    detention_periods.c.ended_at,
    detention_periods.c.planned_release_date,
    detention_periods.c.return_municipality,
    detention_periods.c.residence_municipality,
)


def _view(row: Any) -> PeriodView:
    ended = read_datetime(row.ended_at)
    intake = read_datetime(row.intake_at)
    assert intake is not None  # noqa: S101 - NOT NULL column
    return PeriodView(
        status=row.status,
        release_kind=row.release_kind,
        intake_date=local_date(intake),
        end_date=local_date(ended) if ended else None,
        planned_release_date=read_date(row.planned_release_date),
        birth_date=read_date(row.birth_date),
        return_municipality=row.return_municipality,
        residence_municipality=row.residence_municipality,
    )


def open_cases(
    target: ConnOrEngine,
    period_refs: Iterable[str] | None,
    *,
    now: datetime | None = None,
    actor: Actor | str = SYSTEM,
) -> OpenResult:
    """Open a case for each period in ``period_refs`` (all periods when None) that needs one,
    and bring existing cases in line with their period. Runs in the caller's transaction when
    given a connection."""
    now = now or now_utc()
    result = OpenResult()
    with transaction(target) as conn:
        if period_refs is None:
            every = select(*_COLUMNS, persons.c.birth_date).join(
                persons, persons.c.id == detention_periods.c.person_id
            )
            _process(
                conn, list(conn.execute(every.order_by(detention_periods.c.id))), now, actor, result
            )
        else:
            # A batch's periods, each person read by its key (a scalar subquery, not a join
            # PostgreSQL may answer by hashing every stored person: issue 12).
            birth_date = (
                select(persons.c.birth_date)
                .where(persons.c.id == detention_periods.c.person_id)
                .scalar_subquery()
                .label("birth_date")
            )
            some = select(*_COLUMNS, birth_date)
            refs = sorted(set(period_refs))
            for chunk in chunks(refs):
                rows = list(
                    conn.execute(some.where(among(conn, detention_periods.c.period_ref, chunk)))
                )
                _process(conn, rows, now, actor, result)
    return result


def _process(
    conn: Connection, rows: list[Any], now: datetime, actor: Actor | str, result: OpenResult
) -> None:
    result.periods += len(rows)
    if not rows:
        return
    actor = actor_of(actor)
    existing: dict[int, Any] = {}
    for chunk in chunks([r.id for r in rows]):
        for c in conn.execute(
            select(
                reintegration_cases.c.id,
                reintegration_cases.c.period_id,
                reintegration_cases.c.status,
                reintegration_cases.c.municipality,
                reintegration_cases.c.person_id,
            ).where(among(conn, reintegration_cases.c.period_id, chunk))
        ):
            existing[c.period_id] = c
    new: list[tuple[int, Any, PeriodView]] = []
    changes: list[tuple[int, dict[str, Any]]] = []
    updates: list[dict[str, Any]] = []
    for row in rows:
        view = _view(row)
        case = existing.get(row.id)
        if case is None:
            reason = skip_reason(view)
            if reason is None:
                new.append((row.id, row, view))
            else:
                result.skipped[reason] += 1
            continue
        status = case_status(view) or CaseStatus.PLANNED
        where = municipality(view) or case.municipality
        # the period's person changes when its intake was withdrawn and taken in again for
        # another person (the wrong one was named): the case follows
        now_for = (status.value, where, row.person_id)
        if now_for == (case.status, case.municipality, case.person_id):
            result.unchanged += 1
            continue
        detail: dict[str, Any] = {}
        for name, was, becomes in zip(
            ("status", "municipality", "person_id"),
            (case.status, case.municipality, case.person_id),
            now_for,
            strict=True,
        ):
            if was != becomes:
                detail[name] = [was, becomes]  # a person by record id, not who they are
        updates.append(
            {
                "b_id": case.id,
                "b_status": status.value,
                "b_municipality": where,
                "b_person_id": row.person_id,
            }
        )
        changes.append((case.id, detail))
        result.updated += 1
    if new:
        ids = reserve_ids(conn, reintegration_cases, len(new))
        insert_rows(
            conn,
            reintegration_cases,
            (
                "id",
                "period_id",
                "person_id",
                "municipality",
                "status",
                "consent",
                "opened_at",
                "opened_by",
                "updated_at",
            ),
            [
                (
                    case_id,
                    period_id,
                    row.person_id,
                    municipality(view),
                    (case_status(view) or CaseStatus.PLANNED).value,
                    ConsentStatus.NONE.value,
                    now,
                    actor.name,
                    now,
                )
                for case_id, (period_id, row, view) in zip(ids, new, strict=True)
            ],
        )
        audit_many(
            conn,
            actor,
            "case_opened",
            [
                (case_id, {"period_id": period_id, "municipality": municipality(view)})
                for case_id, (period_id, _, view) in zip(ids, new, strict=True)
            ],
            at=now,
        )
        result.opened += len(new)
    if updates:
        conn.execute(
            update(reintegration_cases)
            .where(reintegration_cases.c.id == bindparam("b_id"))
            .values(
                status=bindparam("b_status"),
                municipality=bindparam("b_municipality"),
                person_id=bindparam("b_person_id"),
                updated_at=now,
            ),
            updates,
        )
        audit_many(conn, actor, "case_followed_period", changes, at=now)


def reintegration_hook() -> BatchHook:
    """The ingest hook: open or follow the cases of the periods a batch touched, in the
    batch's transaction. ``terugkeer.intake`` adds it beside the notify hook."""

    def hook(conn: Connection, applied: AppliedBatch) -> None:
        refs = {e.period_ref for e in applied.events if e.period_ref and e.kind in DETENTION_KINDS}
        targets = [t for t in applied.withdrawn if t not in {e.event_id for e in applied.events}]
        for chunk in chunks(targets):
            for row in conn.execute(
                select(feed_events.c.period_ref).where(among(conn, feed_events.c.event_id, chunk))
            ):
                if row.period_ref:
                    refs.add(row.period_ref)
        if refs:
            open_cases(conn, refs, now=applied.now)

    return hook
