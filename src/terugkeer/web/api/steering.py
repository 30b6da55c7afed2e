"""API of the analysts' steering figures per municipality (``monitor:read``): aggregates only,
small cells suppressed (``reintegration/steering.py``); the same figures as the portal's
analyst pages."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from terugkeer.config import get_settings
from terugkeer.domain import render
from terugkeer.reintegration import steering
from terugkeer.security.roles import Permission, Principal
from terugkeer.web.api.operations import ERRORS
from terugkeer.web.auth import engine_of, requires
from terugkeer.web.params import OptionalDay

router = APIRouter(prefix="/stuurinformatie/gemeenten", tags=["stuurinformatie"])
Analyst = Annotated[Principal, Depends(requires(Permission.MONITOR_READ))]


def min_cell() -> int:
    """The threshold under which a count of people is suppressed (the monitor's)."""
    return get_settings().monitor_min_cell


def _suppressed() -> dict[str, Any]:
    return {"min_cell": min_cell()}


@router.get(
    "/volledigheid",
    responses=ERRORS,
    summary="Per municipality and moment: the share of due registrations that are complete",
)
def get_completeness(request: Request, _: Analyst, peildatum: OptionalDay = None) -> Any:
    with engine_of(request).connect() as conn:
        rows = steering.completeness(conn, min_cell=min_cell(), on=peildatum)
    return {**_suppressed(), "gemeenten": [render.as_json(r) for r in rows]}


@router.get(
    "/bij-ontslag",
    responses=ERRORS,
    summary="Per municipality: returned residents by their conditions at release",
)
def get_at_release(request: Request, _: Analyst) -> Any:
    with engine_of(request).connect() as conn:
        rows = steering.at_release(conn, min_cell=min_cell())
    return {
        **_suppressed(),
        "gemeenten": [
            {**render.as_json(r), "share_not_in_order": r.share_not_in_order} for r in rows
        ],
    }


@router.get(
    "/kosten",
    responses=ERRORS,
    summary="Per municipality: activities, the cases they were for and their costs",
)
def get_costs(
    request: Request, _: Analyst, van: OptionalDay = None, tot: OptionalDay = None
) -> Any:
    with engine_of(request).connect() as conn:
        rows = steering.costs(conn, min_cell=min_cell(), start=van, end=tot)
    return {
        **_suppressed(),
        "gemeenten": [
            {
                **render.as_json(r),
                "cost_eur": None if r.cost_eur is None else str(r.cost_eur),
                "per_case_eur": None if r.per_case_eur is None else str(r.per_case_eur),
            }
            for r in rows
        ],
    }
