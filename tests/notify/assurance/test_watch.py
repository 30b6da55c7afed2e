"""Feed watch: freshness alerts and the burst brake, on both stores."""

from __future__ import annotations

import json
from collections import Counter
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
from terugkeer.notify.delivery.dispatch import dispatch_once
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


def burst(n: int, source: str = "PI-ZWO") -> str:
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
    ingest_text(engine, burst(25), hooks=HOOK, batch_size=10)
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
    assert (released.held, released.corrected, released.already_sent) == (on_hold, 0, 0)
    assert held(engine)[0] == 0
    with pytest.raises(BurstError, match="already decided"):
        decide_burst(engine, alert.id, confirm=False, by="operator-1")


def test_a_voided_burst_sends_nothing(engine: Engine) -> None:
    ingest_text(engine, burst(25), hooks=HOOK)
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
    ingest_text(engine, burst(5), hooks=HOOK)
    assert open_alerts(engine, "burst") == []
    assert held(engine)[0] == 0


def releases(first: int, n: int, source: str = "PI-ZWO") -> str:
    """Serious offenders ``first`` .. ``first + n - 1`` from one prison, released over the
    two hours from 09:00 on day 300 (one every four minutes for the first 30, the next 30 in
    between): each hour gets half of them."""
    messages = []
    for i in range(first, first + n):
        ref = f"B{i}"
        minute = (i % 30) * 4 + (2 if i >= 30 else 0)
        messages.append(intake(f"i{i}", period=ref, bsn=None, prison_number=f"D{i}", source=source,
                               fields={"planned_release_date": None, "title": "pre_trial"}))  # fmt: skip
        messages.append(msg("release", f"r{i}", 300 + minute / 1440, ref, bsn=None,
                            prison_number=f"D{i}", source=source, release_kind="court_order"))  # fmt: skip
    return lines(*messages)


def notices(engine: Engine, periods: range) -> Counter[tuple[str, str]]:
    """(notice kind, status) of the release notices of these periods."""
    refs = [f"B{i}" for i in periods]
    with engine.connect() as conn:
        rows = conn.execute(
            select(deliveries.c.notice, deliveries.c.status)
            .join(obligations, obligations.c.id == deliveries.c.obligation_id)
            .where(obligations.c.period_ref.in_(refs), obligations.c.subject == "release")
        ).all()
    return Counter((r.notice, r.status) for r in rows)


def test_a_burst_that_straddles_a_worker_run_holds_the_rest_and_a_void_corrects(
    engine: Engine,
) -> None:
    """Issue 11, finding 3: 30 releases (15 an hour: no burst yet), a worker run delivers their
    notices, 30 more releases in the same two hours make each hour a burst. The new notices are
    held; voiding the bursts voids all 60 releases' obligations: the held notices are never
    sent and every notice that went out before the brake gets a correction."""
    ingest_text(engine, releases(0, 30), hooks=HOOK)
    assert open_alerts(engine, "burst") == []
    counts = dispatch_once(engine, datetime.now(UTC) + timedelta(seconds=1), limit=1000)
    assert counts.delivered == counts.claimed > 0
    first = notices(engine, range(30))
    assert first == {("notice", "delivered"): 60}  # mayor.release and nazorg.release

    ingest_text(engine, releases(30, 30), hooks=HOOK)
    bursts = open_alerts(engine, "burst")
    assert len(bursts) == 2  # one per hour
    for alert in bursts:
        details = json.loads(alert.details)
        assert len(details["releases"]) == 30  # also the 15 whose notices went out
        assert details["already_sent"] == 30
        assert "had gone out before the brake" in alert.message
    assert notices(engine, range(30, 60)) == {("notice", "held"): 60}
    assert notices(engine, range(30)) == first  # what went out stays out

    decisions = [decide_burst(engine, a.id, confirm=False, by="operator-1") for a in bursts]
    assert sum(d.held for d in decisions) == 60
    assert sum(d.corrected for d in decisions) == 60
    assert sum(d.obligations for d in decisions) == 120
    assert notices(engine, range(30, 60)) == {("notice", "voided"): 60}
    assert notices(engine, range(30)) == {
        ("notice", "delivered"): 60,
        ("correction", "pending"): 60,
    }
    with engine.connect() as conn:
        statuses = set(
            conn.execute(
                select(obligations.c.status).where(obligations.c.subject == "release")
            ).scalars()
        )
    assert statuses == {"voided"}
    # the corrections go out with the next worker run
    dispatch_once(engine, datetime.now(UTC) + timedelta(seconds=2), limit=1000)
    assert notices(engine, range(30))[("correction", "delivered")] == 60


