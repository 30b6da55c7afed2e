"""Backfill after a fault, and the dispatcher's view of stored periods.

``backfill`` creates the obligations that the independent reconciliation finds missing (for
events since a date) through the normal writing path, ``obligations.apply_evaluation`` with
``backfilled=True``: each is marked late ("alsnog") and its notice is queued in the outbox in
the same transaction. Where the dispatcher's rule code, run over the period's stored events,
produces the same obligation (same key and recipient), its version is written, with its facts;
otherwise the obligation is written as the reconciliation computed it, and the report says so.

``explain_period`` shows the dispatcher's evaluation of one stored period (which rules fired
for which event, and why not), and ``list_obligations`` lists stored obligations; both serve
the command line (``terugkeer notify explain``, ``terugkeer notify obligations``).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, Select, select, update

from terugkeer.db.bulk import among, chunks
from terugkeer.db.paging import Page, check_page, fetch_page
from terugkeer.detention.parse import parse_line
from terugkeer.detention.periods import PeriodState, apply_event
from terugkeer.detention.tables import detention_periods
from terugkeer.domain import render
from terugkeer.domain.codes import DETENTION_KINDS, EventKind
from terugkeer.domain.refdata import refdata
from terugkeer.notify.assurance.reconcile import (
    VOIDED,
    Gap,
    ReconcileReport,
    find_gaps,
    reconcile,
    record_alerts,
    shared,
)
from terugkeer.notify.rules.evaluate import (
    Evaluation,
    Happening,
    PeriodFacts,
    Required,
    VictimFacts,
    evaluate_period,
)
from terugkeer.notify.rules.facts import (
    StoredEvent,
    facts_from_events,
    period_facts,
    stored_events,
)
from terugkeer.notify.rules.obligations import apply_evaluation
from terugkeer.notify.rules.ruleset import RuleSet, default_rules
from terugkeer.notify.tables import deliveries, obligations
from terugkeer.security.actor import Actor

STATUSES = ("open", "sent", "delivered", "acknowledged", "voided", "unresolved", "held")
DETENTION_KIND_VALUES = tuple(sorted(k.value for k in DETENTION_KINDS))


# -- the dispatcher's view of stored periods ------------------------------------------------


def _happenings(events: Sequence[StoredEvent]) -> list[Happening]:
    """A period's detention events as the rules see them, in event order."""
    rd = refdata()
    out: list[Happening] = []
    for e in events:
        place = None
        if e.kind in (EventKind.LEAVE_START.value, EventKind.LEAVE_GRANTED.value):
            place = parse_line(e.text(), rd=rd).fields.get("leave_municipality")
        out.append(Happening(e.event_id, e.kind, e.occurred_at, place))
    return out


@dataclass(slots=True)
class PeriodView:
    happenings: list[Happening]
    evaluation: Evaluation


def dispatcher_view(conn: Connection, rules: RuleSet, refs: Sequence[str]) -> dict[str, PeriodView]:
    """The dispatcher's evaluation of each period over all its stored events at once, with
    the period's facts as stored now (not as they were when each event arrived)."""
    facts = period_facts(conn, list(refs))
    events = stored_events(conn, list(facts), DETENTION_KIND_VALUES)
    out: dict[str, PeriodView] = {}
    for ref, f in facts.items():
        happenings = _happenings(events.get(ref, []))
        out[ref] = PeriodView(happenings, evaluate_period(rules, f, happenings))
    return out


# -- backfill -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BackfillItem:
    key: str
    rule_id: str
    period_ref: str
    occurrence: str
    recipient_kind: str
    recipient_ref: str | None
    due_at: datetime | None
    action: str  # created, reopened
    source: str  # dispatcher: the rule code gives it too; reconciliation: only the SQL does
    note: str = ""

    def as_json(self) -> dict[str, Any]:
        return render.as_json(self)


