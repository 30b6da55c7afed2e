"""Europe/Amsterdam wall-clock arithmetic for the generator.

Times inside the generator are integer seconds since the Unix epoch (UTC). The feed wants
RFC 3339 with the Amsterdam offset, so this module converts between UTC seconds and local
wall-clock time with the EU summer-time rule (last Sunday of March 01:00 UTC to the last
Sunday of October 01:00 UTC; before 1996 the summer ended on the last Sunday of September;
no summer time before 1977). It is a fixed rule, not the tz database, so output does not
depend on the tzdata installed, and nothing here reads the clock. A test checks it against
``zoneinfo``.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt

I64 = npt.NDArray[np.int64]

DAY = 86_400
HOUR = 3_600
_FIRST_YEAR = 1900
_LAST_YEAR = 2200
_EPOCH = date(1970, 1, 1)


def _last_sunday(year: int, month: int) -> date:
    last = (date(year, month + 1, 1) if month < 12 else date(year + 1, 1, 1)) - timedelta(days=1)
    return last - timedelta(days=(last.weekday() + 1) % 7)


def _utc_seconds(d: date, hour: int) -> int:
    return (d - _EPOCH).days * DAY + hour * HOUR


def _table() -> tuple[I64, I64]:
    years = range(_FIRST_YEAR, _LAST_YEAR + 1)
    start = np.zeros(len(years), dtype=np.int64)
    end = np.zeros(len(years), dtype=np.int64)
    for i, y in enumerate(years):
        if y < 1977:
            continue
        start[i] = _utc_seconds(_last_sunday(y, 3), 1)
        end[i] = _utc_seconds(_last_sunday(y, 10 if y >= 1996 else 9), 1)
    return start, end


_DST_START, _DST_END = _table()


def offsets(utc: I64) -> I64:
    """The Amsterdam UTC offset in seconds (3600 or 7200) for each UTC instant."""
    years = utc.astype("datetime64[s]").astype("datetime64[Y]").astype(np.int64) + 1970
    idx = np.clip(years - _FIRST_YEAR, 0, _LAST_YEAR - _FIRST_YEAR)
    dst = (utc >= _DST_START[idx]) & (utc < _DST_END[idx])
    return np.where(dst, 2 * HOUR, HOUR).astype(np.int64)


def offset(utc: int) -> int:
    return int(offsets(np.array([utc], dtype=np.int64))[0])


def day_offsets(days: I64) -> I64:
    """The offset in force at local noon of each local day (days since 1970-01-01).

    Daytime wall-clock times (roughly 04:00-23:59) of such a day convert with this offset;
    the generator never places a local time in the night of a change.
    """
    return offsets(days.astype(np.int64) * DAY + 11 * HOUR)


def local_to_utc(days: I64, seconds_of_day: I64) -> I64:
    """UTC seconds for local wall-clock ``days`` + ``seconds_of_day`` (daytime only)."""
    return days * DAY + seconds_of_day - day_offsets(days)


def local_days(utc: I64) -> I64:
    """The local calendar day (days since 1970-01-01) of each UTC instant."""
    return (utc + offsets(utc)) // DAY


def iso_array(utc: I64) -> list[str]:
    """RFC 3339 strings with the Amsterdam offset, e.g. ``2024-03-04T09:30:00+01:00``."""
    off = offsets(utc)
    local = np.datetime_as_string((utc + off).astype("datetime64[s]"), unit="s")
    summer = (off == 2 * HOUR).tolist()
    return [s + ("+02:00" if w else "+01:00") for s, w in zip(local.tolist(), summer, strict=True)]


def iso(utc: int) -> str:
    return iso_array(np.array([utc], dtype=np.int64))[0]


class DayCache:
    """ISO dates (``YYYY-MM-DD``) for local day numbers, cached: few distinct days recur."""

    def __init__(self) -> None:
        self._cache: dict[int, str] = {}

    def __call__(self, day: int) -> str:
        s = self._cache.get(day)
        if s is None:
            s = (_EPOCH + timedelta(days=day)).isoformat()
            self._cache[day] = s
        return s


def day_number(d: date) -> int:
    return (d - _EPOCH).days


def as_i64(values: Any) -> I64:
    return np.asarray(values, dtype=np.int64)
