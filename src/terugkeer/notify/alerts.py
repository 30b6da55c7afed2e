"""Operator alerts: raised once per open key, resolved when the cause is gone."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from terugkeer.notify.tables import alerts


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