@dataclass
class BackfillReport:
    since: datetime
    now: datetime
    missing: int = 0  # missing obligations found, whatever their date
    before_since: int = 0  # of them, caused before ``since``: left alone
    created: int = 0
    reopened: int = 0  # existed but voided
    notices: int = 0  # notices queued
    unresolved: int = 0  # created without a known recipient: in the operator's queue
    remaining: int = 0  # missing since ``since`` after the backfill (should be 0)
    items: list[BackfillItem] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        out = render.as_json(self)
        items = out.pop("items")
        by_source = {
            s: sum(1 for i in self.items if i.source == s) for s in ("dispatcher", "reconciliation")
        }
        return {**out, "by_source": by_source, "items": items}


def _from_gap(rules: RuleSet, gap: Gap, now: datetime) -> Required:
    """An obligation as the reconciliation computed it, for the normal writing path."""
    rule = rules.get(gap.rule_id)
    return Required(
        rule=rule,
        rule_version=rules.version,
        period_ref=gap.period_ref,
        occurrence=gap.occurrence,
        recipient_ref=gap.recipient_ref,
        slot=(gap.recipient_ref or "-") if rule.recipient == "victim" else "-",
        cause_event_id=gap.cause_event_id or "",
        planned_for=gap.planned_for,
        due_at=gap.due_at or now,
        late=True,
        late_reason="required by the stored facts but never created",
        facts={
            "source": "reconciliation",
            "scope": rule.scope,
            "event_at": None if gap.event_at is None else gap.event_at.isoformat(),
        },
    )


def backfill(
    engine: Engine,
    since: datetime,
    now: datetime | None = None,
    *,
    rules: RuleSet | None = None,
    actor: Actor | None = None,
) -> BackfillReport:
    """Create the obligations missing for what happened since ``since``, marked late
    ("alsnog"), with their notices queued; one transaction. The reconciliation's alerts are
    brought up to date in the same transaction, and so is the audit row of each obligation
    created (``create``) or reopened (``update``) by ``actor`` (record type ``notice``)."""
    if since.tzinfo is None:
        raise ValueError(f"naive datetime [{since.isoformat()}]: give the time with its zone")
    now = (now or datetime.now(UTC)).astimezone(UTC)
    rules = rules or default_rules()
    report = BackfillReport(since=since.astimezone(UTC), now=now)
    with engine.begin() as conn:
        # nothing written yet: the comparison may run on other connections too
        found = find_gaps(conn, now, rules, apart=shared(engine))
        report.missing = len(found.missing)
        chosen = [g for g in found.missing if g.event_at is None or g.event_at >= report.since]
        report.before_since = report.missing - len(chosen)
        refs = sorted({g.period_ref for g in chosen})
        produced: dict[str, Required] = {}
        for view in dispatcher_view(conn, rules, refs).values():
            for r in view.evaluation.required:
                produced.setdefault(r.key, r)  # the writer, too, keeps the first
        required: list[Required] = []
        for gap in chosen:
            mine = produced.get(gap.key)
            source, note = "dispatcher", ""
            if mine is None or mine.recipient_ref != gap.recipient_ref:
                note = (
                    "the dispatcher's rule code does not produce it"
                    if mine is None
                    else f"the dispatcher's rule code names recipient {mine.recipient_ref}"
                )
                mine, source = _from_gap(rules, gap, now), "reconciliation"
            if mine.key != gap.key:  # pragma: no cover - both build keys the same way
                raise RuntimeError(f"backfill built key [{mine.key}] for [{gap.key}]")
            action = "reopened" if gap.status == VOIDED else "created"
            if action == "reopened":
                # the writer's reopen keeps the late flag it is given: mark it here
                mine.late = True
                mine.late_reason = f"alsnog: reopened by backfill at {now.isoformat()}" + (
                    f"; {mine.late_reason}" if mine.late_reason else ""
                )
            required.append(mine)
            report.items.append(
                BackfillItem(
                    gap.key,
                    gap.rule_id,
                    gap.period_ref,
                    gap.occurrence,
                    gap.recipient_kind,
                    mine.recipient_ref,
                    mine.due_at,
                    action,
                    source,
                    note,
                )
            )
        counts = apply_evaluation(conn, Evaluation(required=required), refs, now, backfilled=True)
        reopened = [i.key for i in report.items if i.action == "reopened"]
        for chunk in chunks(reopened):
            conn.execute(
                update(obligations)
                .where(among(conn, obligations.c.key, chunk))
                .values(backfilled=True)
            )
        report.created = counts.created
        report.reopened = len(reopened)
        report.notices = counts.notices
        report.unresolved = sum(1 for r in required if r.recipient_ref is None)
        after = find_gaps(conn, now, rules)
        done = {i.key for i in report.items}
        report.remaining = sum(1 for g in after.missing if g.key in done)
        record_alerts(conn, after, now)
        who = actor or Actor.system("notify", "backfill")
        _audit_backfill(conn, who, report, since.date().isoformat())
    return report


