"""Benchmark: a mayor's inbox under load. One million notices in PostgreSQL, the app served by
`terugkeer serve --workers 2`, loaded over loopback at a fixed rate; p99 latency of
`GET /api/v1/meldingen` for one municipality and of the mayor's inbox page
(`/portaal/meldingen`, when the portal has it), with the health endpoint's p99 in the same run.

    python bench/portal.py [--notices 1000000] [--rate 200] [--seconds 30] [--share 0.05]
                           [--limit 25] [--workers 2]

1. A temporary PostgreSQL database (created and dropped here), migrated.
2. ``--notices`` synthetic notices written by PostgreSQL itself (``INSERT … SELECT`` over
   ``generate_series``, the columns of notify/tables.py): four in ten to mayors, three to
   caseworkers (nazorg), two to victims, one to the IDV; delivered over five years, newest
   first, one portal delivery each; 2 % still awaiting acknowledgement. The mayor's
   municipality (GM0363) receives ``--share`` of the mayors' and caseworkers' notices (5 %:
   Amsterdam's share of the population), the rest go to synthetic codes (GM9xxx).
   The inbox tallies (migration 0015) are folded afterwards, as the worker does every
   check cycle.
3. A mayor's office account of GM0363 with an API token, and a session (for the page).
4. ``terugkeer serve --workers 2`` in a process of its own, on a free loopback port.
5. The load, open loop: request *i* is due at ``start + i / rate`` whether or not those before
   it were answered, and its latency runs from that moment (no coordinated omission: a slow
   answer cannot hide by delaying the requests after it). The requests alternate between the
   API and the page (only the API until the page exists); a mayor mostly opens the first page
   (6 in 10), sometimes the notices awaiting acknowledgement (2 in 10) or a later page (2 in
   10, up to the 20th). ``GET /api/v1/health`` (a query of the database) runs beside them at
   a tenth of the rate: the baseline, in the same run and under the same load. The client is a
   small HTTP/1.1 client on asyncio with kept-alive connections, so that the load generator
   takes little of the machine it shares with the server.

The contract line's value is the worse of the two p99s in milliseconds; the baseline is the
health endpoint's p99 (ratio = baseline / value). Target (issue 17): p99 <= 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, func, select, text

sys.path.insert(0, str(Path(__file__).parent))
from common import postgres_available, temporary_database
from terugkeer.db.engine import make_engine
from terugkeer.migrations import upgrade
from terugkeer.notify.delivery import tallies
from terugkeer.notify.tables import obligations
from terugkeer.security.accounts import add_user, create_token
from terugkeer.security.tables import users

MUNICIPALITY = "GM0363"
API = "/api/v1/meldingen"
PAGE = "/portaal/meldingen"
HEALTH = "/api/v1/health"
PASSWORD = "een lang wachtwoord voor de bench"  # noqa: S105 - a throwaway database
FIVE_YEARS_S = 5 * 365 * 86400

# every column of notify/tables.py's obligations; the notice's number i runs from 1 (newest)
OBLIGATIONS_SQL = """
INSERT INTO obligations (key, rule_id, rule_version, period_ref, occurrence, subject,
    recipient_kind, recipient_ref, cause_event_id, planned_for, due_at, status, late,
    late_reason, facts, version, created_at, updated_at, delivered_at, acknowledged_at,
    acknowledged_by, ack_note, void_reason, escalation, backfilled)
SELECT 'bench:' || i, kind || '.' || subject, '1', 'BENCH-' || (i / 3), occurrence, subject,
    kind, ref, 'BENCH:' || i, at + interval '10 days', at, status, false,
    NULL, '{"categories": ["geweld"], "institution": "PI-VUG"}', 1, at - interval '1 minute',
    at, at, CASE WHEN status = 'acknowledged' THEN at + interval '1 hour' END,
    CASE WHEN status = 'acknowledged' THEN 'bench' END, NULL, NULL, 0, false
