"""Operator alerts: raised once per open key, resolved when the cause is gone."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from terugkeer.db.paging import Page, fetch_page
from terugkeer.notify.tables import alerts
from terugkeer.security.actor import Actor


def raise_alert(
    conn: Connection, kind: str, key: str, message: str, details: dict[str, Any], now: datetime
) -> int:
    """The id of the open alert with ``key``, created if there is none."""
    found = conn.execute(
        select(alerts.c.id).where(alerts.c.key == key, alerts.c.status == "open")
    ).first()
    if found is not None:
        return int(found.id)
    result = conn.execute(
        insert(alerts).values(
            kind=kind,
            key=key,
            message=message,
            details=json.dumps(details, sort_keys=True, default=str),
            raised_at=now,
            status="open",
        )
    )
    return int(result.inserted_primary_key[0])  # type: ignore[index]


def resolve_alert(conn: Connection, key: str, now: datetime) -> bool:
    result = conn.execute(
        update(alerts)
        .where(alerts.c.key == key, alerts.c.status == "open")
        .values(status="resolved", resolved_at=now)
    )
    return bool(result.rowcount)


def list_alerts(
    conn: Connection,
    *,
    actor: Actor,
    status: str = "open",
    kind: str | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> Page[Any]:
    """The operator's queue, oldest first (``status`` open, resolved or all), from
    ``offset``, at most ``limit`` (None: all), with how many there are in all. Each alert
    shown (most name a notice, a delivery or a period) is a ``read`` row of record type
    ``alert`` by ``actor``, in the caller's transaction."""
    stmt = select(alerts).order_by(alerts.c.id)
    if status != "all":
        stmt = stmt.where(alerts.c.status == status)
    if kind:
        stmt = stmt.where(alerts.c.kind == kind)
    rows, total = fetch_page(conn, stmt, limit, offset)
    actor.record(conn, "read", "alert", ((r.id, {"kind": r.kind}) for r in rows))
    return Page(rows, total, limit, offset)
