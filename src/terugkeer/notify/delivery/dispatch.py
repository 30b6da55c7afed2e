"""The dispatcher: delivers the outbox (``deliveries``) and records every attempt.

One round (:meth:`Dispatcher.run_once`, :func:`dispatch_once`) has three steps:

1. **Claim** (a short transaction): due rows (``pending``, ``next_attempt_at <= now``) are
   selected — on PostgreSQL with ``FOR UPDATE SKIP LOCKED``, so several workers share the
   queue — and leased: ``next_attempt_at = now + lease`` and ``attempts + 1``. The update
   re-checks that each row is still pending and due, so a row is never claimed twice.
2. **Send**, after the claim is committed: each notice goes to its channel. A round stops
   sending before its lease could run out and gives the rest back.
3. **Record** (a second transaction): every attempt goes into ``delivery_attempts``; a success
   marks the delivery and its obligation delivered; a failure schedules the next attempt with
   exponential backoff and full jitter, or after the last attempt (or a permanent error)
   makes the delivery ``dead`` and raises a ``dead_letter`` alert.

A worker that dies between claim and record leaves its rows leased; when the lease runs out
another worker claims and sends them again. So a crash can cause a duplicate (receivers get
the same ``Idempotency-Key``), never a lost notice.

If the obligation changed while its notice was on its way (a new planned date, a
withdrawal), the record step queues the ``change`` or ``correction`` the recipient now needs.

The worker that runs the dispatcher continuously, with the periodic checks, is
:mod:`terugkeer.notify.worker`.
"""

from __future__ import annotations

import os
import random
import socket
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import structlog
from sqlalchemy import Connection, Engine, and_, insert, select, update
from sqlalchemy.exc import DBAPIError

from terugkeer.db.bulk import among
from terugkeer.notify.alerts import raise_alert, resolve_alert
from terugkeer.notify.delivery.channels import Channel, DeliveryError, Notice, default_channels
from terugkeer.notify.rules.obligations import Endpoints, add_delivery, delivery_key
from terugkeer.notify.tables import deliveries, delivery_attempts, obligations
from terugkeer.security.actor import Actor

log = structlog.get_logger(__name__)

