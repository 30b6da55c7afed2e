"""The checks of activity rows: row by row (:class:`RowCheck`, every problem reported with its
row, column, value and reason) and column by column (:class:`ColumnCheck`, for a block of CSV
rows: each distinct value of a column is parsed once, with the same parsers, and the column is
then mapped through that cache, which runs in C). Both accept exactly the same rows with the
same values (a test compares them)."""

from __future__ import annotations

import itertools
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import date
from typing import Any, NamedTuple

from terugkeer.reintegration import codes, values
from terugkeer.reintegration.codes import ACTIVITY_TYPE
from terugkeer.reintegration.importing.report import Collector
from terugkeer.reintegration.safety import (
    BSN_AS_REFERENCE,
    BSN_IN_TEXT,
    FORMULA_REASON,
    NINE_DIGITS_LINE,
    formula_like,
    looks_like_bsn,
)
from terugkeer.reintegration.service import (
    ACTIVITY_BEFORE_INTAKE,
    MAX_COST_CENTS,
    MAX_HOURS_X100,
)

_CACHE_LIMIT = 50_000  # distinct values a column's cache holds before it starts again
_CENTS_COLUMN = re.compile(r"(?:[0-9]+,[0-9][0-9]\n)*")
# a formula, or a BSN (also in groups: 999 993 653)? The row-by-row check decides
_SUSPECT_REF = re.compile(rf"^(?:[=+\-@\t\r]|{NINE_DIGITS_LINE})", re.MULTILINE)

# A checked row: case id, type, condition, provider, start (date, as bound), end (date, as
# bound), hours, cost, funder, programme, reference. Dates are bound as ISO text on SQLite and
# as dates elsewhere.
Row = tuple[Any, ...]


class Columns:
    """Where the file has each column (None: the file has no such column)."""

    def __init__(self, columns: Mapping[str, int]) -> None:
        self.case, self.type = columns["case_ref"], columns["type"]
        self.provider, self.start = columns["provider"], columns["start_date"]
        self.ref, self.end = columns.get("activity_ref"), columns.get("end_date")
        self.hours, self.cost = columns.get("hours"), columns.get("cost")
        self.funder, self.programme = columns.get("funder"), columns.get("programme")


def fast_cents(text: str) -> int | None:
    """``1234,56``, ``12,5`` or ``1234`` as cents, quickly; None: let the full parser decide."""
    head, sep, tail = text.partition(",")
    if not (head.isdigit() and head.isascii()):
        return None
    if not sep:
        return int(head) * 100
    if 0 < len(tail) <= 2 and tail.isdigit() and tail.isascii():
        return int(head) * 100 + int(tail) * (10 if len(tail) == 1 else 1)
    return None


def cents_column(cells: Sequence[str]) -> list[int] | None:
    """A column whose every cell is written ``1234,56`` (digits, a decimal comma, two
    decimals), as cents, at C speed; None when any cell is written otherwise."""
    text = "\n".join(cells) + "\n"
    if _CENTS_COLUMN.fullmatch(text) is None:
        return None
    parts = text.replace(",", "").split("\n")
    parts.pop()  # after the last newline
    if len(parts) != len(cells):  # a cell with a line break in it
        return None
    return list(map(int, parts))


def _text(raw: Any) -> str:
    return values.cell_text(raw)  # stripped, Excel's ="0123" guard removed


