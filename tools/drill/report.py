"""The drill's report, and the counting that fills it: from the database, the receivers'
records, the independent reconciliation and the calm run."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, func, select

from terugkeer.db.bulk import among
from terugkeer.detention.tables import feed_events
from terugkeer.notify.tables import alerts, deliveries, delivery_attempts, obligations
from tools.drill.config import DELIVERED
from tools.drill.receivers import ReceiverStats


@dataclass
class DrillReport:
    seed: int
    config: dict[str, Any]
    feed: dict[str, Any] = field(default_factory=dict)
    ingest: dict[str, int] = field(default_factory=dict)
    kills: int = 0  # dispatcher processes killed
    ingest_kills: int = 0
    unexpected_exits: int = 0  # dispatcher processes that died without being killed
    faults: dict[str, int] = field(default_factory=dict)  # injected by the receivers
    claims_cut: int = 0  # claims never recorded: the claiming worker was killed
    settled: bool = False
    dead_letters: int = 0  # became dead (permanent refusals), sent again by the operator
    bursts_confirmed: int = 0
    checks_queued: int = 0  # notices the final check cycle found missing from the outbox
    required: int = 0
    required_source: str = ""
    obligations: dict[str, int] = field(default_factory=dict)  # stored, by status
    delivered: int = 0
    unresolved: int = 0
    missing: int = 0
    missing_detail: list[str] = field(default_factory=list)
    notices: dict[str, dict[str, int]] = field(default_factory=dict)  # channel -> status -> n
    received: dict[str, int] = field(default_factory=dict)  # receiver -> receipts
    duplicates: int = 0  # notices received more than once
    duplicate_copies: int = 0  # receipts beyond the first
    duplicates_explained: int = 0  # ... whose delivery had a claim a killed worker left
    duplicates_unexplained: list[str] = field(default_factory=list)  # keys of the others
    missing_delivery: int = 0  # of missing: stored but not delivered (or not received)
    missing_obligations: int = 0  # of missing: required by the reconciliation, not stored
    missing_also_calm: int = 0  # ... and not created by the calm run either: not the faults
    reconciliation: dict[str, Any] | None = None
    calm: dict[str, Any] | None = None  # the calm run compared with the drill
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.settled and self.missing == 0

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["ok"] = self.ok
        return out

    def lines(self) -> list[str]:
        f, i = self.feed, self.ingest
        channels = "; ".join(
            f"{ch} {sum(by.values()):,} ("
            + ", ".join(f"{status} {n:,}" for status, n in sorted(by.items()))
            + ")"
            for ch, by in sorted(self.notices.items())
        )
        faults = ", ".join(f"{k} {v:,}" for k, v in sorted(self.faults.items())) or "none"
        out = [
            f"seed {self.seed}",
            f"feed: {f.get('lines', 0):,} lines in {f.get('chunks', 0)} chunks (+{f.get('resent', 0)}"
            f" sent again); synthetic mess: {f.get('duplicated', 0):,} duplicated, "
            f"{f.get('out_of_order', 0):,} out of order, {f.get('malformed', 0):,} malformed",
            f"ingest: read {i.get('read', 0):,}, applied {i.get('applied', 0):,}, duplicates "
            f"{i.get('duplicates', 0):,}, quarantined {i.get('quarantined', 0):,}; "
            f"{i.get('stored_events', 0):,} events stored",
            f"killed with SIGKILL: {self.kills} dispatcher processes, {self.ingest_kills} ingest "
            f"processes; {self.claims_cut:,} claimed notices left unrecorded by killed workers; "
            f"dispatchers that died by themselves: {self.unexpected_exits}",
            f"receiver faults injected (and requests cut off by a kill): {faults}",
            f"settled: {'yes' if self.settled else 'NO'}; dead letters sent again by the operator: "
            f"{self.dead_letters}; bursts confirmed: {self.bursts_confirmed}; notices the check "
            f"cycle had to queue: {self.checks_queued}",
            f"notices: {channels}",
            f"received: webhook {self.received.get('webhook', 0):,}, e-mail "
            f"{self.received.get('email', 0):,}",
            f"obligations required: {self.required:,} ({self.required_source})",
            f"delivered: {self.delivered:,}",
            f"unresolved (no known recipient; an operator's item with an alert): {self.unresolved:,}",
            f"missing: {self.missing:,} (lost in delivery: {self.missing_delivery:,}; obligations"
            f" the reconciliation requires that were never created: {self.missing_obligations:,}"
            + (
                f", {self.missing_also_calm:,} of them not by the calm run either"
                if self.missing_obligations and self.calm is not None
                else ""
            )
            + ")",
            f"delivered more than once: {self.duplicates:,} notices ({self.duplicate_copies:,} "
            f"extra copies; {self.duplicates_explained:,} of them after a claim a killed worker "
            "left unrecorded)",
        ]
        out += [f"  missing: {m}" for m in self.missing_detail]
        out += [
            f"  received more than once with no unrecorded claim: {k}"
            for k in self.duplicates_unexplained
        ]
        if self.reconciliation is not None:
            out.append(f"reconciliation: {json.dumps(self.reconciliation, sort_keys=True)}")
        if self.calm is not None:
            out.append(f"calm run: {json.dumps(self.calm, sort_keys=True)}")
        out.append("seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in self.seconds.items()))
        if self.ok:
            out.append("OK: nothing missing")
        elif not self.settled:
            out.append("FAILED: the queue did not drain within the settle timeout")
        else:
            out.append("FAILED: notices are missing")
        return out


def delivery_claims(conn: Connection, ids: list[int] | None = None) -> list[Any]:
    """Per delivery: id, key, channel, status, claims (``attempts``) and recorded attempts."""
    recorded = (
        select(delivery_attempts.c.delivery_id, func.count().label("n"))
        .group_by(delivery_attempts.c.delivery_id)
        .subquery()
    )
    stmt = select(
        deliveries.c.id,
        deliveries.c.idempotency_key,
        deliveries.c.channel,
        deliveries.c.status,
        deliveries.c.attempts,
        func.coalesce(recorded.c.n, 0).label("rows"),
    ).outerjoin(recorded, recorded.c.delivery_id == deliveries.c.id)
    if ids is not None:
        stmt = stmt.where(among(conn, deliveries.c.id, ids))
    return list(conn.execute(stmt).all())


def tally(
    engine: Engine,
    seen: ReceiverStats,
    report: DrillReport,
    retried: dict[int, tuple[int, int]],
    calm: set[str] | None,
) -> None:
    """The figures: from the database, the receivers' records, the reconciliation and the calm
    run."""
    report.faults = dict(seen.faults)
    with engine.connect() as conn:
        report.ingest["stored_events"] = int(
            conn.execute(select(func.count()).select_from(feed_events)).scalar_one()
        )
        by_status = {
            str(s): int(n)
            for s, n in conn.execute(
                select(obligations.c.status, func.count()).group_by(obligations.c.status)
            ).all()
        }
        notices: dict[str, dict[str, int]] = {}
        for channel, status, n in conn.execute(
            select(deliveries.c.channel, deliveries.c.status, func.count()).group_by(
                deliveries.c.channel, deliveries.c.status
            )
        ).all():
            notices.setdefault(str(channel), {})[str(status)] = int(n)
        claimed = delivery_claims(conn)
        open_alerts = set(
            conn.execute(
                select(alerts.c.key).where(alerts.c.status == "open", alerts.c.kind == "unresolved")
            ).scalars()
        )
        unresolved_ids = list(
            conn.execute(
                select(obligations.c.id).where(obligations.c.status == "unresolved")
            ).scalars()
        )
        stored = set(
            conn.execute(
                select(obligations.c.key).where(obligations.c.status != "voided")
            ).scalars()
        )
        undelivered = conn.execute(
            select(obligations.c.id, obligations.c.status, obligations.c.rule_id).where(
                obligations.c.status.in_(("open", "sent", "held"))
            )
        ).all()
    report.obligations = by_status
    report.notices = notices
    report.delivered = sum(by_status.get(s, 0) for s in DELIVERED)
    report.unresolved = len(unresolved_ids)

    missing: list[str] = []
    for r in undelivered:
        missing.append(f"obligation {r.id} ({r.rule_id}) is {r.status}, not delivered")
    for oid in unresolved_ids:
        if f"unresolved:{oid}" not in open_alerts:
            missing.append(f"obligation {oid} is unresolved without an alert for the operator")
    cut: dict[str, int] = {}
    received = {"webhook": seen.webhook, "email": seen.email}
    for delivery_id, key, channel, status, attempts, rows in claimed:
        # claims a killed worker never recorded; a dead letter sent again counts anew
        earlier, rows_then = retried.get(delivery_id, (0, 0))
        cut[key] = earlier + max(0, int(attempts) - (int(rows) - rows_then))
        if status == "delivered" and channel in received and key not in received[channel]:
            missing.append(
                f"notice {key} is recorded as delivered but never reached the {channel} receiver"
            )
    report.claims_cut = sum(cut.values())
    known = {r.idempotency_key for r in claimed}
    phantom = [k for got in received.values() for k in got if k not in known]
    for key in phantom[:5]:
        missing.append(f"the receivers got a notice with an unknown key [{key}]")
    if seen.bad_signatures:
        missing.append(f"{seen.bad_signatures} webhook posts had a bad signature")
    report.missing_delivery = len(missing)

    report.required = sum(n for s, n in by_status.items() if s != "voided")
    missing += _reconciled(engine, report, calm)
    if calm is not None:
        lost = sorted(calm - stored)
        more = sorted(stored - calm)
        report.calm = {
            "obligations": len(calm),
            "only_in_calm_run": len(lost),
            "only_in_drill": len(more),
            "examples_only_in_calm_run": lost[:10],
            "examples_only_in_drill": more[:10],
        }
    report.missing = len(missing)
    report.missing_detail = missing[:20]
    report.received = {"webhook": sum(seen.webhook.values()), "email": sum(seen.email.values())}
    dups = {k: n for got in received.values() for k, n in got.items() if n > 1}
    report.duplicates = len(dups)
    report.duplicate_copies = sum(n - 1 for n in dups.values())
    report.duplicates_explained = sum(1 for k in dups if cut.get(k, 0) > 0)
    report.duplicates_unexplained = sorted(k for k in dups if cut.get(k, 0) == 0)[:20]


def _reconciled(engine: Engine, report: DrillReport, calm: set[str] | None) -> list[str]:
    """The independent reconciliation's figures in ``report``; the obligations it requires
    that were never created, as lines for the missing list."""
    from terugkeer.notify.assurance.reconcile import reconcile

    try:
        result = reconcile(engine)
    except Exception as e:  # the check is someone else's code: report, do not crash
        report.reconciliation = {"error": f"{type(e).__name__}: {str(e)[:300]}"}
        report.required_source = "obligations table (the reconciliation failed)"
        return []
    report.reconciliation = {"required": result.required, **dict(result.counts)}
    report.required = int(result.required)
    report.required_source = "independent reconciliation"
    report.missing_obligations = len(result.missing)
    missing: list[str] = []
    for gap in result.missing:
        if calm is not None and gap.key not in calm:
            report.missing_also_calm += 1
        missing.append(f"reconciliation: {gap.message()}")
    examples = [g.message() for g in (*result.extra, *result.recipient_differs)]
    report.reconciliation["examples"] = examples[:5]
    return missing
