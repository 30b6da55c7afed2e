"""Feed watch: per source institution, freshness and a burst brake.

- Freshness: a source that sent nothing for longer than ``feed_silence_hours`` of working time
  (Monday to Friday, Europe/Amsterdam) raises a ``feed_stale`` alert; a feed outage must never
  silently stop notices (VINE, Kentucky 2023-2024).
- Burst brake: more releases from one source in one hour (by event time) than
  max(``burst_multiple`` x that source's usual hourly rate over the 28 days before, ``burst_minimum``)
  holds the notices caused by those releases and raises a ``burst`` alert; the operator confirms
  (the notices go out) or voids them (a maintenance job once sent 8,000 false "released"
  notices in Oregon, March 2015). The brake holds across batches and worker runs: releases
  that join a burst after some of its notices went out hold the rest, and voiding the burst
  voids every obligation its releases caused, with a ``correction`` to whoever was already told.
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
from terugkeer.notify.rules.obligations import void_obligations
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
        key = f"burst:{source}:{hour.isoformat()}"
        # releases an operator already decided on (an earlier alert of this hour) stay decided
        decided = _decided_releases(conn, key)
        ids = [i for i in ids if i not in decided]
        if not ids:
            continue
        held = _hold(conn, ids)
        sent = _already_sent(conn, ids)
        message = (
            f"{len(ids)} releases from {source} in the hour from {hour.isoformat()} "
            f"(usual {usual:.2f}/hour): notices held until an operator confirms or voids them"
        )
        if sent:
            message += f"; {sent} notices had gone out before the brake (a void corrects them)"
        details = {
            "source": source,
            "hour": hour,
            "releases": ids,
            "usual_per_hour": usual,
            "already_sent": sent,
        }
        if decided:
            details["decided_before"] = len(decided)
        alert_id = raise_alert(conn, "burst", key, message, details, now)
        # a burst found again in a later batch: the alert covers every release of the hour
        conn.execute(
            update(alerts)
            .where(alerts.c.id == alert_id)
            .values(message=message, details=json.dumps(details, sort_keys=True, default=str))
        )
        log.warning("burst of releases held", source=source, releases=len(ids), held=held)
        raised.append(alert_id)
    _keep_decisions(conn, events, now)
    return raised


def _keep_decisions(conn: Connection, events: Sequence[FeedEvent], now: datetime) -> None:
    """A later batch that touches a period of a burst (a victim registered after the
    release, a correction) re-evaluates its release and may create or reopen notices caused
    by it: they are held while the burst is undecided, and voided again (never sent) when the
    operator voided the burst. A confirmed burst's releases are ordinary releases."""
    refs = sorted({e.period_ref for e in events if e.period_ref})
    if (
        not refs
        or conn.execute(select(alerts.c.id).where(alerts.c.kind == "burst").limit(1)).first()
        is None
    ):
        return
    released: dict[str, str] = {}  # release event id -> the key of its hour's burst alert
    for chunk in chunks(refs):
        for r in conn.execute(
            select(feed_events.c.event_id, feed_events.c.source, feed_events.c.occurred_at).where(
                among(conn, feed_events.c.period_ref, chunk),
                feed_events.c.kind == "release",
                feed_events.c.withdrawn_by.is_(None),
            )
        ):
            released[r.event_id] = f"burst:{r.source}:{_hour(r.occurred_at).isoformat()}"
    hold: list[str] = []
    voided: dict[str, str] = {}  # release event id -> the void reason
    for chunk in chunks(sorted(set(released.values()))):
        for a in conn.execute(
            select(alerts.c.status, alerts.c.details).where(
                alerts.c.kind == "burst", among(conn, alerts.c.key, chunk)
            )
        ):
            details = json.loads(a.details)
            mine = [i for i in details.get("releases", []) if i in released]
            decision = details.get("decision") or {}
            if a.status == "open":
                hold.extend(mine)
            elif decision.get("decision") == "voided":
                voided.update((i, f"voided by {decision['by']}: burst of releases") for i in mine)
    if hold:
        _hold(conn, hold)
    if voided:
        rows = _lock(conn, _obligations_caused_by(conn, list(voided)))
        void_obligations(conn, [(r, voided[r.cause_event_id]) for r in rows], now)


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


def _decided_releases(conn: Connection, key: str) -> set[str]:
    """The releases of the burst alerts with ``key`` an operator already decided on."""
    out: set[str] = set()
    for raw in conn.execute(
        select(alerts.c.details).where(
            alerts.c.key == key, alerts.c.kind == "burst", alerts.c.status == "resolved"
        )
    ).scalars():
        out.update(json.loads(raw).get("releases", []))
    return out


