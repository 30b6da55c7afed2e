"""The dispatcher on SQLite and PostgreSQL, against real receivers on loopback: delivery,
attempts, retries with backoff and jitter, dead letters, leases after a crash, notices that
change in flight, and several workers sharing one PostgreSQL queue."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, insert, select, update
from typer.testing import CliRunner

from terugkeer.cli import app
from terugkeer.config import get_settings
from terugkeer.detention.ingest import ingest_text
from terugkeer.notify.delivery.channels import Channel
from terugkeer.notify.delivery.channels.portal import PortalChannel
from terugkeer.notify.delivery.channels.webhook import WebhookChannel
from terugkeer.notify.delivery.dispatch import (
    Dispatcher,
    RetryError,
    RetryPolicy,
    dispatch_once,
    retry_dead,
)
from terugkeer.notify.hook import notify_hook
from terugkeer.notify.tables import (
    alerts,
    deliveries,
    delivery_attempts,
    notify_endpoints,
    obligations,
)
from terugkeer.notify.worker import WorkerOptions, run_workers
from tests.feedutil import intake, lines, msg
from tests.notify.delivery.test_channels import SECRET, Receiver

HOOK = [notify_hook()]
runner = CliRunner()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(hang_seconds=0.6)
    yield r
    r.close()


def feed(engine: Engine, *messages: dict[str, Any]) -> None:
    result = ingest_text(engine, lines(*messages), hooks=HOOK)
    assert result.quarantined == 0, result


def endpoint(
    engine: Engine, kind: str, ref: str, channel: str, address: str | None, priority: int = 1
) -> None:
    with engine.begin() as conn:
        conn.execute(
            insert(notify_endpoints).values(
                recipient_kind=kind,
                recipient_ref=ref,
                priority=priority,
                channel=channel,
                address=address,
            )
        )


def channels(timeout: float = 2.0) -> dict[str, Channel]:
    return {
        "portal": PortalChannel(),
        "webhook": WebhookChannel(SECRET, timeout=timeout, environment="test"),
    }


def obligation(engine: Engine, rule: str) -> Any:
    with engine.connect() as conn:
        return conn.execute(select(obligations).where(obligations.c.rule_id == rule)).one()


def outbox(engine: Engine, obligation_id: int | None = None) -> list[Any]:
    stmt = select(deliveries).order_by(deliveries.c.id)
    if obligation_id is not None:
        stmt = stmt.where(deliveries.c.obligation_id == obligation_id)
    with engine.connect() as conn:
        return list(conn.execute(stmt).all())


def attempts(engine: Engine, delivery_id: int) -> list[Any]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                select(delivery_attempts)
                .where(delivery_attempts.c.delivery_id == delivery_id)
                .order_by(delivery_attempts.c.id)
            ).all()
        )


def open_alerts(engine: Engine, kind: str) -> list[Any]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                select(alerts).where(alerts.c.kind == kind, alerts.c.status == "open")
            ).all()
        )


def mayor_by_webhook(engine: Engine, receiver: Receiver) -> Any:
    """A serious offender's intake; the mayor of GM0363 is reached by webhook."""
    endpoint(engine, "mayor", "GM0363", "webhook", receiver.url)
    feed(engine, intake("e1"))
    return obligation(engine, "mayor.release")


def clock() -> datetime:
    return datetime.now(UTC) + timedelta(seconds=1)


def test_due_notices_are_delivered_once_and_every_attempt_is_recorded(
    engine: Engine, receiver: Receiver
) -> None:
    mayor = mayor_by_webhook(engine, receiver)
    now = clock()
    counts = dispatch_once(engine, now, channels=channels(), worker_id="w1")
    assert counts.as_json() == {
        "claimed": 3, "delivered": 3, "retrying": 0, "dead": 0, "released": 0, "followups": 0,
    }  # fmt: skip
    assert receiver.delivered == [f"{mayor.id}:notice:1:webhook"]  # the two nazorg: portal
    assert receiver.bad_signatures == 0
    body = receiver.bodies[0]
    assert (body["reference"], body["kind"], body["recipient"]) == (
        mayor.id, "release", {"kind": "mayor", "ref": "GM0363"},
    )  # fmt: skip
    assert "999993653" not in json.dumps(body)  # no BSN
    for row in outbox(engine):
        assert (row.status, row.attempts) == ("delivered", 1)
        assert now <= row.delivered_at < now + timedelta(seconds=2)
        (attempt,) = attempts(engine, row.id)
        assert (attempt.ok, attempt.worker, attempt.error) == (True, "w1", None)
    done = obligation(engine, "mayor.release")
    assert (done.status, done.delivered_at) == (
        "delivered",
        outbox(engine, mayor.id)[0].delivered_at,
    )
    assert dispatch_once(engine, now + timedelta(hours=1), channels=channels()).claimed == 0


