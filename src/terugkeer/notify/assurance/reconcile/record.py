"""The gaps of a reconciliation as operator alerts: raised while open, resolved when closed."""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import Connection, insert, select, update

from terugkeer.db.bulk import among, chunks
from terugkeer.notify.assurance.reconcile.report import (
    ALERT_KINDS,
    ALERT_PREFIX,
    Gap,
    ReconcileReport,
)
from terugkeer.notify.tables import alerts

ESCALATED = ("unacknowledged", "unresolved")  # gap kinds the worker's escalation also raises


def record_alerts(conn: Connection, report: ReconcileReport, now: datetime) -> None:
    """Raise one alert per gap (kept while it stays open), resolve the ones whose gap closed.

    An unacknowledged or unresolved obligation for which the worker's escalation already has
    an open alert (``unacknowledged:<id>``, ``unresolved:<id>``) gets no second one: the
    operator's queue holds the fact once. The gap is still reported; should escalation not
    have raised it, reconciliation does."""
    escalated = {
        r.key
        for r in conn.execute(
            select(alerts.c.key).where(alerts.c.status == "open", alerts.c.kind.in_(ESCALATED))
        )
    }
    wanted: dict[str, Gap] = {}
    for g in report.gaps:
        if g.kind in ESCALATED and f"{g.kind}:{g.obligation_id}" in escalated:
            report.alerts_escalated += 1
            continue
        wanted.setdefault(g.alert_key, g)
    open_alerts: dict[str, int] = {
        r.key: r.id
        for r in conn.execute(
            select(alerts.c.id, alerts.c.key).where(
                alerts.c.status == "open",
                alerts.c.kind.in_(ALERT_KINDS),
                alerts.c.key.startswith(ALERT_PREFIX, autoescape=True),
            )
        )
    }
    new = [
        {
            "kind": g.kind,
            "key": k,
            "message": g.message(),
            "details": json.dumps(g.as_json(), sort_keys=True),
            "raised_at": now,
            "status": "open",
        }
        for k, g in wanted.items()
        if k not in open_alerts
    ]
    if new:
        conn.execute(insert(alerts), new)
    closed = [alert_id for k, alert_id in open_alerts.items() if k not in wanted]
    for chunk in chunks(closed):
        conn.execute(
            update(alerts)
            .where(among(conn, alerts.c.id, chunk), alerts.c.status == "open")
            .values(status="resolved", resolved_at=now)
        )
    report.alerts_raised = len(new)
    report.alerts_resolved = len(closed)
    report.alerts_open = len(wanted)
