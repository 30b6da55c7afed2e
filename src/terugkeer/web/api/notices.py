"""API of the portal inbox: notices for a recipient organisation, read and acknowledge."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["meldingen"])
