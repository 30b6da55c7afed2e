"""The portal inbox of a recipient organisation: list, read and acknowledge notices.

An organisation is a recipient kind and reference: a mayor (``mayor``, ``GM0363``), the IDV
(``idv``, ``OM-IDV``; its inbox also holds the notices for each victim, which the IDV passes
on) or a nazorg coordinator (``nazorg``, ``GM0363``). A notice is in the inbox once one of its
deliveries, on any channel, is delivered: an e-mail or webhook says that there is a notice,
the inbox shows it.

Every function here takes the actor (who, in which role, for which purpose) and writes its
audit rows itself, in its own transaction: a read row per notice shown, an update row per
notice read or acknowledged. :func:`list_notices` and :func:`get_notice` write into the
caller's transaction (the caller commits); :func:`mark_read` and :func:`acknowledge` own
theirs when given an engine. The web API and the command line render the same
:class:`NoticeRead` objects.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import (
    ColumnElement,
    Connection,
    and_,
    exists,
    false,
    func,
    or_,
    select,
    union_all,
    update,
)

from terugkeer.db.bulk import among
from terugkeer.db.engine import ConnOrEngine, transaction
from terugkeer.notify.alerts import resolve_alert
from terugkeer.notify.delivery import tallies
from terugkeer.notify.tables import deliveries, obligations
from terugkeer.security.actor import Actor

ORGANISATION_KINDS = ("mayor", "idv", "nazorg")
IDV_REF = "OM-IDV"
VICTIM = tallies.VICTIM  # a victim's notices are in the IDV's inbox, whoever the victim
MAX_NOTE = 2000


class InboxError(Exception):
    """Base of the inbox's errors."""


class NoticeNotFound(InboxError, LookupError):
    pass


class NoticeConflict(InboxError):
    """The notice is not in a state that allows this."""


class InvalidRequest(InboxError, ValueError):
    pass


class DeliveryRead(BaseModel):
    id: int
    notice: str = Field(description="notice, change, correction or reminder")
    version: int
    channel: str
    status: str
    attempts: int
    delivered_at: datetime | None
    read_at: datetime | None


class NoticeRead(BaseModel):
    """A notice as its recipient sees it (no BSN, no name, no contact details)."""

    id: int = Field(description="the reference (kenmerk) of the notice: the obligation id")
    rule_id: str
    rule_version: str
    subject: str = Field(description="release, leave, escape, recapture, death or intake")
    recipient_kind: str
    recipient_ref: str | None
    period_ref: str
    occurrence: str
    planned_for: datetime | None
    due_at: datetime
    status: str
    late: bool
    late_reason: str | None
    backfilled: bool
    version: int
    facts: dict[str, Any]
    delivered_at: datetime | None
    read: bool = Field(description="every delivered notice of it has been read")
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    ack_note: str | None
    void_reason: str | None
    escalation: int
    deliveries: list[DeliveryRead]


class NoticeList(BaseModel):
    recipient_kind: str
    recipient_ref: str
    total: int
    limit: int
    offset: int
    notices: list[NoticeRead]


def organisation_filter(kind: str, ref: str) -> ColumnElement[bool]:
    """The obligations whose notices belong in this organisation's inbox."""
    return or_(*(part.condition for part in organisation_parts(kind, ref)))


@dataclass(frozen=True)
class Part:
    """A part of an organisation's inbox that one index gives in delivery order: the
    notices for one recipient kind."""

    kind: str
    condition: ColumnElement[bool]


def organisation_parts(kind: str, ref: str, kinds: Sequence[str] | None = None) -> list[Part]:
    """The organisation's inbox as parts that an index each gives in delivery order: its own
    notices (``ix_obligations_inbox``) and, for the IDV, every victim's
    (``ix_obligations_victims``); only those for the recipient kinds in ``kinds``, when
    given."""
    if kind not in ORGANISATION_KINDS:
        raise InvalidRequest(
            f"unknown recipient kind [{kind}]: use one of {', '.join(ORGANISATION_KINDS)}"
        )
    if not ref or len(ref) > 64:
        raise InvalidRequest("a recipient reference of 1 to 64 characters is needed")
    c = obligations.c
    parts = [Part(kind, and_(c.recipient_kind == kind, c.recipient_ref == ref))]
    if kind == "idv" and ref == IDV_REF:
        parts.append(Part(VICTIM, c.recipient_kind == VICTIM))
    return [part for part in parts if kinds is None or part.kind in kinds]


