"""The options and the footer every listing command shares: ``--limit``, ``--offset``, and
"showing 1–1,000 of 4,212" whenever a listing does not show everything."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from terugkeer.cli.common import out
from terugkeer.db.paging import Page

LimitOpt = Annotated[int, typer.Option(min=0, help="show at most this many (0: all)")]
OffsetOpt = Annotated[int, typer.Option(min=0, help="skip this many first")]


def limit_or_all(value: int) -> int | None:
    """The limit a listing function takes: None for 0 (all)."""
    return value or None


def footer(page: Page[Any], noun: str) -> None:
    """The listing's last line: "N <noun>" when everything is shown, else "showing X–Y of Z
    <noun> (--limit and --offset for others)"."""
    if page.complete:
        out.print(f"{page.total:,} {noun}", markup=False, highlight=False, soft_wrap=True)
        return
    out.print(
        f"{page.showing()} {noun} (--limit and --offset for others)",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
