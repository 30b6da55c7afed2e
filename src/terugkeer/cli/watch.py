"""Commands of the feed watch and the operator's alert queue."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from terugkeer.cli.common import AsOpt, JsonOpt, PurposeOpt, actor, err, out
from terugkeer.cli.paging import LimitOpt, OffsetOpt, footer, limit_or_all
from terugkeer.db.engine import make_engine
from terugkeer.security.actor import Actor

burst_app = typer.Typer(help="Decide on held bursts of release notices.", no_args_is_help=True)


def watch(as_json: JsonOpt = False) -> None:
    """Check every source's freshness; exits 1 when a feed is stale.

    Figures per source only: nothing about a person, no audit row."""
    from terugkeer.notify.assurance.watch import check_freshness

    report = check_freshness(make_engine())
    if as_json:
        out.print_json(
            json.dumps({"stale": report.stale, "fresh": report.fresh, "never": report.never})
        )
    else:
        for source, hours in sorted(report.stale.items()):
            out.print(f"STALE {source}: silent for {hours} working hours")
        out.print(
            f"{len(report.stale)} stale, {len(report.fresh)} fresh, "
            f"{len(report.never)} never sent anything"
        )
    raise typer.Exit(1 if report.stale else 0)


def list_alerts(
    status: Annotated[str, typer.Option(help="open, resolved or all")] = "open",
    kind: Annotated[str | None, typer.Option()] = None,
    limit: LimitOpt = 100,
    offset: OffsetOpt = 0,
    as_json: JsonOpt = False,
    who: AsOpt = None,
    purpose: PurposeOpt = "operator queue",
) -> None:
    """The operator's queue, oldest first: alerts from reconciliation, escalation and feed
    watch. Says "showing X–Y of Z" when it does not list them all.

    Each alert shown (most name a notice, a delivery or a period) is a `read` of record
    type `alert` in the audit log."""
    from terugkeer.notify.alerts import list_alerts as queue

    by = actor("notify alerts", who, purpose)
    try:
        with make_engine().begin() as conn:
            page = queue(
                conn, actor=by, status=status, kind=kind, limit=limit_or_all(limit), offset=offset
            )
    except ValueError as e:
        err.print(f"[red]{e}[/red]")
        raise typer.Exit(2) from e
    if as_json:
        out.print_json(
            json.dumps(
                {
                    **page.meta(),
                    "alerts": [
                        {
                            "id": r.id,
                            "kind": r.kind,
                            "key": r.key,
                            "message": r.message,
                            "status": r.status,
                            "raised_at": r.raised_at.isoformat(),
                            "details": json.loads(r.details),
                        }
                        for r in page.items
                    ],
                }
            )
        )
        return
    table = Table("id", "kind", "raised", "message", "status")
    for r in page.items:
        table.add_row(
            str(r.id), r.kind, r.raised_at.isoformat(timespec="minutes"), r.message, r.status
        )
    out.print(table)
    footer(page, "alerts")


def _decide(alert_id: int, by: str, confirm: bool, runner: Actor) -> None:
    from terugkeer.notify.assurance.watch import BurstError, decide_burst

    try:
        done = decide_burst(make_engine(), alert_id, confirm=confirm, by=by, actor=runner)
    except BurstError as e:
        err.print(f"[red]{e}[/red]")
        raise typer.Exit(2) from e
    if confirm:
        out.print(
            f"released {done.held} held notices ({done.obligations} obligations); "
            f"{done.already_sent} notices of this burst had gone out before the brake"
        )
    else:
        out.print(
            f"voided {done.obligations} obligations: {done.held} held notices will not be "
            f"sent; {done.corrected} corrections queued for notices that had gone out before "
            "the brake"
        )


@burst_app.command("confirm")
def confirm(
    alert_id: int,
    by: Annotated[str, typer.Option(help="who decides")],
    who: AsOpt = None,
    purpose: PurposeOpt = "burst brake decision",
) -> None:
    """The releases are real: send the held notices.

    Each notice released is an `update` of record type `notice` in the audit log."""
    _decide(alert_id, by, True, actor("notify burst confirm", who, purpose))


@burst_app.command("void")
def void(
    alert_id: int,
    by: Annotated[str, typer.Option(help="who decides")],
    who: AsOpt = None,
    purpose: PurposeOpt = "burst brake decision",
) -> None:
    """The releases are false (e.g. a maintenance job): void the held notices.

    Each notice voided is an `update` of record type `notice` in the audit log."""
    _decide(alert_id, by, False, actor("notify burst void", who, purpose))


def register(app: typer.Typer, notify_app: typer.Typer) -> None:
    """Add this module's commands to the `notify` group."""
    notify_app.command("watch")(watch)
    notify_app.command("alerts")(list_alerts)
    notify_app.add_typer(burst_app, name="burst")
