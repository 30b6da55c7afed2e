"""The audit log, for the auditor (privacy officer) only."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from terugkeer.security import audit
from terugkeer.security.roles import Permission, Principal
from terugkeer.web.auth import requires
from terugkeer.web.params import MAX_ID

router = APIRouter(tags=["audit"])
Auditor = Annotated[Principal, Depends(requires(Permission.AUDIT_READ))]


@router.get("/auditlog", summary="Entries of the audit log, oldest first")
def list_entries(
    request: Request,
    principal: Auditor,
    vanaf: Annotated[int, Query(ge=0, le=MAX_ID, description="entries after this id")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    actor: Annotated[str | None, Query(max_length=100)] = None,
    record_type: Annotated[
        str | None,
        Query(alias="recordType", max_length=40, description="the kind of record, e.g. notice"),
    ] = None,
) -> list[dict[str, Any]]:
    with request.app.state.engine.begin() as conn:
        rows = audit.read_entries(
            conn, principal, after=vanaf, limit=limit, actor=actor, record_type=record_type
        )
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
