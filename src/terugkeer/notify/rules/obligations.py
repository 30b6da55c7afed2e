"""Writing obligations and their first delivery rows, inside the caller's transaction."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from terugkeer.db.bulk import among, chunks, insert_rows, reserve_ids, unindexed, update_rows
from terugkeer.notify.alerts import resolve_alert
from terugkeer.notify.rules.evaluate import (
    Evaluation,
    Required,
)
from terugkeer.notify.tables import deliveries, notify_endpoints, obligations

TERMINAL = ("voided",)
NO_LONGER_REQUIRED = "the period's facts no longer require it"
DELIVERED = ("delivered", "acknowledged")


@dataclass
class ApplyCounts:
    created: int = 0
    changed: int = 0
    voided: int = 0
    unresolved: int = 0
    notices: int = 0
    by_rule: dict[str, int] = field(default_factory=lambda: defaultdict(int))


def not_before(req: Required, now: datetime) -> datetime:
    """When a notice of ``req`` may go out: at once, or (``send = "at_due"``) at its due time."""
    return max(now, req.due_at) if req.rule.send == "at_due" else now


def delivery_key(obligation_id: int, notice: str, version: int, channel: str) -> str:
    """The idempotency key of a delivery: one per obligation, notice kind, version, channel."""
    return f"{obligation_id}:{notice}:{version}:{channel}"


class Endpoints:
    """Which channel reaches a recipient first (priority 1) and second (priority 2); the
    portal when nothing is configured."""

    def __init__(self, conn: Connection) -> None:
        self._rows: dict[tuple[str, str, int], tuple[str, str | None]] = {
            (r.recipient_kind, r.recipient_ref, r.priority): (r.channel, r.address)
            for r in conn.execute(select(notify_endpoints))
        }

    def channel(self, kind: str, ref: str, priority: int = 1) -> tuple[str, str | None] | None:
        found = self._rows.get((kind, ref, priority)) or self._rows.get((kind, "*", priority))
        if found is None and priority == 1:
            return ("portal", None)
        return found


def add_delivery(
    conn: Connection,
    endpoints: Endpoints,
    obligation_id: int,
    kind: str,
    ref: str,
    notice: str,
    version: int,
    now: datetime,
    *,
    priority: int = 1,
    held: bool = False,
    not_before: datetime | None = None,
) -> bool:
    """Queue one notice on the recipient's channel of ``priority``; False if there is none."""
    found = endpoints.channel(kind, ref, priority)
    if found is None:
        return False
    channel, address = found
    conn.execute(
        insert(deliveries).values(
            obligation_id=obligation_id,
            notice=notice,
            obligation_version=version,
            channel=channel,
            address=address,
            idempotency_key=delivery_key(obligation_id, notice, version, channel),
            status="held" if held else "pending",
            attempts=0,
            next_attempt_at=max(now, not_before or now),
            created_at=now,
        )
    )
    return True