def _audit_backfill(conn: Connection, actor: Actor, report: BackfillReport, since: str) -> None:
    ids: dict[str, int] = {}
    for chunk in chunks([i.key for i in report.items]):
        for key, obligation_id in conn.execute(
            select(obligations.c.key, obligations.c.id).where(among(conn, obligations.c.key, chunk))
        ):
            ids[key] = obligation_id
    for action, done in (("create", "created"), ("update", "reopened")):
        actor.record(
            conn,
            action,
            "notice",
            (
                (ids[i.key], {"backfilled": True, "since": since})
                for i in report.items
                if i.action == done and i.key in ids
            ),
        )


GAP_KINDS = (
    "missing",
    "overdue",
    "unacknowledged",
    "unresolved",
    "unproven",
    "wrong_timing",
    "wrong_recipient",
    "extra",
)


def check(
    engine: Engine, *, actor: Actor, shown: int | None = None, now: datetime | None = None
) -> ReconcileReport:
    """The reconciliation (:func:`reconcile`) as a job of ``actor``: one audit row per run (the
    counts), and a ``read`` of each detention period among the first ``shown`` gaps of each
    kind (all when None), the ones its caller shows; not one row per obligation checked."""
    report = reconcile(engine, now)
    gaps = [g for kind in GAP_KINDS for g in getattr(report, kind)[:shown]]
    per_period: dict[str, int] = {}
    for g in gaps:
        per_period[g.period_ref] = per_period.get(g.period_ref, 0) + 1
    with engine.begin() as conn:
        actor.job(conn, "reconcile", details={"ok": report.ok, **report.counts})
        actor.record(
            conn, "read", "detention_period", ((p, {"gaps": n}) for p, n in per_period.items())
        )
    return report


# -- reading back ---------------------------------------------------------------------------


class NotFoundError(LookupError):
    """No such period."""


@dataclass
class Explanation:
    """Why the dispatcher did what it did for one period.

    ``events``: every event of the period in event order (withdrawn ones, corrections and
    victim registrations marked as such), each with the period's state then, what each rule
    that looks at its kind decided then (fired or not, and why), and how the obligations the
    facts required changed with it. ``obligations``: the stored obligations and the ones the
    facts require now (recomputed as ingest does), side by side, every difference named.
    ``voids``: what the rules void now, each once."""

    period_ref: str
    status: str
    rules_version: str
    events: list[dict[str, Any]]
    obligations: list[dict[str, Any]]
    voids: list[dict[str, Any]]
    differences: int  # obligations whose stored and recomputed versions differ
    replay_agrees: bool  # the replay's last step requires what the stored facts require

    def as_json(self) -> dict[str, Any]:
        return render.as_json(self)


# what an obligation is, as stored and as the facts require it (``notify explain`` compares)
COMPARED = ("recipient_ref", "planned_for", "due_at", "late", "late_reason", "cause_event_id")


