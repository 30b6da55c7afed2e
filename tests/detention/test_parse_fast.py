"""The fast decoder (msgspec) and the reference validator must agree on every message.

``parse_line`` takes a message from the fast path only when it passes there; everything the
fast path rejects is validated again by the reference validator. So the one way they could
disagree is the fast path accepting what the reference rejects, or accepting it with other
values. These tests feed both the same lines: clean and messy synthetic feeds, and
Hypothesis mutations of every field of every kind.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from terugkeer.detention import parse as P
from terugkeer.detention.parse import parse_line, parse_line_reference
from terugkeer.detention.periods import PeriodState
from terugkeer.domain.events import FeedError
from terugkeer.domain.refdata import refdata
from terugkeer.synth import generate
from terugkeer.synth.messy import MessyRates
from tests.feedutil import intake, msg


def outcome(fn: Any, line: str) -> tuple[str, Any]:
    try:
        return "event", fn(line, 4, "t.jsonl")
    except FeedError as e:
        return "error", (e.reason, e.message, e.field, e.value, e.waits_for)


def assert_agree(line: str) -> None:
    assert outcome(parse_line, line) == outcome(parse_line_reference, line), line


@pytest.fixture(scope="module")
def synthetic_lines(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    out = tmp_path_factory.mktemp("synth")
    generate(out / "clean", releases=300, seed=5)
    generate(out / "messy", releases=300, seed=6, messy=MessyRates(malformed=0.2))
    return {
        kind: [
            line
            for name in ("detention.jsonl", "victims.jsonl", "reconvictions.jsonl")
            for line in (out / kind / name).read_text("utf-8").splitlines()
        ]
        for kind in ("clean", "messy")
    }


def test_every_clean_synthetic_line_takes_the_fast_path(
    synthetic_lines: dict[str, list[str]],
) -> None:
    rd = refdata()
    lines = synthetic_lines["clean"]
    assert len(lines) > 1000
    for line in lines:
        assert P.parse_fast(line, 1, "t", rd) == parse_line_reference(line, 1, "t", rd)


def test_messy_synthetic_lines_get_the_reference_outcome(
    synthetic_lines: dict[str, list[str]],
) -> None:
    lines = synthetic_lines["messy"]
    errors = 0
    for line in lines:
        assert_agree(line)
        errors += outcome(parse_line_reference, line)[0] == "error"
    assert errors > 50  # the feed really holds malformed lines


def test_a_bsn_with_dots_or_spaces_is_rejected_on_both_paths() -> None:
    # is_valid_bsn() accepts "999.008.286" for people typing it; the feed contract does not
    for bsn in ("999.008.286", "999 008 286", " 999008286", "99900828６"):
        message = intake("e1")
        message["person"] = {"bsn": bsn}
        line = json.dumps(message, ensure_ascii=False)
        assert outcome(parse_line, line)[1][0] == "invalid_bsn", bsn
        assert_agree(line)


def test_an_eight_digit_bsn_gets_its_leading_zero_on_both_paths() -> None:
    message = intake("e1")
    message["person"] = {"bsn": "11222311"}  # 011222311 passes the 11-proef
    line = json.dumps(message)
    assert parse_line(line).bsn == "011222311"
    assert_agree(line)


# -- Hypothesis: mutate one field of a valid message of each kind ------------------------------

TEMPLATES: list[dict[str, Any]] = [
    intake("e1", fields={"birth_date": "1990-02-03", "sex": "F", "return_municipality": "GM0394"}),
    msg("release_date_set", "e2", 1, planned_release_date="2025-06-01"),
    msg(
        "leave_granted",
        "e3",
        1,
        leave_from="2025-03-01T10:00:00+01:00",
        leave_until="2025-03-02T10:00:00+01:00",
        leave_municipality="GM0363",
    ),
    msg("leave_start", "e4", 1, leave_municipality="GM0599"),
    msg("transfer", "e5", 1, to_institution="PI-VUG"),
    msg("title_change", "e6", 1, title="prison_sentence", sentence_days=20),
    msg("release", "e7", 2, release_kind="end_of_sentence", return_municipality="GM0363"),
    msg("correction", "e8", 3, withdraws="e7"),
    msg(
        "victim_registered",
        "e9",
        1,
        victim_ref="V1",
        relation="victim",
        spoke_in_court=True,
        wants_information=True,
        contact={"name": "A. Slachtoffer", "email": "a@example.invalid"},
    ),
    msg(
        "reconviction",
        "e10",
        9,
        case_ref="C1",
        offence_date="2025-07-01",
        category="vermogen",
        statutory_max_years=4,
        decision="conviction",
        custodial=False,
    ),
]

ODD_SAMPLES: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    1,
    99,
    100,
    36_501,
    1.5,
    [],
    {},
    [1],
    {"name": ""},
    "",
    " ",
    "\u2003",
    "x" * 101,
    "x" * 401,
    "GM0363",
    "GM9999",
    "GM0393",  # merged into GM0394: resolved to its successor
    "PI-VUG",
    "2025-02-30",
    "2025-01-01",
    "20250101",
    "2025-01-01T10:00:00",
    "2025-01-01T10:00:00Z",
    "2025-01-01 10:00:00+01:00",
    "2025-01-01T10:00:00.1234567+01:00",
    "999008286",
    "99900828",
    "zeden",
    "victim",
    "intake",
    "release",
    # what no store can hold (issue 12): NUL, lone surrogates, integers beyond 64 bits,
    # dates outside the years 1800-2999
    "\x00",
    "P\x0028",
    "\ud800",
    "\udcff",
    "999993653\n",
    2**63,
    2**64,
    -(2**70),
    "0001-01-01",
    "9999-12-31",
    "1799-12-31",
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-10:00",
]
ODD_VALUES = st.one_of(
    st.sampled_from(ODD_SAMPLES),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.text(st.characters(codec=None, exclude_categories=()), max_size=6),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.lists(st.integers(0, 9), max_size=2),
    st.dictionaries(st.sampled_from(["name", "category", "x"]), st.text(max_size=5), max_size=2),
)


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    paths: list[tuple[Any, ...]] = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            paths.append((*prefix, k))
            paths.extend(_paths(v, (*prefix, k)))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            paths.append((*prefix, i))
            paths.extend(_paths(v, (*prefix, i)))
    return paths


def _mutations(message: dict[str, Any]) -> list[dict[str, Any]]:
    """The message with one field deleted or set to an odd value, for every field."""
    out = []
    for path in _paths(message):
        for value in [_DELETE, *ODD_SAMPLES]:
            changed = copy.deepcopy(message)
            target = changed
            for key in path[:-1]:
                target = target[key]
            if value is _DELETE:
                if isinstance(target, dict):
                    del target[path[-1]]
            else:
                target[path[-1]] = value
            out.append(changed)
    return out


_DELETE = object()


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda t: str(t["kind"]))
def test_fast_and_reference_agree_on_every_single_field_change(template: dict[str, Any]) -> None:
    for message in _mutations(template):
        assert_agree(json.dumps(message, ensure_ascii=False))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_fast_and_reference_agree_on_mutated_messages(data: st.DataObject) -> None:
    message = copy.deepcopy(data.draw(st.sampled_from(TEMPLATES)))
    path = data.draw(st.sampled_from(_paths(message)))
    target = message
    for key in path[:-1]:
        target = target[key]
    if data.draw(st.booleans(), label="delete") and isinstance(target, dict):
        del target[path[-1]]
    else:
        target[path[-1]] = data.draw(ODD_VALUES, label="value")
    assert_agree(json.dumps(message, ensure_ascii=False))


def test_period_state_copy_copies_every_field() -> None:
    values = {
        f.name: object() if f.name != "offences" else ("o",)
        for f in dataclasses.fields(PeriodState)
    }
    state = PeriodState(**values)
    clone = state.copy()
    assert clone is not state
    assert {f.name: getattr(clone, f.name) for f in dataclasses.fields(PeriodState)} == values


def test_fast_path_is_built_from_the_same_field_table() -> None:
    # every kind of the reference table has a struct in the fast decoder, with its fields
    decoded = {kind: specs for kind, specs in P._STRUCTS.values()}
    assert decoded == P.KIND_FIELDS
    for struct, (_kind, specs) in P._STRUCTS.items():
        assert set(specs) <= set(struct.__struct_fields__)


def test_lines_that_are_not_objects_get_the_reference_error(tmp_path: Path) -> None:
    for line in ("[1, 2]", "42", '"text"', "{", "", "null", '{"kind": "intake"}'):
        assert_agree(line)