def _already_sent(conn: Connection, event_ids: Sequence[str]) -> int:
    """Notices of the obligations caused by ``event_ids`` that were delivered already."""
    sent = 0
    for chunk in chunks(_obligations_caused_by(conn, event_ids)):
        sent += conn.execute(
            select(func.count())
            .select_from(deliveries)
            .where(
                among(conn, deliveries.c.obligation_id, chunk),
                deliveries.c.status == "delivered",
            )
        ).scalar_one()
    return int(sent)


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


@dataclass(frozen=True, slots=True)
class BurstDecision:
    """What an operator's decision on a burst did."""

    alert_id: int
    decision: str  # confirmed, voided
    held: int  # held notices: sent on confirm, voided on void
    corrected: int  # void: corrections queued for notices that had gone out before the brake
    already_sent: int  # notices of the burst that had gone out before the brake
    obligations: int  # obligations changed (released, or voided)


def decide_burst(
    target: ConnOrEngine,
    alert_id: int,
    *,
    confirm: bool,
    by: str,
    now: datetime | None = None,
    actor: Actor | None = None,
) -> BurstDecision:
    """The operator's decision on a burst, in the caller's transaction when given a
    connection, with an ``update`` row by ``actor`` of each notice it changes.

    Confirm: the held notices go out. Void: every obligation the burst's releases caused is
    voided; held notices are never sent, and a recipient who was told before the brake held
    the rest (the burst straddled a worker run) gets a ``correction``."""
    now = now or datetime.now(UTC)
    with transaction(target) as conn:
        alert = conn.execute(select(alerts).where(alerts.c.id == alert_id)).first()
        if alert is None or alert.kind != "burst":
            raise BurstError(f"no burst alert with id [{alert_id}]")
        if alert.status != "open":
            raise BurstError(f"burst alert [{alert_id}] was already decided ({alert.status})")
        details: dict[str, Any] = json.loads(alert.details)
        decision = "confirmed" if confirm else "voided"
        ids = _obligations_caused_by(conn, details["releases"])
        sent = _already_sent(conn, details["releases"])
        if confirm:
            changed = held_obligations(conn, alert_id)
            held, corrected = _release_held(conn, ids, now), 0
        else:
            rows = _lock(conn, ids)
            changed = [r.id for r in rows]
            held = _count_held(conn, changed)
            reason = f"voided by {by}: burst of releases"
            counts = void_obligations(conn, [(r, reason) for r in rows], now)
            corrected = counts.notices
        who = actor or Actor.system("notify", "burst decision")
        who.record(
            conn, "update", "notice", changed, {"burst_alert": alert_id, "decision": decision}
        )
        details["decision"] = {
            "by": by,
            "at": now.isoformat(),
            "decision": decision,
            "held": held,
            "corrected": corrected,
        }
        conn.execute(
            update(alerts)
            .where(alerts.c.id == alert_id)
            .values(status="resolved", resolved_at=now, details=json.dumps(details, default=str))
        )
    return BurstDecision(alert_id, decision, held, corrected, sent, len(changed))


def _release_held(conn: Connection, ids: Sequence[int], now: datetime) -> int:
    """Held notices of these obligations go out; the number of notices."""
    count = 0
    for chunk in chunks(list(ids)):
        count += conn.execute(
            update(deliveries)
            .where(among(conn, deliveries.c.obligation_id, chunk), deliveries.c.status == "held")
            .values(status="pending", next_attempt_at=now)
        ).rowcount
        conn.execute(
            update(obligations)
            .where(among(conn, obligations.c.id, chunk), obligations.c.status == "held")
            .values(status="open", void_reason=None, updated_at=now)
        )
    return count


def _lock(conn: Connection, ids: Sequence[int]) -> list[Any]:
    """The obligations not yet voided among ``ids``, locked (PostgreSQL) in id order, so a
    dispatcher recording a delivery cannot slip in between."""
    rows: list[Any] = []
    for chunk in chunks(sorted(ids)):
        rows.extend(
            conn.execute(
                select(obligations)
                .where(among(conn, obligations.c.id, chunk), obligations.c.status != "voided")
                .order_by(obligations.c.id)
                .with_for_update()
            )
        )
    return rows


def _count_held(conn: Connection, ids: Sequence[int]) -> int:
    held = 0
    for chunk in chunks(list(ids)):
        held += conn.execute(
            select(func.count())
            .select_from(deliveries)
            .where(among(conn, deliveries.c.obligation_id, chunk), deliveries.c.status == "held")
        ).scalar_one()
    return int(held)