def test_releases_after_a_decision_make_a_new_alert_of_their_own(engine: Engine) -> None:
    """A burst confirmed, then more releases of the same hour: a new alert holds only them;
    the confirmed ones stay decided."""
    ingest_text(engine, burst(25), hooks=HOOK)
    (alert,) = open_alerts(engine, "burst")
    confirmed = decide_burst(engine, alert.id, confirm=True, by="operator-1")
    assert confirmed.held > 0
    more = [
        m
        for i in range(25, 30)
        for m in (
            intake(f"i{i}", period=f"B{i}", bsn=None, prison_number=f"D{i}", source="PI-ZWO",
                   fields={"planned_release_date": None, "title": "pre_trial"}),
            msg("release", f"r{i}", 300 + i / 1440, f"B{i}", bsn=None, prison_number=f"D{i}",
                source="PI-ZWO", release_kind="court_order"),
        )
    ]  # fmt: skip
    ingest_text(engine, lines(*more), hooks=HOOK)
    (again,) = open_alerts(engine, "burst")
    details = json.loads(again.details)
    assert sorted(details["releases"]) == sorted(f"r{i}" for i in range(25, 30))
    assert details["decided_before"] == 25
    voided = decide_burst(engine, again.id, confirm=False, by="operator-1")
    assert voided.obligations == 10  # the five new releases' mayor and nazorg notices
    assert notices(engine, range(25)) == {("notice", "pending"): 50}


def _victim_of(i: int) -> str:
    """A victim of period B<i> registers the day after the burst (a later batch that
    re-evaluates the period's release)."""
    return lines(
        msg("victim_registered", f"v{i}", 301, f"B{i}", bsn=None, prison_number=f"D{i}",
            source="OM-IDV", victim_ref=f"V{i}", relation="victim", spoke_in_court=True,
            wants_information=True, contact={"name": f"Slachtoffer {i}"})
    )  # fmt: skip


def release_notices_of(engine: Engine, period: str) -> dict[str, tuple[str, set[str]]]:
    """Per release rule of a period: the obligation's status and its notices' statuses."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(obligations.c.rule_id, obligations.c.status, deliveries.c.status.label("d"))
            .join(deliveries, deliveries.c.obligation_id == obligations.c.id, isouter=True)
            .where(obligations.c.period_ref == period, obligations.c.subject == "release")
        ).all()
    out: dict[str, tuple[str, set[str]]] = {}
    for r in rows:
        out.setdefault(r.rule_id, (r.status, set()))[1].add(r.d)
    return out


def test_a_voided_burst_stays_voided_when_its_periods_are_evaluated_again(
    engine: Engine,
) -> None:
    """After a void, a victim registration re-evaluates a burst period's release: the mayor's
    notice is not reopened and the IDV and the victim get none (the releases were false)."""
    ingest_text(engine, burst(25), hooks=HOOK)
    (alert,) = open_alerts(engine, "burst")
    decide_burst(engine, alert.id, confirm=False, by="operator-1")
    ingest_text(engine, _victim_of(0), hooks=HOOK)
    found = release_notices_of(engine, "B0")
    assert set(found) == {"mayor.release", "nazorg.release", "idv.release", "victim.release"}
    for rule, (status, sent) in found.items():
        assert status == "voided", rule
        assert sent <= {"voided", None}, rule  # nothing pending, nothing held


def test_notices_of_an_undecided_burst_created_later_are_held(engine: Engine) -> None:
    ingest_text(engine, burst(25), hooks=HOOK)
    (alert,) = open_alerts(engine, "burst")
    ingest_text(engine, _victim_of(0), hooks=HOOK)
    found = release_notices_of(engine, "B0")
    assert found["idv.release"] == ("held", {"held"})
    assert found["victim.release"] == ("held", {"held"})
    decide_burst(engine, alert.id, confirm=True, by="operator-1")
    assert release_notices_of(engine, "B0")["idv.release"] == ("open", {"pending"})
