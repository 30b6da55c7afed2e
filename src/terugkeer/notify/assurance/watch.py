"""Feed watch: per source institution, freshness and a burst brake.

- Freshness: a source that sent nothing for longer than ``feed_silence_hours`` of working time
  (Monday to Friday, Europe/Amsterdam) raises a ``feed_stale`` alert; a feed outage must never
  silently stop notices (VINE, Kentucky 2023-2024).
- Burst brake: more releases from one source in one hour (by event time) than
  max(``burst_multiple`` x that source's usual hourly rate over the 28 days before, ``burst_minimum``)
  holds the notices caused by those releases and raises a ``burst`` alert; the operator confirms
  (the notices go out) or voids them (a maintenance job once sent 8,000 false "released"
  notices in Oregon, March 2015).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy import Connection, Engine, func, select, update

from terugkeer.config import get_settings
from terugkeer.db.bulk import among, chunks
from terugkeer.db.engine import ConnOrEngine, transaction
from terugkeer.detention.tables import feed_events
from terugkeer.domain.events import FeedEvent
from terugkeer.domain.refdata import refdata
from terugkeer.notify.alerts import raise_alert, resolve_alert
from terugkeer.notify.tables import alerts, deliveries, obligations
from terugkeer.security.actor import Actor

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
log = structlog.get_logger(__name__)
USUAL_RATE_DAYS = 28


def working_hours_between(start: datetime, end: datetime) -> float:
    """Hours between two moments that fall on Monday to Friday (Amsterdam calendar days)."""
    if end <= start:
        return 0.0
    total = 0.0
    cursor = start.astimezone(AMSTERDAM)
    end_local = end.astimezone(AMSTERDAM)
    while cursor < end_local:
        next_midnight = datetime.combine(
            cursor.date() + timedelta(days=1), datetime.min.time(), AMSTERDAM
        )
        stop = min(next_midnight, end_local)
        if cursor.weekday() < 5:
            total += (stop - cursor).total_seconds() / 3600
        cursor = stop
    return total


@dataclass
class FreshnessReport:
    stale: dict[str, float] = field(default_factory=dict)  # source -> silent working hours
    fresh: list[str] = field(default_factory=list)
    never: list[str] = field(default_factory=list)  # sources that never sent anything


def check_freshness(
    engine: Engine, now: datetime | None = None, *, silence_hours: float | None = None
) -> FreshnessReport:
    """Raise (or resolve) a ``feed_stale`` alert per place of detention."""
    now = now or datetime.now(UTC)
    limit = silence_hours if silence_hours is not None else get_settings().feed_silence_hours
    report = FreshnessReport()
    with engine.begin() as conn:
        last = dict(
            conn.execute(
                select(feed_events.c.source, func.max(feed_events.c.received_at)).group_by(
                    feed_events.c.source
                )
            ).all()
        )
        for inst in refdata().places_of_detention():
            seen = last.get(inst.code)
            if seen is None:
                report.never.append(inst.code)
                continue
            if seen.tzinfo is None:  # SQLite aggregate results skip the column type
                seen = datetime.fromisoformat(str(seen)).replace(tzinfo=UTC)
            silent = working_hours_between(seen, now)
            key = f"feed_stale:{inst.code}"
            if silent > limit:
                report.stale[inst.code] = round(silent, 1)
                raise_alert(
                    conn,
                    "feed_stale",
                    key,
                    f"no messages from {inst.code} ({inst.name}) for {silent:.0f} working hours",
                    {"source": inst.code, "last_received_at": seen, "silent_hours": silent},
                    now,
                )
            else:
                report.fresh.append(inst.code)
                resolve_alert(conn, key, now)
    return report


def _hour(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def brake_bursts(conn: Connection, events: Sequence[FeedEvent], now: datetime) -> list[int]:
    """Hold the notices of release bursts among ``events`` (just applied); the ids of the
    ``burst`` alerts raised. Runs in the ingest transaction, after obligations are written."""
    settings = get_settings()
    hours_by_source: dict[str, set[datetime]] = defaultdict(set)
    for e in events:
        if e.kind == "release":
            hours_by_source[e.source].add(_hour(e.occurred_at))
    # One range query per source over the hours this batch touched; bucketed here.
    buckets: dict[tuple[str, datetime], list[str]] = {}
    for source, hours in hours_by_source.items():
        stored = _releases_with_time(conn, source, min(hours), max(hours) + timedelta(hours=1))
        for at, event_id in stored:
            hour = _hour(at)
            if hour in hours:
                buckets.setdefault((source, hour), []).append(event_id)
    raised: list[int] = []
    for (source, hour), ids in buckets.items():
        if len(ids) < settings.burst_minimum:
            continue
        before = len(_releases(conn, source, hour - timedelta(days=USUAL_RATE_DAYS), hour))
        usual = before / (USUAL_RATE_DAYS * 24)
        threshold = max(settings.burst_multiple * usual, settings.burst_minimum)
        if len(ids) <= threshold:
            continue
        held = _hold(conn, ids)
        message = (
            f"{len(ids)} releases from {source} in the hour from {hour.isoformat()} "
            f"(usual {usual:.2f}/hour): notices held until an operator confirms or voids them"
        )
        details = {"source": source, "hour": hour, "releases": ids, "usual_per_hour": usual}
        alert_id = raise_alert(
            conn, "burst", f"burst:{source}:{hour.isoformat()}", message, details, now
        )
        # a burst found again in a later batch: the alert covers every release of the hour
        conn.execute(
            update(alerts)
            .where(alerts.c.id == alert_id)
            .values(message=message, details=json.dumps(details, sort_keys=True, default=str))
        )
        log.warning("burst of releases held", source=source, releases=len(ids), held=held)
        raised.append(alert_id)
    return raised


def _releases_with_time(
    conn: Connection, source: str, start: datetime, end: datetime
) -> list[tuple[datetime, str]]:
    return [
        (r.occurred_at, r.event_id)
        for r in conn.execute(
            select(feed_events.c.occurred_at, feed_events.c.event_id).where(
                feed_events.c.kind == "release",
                feed_events.c.source == source,
                feed_events.c.withdrawn_by.is_(None),
                feed_events.c.occurred_at >= start,
                feed_events.c.occurred_at < end,
            )
        )
    ]


def _releases(conn: Connection, source: str, start: datetime, end: datetime) -> list[str]:
    return [
        r.event_id
        for r in conn.execute(
            select(feed_events.c.event_id).where(
                feed_events.c.source == source,
                feed_events.c.kind == "release",
                feed_events.c.withdrawn_by.is_(None),
                feed_events.c.occurred_at >= start,
                feed_events.c.occurred_at < end,
            )
        )
    ]


def _obligations_caused_by(conn: Connection, event_ids: Sequence[str]) -> list[int]:
    out: list[int] = []
    for chunk in chunks(list(event_ids)):
        out.extend(
            r.id
            for r in conn.execute(
                select(obligations.c.id).where(among(conn, obligations.c.cause_event_id, chunk))
            )
        )
    return out


def _hold(conn: Connection, event_ids: Sequence[str]) -> int:
    held = 0
    for chunk in chunks(_obligations_caused_by(conn, event_ids)):
        held += conn.execute(
            update(deliveries)
            .where(among(conn, deliveries.c.obligation_id, chunk), deliveries.c.status == "pending")
            .values(status="held")
        ).rowcount
        conn.execute(
            update(obligations)
            .where(among(conn, obligations.c.id, chunk), obligations.c.status == "open")
            .values(status="held")
        )
    return held


class BurstError(ValueError):
    pass


def held_obligations(conn: Connection, alert_id: int) -> list[int]:
    """The obligations a burst alert holds back (what a decision on it changes), by id."""
    raw = conn.execute(
        select(alerts.c.details).where(alerts.c.id == alert_id, alerts.c.kind == "burst")
    ).scalar_one_or_none()
    releases = json.loads(raw).get("releases", []) if raw else []
    held: list[int] = []
    for chunk in chunks(list(releases)):
        held.extend(
            conn.execute(
                select(obligations.c.id).where(
                    among(conn, obligations.c.cause_event_id, chunk), obligations.c.status == "held"
                )
            ).scalars()
        )
    return sorted(held)


def decide_burst(
    target: ConnOrEngine,
    alert_id: int,
    *,
    confirm: bool,
    by: str,
    now: datetime | None = None,
    actor: Actor | None = None,
) -> int:
    """The operator's decision on a burst: confirm (send the held notices) or void them, in
    the caller's transaction when given a connection, with an ``update`` row of each held
    notice by ``actor``. Returns the number of notices released or voided."""
    now = now or datetime.now(UTC)
    with transaction(target) as conn:
        alert = conn.execute(select(alerts).where(alerts.c.id == alert_id)).first()
        if alert is None or alert.kind != "burst":
            raise BurstError(f"no burst alert with id [{alert_id}]")
        if alert.status != "open":
            raise BurstError(f"burst alert [{alert_id}] was already decided ({alert.status})")
        details: dict[str, Any] = json.loads(alert.details)
        if actor is not None:
            decided = {"burst_alert": alert_id, "decision": "confirmed" if confirm else "voided"}
            actor.record(conn, "update", "notice", held_obligations(conn, alert_id), decided)
        ids = _obligations_caused_by(conn, details["releases"])
        count = 0
        for chunk in chunks(ids):
            count += conn.execute(
                update(deliveries)
                .where(
                    among(conn, deliveries.c.obligation_id, chunk), deliveries.c.status == "held"
                )
                .values(status="pending" if confirm else "voided", next_attempt_at=now)
            ).rowcount
            conn.execute(
                update(obligations)
                .where(among(conn, obligations.c.id, chunk), obligations.c.status == "held")
                .values(
                    status="open" if confirm else "voided",
                    void_reason=None if confirm else f"voided by {by}: burst of releases",
                    updated_at=now,
                )
            )
        decision = "confirmed" if confirm else "voided"
        details["decision"] = {"by": by, "at": now.isoformat(), "decision": decision}
        conn.execute(
            update(alerts)
            .where(alerts.c.id == alert_id)
            .values(status="resolved", resolved_at=now, details=json.dumps(details, default=str))
        )
    return count
