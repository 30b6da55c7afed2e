"""JSON-ready values of the result objects that actions and queries return.

One rendering for the command line's ``--json``, the API and the logs: a dataclass becomes a
dict of its fields in declaration order, and inside it

- dates and datetimes become ISO 8601 strings,
- enums become their values,
- a ``Counter`` becomes a dict in key order (counts by code read the same in every run),
- dataclasses, dicts, lists and tuples are rendered item by item (tuples as lists);

anything else (str, int, float, bool, None) is kept as it is.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import fields, is_dataclass
from datetime import date
from enum import Enum
from typing import Any


def as_json(obj: Any) -> dict[str, Any]:
    """The fields of the dataclass instance ``obj`` as JSON-ready values (see the module)."""
    if not is_dataclass(obj) or isinstance(obj, type):
        raise TypeError(f"as_json: expected a dataclass instance, got [{type(obj).__name__}]")
    return {f.name: to_json(getattr(obj, f.name)) for f in fields(obj)}


def to_json(value: Any) -> Any:
    """One value as JSON-ready data (see the module)."""
    if value is None or isinstance(value, str | int | float):
        return value
    if isinstance(value, date):  # datetime is a date too
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if is_dataclass(value) and not isinstance(value, type):
        return as_json(value)
    if isinstance(value, Counter):
        return {k: to_json(v) for k, v in sorted(value.items())}
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    return value
