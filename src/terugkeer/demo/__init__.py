"""The main job, end to end on a fresh SQLite database (``make demo``). One audit row for the
run (record type ``job``), in the demo database, by the actor who runs it."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine, delete, func, insert, select

from terugkeer.db.engine import make_engine
from terugkeer.demo.accounts import demo_accounts
from terugkeer.detention.ingest import ProgressCallback
from terugkeer.detention.store import check_periods
from terugkeer.detention.summary import summarise
from terugkeer.domain.refdata import refdata
from terugkeer.intake import ingest_files
from terugkeer.migrations import upgrade
from terugkeer.notify.tables import deliveries, notify_endpoints, obligations
from terugkeer.security.actor import Actor

ProgressFactory = Callable[[str, int | None], AbstractContextManager[ProgressCallback]]


def _table(title: str, counts: dict[str, int]) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("")
    table.add_column("count", justify="right")
    for key, n in counts.items():
        table.add_row(key, f"{n:,}")
    return table


def run_demo(
    workdir: Path,
    *,
    releases: int,
    seed: int,
    console: Console,
    progress: ProgressFactory,
    actor: Actor,
) -> None:
    from terugkeer.synth import MessyRates, generate

    workdir.mkdir(parents=True, exist_ok=True)
    db_path = workdir / "demo.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)
    engine = make_engine(f"sqlite:///{db_path}")
    upgrade(engine)
    demo_endpoints(engine)
    console.print(f"[bold]terugkeer demo[/bold]: fresh database {db_path}")

    started = time.perf_counter()
    with progress("synthesise a national year", releases) as advance:
        synth = generate(
            workdir / "feeds", releases=releases, seed=seed, messy=MessyRates(), progress=advance
        )
    console.print(
        f"synthesised {synth.releases:,} releases ({synth.events:,} detention events, "
        f"{synth.victims:,} victim registrations, {synth.reconvictions:,} reconvictions); "
        f"messy lines added: {synth.messy} ({time.perf_counter() - started:.1f} s)"
    )

    feeds = [synth.files[f"{name}.jsonl"] for name in ("detention", "victims", "reconvictions")]
    total = sum(1 for f in feeds for line in f.open("rb") if line.strip())
    started = time.perf_counter()
    with progress("ingest the feeds", total) as advance:
        result = ingest_files(engine, feeds, progress=advance)
    seconds = time.perf_counter() - started
    console.print(
        f"ingested: read {result.read:,}, applied {result.applied:,}, duplicates "
        f"{result.duplicates:,}, quarantined {result.quarantined:,}, parked and applied later "
        f"{result.unparked:,} ({seconds:.1f} s, {result.read / seconds:,.0f} messages/s)"
    )

    summary = summarise(engine)
    console.print(_table(f"detention periods: {summary.periods:,}", summary.periods_by_status))
    console.print(_table("feed events by kind", summary.events_by_kind))
    console.print(
        _table(
            f"quarantined, open: {sum(summary.quarantine_by_reason.values()):,} "
            "(see `terugkeer quarantine list`)",
            summary.quarantine_by_reason,
        )
    )
    console.print(
        f"persons {summary.persons:,}; victims registered {summary.victims:,}; "
        f"reconvictions {summary.reconvictions:,}"
    )
    with engine.connect() as conn:
        problems = check_periods(conn)
    console.print(f"consistency: every period rebuilt from its events: {len(problems)} differences")
    _notifications(engine, workdir, console, progress)
    from terugkeer.demo.registration import demo_step

    demo_step(engine, workdir / "feeds", workdir, console, seed=seed)
    demo_accounts(engine, workdir, console)  # one per role, also in var/demo/accounts.txt
    from terugkeer.monitor.report import compute, write_report

    figures = compute(engine)
    files = write_report(figures, workdir / "monitor")
    console.print(f"monitor report: {workdir / 'monitor' / 'index.html'} ({len(files)} files)")
    with engine.begin() as conn:
        actor.job(conn, "demo", details={"releases": releases, "seed": seed})
    console.print(
        "inspect with: TERUGKEER_ENVIRONMENT=development "
        f"TERUGKEER_DATABASE_URL=sqlite:///{db_path} terugkeer quarantine list "
        "(or: notify obligations, notify alerts, reconcile)"
    )
    from terugkeer.mkba.demo import demo_report

    demo_report(engine, workdir / "mkba", console)  # the cost-benefit analysis, last


def demo_endpoints(engine: Engine) -> None:
    """Mayors' offices by e-mail (a local mail folder in the demo), with the portal as second
    channel; the IDV and the nazorg coordinators in the portal (the default)."""
    rows: list[dict[str, object]] = [
        {
            "recipient_kind": "mayor",
            "recipient_ref": code,
            "priority": 1,
            "channel": "email",
            "address": f"meldingen.burgemeester@{code.lower()}.gemeente.example",
        }
        for code in refdata().municipalities
    ]
    rows.append(
        {
            "recipient_kind": "mayor",
            "recipient_ref": "*",
            "priority": 2,
            "channel": "portal",
            "address": None,
        }
    )
    with engine.begin() as conn:
        conn.execute(delete(notify_endpoints))
        conn.execute(insert(notify_endpoints), rows)


def _notifications(
    engine: Engine, workdir: Path, console: Console, progress: ProgressFactory
) -> None:
    """Deliver the year's notices (portal inboxes and a local mail folder) and reconcile."""
    from terugkeer.notify.assurance.reconcile import reconcile
    from terugkeer.notify.delivery.channels import Channel
    from terugkeer.notify.delivery.channels.email import EmailChannel, SmtpSettings
    from terugkeer.notify.delivery.channels.portal import PortalChannel
    from terugkeer.notify.delivery.channels.webhook import WebhookChannel
    from terugkeer.notify.delivery.dispatch import Dispatcher

    mail = workdir / "mail"
    shutil.rmtree(mail, ignore_errors=True)
    with engine.connect() as conn:
        pending = conn.execute(
            select(func.count()).select_from(deliveries).where(deliveries.c.status == "pending")
        ).scalar_one()
    channels: dict[str, Channel] = {
        "portal": PortalChannel(),
        "email": EmailChannel(SmtpSettings(maildir=str(mail))),
        "webhook": WebhookChannel(environment="development"),
    }
    dispatcher = Dispatcher(engine, channels=channels)
    started = time.perf_counter()
    delivered = 0
    try:
        with progress("deliver the notices", pending) as advance:
            while True:
                counts = dispatcher.run_once(limit=500)
                advance(counts.delivered + counts.dead)
                delivered += counts.delivered
                if counts.claimed == 0:
                    break
    finally:
        dispatcher.close()
    seconds = time.perf_counter() - started
    with engine.connect() as conn:
        by_kind = {
            f"{kind}: {status}": n
            for kind, status, n in conn.execute(
                select(obligations.c.recipient_kind, obligations.c.status, func.count())
                .group_by(obligations.c.recipient_kind, obligations.c.status)
                .order_by(obligations.c.recipient_kind, obligations.c.status)
            )
        }
        late = conn.execute(
            select(func.count()).select_from(obligations).where(obligations.c.late)
        ).scalar_one()
    console.print(_table("notification obligations by recipient and status", by_kind))
    emails = sum(1 for _ in mail.glob("**/*.eml"))
    console.print(
        f"delivered {delivered:,} notices in {seconds:.1f} s "
        f"({delivered / max(seconds, 1e-9):,.0f}/s): to portal inboxes, and {emails:,} e-mails "
        f"in {mail}; {late:,} obligations are marked late, each with its reason"
    )
    report = reconcile(engine)
    gaps = {
        "missing": len(report.missing),
        "past due, not delivered": len(report.overdue),
        "delivered, not acknowledged in time": len(report.unacknowledged),
        "recipient unresolved": len(report.unresolved),
    }
    console.print(
        _table(
            f"reconciliation: {report.required:,} obligations required, "
            f"{report.obligations_checked:,} stored, checked in {report.seconds:.1f} s",
            gaps,
        )
    )
    if report.unresolved:
        console.print(
            "unresolved recipients (no known municipality) wait in the operator's queue "
            "with their deadlines: `terugkeer notify alerts`"
        )