def explain_period(
    engine: Engine, period_ref: str, rules: RuleSet | None = None, *, actor: Actor
) -> Explanation:
    """Why the dispatcher did what it did for one period: its events replayed in event order
    (:func:`replay`), and its stored obligations beside the ones its facts require now. A
    ``read`` row of the period by ``actor``, committed before the explanation is returned."""
    rules = rules or default_rules()
    with engine.begin() as conn:
        status = conn.execute(
            select(detention_periods.c.status).where(detention_periods.c.period_ref == period_ref)
        ).scalar_one_or_none()
        if status is None:
            raise NotFoundError(f"no detention period [{period_ref}]")
        facts = period_facts(conn, [period_ref])[period_ref]
        events = stored_events(conn, [period_ref], None, withdrawn=True).get(period_ref, [])
        stored = _obligation_rows(conn, period_ref)
        notices = _notices(conn, [o["id"] for o in stored])
        actor.record(conn, "read", "detention_period", [period_ref])
    evaluation = evaluate_period(rules, facts)
    voids = _distinct_voids(evaluation.voids)
    compared = _side_by_side(evaluation, stored, notices)
    steps, replayed = replay(rules, facts, events)
    required = {r.key: _required(r) for r in reversed(evaluation.required)}
    return Explanation(
        period_ref=period_ref,
        status=status,
        rules_version=rules.version,
        events=steps,
        obligations=compared,
        voids=[{"rule_id": r, "occurrence": o, "why": w} for r, o, w in voids],
        differences=sum(1 for c in compared if c["differences"]),
        replay_agrees={k: _required(r) for k, r in replayed.items()} == required,
    )


def replay(
    rules: RuleSet, final: PeriodFacts, events: Sequence[StoredEvent]
) -> tuple[list[dict[str, Any]], dict[str, Required]]:
    """The period's events in event order, folded one by one: per event the state then,
    what each rule decided then, and the obligations the facts so far required that it
    added, changed or took away (and the voids it brought). Withdrawn events are listed and
    left out of the fold; a correction is listed where it falls in event time. Facts outside
    the period (the birth date, a later period of the person) are taken as they are now.
    Also returns what the facts required after the last event."""
    rd = refdata()
    state: PeriodState | None = None
    counted: list[StoredEvent] = []
    victims: dict[str, VictimFacts] = {}
    kinds = {e.event_id: e for e in events}
    before: dict[str, Required] = {}
    voided: set[tuple[str, str, str]] = set()
    steps: list[dict[str, Any]] = []
    for e in events:
        step: dict[str, Any] = {
            "event_id": e.event_id,
            "kind": e.kind,
            "occurred_at": e.occurred_at,
            "received_at": e.received_at,
            "marked": None,
            "note": None,
            "state": None,
            "rules": [],
            "obligations": [],
            "voids": [],
        }
        steps.append(step)
        place = None
        if e.withdrawn_by is not None:
            step["marked"] = "withdrawn"
            step["note"] = f"withdrawn by correction [{e.withdrawn_by}]: not counted"
            continue
        if e.kind == EventKind.CORRECTION.value:
            target = str(e.fields().get("withdraws", ""))
            what = kinds.get(target)
            step["marked"] = "correction"
            step["note"] = f"withdraws [{target}]" + (
                f" ({what.kind} at {what.occurred_at.isoformat()}), left out of the replay"
                if what is not None
                else ""
            )
            step["state"] = _state(state, victims)
            continue
        if e.kind == EventKind.VICTIM_REGISTERED.value:
            body = e.fields()
            ref = str(body.get("victim_ref"))
            victims[ref] = VictimFacts(
                ref,
                bool(body.get("wants_information")),
                bool(body.get("spoke_in_court")),
                e.occurred_at,
            )
            step["marked"] = "victim_registration"
            step["note"] = (
                f"victim {ref} registered: "
                f"{'wants' if victims[ref].wants_information else 'does not want'} information, "
                f"{'spoke' if victims[ref].spoke_in_court else 'did not speak'} in court"
            )
        elif e.kind in DETENTION_KIND_VALUES:
            event = parse_line(e.text(), rd=rd)
            state = apply_event(state, event)
            counted.append(e)
            place = event.fields.get("leave_municipality")
        else:
            step["note"] = "not a detention event: changes nothing here"
        step["state"] = _state(state, victims)
        if state is None:
            continue
        facts = facts_from_events(
            state,
            counted,
            victims=[victims[k] for k in sorted(victims)],
            birth_date=final.birth_date,
            back_in_detention_at=final.back_in_detention_at,
        )
        happening = Happening(e.event_id, e.kind, e.occurred_at, place)
        then = evaluate_period(rules, facts, [happening])
        step["rules"] = [
            {"rule_id": rule_id, "fired": fired, "why": why}
            for event_id, rule_id, fired, why in then.trace
            if event_id == e.event_id
        ]
        now = {r.key: r for r in reversed(then.required)}  # the first of a key counts
        step["obligations"] = _changes(before, now)
        step["voids"] = [
            {"rule_id": r, "occurrence": o, "why": w}
            for r, o, w in _distinct_voids(then.voids)
            if (r, o, w) not in voided
        ]
        voided.update(_distinct_voids(then.voids))
        before = now
    return steps, before


