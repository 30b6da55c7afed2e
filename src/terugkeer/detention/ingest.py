"""Apply feed messages to the store: idempotent, order-tolerant, nothing lost.

Messages are processed in batches; each batch is one transaction in which accepted events,
the periods, victims and reconvictions they change, and the quarantine rows of rejected
messages are written together. Every message ends up applied, recognised as a duplicate, or
quarantined with its raw content and reason. A message that waits for something not yet
known (an event for a period whose intake has not arrived) is *parked*: quarantined with
``waits_for`` set, and applied automatically when that intake or person arrives.

The work is split by role: :mod:`~terugkeer.detention.items` reads and parses messages,
:mod:`~terugkeer.detention.batch` applies a batch's events in memory,
:mod:`~terugkeer.detention.batch_write` writes the result, :mod:`~terugkeer.detention.parking`
finds parked messages and records every outcome in quarantine. This module drives them: one
transaction per batch, and the retries of parked messages within it.
"""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError

from terugkeer.db.bulk import select_in
from terugkeer.db.engine import CHECK_EVERY_S, refresh_statistics
from terugkeer.detention.batch import MAX_GROUP_SEARCH, Batch, event_key
from terugkeer.detention.batch_write import (
    EVENT_COLUMNS,
    RECONVICTION_COLUMNS,
    VICTIM_COLUMNS,
    write_batch,
)
from terugkeer.detention.items import Item, parse_item, read_items
from terugkeer.detention.parking import parked_events, parked_items, write_outcomes
from terugkeer.detention.parse import parse_line
from terugkeer.detention.periods import PERIOD_COLUMNS
from terugkeer.domain.codes import DETENTION_KINDS, EventKind
from terugkeer.domain.events import FeedError, FeedEvent
from terugkeer.domain.refdata import RefData, refdata
from terugkeer.security.crypto import open_body

ProgressCallback = Callable[[int], None]


@dataclass(frozen=True, slots=True)
class AppliedBatch:
    """What one batch applied, for hooks that act in the same transaction (notify)."""

    events: list[FeedEvent]  # accepted, in the order applied
    withdrawn: dict[str, str]  # event id -> id of the correction that withdrew it
    now: datetime


