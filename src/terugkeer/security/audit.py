"""The append-only, hash-chained audit log of every read and change of personal data.

Each row's hash is SHA-256 over the previous row's hash and the row's own content, so changing,
removing or inserting a row breaks the chain from there on; ``verify`` finds the first break.
Database triggers refuse UPDATE and DELETE on the table (migration 0004); the chain also catches
whoever bypasses them. Details never hold personal data: they name records, not people.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, text

from terugkeer.security.roles import Principal
from terugkeer.security.tables import audit_log

GENESIS = "0" * 64
_PG_LOCK = 0x7465_7275_6B65  # advisory lock id serialising appends on PostgreSQL


def _digest(
    prev: str,
    at: datetime,
    actor: str,
    role: str,
    action: str,
    record_type: str,
    record_id: str,
    purpose: str,
    details: str,
) -> str:
    content = json.dumps(
        [
            prev,
            at.astimezone(UTC).isoformat(timespec="microseconds"),
            actor,
            role,
            action,
            record_type,
            record_id,
            purpose,
            details,
        ],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(content.encode("utf-8")).hexdigest()


def _lock_and_head(conn: Connection) -> str:
    """Serialise appends (advisory lock on PostgreSQL, the write lock on SQLite) and return
    the hash of the newest entry."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK})
    else:  # any write takes SQLite's write lock for the rest of the transaction
        conn.exec_driver_sql("UPDATE audit_log SET id = id WHERE 0")
    head = conn.execute(
        select(audit_log.c.hash).order_by(audit_log.c.id.desc()).limit(1)
    ).scalar_one_or_none()
    return head or GENESIS


def record_many(
    conn: Connection,
    actor: str,
    role: str,
    action: str,
    record_type: str,
    purpose: str,
    entries: Sequence[tuple[str, dict[str, Any]]],
    *,
    at: datetime | None = None,
) -> None:
    """Append several entries (record id, details) at once, chained in order."""
    if not entries:
        return
    at = (at or datetime.now(UTC)).astimezone(UTC)
    prev = _lock_and_head(conn)
    rows = []
    for record_id, details in entries:
        body = json.dumps(details, sort_keys=True, ensure_ascii=False, default=str)
        digest = _digest(prev, at, actor, role, action, record_type, record_id, purpose, body)
        rows.append(
            {
                "at": at,
                "actor": actor,
                "role": role,
                "action": action,
                "record_type": record_type,
                "record_id": record_id,
                "purpose": purpose,
                "details": body,
                "prev_hash": prev,
                "hash": digest,
            }
        )
        prev = digest
    conn.execute(insert(audit_log), rows)


CLI_ROLE = "cli"
CLI_PREFIX = "cli:"  # the command line records its actors as "cli:<name>"
SYSTEM_ROLE = "system"
SYSTEM_PREFIX = "system:"  # parts of terugkeer acting on their own, e.g. "system:detention"


def role_of(actor: str, otherwise: str = SYSTEM_ROLE) -> str:
    """The role recorded for an actor named by a string: ``cli`` for the command line's
    ``cli:<name>``, ``system`` for ``system:<part>``, else ``otherwise``."""
    if actor.startswith(CLI_PREFIX):
        return CLI_ROLE
    if actor.startswith(SYSTEM_PREFIX):
        return SYSTEM_ROLE
    return otherwise


def record(
    conn: Connection,
    who: Principal | str,
    action: str,
    record_type: str,
    record_id: str | int,
    purpose: str,
    details: dict[str, Any] | None = None,
    *,
    at: datetime | None = None,
) -> str:
    """Append one entry inside the caller's transaction; returns its hash."""
    at = (at or datetime.now(UTC)).astimezone(UTC)
    actor, role = (who.name, who.role.value) if isinstance(who, Principal) else (who, role_of(who))
    body = json.dumps(details or {}, sort_keys=True, ensure_ascii=False, default=str)
    prev = _lock_and_head(conn)
    digest = _digest(prev, at, actor, role, action, record_type, str(record_id), purpose, body)
    conn.execute(
        insert(audit_log).values(
            at=at,
            actor=actor,
            role=role,
            action=action,
            record_type=record_type,
            record_id=str(record_id),
            purpose=purpose,
            details=body,
            prev_hash=prev,
            hash=digest,
        )
    )
    return digest


@dataclass(frozen=True)
class ChainReport:
    entries: int
    ok: bool
    first_bad_id: int | None = None
    problem: str | None = None


def _rows(engine: Engine, batch: int = 5000) -> Iterator[Any]:
    last = 0
    while True:
        with engine.connect() as conn:
            rows = conn.execute(
                select(audit_log).where(audit_log.c.id > last).order_by(audit_log.c.id).limit(batch)
            ).all()
        if not rows:
            return
        yield from rows
        last = rows[-1].id


def verify(engine: Engine) -> ChainReport:
    """Walk the chain from the start; report the first entry that does not fit."""
    prev = GENESIS
    n = 0
    for row in _rows(engine):
        n += 1
        if row.prev_hash != prev:
            return ChainReport(
                n, False, row.id, "does not follow the entry before it (removed or inserted rows)"
            )
        expected = _digest(
            prev,
            row.at,
            row.actor,
            row.role,
            row.action,
            row.record_type,
            row.record_id,
            row.purpose,
            row.details,
        )
        if expected != row.hash:
            return ChainReport(n, False, row.id, "content does not match its hash (changed)")
        prev = row.hash
    return ChainReport(n, True)


def read_entries(
    conn: Connection,
    who: Principal,
    *,
    after: int = 0,
    limit: int = 100,
    actor: str | None = None,
    record_type: str | None = None,
) -> list[Any]:
    """Entries of the log after id ``after``, oldest first, for the auditor ``who``; the read
    itself is an entry (``read`` of record type ``audit_log``), in the caller's transaction."""
    stmt = select(audit_log).where(audit_log.c.id > after).order_by(audit_log.c.id).limit(limit)
    if actor:
        stmt = stmt.where(audit_log.c.actor == actor)
    if record_type:
        stmt = stmt.where(audit_log.c.record_type == record_type)
    rows = list(conn.execute(stmt).all())
    record(conn, who, "read", "audit_log", f"{after}+{len(rows)}", "audit")
    return rows
