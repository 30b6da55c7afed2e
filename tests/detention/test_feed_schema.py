"""The shipped JSON Schema and the ingest's own validation agree."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

from terugkeer.detention.parse import json_schema, parse_line
from terugkeer.domain.events import FeedError
from tests.feedutil import intake, msg

VALID = [
    intake("e1"),
    intake("e2", prison_number="D1", bsn=None),
    msg("release", "e3", 400, release_kind="conditional_release", return_municipality="GM0599"),
    msg(
        "leave_granted",
        "e4",
        20,
        leave_from="2025-02-01T10:00:00+01:00",
        leave_until="2025-02-02T10:00:00Z",
        leave_municipality="GM0344",
    ),
    msg("correction", "e5", 30, withdraws="e4"),
    msg("correction", "e6", 30, period=None, withdraws="e4"),  # the period is the event's
    msg(
        "reconviction",
        "r1",
        500,
        period=None,
        source="JUSTID-JD",
        case_ref="C1",
        offence_date="2026-01-01",
        category="vermogen",
        statutory_max_years=4,
        decision="acquittal",
        custodial=False,
    ),
    msg(
        "victim_registered",
        "v1",
        3,
        source="OM-IDV",
        victim_ref="V1",
        relation="surviving_relative",
        spoke_in_court=False,
        wants_information=True,
        contact={"name": "Nabestaande 1", "phone": "0612345678"},
    ),
]

INVALID: list[dict[str, Any]] = [
    {k: v for k, v in intake("x1").items() if k != "title"},
    {**intake("x2"), "kind": "teleport"},
    {**intake("x3"), "sentence_days": "long"},
    {**intake("x4"), "occurred_at": "2025-01-06T09:00:00"},
    {**intake("x5"), "person": {}},
    {
        k: v
        for k, v in msg("release", "x6", 1, release_kind="end_of_sentence").items()
        if k != "period"
    },
    msg("release", "x7", 1, release_kind="escaped"),
    {**intake("x8"), "offences": []},
    # what no store can hold (issue 12)
    {**intake("x9"), "period": "P\x0028"},
    {**intake("x10"), "person": {"prison_number": "D\ud8001"}},
    {**intake("x11"), "occurred_at": "0001-01-01T00:00:00+14:00"},
    {**intake("x12"), "planned_release_date": "9999-12-31"},
    {**msg("correction", "x13", 30, withdraws="e\x001")},
]


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.mark.parametrize("message", VALID, ids=lambda m: m["kind"])
def test_valid_messages_pass_both(
    validator: jsonschema.Draft202012Validator, message: dict[str, Any]
) -> None:
    validator.validate(message)
    parse_line(json.dumps(message))


@pytest.mark.parametrize("message", INVALID, ids=lambda m: m["event_id"])
def test_invalid_messages_fail_both(
    validator: jsonschema.Draft202012Validator, message: dict[str, Any]
) -> None:
    assert not validator.is_valid(message)
    with pytest.raises(FeedError):
        parse_line(json.dumps(message))
