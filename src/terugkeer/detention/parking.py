"""Parked and quarantined messages of the ingest: the parked ones a batch takes up again, and
the outcome of every message, written to ``quarantine``."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, bindparam, insert, select, update

from terugkeer.db.bulk import among, chunks, unindexed
from terugkeer.detention.items import Item
from terugkeer.detention.parse import storable
from terugkeer.detention.tables import quarantine
from terugkeer.domain.events import FeedError
from terugkeer.security.crypto import (
    FieldCipher,
    field_cipher,
    open_raw,
    seal_raw,
    seal_value,
    seal_waits_for,
    waits_for_forms,
)


def parked_items(conn: Connection, keys: Iterable[str]) -> list[Item]:
    """Open quarantine rows parked on one of ``keys``, in the order they were parked."""
    keys = list(keys)
    if not keys or not _any_parked(conn):
        return []
    cipher = field_cipher()
    forms = sorted({form for key in keys for form in waits_for_forms(key, cipher)})
    return _parked(
        conn,
        cipher,
        [
            [unindexed(quarantine.c.status) == "open", among(conn, quarantine.c.waits_for, chunk)]
            for chunk in chunks(forms)  # by waits_for's index
        ],
    )


def parked_events(conn: Connection, event_ids: Iterable[str]) -> list[Item]:
    """Parked messages (open, waiting for something) of the events ``event_ids``, found by
    ``ix_quarantine_event_id``: what a correction may withdraw that does not fit."""
    ids = sorted(set(event_ids))
    if not ids or not _any_parked(conn):
        return []
    return _parked(
        conn,
        field_cipher(),
        [
            [
                unindexed(quarantine.c.status) == "open",  # by the event id's index
                unindexed(quarantine.c.waits_for).is_not(None),
                among(conn, quarantine.c.event_id, chunk),
            ]
            for chunk in chunks(ids)
        ],
    )


def _parked(
    conn: Connection, cipher: FieldCipher, queries: list[list[ColumnElement[bool]]]
) -> list[Item]:
    """The quarantined messages each list of ``queries`` finds, as items to take up again,
    in the order they were parked."""
    items = [
        Item(row.line_no, row.origin, open_raw(row.raw, cipher), row.format, row.id, woken=True)
        for conditions in queries
        for row in conn.execute(
            select(
                quarantine.c.id,
                quarantine.c.origin,
                quarantine.c.line_no,
                quarantine.c.raw,
                quarantine.c.format,
            ).where(*conditions)
        )
    ]  # ordered here: ORDER BY id made PostgreSQL walk the whole key index
    items.sort(key=lambda item: item.quarantine_id or 0)
    return items


def _any_parked(conn: Connection) -> bool:
    return (
        conn.execute(
            select(quarantine.c.id)
            .where(quarantine.c.status == "open", quarantine.c.waits_for.is_not(None))
            .limit(1)
        ).first()
        is not None
    )


def _kept(text: str | None) -> str | None:
    """Text as both stores hold it (NUL and lone surrogates escaped visibly)."""
    return None if text is None else storable(text)


def quarantine_row(
    item: Item, error: FeedError, now: datetime, event_id: str | None
) -> dict[str, Any]:
    return {
        "received_at": now,
        "origin": storable(item.origin)[:255],
        "line_no": item.line_no,
        "raw": storable(item.raw),
        "event_id": _kept(event_id),
        "reason": error.reason,
        "field": _kept(error.field),
        "value": _kept(error.value),
        "message": storable(error.message),
        "waits_for": _kept(error.waits_for),
        "format": item.fmt,
        "status": "open",
        "resolved_at": None,
        "attempts": 0 if item.quarantine_id is None else 1,
    }


def _sealed(row: dict[str, Any]) -> dict[str, Any]:
    """A quarantine row's values as stored: the raw line encrypted, a personal field's value
    encrypted, a person waited for by BSN as a keyed digest (``security/crypto.py``)."""
    cipher = field_cipher()
    out = dict(row)
    if "raw" in out:
        out["raw"] = seal_raw(out["raw"], cipher)
    out["value"] = seal_value(out["field"], out["value"], cipher)
    out["waits_for"] = seal_waits_for(out["waits_for"], cipher)
    return out


def write_outcomes(
    conn: Connection,
    outcomes: Iterable[tuple[Item, FeedError | None, str | None]],
    now: datetime,
) -> None:
    """Record each message's final outcome in quarantine: a new failure is quarantined (or
    parked, with ``waits_for``), a parked one that failed again is updated, and a parked one
    now applied is marked ``applied``."""
    rows: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    done: list[int] = []
    for item, error, event_id in outcomes:
        if error is None:
            if item.quarantine_id is not None:
                done.append(item.quarantine_id)
        elif item.quarantine_id is None:
            rows.append(quarantine_row(item, error, now, event_id))
        else:
            updates.append(
                {
                    "b_id": item.quarantine_id,
                    "reason": error.reason,
                    "field": _kept(error.field),
                    "value": _kept(error.value),
                    "message": storable(error.message),
                    "waits_for": _kept(error.waits_for),
                }
            )
    if rows:
        conn.execute(insert(quarantine), [_sealed(r) for r in rows])
    if updates:
        conn.execute(
            update(quarantine)
            .where(quarantine.c.id == bindparam("b_id"))
            .values(
                reason=bindparam("reason"),
                field=bindparam("field"),
                value=bindparam("value"),
                message=bindparam("message"),
                waits_for=bindparam("waits_for"),
                attempts=quarantine.c.attempts + 1,
            ),
            [_sealed(u) for u in updates],
        )
    for chunk in chunks(done):
        conn.execute(
            update(quarantine)
            .where(among(conn, quarantine.c.id, chunk))
            .values(status="applied", resolved_at=now, attempts=quarantine.c.attempts + 1)
        )
