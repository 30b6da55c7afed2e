"""The receivers, on loopback in a process of their own: an HTTP receiver that checks each
webhook's HMAC signature and records its ``Idempotency-Key``, and an SMTP server (aiosmtpd, a
development dependency) that records each message's idempotency header. Both fail at random
as :class:`~tools.drill.config.Faults` says. The dispatch benchmark uses them too."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import multiprocessing
import os
import random
import signal
import threading
import time
from contextlib import suppress
from dataclasses import dataclass, field, replace
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from multiprocessing.connection import Connection as Pipe
from multiprocessing.context import SpawnProcess
from typing import Any

from terugkeer.notify.delivery.channels.email import KEY_HEADER
from terugkeer.notify.delivery.channels.webhook import SIGNATURE_HEADER
from tools.drill.chaos import end_process
from tools.drill.config import SECRET, WEBHOOK_PATH, DrillError, Faults


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


class ReceiverState:
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
                self.count(f"http {status}")
                return status
            if u < f.http_error + f.http_timeout:
                self.count("http timeout")
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
                self.count("smtp timeout")
                return "timeout"
            else:
                return None
            self.count(f"smtp {reply[:3]}")
            return reply

    def count(self, kind: str) -> None:
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


def http_server(state: ReceiverState) -> ThreadingHTTPServer:
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

    def __init__(self, state: ReceiverState) -> None:
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
    state = ReceiverState(secret, seed, faults)
    http = http_server(state)
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
        end_process(self._process)
        self._conn.close()

    def __enter__(self) -> Receivers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