FROM (
    SELECT i, k.kind,
        CASE WHEN k.kind IN ('mayor', 'nazorg') THEN
            CASE WHEN (i * 7919) % 10000 < :share_bp THEN :municipality
                 ELSE 'GM9' || lpad(((i * 104729) % 340)::text, 3, '0') END
             WHEN k.kind = 'idv' THEN 'OM-IDV'
             ELSE 'V' || i END AS ref,
        (ARRAY['release', 'leave', 'escape', 'intake'])[1 + i % 4] AS subject,
        CASE WHEN i % 4 = 1 THEN 'leave:' || (i % 365) ELSE 'release' END AS occurrence,
        CASE WHEN i % 50 = 0 THEN 'delivered' ELSE 'acknowledged' END AS status,
        now() - make_interval(secs => i * :step) AS at
    FROM generate_series(CAST(:first AS bigint), CAST(:last AS bigint)) AS i,
    LATERAL (SELECT (ARRAY['mayor', 'mayor', 'mayor', 'mayor', 'nazorg', 'nazorg', 'nazorg',
                           'victim', 'victim', 'idv'])[1 + i % 10] AS kind) AS k
) AS n
"""
DELIVERIES_SQL = """
INSERT INTO deliveries (obligation_id, notice, obligation_version, channel, address,
    idempotency_key, status, attempts, next_attempt_at, last_error, created_at, delivered_at,
    read_at)
SELECT id, 'notice', 1, 'portal', NULL, 'bench:' || id, 'delivered', 1, due_at, NULL,
    created_at, delivered_at,
    CASE WHEN status = 'acknowledged' THEN delivered_at + interval '30 minutes' END
FROM obligations WHERE id > :after
"""


def fill(engine: Engine, notices: int, share: float) -> dict[str, Any]:
    """``notices`` notices, each delivered on the portal; returns counts and seconds."""
    started = time.perf_counter()
    chunk = 250_000
    for first in range(1, notices + 1, chunk):
        last = min(notices, first + chunk - 1)
        with engine.begin() as conn:
            ids = conn.execute(select(func.coalesce(func.max(obligations.c.id), 0))).scalar_one()
            conn.execute(
                text(OBLIGATIONS_SQL),
                {
                    "first": first,
                    "last": last,
                    "share_bp": round(share * 10000),
                    "municipality": MUNICIPALITY,
                    "step": FIVE_YEARS_S / notices,
                },
            )
            conn.execute(text(DELIVERIES_SQL), {"after": ids})
        print(f"notices: {last:,} written", file=sys.stderr, flush=True)
    tallies.fold(engine)  # as the worker does every check cycle
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in ("obligations", "deliveries", "inbox_tallies"):
            conn.execute(text(f"VACUUM ANALYZE {table}"))
    return {"seconds": round(time.perf_counter() - started, 1)}


def inbox_size(engine: Engine) -> int:
    """The notices of the mayor of the municipality (delivered or not)."""
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count())
                .select_from(obligations)
                .where(
                    obligations.c.recipient_kind == "mayor",
                    obligations.c.recipient_ref == MUNICIPALITY,
                )
            ).scalar_one()
        )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(url: str, port: int, workers: int, log: Path) -> subprocess.Popen[bytes]:
    """``terugkeer serve --workers N`` in a process of its own; returns once it answers."""
    env = {**os.environ, "TERUGKEER_DATABASE_URL": url, "TERUGKEER_LOG_LEVEL": "warning"}
    script = Path(sys.executable).parent / "terugkeer"
    command = [str(script), "serve", "--port", str(port), "--workers", str(workers)]
    with log.open("wb") as out:  # uvicorn's access log: one line per request
        server = subprocess.Popen(  # noqa: S603 - our own command, fixed arguments
            command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"terugkeer serve ended at start (exit {server.returncode})")
        try:
            if httpx.get(f"http://127.0.0.1:{port}{HEALTH}", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    stop(server)
    raise RuntimeError("terugkeer serve did not answer within 90 s")


def cpu_seconds(pid: int) -> float:
    """CPU time (user and system) of a process and its children now alive (Linux /proc)."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if entry.name == str(pid) or fields[1] == str(pid):  # fields[1]: the parent's pid
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def stop(server: subprocess.Popen[bytes]) -> None:
    os.killpg(server.pid, signal.SIGTERM)  # the server's own process group: it and its workers
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()


# --- the load: a small HTTP/1.1 client on asyncio ---------------------------------------------


