"""The independent reconciliation, on SQLite and PostgreSQL: it agrees with the dispatcher on
what must exist when events arrive as they happen, finds every obligation that goes missing
and nothing else, reports delivery gaps, keeps one alert per open gap; and the 2016 incident
as a test."""

from __future__ import annotations

import json
import random
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import (
    Column,
    Date,
    Engine,
    Integer,
    MetaData,
    Table,
    delete,
    insert,
    select,
    update,
)

from terugkeer.db.types import UTCDateTime
from terugkeer.detention.ingest import ingest_text
from terugkeer.intake import ingest_files
from terugkeer.notify import hook
from terugkeer.notify.assurance.backfill import backfill
from terugkeer.notify.assurance.reconcile import ReconcileReport, reconcile
from terugkeer.notify.assurance.reconcile.dialect import Sql
from terugkeer.notify.delivery.dispatch import dispatch_once
from terugkeer.notify.hook import notify_hook
from terugkeer.notify.rules.evaluate import Evaluation, PeriodFacts
from terugkeer.notify.rules.ruleset import RuleSet
from terugkeer.notify.tables import alerts, deliveries, delivery_attempts, obligations
from terugkeer.synth import generate
from tests.conftest import empty_all
from tests.feedutil import AMS, BSN, T0, intake, lines, msg

HOOK = [notify_hook()]
EARLY = datetime(2025, 1, 7, tzinfo=UTC)  # a day after the intake at T0: nothing due yet


# -- helpers (used by test_backfill and test_notify_cli too) --------------------------------


def feed(engine: Engine, *messages: dict[str, Any]) -> None:
    """Each message in its own batch, as events arrive when they happen."""
    for m in messages:
        result = ingest_text(engine, lines(m), hooks=HOOK)
        assert result.quarantined == 0, result


def victim(event_id: str, days: float, ref: str, *, spoke: bool = True, wants: bool = True,
           period: str = "P1", bsn: str = BSN) -> dict[str, Any]:  # fmt: skip
    return msg(
        "victim_registered", event_id, days, period=period, bsn=bsn, source="OM-IDV", victim_ref=ref,
        relation="victim", spoke_in_court=spoke, wants_information=wants,
        contact={"name": f"Slachtoffer {ref}"},
    )  # fmt: skip


def grant(event_id: str, days: float, leave_from: str, place: str = "GM0363",
          period: str = "P1", bsn: str = BSN) -> dict[str, Any]:  # fmt: skip
    until = (datetime.fromisoformat(leave_from) + timedelta(hours=8)).isoformat()
    return msg(
        "leave_granted", event_id, days, period=period, bsn=bsn, leave_from=leave_from,
        leave_until=until,
        leave_municipality=place,
    )  # fmt: skip


def bare_intake(event_id: str, days: float, period: str, bsn: str, **fields: Any) -> dict[str, Any]:
    """An intake with only the fields given (besides title and offences)."""
    fields.setdefault("title", "prison_sentence")
    fields.setdefault("offences", [{"category": "vermogen", "statutory_max_years": 4}])
    return msg("intake", event_id, days, period=period, bsn=bsn, **fields)


def stored(engine: Engine) -> dict[str, Any]:
    """Stored obligations by key."""
    with engine.connect() as conn:
        return {r.key: r for r in conn.execute(select(obligations))}


def live_keys(engine: Engine) -> set[str]:
    return {k for k, r in stored(engine).items() if r.status != "voided"}


def remove(engine: Engine, keys: Iterable[str]) -> None:
    """Lose obligations (and their outbox rows), as a fault would have."""
    keys = list(keys)
    with engine.begin() as conn:
        ids = [
            r.id for r in conn.execute(select(obligations.c.id).where(obligations.c.key.in_(keys)))
        ]
        sent = select(deliveries.c.id).where(deliveries.c.obligation_id.in_(ids))
        conn.execute(delete(delivery_attempts).where(delivery_attempts.c.delivery_id.in_(sent)))
        conn.execute(delete(deliveries).where(deliveries.c.obligation_id.in_(ids)))
        conn.execute(delete(obligations).where(obligations.c.id.in_(ids)))