def test_failures_are_retried_with_exponential_backoff_and_full_jitter(
    engine: Engine, receiver: Receiver
) -> None:
    mayor = mayor_by_webhook(engine, receiver)
    receiver.fail(500, "timeout", 503)
    policy = RetryPolicy(max_attempts=8, base_seconds=10, cap_seconds=300)
    d = Dispatcher(engine, channels=channels(timeout=0.3), policy=policy, rng=random.Random(7))
    expected = random.Random(7)
    now = clock()
    for attempt in (1, 2, 3):
        counts = d.run_once(now)
        assert counts.retrying == 1
        (row,) = outbox(engine, mayor.id)
        wait = expected.uniform(0, min(300, 10 * 2 ** (attempt - 1)))
        assert now + timedelta(seconds=wait) <= row.next_attempt_at
        assert row.next_attempt_at <= now + timedelta(seconds=wait + 2)
        assert (row.status, row.attempts) == ("pending", attempt)
        assert d.run_once(row.next_attempt_at - timedelta(milliseconds=1)).claimed == 0
        now = row.next_attempt_at
    assert d.run_once(now).delivered == 1
    tried = attempts(engine, outbox(engine, mayor.id)[0].id)
    assert [a.ok for a in tried] == [False, False, False, True]
    assert "500" in tried[0].error
    assert "no answer" in tried[1].error
    assert "503" in tried[2].error
    assert obligation(engine, "mayor.release").status == "delivered"
    assert receiver.delivered == [f"{mayor.id}:notice:1:webhook"]


def test_after_the_last_attempt_a_dead_letter_is_kept_and_raised(
    engine: Engine, receiver: Receiver
) -> None:
    mayor = mayor_by_webhook(engine, receiver)
    receiver.fail(*[500] * 3)
    d = Dispatcher(engine, channels=channels(), policy=RetryPolicy(max_attempts=3, base_seconds=1))
    now = clock()
    dead = 0
    for _ in range(3):
        counts = d.run_once(now, limit=100)
        dead += counts.dead
        now = max(r.next_attempt_at for r in outbox(engine)) + timedelta(seconds=1)
    assert dead == 1
    (row,) = outbox(engine, mayor.id)
    assert (row.status, row.attempts) == ("dead", 3)
    assert "500" in row.last_error
    assert [a.ok for a in attempts(engine, row.id)] == [False, False, False]
    (alert,) = open_alerts(engine, "dead_letter")
    assert alert.key == f"dead_letter:{row.id}"
    assert json.loads(alert.details)["obligation_id"] == mayor.id
    assert obligation(engine, "mayor.release").status == "open"  # not delivered: still owed
    assert d.run_once(now + timedelta(days=30)).claimed == 0  # kept, never sent again

    # the operator fixes the cause and sends it again
    assert retry_dead(engine, row.id, now) == row.id
    assert open_alerts(engine, "dead_letter") == []
    assert d.run_once(now + timedelta(seconds=1)).delivered == 1
    assert receiver.delivered == [f"{mayor.id}:notice:1:webhook"]
    assert len(attempts(engine, row.id)) == 4  # the history stays
    with pytest.raises(RetryError, match="is delivered, not dead"):
        retry_dead(engine, row.id)


def test_a_permanent_error_is_a_dead_letter_at_once(engine: Engine, receiver: Receiver) -> None:
    mayor = mayor_by_webhook(engine, receiver)
    receiver.fail(404)
    counts = dispatch_once(engine, clock(), channels=channels())
    assert (counts.delivered, counts.dead) == (2, 1)
    (row,) = outbox(engine, mayor.id)
    assert (row.status, row.attempts) == ("dead", 1)
    assert "permanent error" in open_alerts(engine, "dead_letter")[0].message