def _delivered_exists(unread: bool) -> ColumnElement[bool]:
    d = deliveries.alias("delivered")
    conditions = [d.c.obligation_id == obligations.c.id, d.c.status == "delivered"]
    if unread:
        conditions.append(d.c.read_at.is_(None))
    return exists().where(*conditions).correlate(obligations)


# built once: every inbox request uses them, and building the construct cost more than
# running it
_DELIVERED = {unread: _delivered_exists(unread) for unread in (False, True)}


def _delivered(unread: bool = False) -> ColumnElement[bool]:
    """A delivery of the notice is delivered (and, with ``unread``, not read yet)."""
    return _DELIVERED[unread]


def list_notices(
    conn: Connection,
    recipient_kind: str,
    recipient_ref: str,
    *,
    actor: Actor,
    unread: bool = False,
    unacknowledged: bool = False,
    kinds: Sequence[str] | None = None,
    urgent_first: bool = False,
    limit: int = 100,
    offset: int = 0,
) -> NoticeList:
    """The organisation's notices, newest delivery first; a ``read`` row per notice shown.
    ``kinds`` keeps the notices for some recipient kinds of the inbox only (the IDV's
    ``victim`` notices); ``urgent_first`` puts the notices awaiting acknowledgement first,
    the one due earliest (most overdue) first, then the others newest first."""
    if not 1 <= limit <= 1000 or offset < 0:
        raise InvalidRequest("limit must be 1 to 1000 and offset 0 or more")
    parts = organisation_parts(recipient_kind, recipient_ref, kinds)
    filters = []
    if unread:
        filters.append(_delivered(unread=True))
    if unacknowledged:
        filters.append(obligations.c.status == "delivered")
    segments = _SEGMENTS[urgent_first]  # each read in index order
    # the history's count is kept per organisation, not for a filter of it
    keys = None if unread or unacknowledged else [tallies.key(p.kind, recipient_ref) for p in parts]
    within = or_(false(), *(part.condition for part in parts))
    counts = _counts(conn, [within, *filters], urgent_first, keys)
    total, rows = 0, list[Any]()
    for (conditions, order), count in zip(segments, counts, strict=True):
        skip = max(0, offset - total)
        if count > skip and len(rows) < limit:
            rows += _page(conn, parts, [*filters, *conditions], order, skip, limit - len(rows))
        total += count
    notices = _render(conn, rows)
    # one row per notice shown, so that "who saw this notice" has an answer
    actor.record(
        conn,
        "read",
        "notice",
        (n.id for n in notices),
        {"inbox": f"{recipient_kind}:{recipient_ref}"},
    )
    return NoticeList(
        recipient_kind=recipient_kind,
        recipient_ref=recipient_ref,
        total=int(total),
        limit=limit,
        offset=offset,
        notices=notices,
    )


Order = Callable[[Any], tuple[Any, ...]]  # the sort, for the columns of a table or subquery


def _newest(c: Any) -> tuple[Any, ...]:
    return (c.delivered_at.desc(), c.id.desc())


def _by_id(c: Any) -> tuple[Any, ...]:
    return (c.id.desc(),)


def _by_due(c: Any) -> tuple[Any, ...]:
    return (c.due_at.asc(), c.delivered_at.desc().nulls_last(), c.id.desc())


def _page(
    conn: Connection,
    parts: list[Part],
    conditions: list[ColumnElement[bool]],
    order: Order,
    skip: int,
    take: int,
) -> list[Any]:
    """``take`` notices after the first ``skip`` of the inbox's ``parts`` that meet
    ``conditions``, in ``order``. Several parts (the IDV's own notices and the victims') are
    read each in its index's order, as far as the page reaches, and merged: one query over
    both would read and sort every notice of the inbox (200 ms for the IDV's 300,000 in
    bench/portal.py's store, on PostgreSQL; SQLite, which keeps no statistics, still sorts
    the victims' part)."""
    each = [
        select(obligations).where(part.condition, *conditions).order_by(*order(obligations.c))
        for part in parts
    ]
    if len(each) == 1:
        return list(conn.execute(each[0].limit(take).offset(skip)))
    merged = union_all(*(select(q.limit(skip + take).subquery()) for q in each)).subquery()
    return list(conn.execute(select(merged).order_by(*order(merged.c)).limit(take).offset(skip)))