def set_status(engine: Engine, key: str, **values: Any) -> None:
    with engine.begin() as conn:
        conn.execute(update(obligations).where(obligations.c.key == key).values(**values))


def open_alerts(engine: Engine) -> dict[str, str]:
    with engine.connect() as conn:
        return {
            r.key: r.kind
            for r in conn.execute(
                select(alerts.c.key, alerts.c.kind).where(alerts.c.status == "open")
            )
        }


def check(engine: Engine, now: datetime = EARLY, record: bool = False) -> ReconcileReport:
    return reconcile(engine, now, record=record)


def rich_period(engine: Engine) -> None:
    """A sex offender with two victims, a granted leave, an unannounced leave, an escape and
    a recapture, and a release into society; each event in its own batch."""
    feed(
        engine,
        intake("e1", fields={"sentence_days": 3000}),  # zeden, 8+ years: victims have the right
        victim("v1", 1, "V1", spoke=False),
        victim("v2", 2, "V2", wants=False),  # does not want information
        grant("e2", 10, "2025-02-01T10:00:00+01:00", "GM0599"),
        msg("leave_start", "e3", 26.1, leave_municipality="GM0599"),  # 2025-02-01
        msg("leave_end", "e4", 26.4),
        msg("leave_start", "e5", 40, leave_municipality="GM0344"),  # no grant: unannounced
        msg("leave_end", "e6", 40.3),
        msg("escape", "e7", 50),
        victim("v3", 51, "V3"),  # registered after the escape, before the recapture
        msg("recapture", "e8", 52),
        msg("release", "e9", 400, release_kind="conditional_release"),
    )  # fmt: skip


# -- agreement with the dispatcher -----------------------------------------------------------


def test_a_complete_history_has_no_gaps(engine: Engine) -> None:
    rich_period(engine)
    keys = live_keys(engine)
    assert {k.rsplit("|", 3)[0] for k in keys} >= {
        "mayor.leave", "mayor.escape", "mayor.recapture", "mayor.release", "idv.leave",
        "idv.escape", "idv.recapture", "idv.release", "victim.leave", "victim.escape",
        "victim.recapture", "victim.release", "nazorg.intake", "nazorg.release",
    }  # fmt: skip
    report = check(engine)
    assert report.missing == []
    assert report.extra == []
    assert (report.wrong_recipient, report.wrong_timing, report.unproven) == ([], [], [])
    assert report.required == len(keys) == report.obligations_checked
    # victims count from their registration: V3 (registered after the escape and after the
    # granted leave) is told of the recapture and the release, not of the escape or the leave
    assert "victim.leave|P1|leave:2025-02-01|V3" not in keys
    # a victim registered after the escape is told of the recapture, not of the escape
    assert "victim.recapture|P1|recapture:e8|V3" in keys
    assert "victim.escape|P1|escape:e7|V3" not in keys


def test_every_lost_obligation_is_found_with_its_recipient(engine: Engine) -> None:
    rich_period(engine)
    before = {k: r for k, r in stored(engine).items() if r.status != "voided"}
    remove(engine, before)
    report = check(engine)
    assert {g.key for g in report.missing} == set(before)
    for gap in report.missing:
        row = before[gap.key]
        assert (gap.rule_id, gap.period_ref, gap.occurrence) == (
            row.rule_id,
            row.period_ref,
            row.occurrence,
        )
        assert (gap.recipient_kind, gap.recipient_ref) == (row.recipient_kind, row.recipient_ref)
        assert gap.due_at is not None
        assert gap.cause_event_id
    # the planned ones were known in time: the reconciliation's due time is the dispatcher's
    for key in ("mayor.leave|P1|leave:2025-02-01|-", "nazorg.intake|P1|intake|-"):
        assert next(g.due_at for g in report.missing if g.key == key) == before[key].due_at


