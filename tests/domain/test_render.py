"""The generic JSON rendering of result objects (terugkeer.domain.render)."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import Enum

import pytest

from terugkeer.domain.codes import EventKind
from terugkeer.domain.render import as_json, to_json


class Colour(Enum):
    RED = "red"


@dataclass
class Inner:
    at: datetime | None
    kind: EventKind


@dataclass
class Outer:
    name: str
    day: date
    colour: Colour
    inner: list[Inner]
    pair: tuple[int, str]
    by_reason: Counter[str] = field(default_factory=Counter)
    extra: dict[str, object] = field(default_factory=dict)


def test_fields_in_order_with_dates_enums_and_nested_objects() -> None:
    moment = datetime(2026, 2, 3, 8, 0, tzinfo=UTC)
    out = as_json(
        Outer(
            "x",
            date(2026, 2, 3),
            Colour.RED,
            [Inner(moment, EventKind.RELEASE), Inner(None, EventKind.INTAKE)],
            (1, "a"),
            Counter({"b": 2, "a": 1}),
            {"when": moment, "n": 3},
        )
    )
    assert list(out) == ["name", "day", "colour", "inner", "pair", "by_reason", "extra"]
    assert json.dumps(out) == json.dumps(
        {
            "name": "x",
            "day": "2026-02-03",
            "colour": "red",
            "inner": [
                {"at": "2026-02-03T08:00:00+00:00", "kind": "release"},
                {"at": None, "kind": "intake"},
            ],
            "pair": [1, "a"],
            "by_reason": {"a": 1, "b": 2},
            "extra": {"when": "2026-02-03T08:00:00+00:00", "n": 3},
        }
    )
    assert list(out["by_reason"]) == ["a", "b"]  # a Counter in key order


def test_only_dataclass_instances() -> None:
    with pytest.raises(TypeError, match="dataclass instance"):
        as_json({"a": 1})
    with pytest.raises(TypeError, match="dataclass instance"):
        as_json(Outer)
    assert to_json(True) is True
    assert to_json(2.5) == 2.5