def _state(state: PeriodState | None, victims: dict[str, VictimFacts]) -> dict[str, Any] | None:
    if state is None:
        return None
    return {
        "status": state.status,
        "title": state.title,
        "sentence_days": state.sentence_days,
        "planned_release_date": state.planned_release_date,
        "residence_municipality": state.residence_municipality,
        "return_municipality": state.return_municipality,
        "release_kind": state.release_kind,
        "ended_at": state.ended_at,
        "victims": sorted(victims),
    }


def _required(r: Required) -> dict[str, Any]:
    return {
        "key": r.key,
        "rule_id": r.rule.id,
        "occurrence": r.occurrence,
        "recipient_kind": r.rule.recipient,
        "recipient_ref": r.recipient_ref,
        "planned_for": r.planned_for,
        "due_at": r.due_at,
        "late": r.late,
        "late_reason": r.late_reason,
        "cause_event_id": r.cause_event_id,
        "why": r.facts.get("scope"),
    }


def _changes(before: dict[str, Required], now: dict[str, Required]) -> list[dict[str, Any]]:
    """How the obligations the facts require changed with one event."""
    out: list[dict[str, Any]] = []
    for key, r in now.items():
        old = before.get(key)
        if old is None:
            out.append({"change": "new", **_required(r), "fields": []})
            continue
        was, then = _required(old), _required(r)
        changed = [k for k in COMPARED if was[k] != then[k]]
        if changed:
            out.append({"change": "changed", **then, "fields": changed, "was": was})
    for key, r in before.items():
        if key not in now:
            out.append({"change": "no longer required", **_required(r), "fields": []})
    return out


def _distinct_voids(voids: Sequence[tuple[str, str, str, str]]) -> list[tuple[str, str, str]]:
    """The rules' voids, each once: a death voids every leave and release rule once (not once
    per rule that hears of the death, and not again as "period deceased")."""
    out: list[tuple[str, str, str]] = []
    everything: set[str] = set()
    seen: set[tuple[str, str]] = set()
    for _, rule_id, occurrence, _why in voids:
        if occurrence == "*":
            everything.add(rule_id)
    for _, rule_id, occurrence, why in voids:
        if (rule_id, occurrence) in seen or (occurrence != "*" and rule_id in everything):
            continue
        seen.add((rule_id, occurrence))
        out.append((rule_id, occurrence, why))
    return out


def _void_reason(rule_id: str, occurrence: str, voids: list[tuple[str, str, str]]) -> str | None:
    for r, o, why in voids:
        if r == rule_id and o in ("*", occurrence):
            return why
    return None