def test_scope_and_voids_agree_with_the_dispatcher(engine: Engine) -> None:
    # P1: dies on leave (leave and release void); P2: released into a tbs clinic (release
    # void); P3: a grant withdrawn by a correction; P4: a stay of 10 days (no intake signal);
    # P5: not serious, no victims, a child (nothing but nothing)
    feed(
        engine,
        intake("a1"),
        victim("av", 1, "VA"),
        grant("a2", 5, "2025-01-20T10:00:00+01:00"),
        msg("leave_start", "a3", 14.05, leave_municipality="GM0363"),
        msg("death", "a4", 14.2),
        intake("b1", period="P2", bsn="999990019"),
        msg("release", "b2", 30, period="P2", bsn="999990019", release_kind="into_tbs"),
        intake("c1", period="P3", bsn="999990020"),
        grant("c2", 3, "2025-02-10T10:00:00+01:00", period="P3", bsn="999990020"),
        msg("correction", "c3", 4, period="P3", bsn="999990020", withdraws="c2"),
        bare_intake("d1", 0, "P4", "999990032", residence_municipality="GM0363"),
        msg("release", "d2", 10, period="P4", bsn="999990032", release_kind="court_order"),
        bare_intake("f1", 0, "P5", "999990044", birth_date="2010-01-01",
                    residence_municipality="GM0363", planned_release_date="2025-06-01"),
    )  # fmt: skip
    keys = live_keys(engine)
    assert not any(
        k.startswith(("mayor.release|P1", "mayor.leave|P1", "idv.release|P1")) for k in keys
    )
    assert "idv.death|P1|death:a4|-" in keys
    assert "victim.death|P1|death:a4|VA" in keys
    assert not any(k.startswith(("mayor.release|P2", "nazorg.release|P2")) for k in keys)
    assert not any(k.startswith("mayor.leave|P3") for k in keys)
    assert not any(k.startswith("nazorg.intake|P4") for k in keys)
    assert not any("|P5|" in k for k in keys)
    report = check(engine)
    assert (report.missing, report.extra) == ([], [])


def test_amsterdam_dates_at_the_edges(engine: Engine) -> None:
    # intake at 00:30 in Amsterdam on the 18th birthday: the day before in UTC; a leave that
    # starts just after midnight in Amsterdam, on the day summer time starts
    birthday = datetime(2025, 1, 6, 0, 30, tzinfo=AMS)
    days = (birthday - T0).total_seconds() / 86400
    feed(
        engine,
        intake("e1", days, fields={"birth_date": "2007-01-06"}),
        intake("f1", days, period="P2", bsn="999990019", fields={"birth_date": "2007-01-07"}),
        grant("e2", 5, "2025-03-30T00:30:00+01:00"),
    )
    keys = live_keys(engine)
    assert "nazorg.intake|P1|intake|-" in keys  # 18 by the Amsterdam date
    assert not any(k.startswith("nazorg.intake|P2") for k in keys)  # 17
    assert "mayor.leave|P1|leave:2025-03-30|-" in keys
    report = check(engine)
    assert (report.missing, report.extra) == ([], [])


def test_the_sql_amsterdam_date_matches_zoneinfo(engine: Engine) -> None:
    """SQLite spells out the EU summer-time rule; PostgreSQL uses its zone database. Both
    must give Python's date around every change, in the years of the old and new rules."""
    tz = ZoneInfo("Europe/Amsterdam")
    moments = [
        datetime(year, month, day, hour, minute, tzinfo=UTC)
        for year in (1985, 1995, 1996, 2024, 2038)
        for month in (1, 3, 9, 10)
        for day in range(20, 31)
        for hour in (0, 1, 21, 22, 23)
        for minute in (0, 59)
    ]
    probe = Table(
        "ams_probe",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("at", UTCDateTime, nullable=False),
    )
    sql = Sql(engine.dialect.name)
    probe.create(engine)
    try:
        with engine.begin() as conn:
            conn.execute(insert(probe), [{"id": i, "at": m} for i, m in enumerate(moments)])
            found = conn.execute(select(sql.ams_date(probe.c.at)).order_by(probe.c.id)).scalars()
            assert list(found) == [m.astimezone(tz).date().isoformat() for m in moments]
    finally:
        probe.drop(engine)


