"""Benchmark: notices delivered per second from due obligations to a loopback webhook receiver
on PostgreSQL, by terugkeer's dispatcher against procrastinate (a PostgreSQL job queue), in
the same run, and the receiver's own ceiling.

    python bench/dispatch.py [--n 5000] [--workers 2] [--limit 100] [--concurrency 1]

- **ours**: N obligations with one due webhook delivery each, bulk-inserted (COPY); then
  `--workers` processes each run the product's worker loop (`run_worker_process`, `--once`,
  without the check cycle; channels from the environment as in production): claim with
  `FOR UPDATE SKIP LOCKED`, send with `WebhookChannel`, record every attempt and mark the
  delivery and its obligation delivered.
- **procrastinate**: the same N notices as jobs (bulk `batch_defer`, each carrying its notice),
  then `--workers` processes run `App.run_worker(wait=False)`; the task sends the notice with
  the same `WebhookChannel` code; procrastinate records each job's outcome. This is the peer at
  its most favourable: it writes nothing of ours (no attempt rows, no delivered marks).
- **ceiling**: one bare keep-alive `http.client` loop posting the same N pre-signed bodies.

The receiver is a keep-alive HTTP/1.1 `ThreadingHTTPServer` in its own process
(`tools.drill.Receivers`, the fault drill's) that checks each HMAC signature and records each
`Idempotency-Key`, so every notice is checked to arrive exactly once. Times run from starting
the worker processes until they have all exited with the queue empty (process start included,
on both sides); `steady` figures run from the receiver's first to its last accepted notice.

Target (issue 3): ratio >= 3 against procrastinate, and at least 500 notices/s. The last line
is the contract JSON.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import sys
import tempfile
import time
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

# Only what the worker processes need is imported here: they are started with "spawn" and
# import this module again, and its imports are not part of either system's start.
from terugkeer.notify.delivery.channels import Notice
from terugkeer.notify.delivery.channels.webhook import (
    SIGNATURE_HEADER,
    WebhookChannel,
    encode,
    sign,
)

if TYPE_CHECKING:
    from tools.drill import Receivers, ReceiverStats

HERE = Path(__file__).parent
ROOT = HERE.parent  # the repository: the drill's receivers are in tools/, not installed
SECRET = b"terugkeer-bench-webhook-secret"

RULE_VERSION = "bench"
TASK = "deliver_notice"


# -- the notices ----------------------------------------------------------------------------------


def make_notices(n: int, url: str) -> list[Notice]:
    now = datetime.now(UTC).replace(microsecond=0)
    return [
        Notice(
            delivery_id=i,
            obligation_id=i,
            idempotency_key=f"{i}:notice:1:webhook",
            notice="notice",
            version=1,
            channel="webhook",
            address=url,
            attempt=1,
            subject="release",
            rule_id="idv.release",
            rule_version=RULE_VERSION,
            recipient_kind="idv",
            recipient_ref="OM-IDV",
            period_ref=f"PI-BENCH-{i:07d}",
            due_at=now - timedelta(minutes=1),
            planned_for=now + timedelta(days=7),
            late=False,
            late_reason=None,
            backfilled=False,
        )
        for i in range(1, n + 1)
    ]


def as_job(notice: Notice) -> dict[str, Any]:
    out = asdict(notice)
    for name in ("due_at", "planned_for"):
        out[name] = out[name].isoformat() if out[name] is not None else None
    return out


def from_job(job: dict[str, Any]) -> Notice:
    values = dict(job)
    for name in ("due_at", "planned_for"):
        if values[name] is not None:
            values[name] = datetime.fromisoformat(values[name])
    return Notice(**values)


def _copy(cur: Any, table: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def insert_due(url: str, notices: list[Notice]) -> None:
    """One obligation and one due webhook delivery per notice, by COPY."""
    import psycopg
    from sqlalchemy.engine import make_url

    now = datetime.now(UTC)
    obligations = [
        (
            n.obligation_id, f"idv.release|{n.period_ref}|release|OM-IDV", n.rule_id,
            n.rule_version, n.period_ref, "release", n.subject, n.recipient_kind,
            n.recipient_ref, f"{n.period_ref}-99", n.planned_for, n.due_at, "open", False,
            None, "{}", 1, now, now, 0, False,
        )
        for n in notices
    ]  # fmt: skip
    rows = [
        (n.obligation_id, n.notice, 1, n.channel, n.address, n.idempotency_key, "pending", 0,
         now - timedelta(seconds=1), now)
        for n in notices
    ]  # fmt: skip
    conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo) as conn, conn.cursor() as cur:
        _copy(
            cur,
            "obligations",
            ("id", "key", "rule_id", "rule_version", "period_ref", "occurrence", "subject",
             "recipient_kind", "recipient_ref", "cause_event_id", "planned_for", "due_at",
             "status", "late", "late_reason", "facts", "version", "created_at", "updated_at",
             "escalation", "backfilled"),
            obligations,
        )  # fmt: skip
        _copy(
            cur,
            "deliveries",
            ("obligation_id", "notice", "obligation_version", "channel", "address",
             "idempotency_key", "status", "attempts", "next_attempt_at", "created_at"),
            rows,
        )  # fmt: skip
        cur.execute("SELECT setval('obligations_id_seq', %s)", (len(notices),))
        cur.execute("ANALYZE obligations")
        cur.execute("ANALYZE deliveries")


# -- worker processes (spawned: module-level functions) -------------------------------------------


def our_worker(url: str, limit: int) -> None:
    """One process of terugkeer's worker loop, as `terugkeer notify dispatch --once` runs it."""
    from terugkeer.db.engine import make_engine
    from terugkeer.logs import configure
    from terugkeer.notify.worker import WorkerOptions, run_worker_process

    configure("warning")
    engine = make_engine(url)
    try:
        run_worker_process(engine, once=True, options=WorkerOptions(checks=False, limit=limit))
    finally:
        engine.dispose()


