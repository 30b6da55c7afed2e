"""The few SQL expressions that SQLite and PostgreSQL spell differently."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    ColumnElement,
    DateTime,
    Integer,
    String,
    and_,
    case,
    cast,
    func,
    literal,
    literal_column,
    or_,
)
from sqlalchemy.dialects.postgresql import JSONB


class Sql:
    """The few expressions that SQLite and PostgreSQL spell differently. Everything they
    produce is text in the same form on both stores, so keys compare equal."""

    def __init__(self, dialect: str) -> None:
        self.pg = dialect == "postgresql"

    def ams_date(self, ts: ColumnElement[Any]) -> ColumnElement[str]:
        """The Europe/Amsterdam calendar date of a UTC timestamp, as 'YYYY-MM-DD'.

        PostgreSQL converts with its own time zone database. SQLite has none, so the EU rule
        is spelled out: summer time (UTC+2) from the last Sunday of March 01:00 UTC to the last
        Sunday of October 01:00 UTC (of September before 1996), else UTC+1. A timestamp
        before 22:00 UTC has the same date in Amsterdam, which spares most rows the rest."""
        if self.pg:
            return func.to_char(
                func.timezone(literal_column("'Europe/Amsterdam'"), ts),
                literal_column("'YYYY-MM-DD'"),
                type_=String,
            )
        year = func.substr(ts, 1, 4, type_=String)

        def last_sunday(month_day: str) -> ColumnElement[str]:
            # the first Sunday on or after the 25th (24th for September) is the last one
            return func.datetime(year + month_day, "weekday 0", "+1 hours", type_=String)

        summer_ends = case((year >= "1996", last_sunday("-10-25")), else_=last_sunday("-09-24"))
        return case(
            (func.substr(ts, 12, 2, type_=String) < "22", func.substr(ts, 1, 10, type_=String)),
            (
                and_(ts >= last_sunday("-03-25"), ts < summer_ends),
                func.date(func.substr(ts, 1, 19), "+2 hours", type_=String),
            ),
            else_=func.date(func.substr(ts, 1, 19), "+1 hours", type_=String),
        )

    def json_text(self, body: ColumnElement[Any], name: str) -> ColumnElement[str]:
        if self.pg:
            found: ColumnElement[str] = cast(body, JSONB)[name].astext
            return found
        return func.json_extract(body, f"$.{name}", type_=String)

    def json_timestamp(self, value: ColumnElement[str]) -> ColumnElement[Any]:
        """An RFC 3339 text with offset as a UTC timestamp comparable with stored ones (on
        SQLite in the stored form, ``YYYY-MM-DD HH:MM:SS.ffffff``, with the microseconds of
        the text: SQLite's own date functions keep milliseconds only). For the few leave
        events: it reads ``value`` several times."""
        if self.pg:
            return cast(value, DateTime(timezone=True))
        rest = func.substr(value, 21, type_=String)  # after "YYYY-MM-DDTHH:MM:SS."
        zone = case(
            (func.instr(func.upper(rest), "Z") > 0, func.instr(func.upper(rest), "Z")),
            (func.instr(rest, "+") > 0, func.instr(rest, "+")),
            (func.instr(rest, "-") > 0, func.instr(rest, "-")),
            else_=func.length(rest) + 1,
        )
        digits = func.substr(rest, 1, zone - 1, type_=String)
        fraction = case(
            (
                func.substr(value, 20, 1) == ".",
                func.substr(digits + "000000", 1, 6, type_=String),
            ),
            else_="000000",
        )
        designator = case(
            (func.substr(value, 20, 1) == ".", func.substr(rest, zone, type_=String)),
            else_=func.substr(value, 20, type_=String),
        )
        # whole seconds with the offset (SQLite rounds a fraction to the millisecond)
        seconds = func.strftime(
            "%Y-%m-%d %H:%M:%S", func.substr(value, 1, 19) + designator, type_=String
        )
        return seconds + "." + fraction

    def plus_hours(self, ts: ColumnElement[Any], hours: int) -> ColumnElement[Any]:
        return self.shift(ts, hours, "hours")

    def shift(
        self, ts: ColumnElement[Any], amount: ColumnElement[int] | int, unit: str
    ) -> ColumnElement[Any]:
        """``ts`` moved by ``amount`` (negative: back) ``unit`` (``hours`` or ``days``), a
        stored timestamp or one made here. On SQLite the stored microseconds are kept, so
        that the text compares (and equals) like the timestamp: ``ts`` is read twice, so give
        it a column or a cheap expression, not one that calls a date function."""
        if unit not in ("hours", "days"):
            raise ValueError(f"unit [{unit}]: hours or days")
        if self.pg:
            step: ColumnElement[Any] = literal_column(f"interval '1 {unit[:-1]}'")
            return ts + (step * amount if isinstance(amount, ColumnElement) else step * int(amount))
        modifier: Any = (
            func.printf(f"%+d {unit}", amount, type_=String)
            if isinstance(amount, ColumnElement)
            else f"{int(amount):+d} {unit}"
        )
        # whole seconds in, the fraction appended: SQLite's date functions round to the
        # millisecond (14.9996 s would become 15 s)
        return func.datetime(func.substr(ts, 1, 19), modifier, type_=String) + func.substr(
            ts, 20, type_=String
        )

    def later(self, a: ColumnElement[Any], b: ColumnElement[Any]) -> ColumnElement[Any]:
        """The later of two timestamps; ``a`` when ``b`` is NULL."""
        return case((b > a, b), else_=a)

    def date_text(self, day: ColumnElement[Any]) -> ColumnElement[str]:
        """A stored date as 'YYYY-MM-DD' (to compare with :meth:`ams_date`)."""
        if self.pg:
            return func.to_char(day, literal_column("'YYYY-MM-DD'"), type_=String)
        return day

    def local_moment(
        self, day: ColumnElement[Any], hour: ColumnElement[int], days: ColumnElement[int]
    ) -> ColumnElement[Any]:
        """``hour``:00 Europe/Amsterdam on the date ``day``, moved by ``days`` (exact days of
        24 hours, as Python's ``moment - timedelta(days=n)`` on a UTC time), as a stored UTC
        timestamp. PostgreSQL converts with its zone database. On SQLite the offset is +2 in
        April to August, +1 in November to February, and decided by the last Sunday in March,
        September (before 1996) and October: summer time from 02:00 (an hour from 03:00 on)
        on the last Sunday of March to 03:00 on the last Sunday of October (September before
        1996); in the hour that occurs twice, the first (summer time), as ``zoneinfo``."""
        if self.pg:
            local = cast(day, DateTime) + literal_column("interval '1 hour'") * hour
            moment = func.timezone(literal_column("'Europe/Amsterdam'"), local)
            return moment + literal_column("interval '1 day'") * days
        month = func.substr(day, 6, 2, type_=String)
        year = func.substr(day, 1, 4, type_=String)

        def last_sunday(month_day: str) -> ColumnElement[str]:
            return func.date(year + month_day, "weekday 0", type_=String)

        def until(sunday: ColumnElement[str]) -> ColumnElement[Any]:
            # summer time up to the change on ``sunday`` (03:00 summer time)
            return case(
                (or_(day < sunday, and_(day == sunday, hour < 3)), literal(2)), else_=literal(1)
            )

        offset = case(
            (month.in_(("04", "05", "06", "07", "08")), literal(2)),
            (month.in_(("11", "12", "01", "02")), literal(1)),
            (
                month == "03",
                case(
                    (
                        or_(
                            day > last_sunday("-03-25"),
                            and_(day == last_sunday("-03-25"), hour >= 3),
                        ),
                        literal(2),
                    ),
                    else_=literal(1),
                ),
            ),
            (and_(month == "09", year >= "1996"), literal(2)),
            (month == "09", until(last_sunday("-09-24"))),
            (year >= "1996", until(last_sunday("-10-25"))),
            else_=literal(1),
        )
        return (
            func.datetime(
                day,
                func.printf("%+d hours", hour - offset, type_=String),
                func.printf("%+d days", days, type_=String),
                type_=String,
            )
            + ".000000"
        )

    def epoch(self, ts: ColumnElement[Any]) -> ColumnElement[int]:
        """Whole seconds since 1970 of a stored timestamp."""
        if self.pg:
            return cast(func.floor(func.extract("epoch", ts)), Integer)
        return cast(func.strftime("%s", ts), Integer)

    def scan_first(self, column: ColumnElement[str]) -> ColumnElement[str]:
        """``column`` in a join condition, so that SQLite does not look rows up through an
        index on it (an expression is not indexed) but reads its table once instead."""
        return column if self.pg else column + ""

    def birthday(self, born: ColumnElement[Any], years: int) -> ColumnElement[str]:
        """The ``years``-th birthday of ``born`` as 'YYYY-MM-DD' text, to compare with an
        Amsterdam date: for 29 February it may name a day that does not exist, which still
        compares right (on 28 February not yet, on 1 March reached)."""
        if self.pg:
            return func.lpad(
                cast(cast(func.extract("year", born), Integer) + years, String), 4, "0"
            ) + func.to_char(born, literal_column("'-MM-DD'"), type_=String)
        return cast(cast(func.substr(born, 1, 4), Integer) + years, String) + func.substr(
            born, 5, type_=String
        )