@dataclass
class Client:
    port: int
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = field(default_factory=list)

    async def get(self, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{head}\r\n".encode()
        while self.idle:  # a kept-alive connection, unless the server closed it meanwhile
            reader, writer = self.idle.pop()
            try:
                writer.write(request)
                status_line = await reader.readline()
            except ConnectionError:
                status_line = b""
            if status_line:
                break
            writer.close()
        else:
            reader, writer = await self._connect()
            writer.write(request)
            status_line = await reader.readline()
        status = int(status_line.split()[1])
        length, chunked, close = 0, False, False
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            name, value = name.strip().lower(), value.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding" and "chunked" in value:
                chunked = True
            elif name == "connection" and value == "close":
                close = True
        body = await (_chunked(reader) if chunked else reader.readexactly(length))
        if close:
            writer.close()
        else:
            self.idle.append((reader, writer))
        return status, body

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection("127.0.0.1", self.port)

    def close(self) -> None:
        for _, writer in self.idle:
            writer.close()


async def _chunked(reader: asyncio.StreamReader) -> bytes:
    parts = []
    while size := int((await reader.readline()).split(b";")[0], 16):
        parts.append(await reader.readexactly(size))
        await reader.readline()
    await reader.readline()
    return b"".join(parts)


def query(name: str, i: int, limit: int) -> str:
    """Request i's parameters: the first page, the notices awaiting acknowledgement, or a
    later page (the API's limit and offset; the page's own, 25 notices a page)."""
    page = name == "page"
    if i % 10 < 6:
        return "" if page else f"limit={limit}"
    if i % 10 < 8:
        return "toon=te-bevestigen" if page else f"limit={limit}&onbevestigd=true"
    later = 1 + i % 19
    return f"pagina={later + 1}" if page else f"limit={limit}&offset={limit * later}"


async def load(
    port: int,
    targets: dict[str, tuple[str, dict[str, str]]],
    rate: float,
    seconds: float,
    limit: int,
) -> dict[str, Any]:
    """Open loop at ``rate``: the targets in turn, health at a tenth of the rate beside them;
    latencies in ms from the moment each request was due."""
    client = Client(port)
    names = list(targets)
    latencies: dict[str, list[float]] = {name: [] for name in [*names, "health"]}
    errors: list[str] = []

    async def one(name: str, path: str, headers: dict[str, str], due: float) -> None:
        try:
            status, body = await client.get(path, headers)
        except (OSError, asyncio.IncompleteReadError, ValueError, IndexError) as e:
            errors.append(f"{name}: {type(e).__name__}")
            return
        if status != 200:
            errors.append(f"{name}: {status} {body[:200]!r}")
            return
        latencies[name].append((time.perf_counter() - due) * 1000)

    tasks = []
    n = int(rate * seconds)
    start = time.perf_counter() + 0.1
    for i in range(n):
        due = start + i / rate
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        name = names[i % len(names)]
        base, headers = targets[name]
        params = query(name, i // len(names), limit)
        path = f"{base}?{params}" if params else base
        tasks.append(asyncio.create_task(one(name, path, headers, due)))
        if i % 10 == 5:
            tasks.append(asyncio.create_task(one("health", HEALTH, {}, due)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    client.close()
    return {"latencies": latencies, "errors": errors, "n": n, "elapsed": elapsed}


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[k]


def sign_in(port: int, mayor: str) -> str | None:
    """The mayor's session cookie, if the page exists (else None: only the API is loaded)."""
    base = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=base, timeout=30) as client:
        answer = client.post("/api/v1/sessies", json={"naam": mayor, "wachtwoord": PASSWORD})
        answer.raise_for_status()
        cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
        page = client.get(PAGE, headers={"Cookie": cookie}, follow_redirects=False)
    return cookie if page.status_code == 200 else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--notices", type=int, default=1_000_000)
    parser.add_argument("--share", type=float, default=0.05, help="the municipality's share")
    parser.add_argument("--rate", type=float, default=200.0, help="requests per second")
    parser.add_argument("--seconds", type=float, default=30.0, help="how long to load")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds before measuring")
    parser.add_argument("--limit", type=int, default=25, help="notices per page")
    parser.add_argument("--workers", type=int, default=2, help="terugkeer serve --workers")
    parser.add_argument(
        "--url", help="an existing PostgreSQL database to use (filled when empty; kept)"
    )
    args = parser.parse_args()
    if not postgres_available():
        print("PostgreSQL not reachable on 127.0.0.1:5432", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="terugkeer-bench-") as tmp:
        given = nullcontext(args.url) if args.url else None
        with given or temporary_database("postgresql", Path(tmp)) as url:
            filled, run = prepare_and_load(args, url, Path(tmp))
    return report(args, filled, run)


def prepare_and_load(
    args: argparse.Namespace, url: str, tmp: Path
) -> tuple[dict[str, Any], dict[str, Any]]:
    engine = make_engine(url)
    upgrade(engine)
    with engine.connect() as conn:
        empty = conn.execute(select(func.count()).select_from(obligations)).scalar_one() == 0
    filled = fill(engine, args.notices, args.share) if empty else {"seconds": 0}
    filled["inbox"] = inbox_size(engine)
    mayor = "bench-mayor"  # one account, also on a kept database; a token of its own per run
    with engine.connect() as conn:
        known = conn.execute(select(users.c.id).where(users.c.name == mayor)).first()
    if known is None:
        add_user(engine, mayor, "mayor_office", PASSWORD, MUNICIPALITY)
    token = create_token(engine, f"{mayor}-token-{uuid.uuid4().hex[:8]}", mayor)
    engine.dispose()
    print(
        f"{args.notices:,} notices in {filled['seconds']} s; {filled['inbox']:,} in the "
        f"inbox of the mayor of {MUNICIPALITY}",
        file=sys.stderr,
        flush=True,
    )
    port = free_port()
    server = serve(url, port, args.workers, tmp / "serve.log")
    try:
        cookie = sign_in(port, mayor)
        targets = {"api": (API, {"Authorization": f"Bearer {token}"})}
        if cookie is not None:
            targets["page"] = (PAGE, {"Cookie": cookie})
        # connections, plans, caches: not measured
        asyncio.run(load(port, targets, args.rate, args.warmup, args.limit))
        before = cpu_seconds(server.pid)
        run = asyncio.run(load(port, targets, args.rate, args.seconds, args.limit))
        run["server_cpu_s"] = cpu_seconds(server.pid) - before
    finally:
        stop(server)
    return filled, run


def report(args: argparse.Namespace, filled: dict[str, Any], run: dict[str, Any]) -> int:
    if run["errors"]:
        print(f"{len(run['errors'])} failed requests, first: {run['errors'][0]}", file=sys.stderr)
    lat = run["latencies"]
    if not lat["api"] or not lat["health"]:
        return 1
    p99 = {name: percentile(values, 99) for name, values in lat.items() if values}
    p50 = {name: percentile(values, 50) for name, values in lat.items() if values}
    worst = max(p99[name] for name in p99 if name != "health")
    figures = ", ".join(
        f"{name} p50 {p50[name]:.1f} ms p99 {p99[name]:.1f} ms ({len(lat[name]):,})" for name in p99
    )
    print(
        f"{run['n']:,} requests in {run['elapsed']:.1f} s ({run['n'] / run['elapsed']:.1f}/s): "
        f"{figures}; the server's CPU {run['server_cpu_s']:.1f} s "
        f"({run['server_cpu_s'] * 1000 / run['n']:.1f} ms per request)"
        + ("" if "page" in p99 else "; the inbox page is not there yet: API only"),
        file=sys.stderr,
    )
    print(
        json.dumps(
            {
                "bench": "portal",
                "value": round(worst, 1),
                "unit": "ms",
                "baseline": "GET /api/v1/health p99 in the same run",
                "baseline_value": round(p99["health"], 1),
                "ratio": round(p99["health"] / worst, 3),
                "n": run["n"],
                "store": "postgresql",
                "notices": args.notices,
                "inbox_notices": filled["inbox"],
                "fill_seconds": filled["seconds"],
                "rate": args.rate,
                "seconds": args.seconds,
                "workers": args.workers,
                "limit": args.limit,
                "p99_ms": {k: round(v, 1) for k, v in p99.items()},
                "p50_ms": {k: round(v, 1) for k, v in p50.items()},
                "page_measured": "page" in p99,
                "target_ms": 50,
                "failed_requests": len(run["errors"]),
                "server_cpu_ms_per_request": round(run["server_cpu_s"] * 1000 / run["n"], 2),
                "load_average": round(os.getloadavg()[0], 1),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
