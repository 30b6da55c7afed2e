"""Writing obligations and their first delivery rows, inside the caller's transaction."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from terugkeer.db.bulk import among, chunks, insert_rows, reserve_ids, update_rows
from terugkeer.detention.periods import PeriodState
from terugkeer.detention.tables import (
    detention_periods,
    feed_events,
    period_offences,
    persons,
    victims,
)
from terugkeer.domain.codes import PeriodStatus
from terugkeer.domain.events import KIND_RANK
from terugkeer.domain.refdata import refdata
from terugkeer.notify.alerts import resolve_alert
from terugkeer.notify.rules.evaluate import (
    Evaluation,
    Grant,
    Happening,
    PeriodFacts,
    Required,
    VictimFacts,
)
from terugkeer.notify.tables import deliveries, notify_endpoints, obligations
from terugkeer.security.crypto import open_body

TERMINAL = ("voided",)
DELIVERED = ("delivered", "acknowledged")


@dataclass
class ApplyCounts:
    created: int = 0
    changed: int = 0
    voided: int = 0
    unresolved: int = 0
    notices: int = 0
    by_rule: dict[str, int] = field(default_factory=lambda: defaultdict(int))


def period_facts(conn: Connection, refs: Sequence[str]) -> dict[str, PeriodFacts]:
    """The facts the rules look at, for the given periods."""
    out: dict[str, PeriodFacts] = {}
    ids: dict[int, str] = {}
    persons_of: dict[str, int] = {}
    # Each person read by its key (a scalar subquery, not a join): only the batch's rows,
    # however many persons are stored (issue 12; tests/detention/test_query_plans.py).
    birth_date = (
        select(persons.c.birth_date)
        .where(persons.c.id == detention_periods.c.person_id)
        .scalar_subquery()
        .label("birth_date")
    )
    for chunk in chunks(list(refs)):
        for r in conn.execute(
            select(detention_periods, birth_date).where(
                among(conn, detention_periods.c.period_ref, chunk)
            )
        ):
            ids[r.id] = r.period_ref
            persons_of[r.period_ref] = r.person_id
            out[r.period_ref] = PeriodFacts(
                period_ref=r.period_ref,
                title=r.title,
                sentence_days=r.sentence_days,
                categories=frozenset(),
                birth_date=r.birth_date,
                intake_at=r.intake_at,
                status=r.status,
                residence_municipality=r.residence_municipality,
                return_municipality=r.return_municipality,
                planned_release_date=r.planned_release_date,
                release_kind=r.release_kind,
                ended_at=r.ended_at,
                last_event_id=r.last_event_id,
            )
    categories: dict[str, set[str]] = defaultdict(set)
    found: dict[str, list[VictimFacts]] = defaultdict(list)
    for chunk in chunks(list(ids)):
        for o in conn.execute(
            select(period_offences.c.period_id, period_offences.c.category).where(
                among(conn, period_offences.c.period_id, chunk)
            )
        ):
            categories[ids[o.period_id]].add(o.category)
        for v in conn.execute(
            select(
                victims.c.period_id,
                victims.c.victim_ref,
                victims.c.wants_information,
                victims.c.spoke_in_court,
                victims.c.registered_at,
            ).where(among(conn, victims.c.period_id, chunk))
        ):  # ordered here: an ORDER BY let the planner walk the whole victim_ref index
            found[ids[v.period_id]].append(
                VictimFacts(v.victim_ref, v.wants_information, v.spoke_in_court, v.registered_at)
            )
    history = _histories(conn, list(out))
    for ref, f in out.items():
        f.categories = frozenset(categories.get(ref, ()))
        f.victims = tuple(sorted(found.get(ref, ()), key=lambda v: v.victim_ref))
        h = history.get(ref)
        if h is not None:
            h.fill(f)
    _back_in_detention(conn, out, persons_of)
    return out


HISTORY_KINDS = (
    "intake",
    "release_date_set",
    "release",
    "leave_granted",
    "leave_start",
    "escape",
    "recapture",
    "death",
)
_RANK = {kind.value: rank for kind, rank in KIND_RANK.items()}


@dataclass
class _History:
    """A period's facts in event time, read from its non-withdrawn events (see PeriodFacts)."""

    grants: list[Grant] = field(default_factory=list)
    occurrences: list[Happening] = field(default_factory=list)
    intake_event_id: str = ""
    release_event_id: str | None = None
    released: bool = False
    planned: date | None = None
    planned_since: datetime | None = None
    planned_cause: str | None = None
    municipality_since: datetime | None = None

    def add(self, kind: str, event_id: str, at: datetime, body: dict[str, Any]) -> None:
        if kind in ("escape", "recapture", "death"):
            self.occurrences.append(Happening(event_id, kind, at))
            return
        if kind in ("leave_granted", "leave_start"):
            where = refdata().resolve_municipality(body["leave_municipality"])
            where = where or body["leave_municipality"]  # after mergers
            if kind == "leave_start":
                self.occurrences.append(Happening(event_id, kind, at, where))
            else:
                leave_from = datetime.fromisoformat(body["leave_from"])
                self.grants.append(Grant(event_id, at, leave_from, where))
            return
        if kind == "intake":
            self.intake_event_id = event_id
        if self.municipality_since is None and (
            body.get("residence_municipality") or body.get("return_municipality")
        ):
            self.municipality_since = at
        if kind == "release":
            self.release_event_id, self.released = event_id, True
            return
        planned = body.get("planned_release_date")
        if planned and not self.released:
            day = date.fromisoformat(planned)
            if day != self.planned:
                self.planned, self.planned_since, self.planned_cause = day, at, event_id

    def fill(self, f: PeriodFacts) -> None:
        f.grants = tuple(self.grants)
        f.occurrences = tuple(self.occurrences)
        f.intake_event_id = self.intake_event_id
        f.release_event_id = self.release_event_id
        if self.planned == f.planned_release_date:
            f.planned_since, f.planned_cause = self.planned_since, self.planned_cause
        f.municipality_since = self.municipality_since


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """One of a period's events as stored; ``body`` as kept (read it with :meth:`fields`)."""

    period_ref: str
    event_id: str
    kind: str
    occurred_at: datetime
    received_at: datetime
    body: str
    withdrawn_by: str | None = None

    def text(self) -> str:
        """The message as received (decrypted when it was stored encrypted)."""
        return open_body(self.body, self.event_id)

    def fields(self) -> dict[str, Any]:
        """The message as received, parsed as JSON."""
        parsed: dict[str, Any] = json.loads(self.text())
        return parsed


