"""Arbitrary JSON values in every field of every kind, on both stores (issue 12): every message
is applied, a duplicate or quarantined (``read = applied + duplicates + quarantined``), with no
exception, and none of them needs the bisection (``store_error``): what the store cannot hold
is refused by the validation, naming the field. The notification and reintegration hooks run
as in production, so dates reach the deadlines computed from them."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from terugkeer.detention.ingest import ingest_text
from terugkeer.intake import hooks
from tests.feedutil import BSN, intake, msg

SPECIAL_TEXT = [
    "",
    " ",
    "\x00",
    "P\x0028",
    "\ud800",
    "\udcff",
    "x" * 101,
    "GM0363",
    "PI-VUG",
    "999993653",
    "2025-01-06",
    "0001-01-01",
    "9999-12-31",
    "2025-01-06T09:00:00",
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-10:00",
    "2025-02-30T09:00:00+01:00",
]
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.sampled_from([2**63, 2**64, -(2**63) - 1, 10**30]),
    st.floats(allow_nan=False),
    st.text(max_size=20),
    st.text(st.characters(codec=None, exclude_categories=()), max_size=8),
    st.sampled_from(SPECIAL_TEXT),
    st.dates().map(str),
    st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()),
)
JSON = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)

VICTIM = {
    "source": "OM-IDV",
    "victim_ref": "V1",
    "relation": "victim",
    "spoke_in_court": True,
    "wants_information": True,
    "contact": {
        "name": "Slachtoffer 1",
        "email": "s1@example.org",
        "phone": "0612",
        "address": "X",
    },
}


def templates(n: int) -> list[dict[str, Any]]:
    """One valid message of every kind, for period P{n} whose intake is ``i{n}``."""
    p = f"P{n}"

    def m(kind: str, days: float, **fields: Any) -> dict[str, Any]:
        return msg(kind, f"{kind}-{n}", days, p, **fields)

    return [
        intake(
            f"intake-{n}",
            period=f"Q{n}",
            prison_number=f"D{n}",
            fields={"birth_date": "1990-01-01", "sex": "F", "return_municipality": "GM0599"},
        ),
        m("release_date_set", 10, planned_release_date="2026-01-01", return_municipality="GM0344"),
        m(
            "leave_granted",
            20,
            leave_from="2025-02-01T10:00:00+01:00",
            leave_until="2025-02-02T10:00:00Z",
            leave_municipality="GM0344",
        ),
        m("leave_start", 21, leave_municipality="GM0344"),
        m("leave_end", 22),
        m("escape", 23),
        m("recapture", 24),
        m("transfer", 25, to_institution="PI-VUG"),
        m("title_change", 26, title="prison_sentence", sentence_days=300),
        m("release", 400, release_kind="conditional_release", return_municipality="GM0599"),
        m("death", 500),
        m("correction", 27, withdraws=f"escape-{n}"),
        msg("victim_registered", f"victim-{n}", 3, p, **VICTIM),
        msg(
            "reconviction",
            f"reconviction-{n}",
            600,
            None,
            source="JUSTID-JD",
            case_ref=f"C{n}",
            offence_date="2026-04-01",
            category="vermogen",
            statutory_max_years=4,
            decision="conviction",
            custodial=False,
        ),
    ]


def paths(value: Any, prefix: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    """Every field of a message, nested ones too."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield (*prefix, k)
            yield from paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield (*prefix, i)
            yield from paths(v, (*prefix, i))


def replaced(message: dict[str, Any], path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    out = json.loads(json.dumps(message))
    target = out
    for p in path[:-1]:
        target = target[p]
    target[path[-1]] = value
    return out


_counter = itertools.count()


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data(), ascii_only=st.booleans())
def test_any_json_value_in_any_field_is_applied_or_quarantined(
    engine: Engine, data: st.DataObject, ascii_only: bool
) -> None:
    n = next(_counter)
    base = intake(f"i{n}", period=f"P{n}", bsn=BSN)
    message = data.draw(st.sampled_from(templates(n)))
    path = data.draw(st.sampled_from(list(paths(message))))
    value = data.draw(JSON)
    poisoned = replaced(message, path, value)
    line = json.dumps(poisoned, ensure_ascii=ascii_only)
    text = json.dumps(base) + "\n" + line + "\n" + line + "\n"
    result = ingest_text(engine, text, hooks=hooks())
    assert result.read == 3
    assert result.read == result.applied + result.duplicates + result.quarantined
    assert "store_error" not in result.reasons, (path, value)