def test_a_dead_letter_goes_to_a_new_channel_when_the_endpoint_changed(
    engine: Engine, receiver: Receiver
) -> None:
    mayor = mayor_by_webhook(engine, receiver)
    receiver.fail(410)
    now = clock()
    dispatch_once(engine, now, channels=channels())
    (dead,) = outbox(engine, mayor.id)
    with engine.begin() as conn:
        conn.execute(
            update(notify_endpoints).values(channel="portal", address=None)
        )  # the municipality moved to the portal
    queued = retry_dead(engine, dead.id, now)
    assert queued != dead.id
    dispatch_once(engine, now + timedelta(seconds=1), channels=channels())
    assert [(r.channel, r.status) for r in outbox(engine, mayor.id)] == [
        ("webhook", "dead"), ("portal", "delivered"),
    ]  # fmt: skip
    assert obligation(engine, "mayor.release").status == "delivered"


def test_held_deliveries_are_never_sent(engine: Engine, receiver: Receiver) -> None:
    mayor_by_webhook(engine, receiver)
    with engine.begin() as conn:
        conn.execute(update(deliveries).values(status="held"))
    assert dispatch_once(engine, clock() + timedelta(days=60), channels=channels()).claimed == 0
    assert receiver.requests == 0


def test_a_crash_between_sending_and_recording_can_duplicate_but_never_lose(
    engine: Engine, receiver: Receiver
) -> None:
    mayor = mayor_by_webhook(engine, receiver)
    policy = RetryPolicy(lease_seconds=60)
    now = clock()
    crashed = Dispatcher(engine, channels=channels(), policy=policy, worker_id="crashed")
    notices = crashed.claim(now, 100)
    crashed.send(notices, now)  # ...and the worker dies before recording
    key = f"{mayor.id}:notice:1:webhook"
    assert receiver.delivered == [key]
    other = Dispatcher(engine, channels=channels(), policy=policy, worker_id="other")
    assert other.run_once(now + timedelta(seconds=59)).claimed == 0  # still leased
    counts = other.run_once(now + timedelta(seconds=61))
    assert counts.delivered == 3
    assert receiver.delivered == [key, key]  # the same Idempotency-Key: a duplicate, not a loss
    (row,) = outbox(engine, mayor.id)
    assert (row.status, row.attempts) == ("delivered", 2)  # two claims, one recorded outcome
    assert [a.worker for a in attempts(engine, row.id)] == ["other"]


def test_a_worker_that_outlives_its_lease_gives_the_rest_back(
    engine: Engine, receiver: Receiver
) -> None:
    mayor_by_webhook(engine, receiver)
    receiver.fail("timeout")  # the first notice takes longer than the whole lease
    d = Dispatcher(engine, channels=channels(timeout=0.5), policy=RetryPolicy(lease_seconds=0.4))
    now = clock()
    with engine.begin() as conn:  # the webhook notice first
        conn.execute(
            update(deliveries)
            .where(deliveries.c.channel == "webhook")
            .values(next_attempt_at=now - timedelta(hours=1))
        )
    counts = d.run_once(now)
    assert (counts.claimed, counts.retrying, counts.released) == (3, 1, 2)
    portal = [r for r in outbox(engine) if r.channel == "portal"]
    assert [(r.status, r.attempts, r.next_attempt_at) for r in portal] == [
        ("pending", 0, now), ("pending", 0, now),
    ]  # fmt: skip
    assert d.run_once(now).delivered == 2


