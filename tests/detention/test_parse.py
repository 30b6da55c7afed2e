"""Validation of single feed messages: every kind of bad input gets a precise error."""

from __future__ import annotations

import json
from typing import Any

import pytest

from terugkeer.detention.parse import parse_line
from terugkeer.domain.codes import EventKind
from terugkeer.domain.events import FeedError
from tests.feedutil import intake, msg


def parse(message: dict[str, Any]) -> Any:
    return parse_line(json.dumps(message), 7, "test.jsonl")


def error_of(line: str) -> FeedError:
    with pytest.raises(FeedError) as info:
        parse_line(line, 3, "test.jsonl")
    return info.value


def test_valid_intake_is_typed_and_normalised_to_utc() -> None:
    event = parse(intake("e1"))
    assert event.kind is EventKind.INTAKE
    assert event.occurred_at.utcoffset().total_seconds() == 0
    assert event.occurred_at.hour == 8  # 09:00 in Amsterdam in January
    assert event.fields["offences"][0]["statutory_max_years"] == 8
    assert event.person_key == "bsn:999993653"


def test_merged_municipality_maps_to_its_successor() -> None:
    event = parse(intake("e1", fields={"residence_municipality": "GM0007"}))  # Bellingwedde
    assert event.fields["residence_municipality"] == "GM1950"  # Westerwolde


@pytest.mark.parametrize(
    ("mutate", "reason", "field"),
    [
        (lambda m: m.update(kind="teleport"), "unknown_kind", "kind"),
        (lambda m: m.pop("event_id"), "missing_field", "event_id"),
        (lambda m: m.pop("period"), "missing_field", "period"),
        (lambda m: m.pop("title"), "missing_field", "title"),
        (lambda m: m.update(sentence_days="long"), "invalid_type", "sentence_days"),
        (lambda m: m.update(sentence_days=True), "invalid_type", "sentence_days"),
        (lambda m: m.update(person={"bsn": "123456789"}), "invalid_bsn", "person.bsn"),
        (lambda m: m.update(person={}), "missing_field", "person"),
        (lambda m: m.update(source="PI-XXX"), "unknown_institution", "source"),
        (
            lambda m: m.update(residence_municipality="GM9999"),
            "unknown_municipality",
            "residence_municipality",
        ),
        (lambda m: m.update(occurred_at="2025-01-06T09:00:00"), "naive_timestamp", "occurred_at"),
        (lambda m: m.update(occurred_at="yesterday"), "invalid_type", "occurred_at"),
        (
            lambda m: m.update(planned_release_date="10-02-2026"),
            "invalid_type",
            "planned_release_date",
        ),
        (lambda m: m.update(offences=[]), "invalid_type", "offences"),
        (
            lambda m: m.update(offences=[{"category": "moord", "statutory_max_years": 30}]),
            "invalid_value",
            "offences[0].category",
        ),
        (lambda m: m.update(feed_version=2), "invalid_value", "feed_version"),
    ],
)
def test_bad_input_is_refused_with_reason_and_field(mutate: Any, reason: str, field: str) -> None:
    message = intake("e1")
    mutate(message)
    error = error_of(json.dumps(message))
    assert (error.reason, error.field) == (reason, field)
    assert field.split(".")[0].split("[")[0] in error.message


def test_invalid_json_is_refused() -> None:
    assert error_of('{"event_id": "e1", ').reason == "invalid_json"
    assert error_of("[1, 2]").reason == "invalid_json"


def test_invalid_bsn_is_never_echoed() -> None:
    error = error_of(json.dumps(intake("e1", bsn="123456789")))
    assert "123456789" not in error.message
    assert error.value is None


def test_leave_must_end_after_it_starts() -> None:
    message = msg(
        "leave_granted",
        "e2",
        1,
        leave_from="2025-02-01T10:00:00+01:00",
        leave_until="2025-02-01T09:00:00+01:00",
        leave_municipality="GM0363",
    )
    assert error_of(json.dumps(message)).field == "leave_until"


def test_a_correction_cannot_withdraw_itself() -> None:
    """It would wait in quarantine for an event that can never come (unknown_event)."""
    from terugkeer.detention.parse import parse_line_reference

    line = json.dumps(msg("correction", "c1", 2, withdraws="c1"))
    for parser in (parse_line, parse_line_reference):  # the fast path and the reference
        with pytest.raises(FeedError) as refused:
            parser(line)
        assert (refused.value.reason, refused.value.field) == ("invalid_value", "withdraws")
    assert parse(msg("correction", "c2", 2, withdraws="c1")).fields["withdraws"] == "c1"


def test_reconviction_needs_no_period() -> None:
    message = msg(
        "reconviction",
        "r1",
        400,
        period=None,
        source="JUSTID-JD",
        case_ref="C1",
        offence_date="2026-01-01",
        category="vermogen",
        statutory_max_years=4,
        decision="conviction",
        custodial=False,
    )
    assert parse(message).period_ref is None