def apply_evaluation(
    conn: Connection,
    evaluation: Evaluation,
    period_refs: Sequence[str],
    now: datetime,
    *,
    withdrawn: dict[str, str] | None = None,
    backfilled: bool = False,
    complete: Collection[str] = (),
) -> ApplyCounts:
    """Create, change and void obligations so that they match ``evaluation``.

    ``complete``: the periods whose every required obligation ``evaluation`` holds (the
    rules evaluated on all their facts). Any other live obligation of theirs is voided: the
    facts no longer require it (a victim's registration withdrawn, a title out of scope),
    exactly as if the facts had all come in one batch and it had never been made; a notice
    of it already told stands, without a correction (it was true when told). Without it (a
    backfill's few obligations) only the evaluation's own voids apply."""
    counts = ApplyCounts()
    existing: dict[str, Any] = {}
    for chunk in chunks(list(period_refs)):
        # Locked (PostgreSQL) so a dispatcher recording a delivery cannot slip in between
        # reading an obligation and changing it; a fixed order keeps lock order consistent.
        stmt = (
            select(obligations)
            .where(among(conn, obligations.c.period_ref, chunk))
            .order_by(obligations.c.id)
            .with_for_update()
        )
        for found in conn.execute(stmt):
            existing[found.key] = found
    endpoints = Endpoints(conn)
    required: dict[str, Required] = {}
    for req in evaluation.required:
        required.setdefault(req.key, req)

    new: list[Required] = []
    for key, req in required.items():
        row = existing.get(key)
        if row is None:
            new.append(req)
        elif row.status in TERMINAL:
            _reopen(conn, endpoints, row, req, now, counts)
        elif row.recipient_ref is None and req.recipient_ref is not None:
            _resolve(conn, endpoints, row, req, now, counts)
        elif req.recipient_ref is not None and row.recipient_ref != req.recipient_ref:
            _redirect(conn, endpoints, row, req, now, counts)
        elif req.recipient_ref is None and row.recipient_ref is not None:
            _unresolve(conn, endpoints, row, req, now, counts)
        elif req.planned and req.planned_for is not None and row.planned_for != req.planned_for:
            _change(conn, endpoints, row, req, now, counts)
        elif _timing(row, req) != _timing(row, row):
            # the same notice, with the timing the facts now give (no new notice)
            conn.execute(
                update(obligations)
                .where(obligations.c.id == row.id)
                .values(updated_at=now, **_timing(row, req))
            )
            counts.changed += 1
    _create_all(conn, endpoints, new, now, backfilled, counts)

    by_rule: dict[tuple[str, str], list[Any]] = defaultdict(list)
    by_cause: dict[str, list[Any]] = defaultdict(list)
    for row in existing.values():
        if row.key not in required and row.status not in TERMINAL:
            by_rule[(row.period_ref, row.rule_id)].append(row)
            by_cause[row.cause_event_id].append(row)
    voids: list[tuple[Any, str]] = []
    for period_ref, rule_id, occurrence, reason in evaluation.voids:
        for row in by_rule.get((period_ref, rule_id), ()):
            if occurrence == "*" or row.occurrence == occurrence:
                voids.append((row, reason))
    for target, correction in (withdrawn or {}).items():
        for row in by_cause.get(target, ()):
            voids.append((row, f"event [{target}] withdrawn by correction [{correction}]"))
    evaluated = set(complete)
    for (period_ref, _rule_id), rows in by_rule.items():
        if period_ref in evaluated:  # after the reasons above: the first reason is kept
            voids.extend((row, NO_LONGER_REQUIRED) for row in rows)
    _void_all(conn, endpoints, voids, now, counts)
    return counts


OBLIGATION_COLUMNS = (
    "id",
    "key",
    "rule_id",
    "rule_version",
    "period_ref",
    "occurrence",
    "subject",
    "recipient_kind",
    "recipient_ref",
    "cause_event_id",
    "planned_for",
    "due_at",
    "status",
    "late",
    "late_reason",
    "facts",
    "version",
    "created_at",
    "updated_at",
    "escalation",
    "backfilled",
)
DELIVERY_COLUMNS = (
    "obligation_id",
    "notice",
    "obligation_version",
    "channel",
    "address",
    "idempotency_key",
    "status",
    "attempts",
    "next_attempt_at",
    "created_at",
)