# the inbox's parts, built once like _DELIVERED: the same for every request
_TOLD = obligations.c.delivered_at.is_not(None)
_UNTOLD = and_(obligations.c.delivered_at.is_(None), _delivered())
_AWAITING = obligations.c.status == "delivered"
_OTHERS = obligations.c.status != "delivered"

Segment = tuple[list[ColumnElement[bool]], Order]

# The inbox in the order shown, in parts that an index reads in order, so that a page of a
# large inbox costs what the page holds; by ``urgent_first``.
#
# A notice is in the inbox once one of its deliveries is delivered. Its ``delivered_at`` is set
# in the transaction that marks a delivery delivered (the dispatcher) and no delivery leaves
# that status: a notice with a ``delivered_at`` is in the inbox without looking at its
# deliveries (it is "told"); one without (sent again, to a new recipient) is when a delivery
# says so. Newest first (``delivered_at`` descending, nulls last, then id) is: the told ones,
# newest first, then the others by id (``ix_obligations_inbox``). Urgent first puts before them
# the notices awaiting acknowledgement, the one due earliest first (``ix_obligations_awaiting``).
_SEGMENTS: dict[bool, list[Segment]] = {
    False: [([_TOLD], _newest), ([_UNTOLD], _by_id)],
    True: [
        ([_AWAITING, or_(_TOLD, _UNTOLD)], _by_due),
        ([_OTHERS, _TOLD], _newest),
        ([_OTHERS, _UNTOLD], _by_id),
    ],
}


def _counts(
    conn: Connection,
    where: list[ColumnElement[bool]],
    urgent_first: bool,
    keys: list[tallies.Key] | None,
) -> list[int]:
    """How many notices each part of :data:`_SEGMENTS` holds, in one statement.

    The told notices are the inbox's history, and the only part that grows with it. Without
    a filter their number is the organisation's tally (``keys``, notify/delivery/tallies.py):
    counting 20,000 of them took 5 ms of PostgreSQL's CPU on every request. With a filter they
    are counted, once. In the urgent order the told ones not awaiting acknowledgement are
    those less the told ones awaiting it, which ``ix_obligations_awaiting`` counts alone."""

    def count(*part: ColumnElement[bool]) -> ColumnElement[Any]:
        return select(func.count()).select_from(obligations).where(*where, *part).scalar_subquery()

    parts = [count(_TOLD) if keys is None else tallies.told(keys), count(_UNTOLD)]
    if urgent_first:
        parts += [count(_AWAITING, _TOLD), count(_AWAITING, _UNTOLD)]
    found = conn.execute(select(*parts)).one()
    counts = [int(n) for n in found]
    if not urgent_first:
        return counts
    all_told, all_untold, awaiting_told, awaiting_untold = counts
    return [
        awaiting_told + awaiting_untold,
        all_told - awaiting_told,
        all_untold - awaiting_untold,
    ]


def _scoped(scope: ColumnElement[bool] | None) -> list[ColumnElement[bool]]:
    return [] if scope is None else [scope]


def get_notice(
    conn: Connection,
    notice_id: int,
    scope: ColumnElement[bool] | None = None,
    *,
    actor: Actor,
) -> NoticeRead:
    """One notice; not found until it is delivered, nor outside ``scope`` (the caller's
    organisations: a notice of another organisation does not exist for them). A ``read``
    row in the caller's transaction."""
    notice = _notice(conn, notice_id, scope)
    actor.record(conn, "read", "notice", [notice_id])
    return notice


def _notice(
    conn: Connection, notice_id: int, scope: ColumnElement[bool] | None = None
) -> NoticeRead:
    row = conn.execute(
        select(obligations).where(obligations.c.id == notice_id, _delivered(), *_scoped(scope))
    ).first()
    if row is None:
        raise NoticeNotFound(f"no delivered notice with reference [{notice_id}]")
    return _render(conn, [row])[0]


def mark_read(
    target: ConnOrEngine,
    notice_id: int,
    now: datetime | None = None,
    scope: ColumnElement[bool] | None = None,
    *,
    actor: Actor,
) -> NoticeRead:
    """Mark every delivered, unread delivery of the notice as read, with its ``update`` row
    (in the caller's transaction when given a connection)."""
    now = now or datetime.now(UTC)
    with transaction(target) as conn:
        _notice(conn, notice_id, scope)
        _read(conn, notice_id, now)
        actor.record(conn, "update", "notice", [notice_id], {"read": True})
        return _notice(conn, notice_id, scope)


