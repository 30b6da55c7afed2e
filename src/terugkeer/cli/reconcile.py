"""Commands of the reconciliation: `terugkeer reconcile`, `terugkeer notify backfill`,
`terugkeer notify explain` and `terugkeer notify obligations`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, time
from typing import TYPE_CHECKING, Annotated, Any

import typer
from sqlalchemy.exc import OperationalError, ProgrammingError

from terugkeer.cli.common import AsOpt, PurposeOpt, actor, err, out
from terugkeer.cli.paging import LimitOpt, OffsetOpt, footer, limit_or_all
from terugkeer.db.engine import make_engine

if TYPE_CHECKING:
    from terugkeer.notify.assurance.reconcile import Gap, ReconcileReport

SHOWN = 20  # gaps of each kind in the text output (--json has them all)


@contextmanager
def _database() -> Iterator[None]:
    """A database that cannot be read (no schema yet, unreachable) is a clear error."""
    try:
        yield
    except (OperationalError, ProgrammingError) as e:
        first = str(e.orig).strip().splitlines()[0] if e.orig is not None else str(e)
        _error(
            f"cannot read the database ({first}); is it there and upgraded "
            "(`terugkeer db upgrade`)?"
        )
        raise typer.Exit(2) from e


def _line(text: str) -> None:
    """One line of output, printed as is (no markup, whole in logs and narrow terminals)."""
    out.print(text, markup=False, highlight=False, soft_wrap=True)


def _error(text: str) -> None:
    err.print(text, style="red", markup=False, highlight=False, soft_wrap=True)


def _when(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    text: str = value.isoformat(timespec="minutes")
    return text


def _print_gaps(title: str, gaps: list[Gap], shown: int) -> None:
    """One line per gap (no table: the lines stay whole in logs and narrow terminals)."""
    _line(f"{title}: {len(gaps):,}")
    for g in gaps[:shown]:
        _line(f"  {g.message()}")
    if len(gaps) > shown:
        _line(f"  … and {len(gaps) - shown:,} more (--json lists all)")


def _since(value: str) -> datetime:
    try:
        day = date.fromisoformat(value)
    except ValueError as e:
        raise typer.BadParameter(f"[{value}] is not a date YYYY-MM-DD") from e
    from terugkeer.notify.assurance.reconcile import AMSTERDAM

    return datetime.combine(day, time(0), AMSTERDAM)


def reconcile_command(
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
    shown: Annotated[int, typer.Option("--show", min=0, help="gaps shown per kind")] = SHOWN,
    who: AsOpt = None,
    purpose: PurposeOpt = "completeness check",
) -> None:
    """Check independently that every required notification exists with the recipient, due
    time and lateness the facts give, is delivered (with proof) and acknowledged; store gaps
    as alerts. Exits 1 on any gap (missing, overdue, unacknowledged, unresolved, unproven
    delivery, wrong timing, wrong recipient); obligations not required are information.

    A machine job: one audit row per run (the counts), and a `read` of each detention
    period whose gaps it shows; not one row per obligation it checks."""
    from terugkeer.notify.assurance.backfill import check

    by = actor("reconcile", who, purpose)
    with _database():
        report = check(make_engine(), actor=by, shown=None if as_json else shown)
    if as_json:
        out.print_json(json.dumps(report.as_json()))
    else:
        _print_report(report, shown)
    raise typer.Exit(0 if report.ok else 1)


def backfill_command(
    since: Annotated[
        str,
        typer.Option(help="YYYY-MM-DD: backfill what happened since this day (Amsterdam)"),
    ],
    as_json: Annotated[bool, typer.Option("--json")] = False,
    who: AsOpt = None,
    purpose: PurposeOpt = "completeness repair",
) -> None:
    """After a fault is fixed: create the missing obligations of events since DATE and
    send them, marked late ("alsnog"). Exits 1 if any remain missing.

    Each obligation created (or reopened) is a `create` (`update`) of record type `notice`
    in the audit log."""
    from terugkeer.notify.assurance.backfill import backfill

    by = actor("notify backfill", who, purpose)
    start = _since(since)
    with _database():
        report = backfill(make_engine(), start, actor=by)
    if as_json:
        out.print_json(json.dumps(report.as_json()))
    else:
        _line(
            f"missing obligations: {report.missing:,} ({report.before_since:,} caused before "
            f"{since}: left alone); created {report.created:,}, reopened {report.reopened:,}, "
            f"notices queued {report.notices:,}, without a known recipient "
            f"{report.unresolved:,}; still missing {report.remaining:,}"
        )
        for i in report.items:
            note = f" ({i.note})" if i.note else ""
            _line(
                f"  {i.action}: {i.rule_id} for period {i.period_ref} ({i.occurrence}) to "
                f"{i.recipient_kind} {i.recipient_ref or '(unresolved)'}, due "
                f"{_when(i.due_at)}, marked late (alsnog); from the {i.source}{note}"
            )
    raise typer.Exit(1 if report.remaining else 0)


def explain_command(
    period: Annotated[str, typer.Argument(help="the detention period reference")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
    who: AsOpt = None,
    purpose: PurposeOpt = "explaining notifications",
) -> None:
    """Replay a period's events in event order: per event the state then and what each
    rule decided then (fired or not, why); then the stored obligations beside the ones the
    facts require now, every difference marked.

    A `read` of record type `detention_period` in the audit log."""
    from terugkeer.notify.assurance.backfill import NotFoundError, explain_period

    by = actor("notify explain", who, purpose)
    with _database():
        try:
            explanation = explain_period(make_engine(), period, actor=by)
        except NotFoundError as e:
            _error(str(e))
            raise typer.Exit(2) from e
    if as_json:
        out.print_json(json.dumps(explanation.as_json()))
        return
    _print_explanation(explanation.as_json())


def _to(o: dict[str, Any]) -> str:
    return f"{o['recipient_kind']} {o['recipient_ref'] or '(unresolved)'}"


def _timing(o: dict[str, Any]) -> str:
    late = f", late: {o['late_reason'] or 'no reason given'}" if o["late"] else ", not late"
    return f"due {_when(o['due_at'])}{late}"


def _value(name: str, value: Any) -> str:
    if value is None:
        return "none"
    return _when(value) if name in ("planned_for", "due_at") else str(value)


def _print_explanation(e: dict[str, Any]) -> None:
    """The replay, then the stored and recomputed obligations side by side."""
    _line(f"period {e['period_ref']} ({e['status']}), rules {e['rules_version']}")
    _line("events in event order: the state then, what each rule decided then")
    for step in e["events"]:
        mark = {
            "withdrawn": " [withdrawn]",
            "correction": " [correction]",
            "victim_registration": " [victim registration]",
        }.get(step["marked"] or "", "")
        _line(
            f"  {step['event_id']} {step['kind']} at {_when(step['occurred_at'])} "
            f"(received {_when(step['received_at'])}){mark}"
        )
        if step["note"]:
            _line(f"    {step['note']}")
        state = step["state"]
        if state is not None and step["marked"] != "withdrawn":
            planned = state["planned_release_date"] or "none"
            ended = f", ended {_when(state['ended_at'])}" if state["ended_at"] else ""
            _line(
                f"    state: {state['status']}, title {state['title']}, planned release "
                f"{planned}, residence {state['residence_municipality'] or '-'}, return "
                f"{state['return_municipality'] or '-'}{ended}, victims "
                f"{', '.join(state['victims']) or 'none'}"
            )
        for t in step["rules"]:
            _line(f"    {t['rule_id']}: {'fired' if t['fired'] else 'did not fire'}: {t['why']}")
        for o in step["obligations"]:
            what = f"{o['rule_id']} {o['occurrence']} to {_to(o)}"
            if o["change"] == "changed":
                was = o["was"]
                moved = "; ".join(
                    f"{k} {_value(k, was[k])} -> {_value(k, o[k])}" for k in o["fields"]
                )
                _line(f"    ~ changed: {what}: {moved}")
            elif o["change"] == "new":
                _line(f"    + required: {what}, {_timing(o)}")
            else:
                _line(f"    - no longer required: {what}")
        for v in step["voids"]:
            _line(f"    void: {v['rule_id']} ({v['occurrence']}): {v['why']}")
    _line("obligations, stored | recomputed from the facts now:")
    for c in e["obligations"]:
        stored, mine = c["stored"], c["recomputed"]
        sign = "!=" if c["differences"] else "=="
        _line(f"  {sign} {c['rule_id']} {c['occurrence']} ({c['key']})")
        if stored is None:
            _line("      stored:     MISSING")
        else:
            void = f" ({stored['void_reason']})" if stored["void_reason"] else ""
            _line(
                f"      stored:     {stored['status']}{void} v{stored['version']} to "
                f"{_to({**stored, 'recipient_kind': c['recipient_kind']})}, {_timing(stored)}"
            )
            sent = ", ".join(
                f"{n['notice']} v{n['version']} {n['channel']} {n['status']}"
                for n in stored["notices"]
            )
            if sent:
                _line(f"      notices:    {sent}")
        if mine is None:
            why = f" (void: {c['void']})" if c["void"] else ""
            _line(f"      recomputed: not required{why}")
        else:
            _line(f"      recomputed: to {_to(mine)}, {_timing(mine)}")
        if c["differences"]:
            _line(f"      differs:    {', '.join(c['differences'])}")
    for v in e["voids"]:
        _line(f"void now: {v['rule_id']} ({v['occurrence']}): {v['why']}")
    if not e["replay_agrees"]:
        _line(
            "the replay's last step requires other obligations than the period's stored facts: "
            "the stored period differs from its events (`terugkeer periods check`)"
        )
    _line(
        f"{e['differences']} of {len(e['obligations'])} obligations differ between the store "
        "and the facts"
    )


def obligations_command(
    period: Annotated[str | None, typer.Option(help="only this period")] = None,
    status: Annotated[
        str | None,
        typer.Option(help="open, sent, delivered, acknowledged, voided, unresolved or held"),
    ] = None,
    limit: LimitOpt = 1000,
    offset: OffsetOpt = 0,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    who: AsOpt = None,
    purpose: PurposeOpt = "notification oversight",
) -> None:
    """List obligations in due order: recipient, event, due time, status, late flag and
    reason, rule. Says "showing X–Y of Z" when it does not list them all.

    Each obligation shown is a `read` of record type `notice` (its id is the notice's
    reference) in the audit log."""
    from terugkeer.notify.assurance.backfill import list_obligations

    by = actor("notify obligations", who, purpose)
    with _database():
        try:
            page = list_obligations(
                make_engine(), period, status, limit_or_all(limit), offset, actor=by
            )
        except ValueError as e:
            _error(str(e))
            raise typer.Exit(2) from e
    if as_json:
        out.print_json(json.dumps({**page.meta(), "obligations": list(page.items)}))
        return
    for r in page.items:
        late = f", late: {r['late_reason'] or 'no reason given'}" if r["late"] else ""
        _line(
            f"{r['period_ref']} {r['rule_id']}@{r['rule_version']} to {r['recipient_kind']} "
            f"{r['recipient_ref'] or '(unresolved)'}: {r['occurrence']} (event "
            f"{r['cause_event_id']}), due {_when(r['due_at'])}, {r['status']}{late}"
        )
    footer(page, "obligations")


def _print_report(report: ReconcileReport, shown: int) -> None:
    _line(
        f"reconciliation at {_when(report.now)} (rules {report.rules_version}): "
        f"{report.required:,} obligations required, {report.obligations_checked:,} stored "
        f"(not voided), {report.seconds:.2f} s"
    )
    for title, gaps in (
        ("missing obligations", report.missing),
        ("past due, not delivered", report.overdue),
        ("delivered, not acknowledged in time", report.unacknowledged),
        ("no known recipient", report.unresolved),
        ("marked delivered without proof of delivery", report.unproven),
        ("due time or lateness other than the facts give", report.wrong_timing),
        ("another recipient than the facts give", report.wrong_recipient),
        ("information: stored but not required", report.extra),
    ):
        if gaps:
            _print_gaps(title, gaps, shown)
    summary = ", ".join(f"{k} {v:,}" for k, v in report.counts.items())
    _line(
        f"{'OK' if report.ok else 'GAPS'}: {summary}; alerts raised {report.alerts_raised:,}, "
        f"resolved {report.alerts_resolved:,}, open {report.alerts_open:,}, "
        f"already escalated {report.alerts_escalated:,}"
    )


def register(app: typer.Typer, notify_app: typer.Typer) -> None:
    """Add this module's commands to the top-level app and the `notify` group."""
    app.command("reconcile")(reconcile_command)
    notify_app.command("backfill")(backfill_command)
    notify_app.command("explain")(explain_command)
    notify_app.command("obligations")(obligations_command)