_channel: WebhookChannel | None = None


def deliver_notice(notice: dict[str, Any]) -> None:
    """The procrastinate task: the same channel code as the dispatcher's."""
    global _channel
    if _channel is None:
        _channel = WebhookChannel.from_env()
    _channel.send(from_job(notice))


def procrastinate_app(conninfo: str) -> Any:
    import logging

    import procrastinate

    # its advice against an App in the main module is about import paths; the task is
    # registered by name in every process here
    logging.getLogger("procrastinate.blueprints").setLevel(logging.ERROR)

    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=conninfo))
    app.task(name=TASK)(deliver_notice)
    return app


def procrastinate_worker(conninfo: str, concurrency: int) -> None:
    app = procrastinate_app(conninfo)
    app.run_worker(wait=False, concurrency=concurrency, install_signal_handlers=False)


def run_processes(target: Any, args: tuple[Any, ...], count: int, timeout: float) -> float:
    """Start ``count`` processes and wait for all of them; the seconds that took."""
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=target, args=args, daemon=True) for _ in range(count)]
    started = time.perf_counter()
    try:
        for p in procs:
            p.start()
        deadline = time.monotonic() + timeout
        for p in procs:
            p.join(timeout=max(0.1, deadline - time.monotonic()))
        seconds = time.perf_counter() - started
        if any(p.is_alive() for p in procs):
            raise RuntimeError(f"workers still running after {timeout} s")
        if any(p.exitcode for p in procs):
            raise RuntimeError(f"a worker failed: exit codes {[p.exitcode for p in procs]}")
        return seconds
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
                p.join(timeout=5)


# -- the three runs -------------------------------------------------------------------------------


def ceiling(url: str, notices: list[Notice]) -> float:
    """Posts per second of one bare keep-alive client, bodies signed beforehand."""
    parts = urlsplit(url)
    requests = []
    for n in notices:
        body = encode(n)
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": n.idempotency_key,
            SIGNATURE_HEADER: sign(SECRET, body),
        }
        requests.append((body, headers))
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
    started = time.perf_counter()
    for body, headers in requests:
        conn.request("POST", parts.path, body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"the receiver answered {response.status}")
    seconds = time.perf_counter() - started
    conn.close()
    return len(requests) / seconds


def check(name: str, stats: ReceiverStats, n: int) -> dict[str, Any]:
    """Exactly once at the receiver?"""
    distinct = len(stats.webhook)
    total = sum(stats.webhook.values())
    if distinct != n or stats.bad_signatures:
        print(
            f"{name}: the receiver got {distinct:,} of {n:,} notices "
            f"({stats.bad_signatures} bad signatures)",
            file=sys.stderr,
        )
    steady = None
    if stats.first is not None and stats.last is not None and stats.last > stats.first:
        steady = round(total / (stats.last - stats.first), 1)
    return {"received": distinct, "duplicates": total - distinct, "steady": steady}