def stored_events(
    conn: Connection,
    refs: Sequence[str],
    kinds: Sequence[str] | None = HISTORY_KINDS,
    *,
    withdrawn: bool = False,
) -> dict[str, list[StoredEvent]]:
    """Each period's stored events of ``kinds`` (None: every kind) in event order (the
    fold's order: time, kind rank, event id); withdrawn ones too when ``withdrawn``. The one
    query of a period's history: the rules' facts, the backfill's view and ``notify explain``
    read it."""
    rows: dict[str, list[StoredEvent]] = defaultdict(list)
    e = feed_events.c
    for chunk in chunks(list(refs)):
        stmt = select(
            e.period_ref, e.event_id, e.kind, e.occurred_at, e.received_at, e.body, e.withdrawn_by
        ).where(among(conn, e.period_ref, chunk))
        if kinds is not None:
            stmt = stmt.where(e.kind.in_(kinds))
        if not withdrawn:
            stmt = stmt.where(e.withdrawn_by.is_(None))
        for r in conn.execute(stmt):
            rows[r.period_ref].append(StoredEvent(*r))
    for found in rows.values():
        found.sort(key=lambda r: (r.occurred_at, _RANK.get(r.kind, len(_RANK)), r.event_id))
    return dict(rows)


def history_of(events: Sequence[StoredEvent]) -> _History:
    """A period's history from its non-withdrawn events, in event order."""
    h = _History()
    for r in events:
        if r.kind in HISTORY_KINDS:
            body = {} if r.kind in ("escape", "recapture", "death") else r.fields()
            h.add(r.kind, r.event_id, r.occurred_at, body)
    return h


def _histories(conn: Connection, refs: Sequence[str]) -> dict[str, _History]:
    """Each period's history in event order (the fold's order: time, kind rank, event id)."""
    return {ref: history_of(found) for ref, found in stored_events(conn, refs).items()}


