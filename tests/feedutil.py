"""Builders for feed messages in tests."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

AMS = ZoneInfo("Europe/Amsterdam")
T0 = datetime(2025, 1, 6, 9, 0, tzinfo=AMS)
BSN = "999993653"  # public test number
BSN2 = "999990019"
SOURCE = "PI-VUG"


def at(days: float) -> str:
    return (T0 + timedelta(days=days)).isoformat()


def msg(
    kind: str,
    event_id: str,
    days: float,
    period: str | None = "P1",
    bsn: str | None = BSN,
    prison_number: str | None = None,
    source: str = SOURCE,
    **fields: Any,
) -> dict[str, Any]:
    person: dict[str, str] = {}
    if bsn:
        person["bsn"] = bsn
    if prison_number:
        person["prison_number"] = prison_number
    out: dict[str, Any] = {
        "feed_version": 1,
        "event_id": event_id,
        "source": source,
        "occurred_at": at(days),
        "kind": kind,
        "person": person,
    }
    if period is not None:
        out["period"] = period
    out.update(fields)
    return out


def intake(event_id: str, days: float = 0, period: str = "P1", **kw: Any) -> dict[str, Any]:
    fields = {
        "title": "prison_sentence",
        "offences": [{"category": "zeden", "statutory_max_years": 8}],
        "sentence_days": 400,
        "residence_municipality": "GM0363",
        "planned_release_date": "2026-02-10",
    }
    fields.update(kw.pop("fields", {}))
    return msg("intake", event_id, days, period, **kw, **fields)


def lines(*messages: dict[str, Any]) -> str:
    return "".join(json.dumps(m) + "\n" for m in messages)
