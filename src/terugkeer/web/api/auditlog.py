"""The audit log, for the auditor (privacy officer) only."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy import select

from terugkeer.security import audit
from terugkeer.security.roles import Permission, Principal
from terugkeer.security.tables import audit_log
from terugkeer.web.auth import requires

router = APIRouter(tags=["audit"])
Auditor = Annotated[Principal, Depends(requires(Permission.AUDIT_READ))]


@router.get("/auditlog", summary="Entries of the audit log, oldest first")
def list_entries(
    request: Request,
    principal: Auditor,
    vanaf: Annotated[int, Query(ge=0, description="entries after this id")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    actor: Annotated[str | None, Query(max_length=100)] = None,
    record_type: Annotated[str | None, Query(max_length=40)] = None,
) -> list[dict[str, Any]]:
    stmt = select(audit_log).where(audit_log.c.id > vanaf).order_by(audit_log.c.id).limit(limit)
    if actor:
        stmt = stmt.where(audit_log.c.actor == actor)
    if record_type:
        stmt = stmt.where(audit_log.c.record_type == record_type)
    with request.app.state.engine.begin() as conn:
        rows = conn.execute(stmt).all()
        audit.record(conn, principal, "read", "audit_log", f"{vanaf}+{len(rows)}", "audit")
    return [
        {
            "id": r.id,
            "at": r.at.isoformat(),
            "actor": r.actor,
            "role": r.role,
            "action": r.action,
            "record_type": r.record_type,
            "record_id": r.record_id,
            "purpose": r.purpose,
            "details": json.loads(r.details),
            "hash": r.hash,
        }
        for r in rows
    ]


@router.get("/auditlog/verificatie", summary="Check the hash chain of the audit log")
def verify_chain(request: Request, principal: Auditor) -> dict[str, Any]:
    report = audit.verify(request.app.state.engine)
    return {
        "entries": report.entries,
        "ok": report.ok,
        "first_bad_id": report.first_bad_id,
        "problem": report.problem,
    }
