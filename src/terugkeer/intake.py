"""The orchestration above the capabilities: a feed message is applied to its period and the
notification rules are evaluated for it in one transaction. The command line, the demo and the
feed API ingest through here, so no path applies events without evaluating them.

Ingest is one writer at a time: a batch reads the periods it changes and writes them back, so
two batches at once could each miss the other's event. Every path here ingests through
:func:`writer`: on PostgreSQL each of its transactions first takes the feed's advisory lock
(released when it commits), so batches from the feed API, ``terugkeer ingest`` and a quarantine
replay, in any process on any machine, apply one after the other, a long file's batch by
batch. The feed API's threads also queue in the process (SQLite has one writer process)."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import Connection, Engine, event

from terugkeer.detention import ingest, quarantine
from terugkeer.detention.ingest import BatchHook, IngestResult, Item, Outcome
from terugkeer.notify.hook import notify_hook
from terugkeer.reintegration.cases import reintegration_hook
from terugkeer.security.actor import Actor, running


def hooks() -> list[BatchHook]:
    """What every applied batch also does: evaluate the notification rules, open and follow
    reintegration cases."""
    return [notify_hook(), reintegration_hook()]


# The key of the PostgreSQL advisory lock that makes ingest one writer at a time.
FEED_LOCK_KEY = 0x7465_7275_676B  # "terugk"
_in_process = threading.Lock()  # the feed API's threads, one delivery at a time


def _take_feed_lock(conn: Connection) -> None:
    conn.exec_driver_sql("SELECT pg_advisory_xact_lock(%s)", (FEED_LOCK_KEY,))


def writer(engine: Engine) -> Engine:
    """``engine`` for ingesting: on PostgreSQL every transaction begun on it first waits for the
    feed's advisory lock, held until it commits or rolls back (the listener belongs to this
    engine alone, not to ``engine``). SQLite has one writer at a time anyway."""
    if engine.dialect.name != "postgresql":
        return engine
    locked = engine.execution_options()
    event.listen(locked, "begin", _take_feed_lock)
    return locked


def ingest_files(
    engine: Engine, paths: Sequence[Path], *, actor: Actor | None = None, **kwargs: Any
) -> IngestResult:
    """Apply feed files with every hook. A bulk job: one audit row per run by ``actor`` (the
    files and the counts, also when it fails halfway), not one per message; by terugkeer
    itself when no ``actor`` is given."""
    actor = actor or Actor.system("intake", "ingest")
    with running(engine, actor, "ingest", {"files": [p.name for p in paths]}) as job:
        result = ingest.ingest_files(writer(engine), paths, hooks=hooks(), **kwargs)
        job.update(result.as_json())
    return result


def replay_quarantine(engine: Engine, **kwargs: Any) -> IngestResult:
    return quarantine.replay(writer(engine), hooks=hooks(), **kwargs)


# --- messages delivered one request at a time (the feed API) ---------------------------------

Status = Literal["applied", "duplicate", "quarantined"]


@dataclass(frozen=True, slots=True)
class MessageOutcome:
    """What became of the message at ``index`` (from 0) of a delivery."""

    index: int
    status: Status
    event_id: str | None = None
    reason: str | None = None  # when quarantined: the reason code (docs/feed.md)
    field: str | None = None
    value: str | None = None
    message: str | None = None
    waits_for: str | None = None  # parked: applied when this arrives


@dataclass(frozen=True, slots=True)
class Delivery:
    """The result of :func:`deliver`: the counts and one outcome per message, in order."""

    origin: str
    result: IngestResult
    outcomes: list[MessageOutcome]


def raw_message(message: Any) -> str:
    """A message as the ingest reads it: a string is the line as received; anything else (an
    object, or a value that is not one and will be quarantined as such) is written as JSON."""
    if isinstance(message, str):
        return message
    line = json.dumps(message, ensure_ascii=False, separators=(",", ":"))
    try:
        line.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate in a string: written as its JSON escape
        return json.dumps(message, separators=(",", ":"))
    return line


def _outcome(index: int, found: Outcome | None) -> MessageOutcome:
    if found is None:  # every message has an outcome; this would be a bug in the ingest
        raise RuntimeError(f"the ingest reported no outcome for message {index}")
    error = found.error
    if error is None:
        return MessageOutcome(index, "duplicate" if found.duplicate else "applied", found.event_id)
    return MessageOutcome(
        index,
        "quarantined",
        found.event_id,
        error.reason,
        error.field,
        error.value,
        error.message,
        error.waits_for,
    )


def deliver(
    engine: Engine,
    messages: Sequence[Any],
    *,
    origin: str,
    actor: Actor,
) -> Delivery:
    """Apply the ``messages`` of one delivery as the file ingest applies a batch, with every
    hook, in one transaction (more only when a message the store refuses is bisected out), and
    say per message whether it was applied, a duplicate, or quarantined with its reason. The
    messages are numbered from 1 under ``origin`` (as a file's lines are), so a quarantined one
    is found again with ``terugkeer quarantine list``. The audit row by ``actor`` (the origin,
    the number of messages and of events applied) is written in the transaction that applies
    them: what was delivered and who delivered it commit together."""
    items = [Item(n, origin, raw_message(m)) for n, m in enumerate(messages, start=1)]

    def audit(conn: Connection, applied: ingest.AppliedBatch) -> None:
        details = {"origin": origin, "messages": len(items), "events": len(applied.events)}
        actor.job(conn, "feed delivery", details=details)

    with _in_process:
        result = ingest.ingest_items(
            writer(engine),
            items,
            batch_size=max(1, len(items)),
            hooks=[*hooks(), audit],
            keep_outcomes=True,
        )
    found = {id(o.item): o for o in result.outcomes}
    outcomes = [_outcome(n, found.get(id(item))) for n, item in enumerate(items)]
    return Delivery(origin, result, outcomes)
