"""Benchmark: the feed over HTTP. A prison administration's system posts one message at a
time to `POST /api/v1/detentiegebeurtenissen` of the app served by uvicorn on loopback, at a
steady rate, into a store that holds years of synthetic national history; latency from the
request to its answer (events, obligations and outbox rows written), p50 and p99.

    python bench/feed_api.py [--years 1] [--releases 35000] [--rate 20] [--seconds 60]
                             [--store postgresql] [--history NAME]

1. A temporary database (PostgreSQL on 127.0.0.1:5432 by default, created and dropped here),
   every mayor reachable (the demo's endpoints, as `bench/ingest.py --hooks`).
2. History: `--years` consecutive synthetic national years (`terugkeer.synth.generate_years`),
   ending last year, ingested one after the other as `terugkeer ingest` does (with the
   notification and reintegration hooks); the time of each year is printed. Or, with
   ``--history NAME``, a copy of the PostgreSQL store `bench/growth.py --keep-database NAME`
   kept (ten national years take long to ingest; a copy takes seconds).
3. A feed account with an API token; `uvicorn --factory terugkeer.web.app:create_app` in a
   process of its own (one worker, as `terugkeer serve`).
4. The load, open loop: request *i* is due at ``start + i / rate`` whether or not the ones
   before it have been answered (so a slow answer delays no later request and cannot hide:
   latency runs from the moment a request was due). Each posts one message that happens *now*
   to a period of the history still in custody, each period once: a new planned release date,
   an escape (a notice due within the hour), a leave granted, or a new intake of someone new.
   Half a period later the same client asks `GET /api/v1/health` (a query of the database):
   the baseline, in the same run and under the same load.

The contract line's value is the feed's p99 in milliseconds; the baseline is the health
endpoint's p99 (ratio = baseline / value). Target (issue 12): p99 <= 200 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).parent))
from common import kept_exists, postgres_available, temporary_database
from terugkeer.db.engine import make_engine
from terugkeer.demo import demo_endpoints
from terugkeer.detention.tables import feed_events, persons
from terugkeer.intake import ingest_files
from terugkeer.migrations import upgrade
from terugkeer.notify.tables import deliveries, obligations
from terugkeer.security.accounts import add_user, create_token
from terugkeer.synth import generate_years

PATH = "/api/v1/detentiegebeurtenissen"
HEALTH = "/api/v1/health"
FEEDS = ("detention", "victims", "reconvictions")
KINDS = ("release_date_set", "escape", "leave_granted", "intake")


def load_history(url: str, folder: Path, years: int, releases: int, seed: int) -> dict[str, Any]:
    """Ingest ``years`` synthetic years ending last year; seconds and events per year."""
    first = datetime.now(UTC).year - years
    summaries = generate_years(
        folder / "synth", years=years, first_year=first, releases=releases, seed=seed
    )
    engine = make_engine(url)
    upgrade(engine)
    demo_endpoints(engine)
    per_year = []
    for s in summaries:
        started = time.perf_counter()
        result = ingest_files(engine, [s.files[f"{name}.jsonl"] for name in FEEDS])
        seconds = time.perf_counter() - started
        per_year.append({"year": s.year, "seconds": round(seconds, 1), **result.as_json()})
        print(
            f"history {s.year}: {result.read:,} messages in {seconds:.1f} s "
            f"({result.read / seconds:,.0f}/s)",
            file=sys.stderr,
            flush=True,
        )
    engine.dispose()
    return {"years": per_year, **feed_account(url)}


def feed_account(url: str) -> dict[str, Any]:
    """The feed's account and API token in the store; how many events it holds."""
    engine = make_engine(url)
    add_user(engine, "bench-feed", "feed", "een lang wachtwoord voor de bench")
    token = create_token(engine, "bench-feed-token", "bench-feed")
    with engine.connect() as conn:
        stored = int(conn.execute(select(func.count()).select_from(feed_events)).scalar_one())
    engine.dispose()
    return {"events": stored, "token": token}


SOURCES = ("PI-VUG", "PI-ALM", "PI-ARN", "PI-ALP")
MUNICIPALITIES = ("GM0363", "GM0599", "GM0344", "GM0518", "GM0202")


def intake_message(j: int, person: dict[str, str], period: str, at: datetime) -> dict[str, Any]:
    return {
        "feed_version": 1,
        "event_id": f"BENCH:{period}",
        "source": SOURCES[j % len(SOURCES)],
        "occurred_at": at.isoformat(),
        "kind": "intake",
        "person": person,
        "period": period,
        "title": "prison_sentence",
        "offences": [{"category": "zeden", "statutory_max_years": 8}],
        "sentence_days": 400,
        "residence_municipality": MUNICIPALITIES[j % len(MUNICIPALITIES)],
        "planned_release_date": (at.date() + timedelta(days=400)).isoformat(),
        "birth_date": date(1980 + j % 20, 1 + j % 12, 1 + j % 28).isoformat(),
        "sex": "M",
    }