def test_the_return_municipality_named_at_release_is_the_recipient(engine: Engine) -> None:
    feed(
        engine,
        intake("e1"),
        msg("release", "e2", 400, release_kind="conditional_release", return_municipality="GM0518"),
    )
    remove(engine, ["mayor.release|P1|release|-"])
    (gap,) = check(engine).missing
    assert (gap.key, gap.recipient_ref, gap.cause_event_id) == (
        "mayor.release|P1|release|-",
        "GM0518",
        "e2",
    )


def test_a_stored_notice_for_another_recipient_is_a_gap(engine: Engine) -> None:
    feed(engine, intake("e1"))
    set_status(engine, "mayor.release|P1|release|-", recipient_ref="GM0599")
    report = reconcile(engine, EARLY)
    assert report.missing == []
    ((gap, expected),) = [(g.key, g.expected_recipient) for g in report.wrong_recipient]
    assert (gap, expected) == ("mayor.release|P1|release|-", "GM0363")
    assert not report.ok
    assert open_alerts(engine) == {
        "reconcile:wrong_recipient:mayor.release|P1|release|-": "wrong_recipient"
    }


def test_another_due_time_or_lateness_than_the_facts_give_is_a_gap(engine: Engine) -> None:
    feed(engine, intake("e1"), grant("e2", 5, "2025-02-01T10:00:00+01:00"))
    assert reconcile(engine, EARLY, record=False).ok
    release, leave = "mayor.release|P1|release|-", "mayor.leave|P1|leave:2025-02-01|-"
    right = stored(engine)
    set_status(engine, release, due_at=right[release].due_at + timedelta(days=1))
    set_status(engine, leave, late=True, late_reason="made up")
    report = reconcile(engine, EARLY)
    found = {g.key: g for g in report.wrong_timing}
    assert set(found) == {release, leave}
    assert found[release].expected_due_at == right[release].due_at
    assert (found[leave].late, found[leave].expected_late) == (True, False)
    assert set(open_alerts(engine).values()) == {"wrong_timing"}
    # a backfilled obligation is late ("alsnog") whatever the facts say: only its due time
    set_status(engine, leave, backfilled=True)
    set_status(engine, release, due_at=right[release].due_at)
    assert reconcile(engine, EARLY).ok
    assert open_alerts(engine) == {}


def unsend(engine: Engine, obligation_ids: list[int]) -> None:
    """Delete the delivery rows (and attempts) of obligations, as a faulty dispatcher that
    never sent them would have left them."""
    with engine.begin() as conn:
        sent = select(deliveries.c.id).where(deliveries.c.obligation_id.in_(obligation_ids))
        conn.execute(delete(delivery_attempts).where(delivery_attempts.c.delivery_id.in_(sent)))
        conn.execute(delete(deliveries).where(deliveries.c.obligation_id.in_(obligation_ids)))


