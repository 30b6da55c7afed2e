"""The drill: notices survive crashed workers, failing receivers and a messy feed.

:func:`run_drill` runs the real pipeline against PostgreSQL (a temporary database it creates
and drops, or an empty one it is given) with real receivers on loopback, and breaks it:

- **Feed.** A synthetic national year (:func:`terugkeer.synth.generate` with messy rates:
  duplicated, moved and malformed lines), the victims' feed mixed in at random places, cut
  into chunks. Each chunk is ingested by its own process (``terugkeer.intake.ingest_files``:
  events, periods, obligations and delivery rows in one transaction per batch) while the
  dispatchers run; two neighbouring chunks swap places and one chunk is sent twice.
- **Crashes.** Several dispatcher processes (``terugkeer.notify.delivery.dispatch.run_worker``, the
  first one also running the check cycle) deliver on a short retry policy and a short lease.
  At random moments one is killed with SIGKILL and started again a moment later; some ingest
  processes are killed too, and their chunk is sent again.
- **Receivers.** One process on loopback holds an HTTP receiver (checks the HMAC signature,
  records each ``Idempotency-Key`` it accepts) and an SMTP server (aiosmtpd; records each
  message's ``X-Terugkeer-Idempotency-Key``). They fail at random: HTTP 5xx and hangs past
  the client's timeout, SMTP 4xx and 5xx (at RCPT or DATA) and hangs.

Then it lets the system **settle**: the dispatchers drain the queue while retries come due;
the receivers are "repaired" and, as an operator would, the drill sends every dead letter
again (``retry_dead``: an SMTP 5xx is permanent by design) and confirms any burst the feed
watch held; a check cycle (escalation, with its outbox check) runs and whatever it queues is
drained. Finally it counts, from the database, the receivers' records and the independent
reconciliation (when installed): obligations required, delivered, unresolved (no known
recipient: an operator's item with an alert), **missing** (must be 0) and notices **received
more than once** (possible only when a worker dies between sending and recording; counted,
and checked against the claims that killed workers left unrecorded).

Every random choice comes from one ``random.Random(seed)``; the report carries the seed.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import importlib
import json
import math
import multiprocessing
import os
import random
import signal
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from multiprocessing.connection import Connection as Pipe
from multiprocessing.context import SpawnProcess
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, create_engine, func, insert, select, text
from sqlalchemy.engine import make_url

from terugkeer.db.bulk import among
from terugkeer.detention.tables import feed_events
from terugkeer.notify.delivery.channels.webhook import SIGNATURE_HEADER
from terugkeer.notify.delivery.dispatch import RetryPolicy
from terugkeer.notify.tables import (
    alerts,
    deliveries,
    delivery_attempts,
    notify_endpoints,
    obligations,
)

if TYPE_CHECKING:  # the synthesiser (and numpy) only where the feed is made
    from terugkeer.synth import MessyRates

DEFAULT_SERVER = os.environ.get(
    "TERUGKEER_DRILL_SERVER_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
SECRET = b"terugkeer-drill-webhook-secret"
KEY_HEADER = "X-Terugkeer-Idempotency-Key"  # as terugkeer.notify.delivery.channels.email
WEBHOOK_PATH = "/terugkeer/meldingen"
SENDER = "terugkeer@drill.example"
OPERATOR = "drill operator"
DELIVERED = ("delivered", "acknowledged")


class DrillError(RuntimeError):
    """The drill could not be run (not: the drill found a gap; that is in the report)."""


# -- configuration ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Faults:
    """How often the receivers fail, per request (HTTP) or per SMTP stage."""

    http_error: float = 0.05  # 500, 502 or 503: tried again
    http_timeout: float = 0.01  # no answer within the client's timeout: tried again
    smtp_temporary: float = 0.04  # 421, 450 or 451 at RCPT or DATA: tried again
    smtp_permanent: float = 0.01  # 550 or 554 at RCPT or DATA: a dead letter at once
    smtp_timeout: float = 0.005  # no answer to DATA within the client's timeout
    hang_seconds: float = 1.5  # how long a "timeout" hangs (longer than the clients wait)
    latency: float = 0.004  # mean seconds a receiver takes to accept (uniform, 0 to twice it)

    def __post_init__(self) -> None:
        for name in (
            "http_error",
            "http_timeout",
            "smtp_temporary",
            "smtp_permanent",
            "smtp_timeout",
        ):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"fault rate {name} must be in [0, 1], got {value}")
        if self.http_error + self.http_timeout > 1 or self.smtp_temporary + self.smtp_permanent > 1:
            raise ValueError("fault rates of one receiver add up to more than 1")

    @classmethod
    def none(cls) -> Faults:
        return cls(0.0, 0.0, 0.0, 0.0, 0.0, latency=0.0)

    @classmethod
    def often(cls) -> Faults:
        """Three times the default rates: a short drill has few notices to fail."""
        return cls(0.15, 0.03, 0.12, 0.03, 0.015, latency=0.008)


def _default_messy() -> MessyRates:
    from terugkeer.synth import MessyRates

    return MessyRates(duplicates=0.03, out_of_order=0.08, malformed=0.005)


def _drill_policy() -> RetryPolicy:
    # retries come due within seconds; a killed worker's claims come back after 10 s, which
    # leaves a live worker's round (at most 8 s of sending, timeouts included) a wide margin
    return RetryPolicy(max_attempts=12, base_seconds=0.2, cap_seconds=2.0, lease_seconds=10.0)


@dataclass(frozen=True)
class DrillConfig:
    seed: int
    events: int = 10_000  # at least this many feed lines (detention and victims feeds)
    kills: int = 20  # dispatcher processes killed with SIGKILL
    ingest_kills: int = 3  # ingest processes killed with SIGKILL (their chunk is sent again)
    workers: int = 3  # dispatcher processes
    chunks: int = 10  # the feed arrives in this many parts while the dispatchers run
    batch_size: int = 500  # ingest: messages per transaction
    limit: int = 20  # dispatcher: deliveries per claim
    poll_seconds: float = 0.1
    check_interval: float = 5.0  # the first dispatcher's check cycle
    kill_gap: tuple[float, float] = (0.2, 1.0)  # seconds between kills, uniformly random
    kill_patience: float = 3.0  # how long a kill may wait for notices to be due
    chunk_gap: tuple[float, float] = (0.0, 0.5)  # pause between chunks
    restart_delay: tuple[float, float] = (0.0, 0.5)  # a killed dispatcher is back after this
    webhook_timeout: float = 0.5
    smtp_timeout: float = 1.0
    settle_timeout: float = 300.0  # longest wait for the queue to drain, per settle step
    active_timeout: float = 900.0  # longest the feed-and-kill phase may take
    faults: Faults = field(default_factory=Faults)
    messy: MessyRates = field(default_factory=_default_messy)
    policy: RetryPolicy = field(default_factory=_drill_policy)
    log_level: str = "error"  # of the child processes
    control: bool = True  # ingest the same feed calmly into a second database and compare

    def __post_init__(self) -> None:
        if self.events < 1 or self.chunks < 1 or self.workers < 1:
            raise ValueError("events, chunks and workers must be at least 1")
        if self.kills < 0 or self.ingest_kills < 0:
            raise ValueError("kills cannot be negative")
        if self.workers < 2 and self.kills:
            raise ValueError("killing dispatchers needs at least 2 of them")

    @classmethod
    def quick(cls, seed: int, **overrides: Any) -> DrillConfig:
        """A short drill (well under a minute): a few hundred events, a few kills."""
        values: dict[str, Any] = {
            "events": 400,
            "kills": 4,
            "ingest_kills": 1,
            "workers": 3,
            "chunks": 4,
            "batch_size": 100,
            "kill_gap": (0.3, 0.9),
            "faults": Faults.often(),
        }
        values.update(overrides)
        return cls(seed=seed, **values)


# -- the report -------------------------------------------------------------------------------


@dataclass
class DrillReport:
    seed: int
    config: dict[str, Any]
    feed: dict[str, Any] = field(default_factory=dict)
    ingest: dict[str, int] = field(default_factory=dict)
    kills: int = 0  # dispatcher processes killed
    ingest_kills: int = 0
    unexpected_exits: int = 0  # dispatcher processes that died without being killed
    faults: dict[str, int] = field(default_factory=dict)  # injected by the receivers
    claims_cut: int = 0  # claims never recorded: the claiming worker was killed
    settled: bool = False
    dead_letters: int = 0  # became dead (permanent refusals), sent again by the operator
    bursts_confirmed: int = 0
    checks_queued: int = 0  # notices the final check cycle found missing from the outbox
    required: int = 0
    required_source: str = ""
    obligations: dict[str, int] = field(default_factory=dict)  # stored, by status
    delivered: int = 0
    unresolved: int = 0
    missing: int = 0
    missing_detail: list[str] = field(default_factory=list)
    notices: dict[str, dict[str, int]] = field(default_factory=dict)  # channel -> status -> n
    received: dict[str, int] = field(default_factory=dict)  # receiver -> receipts
    duplicates: int = 0  # notices received more than once
    duplicate_copies: int = 0  # receipts beyond the first
    duplicates_explained: int = 0  # ... whose delivery had a claim a killed worker left
    duplicates_unexplained: list[str] = field(default_factory=list)  # keys of the others
    missing_delivery: int = 0  # of missing: stored but not delivered (or not received)
    missing_obligations: int = 0  # of missing: required by the reconciliation, not stored
    missing_also_calm: int = 0  # ... and not created by the calm run either: not the faults
    reconciliation: dict[str, Any] | None = None
    calm: dict[str, Any] | None = None  # the calm run compared with the drill
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.settled and self.missing == 0

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["ok"] = self.ok
        return out

    def lines(self) -> list[str]:
        f, i = self.feed, self.ingest
        channels = "; ".join(
            f"{ch} {sum(by.values()):,} ("
            + ", ".join(f"{status} {n:,}" for status, n in sorted(by.items()))
            + ")"
            for ch, by in sorted(self.notices.items())
        )
        faults = ", ".join(f"{k} {v:,}" for k, v in sorted(self.faults.items())) or "none"
        out = [
            f"seed {self.seed}",
            f"feed: {f.get('lines', 0):,} lines in {f.get('chunks', 0)} chunks (+{f.get('resent', 0)}"
            f" sent again); synthetic mess: {f.get('duplicated', 0):,} duplicated, "
            f"{f.get('out_of_order', 0):,} out of order, {f.get('malformed', 0):,} malformed",
            f"ingest: read {i.get('read', 0):,}, applied {i.get('applied', 0):,}, duplicates "
            f"{i.get('duplicates', 0):,}, quarantined {i.get('quarantined', 0):,}; "
            f"{i.get('stored_events', 0):,} events stored",
            f"killed with SIGKILL: {self.kills} dispatcher processes, {self.ingest_kills} ingest "
            f"processes; {self.claims_cut:,} claimed notices left unrecorded by killed workers; "
            f"dispatchers that died by themselves: {self.unexpected_exits}",
            f"receiver faults injected (and requests cut off by a kill): {faults}",
            f"settled: {'yes' if self.settled else 'NO'}; dead letters sent again by the operator: "
            f"{self.dead_letters}; bursts confirmed: {self.bursts_confirmed}; notices the check "
            f"cycle had to queue: {self.checks_queued}",
            f"notices: {channels}",
            f"received: webhook {self.received.get('webhook', 0):,}, e-mail "
            f"{self.received.get('email', 0):,}",
            f"obligations required: {self.required:,} ({self.required_source})",
            f"delivered: {self.delivered:,}",
            f"unresolved (no known recipient; an operator's item with an alert): {self.unresolved:,}",
            f"missing: {self.missing:,} (lost in delivery: {self.missing_delivery:,}; obligations"
            f" the reconciliation requires that were never created: {self.missing_obligations:,}"
            + (
                f", {self.missing_also_calm:,} of them not by the calm run either"
                if self.missing_obligations and self.calm is not None
                else ""
            )
            + ")",
            f"delivered more than once: {self.duplicates:,} notices ({self.duplicate_copies:,} "
            f"extra copies; {self.duplicates_explained:,} of them after a claim a killed worker "
            "left unrecorded)",
        ]
        out += [f"  missing: {m}" for m in self.missing_detail]
        out += [
            f"  received more than once with no unrecorded claim: {k}"
            for k in self.duplicates_unexplained
        ]
        if self.reconciliation is not None:
            out.append(f"reconciliation: {json.dumps(self.reconciliation, sort_keys=True)}")
        if self.calm is not None:
            out.append(f"calm run: {json.dumps(self.calm, sort_keys=True)}")
        out.append("seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in self.seconds.items()))
        if self.ok:
            out.append("OK: nothing missing")
        elif not self.settled:
            out.append("FAILED: the queue did not drain within the settle timeout")
        else:
            out.append("FAILED: notices are missing")
        return out


# -- the receivers, in a process of their own ---------------------------------------------------


@dataclass
class ReceiverStats:
    """What the receivers saw: accepted notices by key, faults injected, timing."""

    webhook: dict[str, int] = field(default_factory=dict)  # Idempotency-Key -> times accepted
    email: dict[str, int] = field(default_factory=dict)  # message key -> times accepted
    faults: dict[str, int] = field(default_factory=dict)
    requests: int = 0
    bad_signatures: int = 0
    first: float | None = None  # time.time() of the first accepted notice
    last: float | None = None

    @property
    def accepted(self) -> int:
        return sum(self.webhook.values()) + sum(self.email.values())


class _ReceiverState:
    def __init__(self, secret: bytes, seed: int, faults: Faults) -> None:
        self.secret = secret
        self.rng = random.Random(seed)  # noqa: S311 - fault injection, not security
        self.faults = faults
        self.lock = threading.Lock()
        self.stats = ReceiverStats()

    def http_fault(self) -> int | str:
        with self.lock:
            self.stats.requests += 1
            f = self.faults
            u = self.rng.random()
            if u < f.http_error:
                status = self.rng.choice((500, 502, 503))
                self._count(f"http {status}")
                return status
            if u < f.http_error + f.http_timeout:
                self._count("http timeout")
                return "timeout"
            return 200

    def delay(self) -> float:
        """How long to take over accepting this one."""
        with self.lock:
            latency = self.faults.latency
            return self.rng.uniform(0.0, 2 * latency) if latency > 0 else 0.0

    def smtp_fault(self, stage: str) -> str | None:
        """An SMTP answer that refuses, "timeout", or None to accept. Half of the refusals
        come at RCPT, half at DATA."""
        with self.lock:
            f = self.faults
            u = self.rng.random()
            if u < f.smtp_temporary / 2:
                reply = self.rng.choice(
                    (
                        "421 4.3.2 service shutting down",
                        "450 4.2.1 mailbox busy",
                        "451 4.3.0 try again later",
                    )
                )
            elif u < (f.smtp_temporary + f.smtp_permanent) / 2:
                reply = self.rng.choice(
                    ("550 5.1.1 mailbox unavailable", "554 5.7.1 transaction failed")
                )
            elif stage == "data" and u < (f.smtp_temporary + f.smtp_permanent) / 2 + f.smtp_timeout:
                self._count("smtp timeout")
                return "timeout"
            else:
                return None
            self._count(f"smtp {reply[:3]}")
            return reply

    def _count(self, kind: str) -> None:
        self.stats.faults[kind] = self.stats.faults.get(kind, 0) + 1

    def accept(self, receiver: str, key: str) -> None:
        now = time.time()
        with self.lock:
            seen = self.stats.webhook if receiver == "webhook" else self.stats.email
            seen[key] = seen.get(key, 0) + 1
            if self.stats.first is None:
                self.stats.first = now
            self.stats.last = now

    def snapshot(self, reset: bool) -> ReceiverStats:
        with self.lock:
            out = self.stats
            if reset:
                self.stats = ReceiverStats()
            else:
                out = replace(
                    out, webhook=dict(out.webhook), email=dict(out.email), faults=dict(out.faults)
                )
            return out


def _http_server(state: _ReceiverState) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            if len(body) < length:
                # the sender died between the headers and the end of the body (SIGKILL): a
                # broken request, not a signed one; the delivery is retried by another worker
                with state.lock:
                    state.stats.faults["truncated by a killed sender"] = (
                        state.stats.faults.get("truncated by a killed sender", 0) + 1
                    )
                self.close_connection = True
                return
            expected = "sha256=" + hmac.new(state.secret, body, hashlib.sha256).hexdigest()
            action: int | str
            if hmac.compare_digest(self.headers.get(SIGNATURE_HEADER, ""), expected):
                action = state.http_fault()
            else:
                with state.lock:
                    state.stats.bad_signatures += 1
                action = 401
            if action == "timeout":
                time.sleep(state.faults.hang_seconds)
                self.close_connection = True  # no answer at all
                return
            if action == 200:
                pause = state.delay()
                if pause:
                    time.sleep(pause)
                state.accept("webhook", self.headers.get("Idempotency-Key", ""))
            self.send_response(int(action))
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    return server


class _Mailbox:
    """aiosmtpd handler: accepts or refuses as the fault plan says; records what it accepts."""

    def __init__(self, state: _ReceiverState) -> None:
        self.state = state

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        refusal = self.state.smtp_fault("rcpt")
        if refusal is not None:
            return refusal
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        refusal = self.state.smtp_fault("data")
        if refusal == "timeout":
            await asyncio.sleep(self.state.faults.hang_seconds)
            return "451 4.4.2 too late"  # the client has given up by now
        if refusal is not None:
            return refusal
        pause = self.state.delay()
        if pause:
            await asyncio.sleep(pause)
        message = message_from_bytes(envelope.original_content or envelope.content or b"")
        self.state.accept("email", str(message.get(KEY_HEADER, "")))
        return "250 Message accepted for delivery"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _receivers_main(conn: Pipe, secret: bytes, seed: int, faults: Faults, smtp: bool) -> None:
    """The receivers' process: serve until told to stop (or the parent is gone)."""
    parent = os.getppid()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    state = _ReceiverState(secret, seed, faults)
    http = _http_server(state)
    thread = threading.Thread(target=http.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    controller: Any = None
    try:
        thread.start()
        smtp_port = 0
        if smtp:
            try:
                from aiosmtpd.controller import Controller

                smtp_port = _free_port()
                controller = Controller(_Mailbox(state), hostname="127.0.0.1", port=smtp_port)
                controller.start()
            except ModuleNotFoundError as e:
                conn.send(("error", f"the drill's SMTP server needs aiosmtpd ({e})"))
                return
            except Exception as e:  # tell the parent rather than let it wait
                controller = None
                conn.send(("error", f"the SMTP server did not start: {type(e).__name__}: {e}"))
                return
        conn.send(("ready", int(http.server_address[1]), smtp_port))
        while os.getppid() == parent:
            if not conn.poll(0.5):
                continue
            try:
                command, arg = conn.recv()
            except EOFError:
                break
            if command == "faults":
                with state.lock:
                    state.faults = arg
                conn.send(("ok", None))
            elif command == "stats":
                conn.send(("ok", state.snapshot(bool(arg))))
            else:  # stop
                conn.send(("ok", None))
                break
    finally:
        if controller is not None:
            with suppress(Exception):
                controller.stop()
        http.shutdown()
        http.server_close()


class Receivers:
    """The HTTP and SMTP receivers on loopback, in their own process (so that they are not
    what limits a benchmark, and so that a worker's crash cannot touch them)."""

    def __init__(
        self,
        *,
        seed: int = 0,
        faults: Faults | None = None,
        secret: bytes = SECRET,
        smtp: bool = True,
        ready_timeout: float = 30.0,
    ) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self.secret = secret
        self._process: SpawnProcess = ctx.Process(
            target=_receivers_main,
            args=(child, secret, seed, faults or Faults.none(), smtp),
            name="terugkeer-drill-receivers",
            daemon=True,
        )
        self._process.start()
        child.close()
        try:
            if not self._conn.poll(ready_timeout):
                raise DrillError(f"the receivers did not start within {ready_timeout} s")
            status, *ports = self._conn.recv()
            if status != "ready":
                raise DrillError(str(ports[0]))
        except BaseException:
            self.close()
            raise
        self.http_port, self.smtp_port = int(ports[0]), int(ports[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}{WEBHOOK_PATH}"

    def _ask(self, command: str, arg: Any, timeout: float = 60.0) -> Any:
        try:
            self._conn.send((command, arg))
            if not self._conn.poll(timeout):
                raise DrillError(f"the receivers did not answer [{command}] within {timeout} s")
            status, value = self._conn.recv()
        except (OSError, EOFError) as e:
            raise DrillError(f"the receivers' process is gone ({type(e).__name__})") from e
        if status != "ok":
            raise DrillError(f"the receivers answered [{command}] with {status}: {value}")
        return value

    def set_faults(self, faults: Faults) -> None:
        self._ask("faults", faults)

    def stats(self, *, reset: bool = False) -> ReceiverStats:
        found: ReceiverStats = self._ask("stats", reset)
        return found

    def close(self) -> None:
        if self._process.is_alive():
            with suppress(Exception):
                self._ask("stop", None, timeout=5.0)
            self._process.join(timeout=5)
        _end(self._process)
        self._conn.close()

    def __enter__(self) -> Receivers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _end(process: SpawnProcess, grace: float = 5.0) -> None:
    """Make sure ``process`` is gone: SIGTERM, then SIGKILL."""
    if process.is_alive():
        process.terminate()
        process.join(timeout=grace)
    if process.is_alive():
        process.kill()
        process.join(timeout=grace)


# -- the child processes ------------------------------------------------------------------------


@dataclass(frozen=True)
class _WorkerSpec:
    url: str
    index: int
    seed: int
    smtp_port: int
    secret: bytes
    policy: RetryPolicy
    limit: int
    poll_seconds: float
    check_interval: float
    webhook_timeout: float
    smtp_timeout: float
    log_level: str


class _Stop:
    """Set by SIGTERM, and when the parent is gone."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._parent = os.getppid()

    def is_set(self) -> bool:
        return self._event.is_set() or os.getppid() != self._parent

    def wait(self, timeout: float | None = None) -> bool:
        return self._event.wait(timeout) or self.is_set()

    def set(self) -> None:
        self._event.set()


def _worker_main(spec: _WorkerSpec) -> None:
    """A dispatcher process: the product's worker loop with the drill's channels."""
    from terugkeer.db.engine import make_engine
    from terugkeer.logs import configure
    from terugkeer.notify.delivery.channels import Channel
    from terugkeer.notify.delivery.channels.email import EmailChannel, SmtpSettings
    from terugkeer.notify.delivery.channels.portal import PortalChannel
    from terugkeer.notify.delivery.channels.webhook import WebhookChannel
    from terugkeer.notify.delivery.dispatch import Dispatcher, WorkerOptions, run_worker

    configure(spec.log_level)
    stop = _Stop()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    engine = make_engine(spec.url)
    channels: dict[str, Channel] = {
        "portal": PortalChannel(),
        "webhook": WebhookChannel(spec.secret, timeout=spec.webhook_timeout, environment="test"),
        "email": EmailChannel(
            SmtpSettings(
                host="127.0.0.1",
                port=spec.smtp_port,
                tls="none",
                timeout=spec.smtp_timeout,
                sender=SENDER,
                portal_url="https://terugkeer.drill.example",
            )
        ),
    }
    dispatcher = Dispatcher(
        engine,
        channels=channels,
        policy=spec.policy,
        rng=random.Random(spec.seed),  # noqa: S311 - jitter
        worker_id=f"drill-{spec.index}-{os.getpid()}",
    )
    options = WorkerOptions(
        interval_seconds=spec.check_interval,
        poll_seconds=spec.poll_seconds,
        limit=spec.limit,
        checks=spec.index == 0,
        policy=spec.policy,
    )
    try:
        run_worker(engine, stop=stop, options=options, dispatcher=dispatcher)
    finally:
        engine.dispose()


def _ingest_main(url: str, path: str, batch_size: int, log_level: str, conn: Pipe) -> None:
    """An ingest process: says ``ready`` once connected, ingests one chunk of the feed, then
    sends its counts."""
    from terugkeer.db.engine import make_engine
    from terugkeer.intake import ingest_files
    from terugkeer.logs import configure

    configure(log_level)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    engine = make_engine(url)
    try:
        with engine.connect() as c:
            c.execute(text("SELECT 1"))
        conn.send(("ready", None))
        result = ingest_files(engine, [Path(path)], batch_size=batch_size)
        conn.send(("done", {**result.as_json(), "unparked": result.unparked}))
    finally:
        engine.dispose()
        conn.close()


@dataclass
class _Ingesting:
    """One chunk being ingested by a child process."""

    process: SpawnProcess
    pipe: Pipe
    position: int  # in the plan
    kill: bool  # to be killed with SIGKILL halfway
    ready_at: float | None = None
    kill_at: float | None = None
    result: dict[str, int] | None = None

    def poll(self) -> None:
        while self.pipe.poll(0):
            try:
                kind, value = self.pipe.recv()
            except EOFError:
                return
            if kind == "ready":
                self.ready_at = time.monotonic()
            else:
                self.result = value


class _Group:
    """The dispatcher processes: started, killed, started again, stopped."""

    def __init__(self, config: DrillConfig, url: str, smtp_port: int, rng: random.Random) -> None:
        self.ctx = multiprocessing.get_context("spawn")
        self.config = config
        self.url = url
        self.smtp_port = smtp_port
        self.rng = rng
        self.procs: dict[int, SpawnProcess] = {}
        self.started: dict[int, float] = {}
        self.restart_at: dict[int, float] = {}
        self.unexpected = 0

    def start(self, index: int) -> None:
        c = self.config
        spec = _WorkerSpec(
            url=self.url,
            index=index,
            seed=self.rng.randrange(2**32),
            smtp_port=self.smtp_port,
            secret=SECRET,
            policy=c.policy,
            limit=c.limit,
            poll_seconds=c.poll_seconds,
            check_interval=c.check_interval,
            webhook_timeout=c.webhook_timeout,
            smtp_timeout=c.smtp_timeout,
            log_level=c.log_level,
        )
        p = self.ctx.Process(
            target=_worker_main, args=(spec,), name=f"terugkeer-drill-worker-{index}", daemon=True
        )
        p.start()
        self.procs[index] = p
        self.started[index] = time.monotonic()
        self.restart_at.pop(index, None)

    def start_all(self) -> None:
        for i in range(self.config.workers):
            self.start(i)

    def pick(self, min_age: float = 1.0) -> int | None:
        """A random running dispatcher that has been up for ``min_age`` seconds."""
        now = time.monotonic()
        ready = sorted(
            i
            for i, p in self.procs.items()
            if i not in self.restart_at and p.is_alive() and now - self.started[i] >= min_age
        )
        return self.rng.choice(ready) if ready else None

    def kill(self, index: int) -> None:
        p = self.procs[index]
        if p.pid is not None:
            with suppress(ProcessLookupError):
                os.kill(p.pid, signal.SIGKILL)
        p.join(timeout=10)
        self.restart_at[index] = time.monotonic() + self.rng.uniform(*self.config.restart_delay)

    def tick(self) -> None:
        """Start again what is due; a dispatcher that died by itself is counted and started."""
        now = time.monotonic()
        for i, p in list(self.procs.items()):
            if i in self.restart_at:
                if now >= self.restart_at[i]:
                    self.start(i)
            elif not p.is_alive():
                self.unexpected += 1
                self.start(i)

    def stop(self, grace: float = 30.0) -> None:
        for p in self.procs.values():
            if p.is_alive():
                p.terminate()  # SIGTERM: finish the round, then stop
        deadline = time.monotonic() + grace
        for p in self.procs.values():
            p.join(timeout=max(0.1, deadline - time.monotonic()))
            _end(p)


# -- the feed -----------------------------------------------------------------------------------


@dataclass
class _Feed:
    chunks: list[Path]
    lines: int
    messy: dict[str, int]


def prepare_feed(folder: Path, config: DrillConfig, rng: random.Random) -> _Feed:
    """A messy synthetic year with at least ``config.events`` lines, cut into chunks."""
    from terugkeer.synth import generate

    synth_seed = rng.randrange(2**31)
    releases = max(20, math.ceil(config.events / 2.9))
    for _ in range(10):
        summary = generate(folder / "synth", releases=releases, seed=synth_seed, messy=config.messy)
        detention = summary.files["detention.jsonl"].read_text("utf-8").splitlines()
        victims = summary.files["victims.jsonl"].read_text("utf-8").splitlines()
        if len(detention) + len(victims) >= config.events:
            break
        releases = math.ceil(
            releases * config.events / max(1, len(detention) + len(victims)) * 1.05
        )
    else:  # pragma: no cover - the generator always reaches the size within a few tries
        raise DrillError(f"could not synthesise {config.events} events")
    lines = [line for line in detention if line.strip()]
    # the victims' feed arrives independently: its lines land anywhere in the stream
    for line in victims:
        if line.strip():
            lines.insert(rng.randrange(len(lines) + 1), line)
    n = min(config.chunks, len(lines))
    size = math.ceil(len(lines) / n)
    paths: list[Path] = []
    for k in range(n):
        path = folder / f"chunk-{k:03d}.jsonl"
        path.write_text("\n".join(lines[k * size : (k + 1) * size]) + "\n", "utf-8")
        paths.append(path)
    messy = {
        "duplicated": int(summary.messy.get("duplicate", 0)),
        "out_of_order": int(summary.messy.get("out_of_order", 0)),
        "malformed": int(summary.messy.get("malformed", 0)),
    }
    return _Feed(paths, len(lines), messy)


def _plan(chunks: int, rng: random.Random) -> list[int]:
    """The order in which chunks are sent: two neighbours swapped, one sent again at the end."""
    order = list(range(chunks))
    if chunks >= 2:
        k = rng.randrange(chunks - 1)
        order[k], order[k + 1] = order[k + 1], order[k]
    order.append(rng.randrange(chunks))
    return order


# -- databases ----------------------------------------------------------------------------------


@contextmanager
def drill_database(url: str | None, server: str = DEFAULT_SERVER) -> Iterator[str]:
    """``url`` as it is, or a temporary database on the PostgreSQL ``server`` (dropped after)."""
    if url is not None:
        if make_url(url).get_backend_name() != "postgresql":
            raise DrillError("the drill runs several dispatchers: it needs PostgreSQL")
        yield url
        return
    parsed = make_url(server)
    if parsed.get_backend_name() != "postgresql":
        raise DrillError(f"not a PostgreSQL server URL: {parsed.render_as_string()}")
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    admin = create_engine(parsed, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5})
    name = f"terugkeer_drill_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as e:
        admin.dispose()
        raise DrillError(
            f"cannot create a database on {parsed.render_as_string()}: {type(e).__name__}: {e}"
        ) from e
    try:
        yield parsed.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _route(engine: Engine, receiver_url: str, rng: random.Random) -> None:
    """Who is reached how: a mix of webhook, e-mail and portal per recipient and municipality."""
    from terugkeer.domain.refdata import refdata

    rows: list[dict[str, Any]] = [
        {"recipient_kind": "idv", "recipient_ref": "*", "channel": "webhook", "address": receiver_url},
        {"recipient_kind": "victim", "recipient_ref": "*", "channel": "webhook", "address": receiver_url},
        {"recipient_kind": "mayor", "recipient_ref": "*", "channel": "webhook", "address": receiver_url},
        {"recipient_kind": "nazorg", "recipient_ref": "*", "channel": "email", "address": "nazorg@gemeente.drill.example"},
    ]  # fmt: skip
    addresses = {"webhook": receiver_url, "portal": None}
    for code in sorted(refdata().municipalities):
        mayor = rng.choice(("webhook", "email"))
        rows.append(
            {
                "recipient_kind": "mayor",
                "recipient_ref": code,
                "channel": mayor,
                "address": addresses.get(mayor, f"oov.{code.lower()}@gemeente.drill.example"),
            }
        )
        nazorg = rng.choices(("webhook", "email", "portal"), weights=(4, 4, 2))[0]
        rows.append(
            {
                "recipient_kind": "nazorg",
                "recipient_ref": code,
                "channel": nazorg,
                "address": addresses.get(nazorg, f"nazorg.{code.lower()}@gemeente.drill.example"),
            }
        )
    with engine.begin() as conn:
        conn.execute(insert(notify_endpoints), [{**r, "priority": 1} for r in rows])


def _pending(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count()).select_from(deliveries).where(deliveries.c.status == "pending")
            ).scalar_one()
        )


def _due(engine: Engine) -> bool:
    """Are notices due (so that a dispatcher is probably in the middle of a round)?"""
    with engine.connect() as conn:
        found = conn.execute(
            select(deliveries.c.id)
            .where(
                deliveries.c.status == "pending",
                deliveries.c.next_attempt_at <= datetime.now(UTC),
            )
            .limit(1)
        ).first()
    return found is not None


def _wait_drained(engine: Engine, group: _Group, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        group.tick()
        if _pending(engine) == 0:
            return True
        time.sleep(0.25)
    return False


def _claims(conn: Connection, ids: list[int] | None = None) -> list[Any]:
    """Per delivery: id, key, channel, status, claims (``attempts``) and recorded attempts."""
    recorded = (
        select(delivery_attempts.c.delivery_id, func.count().label("n"))
        .group_by(delivery_attempts.c.delivery_id)
        .subquery()
    )
    stmt = select(
        deliveries.c.id,
        deliveries.c.idempotency_key,
        deliveries.c.channel,
        deliveries.c.status,
        deliveries.c.attempts,
        func.coalesce(recorded.c.n, 0).label("rows"),
    ).outerjoin(recorded, recorded.c.delivery_id == deliveries.c.id)
    if ids is not None:
        stmt = stmt.where(among(conn, deliveries.c.id, ids))
    return list(conn.execute(stmt).all())


def _operator(engine: Engine) -> tuple[int, int, dict[int, tuple[int, int]]]:
    """What an operator does after the receivers are repaired: send every dead letter again and
    confirm every burst the feed watch held. Returns the numbers of dead letters and bursts,
    and per dead letter (claims left unrecorded, recorded attempts) before it was queued again
    (sending it again starts its claim count anew)."""
    from terugkeer.notify.assurance.watch import decide_burst
    from terugkeer.notify.delivery.dispatch import retry_dead

    with engine.connect() as conn:
        dead = list(
            conn.execute(
                select(deliveries.c.id)
                .where(deliveries.c.status == "dead")
                .order_by(deliveries.c.id)
            ).scalars()
        )
        bursts = list(
            conn.execute(
                select(alerts.c.id).where(alerts.c.kind == "burst", alerts.c.status == "open")
            ).scalars()
        )
        before = {
            int(r.id): (max(0, int(r.attempts) - int(r.rows)), int(r.rows))
            for r in (_claims(conn, dead) if dead else [])
        }
    for delivery_id in dead:
        retry_dead(engine, delivery_id)
    for alert_id in bursts:
        decide_burst(engine, alert_id, confirm=True, by=OPERATOR)
    return len(dead), len(bursts), before


def _calm_run(
    feed: _Feed, config: DrillConfig, server: str, report: DrillReport, tell: Callable[[str], None]
) -> set[str] | None:
    """The same chunks ingested once each, in order, by one process, with nothing failing, into
    a second temporary database: the keys of the obligations (not voided) that creates. What
    the drill lacks of these was lost to its faults or to the order the feed came in."""
    from terugkeer.db.engine import make_engine
    from terugkeer.intake import ingest_files
    from terugkeer.migrations import upgrade

    try:
        with drill_database(None, server) as calm_url:
            engine = make_engine(calm_url)
            try:
                upgrade(engine)
                ingest_files(engine, feed.chunks, batch_size=config.batch_size)
                with engine.connect() as conn:
                    keys = set(
                        conn.execute(
                            select(obligations.c.key).where(obligations.c.status != "voided")
                        ).scalars()
                    )
            finally:
                engine.dispose()
    except DrillError as e:
        report.calm = {"error": str(e)}
        return None
    tell(f"calm run: {len(keys):,} obligations from the same feed without faults")
    return keys


def _reconcile() -> Callable[..., Any] | None:
    """``terugkeer.notify.assurance.reconcile.reconcile`` when it is installed."""
    try:
        module = importlib.import_module("terugkeer.notify.assurance.reconcile")
    except ModuleNotFoundError as e:
        if e.name == "terugkeer.notify.assurance.reconcile":
            return None
        raise
    fn = getattr(module, "reconcile", None)
    return fn if callable(fn) else None


# -- the drill ----------------------------------------------------------------------------------


def new_seed() -> int:
    return random.SystemRandom().randrange(2**31)


def run_drill(
    config: DrillConfig,
    *,
    url: str | None = None,
    server: str = DEFAULT_SERVER,
    say: Callable[[str], None] | None = None,
) -> DrillReport:
    """Run the drill; ``url``: an empty PostgreSQL database to use instead of a temporary one
    on ``server``. ``say`` receives a line at each step. Interrupted (Ctrl-C, SIGTERM), it
    stops its processes and drops its temporary databases before it lets go."""
    with _sigterm_interrupts():
        return _run(config, url, server, say)


@contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """In the main thread: SIGTERM raises KeyboardInterrupt, so that cleanup runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run(
    config: DrillConfig, url: str | None, server: str, say: Callable[[str], None] | None
) -> DrillReport:
    from terugkeer.db.engine import make_engine
    from terugkeer.migrations import upgrade

    tell = say or (lambda _line: None)
    rng = random.Random(config.seed)  # noqa: S311 - the drill's plan, not security
    report = DrillReport(seed=config.seed, config=_config_json(config))
    tell(f"drill: seed {config.seed}")
    clock = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="terugkeer-drill-") as tmp:
        feed = prepare_feed(Path(tmp), config, rng)
        report.feed = {"lines": feed.lines, "chunks": len(feed.chunks), "resent": 1, **feed.messy}
        report.seconds["synthesise"] = time.monotonic() - clock
        tell(
            f"feed: {feed.lines:,} lines in {len(feed.chunks)} chunks "
            f"({report.seconds['synthesise']:.1f} s)"
        )
        with drill_database(url, server) as db_url:
            engine = make_engine(db_url)
            try:
                upgrade(engine)
                with engine.connect() as conn:
                    used = conn.execute(select(func.count()).select_from(feed_events)).scalar_one()
                    used += conn.execute(select(func.count()).select_from(obligations)).scalar_one()
                if used:
                    raise DrillError("the drill needs an empty database (it counts everything)")
                with Receivers(seed=rng.randrange(2**32), faults=config.faults) as receivers:
                    _route(engine, receivers.url, rng)
                    group = _Group(config, db_url, receivers.smtp_port, rng)
                    try:
                        retried = _drill(
                            config, engine, db_url, feed, group, receivers, rng, report, tell
                        )
                    finally:
                        group.stop()
                    report.unexpected_exits = group.unexpected
                    stats = receivers.stats()
                calm: set[str] | None = None
                if config.control:
                    clock = time.monotonic()
                    calm = _calm_run(feed, config, server, report, tell)
                    report.seconds["calm run"] = time.monotonic() - clock
                clock = time.monotonic()
                _count(engine, stats, report, retried, calm)
                report.seconds["count"] = time.monotonic() - clock
            finally:
                engine.dispose()
    return report


def _drill(
    config: DrillConfig,
    engine: Engine,
    url: str,
    feed: _Feed,
    group: _Group,
    receivers: Receivers,
    rng: random.Random,
    report: DrillReport,
    tell: Callable[[str], None],
) -> dict[int, tuple[int, int]]:
    """Feed, kill and fail; then settle. Returns what :func:`_operator` found."""
    ctx = multiprocessing.get_context("spawn")
    group.start_all()
    tell(f"dispatchers: {config.workers} processes started")

    # -- the feed arrives while dispatchers are killed -----------------------------------------
    started = time.monotonic()
    queue = _plan(len(feed.chunks), rng)
    to_kill = set(rng.sample(range(len(queue)), min(config.ingest_kills, len(queue))))
    totals: Counter[str] = Counter()
    current: _Ingesting | None = None
    took = 0.5  # how long the last chunk's ingest took, once connected
    position = 0  # in queue
    pause_until = started
    next_kill = started + rng.uniform(*config.kill_gap)
    kill_deadline = next_kill + config.kill_patience
    deadline = started + config.active_timeout
    try:
        while position < len(queue) or current is not None or report.kills < config.kills:
            now = time.monotonic()
            if now > deadline:
                raise DrillError(
                    f"feeding and killing took longer than {config.active_timeout} s "
                    f"(chunk {position} of {len(queue)}, {report.kills} kills)"
                )
            if current is None and position < len(queue) and now >= pause_until:
                chunk = feed.chunks[queue[position]]
                mine, theirs = ctx.Pipe(duplex=False)
                p = ctx.Process(
                    target=_ingest_main,
                    args=(url, str(chunk), config.batch_size, config.log_level, theirs),
                    name="terugkeer-drill-ingest",
                    daemon=True,
                )
                p.start()
                theirs.close()
                current = _Ingesting(p, mine, position, kill=position in to_kill)
                to_kill.discard(position)
            if current is not None:
                current.poll()
                p = current.process
                if current.kill and current.kill_at is None and current.ready_at is not None:
                    # somewhere in the middle of its transactions, going by the last chunk
                    current.kill_at = current.ready_at + rng.uniform(0.05, 0.9) * took
                if current.kill_at is not None and now >= current.kill_at and p.is_alive():
                    if p.pid is not None:
                        with suppress(ProcessLookupError):
                            os.kill(p.pid, signal.SIGKILL)
                    p.join(timeout=10)
                    current.pipe.close()
                    report.ingest_kills += 1
                    tell(
                        f"kill: ingest of chunk {queue[current.position]} after "
                        f"{now - (current.ready_at or now):.2f} s (SIGKILL); the chunk is sent again"
                    )
                    current = None  # the same position again: the sender sends the chunk again
                    pause_until = now + rng.uniform(*config.chunk_gap)
                elif not p.is_alive():
                    p.join()
                    current.poll()
                    current.pipe.close()
                    if p.exitcode != 0 or current.result is None:
                        raise DrillError(
                            f"ingest of chunk {queue[current.position]} failed (exit {p.exitcode})"
                        )
                    totals.update(current.result)
                    if current.ready_at is not None:
                        took = max(0.05, now - current.ready_at)
                    if current.kill:
                        to_kill.add(position + 1)  # it finished before its kill: the next one
                    position += 1
                    current = None
                    pause_until = now + rng.uniform(*config.chunk_gap)
            if report.kills < config.kills and now >= next_kill:
                # a kill hurts most in the middle of a round: when no notice is due, wait a
                # little (at most ``kill_patience`` seconds) for some to be
                victim = group.pick()
                if victim is None:
                    next_kill = now + 0.05
                elif now < kill_deadline and not _due(engine):
                    next_kill = now + rng.uniform(0.05, 0.2)
                else:
                    pid = group.procs[victim].pid
                    group.kill(victim)
                    report.kills += 1
                    tell(
                        f"kill {report.kills}/{config.kills}: dispatcher {victim} (pid {pid}, SIGKILL)"
                    )
                    next_kill = now + rng.uniform(*config.kill_gap)
                    kill_deadline = next_kill + config.kill_patience
            group.tick()
            time.sleep(0.02)
    finally:
        if current is not None:  # interrupted: not left running
            _end(current.process)
            current.pipe.close()
    report.ingest = dict(totals)
    report.seconds["feed and kill"] = time.monotonic() - started
    tell(
        f"fed: read {totals['read']:,}, applied {totals['applied']:,}, duplicates "
        f"{totals['duplicates']:,}, quarantined {totals['quarantined']:,} "
        f"({report.seconds['feed and kill']:.1f} s)"
    )

    # -- settle ---------------------------------------------------------------------------------
    started = time.monotonic()
    drained = _wait_drained(engine, group, config.settle_timeout)
    receivers.set_faults(Faults.none())  # the receivers are repaired
    report.dead_letters, report.bursts_confirmed, retried = _operator(engine)
    drained = _wait_drained(engine, group, config.settle_timeout) and drained
    from terugkeer.notify.assurance.escalate import escalate

    for _ in range(3):  # the check cycle's outbox check, until it finds nothing to queue
        counts = escalate(engine)
        queued = counts.requeued + counts.corrections
        report.checks_queued += queued
        drained = _wait_drained(engine, group, config.settle_timeout) and drained
        if not queued and not counts.skipped:
            break
        if counts.skipped:  # the first dispatcher is running its own check cycle
            time.sleep(1.0)
    report.settled = drained
    report.seconds["settle"] = time.monotonic() - started
    tell(
        f"settled: {'yes' if drained else 'NO'}; dead letters sent again: {report.dead_letters} "
        f"({report.seconds['settle']:.1f} s)"
    )
    return retried


def _count(
    engine: Engine,
    seen: ReceiverStats,
    report: DrillReport,
    retried: dict[int, tuple[int, int]],
    calm: set[str] | None,
) -> None:
    """The figures: from the database, the receivers' records, the reconciliation and the calm
    run."""
    report.faults = dict(seen.faults)
    with engine.connect() as conn:
        report.ingest["stored_events"] = int(
            conn.execute(select(func.count()).select_from(feed_events)).scalar_one()
        )
        by_status = {
            str(s): int(n)
            for s, n in conn.execute(
                select(obligations.c.status, func.count()).group_by(obligations.c.status)
            ).all()
        }
        notices: dict[str, dict[str, int]] = {}
        for channel, status, n in conn.execute(
            select(deliveries.c.channel, deliveries.c.status, func.count()).group_by(
                deliveries.c.channel, deliveries.c.status
            )
        ).all():
            notices.setdefault(str(channel), {})[str(status)] = int(n)
        claims = _claims(conn)
        open_alerts = set(
            conn.execute(
                select(alerts.c.key).where(alerts.c.status == "open", alerts.c.kind == "unresolved")
            ).scalars()
        )
        unresolved_ids = list(
            conn.execute(
                select(obligations.c.id).where(obligations.c.status == "unresolved")
            ).scalars()
        )
        stored = set(
            conn.execute(
                select(obligations.c.key).where(obligations.c.status != "voided")
            ).scalars()
        )
        undelivered = conn.execute(
            select(obligations.c.id, obligations.c.status, obligations.c.rule_id).where(
                obligations.c.status.in_(("open", "sent", "held"))
            )
        ).all()
    report.obligations = by_status
    report.notices = notices
    report.delivered = sum(by_status.get(s, 0) for s in DELIVERED)
    report.unresolved = len(unresolved_ids)

    missing: list[str] = []
    for r in undelivered:
        missing.append(f"obligation {r.id} ({r.rule_id}) is {r.status}, not delivered")
    for oid in unresolved_ids:
        if f"unresolved:{oid}" not in open_alerts:
            missing.append(f"obligation {oid} is unresolved without an alert for the operator")
    cut: dict[str, int] = {}
    received = {"webhook": seen.webhook, "email": seen.email}
    for delivery_id, key, channel, status, attempts, rows in claims:
        # claims a killed worker never recorded; a dead letter sent again counts anew
        earlier, rows_then = retried.get(delivery_id, (0, 0))
        cut[key] = earlier + max(0, int(attempts) - (int(rows) - rows_then))
        if status == "delivered" and channel in received and key not in received[channel]:
            missing.append(
                f"notice {key} is recorded as delivered but never reached the {channel} receiver"
            )
    report.claims_cut = sum(cut.values())
    known = {r.idempotency_key for r in claims}
    phantom = [k for got in received.values() for k in got if k not in known]
    for key in phantom[:5]:
        missing.append(f"the receivers got a notice with an unknown key [{key}]")
    if seen.bad_signatures:
        missing.append(f"{seen.bad_signatures} webhook posts had a bad signature")
    report.missing_delivery = len(missing)

    report.required = sum(n for s, n in by_status.items() if s != "voided")
    report.required_source = "obligations table (reconciliation not installed)"
    reconcile = _reconcile()
    if reconcile is not None:
        try:
            result = reconcile(engine)
        except Exception as e:  # the check is someone else's code: report, do not crash
            report.reconciliation = {"error": f"{type(e).__name__}: {str(e)[:300]}"}
            report.required_source = "obligations table (the reconciliation failed)"
        else:
            report.reconciliation = {"required": result.required, **dict(result.counts)}
            report.required = int(result.required)
            report.required_source = "independent reconciliation"
            report.missing_obligations = len(result.missing)
            for gap in result.missing:
                if calm is not None and gap.key not in calm:
                    report.missing_also_calm += 1
                missing.append(f"reconciliation: {gap.message()}")
            examples = [g.message() for g in (*result.extra, *result.recipient_differs)]
            report.reconciliation["examples"] = examples[:5]
    if calm is not None:
        lost = sorted(calm - stored)
        more = sorted(stored - calm)
        report.calm = {
            "obligations": len(calm),
            "only_in_calm_run": len(lost),
            "only_in_drill": len(more),
            "examples_only_in_calm_run": lost[:10],
            "examples_only_in_drill": more[:10],
        }
    report.missing = len(missing)
    report.missing_detail = missing[:20]
    report.received = {"webhook": sum(seen.webhook.values()), "email": sum(seen.email.values())}
    dups = {k: n for got in received.values() for k, n in got.items() if n > 1}
    report.duplicates = len(dups)
    report.duplicate_copies = sum(n - 1 for n in dups.values())
    report.duplicates_explained = sum(1 for k in dups if cut.get(k, 0) > 0)
    report.duplicates_unexplained = sorted(k for k in dups if cut.get(k, 0) == 0)[:20]


def _config_json(config: DrillConfig) -> dict[str, Any]:
    out = asdict(config)
    out["policy"] = asdict(config.policy)
    out["messy"] = asdict(config.messy)
    return out


__all__ = [
    "DEFAULT_SERVER",
    "SECRET",
    "DrillConfig",
    "DrillError",
    "DrillReport",
    "Faults",
    "ReceiverStats",
    "Receivers",
    "drill_database",
    "new_seed",
    "prepare_feed",
    "run_drill",
]
