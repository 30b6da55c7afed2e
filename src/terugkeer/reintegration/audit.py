"""The append-only audit trail of reintegration data, and the transaction helper every action
uses. Details carry references and codes, never a BSN or a name."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection

from terugkeer.db.bulk import insert_rows
from terugkeer.reintegration.tables import reintegration_audit
from terugkeer.security import audit as security_audit


def now_utc() -> datetime:
    return datetime.now(UTC)


def audit(
    conn: Connection,
    actor: str,
    action: str,
    case_id: int | None,
    details: dict[str, Any] | None = None,
    *,
    at: datetime | None = None,
) -> None:
    audit_many(conn, actor, action, [(case_id, details or {})], at=at)


def audit_many(
    conn: Connection,
    actor: str,
    action: str,
    entries: Sequence[tuple[int | None, dict[str, Any]]],
    *,
    at: datetime | None = None,
) -> None:
    when = at or now_utc()
    insert_rows(
        conn,
        reintegration_audit,
        ("at", "actor", "action", "case_id", "details"),
        [
            (when, actor[:100], action, case_id, json.dumps(d, sort_keys=True, default=str))
            for case_id, d in entries
        ],
    )
    # ...and in the hash-chained audit log of all personal data (security/audit.py)
    security_audit.record_many(
        conn,
        actor[:100],
        # the caseworker through the API; the command line; the detention hook ("system:…")
        security_audit.role_of(actor, "caseworker"),
        action,
        "reintegration_case",
        "reintegration registration",
        [(str(case_id), d) for case_id, d in entries],
        at=when,
    )