def test_delivered_without_proof_of_delivery_is_a_gap(engine: Engine) -> None:
    """Finding 8: ten leave notices marked delivered whose delivery rows were deleted (a
    dispatcher that records a notice as sent without sending it) are reported."""
    days = [f"2025-02-{d:02d}T10:00:00+01:00" for d in range(1, 11)]
    feed(engine, intake("e1"), *(grant(f"g{i}", 5, day) for i, day in enumerate(days)))
    dispatch_once(engine, limit=1000)
    leaves = {k for k in live_keys(engine) if k.startswith("mayor.leave")}
    assert len(leaves) == 10
    assert {stored(engine)[k].status for k in leaves} == {"delivered"}
    assert reconcile(engine, EARLY, record=False).unproven == []  # the inbox items
    unsend(engine, [stored(engine)[k].id for k in leaves])
    report = reconcile(engine, EARLY)
    assert {g.key for g in report.unproven} == leaves
    assert not report.ok
    assert sum(kind == "unproven_delivery" for kind in open_alerts(engine).values()) == 10
    # acknowledged is no proof either; an e-mail delivery needs the server's acceptance
    key = "nazorg.release|P1|release|-"
    obligation = stored(engine)[key]
    unsend(engine, [obligation.id])
    set_status(engine, key, status="acknowledged", acknowledged_at=EARLY)
    assert key in {g.key for g in reconcile(engine, EARLY, record=False).unproven}
    with engine.begin() as conn:
        conn.execute(
            insert(deliveries).values(
                obligation_id=obligation.id, notice="notice", obligation_version=obligation.version,
                channel="email", address="a@b.nl", idempotency_key="x", status="delivered",
                attempts=1, next_attempt_at=EARLY, created_at=EARLY, delivered_at=EARLY,
            )
        )  # fmt: skip
    assert key in {g.key for g in reconcile(engine, EARLY, record=False).unproven}
    with engine.begin() as conn:
        delivery = conn.execute(select(deliveries.c.id).where(deliveries.c.idempotency_key == "x"))
        conn.execute(
            insert(delivery_attempts).values(
                delivery_id=delivery.scalar_one(), attempted_at=EARLY, ok=True, duration_ms=5,
                worker="test",
            )
        )  # fmt: skip
    assert key not in {g.key for g in reconcile(engine, EARLY, record=False).unproven}


def test_the_sql_amsterdam_moment_matches_zoneinfo(engine: Engine) -> None:
    """A planned date at an hour in Amsterdam, moved by whole days, as a stored UTC time."""
    tz = ZoneInfo("Europe/Amsterdam")
    cases = [
        (date(year, month, day), hour, shift)
        for year in (1995, 1996, 2024, 2025)
        for month in (1, 3, 4, 9, 10, 11)
        for day in (1, 23, 24, 25, 26, 27, 28, 29, 30, 31)
        if not (month in (4, 9, 11) and day == 31)
        for hour in (0, 1, 3, 9, 23)
        for shift in (0, -7, -14)
    ]
    probe = Table(
        "moment_probe",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("day", Date, nullable=False),
        Column("hour", Integer, nullable=False),
        Column("shift", Integer, nullable=False),
    )
    sql = Sql(engine.dialect.name)
    probe.create(engine)
    try:
        with engine.begin() as conn:
            conn.execute(
                insert(probe),
                [{"id": i, "day": d, "hour": h, "shift": n} for i, (d, h, n) in enumerate(cases)],
            )
            moment = sql.local_moment(probe.c.day, probe.c.hour, probe.c.shift)
            found = [
                datetime.fromisoformat(str(m)).replace(tzinfo=UTC)
                if isinstance(m, str)
                else m.astimezone(UTC)
                for m in conn.execute(select(moment).order_by(probe.c.id)).scalars()
            ]
        assert found == [
            datetime.combine(d, time(h), tz).astimezone(UTC) + timedelta(days=n)
            for d, h, n in cases
        ]
    finally:
        probe.drop(engine)


def test_a_granted_leave_is_the_grants_even_when_it_starts_elsewhere(engine: Engine) -> None:
    feed(
        engine,
        intake("e1"),
        grant("e2", 10, "2025-02-01T10:00:00+01:00", "GM0599"),
        msg("leave_start", "e3", 26.1, leave_municipality="GM0344"),  # same day, elsewhere
    )
    key = "mayor.leave|P1|leave:2025-02-01|-"
    assert stored(engine)[key].recipient_ref == "GM0599"
    report = check(engine)
    assert (report.missing, report.extra, report.wrong_recipient) == ([], [], [])
    assert report.wrong_timing == []
    remove(engine, [key])
    (gap,) = check(engine).missing
    assert (gap.recipient_ref, gap.cause_event_id) == ("GM0599", "e2")