def facts_from_events(
    state: PeriodState,
    events: Sequence[StoredEvent],
    *,
    victims: Sequence[VictimFacts] = (),
    birth_date: date | None = None,
    back_in_detention_at: datetime | None = None,
) -> PeriodFacts:
    """The facts the rules look at for a period in ``state`` (the fold of ``events``), from
    its non-withdrawn ``events`` in event order, as :func:`period_facts` reads them from the
    store: ``notify explain`` replays a period event by event with it."""
    f = PeriodFacts(
        period_ref=state.period_ref,
        title=state.title,
        sentence_days=state.sentence_days,
        categories=frozenset(o.category for o in state.offences),
        birth_date=birth_date if birth_date is not None else state.birth_date,
        intake_at=state.intake_at,
        status=state.status,
        residence_municipality=state.residence_municipality,
        return_municipality=state.return_municipality,
        planned_release_date=state.planned_release_date,
        release_kind=state.release_kind,
        ended_at=state.ended_at,
        last_event_id=state.last_event_id,
        victims=tuple(victims),
        back_in_detention_at=back_in_detention_at,
    )
    history_of(events).fill(f)
    return f


def _back_in_detention(
    conn: Connection, facts: dict[str, PeriodFacts], persons_of: dict[str, int]
) -> None:
    """For a released period with a victim registered after the release: the intake of the
    person's next period, if any (a victim who registers then hears of no past release)."""
    wanted = {
        ref: (f, f.ended_at)
        for ref, f in facts.items()
        if f.ended_at is not None
        and any(v.registered_at is not None and v.registered_at > f.ended_at for v in f.victims)
    }
    if not wanted:
        return
    intakes: dict[int, list[datetime]] = defaultdict(list)
    ids = sorted({persons_of[ref] for ref in wanted})
    for chunk in chunks(ids):
        for r in conn.execute(
            select(detention_periods.c.person_id, detention_periods.c.intake_at).where(
                among(conn, detention_periods.c.person_id, chunk),
                detention_periods.c.status != PeriodStatus.WITHDRAWN.value,  # never happened
            )
        ):
            intakes[r.person_id].append(r.intake_at)
    for ref, (f, ended) in wanted.items():
        after = [at for at in intakes[persons_of[ref]] if ended is not None and at > ended]
        f.back_in_detention_at = min(after) if after else None


def not_before(req: Required, now: datetime) -> datetime:
    """When a notice of ``req`` may go out: at once, or (``send = "at_due"``) at its due time."""
    return max(now, req.due_at) if req.rule.send == "at_due" else now


def delivery_key(obligation_id: int, notice: str, version: int, channel: str) -> str:
    """The idempotency key of a delivery: one per obligation, notice kind, version, channel."""
    return f"{obligation_id}:{notice}:{version}:{channel}"


class Endpoints:
    """Which channel reaches a recipient first (priority 1) and second (priority 2); the
    portal when nothing is configured."""

    def __init__(self, conn: Connection) -> None:
        self._rows: dict[tuple[str, str, int], tuple[str, str | None]] = {
            (r.recipient_kind, r.recipient_ref, r.priority): (r.channel, r.address)
            for r in conn.execute(select(notify_endpoints))
        }

    def channel(self, kind: str, ref: str, priority: int = 1) -> tuple[str, str | None] | None:
        found = self._rows.get((kind, ref, priority)) or self._rows.get((kind, "*", priority))
        if found is None and priority == 1:
            return ("portal", None)
        return found


def add_delivery(
    conn: Connection,
    endpoints: Endpoints,
    obligation_id: int,
    kind: str,
    ref: str,
    notice: str,
    version: int,
    now: datetime,
    *,
    priority: int = 1,
    held: bool = False,
    not_before: datetime | None = None,
) -> bool:
    """Queue one notice on the recipient's channel of ``priority``; False if there is none."""
    found = endpoints.channel(kind, ref, priority)
    if found is None:
        return False
    channel, address = found
    conn.execute(
        insert(deliveries).values(
            obligation_id=obligation_id,
            notice=notice,
            obligation_version=version,
            channel=channel,
            address=address,
            idempotency_key=delivery_key(obligation_id, notice, version, channel),
            status="held" if held else "pending",
            attempts=0,
            next_attempt_at=max(now, not_before or now),
            created_at=now,
        )
    )
    return True


