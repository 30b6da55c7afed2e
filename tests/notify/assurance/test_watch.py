"""Feed watch: freshness alerts and the burst brake, on both stores."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select

from terugkeer.detention.ingest import ingest_text
from terugkeer.notify.assurance.watch import (
    BurstError,
    check_freshness,
    decide_burst,
    working_hours_between,
)
from terugkeer.notify.hook import notify_hook
from terugkeer.notify.tables import alerts, deliveries, obligations
from tests.feedutil import AMS, intake, lines, msg

HOOK = [notify_hook()]


def test_working_hours_skip_the_weekend() -> None:
    friday = datetime(2025, 1, 10, 17, 0, tzinfo=AMS)
    monday = datetime(2025, 1, 13, 9, 0, tzinfo=AMS)
    assert working_hours_between(friday, monday) == pytest.approx(7 + 9)
    assert working_hours_between(monday, friday) == 0


def open_alerts(engine: Engine, kind: str) -> list:  # type: ignore[type-arg]
    with engine.connect() as conn:
        return conn.execute(
            select(alerts).where(alerts.c.kind == kind, alerts.c.status == "open")
        ).all()


def test_a_silent_source_raises_an_alert_until_it_speaks_again(engine: Engine) -> None:
    ingest_text(engine, lines(intake("e1")), hooks=HOOK)
    now = datetime.now(UTC)
    report = check_freshness(engine, now + timedelta(hours=1), silence_hours=24)
    assert "PI-VUG" in report.fresh
    assert "PI-ZWO" in report.never  # never sent anything: no alert, listed
    later = now + timedelta(days=5)  # at least three working days of silence
    report = check_freshness(engine, later, silence_hours=24)
    assert report.stale["PI-VUG"] > 24
    (alert,) = open_alerts(engine, "feed_stale")
    assert alert.key == "feed_stale:PI-VUG"
    check_freshness(engine, later, silence_hours=24)  # raised once, not again
    assert len(open_alerts(engine, "feed_stale")) == 1
    assert check_freshness(engine, now + timedelta(minutes=5), silence_hours=24).stale == {}
    assert open_alerts(engine, "feed_stale") == []


def _burst(n: int, source: str = "PI-ZWO") -> str:
    """n serious offenders from one prison, all released in the same hour."""
    messages = []
    for i in range(n):
        ref, bsn = f"B{i}", None
        messages.append(intake(f"i{i}", period=ref, bsn=bsn, prison_number=f"D{i}", source=source,
                               fields={"planned_release_date": None, "title": "pre_trial"}))  # fmt: skip
        messages.append(msg("release", f"r{i}", 300 + i / 1440, ref, bsn=bsn, prison_number=f"D{i}",
                            source=source, release_kind="court_order"))  # fmt: skip
    return lines(*messages)


def held(engine: Engine) -> tuple[int, int]:
    with engine.connect() as conn:
        d = conn.execute(select(deliveries.c.status)).scalars().all()
        return d.count("held"), d.count("pending")


def test_a_burst_of_releases_holds_its_notices_until_confirmed(engine: Engine) -> None:
    ingest_text(engine, _burst(25), hooks=HOOK, batch_size=10)
    (alert,) = open_alerts(engine, "burst")
    details = json.loads(alert.details)
    assert len(details["releases"]) == 25  # found across batches: every release of the hour
    on_hold, _ = held(engine)
    assert on_hold >= 25  # each release's mayor notice (and nazorg's) is held
    with engine.connect() as conn:
        statuses = (
            conn.execute(
                select(obligations.c.status).where(obligations.c.rule_id == "mayor.release")
            )
            .scalars()
            .all()
        )
    assert set(statuses) == {"held"}
    released = decide_burst(engine, alert.id, confirm=True, by="operator-1")
    assert released == on_hold
    assert held(engine)[0] == 0
    with pytest.raises(BurstError, match="already decided"):
        decide_burst(engine, alert.id, confirm=False, by="operator-1")


def test_a_voided_burst_sends_nothing(engine: Engine) -> None:
    ingest_text(engine, _burst(25), hooks=HOOK)
    (alert,) = open_alerts(engine, "burst")
    decide_burst(engine, alert.id, confirm=False, by="operator-1")
    with engine.connect() as conn:
        statuses = set(conn.execute(select(deliveries.c.status)).scalars().all())
        reasons = set(
            conn.execute(
                select(obligations.c.void_reason).where(obligations.c.rule_id == "mayor.release")
            ).scalars()
        )
    assert "held" not in statuses
    assert reasons == {"voided by operator-1: burst of releases"}


def test_an_ordinary_hour_is_not_a_burst(engine: Engine) -> None:
    ingest_text(engine, _burst(5), hooks=HOOK)
    assert open_alerts(engine, "burst") == []
    assert held(engine)[0] == 0
