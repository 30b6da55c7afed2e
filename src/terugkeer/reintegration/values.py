"""Reading values the way Dutch spreadsheets write them: strict in what is accepted.

* dates: ``dd-mm-yyyy`` (also with ``/`` or ``.``, and one-digit day or month), ISO
  ``yyyy-mm-dd``, or a date cell of an XLSX sheet; two-digit years are refused;
* numbers: a decimal comma (``1234,56``, ``1.234,56``, ``€ 1.234,56``) or, without a comma, a
  decimal point followed by one or two digits (``12.5``); ``1.234`` is refused as ambiguous;
* codes: the code or its Dutch label, case and spacing ignored (``codes.lookup``);
* BSN: 9 digits passing the 11-proef (8 digits get their leading zero; a number cell too).

Every parser raises ``ValueError`` with a reason a caseworker can act on.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from terugkeer.domain.bsn import is_valid_bsn, normalise_bsn
from terugkeer.reintegration import codes

_DMY = re.compile(r"^(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})$")
_ISO = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:[ T]00:00(?::00)?)?$")
_COMMA_NUMBER = re.compile(r"^-?(\d{1,3}(\.\d{3})+|\d+),(\d+)$|^-?\d{1,3}(\.\d{3})+$")
_POINT_NUMBER = re.compile(r"^-?\d+(\.\d{1,2})?$")
_THOUSANDS_ONLY = re.compile(r"^-?\d{1,3}(\.\d{3})+$")


def cell_text(value: Any) -> str:
    """A cell as text: None is empty; Excel's ``="0123"`` guard is removed."""
    if value is None:
        return ""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith('="') and text.endswith('"'):
            text = text[2:-1].strip()
        return text
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def parse_date(value: Any) -> date:
    if isinstance(value, datetime):
        if value.hour or value.minute or value.second:
            raise ValueError("a date without a time of day is expected")
        return value.date()
    if isinstance(value, date):
        return value
    text = cell_text(value)
    m = _DMY.match(text)
    if m:
        day, month, year = int(m.group(1)), int(m.group(2)), int(m.group(3))
    else:
        m = _ISO.match(text)
        if not m:
            raise ValueError("not a date: write dd-mm-jjjj, for example 31-01-2025")
        year, month, day = int(m.group(1)), int(m.group(2)), int(m.group(3))
    if not 1900 <= year <= 2100:
        raise ValueError(f"year {year} is out of range")
    try:
        return date(year, month, day)
    except ValueError as e:
        raise ValueError(f"no such date ({e})") from e


def parse_scaled(value: Any, places: int, *, maximum: int | None = None) -> int:
    """A non-negative decimal number times ``10**places``, exactly (``1.234,5`` with 2 places
    is 123450). More decimals than ``places`` are refused, not rounded."""
    scale = 10**places
    if isinstance(value, bool):
        raise ValueError("not a number")
    if isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, float):
        number = Decimal(repr(value))
    else:
        text = cell_text(value).replace("€", "").replace("\u00a0", "").replace(" ", "")
        if not text:
            raise ValueError("a number is expected")
        if "," in text or _THOUSANDS_ONLY.match(text):
            if "," not in text:
                raise ValueError(
                    "ambiguous number: write a decimal comma (1,234) or no thousands point (1234)"
                )
            if not _COMMA_NUMBER.match(text):
                raise ValueError("not a number: write for example 1234,56")
            text = text.replace(".", "").replace(",", ".")
        elif not _POINT_NUMBER.match(text):
            raise ValueError("not a number: write for example 1234,56")
        try:
            number = Decimal(text)
        except InvalidOperation as e:  # pragma: no cover - the patterns above rule it out
            raise ValueError("not a number") from e
    if number < 0:
        raise ValueError("a negative number is not allowed")
    scaled = number * scale
    if scaled != scaled.to_integral_value():
        raise ValueError(f"at most {places} decimals")
    out = int(scaled)
    if maximum is not None and out > maximum:
        raise ValueError(f"more than the maximum of {Decimal(maximum) / scale}")
    return out


def parse_code(list_name: str, value: Any) -> str:
    text = cell_text(value)
    code = codes.lookup(list_name, text)
    if code is None:
        raise ValueError(f"unknown code; allowed: {codes.allowed(list_name)}")
    return code


def parse_codes(list_name: str, value: Any) -> list[str]:
    """A list of codes separated by commas, plus signs or slashes; sorted, without repeats."""
    text = cell_text(value)
    parts = [p for p in re.split(r"[,+/;]", text) if p.strip()]
    return sorted({parse_code(list_name, p) for p in parts})


def parse_bsn(value: Any) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        text = f"{int(value):09d}"
    else:
        text = normalise_bsn(cell_text(value))
    if not is_valid_bsn(text):
        raise ValueError("not a valid BSN (9 digits, 11-proef)")
    return text