def apply_evaluation(
    conn: Connection,
    evaluation: Evaluation,
    period_refs: Sequence[str],
    now: datetime,
    *,
    withdrawn: dict[str, str] | None = None,
    backfilled: bool = False,
) -> ApplyCounts:
    """Create, change and void obligations so that they match ``evaluation``."""
    counts = ApplyCounts()
    existing: dict[str, Any] = {}
    for chunk in chunks(list(period_refs)):
        # Locked (PostgreSQL) so a dispatcher recording a delivery cannot slip in between
        # reading an obligation and changing it; a fixed order keeps lock order consistent.
        stmt = (
            select(obligations)
            .where(among(conn, obligations.c.period_ref, chunk))
            .order_by(obligations.c.id)
            .with_for_update()
        )
        for found in conn.execute(stmt):
            existing[found.key] = found
    endpoints = Endpoints(conn)
    required: dict[str, Required] = {}
    for req in evaluation.required:
        required.setdefault(req.key, req)

    new: list[Required] = []
    for key, req in required.items():
        row = existing.get(key)
        if row is None:
            new.append(req)
        elif row.status in TERMINAL:
            _reopen(conn, endpoints, row, req, now, counts)
        elif row.recipient_ref is None and req.recipient_ref is not None:
            _resolve(conn, endpoints, row, req, now, counts)
        elif req.recipient_ref is not None and row.recipient_ref != req.recipient_ref:
            _redirect(conn, endpoints, row, req, now, counts)
        elif req.recipient_ref is None and row.recipient_ref is not None:
            _unresolve(conn, endpoints, row, req, now, counts)
        elif req.planned and req.planned_for is not None and row.planned_for != req.planned_for:
            _change(conn, endpoints, row, req, now, counts)
        elif _timing(row, req) != _timing(row, row):
            # the same notice, with the timing the facts now give (no new notice)
            conn.execute(
                update(obligations)
                .where(obligations.c.id == row.id)
                .values(updated_at=now, **_timing(row, req))
            )
            counts.changed += 1
    _create_all(conn, endpoints, new, now, backfilled, counts)

    by_rule: dict[tuple[str, str], list[Any]] = defaultdict(list)
    by_cause: dict[str, list[Any]] = defaultdict(list)
    for row in existing.values():
        if row.key not in required and row.status not in TERMINAL:
            by_rule[(row.period_ref, row.rule_id)].append(row)
            by_cause[row.cause_event_id].append(row)
    voids: list[tuple[Any, str]] = []
    for period_ref, rule_id, occurrence, reason in evaluation.voids:
        for row in by_rule.get((period_ref, rule_id), ()):
            if occurrence == "*" or row.occurrence == occurrence:
                voids.append((row, reason))
    for target, correction in (withdrawn or {}).items():
        for row in by_cause.get(target, ()):
            voids.append((row, f"event [{target}] withdrawn by correction [{correction}]"))
    _void_all(conn, endpoints, voids, now, counts)
    return counts


OBLIGATION_COLUMNS = (
    "id",
    "key",
    "rule_id",
    "rule_version",
    "period_ref",
    "occurrence",
    "subject",
    "recipient_kind",
    "recipient_ref",
    "cause_event_id",
    "planned_for",
    "due_at",
    "status",
    "late",
    "late_reason",
    "facts",
    "version",
    "created_at",
    "updated_at",
    "escalation",
    "backfilled",
)
DELIVERY_COLUMNS = (
    "obligation_id",
    "notice",
    "obligation_version",
    "channel",
    "address",
    "idempotency_key",
    "status",
    "attempts",
    "next_attempt_at",
    "created_at",
)