BatchHook = Callable[[Connection, AppliedBatch], None]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one message as received (a parked one taken up again has none): applied,
    a duplicate, or quarantined with its error (parked when ``error.waits_for`` is set)."""

    item: Item
    event_id: str | None
    error: FeedError | None
    duplicate: bool = False


@dataclass
class IngestResult:
    read: int = 0
    applied: int = 0
    duplicates: int = 0
    quarantined: int = 0
    unparked: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    outcomes: list[Outcome] = field(default_factory=list)  # only with ``keep_outcomes``

    def as_json(self) -> dict[str, int]:
        return {
            "read": self.read,
            "applied": self.applied,
            "duplicates": self.duplicates,
            "quarantined": self.quarantined,
        }

    def add(self, other: IngestResult) -> None:
        self.read += other.read
        self.applied += other.applied
        self.duplicates += other.duplicates
        self.quarantined += other.quarantined
        self.unparked += other.unparked
        self.reasons.update(other.reasons)
        self.outcomes.extend(other.outcomes)


def _content(e: FeedEvent) -> tuple[Any, ...]:
    return (e.source, e.occurred_at, e.kind, e.bsn, e.prison_number, e.period_ref, e.fields)


def process_batch(
    conn: Connection,
    items: Sequence[Item],
    rd: RefData | None = None,
    hooks: Sequence[BatchHook] = (),
    *,
    keep_outcomes: bool = False,
    wake: bool = True,
) -> IngestResult:
    """Apply ``items`` inside the caller's transaction ``conn``; with ``keep_outcomes`` the
    result lists each message's :class:`Outcome`.

    Events are applied in event-time order. A message that fails while waiting for something
    (its period's intake, an earlier event of its period, its person) is retried in the same
    batch whenever that thing changes, and otherwise parked in quarantine for later batches.
    Parked messages waiting for what the batch applies are taken up in it, unless ``wake`` is
    false (see :func:`_alone`).
    """
    rd = rd or refdata()

    def take_up(keys: Iterable[str], event_ids: Iterable[str] = ()) -> list[Item]:
        if not wake:
            return []
        return parked_items(conn, keys) + parked_events(conn, event_ids)

    batch = Batch(conn, rd, datetime.now(UTC))
    pending: list[tuple[Item, FeedEvent]] = []
    # content of each event admitted, as parsed (applying fills in a BSN or a correction's period)
    seen: dict[str, tuple[Any, ...]] = {}
    duplicates: list[Item] = []
    admitted: set[int] = set()  # quarantine ids of parked messages taken up in this batch

    def admit(work: Iterable[Item]) -> list[tuple[Item, FeedEvent]]:
        """Parse items and set duplicates aside; return the new events."""
        fresh: list[tuple[Item, FeedEvent]] = []
        for item in work:
            if item.quarantine_id is not None:
                if item.quarantine_id in admitted:
                    continue  # a parked message already in play in this batch
                admitted.add(item.quarantine_id)
            try:
                event = parse_item(item, rd)
            except FeedError as error:
                batch.outcomes[id(item)] = (item, error, None)
                continue
            except ValueError as error:  # a stored CSV row that is not a JSON object
                batch.outcomes[id(item)] = (item, FeedError("invalid_json", str(error)), None)
                continue
            first = seen.get(event.event_id)
            if first is not None:
                if first == _content(event):
                    duplicates.append(item)
                    batch.outcomes[id(item)] = (item, None, event.event_id)
                else:
                    batch.outcomes[id(item)] = (item, _conflict(event), event.event_id)
                continue
            seen[event.event_id] = _content(event)
            fresh.append((item, event))
        stored = {
            event_id: (hash_, body)
            for event_id, hash_, body in select_in(
                conn,
                "SELECT event_id, body_hash, body FROM feed_events",
                "event_id",
                [e.event_id for _, e in fresh],
            )
        }
        new: list[tuple[Item, FeedEvent]] = []
        for item, event in fresh:
            known = stored.get(event.event_id)
            if known is None:
                new.append((item, event))
            elif known[0] == event.body_hash or _content(
                parse_line(open_body(known[1], event.event_id), rd=rd)
            ) == _content(event):
                duplicates.append(item)
                batch.outcomes[id(item)] = (item, None, event.event_id)
            else:
                batch.outcomes[id(item)] = (item, _conflict(event), event.event_id)
        return new

    pending.extend(admit(items))
    waiting: dict[str, list[tuple[Item, FeedEvent]]] = {}

    def settle(keys: Iterable[str], event_ids: Collection[str]) -> None:
        """The messages waiting under ``keys`` whose events are now applied or withdrawn
        (``event_ids``) wait no longer."""
        for key in keys:
            for item, event in waiting[key]:
                if event.event_id in event_ids:
                    batch.outcomes[id(item)] = (item, None, event.event_id)
            waiting[key] = [p for p in waiting[key] if p[1].event_id not in event_ids]

    asked: set[str] = set()  # keys of `unfit_keys` already taken up
    sought: set[str] = set()  # event ids of `correcting` already looked for among the parked
    while pending:
        work = sorted(pending, key=lambda pair: pair[1].sort_key())
        pending.clear()
        batch.load([e for _, e in work])
        batch.touched.clear()
        # A correction may withdraw an event that does not fit (a wrong intake arriving after
        # the right one): the keys of this round's such events (corrections parked on them
        # are taken up) and the events this round's corrections did not find (one may be
        # parked for not fitting). See Batch._correction.
        unfit_keys: list[str] = []
        correcting: list[str] = []
        for item, event in work:
            try:
                batch.apply(event)
            except FeedError as error:
                batch.outcomes[id(item)] = (item, error, event.event_id)
                if error.waits_for:
                    waiting.setdefault(error.waits_for, []).append((item, event))
                if event.kind is not EventKind.CORRECTION:
                    if event.event_id not in batch.unfit:
                        batch.unfit[event.event_id] = event
                        unfit_keys.append(event_key(event.event_id))
                elif error.reason == "unknown_event":
                    correcting.append(event.fields["withdraws"])
                continue
            batch.outcomes[id(item)] = (item, None, event.event_id)
        # Events of one period that fail one by one may fit together (a leave, an escape
        # and a recapture arriving after a later transfer): try each such group at once.
        failed = {
            event.period_ref
            for item, event in work
            if batch.outcomes[id(item)][1] is not None and event.kind in DETENTION_KINDS
        }
        for ref in sorted(r for r in failed if r and batch.periods.get(r) is not None):
            key = f"period:{ref}"
            parked = admit(take_up([key]))
            waiting.setdefault(key, []).extend(parked)
            group = [p for p in waiting[key] if p[1].kind in DETENTION_KINDS]
            # What does not fit keeps its outcome: an error now, or its stored quarantine row.
            settle([key], batch.apply_group(ref, [e for _, e in group]))
        if batch.withdrawn_unfit:  # stored as withdrawn, wherever they waited
            settle(list(waiting), batch.withdrawn_unfit)
            batch.withdrawn_unfit.clear()
        touched = sorted(batch.touched)
        for key in (*touched, *unfit_keys):  # this batch's corrections waiting for those
            pending.extend(waiting.pop(key, ()))
        keys = sorted({*touched, *(k for k in unfit_keys if k not in asked)})
        targets = [t for t in correcting if t not in sought]
        asked.update(unfit_keys)
        sought.update(correcting)
        pending.extend(admit(take_up(keys, targets)))
    write_batch(batch)
    applied = AppliedBatch(list(batch.accepted), dict(batch.withdrawn), batch.now)
    for hook in hooks:
        hook(conn, applied)

    result = IngestResult()
    dup_ids = {id(i) for i in duplicates}
    for item, outcome, event_id in batch.outcomes.values():
        if item.woken:
            result.unparked += outcome is None
            continue
        if keep_outcomes:
            result.outcomes.append(Outcome(item, event_id, outcome, id(item) in dup_ids))
        result.read += 1
        if outcome is not None:
            result.quarantined += 1
            result.reasons[outcome.reason] += 1
        elif id(item) in dup_ids:
            result.duplicates += 1
        else:
            result.applied += 1
    return result


def _conflict(event: FeedEvent) -> FeedError:
    return FeedError(
        "conflict",
        f"event_id [{event.event_id}] was received before with different content",
        field="event_id",
        value=event.event_id,
    )


# Errors of the store itself (a lost connection, a lock): no message is to blame for them.
_STORE_UNAVAILABLE = (OperationalError, InterfaceError, DisconnectionError)


def _apply_or_bisect(
    engine: Engine,
    items: list[Item],
    rd: RefData,
    hooks: Sequence[BatchHook],
    keep_outcomes: bool,
) -> IngestResult:
    """Apply ``items`` in one transaction. When writing them fails (the store refuses a value,
    a hook fails), find the message that causes it by applying each half on its own,
    recursively, and quarantine that one message as ``store_error``: one bad message never
    holds back another. A store that is unavailable is no message's fault: that error is
    raised."""
    try:
        with engine.begin() as conn:
            return process_batch(conn, items, rd, hooks, keep_outcomes=keep_outcomes)
    except _STORE_UNAVAILABLE:
        raise
    except Exception:  # any error of the write is bisected
        if len(items) == 1:
            return _alone(engine, items[0], rd, hooks, keep_outcomes)
        half = len(items) // 2
        result = _apply_or_bisect(engine, items[:half], rd, hooks, keep_outcomes)
        result.add(_apply_or_bisect(engine, items[half:], rd, hooks, keep_outcomes))
        return result


def _alone(
    engine: Engine, item: Item, rd: RefData, hooks: Sequence[BatchHook], keep_outcomes: bool
) -> IngestResult:
    """One message whose batch fails on its own. It may be innocent: a parked message it
    wakes may cause the failure. So it is applied once more without taking up parked
    messages; when that fails too it is to blame (``store_error``), else the parked messages
    that waited for it are taken up one at a time, and the one to blame is found among them."""
    try:
        with engine.begin() as conn:
            result = process_batch(conn, [item], rd, hooks, keep_outcomes=keep_outcomes, wake=False)
    except _STORE_UNAVAILABLE:
        raise
    except Exception as error:
        return _store_error(engine, item, error, rd, keep_outcomes)
    for parked in _waiting_for(engine, item, rd):
        result.add(_apply_or_bisect(engine, [parked], rd, hooks, keep_outcomes))
    return result


def _waiting_for(engine: Engine, item: Item, rd: RefData) -> list[Item]:
    """The parked messages that may wait for what ``item`` applied: its period, its event,
    its person."""
    try:
        event = parse_item(item, rd)
    except (FeedError, ValueError):
        return []
    keys = {event_key(event.event_id), f"person:{event.person_key}"}
    if event.period_ref:
        keys.add(f"period:{event.period_ref}")
    if event.prison_number:
        keys.add(f"person:pn:{event.prison_number}")
    with engine.connect() as conn:
        return parked_items(conn, sorted(keys))


def error_class(error: BaseException) -> str:
    """The class of a store error as ``module.Class``: the database driver's own error when
    SQLAlchemy wraps one (its message is not kept: it may quote personal data)."""
    cause = getattr(error, "orig", None) or error
    return f"{type(cause).__module__}.{type(cause).__qualname__}"


def _store_error(
    engine: Engine, item: Item, error: Exception, rd: RefData, keep_outcomes: bool
) -> IngestResult:
    """Quarantine the one message whose write failed, in a transaction of its own."""
    try:
        event_id: str | None = parse_item(item, rd).event_id
    except (FeedError, ValueError):
        event_id = None
    cls = error_class(error)
    refused = FeedError(
        "store_error",
        f"the store refused this message ({cls}); it was set aside so that the rest of"
        " its batch could be applied",
        value=cls,
    )
    with engine.begin() as conn:
        write_outcomes(conn, [(item, refused, event_id)], datetime.now(UTC))
    if item.woken:  # a parked message, counted when it was received
        return IngestResult()
    result = IngestResult(read=1, quarantined=1)
    result.reasons[refused.reason] += 1
    if keep_outcomes:
        result.outcomes.append(Outcome(item, event_id, refused))
    return result


def ingest_items(
    engine: Engine,
    items: Iterable[Item],
    *,
    batch_size: int = 5000,
    progress: ProgressCallback | None = None,
    hooks: Sequence[BatchHook] = (),
    keep_outcomes: bool = False,
) -> IngestResult:
    """Apply messages in batches, one transaction per batch; ``hooks`` run inside it. With
    ``keep_outcomes`` the result lists each message's :class:`Outcome`."""
    rd = refdata()
    total = IngestResult()
    batch: list[Item] = []

    def run() -> None:
        # planner statistics kept up to date as the store grows (PostgreSQL; db.engine)
        refresh_statistics(engine, every=CHECK_EVERY_S)
        total.add(_apply_or_bisect(engine, list(batch), rd, hooks, keep_outcomes))
        if progress:
            progress(len(batch))
        batch.clear()

    for item in items:
        batch.append(item)
        if len(batch) >= batch_size:
            run()
    if batch:
        run()
    return total


def ingest_files(
    engine: Engine,
    paths: Sequence[Path],
    *,
    batch_size: int = 5000,
    progress: ProgressCallback | None = None,
    hooks: Sequence[BatchHook] = (),
) -> IngestResult:
    def items() -> Iterator[Item]:
        for path in paths:
            yield from read_items(path)

    return ingest_items(engine, items(), batch_size=batch_size, progress=progress, hooks=hooks)


def ingest_text(engine: Engine, text: str, origin: str = "<text>", **kwargs: Any) -> IngestResult:
    """Convenience for tests and tools: ingest JSON Lines given as a string."""
    items = (
        Item(n, origin, line) for n, line in enumerate(io.StringIO(text), start=1) if line.strip()
    )
    return ingest_items(
        engine, (Item(i.line_no, i.origin, i.raw.rstrip("\n")) for i in items), **kwargs
    )


__all__ = [
    "EVENT_COLUMNS",
    "MAX_GROUP_SEARCH",
    "PERIOD_COLUMNS",
    "RECONVICTION_COLUMNS",
    "VICTIM_COLUMNS",
    "AppliedBatch",
    "BatchHook",
    "IngestResult",
    "Item",
    "Outcome",
    "ProgressCallback",
    "ingest_files",
    "ingest_items",
    "ingest_text",
    "parse_item",
    "process_batch",
    "read_items",
]