def test_a_leave_in_a_merged_municipality_goes_to_its_successor(engine: Engine) -> None:
    # GM0007 (Bellingwedde) is part of GM1950 (Westerwolde) since 2018
    feed(engine, intake("e1"), grant("e2", 5, "2025-02-01T10:00:00+01:00", "GM0007"))
    remove(engine, ["mayor.leave|P1|leave:2025-02-01|-"])
    (gap,) = check(engine).missing
    assert (gap.key, gap.recipient_ref) == ("mayor.leave|P1|leave:2025-02-01|-", "GM1950")


# -- gaps ------------------------------------------------------------------------------------


def test_delivery_gaps(engine: Engine) -> None:
    feed(
        engine,
        intake("e1"),
        msg("escape", "e2", 20),
        bare_intake("f1", 0, "P2", "999990019", planned_release_date="2025-06-01"),
    )
    escape = "mayor.escape|P1|escape:e2|-"
    assert stored(engine)["nazorg.intake|P2|intake|-"].status == "unresolved"
    later = T0 + timedelta(days=21)
    report = check(engine, later)
    assert [g.key for g in report.unresolved] == [
        "nazorg.intake|P2|intake|-",
        "nazorg.release|P2|release|-",
    ]
    overdue = {g.key for g in report.overdue}
    assert {escape, "nazorg.intake|P1|intake|-", "nazorg.intake|P2|intake|-"} <= overdue
    assert {g.status for g in report.overdue} == {"open", "unresolved"}
    assert check(engine, EARLY).overdue == []

    delivered = T0 + timedelta(days=20, hours=1)
    set_status(engine, escape, status="delivered", delivered_at=delivered)
    assert escape not in {g.key for g in check(engine).overdue}
    # the escape rule's window is 2 hours
    assert check(engine, delivered + timedelta(hours=1, minutes=59)).unacknowledged == []
    late = check(engine, delivered + timedelta(hours=2, minutes=1)).unacknowledged
    assert [g.key for g in late] == [escape]
    set_status(engine, escape, status="acknowledged", acknowledged_at=delivered)
    assert check(engine, delivered + timedelta(days=9)).unacknowledged == []


def test_voided_but_required_is_missing_and_extra_is_information(engine: Engine) -> None:
    feed(engine, intake("e1"))
    set_status(engine, "mayor.release|P1|release|-", status="voided", void_reason="a bug")
    with engine.begin() as conn:
        row = dict(stored(engine)["nazorg.intake|P1|intake|-"]._mapping)
        row.pop("id")
        conn.execute(insert(obligations).values(**{**row, "key": "mayor.leave|P1|leave:2025-05-05|-",
                                                    "rule_id": "mayor.leave"}))  # fmt: skip
    report = reconcile(engine, EARLY)
    assert [(g.key, g.status, g.note) for g in report.missing] == [
        ("mayor.release|P1|release|-", "voided", "exists but voided")
    ]
    assert [g.key for g in report.extra] == ["mayor.leave|P1|leave:2025-05-05|-"]
    assert report.counts["extra"] == 1
    assert set(open_alerts(engine).values()) == {"missing_obligation"}  # extra: no alert