def ours(receivers: Receivers, notices: list[Notice], workers: int, limit: int) -> dict[str, Any]:
    from sqlalchemy import func, select

    from common import temporary_database
    from terugkeer.db.engine import make_engine
    from terugkeer.migrations import upgrade
    from terugkeer.notify.tables import deliveries

    folder = Path(tempfile.gettempdir())
    with temporary_database("postgresql", folder) as url:
        engine = make_engine(url)
        upgrade(engine)
        insert_due(url, notices)
        receivers.stats(reset=True)
        seconds = run_processes(our_worker, (url, limit), workers, timeout=600)
        with engine.connect() as conn:
            delivered = conn.execute(
                select(func.count())
                .select_from(deliveries)
                .where(deliveries.c.status == "delivered")
            ).scalar_one()
        engine.dispose()
    if delivered != len(notices):
        print(f"ours: {delivered:,} of {len(notices):,} recorded delivered", file=sys.stderr)
    return {
        "seconds": round(seconds, 3),
        "value": round(len(notices) / seconds, 1),
        "recorded": int(delivered),
        **check("ours", receivers.stats(reset=True), len(notices)),
    }


def peer(
    receivers: Receivers, notices: list[Notice], workers: int, concurrency: int
) -> dict[str, Any]:
    from sqlalchemy.engine import make_url

    from common import temporary_database

    folder = Path(tempfile.gettempdir())
    with temporary_database("postgresql", folder) as url:
        conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        app = procrastinate_app(conninfo)
        with app.open():
            app.schema_manager.apply_schema()
            task = app.tasks[TASK]
            batch = 1000
            for i in range(0, len(notices), batch):
                task.batch_defer(*({"notice": as_job(n)} for n in notices[i : i + batch]))
        receivers.stats(reset=True)
        seconds = run_processes(procrastinate_worker, (conninfo, concurrency), workers, 600)
        import psycopg

        with psycopg.connect(conninfo) as conn:
            row = conn.execute(
                "SELECT count(*) FILTER (WHERE status = 'succeeded') FROM procrastinate_jobs"
            ).fetchone()
        succeeded = int(row[0]) if row else 0
    if succeeded != len(notices):
        print(f"procrastinate: {succeeded:,} of {len(notices):,} jobs succeeded", file=sys.stderr)
    return {
        "seconds": round(seconds, 3),
        "value": round(len(notices) / seconds, 1),
        "recorded": succeeded,
        **check("procrastinate", receivers.stats(reset=True), len(notices)),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10_000, help="notices")
    parser.add_argument("--workers", type=int, default=2, help="worker processes, each side")
    parser.add_argument("--limit", type=int, default=100, help="ours: deliveries per claim")
    parser.add_argument(
        "--concurrency", type=int, default=8, help="procrastinate: jobs at once per worker"
    )
    args = parser.parse_args()
    sys.path[:0] = [str(HERE), str(ROOT)]  # bench/common.py; tools/ (also for spawned processes)
    from common import postgres_available
    from tools.drill import Receivers

    if not postgres_available():
        print("the dispatch benchmark needs PostgreSQL (see bench/common.py)", file=sys.stderr)
        return 2
    # what a production worker reads; the spawned processes inherit it
    os.environ["TERUGKEER_WEBHOOK_SECRET"] = SECRET.decode()
    os.environ["TERUGKEER_ENVIRONMENT"] = "test"
    os.environ["TERUGKEER_LOG_LEVEL"] = "warning"

    with Receivers(smtp=False, secret=SECRET) as receivers:
        notices = make_notices(args.n, receivers.url)
        top = ceiling(receivers.url, notices)
        check("ceiling", receivers.stats(reset=True), args.n)
        print(f"ceiling: one bare keep-alive client: {top:,.0f} posts/s", file=sys.stderr)
        us = ours(receivers, notices, args.workers, args.limit)
        print(f"ours: {json.dumps(us)}", file=sys.stderr)
        them = peer(receivers, notices, args.workers, args.concurrency)
        print(f"procrastinate: {json.dumps(them)}", file=sys.stderr)

    ratio = us["value"] / them["value"]
    print(
        f"terugkeer {us['value']:,.0f} notices/s vs procrastinate {them['value']:,.0f}/s: "
        f"ratio {ratio:.2f}; ceiling {top:,.0f}/s (steady: {us['steady']} vs {them['steady']})",
        file=sys.stderr,
    )
    print(
        json.dumps(
            {
                "bench": "dispatch",
                "value": us["value"],
                "unit": "notices/s",
                "baseline": f"procrastinate 3 ({args.workers} worker processes, concurrency "
                f"{args.concurrency}), same notices, same WebhookChannel code",
                "baseline_value": them["value"],
                "ratio": round(ratio, 3),
                "n": args.n,
                "store": "postgresql",
                "ceiling": round(top, 1),
                "workers": args.workers,
                "ours": us,
                "procrastinate": them,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