def _create_all(
    conn: Connection,
    endpoints: Endpoints,
    new: list[Required],
    now: datetime,
    backfilled: bool,
    counts: ApplyCounts,
) -> None:
    """Insert new obligations and their first notices in bulk."""
    rows: list[tuple[Any, ...]] = []
    notices: list[tuple[Any, ...]] = []
    ids = reserve_ids(conn, obligations, len(new))
    for obligation_id, req in zip(ids, new, strict=True):
        late, reason = req.late, req.late_reason
        if backfilled:
            late = True
            reason = f"alsnog: created by backfill at {now.isoformat()}" + (
                f"; {reason}" if reason else ""
            )
        status = "open" if req.recipient_ref is not None else "unresolved"
        rows.append(
            (
                obligation_id,
                req.key,
                req.rule.id,
                req.rule_version,
                req.period_ref,
                req.occurrence,
                req.rule.subject,
                req.rule.recipient,
                req.recipient_ref,
                req.cause_event_id,
                req.planned_for,
                req.due_at,
                status,
                late,
                reason,
                json.dumps(req.facts, sort_keys=True),
                1,
                now,
                now,
                0,
                backfilled,
            )
        )
        counts.created += 1
        counts.by_rule[req.rule.id] += 1
        if req.recipient_ref is None:
            counts.unresolved += 1
            continue
        found = endpoints.channel(req.rule.recipient, req.recipient_ref)
        if found is not None:
            channel, address = found
            notices.append(
                (
                    obligation_id,
                    "notice",
                    1,
                    channel,
                    address,
                    delivery_key(obligation_id, "notice", 1, channel),
                    "pending",
                    0,
                    not_before(req, now),
                    now,
                )
            )
    insert_rows(conn, obligations, OBLIGATION_COLUMNS, rows)
    insert_rows(conn, deliveries, DELIVERY_COLUMNS, notices)
    counts.notices += len(notices)


def _timing(row: Any, req: Any) -> dict[str, Any]:
    """The timing of ``req`` (a Required, or the stored row itself) as stored on ``row``: a
    backfilled obligation keeps its "alsnog" lateness."""
    values = {
        "planned_for": req.planned_for,
        "due_at": req.due_at,
        "cause_event_id": req.cause_event_id,
    }
    if not row.backfilled:
        values.update(late=req.late, late_reason=req.late_reason)
    return values


def _renotify(
    conn: Connection,
    endpoints: Endpoints,
    row: Any,
    req: Required,
    notice_version: int,
    now: datetime,
    counts: ApplyCounts,
    /,
    **values: Any,
) -> None:
    """Update the obligation with ``values`` and queue a fresh notice to ``req``'s recipient
    (when known)."""
    conn.execute(
        update(obligations).where(obligations.c.id == row.id).values(updated_at=now, **values)
    )
    counts.changed += 1
    if req.recipient_ref is not None:
        counts.notices += add_delivery(
            conn,
            endpoints,
            row.id,
            row.recipient_kind,
            req.recipient_ref,
            "notice",
            notice_version,
            now,
            not_before=not_before(req, now),
        )


def _void_unsent(conn: Connection, obligation_ids: Sequence[int]) -> None:
    """Notices of the obligations not yet sent are not sent any more."""
    for chunk in chunks(list(obligation_ids)):
        conn.execute(
            update(deliveries)
            .where(
                among(conn, deliveries.c.obligation_id, chunk),
                deliveries.c.status.in_(("pending", "held")),
            )
            .values(status="voided")
        )


def _reopen(
    conn: Connection,
    endpoints: Endpoints,
    row: Any,
    req: Required,
    now: datetime,
    counts: ApplyCounts,
) -> None:
    """A voided obligation that is required again."""
    version = row.version + 1
    _renotify(
        conn,
        endpoints,
        row,
        req,
        version,
        now,
        counts,
        status="open" if req.recipient_ref is not None else "unresolved",
        version=version,
        void_reason=None,
        recipient_ref=req.recipient_ref,
        delivered_at=None,
        acknowledged_at=None,
        **_timing(row, req),
    )


def _resolve(
    conn: Connection,
    endpoints: Endpoints,
    row: Any,
    req: Required,
    now: datetime,
    counts: ApplyCounts,
) -> None:
    """An unresolved recipient became known: the operator's alert about it is resolved with it."""
    resolve_alert(conn, f"unresolved:{row.id}", now)
    _renotify(
        conn,
        endpoints,
        row,
        req,
        row.version,
        now,
        counts,
        status="open",
        recipient_ref=req.recipient_ref,
        **_timing(row, req),
    )


