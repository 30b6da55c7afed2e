"""The portal (issue 17): server-rendered pages for every role, in Dutch by default."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