def test_one_alert_per_open_gap_resolved_when_it_closes(engine: Engine) -> None:
    feed(engine, intake("e1"))
    remove(engine, ["mayor.release|P1|release|-"])
    first = reconcile(engine, EARLY)
    assert (first.alerts_raised, first.alerts_open) == (1, 1)
    assert open_alerts(engine) == {
        "reconcile:missing_obligation:mayor.release|P1|release|-": "missing_obligation"
    }
    again = reconcile(engine, EARLY + timedelta(minutes=5))
    assert (again.alerts_raised, again.alerts_resolved, again.alerts_open) == (0, 0, 1)
    with engine.connect() as conn:
        (alert,) = conn.execute(select(alerts)).all()
    details = json.loads(alert.details)
    assert (details["rule_id"], details["recipient_ref"]) == ("mayor.release", "GM0363")
    assert "mayor.release for period P1" in alert.message
    backfill(engine, T0 - timedelta(days=1), EARLY)
    closed = reconcile(engine, EARLY + timedelta(minutes=10))
    assert closed.missing == []
    assert closed.alerts_open == 0
    assert open_alerts(engine) == {}


def test_alerts_of_others_are_left_alone(engine: Engine) -> None:
    feed(engine, intake("e1"))
    with engine.begin() as conn:
        conn.execute(insert(alerts).values(kind="unresolved", key="unresolved:1", message="m",
                                           details="{}", raised_at=EARLY, status="open"))  # fmt: skip
    reconcile(engine, EARLY)
    assert open_alerts(engine) == {"unresolved:1": "unresolved"}


def test_a_naive_time_is_refused(engine: Engine) -> None:
    with pytest.raises(ValueError, match="naive datetime"):
        reconcile(engine, datetime(2025, 1, 1))


# -- on a synthetic national year -----------------------------------------------------------


def live_feed(folder: Path, releases: int, seed: int) -> Path:
    """The three synthetic feeds merged in event time: what a live system receives."""
    summary = generate(folder / "synth", releases=releases, seed=seed)
    stamped: list[tuple[datetime, str]] = []
    for name in ("detention", "victims", "reconvictions"):
        with summary.files[f"{name}.jsonl"].open(encoding="utf-8") as fh:
            stamped.extend((datetime.fromisoformat(json.loads(line)["occurred_at"]), line)
                           for line in fh)  # fmt: skip
    stamped.sort(key=lambda pair: pair[0])
    merged = folder / "live.jsonl"
    merged.write_text("".join(line for _, line in stamped), encoding="utf-8")
    return merged


# Small batches: events a few days apart land in different transactions, as they do when
# they arrive as they happen (see docs/reconciliation.md for what a bulk import does).
LIVE_BATCH = 100