def _redirect(
    conn: Connection,
    endpoints: Endpoints,
    row: Any,
    req: Required,
    now: datetime,
    counts: ApplyCounts,
) -> None:
    """Another recipient now (a return municipality named later): the new one gets the notice;
    an unsent notice to the old one is voided."""
    _void_unsent(conn, [row.id])
    version = row.version + 1
    _renotify(
        conn,
        endpoints,
        row,
        req,
        version,
        now,
        counts,
        recipient_ref=req.recipient_ref,
        version=version,
        status="open",
        delivered_at=None,
        acknowledged_at=None,
        **_timing(row, req),
    )


def _unresolve(
    conn: Connection,
    endpoints: Endpoints,
    row: Any,
    req: Required,
    now: datetime,
    counts: ApplyCounts,
) -> None:
    """The recipient is no longer known (the event that named it was withdrawn): back to the
    operator's queue; a recipient already told gets a correction."""
    told = row.status in DELIVERED or row.delivered_at is not None
    _void_unsent(conn, [row.id])
    version = row.version + 1
    conn.execute(
        update(obligations)
        .where(obligations.c.id == row.id)
        .values(
            recipient_ref=None,
            status="unresolved",
            version=version,
            updated_at=now,
            delivered_at=None,
            acknowledged_at=None,
            **_timing(row, req),
        )
    )
    counts.changed += 1
    counts.unresolved += 1
    if told:
        counts.notices += add_delivery(
            conn,
            endpoints,
            row.id,
            row.recipient_kind,
            row.recipient_ref,
            "correction",
            version,
            now,
        )


def _change(
    conn: Connection,
    endpoints: Endpoints,
    row: Any,
    req: Required,
    now: datetime,
    counts: ApplyCounts,
) -> None:
    """A changed planned moment: update; whoever was told already gets a change notice."""
    told = row.status in DELIVERED or row.delivered_at is not None
    version = row.version + 1
    conn.execute(
        update(obligations)
        .where(obligations.c.id == row.id)
        .values(
            planned_for=req.planned_for,
            due_at=req.due_at,
            late=req.late,
            late_reason=req.late_reason,
            version=version,
            updated_at=now,
            cause_event_id=req.cause_event_id,
            status="open" if row.recipient_ref is not None else "unresolved",
            acknowledged_at=None if told else row.acknowledged_at,
        )
    )
    counts.changed += 1
    if row.recipient_ref is None:
        return
    if told:
        counts.notices += add_delivery(
            conn, endpoints, row.id, row.recipient_kind, row.recipient_ref, "change", version, now
        )
    else:
        # not sent yet: the pending notice goes out with the new date
        conn.execute(
            update(deliveries)
            .where(deliveries.c.obligation_id == row.id, deliveries.c.status == "pending")
            .values(obligation_version=version)
        )


def void_obligations(
    conn: Connection, voids: Sequence[tuple[Any, str]], now: datetime
) -> ApplyCounts:
    """Void stored obligations (rows of ``obligations``, locked by the caller, each with its
    reason) as the rules' voids do: unsent notices voided, a ``correction`` to whoever was
    told (the burst brake's void, ``notify burst void``)."""
    counts = ApplyCounts()
    _void_all(conn, Endpoints(conn), voids, now, counts)
    return counts


def _void_all(
    conn: Connection,
    endpoints: Endpoints,
    voids: Sequence[tuple[Any, str]],
    now: datetime,
    counts: ApplyCounts,
) -> None:
    """Void obligations (each once, with the first reason given) in a few statements whatever
    their number: their notices not yet sent are not sent any more, and then a recipient who
    was told gets a correction."""
    first: dict[int, tuple[Any, str]] = {}
    for row, reason in voids:
        first.setdefault(row.id, (row, reason))
    if not first:
        return
    update_rows(
        conn,
        obligations,
        "id",
        ("status", "void_reason", "updated_at", "version"),
        [("voided", reason, now, row.version + 1, row.id) for row, reason in first.values()],
    )
    _void_unsent(conn, list(first))
    counts.voided += len(first)
    for row, _reason in first.values():  # after the voiding above, which must not touch these
        told = row.status in DELIVERED or row.delivered_at is not None
        if told and row.recipient_ref is not None:
            counts.notices += add_delivery(
                conn,
                endpoints,
                row.id,
                row.recipient_kind,
                row.recipient_ref,
                "correction",
                row.version + 1,
                now,
            )
