"""The gaps a reconciliation reports besides the comparison's: what caused a missing
obligation, and the delivery gaps (overdue, unacknowledged, unresolved, unproven delivery)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, case, exists, literal, not_, or_, select, union_all

from terugkeer.db.bulk import among, chunks
from terugkeer.detention.tables import feed_events
from terugkeer.domain.codes import EventKind
from terugkeer.notify.assurance.reconcile.compare import Row, utc
from terugkeer.notify.assurance.reconcile.facts import PLANNING_KINDS, RANK
from terugkeer.notify.assurance.reconcile.report import (
    DEFAULT_ACK_WINDOW,
    UNDELIVERED,
    VOIDED,
    Gap,
    ReconcileReport,
    iso,
)
from terugkeer.notify.rules.ruleset import RECIPIENTS, RuleSet
from terugkeer.notify.tables import deliveries, delivery_attempts, obligations

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
_KINDS = frozenset(RECIPIENTS)
# Obligation statuses that claim the recipient was told, and what proves it: a delivered
# notice or change (a reminder repeats, a correction withdraws); on the portal the inbox item.
PROVEN = ("delivered", "acknowledged")
CONTENT_NOTICES = ("notice", "change")
INBOX_CHANNEL = "portal"

e = feed_events.c


def _planning(conn: Connection, refs: Iterable[str]) -> dict[str, tuple[str, datetime]]:
    """Per period: the event that set its current planned release date — the first of the
    last run of events (intake, ``release_date_set``, in event order) that gave the date it
    has now — with when it happened."""
    found: dict[str, list[Any]] = {}
    for chunk in chunks(sorted(set(refs))):
        for r in conn.execute(
            select(e.period_ref, e.kind, e.event_id, e.occurred_at, e.body).where(
                among(conn, e.period_ref, chunk),
                e.kind.in_(PLANNING_KINDS),
                e.withdrawn_by.is_(None),
            )
        ):
            day = json.loads(r.body).get("planned_release_date")
            if day:
                found.setdefault(r.period_ref, []).append(
                    (utc(r.occurred_at), RANK[r.kind], r.event_id, day)
                )
    out: dict[str, tuple[str, datetime]] = {}
    for ref, events in found.items():
        events.sort()
        current: tuple[str, datetime] | None = None
        before = None
        for at, _rank, event_id, day in events:
            if day != before:
                current, before = (event_id, at), day
        if current is not None:
            out[ref] = current
    return out


def _intakes(conn: Connection, refs: Iterable[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for chunk in chunks(sorted(set(refs))):
        for r in conn.execute(
            select(e.period_ref, e.event_id).where(
                among(conn, e.period_ref, chunk),
                e.kind == EventKind.INTAKE.value,
                e.withdrawn_by.is_(None),
            )
        ):
            out[r.period_ref] = r.event_id
    return out


def missing_gaps(conn: Connection, rules: RuleSet, rows: list[Row]) -> list[Gap]:
    """Gaps for the missing obligations, with the due time the facts give (the SQL's) and
    what caused them (looked up in bulk for these periods only)."""
    planning = _planning(conn, (r.period_ref for r in rows if r.source in ("planned", "released")))
    intakes = _intakes(conn, (r.period_ref for r in rows if r.source == "intake"))
    stored = {
        row.key: row.status
        for chunk in chunks([r.key for r in rows])
        for row in conn.execute(
            select(obligations.c.key, obligations.c.status).where(
                among(conn, obligations.c.key, chunk)
            )
        )
    }
    known = {r.id for r in rules.rules}
    out: list[Gap] = []
    for row in rows:
        if row.rule_id not in known:  # pragma: no cover - the SQL only names rules of this set
            continue
        if row.source == "planned" or (
            row.source == "released" and row.planned_for != row.ended_at
        ):
            # told of the planned moment: caused by what set the planned date
            cause = planning.get(row.period_ref)
            if cause is not None:
                row.cause_event_id = cause[0]
                if row.source == "planned":
                    row.event_at = cause[1]
        elif row.source == "intake":
            row.cause_event_id = intakes.get(row.period_ref)
        status = stored.get(row.key)
        if status is not None and status != VOIDED:
            continue  # written since the comparison read the obligations: not missing
        out.append(
            Gap(
                "missing_obligation",
                row.key,
                row.rule_id,
                row.period_ref,
                row.occurrence,
                row.recipient_kind,
                row.recipient_ref,
                row.due_at,
                status,
                None,
                row.cause_event_id,
                basis_at(row),
                planned_for=row.planned_for,
                note="exists but voided" if status == VOIDED else "",
                late=row.late,
            )
        )
    return out


def basis_at(row: Row) -> datetime | None:
    """When the obligation became required: its event, or the registration of the victim
    that brought the period into scope, whichever was later."""
    times = [t for t in (row.event_at, row.scope_known_at) if t is not None]
    return max(times) if times else None


# what a gap of a stored obligation names (``_stored_gap``)
_GAP_COLUMNS = (
    obligations.c.id,
    obligations.c.key,
    obligations.c.rule_id,
    obligations.c.period_ref,
    obligations.c.occurrence,
    obligations.c.recipient_kind,
    obligations.c.recipient_ref,
    obligations.c.due_at,
    obligations.c.status,
    obligations.c.cause_event_id,
)


def _stored_gap(kind: str, r: Any, note: str = "", *, late: bool | None = None) -> Gap:
    """A finding about a stored obligation, from a row of ``_GAP_COLUMNS``."""
    return Gap(
        kind,
        r.key,
        r.rule_id,
        r.period_ref,
        r.occurrence,
        r.recipient_kind,
        r.recipient_ref,
        r.due_at,
        r.status,
        r.id,
        r.cause_event_id,
        note=note,
        late=late,
    )


def unproven_deliveries(conn: Connection, report: ReconcileReport) -> None:
    """Obligations marked ``delivered`` or ``acknowledged`` without the evidence that their
    current version reached the recipient: a delivery of its notice or change for that
    version, ``delivered``, with a successful attempt on record (the receiver's 2xx, the
    SMTP server's acceptance) or, on the portal, the inbox item itself (a delivered portal
    delivery is what the recipient's inbox shows). Read independently of the dispatcher:
    one anti-join over the three tables."""
    o, d, a = obligations.c, deliveries.c, delivery_attempts.c
    proof = exists().where(
        d.obligation_id == o.id,
        d.obligation_version == o.version,
        d.notice.in_(CONTENT_NOTICES),
        d.status == "delivered",
        or_(
            d.channel == INBOX_CHANNEL,
            exists().where(a.delivery_id == d.id, a.ok.is_(True)),
        ),
    )
    for r in conn.execute(
        select(*_GAP_COLUMNS, o.version, o.delivered_at, o.late)
        # no ORDER BY: it would walk the status index in due order (a random read per row)
        .where(o.status.in_(PROVEN), not_(proof))
    ):
        report.unproven.append(
            _stored_gap(
                "unproven_delivery",
                r,
                f"{r.status} {iso(r.delivered_at)}, but no delivered notice of version "
                f"{r.version} with a successful attempt or an inbox item",
                late=r.late,
            )
        )
    report.unproven.sort(key=lambda g: (g.due_at, g.key))


def delivery_gaps(conn: Connection, rules: RuleSet, now: datetime, report: ReconcileReport) -> None:
    o = obligations.c

    for r in conn.execute(
        select(*_GAP_COLUMNS)
        .where(o.status.in_(UNDELIVERED), o.due_at < now)
        .order_by(o.due_at, o.key)
    ):
        report.overdue.append(_stored_gap("overdue", r, f"status {r.status}"))
    # each rule's window as a cut-off time: delivered before it and not acknowledged
    windows: dict[str, datetime] = {
        rule.id: now - timedelta(hours=rule.ack_window_hours) for rule in rules.rules
    }
    cutoff = case(
        *(
            (o.rule_id == rule_id, literal(at, o.delivered_at.type))
            for rule_id, at in windows.items()
        ),
        else_=literal(now - DEFAULT_ACK_WINDOW, o.delivered_at.type),
    )
    for r in conn.execute(
        select(*_GAP_COLUMNS, o.delivered_at)
        .where(
            o.status == "delivered",
            o.acknowledged_at.is_(None),
            o.delivered_at.is_not(None),
            o.delivered_at < cutoff,
        )
        .order_by(o.delivered_at, o.key)
    ):
        report.unacknowledged.append(
            _stored_gap("unacknowledged", r, f"delivered {iso(r.delivered_at)}")
        )
    # status unresolved (through the status index); and, should a writer ever leave one in
    # another status without a recipient, those too (through the recipient index)
    unresolved = select(*_GAP_COLUMNS).where(o.status == "unresolved")
    unnamed = select(*_GAP_COLUMNS).where(
        o.recipient_kind.in_(sorted({r.recipient for r in rules.rules} | _KINDS)),
        o.recipient_ref.is_(None),
        o.status.not_in(("unresolved", VOIDED)),
    )
    found = union_all(unresolved, unnamed).subquery()
    for r in conn.execute(select(found).order_by(found.c.due_at, found.c.key)):
        report.unresolved.append(_stored_gap("unresolved", r, "no known recipient"))
