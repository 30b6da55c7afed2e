"""API of reintegration registration (nazorgdossiers, basisvoorwaarden, activiteiten)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["nazorg"])
