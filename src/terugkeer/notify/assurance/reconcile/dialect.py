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
    literal_column,
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
                func.date(ts, "+2 hours", type_=String),
            ),
            else_=func.date(ts, "+1 hours", type_=String),
        )

    def json_text(self, body: ColumnElement[Any], name: str) -> ColumnElement[str]:
        if self.pg:
            found: ColumnElement[str] = cast(body, JSONB)[name].astext
            return found
        return func.json_extract(body, f"$.{name}", type_=String)

    def json_timestamp(self, value: ColumnElement[str]) -> ColumnElement[Any]:
        """An RFC 3339 text with offset as a UTC timestamp comparable with stored ones."""
        if self.pg:
            return cast(value, DateTime(timezone=True))
        return func.datetime(value, type_=String)

    def plus_hours(self, ts: ColumnElement[Any], hours: int) -> ColumnElement[Any]:
        if self.pg:
            return ts + literal_column(f"interval '{int(hours)} hours'")
        # keep the stored microseconds so that the text compares like the timestamp
        return func.datetime(ts, f"+{int(hours)} hours", type_=String) + func.substr(
            ts, 20, type_=String
        )

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
