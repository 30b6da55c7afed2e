"""Victims' contact details, encrypted at rest (``security/crypto.py``): reading one victim's
(for the IDV) and key rotation (re-encrypt every one to the newest key). Both write their own
audit rows (``security/actor.py``). Here beside the victims table, not in ``security``, which
sits below the detention tables."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, select, update

from terugkeer.detention.tables import victims
from terugkeer.security.actor import Actor, running
from terugkeer.security.crypto import FieldCipher, contact_context, field_cipher


@dataclass
class RotationReport:
    active_key: str
    rewritten: int
    already_current: int


JOB = "keys rotate"


def rotate(
    engine: Engine, cipher: FieldCipher | None = None, *, actor: Actor, batch: int = 1000
) -> RotationReport:
    """Re-encrypt values stored under an older key (or still in plain text) to the active key.

    A bulk job over every victim's contact details (shown to no one) that commits batch by
    batch: one audit row per run, with the counts and the outcome, also when it fails."""
    cipher = cipher or field_cipher()
    with running(engine, actor, JOB) as job:
        report = _rotate(engine, cipher, batch)
        job.update(
            active_key=report.active_key,
            rewritten=report.rewritten,
            already_current=report.already_current,
        )
    return report


def _rotate(engine: Engine, cipher: FieldCipher, batch: int) -> RotationReport:
    rewritten = current = 0
    last_id = 0
    while True:
        with engine.begin() as conn:
            rows = conn.execute(
                select(victims.c.id, victims.c.victim_ref, victims.c.contact)
                .where(victims.c.id > last_id)
                .order_by(victims.c.id)
                .limit(batch)
            ).all()
            if not rows:
                break
            for row in rows:
                last_id = row.id
                context = contact_context(row.victim_ref)
                if cipher.key_id_of(row.contact) == cipher.active_id:
                    current += 1
                    continue
                plain = (
                    cipher.decrypt(row.contact, context)
                    if cipher.key_id_of(row.contact) is not None
                    else row.contact
                )
                conn.execute(
                    update(victims)
                    .where(victims.c.id == row.id)
                    .values(contact=cipher.encrypt(plain, context))
                )
                rewritten += 1
    return RotationReport(cipher.active_id, rewritten, current)


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
