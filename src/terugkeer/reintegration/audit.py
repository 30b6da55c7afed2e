"""Reintegration's rows in the one audit log (``security/audit.py``): who read or changed which
case. Details carry references and codes, never a BSN or a name.

Rows go into the caller's transaction: every reintegration action writes its rows with its
change (or read), on its own connection. An actor given by name alone (``cli:…``,
``system:…``, else a caseworker) is recorded with the purpose ``reintegration registration``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection

from terugkeer.security import audit as security_audit
from terugkeer.security.actor import Actor

PURPOSE = "reintegration registration"
RECORD_TYPE = "reintegration_case"


def now_utc() -> datetime:
    return datetime.now(UTC)


def actor_of(actor: Actor | str) -> Actor:
    """The actor of a reintegration action (a name alone: see the module's docstring)."""
    return Actor.named(actor, PURPOSE, "caseworker")


def audit(
    conn: Connection,
    actor: Actor | str,
    action: str,
    case_id: int | None,
    details: dict[str, Any] | None = None,
    *,
    at: datetime | None = None,
) -> None:
    audit_many(conn, actor, action, [(case_id, details or {})], at=at)


def audit_many(
    conn: Connection,
    actor: Actor | str,
    action: str,
    entries: Sequence[tuple[int | None, dict[str, Any]]],
    *,
    at: datetime | None = None,
) -> None:
    """One row per (case, details), in order, at one moment (``at``, default now)."""
    who = actor_of(actor)
    when = at or now_utc()
    rows = [(str(case_id), who.details(d)) for case_id, d in entries]
    security_audit.record_many(
        conn, who.name, who.role, action, RECORD_TYPE, who.purpose, rows, at=when
    )
