"""The independent reconciliation: which obligations must exist, and are they there?

This package does **not** use the dispatcher's evaluation (``evaluate.py``), its writer
(``obligations.py``), its hook or its channels. It reads the rule file for the rules' ids,
recipients, subjects, scopes and timing, and computes from the stored periods, offences,
persons, victims and feed events, in a handful of set-based SQL statements that run on SQLite
and PostgreSQL, the set of obligations (``rule|period|occurrence|slot``) that must exist, each
with its recipient, due time and lateness (``docs/rules.md``, "Timing and lateness"). FULL
OUTER JOINs of that set with the ``obligations`` table (one for the bulk — the nazorg signals
of every adult — one for all other rules, at the same time on two connections when they can
be) give:

- ``missing_obligation`` — required but absent (or present but voided);
- ``wrong_recipient`` — present, but addressed to another recipient than the facts give;
- ``wrong_timing`` — present, but due at another time, or late where the facts say on time
  (or the other way round), than the facts give;
- ``extra`` — present (not voided) but not required: information, not an alert.

Plain queries on ``obligations`` (and its deliveries) add the delivery gaps:

- ``overdue`` — past due and not delivered (``open``, ``sent``, ``unresolved``, ``held``);
- ``unacknowledged`` — delivered, not acknowledged, past the rule's acknowledgement window;
- ``unresolved`` — no known recipient;
- ``unproven_delivery`` — marked delivered or acknowledged, but no delivery of its current
  version has a successful attempt on record (or is the recipient's inbox item).

Gaps of every kind but ``extra`` are stored as operator alerts (``alerts``), de-duplicated by
a stable key while open (``reconcile:<kind>:<obligation key>``); open reconciliation alerts
whose gap has closed are resolved. ``docs/reconciliation.md`` explains the SQL, and the places
where it may legitimately see things differently from the dispatcher.

Its parts: ``report`` (:class:`Gap`, :class:`ReconcileReport`), ``dialect`` (what SQLite and
PostgreSQL spell differently), ``expected`` (the SELECTs of the required obligations, with
their due times), ``compare`` (the FULL OUTER JOINs and the details of what differs), ``gaps``
(the causes of missing obligations, the delivery gaps) and ``record`` (the alerts). This
module runs them.
"""

from __future__ import annotations

import time as timer
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, func, select

from terugkeer.notify.assurance.reconcile.compare import find_differences, settings
from terugkeer.notify.assurance.reconcile.dialect import Sql
from terugkeer.notify.assurance.reconcile.gaps import (
    AMSTERDAM,
    basis_at,
    delivery_gaps,
    missing_gaps,
    unproven_deliveries,
)
from terugkeer.notify.assurance.reconcile.record import ESCALATED, record_alerts
from terugkeer.notify.assurance.reconcile.report import (
    ALERT_KINDS,
    ALERT_PREFIX,
    DEFAULT_ACK_WINDOW,
    KIND_LISTS,
    UNDELIVERED,
    VOIDED,
    Gap,
    ReconcileReport,
)
from terugkeer.notify.rules.ruleset import RuleSet, default_rules
from terugkeer.notify.tables import obligations


def shared(engine: Engine) -> bool:
    """Whether other connections see the same database (not so for SQLite in memory)."""
    database = engine.url.database
    return engine.dialect.name != "sqlite" or database not in (None, "", ":memory:")


def find_gaps(
    conn: Connection, now: datetime, rules: RuleSet | None = None, *, apart: bool = False
) -> ReconcileReport:
    """Compare inside the caller's transaction; writes nothing. ``apart``: the large
    comparison may run on two more connections at once (only when the caller's transaction
    has written nothing they would need to see)."""
    if now.tzinfo is None:
        raise ValueError(f"naive datetime [{now.isoformat()}]: give the time with its zone")
    rules = rules or default_rules()
    started = timer.perf_counter()
    report = ReconcileReport(now=now.astimezone(UTC), rules_version=rules.version)
    settings(conn)

    def meanwhile() -> None:
        delivery_gaps(conn, rules, report.now, report)
        unproven_deliveries(conn, report)
        report.obligations_checked = int(
            conn.execute(
                select(func.count()).select_from(obligations).where(obligations.c.status != VOIDED)
            ).scalar_one()
        )

    missing = find_differences(conn, rules, report, apart=apart, meanwhile=meanwhile)
    report.missing = missing_gaps(conn, rules, missing)
    # distinct keys required = stored and required + required but absent or voided
    report.required = report.obligations_checked - len(report.extra) + len(report.missing)
    report.seconds = timer.perf_counter() - started
    return report


def reconcile(
    engine: Engine,
    now: datetime | None = None,
    *,
    rules: RuleSet | None = None,
    record: bool = True,
) -> ReconcileReport:
    """One full reconciliation in one transaction; with ``record`` (the default) its gaps are
    stored as operator alerts and alerts of closed gaps are resolved."""
    now = now or datetime.now(UTC)
    with engine.begin() as conn:
        report = find_gaps(conn, now, rules, apart=shared(engine))
        if record:
            record_alerts(conn, report, report.now)
    return report


__all__ = [
    "ALERT_KINDS",
    "ALERT_PREFIX",
    "AMSTERDAM",
    "DEFAULT_ACK_WINDOW",
    "ESCALATED",
    "KIND_LISTS",
    "UNDELIVERED",
    "VOIDED",
    "Gap",
    "ReconcileReport",
    "Sql",
    "basis_at",
    "find_gaps",
    "reconcile",
    "record_alerts",
    "shared",
]