def _create_all(
    conn: Connection,
    endpoints: Endpoints,
    new: list[Required],
    now: datetime,
    backfilled: bool,
    counts: ApplyCounts,
) -> None:
    """Insert new obligations and their first notices in bulk."""
    rows: list[tuple[Any, ...]] = []
    notices: list[tuple[Any, ...]] = []
    ids = reserve_ids(conn, obligations, len(new))
    for obligation_id, req in zip(ids, new, strict=True):
        late, reason = req.late, req.late_reason
        if backfilled:
            late = True
            reason = f"alsnog: created by backfill at {now.isoformat()}" + (
                f"; {reason}" if reason else ""
            )
        status = "open" if req.recipient_ref is not None else "unresolved"
        rows.append(
            (
                obligation_id,
                req.key,
                req.rule.id,
                req.rule_version,
                req.period_ref,
                req.occurrence,
                req.rule.subject,
                req.rule.recipient,
                req.recipient_ref,
                req.cause_event_id,
                req.planned_for,
                req.due_at,
                status,
                late,
                reason,
                json.dumps(req.facts, sort_keys=True),
                1,
                now,
                now,
                0,
                backfilled,
            )
        )
        counts.created += 1
        counts.by_rule[req.rule.id] += 1
        if req.recipient_ref is None:
            counts.unresolved += 1
            continue
        found = endpoints.channel(req.rule.recipient, req.recipient_ref)
        if found is not None:
            channel, address = found
            notices.append(
                (
                    obligation_id,
                    "notice",
                    1,
                    channel,
                    address,
                    delivery_key(obligation_id, "notice", 1, channel),
                    "pending",
                    0,
                    not_before(req, now),
                    now,
                )
            )
    insert_rows(conn, obligations, OBLIGATION_COLUMNS, rows)
    insert_rows(conn, deliveries, DELIVERY_COLUMNS, notices)
    counts.notices += len(notices)


def _timing(row: Any, req: Any) -> dict[str, Any]:
    """The timing of ``req`` (a Required, or the stored row itself) as stored on ``row``: a
    backfilled obligation keeps its "alsnog" lateness."""
    values = {
        "planned_for": req.planned_for,
        "due_at": req.due_at,
        "cause_event_id": req.cause_event_id,
    }
    if not row.backfilled:
        values.update(late=req.late, late_reason=req.late_reason)
    return values


def _renotify(
    conn: Connection,
    endpoints: Endpoints,
    row: Any,
    req: Required,
    notice_version: int,
    now: datetime,
    counts: ApplyCounts,
    /,
    **values: Any,
) -> None:
    """Update the obligation to ``req``'s recipient and timing and ``values``, and queue a
    fresh notice to that recipient (when known)."""
    conn.execute(
        update(obligations)
        .where(obligations.c.id == row.id)
        .values(updated_at=now, recipient_ref=req.recipient_ref, **_timing(row, req), **values)
    )
    counts.changed += 1
    if req.recipient_ref is not None:
        counts.notices += add_delivery(
            conn,
            endpoints,
            row.id,
            row.recipient_kind,
            req.recipient_ref,
            "notice",
            notice_version,
            now,
            not_before=not_before(req, now),
        )


def _void_unsent(conn: Connection, obligation_ids: Sequence[int]) -> None:
    """Notices of the obligations not yet sent are not sent any more."""
    for chunk in chunks(list(obligation_ids)):
        conn.execute(
            update(deliveries)
            .where(
                among(conn, deliveries.c.obligation_id, chunk),
                unindexed(deliveries.c.status).in_(("pending", "held")),  # by obligation
            )
            .values(status="voided")
        )


def _reopen(
    conn: Connection,
    endpoints: Endpoints,
    row: Any,
    req: Required,
    now: datetime,
    counts: ApplyCounts,
) -> None:
    """A voided obligation that is required again."""
    version = row.version + 1
    _renotify(
        conn,
        endpoints,
        row,
        req,
        version,
        now,
        counts,
        status="open" if req.recipient_ref is not None else "unresolved",
        version=version,
        void_reason=None,
        delivered_at=None,
        acknowledged_at=None,
    )


def _resolve(
    conn: Connection,
    endpoints: Endpoints,
    row: Any,
    req: Required,
    now: datetime,
    counts: ApplyCounts,
) -> None:
    """An unresolved recipient became known: the operator's alert about it is resolved with it."""
    resolve_alert(conn, f"unresolved:{row.id}", now)
    _renotify(
        conn,
        endpoints,
        row,
        req,
        row.version,
        now,
        counts,
        status="open",
    )


def _redirect(
    conn: Connection,
    endpoints: Endpoints,
    row: Any,
    req: Required,
    now: datetime,
    counts: ApplyCounts,
) -> None:
    """Another recipient now (a return municipality named later): the new one gets the notice;
    an unsent notice to the old one is voided."""
    _void_unsent(conn, [row.id])
    version = row.version + 1
    _renotify(
        conn,
        endpoints,
        row,
        req,
        version,
        now,
        counts,
        version=version,
        status="open",
        delivered_at=None,
        acknowledged_at=None,
    )


