"""Held-back scenarios, written from docs/feed.md and docs/rules.md: each feed under
tests/notify/scenarios/NAME.jsonl has the obligations it must give in NAME.expected.json
(key, recipient, late, status). On SQLite and PostgreSQL, fed one message at a time and as one
whole file, the store must give the same obligations, equal to the expected ones, and the
independent reconciliation must find nothing that differs (no missing, extra, wrong timing,
wrong recipient or unproven delivery).

``TERUGKEER_WRITE_SCENARIOS=1`` writes the expected files from what one message at a time
gives (for a new scenario: read every line against docs/rules.md before committing it)."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from terugkeer.detention.ingest import ingest_text
from terugkeer.intake import hooks
from terugkeer.notify.assurance.reconcile import reconcile
from terugkeer.notify.tables import obligations
from tests.conftest import empty_all

HERE = Path(__file__).parent / "scenarios"
SCENARIOS = sorted(p.stem for p in HERE.glob("*.jsonl"))
NOW = datetime(2025, 1, 6, 12, tzinfo=UTC)  # the reconciliation's clock: nothing overdue yet
COMPARED = ("missing_obligation", "extra", "wrong_timing", "wrong_recipient", "unproven_delivery")


def _feed(engine: Engine, lines: list[str], batch_size: int) -> None:
    for i in range(0, len(lines), batch_size):
        result = ingest_text(engine, "".join(lines[i : i + batch_size]), hooks=hooks())
        assert result.quarantined == 0, result


def _rows(engine: Engine) -> list[Any]:
    """The obligations, but not those voided before anyone was told: as good as never
    required (one message at a time may make one and void it with the next)."""
    with engine.connect() as conn:
        rows = conn.execute(select(obligations).order_by(obligations.c.key)).all()
    return [r for r in rows if r.status != "voided" or r.delivered_at is not None]


def _obligations(engine: Engine) -> list[dict[str, Any]]:
    return [
        {"key": r.key, "recipient": r.recipient_ref, "late": r.late, "status": r.status}
        for r in _rows(engine)
    ]


def _full(engine: Engine) -> dict[str, tuple[Any, ...]]:
    """Every field the facts decide, to compare the two ways of feeding."""
    return {
        r.key: (r.recipient_ref, r.planned_for, r.due_at, r.late, r.late_reason, r.status)
        for r in _rows(engine)
    }


@pytest.mark.parametrize("name", SCENARIOS)
def test_a_scenario_gives_its_obligations_however_it_is_fed(engine: Engine, name: str) -> None:
    lines = (HERE / f"{name}.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    _feed(engine, lines, batch_size=1)
    one_by_one, details = _obligations(engine), _full(engine)
    expected_file = HERE / f"{name}.expected.json"
    if os.environ.get("TERUGKEER_WRITE_SCENARIOS") and engine.dialect.name == "sqlite":
        expected_file.write_text(json.dumps(one_by_one, indent=1) + "\n", encoding="utf-8")
    assert one_by_one == json.loads(expected_file.read_text(encoding="utf-8"))
    report = reconcile(engine, NOW, record=False)
    assert {k: report.counts[k] for k in COMPARED} == dict.fromkeys(COMPARED, 0), [
        g.message() for kind in COMPARED for g in report.of_kind(kind)
    ]
    empty_all(engine)
    _feed(engine, lines, batch_size=len(lines))
    assert _full(engine) == details  # whole file: every field as one message at a time
    report = reconcile(engine, NOW, record=False)
    assert {k: report.counts[k] for k in COMPARED} == dict.fromkeys(COMPARED, 0)
