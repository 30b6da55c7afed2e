"""Commands of delivery: the worker, the dispatcher, the inbox and acknowledgement."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from terugkeer.cli.common import AsOpt, JsonOpt, PurposeOpt, actor, err, out
from terugkeer.cli.paging import footer
from terugkeer.db.engine import make_engine
from terugkeer.db.paging import Page


def worker(
    once: Annotated[
        bool, typer.Option(help="one cycle: deliver, check, deliver; then stop")
    ] = False,
    interval: Annotated[
        float,
        typer.Option(
            min=1, help="seconds between check cycles (escalation, feed watch, reconciliation)"
        ),
    ] = 300.0,
    poll: Annotated[
        float, typer.Option(min=0.05, help="seconds between looks for due notices")
    ] = 1.0,
    processes: Annotated[
        int, typer.Option(min=1, max=64, help="worker processes (PostgreSQL only)")
    ] = 1,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="deliveries per claim")] = 100,
    max_attempts: Annotated[
        int, typer.Option(min=1, max=100, help="attempts before a notice is a dead letter")
    ] = 8,
    who: AsOpt = None,
    purpose: PurposeOpt = "notification delivery",
) -> None:
    """Deliver notices continuously; escalate, watch the feeds and reconcile every cycle.

    A machine job: one audit row when it starts, not one per notice it delivers."""
    from terugkeer.notify.worker import (
        RetryPolicy,
        WorkerError,
        WorkerOptions,
        run_worker_process,
        run_workers,
    )

    by = actor("worker", who, purpose)
    engine = make_engine()
    options = WorkerOptions(
        interval_seconds=interval,
        poll_seconds=poll,
        limit=limit,
        policy=RetryPolicy(max_attempts=max_attempts),
    )
    if processes > 1 and engine.dialect.name != "postgresql":
        err.print(
            f"[red]--processes {processes}: several workers need PostgreSQL; "
            "SQLite runs one worker[/red]"
        )
        raise typer.Exit(2)
    if processes > 1:
        url = engine.url.render_as_string(hide_password=False)
        engine.dispose()
        raise typer.Exit(run_workers(url, processes, once=once, options=options, actor=by))
    try:
        counts = run_worker_process(engine, once=once, options=options, actor=by)
    except WorkerError as e:
        err.print(f"[red]{e}[/red]")
        raise typer.Exit(1) from e
    if once:
        out.print_json(json.dumps(counts.as_json()))


def dispatch(
    once: Annotated[bool, typer.Option(help="deliver what is due now, then stop")] = False,
    poll: Annotated[float, typer.Option(min=0.05)] = 1.0,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 100,
    max_attempts: Annotated[int, typer.Option(min=1, max=100)] = 8,
    who: AsOpt = None,
    purpose: PurposeOpt = "notification delivery",
) -> None:
    """Deliver due notices (without the check cycle; `terugkeer worker` runs both).

    A machine job: one audit row when it starts, not one per notice it delivers."""
    from terugkeer.notify.worker import RetryPolicy, WorkerOptions, run_worker_process

    by = actor("notify dispatch", who, purpose)
    options = WorkerOptions(
        poll_seconds=poll,
        limit=limit,
        checks=False,
        policy=RetryPolicy(max_attempts=max_attempts),
    )
    counts = run_worker_process(
        make_engine(), once=once, options=options, actor=by, job="notify dispatch"
    )
    out.print_json(json.dumps(counts.as_json()))


def inbox(
    recipient_kind: Annotated[str, typer.Option(help="mayor, idv or nazorg")],
    recipient: Annotated[str, typer.Option(help="municipality code (GM0363) or OM-IDV")],
    unread: Annotated[bool, typer.Option(help="only notices not yet read")] = False,
    unacknowledged: Annotated[
        bool, typer.Option(help="only notices awaiting acknowledgement")
    ] = False,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
    offset: Annotated[int, typer.Option(min=0)] = 0,
    as_json: JsonOpt = False,
    who: AsOpt = None,
    purpose: PurposeOpt = "notice inbox",
) -> None:
    """A recipient organisation's inbox, newest first.

    Each notice shown is a `read` of record type `notice` in the audit log."""
    from terugkeer.notify.delivery.inbox import InboxError, list_notices

    by = actor("notify inbox", who, purpose)
    try:
        with make_engine().begin() as conn:
            found = list_notices(
                conn,
                recipient_kind,
                recipient,
                actor=by,
                unread=unread,
                unacknowledged=unacknowledged,
                limit=limit,
                offset=offset,
            )
    except InboxError as e:
        err.print(f"[red]{e}[/red]")
        raise typer.Exit(2) from e
    if as_json:
        out.print_json(found.model_dump_json())
        return
    table = Table("ref", "rule", "subject", "period", "planned", "due", "status", "late", "read")
    for n in found.notices:
        table.add_row(
            str(n.id),
            n.rule_id,
            n.subject,
            n.period_ref,
            n.planned_for.isoformat(timespec="minutes") if n.planned_for else "",
            n.due_at.isoformat(timespec="minutes"),
            n.status,
            "late" if n.late else "",
            "yes" if n.read else "no",
        )
    out.print(table)
    footer(Page(found.notices, found.total, found.limit, found.offset), "notices")


def ack(
    notice_id: Annotated[int, typer.Argument(help="the notice's reference (obligation id)")],
    by: Annotated[str, typer.Option(help="who acknowledges")],
    note: Annotated[
        str | None,
        typer.Option(help="how the victim was informed (required for victim notices)"),
    ] = None,
    as_json: JsonOpt = False,
    who: AsOpt = None,
    purpose: PurposeOpt = "notice inbox",
) -> None:
    """Acknowledge a delivered notice (an `update` of the notice in the audit log)."""
    from terugkeer.notify.delivery.inbox import InboxError, acknowledge

    runner = actor("notify ack", who, purpose)
    try:
        done = acknowledge(make_engine(), notice_id, by, note, actor=runner)
    except InboxError as e:  # an unknown notice or one acknowledged already: expected
        err.print(f"[red]{e}[/red]")
        raise typer.Exit(2) from e
    if as_json:
        out.print_json(done.model_dump_json())
    else:
        out.print(f"notice {done.id} acknowledged by {done.acknowledged_by}")


def retry(
    delivery_id: Annotated[int, typer.Argument(help="the id of a dead delivery")],
    who: AsOpt = None,
    purpose: PurposeOpt = "delivery repair",
) -> None:
    """Send a dead letter again, after its cause (an endpoint, a receiver) is fixed.

    An `update` of record type `delivery` in the audit log."""
    from terugkeer.notify.delivery.dispatch import RetryError, retry_dead

    by = actor("notify retry", who, purpose)
    try:
        queued = retry_dead(make_engine(), delivery_id, actor=by)
    except RetryError as e:
        err.print(f"[red]{e}[/red]")
        raise typer.Exit(2) from e
    out.print(f"delivery {queued} queued")


def tallies(
    recount: Annotated[
        bool, typer.Option("--recount", help="write the tallies anew from the notices")
    ] = False,
) -> None:
    """Check each inbox's tally against a count of its delivered notices; exits 1 when one
    differs. `--recount` writes them anew (after a repair that bypassed the triggers).

    The tallies give each inbox's total without counting it on every request
    (docs/operations.md, "The inbox")."""
    from terugkeer.notify.delivery import tallies as kept

    engine = make_engine()
    if recount:
        out.print(f"inbox tallies written anew: {kept.recount(engine)} organisations")
        return
    wrong = kept.differences(engine)
    if not wrong:
        out.print("inbox tallies agree with the notices")
        return
    for (kind, ref), (tallied, counted) in sorted(wrong.items()):
        out.print(
            f"[red]{kind} {ref or '(every victim)'}: tallied {tallied}, counted {counted}[/red]"
        )
    out.print("run `terugkeer notify tallies --recount` to write them anew")
    raise typer.Exit(1)


def register(app: typer.Typer, notify_app: typer.Typer) -> None:
    """Add this module's commands to the top-level app and the `notify` group."""
    app.command()(worker)
    notify_app.command("dispatch")(dispatch)
    notify_app.command("inbox")(inbox)
    notify_app.command("ack")(ack)
    notify_app.command("retry")(retry)
    notify_app.command("tallies")(tallies)
