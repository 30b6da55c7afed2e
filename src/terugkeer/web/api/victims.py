"""Victims' contact details, for the IDV only; every read is in the audit log."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Request

from terugkeer.detention.contacts import victim_contact
from terugkeer.security.actor import Actor
from terugkeer.security.roles import Permission, Principal
from terugkeer.web.auth import requires

router = APIRouter(tags=["slachtoffers"])
IdvOfficer = Annotated[Principal, Depends(requires(Permission.VICTIM_CONTACT_READ))]


@router.get(
    "/slachtoffers/{slachtoffer}/contactgegevens",
    summary="The contact details of a victim, to inform them (IDV only)",
)
def get_contact(
    request: Request,
    principal: IdvOfficer,
    slachtoffer: Annotated[str, Path(max_length=64, description="the IDV's victim reference")],
) -> dict[str, Any]:
    engine = request.app.state.engine
    try:
        return victim_contact(
            engine, slachtoffer, actor=Actor.web(principal, "informing the victim")
        )
    except KeyError as e:
        raise HTTPException(404, f"no victim [{slachtoffer}]") from e
