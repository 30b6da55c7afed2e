"""Running the drill: feed the messy chunks while dispatchers and ingest processes are killed
and the receivers fail, let it settle as an operator would, then count."""

from __future__ import annotations

import random
import signal
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select

from terugkeer.detention.tables import feed_events
from terugkeer.notify.tables import obligations
from tools.drill.chaos import Ingesting, WorkerGroup, end_process, kill_process
from tools.drill.config import DEFAULT_SERVER, DrillConfig, DrillError, Faults, config_json
from tools.drill.receivers import Receivers
from tools.drill.report import DrillReport, tally
from tools.drill.scenario import (
    Feed,
    act_as_operator,
    calm_run,
    drill_database,
    notices_due,
    prepare_feed,
    route_endpoints,
    send_order,
    wait_drained,
)


def new_seed() -> int:
    """A seed for a drill nobody asked to repeat."""
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
    report = DrillReport(seed=config.seed, config=config_json(config))
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
                    route_endpoints(engine, receivers.url, rng)
                    group = WorkerGroup(config, db_url, receivers.smtp_port, rng)
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
                    calm = calm_run(feed, config, server, report, tell)
                    report.seconds["calm run"] = time.monotonic() - clock
                clock = time.monotonic()
                tally(engine, stats, report, retried, calm)
                report.seconds["count"] = time.monotonic() - clock
            finally:
                engine.dispose()
    return report


def _drill(
    config: DrillConfig,
    engine: Engine,
    url: str,
    feed: Feed,
    group: WorkerGroup,
    receivers: Receivers,
    rng: random.Random,
    report: DrillReport,
    tell: Callable[[str], None],
) -> dict[int, tuple[int, int]]:
    """Feed, kill and fail; then settle. Returns what :func:`act_as_operator` found."""
    group.start_all()
    tell(f"dispatchers: {config.workers} processes started")
    _feed_and_kill(config, engine, url, feed, group, rng, report, tell)
    return _settle(config, engine, group, receivers, report, tell)


def _feed_and_kill(
    config: DrillConfig,
    engine: Engine,
    url: str,
    feed: Feed,
    group: WorkerGroup,
    rng: random.Random,
    report: DrillReport,
    tell: Callable[[str], None],
) -> None:
    """The feed arrives, chunk by chunk, while dispatchers and ingest processes are killed."""
    started = time.monotonic()
    queue = send_order(len(feed.chunks), rng)
    to_kill = set(rng.sample(range(len(queue)), min(config.ingest_kills, len(queue))))
    totals: Counter[str] = Counter()
    current: Ingesting | None = None
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
                current = Ingesting.start(url, chunk, config, position, position in to_kill)
                to_kill.discard(position)
            if current is not None:
                current.poll()
                p = current.process
                if current.kill and current.kill_at is None and current.ready_at is not None:
                    # somewhere in the middle of its transactions, going by the last chunk
                    current.kill_at = current.ready_at + rng.uniform(0.05, 0.9) * took
                if current.kill_at is not None and now >= current.kill_at and p.is_alive():
                    kill_process(p)
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
                elif now < kill_deadline and not notices_due(engine):
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
            end_process(current.process)
            current.pipe.close()
    report.ingest = dict(totals)
    report.seconds["feed and kill"] = time.monotonic() - started
    tell(
        f"fed: read {totals['read']:,}, applied {totals['applied']:,}, duplicates "
        f"{totals['duplicates']:,}, quarantined {totals['quarantined']:,} "
        f"({report.seconds['feed and kill']:.1f} s)"
    )


def _settle(
    config: DrillConfig,
    engine: Engine,
    group: WorkerGroup,
    receivers: Receivers,
    report: DrillReport,
    tell: Callable[[str], None],
) -> dict[int, tuple[int, int]]:
    """The dispatchers drain the queue; the receivers are repaired; the operator sends the dead
    letters again and confirms held bursts; the check cycle's outbox check queues what is
    still missing. Returns what :func:`act_as_operator` found."""
    from terugkeer.notify.assurance.escalate import escalate

    started = time.monotonic()
    drained = wait_drained(engine, group, config.settle_timeout)
    receivers.set_faults(Faults.none())  # the receivers are repaired
    report.dead_letters, report.bursts_confirmed, retried = act_as_operator(engine)
    drained = wait_drained(engine, group, config.settle_timeout) and drained
    for _ in range(3):  # the check cycle's outbox check, until it finds nothing to queue
        counts = escalate(engine)
        queued = counts.requeued + counts.corrections
        report.checks_queued += queued
        drained = wait_drained(engine, group, config.settle_timeout) and drained
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