def test_a_notice_changed_in_flight_is_followed_by_a_change_notice(
    engine: Engine, receiver: Receiver
) -> None:
    mayor = mayor_by_webhook(engine, receiver)
    now = clock()
    d = Dispatcher(engine, channels=channels())
    notices = d.claim(now, 100)
    # while the notices are on their way, the planned release date moves
    feed(engine, msg("release_date_set", "e2", 3, planned_release_date="2026-03-10"))
    outcomes, _ = d.send(notices, now)
    counts = d.record(outcomes, now)
    assert counts.followups == 2  # the mayor's and the nazorg coordinator's release notices
    rows = outbox(engine, mayor.id)
    assert [(r.notice, r.obligation_version, r.status) for r in rows] == [
        ("notice", 1, "delivered"), ("change", 2, "pending"),
    ]  # fmt: skip
    assert obligation(engine, "mayor.release").status == "open"  # the new date is still owed
    d.run_once(now + timedelta(seconds=1))
    changed = obligation(engine, "mayor.release")
    assert (changed.status, changed.version) == ("delivered", 2)
    assert [b["planned_for"][:10] for b in receiver.bodies] == ["2026-02-10", "2026-03-10"]


def test_a_notice_withdrawn_in_flight_is_followed_by_a_correction(
    engine: Engine, receiver: Receiver
) -> None:
    mayor = mayor_by_webhook(engine, receiver)
    now = clock()
    d = Dispatcher(engine, channels=channels())
    notices = d.claim(now, 100)
    feed(engine, msg("death", "e2", 3))  # voids the release notices while they are sent
    outcomes, _ = d.send(notices, now)
    d.record(outcomes, now)
    rows = outbox(engine, mayor.id)
    assert [(r.notice, r.obligation_version, r.status) for r in rows] == [
        ("notice", 1, "delivered"), ("correction", 2, "pending"),
    ]  # fmt: skip
    voided = obligation(engine, "mayor.release")
    assert voided.status == "voided"
    assert voided.delivered_at is not None  # told, then withdrawn
    d.run_once(now + timedelta(seconds=1))
    assert [b["notice"] for b in receiver.bodies] == ["notice", "correction"]


def test_retry_policy_checks_and_ceilings() -> None:
    p = RetryPolicy(base_seconds=30, cap_seconds=600)
    assert [p.ceiling(n) for n in range(1, 7)] == [30, 60, 120, 240, 480, 600]
    rng = random.Random(1)
    waits = [p.backoff(5, rng).total_seconds() for _ in range(2000)]
    assert 0 <= min(waits) < 30  # full jitter: all of [0, 480]
    assert 450 < max(waits) <= 480
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError, match="base"):
        RetryPolicy(base_seconds=10, cap_seconds=5)


# -- several workers ----------------------------------------------------------------------------


def many_notices(engine: Engine, n: int, address: str) -> list[str]:
    """``n`` due obligations, each with one webhook delivery (as the ingest writes them)."""
    now = datetime.now(UTC) - timedelta(seconds=1)
    rows = [
        {
            "key": f"mayor.release|P{i}|release|-",
            "rule_id": "mayor.release",
            "rule_version": "2026.1",
            "period_ref": f"P{i}",
            "occurrence": "release",
            "subject": "release",
            "recipient_kind": "mayor",
            "recipient_ref": "GM0363",
            "cause_event_id": f"e{i}",
            "due_at": now,
            "status": "open",
            "late": False,
            "facts": "{}",
            "version": 1,
            "created_at": now,
            "updated_at": now,
            "escalation": 0,
            "backfilled": False,
        }
        for i in range(n)
    ]
    with engine.begin() as conn:
        conn.execute(insert(obligations), rows)
        ids = list(conn.execute(select(obligations.c.id).order_by(obligations.c.id)).scalars())
        conn.execute(
            insert(deliveries),
            [
                {
                    "obligation_id": i,
                    "notice": "notice",
                    "obligation_version": 1,
                    "channel": "webhook",
                    "address": address,
                    "idempotency_key": f"{i}:notice:1:webhook",
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                }
                for i in ids
            ],
        )
    return [f"{i}:notice:1:webhook" for i in ids]


