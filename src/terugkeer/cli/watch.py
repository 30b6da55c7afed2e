"""Commands of the feed watch and the operator's alert queue."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import select

from terugkeer.cli.audit import AsOpt, CliAudit, PurposeOpt
from terugkeer.db.engine import make_engine
from terugkeer.notify.tables import alerts

out = Console()


def register(app: typer.Typer, notify_app: typer.Typer) -> None:
    burst_app = typer.Typer(help="Decide on held bursts of release notices.", no_args_is_help=True)
    notify_app.add_typer(burst_app, name="burst")

    @notify_app.command("watch")
    def watch(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
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

    @notify_app.command("alerts")
    def list_alerts(
        status: Annotated[str, typer.Option(help="open, resolved or all")] = "open",
        kind: Annotated[str | None, typer.Option()] = None,
        as_json: Annotated[bool, typer.Option("--json")] = False,
        who: AsOpt = None,
        purpose: PurposeOpt = "operator queue",
    ) -> None:
        """The operator's queue: alerts from reconciliation, escalation and feed watch.

        Each alert shown (most name a notice, a delivery or a period) is a `read` of record
        type `alert` in the audit log."""
        trail = CliAudit.of("notify alerts", who, purpose)
        stmt = select(alerts).order_by(alerts.c.id)
        if status != "all":
            stmt = stmt.where(alerts.c.status == status)
        if kind:
            stmt = stmt.where(alerts.c.kind == kind)
        engine = make_engine()
        with engine.connect() as conn:
            rows = conn.execute(stmt).all()
        trail.records(engine, "read", "alert", ((r.id, {"kind": r.kind}) for r in rows))
        if as_json:
            out.print_json(
                json.dumps(
                    [
                        {
                            "id": r.id,
                            "kind": r.kind,
                            "key": r.key,
                            "message": r.message,
                            "status": r.status,
                            "raised_at": r.raised_at.isoformat(),
                            "details": json.loads(r.details),
                        }
                        for r in rows
                    ]
                )
            )
            return
        table = Table("id", "kind", "raised", "message", "status")
        for r in rows:
            table.add_row(
                str(r.id), r.kind, r.raised_at.isoformat(timespec="minutes"), r.message, r.status
            )
        out.print(table)

    def _decide(alert_id: int, by: str, confirm: bool, trail: CliAudit) -> None:
        from terugkeer.notify.assurance.watch import BurstError, decide_burst, held_obligations

        decision = {"burst_alert": alert_id, "decision": "confirmed" if confirm else "voided"}
        try:
            with make_engine().begin() as conn:  # the decision and its audit rows, or neither
                held = held_obligations(conn, alert_id)
                n = decide_burst(conn, alert_id, confirm=confirm, by=by)
                trail.records(conn, "update", "notice", held, decision)
        except BurstError as e:
            out.print(f"[red]{e}[/red]")
            raise typer.Exit(2) from e
        out.print(f"{'released' if confirm else 'voided'} {n} held notices")

    @burst_app.command("confirm")
    def confirm(
        alert_id: int,
        by: Annotated[str, typer.Option(help="who decides")],
        who: AsOpt = None,
        purpose: PurposeOpt = "burst brake decision",
    ) -> None:
        """The releases are real: send the held notices.

        Each notice released is an `update` of record type `notice` in the audit log."""
        _decide(alert_id, by, True, CliAudit.of("notify burst confirm", who, purpose))

    @burst_app.command("void")
    def void(
        alert_id: int,
        by: Annotated[str, typer.Option(help="who decides")],
        who: AsOpt = None,
        purpose: PurposeOpt = "burst brake decision",
    ) -> None:
        """The releases are false (e.g. a maintenance job): void the held notices.

        Each notice voided is an `update` of record type `notice` in the audit log."""
        _decide(alert_id, by, False, CliAudit.of("notify burst void", who, purpose))