def _unresolve(
    conn: Connection,
    endpoints: Endpoints,
    row: Any,
    req: Required,
    now: datetime,
    counts: ApplyCounts,
) -> None:
    """The recipient is no longer known (the event that named it was withdrawn): back to the
    operator's queue; a recipient already told gets a correction."""
    told = row.status in DELIVERED or row.delivered_at is not None
    _void_unsent(conn, [row.id])
    version = row.version + 1
    conn.execute(
        update(obligations)
        .where(obligations.c.id == row.id)
        .values(
            recipient_ref=None,
            status="unresolved",
            version=version,
            updated_at=now,
            delivered_at=None,
            acknowledged_at=None,
            **_timing(row, req),
        )
    )
    counts.changed += 1
    counts.unresolved += 1
    if told:
        counts.notices += add_delivery(
            conn,
            endpoints,
            row.id,
            row.recipient_kind,
            row.recipient_ref,
            "correction",
            version,
            now,
        )


def _change(
    conn: Connection,
    endpoints: Endpoints,
    row: Any,
    req: Required,
    now: datetime,
    counts: ApplyCounts,
) -> None:
    """A changed planned moment: update; whoever was told already gets a change notice."""
    told = row.status in DELIVERED or row.delivered_at is not None
    version = row.version + 1
    conn.execute(
        update(obligations)
        .where(obligations.c.id == row.id)
        .values(
            planned_for=req.planned_for,
            due_at=req.due_at,
            late=req.late,
            late_reason=req.late_reason,
            version=version,
            updated_at=now,
            cause_event_id=req.cause_event_id,
            status="open" if row.recipient_ref is not None else "unresolved",
            acknowledged_at=None if told else row.acknowledged_at,
        )
    )
    counts.changed += 1
    if row.recipient_ref is None:
        return
    if told:
        counts.notices += add_delivery(
            conn, endpoints, row.id, row.recipient_kind, row.recipient_ref, "change", version, now
        )
    else:
        # not sent yet: the pending notice goes out with the new date
        conn.execute(
            update(deliveries)
            .where(deliveries.c.obligation_id == row.id, deliveries.c.status == "pending")
            .values(obligation_version=version)
        )


def void_obligations(
    conn: Connection, voids: Sequence[tuple[Any, str]], now: datetime
) -> ApplyCounts:
    """Void stored obligations (rows of ``obligations``, locked by the caller, each with its
    reason) as the rules' voids do: unsent notices voided, a ``correction`` to whoever was
    told (the burst brake's void, ``notify burst void``)."""
    counts = ApplyCounts()
    _void_all(conn, Endpoints(conn), voids, now, counts)
    return counts


def _void_all(
    conn: Connection,
    endpoints: Endpoints,
    voids: Sequence[tuple[Any, str]],
    now: datetime,
    counts: ApplyCounts,
) -> None:
    """Void obligations (each once, with the first reason given) in a few statements whatever
    their number: their notices not yet sent are not sent any more, and then a recipient who
    was told gets a correction, unless the obligation is only no longer required."""
    first: dict[int, tuple[Any, str]] = {}
    for row, reason in voids:
        first.setdefault(row.id, (row, reason))
    if not first:
        return
    update_rows(
        conn,
        obligations,
        "id",
        ("status", "void_reason", "updated_at", "version"),
        [("voided", reason, now, row.version + 1, row.id) for row, reason in first.values()],
    )
    _void_unsent(conn, list(first))
    counts.voided += len(first)
    for row, reason in first.values():  # after the voiding above, which must not touch these
        told = row.status in DELIVERED or row.delivered_at is not None
        # a notice the facts no longer require was true when told: nothing to correct
        if told and row.recipient_ref is not None and reason != NO_LONGER_REQUIRED:
            counts.notices += add_delivery(
                conn,
                endpoints,
                row.id,
                row.recipient_kind,
                row.recipient_ref,
                "correction",
                row.version + 1,
                now,
            )