def postgres_only(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("several workers share a queue on PostgreSQL only; SQLite runs one")


def test_two_worker_threads_deliver_each_notice_exactly_once(
    engine: Engine, receiver: Receiver
) -> None:
    postgres_only(engine)
    keys = many_notices(engine, 600, receiver.url)
    seen: list[Counter[str]] = []

    def work(name: str) -> None:
        d = Dispatcher(engine, channels=channels(), worker_id=name)
        total = d.drain(limit=20)
        seen.append(Counter({name: total.delivered}))
        d.close()

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(2)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    assert sorted(receiver.delivered) == sorted(keys)  # every one, none twice
    assert all(c > 0 for s in seen for c in s.values())  # both did work
    with engine.connect() as conn:
        statuses = Counter(conn.execute(select(deliveries.c.status, deliveries.c.attempts)).all())
    assert statuses == {("delivered", 1): 600}
    print(f"2 threads: {600 / elapsed:.0f} notices/s to the loopback webhook")


def test_a_group_of_worker_processes_delivers_each_notice_exactly_once(
    engine: Engine, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    postgres_only(engine)
    monkeypatch.setenv("TERUGKEER_WEBHOOK_SECRET", SECRET.decode())
    keys = many_notices(engine, 300, receiver.url)
    url = engine.url.render_as_string(hide_password=False)
    status = run_workers(url, 2, once=True, options=WorkerOptions(checks=False, limit=10))
    assert status == 0
    assert sorted(receiver.delivered) == sorted(keys)
    assert receiver.bad_signatures == 0
    with engine.connect() as conn:
        workers = {w for (w,) in conn.execute(select(delivery_attempts.c.worker).distinct())}
    assert 1 <= len(workers) <= 2


def _children(parent: int) -> list[int]:
    """The worker processes of a group (Linux /proc), not multiprocessing's helper."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[1]) == parent and b"spawn_main" in cmdline:
            found.append(int(stat.parent.name))
    return sorted(found)


def _wait_for(check: Any, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


def test_a_worker_group_survives_a_killed_process_and_stops_on_sigterm(
    engine: Engine, receiver: Receiver
) -> None:
    postgres_only(engine)
    env = {
        **os.environ,
        "TERUGKEER_DATABASE_URL": engine.url.render_as_string(hide_password=False),
        "TERUGKEER_WEBHOOK_SECRET": SECRET.decode(),
        "TERUGKEER_LOG_LEVEL": "warning",
    }
    command = [str(Path(sys.executable).parent / "terugkeer"), "worker", "--processes", "2"]
    group = subprocess.Popen(  # noqa: S603 - our own command
        [*command, "--poll", "0.1", "--interval", "600"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        assert _wait_for(lambda: len(_children(group.pid)) == 2, 20)
        victim = _children(group.pid)[-1]
        os.kill(victim, signal.SIGKILL)
        assert _wait_for(lambda: victim not in _children(group.pid), 5)
        keys = many_notices(engine, 200, receiver.url)
        assert _wait_for(lambda: len(receiver.delivered) >= 200, 20)
        assert _wait_for(lambda: len(_children(group.pid)) == 2, 10)  # started again
        group.send_signal(signal.SIGTERM)
        assert group.wait(timeout=20) == 0
    finally:
        if group.poll() is None:
            group.kill()
            group.wait()
    assert sorted(receiver.delivered) == sorted(keys)
    assert b"worker process died; starting it again" in (
        group.stderr.read() if group.stderr else b""
    )
    assert _children(group.pid) == []


# -- the command line ---------------------------------------------------------------------------


def test_worker_once_and_dispatch_once_from_the_command_line(cli_db: Engine) -> None:
    feed(cli_db, intake("e1"))
    result = runner.invoke(app, ["notify", "dispatch", "--once"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["delivered"] == 3
    feed(cli_db, msg("escape", "e2", 20))
    tee = Path(get_settings().log_tee or "")  # the test run's copy of every log line
    start = tee.stat().st_size
    result = runner.invoke(app, ["worker", "--once"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["delivered"] >= 1
    assert obligation(cli_db, "mayor.escape").status == "delivered"
    with tee.open(encoding="utf-8") as fh:  # one process runs for weeks too: its start is logged
        fh.seek(start)
        assert re.search(r"delivery job started.*job=worker.*processes=1", fh.read())


def test_several_processes_need_postgresql(cli_db: Engine) -> None:
    if cli_db.dialect.name == "postgresql":
        pytest.skip("on PostgreSQL --processes is allowed")
    result = runner.invoke(app, ["worker", "--once", "--processes", "2"])
    assert result.exit_code == 2
    assert "PostgreSQL" in result.output