class RowCheck:
    """Every check of one row, with an error for each problem (``check``)."""

    def __init__(
        self,
        columns: Columns,
        cases: Mapping[str, tuple[int, bool, date]],
        municipality: str,
        last_day: date,
        errors: Collector,
        *,
        sqlite: bool,
    ) -> None:
        self.col = columns
        self.cases = cases  # case reference -> (case id, consent, first plausible start)
        self.municipality = municipality
        self.last_day = last_day
        self.add = errors.add
        self.sqlite = sqlite
        self.dates: dict[Any, tuple[date, Any, bool]] = {}
        self.first_start: date | None = None  # of the row's case
        self.numbers: dict[Any, int] = {}
        self.types: dict[Any, tuple[str, str]] = {}
        self.funders: dict[Any, str] = {}

    def _date(self, raw: Any) -> tuple[date, Any, bool]:
        d = values.parse_date(raw)
        hit = (d, d.isoformat() if self.sqlite else d, d > self.last_day)
        if isinstance(raw, str):
            self.dates[raw] = hit
        return hit

    def _number(self, raw: Any, maximum: int) -> int:
        hit = fast_cents(raw) if isinstance(raw, str) else None
        if hit is None:
            hit = values.parse_scaled(raw, 2)
        if isinstance(raw, str) and len(self.numbers) < 10_000 and hit <= maximum:
            self.numbers[raw] = hit
        if hit > maximum:
            raise ValueError(f"more than the maximum of {maximum // 100:,}")
        return hit

    def check(self, n: int, cells: Sequence[Any]) -> Row | None:
        """Row ``n``'s values; None (with an error for each problem) when it is bad."""
        bad, case_id, t = self._case_and_type(n, cells)
        col, add = self.col, self.add
        raw = cells[col.provider]
        provider = _text(raw)
        if not provider:
            add(n, "provider", "", "a provider is required")
            bad = True
        elif len(provider) > 120:
            add(n, "provider", provider, "longer than 120 characters")
            bad = True
        elif formula_like(provider):
            add(n, "provider", provider, FORMULA_REASON)
            bad = True
        elif looks_like_bsn(provider):
            add(n, "provider", provider, BSN_IN_TEXT)
            bad = True
        start, end, dates_bad = self._dates(n, cells)
        hours, cost, funder, amounts_bad = self._amounts(n, cells, bad or dates_bad)
        bad = bad or dates_bad or amounts_bad
        programme = None
        if col.programme is not None and (raw := cells[col.programme]) not in ("", None):
            programme = _text(raw)
            if len(programme) > 100:
                add(n, "programme", programme, "longer than 100 characters")
                bad = True
            elif formula_like(programme):
                add(n, "programme", programme, FORMULA_REASON)
                bad = True
            elif looks_like_bsn(programme):
                add(n, "programme", programme, BSN_IN_TEXT)
                bad = True
            programme = programme or None
        ref = None
        if col.ref is not None and (raw := cells[col.ref]) not in ("", None):
            ref = _text(raw)
            if len(ref) > 64:
                add(n, "activity_ref", ref, "longer than 64 characters")
                bad = True
            elif formula_like(ref):
                add(n, "activity_ref", ref, FORMULA_REASON)
                bad = True
            elif looks_like_bsn(ref):
                add(n, "activity_ref", ref, BSN_AS_REFERENCE)
                bad = True
            ref = ref or None
        if bad or start is None:
            return None
        return (case_id, t[0], t[1], provider, start[0], start[1], end and end[0],
                end and end[1], hours, cost, funder, programme, ref)  # fmt: skip

    def _case_and_type(self, n: int, cells: Sequence[Any]) -> tuple[bool, int, tuple[str, str]]:
        """(bad, case id, (type, condition))."""
        bad = False
        case_ref = _text(cells[self.col.case])
        found = self.cases.get(case_ref)
        self.first_start = found[2] if found is not None else None
        case_id = 0
        if found is None:
            reason = (
                f"no case with this reference in {self.municipality}"
                if case_ref
                else "the case reference is required"
            )
            self.add(n, "case_ref", case_ref, reason)
            bad = True
        elif not found[1]:
            self.add(n, "case_ref", case_ref, "the case has no consent for registration")
            bad = True
        else:
            case_id = found[0]
        raw = cells[self.col.type]
        t = self.types.get(raw)
        if t is None:
            code = codes.lookup("activity_type", values.cell_text(raw))
            if code is None:
                allowed = ", ".join(ACTIVITY_TYPE)
                self.add(n, "type", raw, "unknown activity type; allowed: " + allowed)
                bad = True
                t = ("", "")
            else:
                t = (code, str(ACTIVITY_TYPE[code].condition))
                self.types[raw] = t
        return bad, case_id, t

    def _dates(self, n: int, cells: Sequence[Any]) -> tuple[Any, Any, bool]:
        """(start, end, bad): the dates as ``_date`` gives them."""
        bad = False
        raw = cells[self.col.start]
        start = self.dates.get(raw)
        if start is None:
            try:
                start = self._date(raw)
            except ValueError as e:
                reason = str(e) if values.cell_text(raw) else "a start date is required"
                self.add(n, "start_date", raw, reason)
                bad = True
        if start is not None and start[0] > self.last_day:
            self.add(n, "start_date", raw, "lies in the future")
            bad = True
        elif start is not None and self.first_start is not None and start[0] < self.first_start:
            days = (self.first_start - start[0]).days + ACTIVITY_BEFORE_INTAKE
            self.add(
                n,
                "start_date",
                raw,
                f"implausible: {days} days before the intake of the case "
                f"(at most {ACTIVITY_BEFORE_INTAKE})",
            )
            bad = True
        end = None
        if self.col.end is not None and (raw := cells[self.col.end]) not in ("", None):
            end = self.dates.get(raw)
            try:
                if end is None:
                    end = self._date(raw)
                if start is not None and end[0] < start[0]:
                    self.add(n, "end_date", raw, "before the start date")
                    bad = True
            except ValueError as e:
                self.add(n, "end_date", raw, str(e))
                bad = True
        return start, end, bad

    def _amounts(
        self, n: int, cells: Sequence[Any], bad_before: bool
    ) -> tuple[int | None, int, str | None, bool]:
        """(hours, cost, funder, bad); a cost without its funder is reported only in a row
        without other problems before it."""
        bad = False
        col, add = self.col, self.add
        hours = None
        if col.hours is not None and (raw := cells[col.hours]) not in ("", None):
            hours = self.numbers.get(raw)
            if hours is None or hours > MAX_HOURS_X100:
                try:
                    hours = self._number(raw, MAX_HOURS_X100)
                except ValueError as e:
                    add(n, "hours", raw, str(e))
                    bad = True
        cost = 0
        if col.cost is not None and (raw := cells[col.cost]) not in ("", None):
            hit = self.numbers.get(raw)
            if hit is None:
                try:
                    hit = self._number(raw, MAX_COST_CENTS)
                except ValueError as e:
                    add(n, "cost", raw, str(e))
                    bad = True
            cost = hit or 0
            if cost > MAX_COST_CENTS:
                add(n, "cost", raw, "more than the maximum of 10,000,000")
                bad = True
        funder = None
        if col.funder is not None and (raw := cells[col.funder]) not in ("", None):
            funder = self.funders.get(raw)
            if funder is None:
                funder = codes.lookup("funder", values.cell_text(raw))
                if funder is None:
                    add(n, "funder", raw, "unknown funder; allowed: gemeente, rijk, overig")
                    bad = True
                else:
                    self.funders[raw] = funder
        if cost and funder is None and not (bad or bad_before):
            add(n, "funder", "", "a cost needs its funder (gemeente, rijk, overig)")
            bad = True
        return hours, cost, funder, bad


