"""Parameter types with the ranges the stores can hold, so that input is refused at the edge
(a problem+json 400 naming the parameter) and never reaches a query as a 500: ids are the
stores' 32-bit integers, offsets and limits stay within them, dates within four-digit years
that date arithmetic (a day added, a month back) cannot push out of range."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated

from annotated_types import Interval
from fastapi import Path, Query

MAX_ID = 2**31 - 1  # INTEGER on PostgreSQL; SQLite's are wider
FIRST_DAY = date(1900, 1, 1)
LAST_DAY = date(2999, 12, 31)
MAX_EUR = Decimal("100000000")  # an activity costing more is a typing error
MAX_HOURS = Decimal("100000")

Day = Annotated[date, Interval(ge=FIRST_DAY, le=LAST_DAY)]
OptionalDay = Annotated[Day | None, Query(description="a date (1900-01-01 to 2999-12-31)")]
Offset = Annotated[int, Query(ge=0, le=MAX_ID, description="rows to skip")]
Limit = Annotated[int, Query(ge=1, le=1000)]


CaseId = Annotated[int, Path(ge=1, le=MAX_ID, description="the id of the case")]
ActivityId = Annotated[int, Path(ge=1, le=MAX_ID, description="the id of the activity")]


def out_of_range_day(value: date | None) -> bool:
    return value is not None and not FIRST_DAY <= value <= LAST_DAY


def form_day(text: str | None) -> date | None:
    """A date typed into a form as YYYY-MM-DD, within the years the stores hold; None when
    empty or not such a date."""
    try:
        day = date.fromisoformat(text or "")
    except ValueError:
        return None
    return None if out_of_range_day(day) else day
