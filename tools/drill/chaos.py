"""The processes the drill starts and kills: dispatchers running the product's worker loop,
ingest processes (one per chunk of the feed), and the killer (SIGKILL at random moments, a
dispatcher started again a moment later)."""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import time
from contextlib import suppress
from dataclasses import dataclass
from multiprocessing.connection import Connection as Pipe
from multiprocessing.context import SpawnProcess
from pathlib import Path

from sqlalchemy import text

from terugkeer.notify.delivery.dispatch import RetryPolicy
from tools.drill.config import SECRET, SENDER, DrillConfig


def kill_process(process: SpawnProcess) -> None:
    """SIGKILL: no handler runs, no transaction is finished, nothing is recorded."""
    if process.pid is not None:
        with suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGKILL)
    process.join(timeout=10)


def end_process(process: SpawnProcess, grace: float = 5.0) -> None:
    """Make sure ``process`` is gone: SIGTERM, then SIGKILL."""
    if process.is_alive():
        process.terminate()
        process.join(timeout=grace)
    if process.is_alive():
        process.kill()
        process.join(timeout=grace)


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


def _worker_main(spec: _WorkerSpec) -> None:
    """A dispatcher process: the product's worker loop with the drill's channels."""
    from terugkeer.db.engine import make_engine
    from terugkeer.logs import configure
    from terugkeer.notify.delivery.channels import Channel
    from terugkeer.notify.delivery.channels.email import EmailChannel, SmtpSettings
    from terugkeer.notify.delivery.channels.portal import PortalChannel
    from terugkeer.notify.delivery.channels.webhook import WebhookChannel
    from terugkeer.notify.delivery.dispatch import Dispatcher
    from terugkeer.notify.worker import ChildStop, WorkerOptions, run_worker

    configure(spec.log_level)
    stop = ChildStop()
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
class Ingesting:
    """One chunk being ingested by a child process."""

    process: SpawnProcess
    pipe: Pipe
    position: int  # in the plan
    kill: bool  # to be killed with SIGKILL halfway
    ready_at: float | None = None
    kill_at: float | None = None
    result: dict[str, int] | None = None

    @classmethod
    def start(
        cls, url: str, chunk: Path, config: DrillConfig, position: int, kill: bool
    ) -> Ingesting:
        """A process of its own ingesting ``chunk`` into the database at ``url``."""
        ctx = multiprocessing.get_context("spawn")
        mine, theirs = ctx.Pipe(duplex=False)
        process = ctx.Process(
            target=_ingest_main,
            args=(url, str(chunk), config.batch_size, config.log_level, theirs),
            name="terugkeer-drill-ingest",
            daemon=True,
        )
        process.start()
        theirs.close()
        return cls(process, mine, position, kill=kill)

    def poll(self) -> None:
        """Take in what the process has said: ``ready`` (connected) or its counts."""
        while self.pipe.poll(0):
            try:
                kind, value = self.pipe.recv()
            except EOFError:
                return
            if kind == "ready":
                self.ready_at = time.monotonic()
            else:
                self.result = value


class WorkerGroup:
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
        kill_process(self.procs[index])
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
            end_process(p)
