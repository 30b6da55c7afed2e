"""Victims' contact details, encrypted at rest (``security/crypto.py``): reading one victim's
(for the IDV), and key rotation of everything encrypted (contact details, second-factor
secrets, victim registrations' raw messages, quarantined messages). Both write their own audit
rows (``security/actor.py``). Here beside the victims and quarantine tables, not in
``security``, which sits below the detention tables."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, Table, select, update

from terugkeer.detention.items import Item, parse_item
from terugkeer.detention.tables import feed_events, quarantine, victims
from terugkeer.domain.events import FeedError
from terugkeer.domain.refdata import refdata
from terugkeer.security.actor import Actor, running
from terugkeer.security.crypto import (
    BLIND_PERSON,
    SEALED_KINDS,
    DecryptError,
    FieldCipher,
    contact_context,
    field_cipher,
    is_personal_field,
    open_body,
    open_raw,
    open_value,
    seal_body,
    seal_raw,
    seal_value,
    seal_waits_for,
    totp_context,
)
from terugkeer.security.tables import users


@dataclass
class RotationReport:
    active_key: str
    rewritten: int
    already_current: int
    # per part ("victims.contact", "users.totp_secret", ...): (rewritten, already current)
    parts: dict[str, tuple[int, int]] = field(default_factory=dict)


JOB = "keys rotate"


def rotate(
    engine: Engine, cipher: FieldCipher | None = None, *, actor: Actor, batch: int = 1000
) -> RotationReport:
    """Bring everything encrypted (or keyed) under an older key, or still in plain text, to
    the active key: victims' contact details, second-factor secrets, the raw messages of victim
    registrations, and of quarantined messages the raw line, a personal field's value and a
    person waited for by BSN.

    A bulk job over all of them (shown to no one) that commits batch by batch: one audit row
    per run, with the counts and the outcome, also when it fails. Run it after adding a key,
    before retiring the old one; a value it cannot decrypt stops it with the row named."""
    cipher = cipher or field_cipher()
    with running(engine, actor, JOB) as job:
        report = _rotate(engine, cipher, batch)
        job.update(
            active_key=report.active_key,
            rewritten=report.rewritten,
            already_current=report.already_current,
            parts={part: list(counts) for part, counts in report.parts.items()},
        )
    return report


Rewrite = Callable[[Any], dict[str, Any] | None]  # a row -> new values, None when current


def _rotate(engine: Engine, cipher: FieldCipher, batch: int) -> RotationReport:
    def reseal(stored: str, context: str) -> str | None:
        return (
            None
            if cipher.is_current(stored)
            else cipher.encrypt(cipher.open(stored, context), context)
        )

    def contact(row: Any) -> dict[str, Any] | None:
        new = reseal(row.contact, contact_context(row.victim_ref))
        return None if new is None else {"contact": new}

    def totp(row: Any) -> dict[str, Any] | None:
        new = reseal(row.totp_secret, totp_context(row.name))
        return None if new is None else {"totp_secret": new}

    def body(row: Any) -> dict[str, Any] | None:
        if cipher.is_current(row.body):
            return None
        return {
            "body": seal_body(
                row.kind, row.event_id, open_body(row.body, row.event_id, cipher), cipher
            )
        }

    def quarantined(row: Any) -> dict[str, Any] | None:
        values: dict[str, Any] = {}
        if not cipher.is_current(row.raw):
            values["raw"] = seal_raw(open_raw(row.raw, cipher), cipher)
        personal = row.value is not None and is_personal_field(row.field)
        if personal and not cipher.is_current(row.value):
            values["value"] = seal_value(row.field, open_value(row.value, cipher), cipher)
        waits = _waits_for(row, cipher)
        if waits != row.waits_for:
            values["waits_for"] = waits
        return values or None

    parts = {
        "victims.contact": _rewrite(
            engine, victims, [victims.c.victim_ref, victims.c.contact], None, contact, batch
        ),
        "users.totp_secret": _rewrite(
            engine,
            users,
            [users.c.name, users.c.totp_secret],
            users.c.totp_secret.is_not(None),
            totp,
            batch,
        ),
        "feed_events.body": _rewrite(
            engine,
            feed_events,
            [feed_events.c.event_id, feed_events.c.kind, feed_events.c.body],
            feed_events.c.kind.in_(sorted(SEALED_KINDS)),
            body,
            batch,
        ),
        "quarantine": _rewrite(
            engine,
            quarantine,
            [
                quarantine.c.raw,
                quarantine.c.field,
                quarantine.c.value,
                quarantine.c.waits_for,
                quarantine.c.format,
                quarantine.c.line_no,
                quarantine.c.origin,
            ],
            None,
            quarantined,
            batch,
        ),
    }
    return RotationReport(
        cipher.active_id,
        sum(r for r, _ in parts.values()),
        sum(c for _, c in parts.values()),
        parts,
    )


def _waits_for(row: Any, cipher: FieldCipher) -> str | None:
    """What a parked row waits for, with a person known by BSN as its digest under the active
    key: from the BSN itself (written before it was kept as a digest) or from the message."""
    waits: str | None = row.waits_for
    if waits is None:
        return None
    if waits.startswith("person:bsn:"):
        return seal_waits_for(waits, cipher)
    if waits.startswith(BLIND_PERSON) and not waits.startswith(
        BLIND_PERSON + cipher.active_id + ":"
    ):
        item = Item(row.line_no, row.origin, open_raw(row.raw, cipher), row.format)
        try:
            event = parse_item(item, refdata())
        except FeedError:
            return waits  # cannot tell the person again: left under its key
        return seal_waits_for(f"person:{event.person_key}", cipher)
    return waits


def _rewrite(
    engine: Engine,
    table: Table,
    columns: list[Any],
    where: Any,
    rewrite: Rewrite,
    batch: int,
) -> tuple[int, int]:
    """Rewrite ``table``'s rows batch by batch (one transaction each): (rewritten, current)."""
    rewritten = current = 0
    last_id = 0
    while True:
        with engine.begin() as conn:
            stmt = select(table.c.id, *columns).where(table.c.id > last_id)
            if where is not None:
                stmt = stmt.where(where)
            rows = conn.execute(stmt.order_by(table.c.id).limit(batch)).all()
            if not rows:
                break
            for row in rows:
                last_id = row.id
                try:
                    values = rewrite(row)
                except DecryptError as e:
                    raise DecryptError(f"{table.name} row {row.id}: {e}") from e
                if values is None:
                    current += 1
                    continue
                conn.execute(update(table).where(table.c.id == row.id).values(**values))
                rewritten += 1
    return rewritten, current


def victim_contact(
    engine: Engine, victim_ref: str, cipher: FieldCipher | None = None, *, actor: Actor
) -> dict[str, Any]:
    """The decrypted contact details of one victim (callers check the IDV role first); a
    ``read`` row of record type ``victim_contact``, committed before the details are
    returned."""
    cipher = cipher or field_cipher()
    with engine.begin() as conn:
        stored = conn.execute(
            select(victims.c.contact).where(victims.c.victim_ref == victim_ref)
        ).scalar_one_or_none()
        if stored is None:
            raise KeyError(f"no victim [{victim_ref}]")
        actor.record(conn, "read", "victim_contact", [victim_ref])
    result: dict[str, Any] = json.loads(cipher.decrypt(stored, contact_context(victim_ref)))
    return result