def through(
    cache: dict[str, Any], column: Sequence[str], fill: Callable[[str], bool], *also: dict[str, Any]
) -> list[Any] | None:
    """``column`` mapped through ``cache``; values not yet in it are first added by ``fill``
    (False: the value needs the row check, and so does the block: None). A cache grown too
    large (with the caches ``fill`` fills beside it, ``also``) starts again."""
    try:
        return list(map(cache.__getitem__, column))
    except KeyError:
        pass
    fresh = set(column).difference(cache)
    if len(cache) > _CACHE_LIMIT:
        for d in (cache, *also):
            keep = {"": d[""]} if "" in d else {}
            d.clear()
            d.update(keep)
        fresh = set(column).difference(cache)
    for raw in fresh:
        if not fill(raw):
            return None
    return list(map(cache.__getitem__, column))


class Checked(NamedTuple):
    """A block that passed the column check, column by column (dates as bound)."""

    ids: list[int]
    keys: list[str]
    refs: list[str | None]
    types: list[str]
    conditions: list[str]
    providers: list[str]
    starts: list[Any]
    ends: list[Any]
    hours: list[int | None]
    costs: list[int]
    funders: list[str | None]
    programmes: list[str | None]

    def insert_columns(self) -> tuple[list[Any], ...]:
        """The columns in the order the insert binds them."""
        return (self.ids, self.keys, self.refs, self.types, self.conditions, self.providers,
                self.starts, self.ends, self.hours, self.costs, self.funders, self.programmes)  # fmt: skip