def acknowledge(
    target: ConnOrEngine,
    notice_id: int,
    by: str,
    note: str | None = None,
    now: datetime | None = None,
    scope: ColumnElement[bool] | None = None,
    *,
    actor: Actor,
) -> NoticeRead:
    """Record that the recipient acknowledges the notice, with its ``update`` row. For a
    victim notice the IDV officer says how the victim was informed (``note``, required).
    Given a connection, this happens in the caller's transaction."""
    now = now or datetime.now(UTC)
    by = (by or "").strip()
    note = (note or "").strip() or None
    if not by or len(by) > 100:
        raise InvalidRequest("who acknowledges must be given, at most 100 characters")
    if note is not None and len(note) > MAX_NOTE:
        raise InvalidRequest(f"the note is longer than {MAX_NOTE} characters")
    with transaction(target) as conn:
        query = select(obligations).where(
            obligations.c.id == notice_id, _delivered(), *_scoped(scope)
        )
        if conn.dialect.name == "postgresql":
            query = query.with_for_update(of=obligations)
        row = conn.execute(query).first()
        if row is None:
            raise NoticeNotFound(f"no delivered notice with reference [{notice_id}]")
        if row.status == "acknowledged":
            raise NoticeConflict(
                f"notice [{notice_id}] was already acknowledged by {row.acknowledged_by} "
                f"at {row.acknowledged_at.isoformat(timespec='minutes')}"
            )
        if row.status == "voided":
            raise NoticeConflict(f"notice [{notice_id}] was withdrawn: {row.void_reason}")
        if row.status != "delivered":
            raise NoticeConflict(
                f"notice [{notice_id}] is {row.status}: a newer version is on its way; "
                "acknowledge that one"
            )
        if row.recipient_kind == "victim" and note is None:
            raise InvalidRequest(
                "for a victim notice, say when and how the victim was informed (note)"
            )
        conn.execute(
            update(obligations)
            .where(obligations.c.id == notice_id, obligations.c.status == "delivered")
            .values(
                status="acknowledged",
                acknowledged_at=now,
                acknowledged_by=by,
                ack_note=note,
                updated_at=now,
            )
        )
        _read(conn, notice_id, now)
        resolve_alert(conn, f"unacknowledged:{notice_id}", now)
        actor.record(conn, "update", "notice", [notice_id], {"acknowledged": True})
        return _notice(conn, notice_id, scope)


def _read(conn: Connection, notice_id: int, now: datetime) -> None:
    conn.execute(
        update(deliveries)
        .where(
            deliveries.c.obligation_id == notice_id,
            deliveries.c.status == "delivered",
            deliveries.c.read_at.is_(None),
        )
        .values(read_at=now)
    )


def _render(conn: Connection, rows: Sequence[Any]) -> list[NoticeRead]:
    ids = [r.id for r in rows]
    sent: dict[int, list[DeliveryRead]] = {i: [] for i in ids}
    if ids:
        for d in conn.execute(
            select(deliveries)
            .where(among(conn, deliveries.c.obligation_id, ids))
            .order_by(deliveries.c.id)
        ):
            sent[d.obligation_id].append(
                DeliveryRead(
                    id=d.id,
                    notice=d.notice,
                    version=d.obligation_version,
                    channel=d.channel,
                    status=d.status,
                    attempts=d.attempts,
                    delivered_at=d.delivered_at,
                    read_at=d.read_at,
                )
            )
    return [
        NoticeRead(
            id=r.id,
            rule_id=r.rule_id,
            rule_version=r.rule_version,
            subject=r.subject,
            recipient_kind=r.recipient_kind,
            recipient_ref=r.recipient_ref,
            period_ref=r.period_ref,
            occurrence=r.occurrence,
            planned_for=r.planned_for,
            due_at=r.due_at,
            status=r.status,
            late=r.late,
            late_reason=r.late_reason,
            backfilled=r.backfilled,
            version=r.version,
            facts=json.loads(r.facts),
            delivered_at=r.delivered_at,
            read=all(d.read_at is not None for d in sent[r.id] if d.status == "delivered"),
            acknowledged_at=r.acknowledged_at,
            acknowledged_by=r.acknowledged_by,
            ack_note=r.ack_note,
            void_reason=r.void_reason,
            escalation=r.escalation,
            deliveries=sent[r.id],
        )
        for r in rows
    ]