def test_random_losses_in_a_synthetic_year_are_found_exactly(
    engine: Engine, tmp_path: Path
) -> None:
    ingest_files(engine, [live_feed(tmp_path, 400, seed=3)], batch_size=LIVE_BATCH)
    now = datetime(2025, 3, 1, tzinfo=UTC)
    baseline = check(engine, now)
    assert baseline.missing == []
    everything = stored(engine)
    keys = sorted(live_keys(engine) - {g.key for g in baseline.extra})
    lost = set(random.Random(5).sample(keys, len(keys) // 5))
    remove(engine, lost)
    report = check(engine, now)
    assert {g.key for g in report.missing} == lost
    assert all(g.recipient_ref == everything[g.key].recipient_ref for g in report.missing)


def test_the_2016_incident(engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """From 23 May 2016 to 31 January 2017 a fault left mayor and IDV notices unsent, and
    nobody noticed for eight months. Here: a defect in the dispatcher's evaluation silently
    drops, for eight months, every mayor, IDV and victim obligation of persons with a serious
    violent or sex offence. The first reconciliation lists every notice that went missing
    and nothing else; the backfill sends them, marked late; the second reconciliation is clean.
    """
    feed_file = live_feed(tmp_path, 2000, seed=11)
    now = datetime(2025, 3, 1, tzinfo=UTC)
    start, end = datetime(2024, 3, 1, tzinfo=UTC), datetime(2024, 11, 1, tzinfo=UTC)

    # without the defect: what the dispatcher makes, and the reconciliation agrees with it
    ingest_files(engine, [feed_file], batch_size=LIVE_BATCH)
    baseline = check(engine, now)
    assert baseline.missing == []
    should_exist = live_keys(engine) - {g.key for g in baseline.extra}
    empty_all(engine)  # the test fixture's own way to start afresh

    real = hook.evaluate_period
    dropped: set[str] = set()

    def faulty(rules: RuleSet, f: PeriodFacts, *args: Any) -> Evaluation:
        evaluation = real(rules, f, *args)
        known_at = f.planned_since or f.intake_at
        if f.categories & {"zeden", "zwaar_geweld"} and start <= known_at < end:
            kept = [r for r in evaluation.required if r.rule.recipient == "nazorg"]
            dropped.update(r.key for r in evaluation.required if r.rule.recipient != "nazorg")
            evaluation.required = kept
        return evaluation

    with monkeypatch.context() as patch:
        patch.setattr(hook, "evaluate_period", faulty)
        ingest_files(engine, [feed_file], batch_size=LIVE_BATCH)
    # the fault is fixed; what went missing:
    went_missing = should_exist - live_keys(engine)
    assert went_missing <= dropped
    assert len(went_missing) >= 20
    assert {k.split(".")[0] for k in went_missing} >= {"mayor", "idv", "victim"}

    first = reconcile(engine, now)
    assert {g.key for g in first.missing} == went_missing  # every one, nothing else
    assert {k for k, kind in open_alerts(engine).items() if kind == "missing_obligation"} == {
        f"reconcile:missing_obligation:{k}" for k in went_missing
    }

    # The faulty evaluation also voided what earlier batches had made for the periods it
    # read (a complete evaluation voids what it does not require): some caused before the
    # fault began. The backfill from the fault's start restores what was caused since and
    # names the rest; one from the earliest gap's cause restores those too.
    done = backfill(engine, start, now)
    assert done.remaining == 0
    assert done.created + done.reopened + done.before_since == len(went_missing)
    assert done.created > done.reopened > 0
    if done.before_since:
        earliest = min(g.event_at for g in first.missing if g.event_at is not None)
        earlier = backfill(engine, earliest, now)
        assert (earlier.remaining, earlier.before_since) == (0, 0)
        assert earlier.created + earlier.reopened == done.before_since
    rows = stored(engine)
    for key in went_missing:
        row = rows[key]
        assert (row.backfilled, row.late) == (True, True)
        assert row.late_reason.startswith("alsnog")
        # a recipient not known yet waits in the operator's queue, like any unresolved one
        assert row.status == ("open" if row.recipient_ref else "unresolved")
    with engine.connect() as conn:
        queued = conn.execute(
            select(deliveries.c.obligation_id).where(
                deliveries.c.obligation_id.in_(
                    [rows[k].id for k in went_missing if rows[k].recipient_ref]
                ),
                deliveries.c.notice == "notice",
                deliveries.c.status == "pending",
            )
        ).all()
    assert len(queued) == sum(1 for k in went_missing if rows[k].recipient_ref) > 0

    second = reconcile(engine, now)
    assert second.missing == []
    assert not any(kind == "missing_obligation" for kind in open_alerts(engine).values())


def test_a_withdrawn_later_intake_is_not_back_in_detention(engine: Engine) -> None:
    feed(
        engine,
        intake("e1", fields={"sentence_days": 3000}),
        msg("release", "e2", 100, release_kind="end_of_sentence"),
        intake("f1", 105, period="P2"),
        msg("correction", "f2", 106, period="P2", withdraws="f1"),
        victim("v1", 110, "V1", spoke=False),  # after the release; not back inside
    )
    assert "victim.release|P1|release|V1" in live_keys(engine)
    assert check(engine).missing == []


def test_a_withdrawn_intake_has_no_intake_signal(engine: Engine) -> None:
    feed(
        engine,
        intake("f1", 0, period="P2"),
        msg("correction", "f2", 1, period="P2", withdraws="f1"),
    )
    assert "nazorg.intake|P2|intake|-" not in live_keys(engine)
    assert check(engine).extra == []