# Notices that tell the recipient the obligation's content; a reminder repeats, a correction
# withdraws.
CONTENT_NOTICES = ("notice", "change")
# Obligation statuses that a delivered notice moves to ``delivered``.
DELIVERABLE = ("open", "sent")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When to try again. Attempt ``n`` failing waits a uniformly random time between 0 and
    ``min(cap, base * 2**(n-1))`` (exponential backoff with full jitter); after
    ``max_attempts`` attempts the delivery is dead. ``lease``: how long a claim lasts."""

    max_attempts: int = 8
    base_seconds: float = 30.0
    cap_seconds: float = 3600.0
    lease_seconds: float = 300.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts}")
        if self.base_seconds < 0 or self.cap_seconds < self.base_seconds:
            raise ValueError(
                f"need 0 <= base ({self.base_seconds}) <= cap ({self.cap_seconds}) seconds"
            )
        if self.lease_seconds <= 0:
            raise ValueError(f"lease_seconds must be positive, got {self.lease_seconds}")

    def ceiling(self, attempt: int) -> float:
        """The longest wait after failed attempt ``attempt`` (1-based)."""
        return min(self.cap_seconds, self.base_seconds * 2.0 ** min(attempt - 1, 62))

    def backoff(self, attempt: int, rng: random.Random) -> timedelta:
        return timedelta(seconds=rng.uniform(0.0, self.ceiling(attempt)))


@dataclass
class DispatchCounts:
    claimed: int = 0
    delivered: int = 0
    retrying: int = 0
    dead: int = 0
    released: int = 0  # claimed but given back unsent (the lease ran short)
    followups: int = 0  # change/correction queued: the obligation changed in flight

    def add(self, other: DispatchCounts) -> None:
        for name, value in asdict(other).items():
            setattr(self, name, getattr(self, name) + value)

    def as_json(self) -> dict[str, int]:
        return asdict(self)


@dataclass(slots=True)
class Outcome:
    notice: Notice
    attempted_at: datetime
    duration_ms: int
    error: DeliveryError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident() % 100000}"[:64]


class Dispatcher:
    """Claims, sends and records; one per thread or process (channels keep connections)."""

    def __init__(
        self,
        engine: Engine,
        *,
        channels: Mapping[str, Channel] | None = None,
        policy: RetryPolicy | None = None,
        rng: random.Random | None = None,
        worker_id: str | None = None,
    ) -> None:
        self.engine = engine
        self.channels: Mapping[str, Channel] = (
            channels if channels is not None else default_channels()
        )
        self.policy = policy or RetryPolicy()
        self.rng = rng or random.Random()  # noqa: S311 - jitter, not security
        self.worker_id = (worker_id or default_worker_id())[:64]
        self._postgres = engine.dialect.name == "postgresql"

    # -- 1. claim -------------------------------------------------------------------------

    def claim(self, now: datetime, limit: int) -> list[Notice]:
        """Lease up to ``limit`` due deliveries; committed before anything is sent."""
        lease_until = now + timedelta(seconds=self.policy.lease_seconds)
        due = and_(deliveries.c.status == "pending", deliveries.c.next_attempt_at <= now)
        with self.engine.begin() as conn:
            candidates = (
                select(deliveries.c.id)
                .where(due)
                .order_by(deliveries.c.next_attempt_at, deliveries.c.id)
                .limit(limit)
            )
            if self._postgres:
                candidates = candidates.with_for_update(skip_locked=True)
            ids = list(conn.execute(candidates).scalars())
            if not ids:
                return []
            claimed = list(
                conn.execute(
                    update(deliveries)
                    .where(among(conn, deliveries.c.id, ids), due)
                    .values(next_attempt_at=lease_until, attempts=deliveries.c.attempts + 1)
                    .returning(deliveries.c.id)
                ).scalars()
            )
            if not claimed:
                return []
            rows = conn.execute(
                select(
                    deliveries.c.id,
                    deliveries.c.obligation_id,
                    deliveries.c.idempotency_key,
                    deliveries.c.notice,
                    deliveries.c.obligation_version,
                    deliveries.c.channel,
                    deliveries.c.address,
                    deliveries.c.attempts,
                    obligations.c.subject,
                    obligations.c.rule_id,
                    obligations.c.rule_version,
                    obligations.c.recipient_kind,
                    obligations.c.recipient_ref,
                    obligations.c.period_ref,
                    obligations.c.due_at,
                    obligations.c.planned_for,
                    obligations.c.late,
                    obligations.c.late_reason,
                    obligations.c.backfilled,
                )
                .join(obligations, obligations.c.id == deliveries.c.obligation_id)
                .where(among(conn, deliveries.c.id, claimed))
            ).all()
        order = {delivery_id: i for i, delivery_id in enumerate(ids)}  # oldest due first
        rows = sorted(rows, key=lambda r: order[r.id])
        return [
            Notice(
                delivery_id=r.id,
                obligation_id=r.obligation_id,
                idempotency_key=r.idempotency_key,
                notice=r.notice,
                version=r.obligation_version,
                channel=r.channel,
                address=r.address,
                attempt=r.attempts,
                subject=r.subject,
                rule_id=r.rule_id,
                rule_version=r.rule_version,
                recipient_kind=r.recipient_kind,
                recipient_ref=r.recipient_ref or "",
                period_ref=r.period_ref,
                due_at=r.due_at,
                planned_for=r.planned_for,
                late=r.late,
                late_reason=r.late_reason,
                backfilled=r.backfilled,
            )
            for r in rows
        ]

    # -- 2. send --------------------------------------------------------------------------

    def send(self, notices: Sequence[Notice], now: datetime) -> tuple[list[Outcome], list[Notice]]:
        """Send each notice; stop before the lease could run out. (outcomes, unsent)"""
        started = time.monotonic()
        # leave a margin for one more send and the record transaction
        budget = self.policy.lease_seconds * 0.8
        outcomes: list[Outcome] = []
        for i, notice in enumerate(notices):
            elapsed = time.monotonic() - started
            if elapsed > budget:
                return outcomes, list(notices[i:])
            attempted_at = now + timedelta(seconds=elapsed)
            t0 = time.perf_counter()
            error: DeliveryError | None = None
            channel = self.channels.get(notice.channel)
            try:
                if channel is None:
                    raise DeliveryError(False, f"no channel [{notice.channel}] is configured")
                channel.send(notice)
            except DeliveryError as e:
                error = e
            except Exception as e:  # a fault in a channel must not stop the other notices
                log.exception("channel fault", channel=notice.channel, delivery=notice.delivery_id)
                error = DeliveryError(True, f"{notice.channel}: internal error {type(e).__name__}")
            duration = round((time.perf_counter() - t0) * 1000)
            outcomes.append(Outcome(notice, attempted_at, duration, error))
        return outcomes, []

    # -- 3. record ------------------------------------------------------------------------

    def record(self, outcomes: Sequence[Outcome], now: datetime) -> DispatchCounts:
        """Record the outcomes in one transaction; tried again (up to three times) when the
        database breaks a deadlock with a concurrent ingest by aborting this transaction."""
        for attempt in (1, 2, 3):
            try:
                return self._record(outcomes, now)
            except DBAPIError as e:
                if attempt == 3 or not _transient(e):
                    raise
                log.warning("recording attempts again", reason=type(e.orig).__name__)
        raise AssertionError("unreachable")  # pragma: no cover

    def _record(self, outcomes: Sequence[Outcome], now: datetime) -> DispatchCounts:
        counts = DispatchCounts()
        if not outcomes:
            return counts
        with self.engine.begin() as conn:
            # Lock the obligations first, in id order, as ingest writes obligations before
            # deliveries: a consistent view of what changed in flight, and few deadlocks (one
            # that the database breaks is retried by ``record``).
            ids = sorted({o.notice.obligation_id for o in outcomes})
            current = select(
                obligations.c.id,
                obligations.c.status,
                obligations.c.version,
                obligations.c.recipient_kind,
                obligations.c.recipient_ref,
                obligations.c.delivered_at,
                obligations.c.rule_id,
            ).where(among(conn, obligations.c.id, ids))
            if self._postgres:
                current = current.with_for_update()
            state = {r.id: r for r in conn.execute(current.order_by(obligations.c.id))}
            conn.execute(
                insert(delivery_attempts),
                [
                    {
                        "delivery_id": o.notice.delivery_id,
                        "attempted_at": o.attempted_at,
                        "ok": o.ok,
                        "error": None if o.error is None else str(o.error),
                        "duration_ms": o.duration_ms,
                        "worker": self.worker_id,
                    }
                    for o in outcomes
                ],
            )
            self._record_successes(conn, [o for o in outcomes if o.ok], state, now, counts)
            for o in outcomes:
                if o.error is not None:
                    self._record_failure(conn, o, state, now, counts)
        return counts

    def _record_successes(
        self,
        conn: Connection,
        successes: list[Outcome],
        state: dict[int, Any],
        now: datetime,
        counts: DispatchCounts,
    ) -> None:
        if not successes:
            return
        # What was sent is delivered, whatever happened to the row meanwhile (voided, held,
        # or given up by a worker that claimed it after this one's lease ran out).
        by_id = {o.notice.delivery_id: o.notice for o in successes}
        conn.execute(
            update(deliveries)
            .where(among(conn, deliveries.c.id, list(by_id)), deliveries.c.status != "delivered")
            .values(status="delivered", delivered_at=now, last_error=None)
        )
        # record the version that was actually sent (a change may have moved the row on)
        stale = [n for n in by_id.values() if state[n.obligation_id].version != n.version]
        for n in stale:
            conn.execute(
                update(deliveries)
                .where(deliveries.c.id == n.delivery_id)
                .values(obligation_version=n.version)
            )
        counts.delivered += len(by_id)
        fresh: list[int] = []  # obligations now delivered
        renewed: list[int] = []  # ... by a change notice: a new acknowledgement window
        told: list[int] = []  # the recipient heard of it (kept even when it moved on)
        endpoints: Endpoints | None = None
        for n in by_id.values():
            if n.notice not in CONTENT_NOTICES:
                continue
            ob = state[n.obligation_id]
            told.append(ob.id)
            if ob.version == n.version:
                if ob.status in DELIVERABLE:
                    (renewed if n.notice == "change" else fresh).append(ob.id)
                continue
            # the obligation moved on while this notice was on its way
            if ob.recipient_ref is None or _has_content_notice(conn, ob.id, ob.version):
                continue
            endpoints = endpoints or Endpoints(conn)
            followup = "correction" if ob.status == "voided" else "change"
            if add_delivery(
                conn,
                endpoints,
                ob.id,
                ob.recipient_kind,
                ob.recipient_ref,
                followup,
                ob.version,
                now,
                held=ob.status == "held",
            ):
                counts.followups += 1
                log.info(
                    "follow-up queued",
                    obligation=ob.id,
                    notice=followup,
                    sent_version=n.version,
                    version=ob.version,
                )
        delivered = {"status": "delivered", "delivered_at": now, "updated_at": now}
        for ids, values in ((fresh, delivered), (renewed, {**delivered, "escalation": 0})):
            if ids:
                conn.execute(
                    update(obligations)
                    .where(
                        among(conn, obligations.c.id, ids), obligations.c.status.in_(DELIVERABLE)
                    )
                    .values(**values)
                )
        if told:
            conn.execute(
                update(obligations)
                .where(among(conn, obligations.c.id, told), obligations.c.delivered_at.is_(None))
                .values(delivered_at=now)
            )

    def _record_failure(
        self,
        conn: Connection,
        outcome: Outcome,
        state: dict[int, Any],
        now: datetime,
        counts: DispatchCounts,
    ) -> None:
        n, error = outcome.notice, outcome.error
        assert error is not None  # noqa: S101 - only failures come here
        # Only the worker holding the latest claim decides what happens next.
        mine = and_(
            deliveries.c.id == n.delivery_id,
            deliveries.c.status == "pending",
            deliveries.c.attempts == n.attempt,
        )
        message = str(error)[:2000]
        if error.retryable and n.attempt < self.policy.max_attempts:
            wait = self.policy.backoff(n.attempt, self.rng)
            result = conn.execute(
                update(deliveries)
                .where(mine)
                .values(next_attempt_at=now + wait, last_error=message)
            )
            if result.rowcount:
                counts.retrying += 1
                log.info(
                    "delivery failed, will retry",
                    delivery=n.delivery_id,
                    channel=n.channel,
                    attempt=n.attempt,
                    wait_s=round(wait.total_seconds(), 1),
                    error=message,
                )
            return
        result = conn.execute(
            update(deliveries).where(mine).values(status="dead", last_error=message)
        )
        if not result.rowcount:
            return
        counts.dead += 1
        ob = state[n.obligation_id]
        why = "a permanent error" if not error.retryable else f"{n.attempt} attempts"
        raise_alert(
            conn,
            "dead_letter",
            f"dead_letter:{n.delivery_id}",
            f"{n.notice} {n.delivery_id} of obligation {n.obligation_id} ({ob.rule_id} to "
            f"{ob.recipient_kind} {ob.recipient_ref}) via {n.channel} given up after {why}: "
            f"{message}",
            {
                "delivery_id": n.delivery_id,
                "obligation_id": n.obligation_id,
                "rule_id": ob.rule_id,
                "recipient_kind": ob.recipient_kind,
                "recipient_ref": ob.recipient_ref,
                "channel": n.channel,
                "notice": n.notice,
                "attempts": n.attempt,
                "retryable": error.retryable,
                "last_error": message,
            },
            now,
        )
        log.warning(
            "dead letter",
            delivery=n.delivery_id,
            obligation=n.obligation_id,
            channel=n.channel,
            attempts=n.attempt,
            error=message,
        )

    def release(self, notices: Sequence[Notice], now: datetime) -> int:
        """Give claimed but unsent notices back to the queue, due at once."""
        released = 0
        with self.engine.begin() as conn:
            for n in notices:
                released += conn.execute(
                    update(deliveries)
                    .where(
                        deliveries.c.id == n.delivery_id,
                        deliveries.c.status == "pending",
                        deliveries.c.attempts == n.attempt,
                    )
                    .values(next_attempt_at=now, attempts=deliveries.c.attempts - 1)
                ).rowcount
        return released

    # -- a round --------------------------------------------------------------------------

    def run_once(self, now: datetime | None = None, limit: int = 100) -> DispatchCounts:
        """Claim, send and record up to ``limit`` due deliveries."""
        now = now or datetime.now(UTC)
        notices = self.claim(now, limit)
        counts = DispatchCounts(claimed=len(notices))
        if not notices:
            return counts
        outcomes, unsent = self.send(notices, now)
        counts.add(self.record(outcomes, now + _elapsed(outcomes)))
        if unsent:
            counts.released += self.release(unsent, now)
        return counts

    def drain(
        self, now: datetime | None = None, limit: int = 100, stop: StopSignal | None = None
    ) -> DispatchCounts:
        """Rounds until nothing due at ``now`` is left (or ``stop`` is set). Retries that
        come due later than ``now`` are left for a later call."""
        fixed = now
        total = DispatchCounts()
        while stop is None or not stop.is_set():
            counts = self.run_once(fixed or datetime.now(UTC), limit)
            total.add(counts)
            if counts.claimed < limit:
                break
        return total

    def close(self) -> None:
        for channel in self.channels.values():
            closer = getattr(channel, "close", None)
            if callable(closer):
                closer()


def _transient(error: DBAPIError) -> bool:
    """A deadlock or serialization failure (PostgreSQL), or a busy SQLite file."""
    if getattr(error.orig, "sqlstate", None) in ("40P01", "40001"):
        return True
    return "database is locked" in str(error.orig)


def _elapsed(outcomes: Sequence[Outcome]) -> timedelta:
    if not outcomes:
        return timedelta(0)
    last = outcomes[-1]
    return last.attempted_at - outcomes[0].attempted_at + timedelta(milliseconds=last.duration_ms)


def _has_content_notice(conn: Connection, obligation_id: int, version: int) -> bool:
    """Is a notice, change or correction for this version of the obligation queued or sent?"""
    found = conn.execute(
        select(deliveries.c.id)
        .where(
            deliveries.c.obligation_id == obligation_id,
            deliveries.c.obligation_version == version,
            deliveries.c.notice.in_((*CONTENT_NOTICES, "correction")),
            deliveries.c.status != "voided",
        )
        .limit(1)
    ).first()
    return found is not None


def dispatch_once(
    engine: Engine,
    now: datetime | None = None,
    limit: int = 100,
    worker_id: str | None = None,
    *,
    channels: Mapping[str, Channel] | None = None,
    policy: RetryPolicy | None = None,
    rng: random.Random | None = None,
) -> DispatchCounts:
    """One round: claim, send and record up to ``limit`` due deliveries."""
    dispatcher = Dispatcher(engine, channels=channels, policy=policy, rng=rng, worker_id=worker_id)
    try:
        return dispatcher.run_once(now, limit)
    finally:
        dispatcher.close()


# -- the operator's second chance for a dead letter -------------------------------------------


class RetryError(ValueError):
    pass


def retry_dead(
    engine: Engine, delivery_id: int, now: datetime | None = None, *, actor: Actor | None = None
) -> int:
    """Send a dead letter again, after its cause is fixed; returns the delivery id queued. An
    ``update`` row of the delivery by ``actor``, in the same transaction.

    When the recipient's channel is still the same, the dead delivery is queued again (with the
    current address; its attempts stay in ``delivery_attempts``); when the channel changed, a
    new delivery is queued on it and the dead one stays as it is. The alert is resolved."""
    now = now or datetime.now(UTC)
    with engine.begin() as conn:
        row = conn.execute(
            select(deliveries, obligations.c.recipient_kind, obligations.c.recipient_ref)
            .join(obligations, obligations.c.id == deliveries.c.obligation_id)
            .where(deliveries.c.id == delivery_id)
        ).first()
        if row is None:
            raise RetryError(f"no delivery with id [{delivery_id}]")
        if row.status != "dead":
            raise RetryError(f"delivery [{delivery_id}] is {row.status}, not dead")
        endpoints = Endpoints(conn)
        priority = 2 if row.notice == "reminder" else 1
        found = endpoints.channel(row.recipient_kind, row.recipient_ref or "", priority)
        queued = delivery_id
        if found is not None and found[0] != row.channel:
            key = delivery_key(row.obligation_id, row.notice, row.obligation_version, found[0])
            taken = conn.execute(
                select(deliveries.c.id, deliveries.c.status).where(
                    deliveries.c.idempotency_key == key
                )
            ).first()
            if taken is not None:
                raise RetryError(
                    f"delivery [{delivery_id}] was already sent again on {found[0]} as "
                    f"delivery [{taken.id}] ({taken.status})"
                )
            add_delivery(
                conn,
                endpoints,
                row.obligation_id,
                row.recipient_kind,
                row.recipient_ref or "",
                row.notice,
                row.obligation_version,
                now,
                priority=priority,
            )
            queued = conn.execute(
                select(deliveries.c.id).where(deliveries.c.idempotency_key == key)
            ).scalar_one()
        else:
            conn.execute(
                update(deliveries)
                .where(deliveries.c.id == delivery_id)
                .values(
                    status="pending",
                    attempts=0,
                    next_attempt_at=now,
                    address=found[1] if found is not None else row.address,
                )
            )
        resolve_alert(conn, f"dead_letter:{delivery_id}", now)
        who = actor or Actor.system("notify", "dead letter retry")
        who.record(conn, "update", "delivery", [delivery_id], {"queued": queued})
    log.info("dead letter queued again", delivery=delivery_id, queued=queued)
    return queued


# -- stopping a drain ------------------------------------------------------------------------


class StopSignal(Protocol):
    """A threading.Event or a multiprocessing Event."""

    def is_set(self) -> bool: ...

    def wait(self, timeout: float | None = None) -> bool: ...

    def set(self) -> None: ...
