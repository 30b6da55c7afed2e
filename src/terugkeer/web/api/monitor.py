"""The monitor's API resources (aggregates only)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["monitor"])