class ColumnCheck:
    """The check of a block of CSV rows column by column (``check``)."""

    def __init__(
        self,
        columns: Columns,
        cases: Mapping[str, tuple[int, bool, date]],
        last_day: date,
        *,
        sqlite: bool,
    ) -> None:
        self.col = columns
        self.consenting = {ref: v[0] for ref, v in cases.items() if v[1] and ref == ref.strip()}
        # case id -> the first plausible start, as bound (ISO text on SQLite)
        self.first_start = {
            v[0]: v[2].isoformat() if sqlite else v[2] for v in cases.values() if v[1]
        }
        # no start in a block at or after this needs the check case by case
        self.latest_first: Any = max(self.first_start.values(), default="" if sqlite else date.min)
        self.last_day = last_day
        self.sqlite = sqlite
        self.type_code: dict[str, str] = {}
        self.type_condition: dict[str, str] = {}
        self.provider_of: dict[str, str] = {}
        self.start_of: dict[str, Any] = {}  # the value to bind
        self.end_of: dict[str, Any] = {"": None}
        self.hours_of: dict[str, int | None] = {"": None}
        self.cents_of: dict[str, int] = {"": 0}
        self.funder_of: dict[str, str | None] = {"": None}
        self.programme_of: dict[str, str | None] = {"": None}
        self.blank: tuple[str, ...] = ()

    def check(self, columns: list[Sequence[str]]) -> Checked | None:
        """The block's values, column by column; None (having changed nothing but caches)
        when any row needs the row-by-row check."""
        col = self.col
        m = len(columns[col.case])
        if len(self.blank) != m:
            self.blank = ("",) * m

        def column(i: int | None) -> Sequence[str]:
            return self.blank if i is None else columns[i]

        try:
            ids = list(map(self.consenting.__getitem__, columns[col.case]))
        except KeyError:
            found = list(map(self.consenting.get, map(str.strip, columns[col.case])))
            if None in found:
                return None
            ids = found  # type: ignore[assignment]  # no None left
        c_type = columns[col.type]
        types = through(self.type_code, c_type, self._fill_type, self.type_condition)
        if types is None:
            return None
        if (
            providers := through(self.provider_of, columns[col.provider], self._fill_provider)
        ) is None:
            return None
        if (starts := through(self.start_of, columns[col.start], self._fill_start)) is None:
            return None
        if (ends := through(self.end_of, column(col.end), self._fill_end)) is None:
            return None
        if any(map(operator.lt, filter(None, ends), itertools.compress(starts, ends))):
            return None  # an end before its start
        if min(starts) < self.latest_first and any(
            map(operator.lt, starts, map(self.first_start.__getitem__, ids))
        ):
            return None  # long before the intake
        if (hours := through(self.hours_of, column(col.hours), self._fill_hours)) is None:
            return None
        costs = cents_column(columns[col.cost]) if col.cost is not None else None
        if costs is None:
            if (costs := through(self.cents_of, column(col.cost), self._fill_cents)) is None:
                return None
        elif max(costs) > MAX_COST_CENTS:
            return None
        if (funds := through(self.funder_of, column(col.funder), self._fill_funder)) is None:
            return None
        if None in funds and any(k for k, f in zip(costs, funds, strict=True) if f is None):
            return None  # a cost without its funder
        programmes = through(self.programme_of, column(col.programme), self._fill_programme)
        if programmes is None:
            return None
        refs = list(map(str.strip, column(col.ref)))
        if max(map(len, refs)) > 64 or _SUSPECT_REF.search("\n".join(refs)):
            return None
        keys, refs_or_none = self._keys(refs, types, starts, providers)
        conditions = list(map(self.type_condition.__getitem__, c_type))
        return Checked(ids, keys, refs_or_none, types, conditions, providers, starts, ends,
                       hours, costs, funds, programmes)  # fmt: skip

    def _keys(
        self, refs: list[str], types: list[str], starts: list[Any], providers: list[str]
    ) -> tuple[list[str], list[str | None]]:
        """Each row's key (its reference, else type, start and provider) and reference."""
        if "" not in refs:
            return list(map("ref:".__add__, refs)), list(refs)
        iso = starts if self.sqlite else [s.isoformat() for s in starts]
        keys = [
            f"ref:{r}" if r else f"{t}|{s}|{p}"[:200]
            for r, t, s, p in zip(refs, types, iso, providers, strict=True)
        ]
        return keys, [r or None for r in refs]

    def _fill_type(self, raw: str) -> bool:
        code = codes.lookup("activity_type", values.cell_text(raw))
        if code is None:
            return False
        self.type_code[raw] = code
        self.type_condition[raw] = str(ACTIVITY_TYPE[code].condition)
        return True

    def _fill_provider(self, raw: str) -> bool:
        provider = raw.strip()
        if (
            not provider
            or len(provider) > 120
            or formula_like(provider)
            or looks_like_bsn(provider)
        ):
            return False
        self.provider_of[raw] = provider
        return True

    def _fill_start(self, raw: str) -> bool:
        try:
            d = values.parse_date(raw)
        except ValueError:
            return False
        if d > self.last_day:
            return False
        self.start_of[raw] = d.isoformat() if self.sqlite else d
        return True

    def _fill_end(self, raw: str) -> bool:
        try:
            d = values.parse_date(raw)
        except ValueError:
            return False
        self.end_of[raw] = d.isoformat() if self.sqlite else d
        return True

    @staticmethod
    def _scaled(raw: str, maximum: int) -> int | None:
        hit = fast_cents(raw)
        if hit is None:
            try:
                hit = values.parse_scaled(raw, 2)
            except ValueError:
                return None
        return hit if hit <= maximum else None

    def _fill_hours(self, raw: str) -> bool:
        h = self._scaled(raw, MAX_HOURS_X100)
        if h is None:
            return False
        self.hours_of[raw] = h
        return True

    def _fill_cents(self, raw: str) -> bool:
        k = self._scaled(raw, MAX_COST_CENTS)
        if k is None:
            return False
        self.cents_of[raw] = k
        return True

    def _fill_funder(self, raw: str) -> bool:
        f = codes.lookup("funder", values.cell_text(raw))
        if f is None:
            return False
        self.funder_of[raw] = f
        return True

    def _fill_programme(self, raw: str) -> bool:
        programme = raw.strip()
        if len(programme) > 100 or formula_like(programme) or looks_like_bsn(programme):
            return False
        self.programme_of[raw] = programme or None
        return True
