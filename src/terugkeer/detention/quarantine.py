"""The quarantine: messages that could not be applied, kept with their raw content and
reason, listed for the operator and replayed after a fix."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, select

from terugkeer.db.paging import Page, check_page, fetch_page
from terugkeer.detention.ingest import (
    BatchHook,
    IngestResult,
    Item,
    ProgressCallback,
    ingest_items,
)
from terugkeer.detention.tables import quarantine
from terugkeer.domain import render
from terugkeer.security.actor import Actor
from terugkeer.security.crypto import field_cipher, open_raw, open_value

STATUSES = ("open", "applied", "all")


@dataclass(frozen=True, slots=True)
class QuarantineEntry:
    id: int
    received_at: datetime
    origin: str
    line_no: int
    event_id: str | None
    reason: str
    field: str | None
    value: str | None
    message: str
    waits_for: str | None
    status: str
    attempts: int
    raw: str | None  # None when the reader may not see personal data (``with_raw=False``)

    def as_json(self) -> dict[str, Any]:
        return render.as_json(self)


def _query(status: str, reason: str | None, ids: Sequence[int] | None) -> Any:
    if status not in STATUSES:
        raise ValueError(f"unknown quarantine status [{status}]; use one of {STATUSES}")
    stmt = select(quarantine).order_by(quarantine.c.id)
    if status != "all":
        stmt = stmt.where(quarantine.c.status == status)
    if reason:
        stmt = stmt.where(quarantine.c.reason == reason)
    if ids:
        stmt = stmt.where(quarantine.c.id.in_(list(ids)))
    return stmt


def list_quarantine(
    engine: Engine,
    *,
    actor: Actor,
    status: str = "open",
    reason: str | None = None,
    limit: int | None = None,
    offset: int = 0,
    with_raw: bool = True,
) -> Page[QuarantineEntry]:
    """Quarantined messages (with their raw lines and refused values, personal data, unless
    ``with_raw`` is False) from ``offset``, at most ``limit`` (None: all), with how many there
    are in all; each one shown is a ``read`` row of record type ``quarantine`` by ``actor``,
    committed before the page is returned."""
    check_page(limit, offset)
    cipher = field_cipher()
    with engine.begin() as conn:
        rows, total = fetch_page(conn, _query(status, reason, None), limit, offset)
        entries = [
            QuarantineEntry(
                id=r.id,
                received_at=r.received_at,
                origin=r.origin,
                line_no=r.line_no,
                event_id=r.event_id,
                reason=r.reason,
                field=r.field,
                value=open_value(r.value, cipher) if with_raw else None,
                message=r.message,
                waits_for=r.waits_for,
                status=r.status,
                attempts=r.attempts,
                raw=open_raw(r.raw, cipher) if with_raw else None,
            )
            for r in rows
        ]
        actor.record(conn, "read", "quarantine", (e.id for e in entries), {"raw": with_raw})
    return Page(entries, total, limit, offset)


def count_by_reason(engine: Engine, status: str = "open") -> dict[str, int]:
    stmt = select(quarantine.c.reason, func.count()).group_by(quarantine.c.reason)
    if status != "all":
        stmt = stmt.where(quarantine.c.status == status)
    with engine.connect() as conn:
        return {reason: n for reason, n in conn.execute(stmt)}


def replay(
    engine: Engine,
    *,
    ids: Sequence[int] | None = None,
    reason: str | None = None,
    batch_size: int = 5000,
    progress: ProgressCallback | None = None,
    hooks: Sequence[BatchHook] = (),
    actor: Actor | None = None,
) -> IngestResult:
    """Apply open quarantined messages again (after the data or the code was fixed).

    Each message is applied, found to be a duplicate, or stays in quarantine with its reason
    brought up to date; nothing is removed. Each message chosen is an ``update`` row of record
    type ``quarantine`` by ``actor``, committed with the choice, before the batches (which
    commit one by one) apply them: no message is replayed without its row.
    """
    with engine.begin() as conn:
        rows = conn.execute(_query("open", reason, ids)).all()
        who = actor or Actor.system("detention", "quarantine replay")
        who.record(conn, "update", "quarantine", (r.id for r in rows))
    cipher = field_cipher()
    items = [
        Item(r.line_no, r.origin, open_raw(r.raw, cipher), r.format, quarantine_id=r.id)
        for r in rows
    ]
    return ingest_items(engine, items, batch_size=batch_size, progress=progress, hooks=hooks)
