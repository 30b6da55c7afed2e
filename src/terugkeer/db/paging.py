"""Listing in pages: what a listing shows, out of how many, so that none stops silently."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Connection, Select, func, select

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """Items ``offset + 1`` to ``offset + len(items)`` of ``total`` (``limit`` None: no
    limit)."""

    items: Sequence[T]
    total: int
    limit: int | None
    offset: int

    @property
    def complete(self) -> bool:
        """Whether the page shows everything there is."""
        return self.offset == 0 and len(self.items) == self.total

    def showing(self) -> str:
        """What is shown: "showing 1–1,000 of 4,212" ("showing none of 12" past the end)."""
        if not self.items:
            return f"showing none of {self.total:,}"
        first, last = self.offset + 1, self.offset + len(self.items)
        return f"showing {first:,}–{last:,} of {self.total:,}"

    def meta(self) -> dict[str, Any]:
        """``total``, ``limit`` and ``offset``, for a listing's JSON."""
        return {"total": self.total, "limit": self.limit, "offset": self.offset}


def check_page(limit: int | None, offset: int) -> None:
    """A limit of at least 1 (or None: all) and an offset of 0 or more, or ValueError."""
    if limit is not None and limit < 1:
        raise ValueError(f"limit [{limit}] must be 1 or more (or none: all)")
    if offset < 0:
        raise ValueError(f"offset [{offset}] must be 0 or more")


def fetch_page(
    conn: Connection, stmt: Select[Any], limit: int | None, offset: int = 0
) -> tuple[list[Any], int]:
    """The rows of ``stmt`` (ordered by the caller) from ``offset``, at most ``limit`` (None:
    all), and how many rows ``stmt`` has in all, read in the same transaction."""
    check_page(limit, offset)
    total = conn.execute(
        select(func.count()).select_from(stmt.order_by(None).subquery())
    ).scalar_one()
    if limit is not None:
        stmt = stmt.limit(limit)
    if offset:
        stmt = stmt.offset(offset)
    return list(conn.execute(stmt)), int(total)