def _side_by_side(
    evaluation: Evaluation, stored: list[dict[str, Any]], notices: dict[int, list[dict[str, Any]]]
) -> list[dict[str, Any]]:
    """Each obligation stored or required now: both versions and what differs."""
    required = {r.key: r for r in reversed(evaluation.required)}
    voids = _distinct_voids(evaluation.voids)
    rows = {o["key"]: o for o in stored}
    out: list[dict[str, Any]] = []
    for key in sorted(set(rows) | set(required)):
        o, r = rows.get(key), required.get(key)
        mine = None if r is None else _required(r)
        kept = None
        if o is not None:
            kept = {k: o[k] for k in ("id", "status", "version", "void_reason", "backfilled")}
            kept.update({k: o[k] for k in COMPARED})
            kept["planned_for"] = _at(o["planned_for"])
            kept["due_at"] = _at(o["due_at"])
            kept["notices"] = notices.get(o["id"], [])
        differences: list[str] = []
        if kept is None:
            differences.append("missing")
        elif mine is None:
            if kept["status"] != "voided":
                differences.append("not required")
        elif kept["status"] == "voided":
            differences.append("voided but required")
        else:
            compared = COMPARED if not kept["backfilled"] else COMPARED[:3] + COMPARED[5:]
            differences.extend(k for k in compared if kept[k] != mine[k])
        if r is not None:
            rule_id, occurrence, recipient = r.rule.id, r.occurrence, r.rule.recipient
        else:  # a key comes from one side or both
            o = rows[key]
            rule_id, occurrence, recipient = o["rule_id"], o["occurrence"], o["recipient_kind"]
        out.append(
            {
                "key": key,
                "rule_id": rule_id,
                "occurrence": occurrence,
                "recipient_kind": recipient,
                "stored": kept,
                "recomputed": mine,
                "void": _void_reason(rule_id, occurrence, voids) if mine is None else None,
                "differences": differences,
            }
        )
    out.sort(key=lambda c: ((c["recomputed"] or c["stored"])["due_at"] or _EPOCH, c["key"]))
    return out


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _at(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _notices(conn: Connection, ids: Sequence[int]) -> dict[int, list[dict[str, Any]]]:
    """Each obligation's notices (first notice, changes, corrections, reminders) in order."""
    out: dict[int, list[dict[str, Any]]] = defaultdict(list)
    d = deliveries.c
    for chunk in chunks(list(ids)):
        for r in conn.execute(
            select(d.obligation_id, d.notice, d.obligation_version, d.channel, d.status)
            .where(among(conn, d.obligation_id, chunk))
            .order_by(d.id)
        ):
            out[r.obligation_id].append(
                {
                    "notice": r.notice,
                    "version": r.obligation_version,
                    "channel": r.channel,
                    "status": r.status,
                }
            )
    return dict(out)


def list_obligations(
    engine: Engine,
    period_ref: str | None = None,
    status: str | None = None,
    limit: int | None = None,
    offset: int = 0,
    *,
    actor: Actor,
) -> Page[dict[str, Any]]:
    """Stored obligations in due order, from ``offset``, at most ``limit`` (None: all), and
    how many there are in all; ``status`` one of STATUSES. Each obligation shown is a
    ``read`` row of record type ``notice`` (its id is the notice's reference) by ``actor``,
    committed before the page is returned."""
    if status is not None and status not in STATUSES:
        raise ValueError(f"unknown status [{status}]; known: {', '.join(STATUSES)}")
    check_page(limit, offset)
    with engine.begin() as conn:
        rows, total = fetch_page(conn, _obligations_query(period_ref, status), limit, offset)
        shown = [_obligation(r) for r in rows]
        actor.record(conn, "read", "notice", (r["id"] for r in shown))
    return Page(shown, total, limit, offset)


def _obligations_query(period_ref: str | None, status: str | None) -> Select[Any]:
    o = obligations.c
    stmt = select(obligations).order_by(o.due_at, o.key)
    if period_ref is not None:
        stmt = stmt.where(o.period_ref == period_ref)
    if status is not None:
        stmt = stmt.where(o.status == status)
    return stmt


def _obligation_rows(conn: Connection, period_ref: str) -> list[dict[str, Any]]:
    return [_obligation(r) for r in conn.execute(_obligations_query(period_ref, None))]


def _obligation(r: Any) -> dict[str, Any]:
    return {
        "id": r.id,
        "key": r.key,
        "rule_id": r.rule_id,
        "rule_version": r.rule_version,
        "period_ref": r.period_ref,
        "occurrence": r.occurrence,
        "subject": r.subject,
        "recipient_kind": r.recipient_kind,
        "recipient_ref": r.recipient_ref,
        "cause_event_id": r.cause_event_id,
        "planned_for": None if r.planned_for is None else r.planned_for.isoformat(),
        "due_at": r.due_at.isoformat(),
        "status": r.status,
        "late": r.late,
        "late_reason": r.late_reason,
        "backfilled": r.backfilled,
        "version": r.version,
        "void_reason": r.void_reason,
        "facts": json.loads(r.facts),
    }