def population(url: str, folder: Path, n: int) -> list[dict[str, Any]]:
    """Today's population in custody, ingested before the load: ``n`` periods that began in the
    last months, half of them people of the history who came back. Returns their intakes."""
    engine = make_engine(url)
    with engine.connect() as conn:
        returning = conn.execute(
            select(persons.c.bsn)
            .where(persons.c.bsn.is_not(None), persons.c.died_at.is_(None))
            .order_by(persons.c.id.desc())
            .limit(n // 2)
        ).all()
    now = datetime.now(UTC).replace(microsecond=0)
    intakes = []
    for j in range(n):
        person = (
            {"bsn": returning[j // 2].bsn}
            if j % 2 == 0 and j // 2 < len(returning)
            else {"prison_number": f"BENCHP{j:07d}"}
        )
        at = now - timedelta(days=10 + j % 300, minutes=j)
        intakes.append(intake_message(j, person, f"BENCH-POP-{j}", at))
    path = folder / "population.jsonl"
    path.write_text("".join(json.dumps(m) + "\n" for m in intakes))
    started = time.perf_counter()
    result = ingest_files(engine, [path])
    print(
        f"population in custody: {result.applied:,} intakes in "
        f"{time.perf_counter() - started:.1f} s ({result.as_json()})",
        file=sys.stderr,
        flush=True,
    )
    engine.dispose()
    return intakes


def message(i: int, target: dict[str, Any], now: datetime) -> dict[str, Any]:
    """Message ``i``: something that happens now to ``target``'s period (or a new intake)."""
    kind = KINDS[i % len(KINDS)]
    if kind == "intake":
        return intake_message(i, {"prison_number": f"BENCHN{i:07d}"}, f"BENCH-NEW-{i}", now)
    out: dict[str, Any] = {
        "feed_version": 1,
        "event_id": f"BENCH:{i}",
        "source": target["source"],
        "occurred_at": now.isoformat(),
        "kind": kind,
        "person": target["person"],
        "period": target["period"],
    }
    today = now.date()
    if kind == "release_date_set":
        out["planned_release_date"] = (today + timedelta(days=30 + i % 300)).isoformat()
    elif kind == "leave_granted":
        leave = datetime.combine(today + timedelta(days=10), datetime.min.time(), UTC)
        out["leave_from"] = (leave + timedelta(hours=9)).isoformat()
        out["leave_until"] = (leave + timedelta(hours=21)).isoformat()
        out["leave_municipality"] = "GM0363"
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(url: str, port: int) -> subprocess.Popen[bytes]:
    """The app under uvicorn in a process of its own; returns once it answers."""
    env = {**os.environ, "TERUGKEER_DATABASE_URL": url, "TERUGKEER_LOG_LEVEL": "warning"}
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "terugkeer.web.app:create_app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
        "--timeout-keep-alive",  # longer than the client keeps a connection idle: no race
        "120",
    ]
    server = subprocess.Popen(command, env=env)  # noqa: S603 - our own app, fixed arguments
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"uvicorn ended at start (exit {server.returncode})")
        try:
            if httpx.get(f"http://127.0.0.1:{port}{HEALTH}", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    server.terminate()
    raise RuntimeError("uvicorn did not answer within 60 s")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[k]


def load(
    port: int,
    token: str,
    periods: list[dict[str, Any]],
    rate: float,
    seconds: float,
    warmup: int,
) -> dict[str, Any]:
    """Post one message at a time at ``rate`` per second for ``seconds``, each followed half a
    period later by a health request; latencies (ms) from the moment each was due."""
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {token}"}
    n = int(rate * seconds)
    if len(periods) < n + warmup:
        raise RuntimeError(f"{len(periods)} periods in custody, {n + warmup} needed")
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    client = httpx.Client(base_url=base, timeout=30, limits=limits)
    feed_ms: list[float] = []
    health_ms: list[float] = []
    outcomes: dict[str, int] = {}
    errors: list[str] = []
    lock = threading.Lock()

    def post(i: int, due: float, record: bool) -> None:
        body = [message(i, periods[i], datetime.now(UTC))]
        try:
            response = client.post(PATH, json=body, headers=headers)
        except httpx.TransportError as e:
            with lock:
                errors.append(f"feed {type(e).__name__}: {e}")
            return
        took = (time.perf_counter() - due) * 1000
        with lock:
            if response.status_code != 200:
                errors.append(f"{response.status_code} {response.text[:200]}")
                return
            for r in response.json()["results"]:
                key = (
                    r["outcome"] if r["outcome"] != "quarantined" else f"quarantined:{r['reason']}"
                )
                outcomes[key] = outcomes.get(key, 0) + record
            if record:
                feed_ms.append(took)

    def health(due: float) -> None:
        try:
            response = client.get(HEALTH)
        except httpx.TransportError as e:
            with lock:
                errors.append(f"health {type(e).__name__}: {e}")
            return
        took = (time.perf_counter() - due) * 1000
        with lock:
            if response.status_code == 200:
                health_ms.append(took)
            else:
                errors.append(f"health {response.status_code}")

    for i in range(warmup):  # connections, plans, caches: not measured
        post(n + i, time.perf_counter(), False)
        health(time.perf_counter())
    futures: list[Future[None]] = []
    # a pool each: slow feed answers never keep a health request from being sent on time
    with (
        ThreadPoolExecutor(max_workers=32) as feeds,
        ThreadPoolExecutor(max_workers=32) as checks,
    ):
        start = time.perf_counter() + 0.1
        for i in range(n):
            due = start + i / rate
            time.sleep(max(0.0, due - time.perf_counter()))
            futures.append(feeds.submit(post, i, due, True))
            half = due + 0.5 / rate
            time.sleep(max(0.0, half - time.perf_counter()))
            futures.append(checks.submit(health, half))
        for f in futures:
            f.result()
        elapsed = time.perf_counter() - start
    client.close()
    return {
        "feed_ms": feed_ms,
        "health_ms": health_ms,
        "outcomes": outcomes,
        "errors": errors,
        "elapsed": elapsed,
        "n": n,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--years", type=int, default=1, help="synthetic national years stored")
    parser.add_argument("--releases", type=int, default=35_000, help="releases per year")
    parser.add_argument("--rate", type=float, default=20.0, help="requests per second")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long to post")
    parser.add_argument("--warmup", type=int, default=20, help="requests before measuring")
    parser.add_argument("--store", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--history",
        metavar="NAME",
        help="start from a copy of the PostgreSQL store kept by bench/growth.py "
        "--keep-database NAME (its years should end last year: --first-year) instead of "
        "ingesting; give --years as it holds, for the record",
    )
    args = parser.parse_args()
    if args.store == "postgresql" and not postgres_available():
        print("PostgreSQL not reachable on 127.0.0.1:5432", file=sys.stderr)
        return 1
    if args.history and (args.store != "postgresql" or not kept_exists(args.history)):
        print(f"no kept PostgreSQL store {args.history!r}: see bench/growth.py", file=sys.stderr)
        return 2
    with (
        tempfile.TemporaryDirectory(prefix="terugkeer-bench-") as tmp,
        temporary_database(args.store, Path(tmp), template=args.history) as url,
    ):
        if args.history:
            history = {"years": f"kept store {args.history}", **feed_account(url)}
        else:
            history = load_history(url, Path(tmp), args.years, args.releases, args.seed)
        n = int(args.rate * args.seconds)
        periods = population(url, Path(tmp), n + args.warmup)
        engine = make_engine(url)
        with engine.connect() as conn:
            before = int(conn.execute(select(func.count()).select_from(deliveries)).scalar_one())
        port = free_port()
        server = serve(url, port)
        try:
            run = load(port, history["token"], periods, args.rate, args.seconds, args.warmup)
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        with engine.connect() as conn:
            queued = (
                int(conn.execute(select(func.count()).select_from(deliveries)).scalar_one())
                - before
            )
            escapes = int(
                conn.execute(
                    select(func.count())
                    .select_from(deliveries)
                    .join(obligations, obligations.c.id == deliveries.c.obligation_id)
                    .where(obligations.c.rule_id == "mayor.escape")
                ).scalar_one()
            )
        engine.dispose()
    if run["errors"]:
        print(f"{len(run['errors'])} failed requests, first: {run['errors'][0]}", file=sys.stderr)
    if not run["feed_ms"] or not run["health_ms"]:
        return 1
    feed, health = run["feed_ms"], run["health_ms"]
    p50, p99 = percentile(feed, 50), percentile(feed, 99)
    h50, h99 = percentile(health, 50), percentile(health, 99)
    print(
        f"{run['n']:,} posts in {run['elapsed']:.1f} s ({run['n'] / run['elapsed']:.1f}/s) into "
        f"{history['events']:,} stored events ({args.years} year(s)): feed p50 {p50:.1f} ms, "
        f"p99 {p99:.1f} ms, max {max(feed):.1f} ms; health p50 {h50:.1f} ms, p99 {h99:.1f} ms; "
        f"outcomes {run['outcomes']}; {queued:,} notices queued ({escapes} escape notices to "
        "mayors)",
        file=sys.stderr,
    )
    print(
        json.dumps(
            {
                "bench": "feed_api",
                "value": round(p99, 1),
                "unit": "ms (p99, one message per request)",
                "baseline": "GET /api/v1/health p99 in the same run",
                "baseline_value": round(h99, 1),
                "ratio": round(h99 / p99, 3),
                "n": run["n"],
                "store": args.store,
                "p50_ms": round(p50, 1),
                "max_ms": round(max(feed), 1),
                "health_p50_ms": round(h50, 1),
                "rate": args.rate,
                "seconds": args.seconds,
                "years": args.years,
                "stored_events": history["events"],
                "history": history["years"],
                "outcomes": run["outcomes"],
                "notices_queued": queued,
                "target_ms": 200,
                "failed_requests": len(run["errors"]),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
