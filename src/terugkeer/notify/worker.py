"""The worker: the dispatcher running continuously, and the periodic checks between its rounds.

The checks are registered here, explicitly (:data:`CHECKS`): escalation of unacknowledged and
unresolved obligations, the feed watch, and the independent reconciliation, each with its
interval (by default the worker's check cycle, :attr:`WorkerOptions.interval_seconds`). This
module sits at notify's root, above delivery and assurance, so that neither imports the other:
the dispatcher (:mod:`terugkeer.notify.delivery.dispatch`) knows nothing of the checks.

One process (:func:`run_worker_process`) or a group of processes sharing one PostgreSQL
database (:func:`run_workers`, only the first runs the checks).
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.process
import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, is_dataclass, replace
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy import Engine

from terugkeer.db.engine import refresh_statistics
from terugkeer.notify.assurance.escalate import escalate
from terugkeer.notify.assurance.reconcile import reconcile
from terugkeer.notify.assurance.watch import check_freshness
from terugkeer.notify.delivery import tallies
from terugkeer.notify.delivery.dispatch import (
    DispatchCounts,
    Dispatcher,
    RetryPolicy,
    StopSignal,
)
from terugkeer.security.actor import Actor
from terugkeer.security.audit import checkpoint_check

log = structlog.get_logger(__name__)


# -- the periodic checks ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Check:
    """A periodic check: its name (in the results and the log), what it runs (with the engine
    and the time of the cycle), and how often; ``interval_seconds`` None: every check cycle.
    ``run`` is a module-level function, so that a worker process group can pickle it."""

    name: str
    run: Callable[[Engine, datetime], Any]
    interval_seconds: float | None = None


def _escalation(engine: Engine, now: datetime) -> Any:
    return escalate(engine, now=now)


def _feed_watch(engine: Engine, now: datetime) -> Any:
    return check_freshness(engine, now=now)


def _reconciliation(engine: Engine, now: datetime) -> Any:
    return reconcile(engine, now=now)


def _statistics(engine: Engine, _now: datetime) -> dict[str, list[str]]:
    """The tables analysed (PostgreSQL): the planner's statistics of the whole store kept up to
    date where nothing else writes in bulk (the portal's audit rows, the deliveries, imports),
    whether autovacuum runs or not (db.engine.refresh_statistics)."""
    return {"analysed": refresh_statistics(engine)}


# The worker's checks, in the order they run.
CHECKS: tuple[Check, ...] = (
    Check("escalation", _escalation),
    Check("feed_watch", _feed_watch),
    Check("reconciliation", _reconciliation),
    Check("audit_checkpoint", checkpoint_check),  # the audit log's head, outside the database
    Check("statistics", _statistics),  # the planner's statistics (PostgreSQL)
    Check("inbox_tallies", tallies.fold_check),  # each inbox's count in one row again
)


@dataclass(frozen=True)
class WorkerOptions:
    interval_seconds: float = 300.0  # the check cycle: how often a check without its own runs
    poll_seconds: float = 1.0  # how often an idle dispatcher looks for due notices
    limit: int = 100  # deliveries per claim
    checks: bool = True  # run the check cycle (in a group of processes, only the first does)
    policy: RetryPolicy = field(default_factory=RetryPolicy)


def run_checks(
    engine: Engine, now: datetime | None = None, checks: Sequence[Check] = CHECKS
) -> dict[str, Any]:
    """One check cycle: each of ``checks`` in turn (by default :data:`CHECKS`). A failing check
    is logged and reported in the result (``errors``); the others still run."""
    now = now or datetime.now(UTC)
    results: dict[str, Any] = {"errors": {}}
    for check in checks:
        try:
            results[check.name] = _summary(check.run(engine, now))
        except Exception as e:  # one failing check must not stop the others
            log.exception("check failed", check=check.name, error=type(e).__name__)
            results["errors"][check.name] = f"{type(e).__name__}: {e}"[:500]
    log.info("check cycle", **{k: v for k, v in results.items() if v})
    return results


def _summary(outcome: Any) -> Any:
    """A short form of a check's result: its counts when it has them."""
    if isinstance(outcome, dict):  # already short
        return outcome
    counts = getattr(outcome, "counts", None)
    if isinstance(counts, dict):
        return counts
    if hasattr(outcome, "as_json"):
        return outcome.as_json()
    if is_dataclass(outcome) and not isinstance(outcome, type):
        return {
            k: len(v) if isinstance(v, list | dict | set | tuple) else v
            for k, v in asdict(outcome).items()
        }
    return type(outcome).__name__


class WorkerError(RuntimeError):
    """A check failed in a ``--once`` run."""


def run_worker(
    engine: Engine,
    *,
    once: bool = False,
    stop: StopSignal | None = None,
    options: WorkerOptions | None = None,
    dispatcher: Dispatcher | None = None,
    checks: Sequence[Check] = CHECKS,
) -> DispatchCounts:
    """Dispatch continuously (polling every ``poll_seconds``) and run each of ``checks`` when
    its interval (by default ``interval_seconds``) has passed, until ``stop`` is set.
    ``once``: drain, check, drain, return."""
    options = options or WorkerOptions()
    stop = stop or threading.Event()
    d = dispatcher or Dispatcher(engine, policy=options.policy)
    total = DispatchCounts()
    next_due = [0.0] * len(checks)  # per check, when it is next due (time.monotonic())
    try:
        while not stop.is_set():
            try:
                total.add(d.drain(limit=options.limit, stop=stop))
                if options.checks:
                    due = [i for i, at in enumerate(next_due) if time.monotonic() >= at]
                    if due:
                        results = run_checks(engine, checks=[checks[i] for i in due])
                        finished = time.monotonic()
                        for i in due:
                            interval = checks[i].interval_seconds
                            next_due[i] = finished + (
                                options.interval_seconds if interval is None else interval
                            )
                        if once and results["errors"]:
                            raise WorkerError(f"checks failed: {results['errors']}")
                        total.add(d.drain(limit=options.limit, stop=stop))
            except WorkerError:
                raise
            except Exception as e:  # the database may be away for a while: keep trying
                if once:
                    raise
                log.error("worker cycle failed", error=type(e).__name__, detail=str(e)[:300])
            if once:
                break
            stop.wait(options.poll_seconds)
    finally:
        d.close()
    return total


def started(engine: Engine, actor: Actor | None, job: str, details: dict[str, Any]) -> None:
    """The one audit row of a delivery job (the worker, the dispatcher) by ``actor``, when it
    starts: not one per notice it delivers."""
    who = actor or Actor.system("notify", f"delivery {job}")
    with engine.begin() as conn:
        who.job(conn, job, "start", details)
    log.info("delivery job started", job=job, **details)  # it runs for weeks: its start is logged


def run_worker_process(
    engine: Engine,
    *,
    once: bool = False,
    options: WorkerOptions | None = None,
    actor: Actor | None = None,
    job: str = "worker",
) -> DispatchCounts:
    """:func:`run_worker` in the main thread of a process: SIGTERM and SIGINT stop it after
    the current round, so nothing is left claimed but unrecorded. Its audit row (by
    ``actor``, as ``job``) when it starts."""
    started(
        engine, actor, job, {"once": once} if job != "worker" else {"processes": 1, "once": once}
    )
    stop = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)
    }
    try:
        return run_worker(engine, once=once, stop=stop, options=options)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class ChildStop:
    """A worker process's stop signal: set by SIGTERM (from the group's parent), and also
    when the parent is gone. Deliberately not a multiprocessing.Event: its lock would stay
    taken forever by a process killed while holding it."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._parent = os.getppid()

    def is_set(self) -> bool:
        return self._event.is_set() or os.getppid() != self._parent

    def wait(self, timeout: float | None = None) -> bool:
        return self._event.wait(timeout) or self.is_set()

    def set(self) -> None:
        self._event.set()


def _child(url: str, index: int, once: bool, options: WorkerOptions) -> None:
    """One worker process of a group (started with the spawn method)."""
    from terugkeer.config import get_settings
    from terugkeer.db.engine import make_engine
    from terugkeer.logs import configure

    configure(get_settings().log_level)
    stop = ChildStop()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides
    signal.signal(signal.SIGTERM, lambda *_: stop.set())  # finish the round, then stop
    engine = make_engine(url)
    try:
        run_worker(
            engine,
            once=once,
            stop=stop,
            options=replace(options, checks=options.checks and index == 0),
        )
    finally:
        engine.dispose()


def run_workers(
    url: str,
    processes: int,
    *,
    once: bool = False,
    options: WorkerOptions | None = None,
    actor: Actor | None = None,
) -> int:
    """A group of worker processes sharing one PostgreSQL database; a process that dies is
    started again. SIGTERM or SIGINT stops the group: each process finishes its round.
    Returns the exit status. Its audit row (by ``actor``) when it starts."""
    from terugkeer.db.engine import make_engine

    engine = make_engine(url)
    try:
        started(engine, actor, "worker", {"processes": processes, "once": once})
    finally:
        engine.dispose()
    options = options or WorkerOptions()
    ctx = multiprocessing.get_context("spawn")
    stop = threading.Event()

    def start(index: int) -> multiprocessing.process.BaseProcess:
        p = ctx.Process(
            target=_child, args=(url, index, once, options), name=f"terugkeer-worker-{index}"
        )
        p.start()
        return p

    previous = {
        sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)
    }
    try:
        children = {i: start(i) for i in range(processes)}
        log.info(
            "worker group started", processes=processes, pids=[p.pid for p in children.values()]
        )
        while not stop.is_set():
            if all(not p.is_alive() for p in children.values()) and once:
                break
            for i, p in list(children.items()):
                if not once and not p.is_alive():
                    log.warning(
                        "worker process died; starting it again", index=i, exitcode=p.exitcode
                    )
                    children[i] = start(i)
            stop.wait(0.2)
        for p in children.values():
            if p.is_alive():
                p.terminate()  # SIGTERM: the round is finished first
        for p in children.values():
            p.join(timeout=60)
            if p.is_alive():
                p.kill()
                p.join()
        # a process stopped by our SIGTERM before it could set its handler stopped cleanly
        codes = [
            0 if p.exitcode == -signal.SIGTERM else abs(p.exitcode or 0) for p in children.values()
        ]
        return max(codes, default=0)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


__all__ = [
    "CHECKS",
    "Check",
    "ChildStop",
    "DispatchCounts",
    "Dispatcher",
    "RetryPolicy",
    "StopSignal",
    "WorkerError",
    "WorkerOptions",
    "run_checks",
    "run_worker",
    "run_worker_process",
    "run_workers",
]
