"""Apply feed messages to the store: idempotent, order-tolerant, nothing lost.

Messages are processed in batches; each batch is one transaction in which accepted events,
the periods, victims and reconvictions they change, and the quarantine rows of rejected
messages are written together. Every message ends up applied, recognised as a duplicate, or
quarantined with its raw content and reason. A message that waits for something not yet
known (an event for a period whose intake has not arrived) is *parked*: quarantined with
``waits_for`` set, and applied automatically when that intake or person arrives.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Table, bindparam, delete, insert, select, update

from terugkeer.db.bulk import (
    among,
    chunks,
    insert_rows,
    read_datetime,
    reserve_ids,
    select_in,
    update_rows,
)
from terugkeer.detention.csvfeed import row_to_message
from terugkeer.detention.parse import parse_line, validate_message
from terugkeer.detention.periods import PeriodState, apply_event, fold
from terugkeer.detention.store import load_periods
from terugkeer.detention.tables import (
    detention_periods,
    feed_events,
    period_offences,
    persons,
    quarantine,
    reconvictions,
    victims,
)
from terugkeer.domain.codes import DETENTION_KINDS, EventKind, PeriodStatus
from terugkeer.domain.events import FeedError, FeedEvent
from terugkeer.domain.refdata import RefData, refdata
from terugkeer.security.crypto import contact_context, field_cipher

ProgressCallback = Callable[[int], None]


@dataclass(frozen=True, slots=True)
class AppliedBatch:
    """What one batch applied, for hooks that act in the same transaction (notify)."""

    events: list[FeedEvent]  # accepted, in the order applied
    withdrawn: dict[str, str]  # event id -> id of the correction that withdrew it
    now: datetime


BatchHook = Callable[[Connection, AppliedBatch], None]


@dataclass(slots=True)
class Item:
    """One message as received: a JSON line, or a CSV row kept as a JSON object of its cells."""

    line_no: int
    origin: str
    raw: str
    fmt: str = "json"  # "json" or "csv"
    quarantine_id: int | None = None
    woken: bool = False  # a parked message retried because what it waited for arrived


@dataclass
class IngestResult:
    read: int = 0
    applied: int = 0
    duplicates: int = 0
    quarantined: int = 0
    unparked: int = 0
    reasons: Counter[str] = field(default_factory=Counter)

    def as_json(self) -> dict[str, int]:
        return {
            "read": self.read,
            "applied": self.applied,
            "duplicates": self.duplicates,
            "quarantined": self.quarantined,
        }

    def add(self, other: IngestResult) -> None:
        self.read += other.read
        self.applied += other.applied
        self.duplicates += other.duplicates
        self.quarantined += other.quarantined
        self.unparked += other.unparked
        self.reasons.update(other.reasons)


def parse_item(item: Item, rd: RefData) -> FeedEvent:
    if item.fmt == "csv":
        message = row_to_message(json.loads(item.raw))
        body = json.dumps(message, ensure_ascii=False, separators=(",", ":"))
        return validate_message(message, body, item.line_no, item.origin, rd)
    return parse_line(item.raw, item.line_no, item.origin, rd)


def _content(e: FeedEvent) -> tuple[Any, ...]:
    return (e.source, e.occurred_at, e.kind, e.bsn, e.prison_number, e.period_ref, e.fields)


def _stored_event(row: Any, rd: RefData) -> FeedEvent:
    return parse_line(row.body, 0, "store", rd)


PERIOD_COLUMNS = (
    "period_ref",
    "person_id",
    "source",
    "institution",
    "title",
    "sentence_days",
    "residence_municipality",
    "return_municipality",
    "planned_release_date",
    "intake_at",
    "status",
    "leave_municipality",
    "release_kind",
    "ended_at",
    "last_event_at",
    "last_event_id",
    "event_count",
)
EVENT_COLUMNS = (
    "event_id",
    "source",
    "kind",
    "occurred_at",
    "received_at",
    "period_ref",
    "body",
    "body_hash",
    "withdrawn_by",
)


VICTIM_COLUMNS = (
    "victim_ref",
    "period_id",
    "relation",
    "spoke_in_court",
    "wants_information",
    "contact",
    "registered_at",
    "event_id",
)
RECONVICTION_COLUMNS = (
    "case_ref",
    "person_id",
    "offence_date",
    "registered_at",
    "category",
    "statutory_max_years",
    "decision",
    "custodial",
    "event_id",
)


@dataclass(slots=True)
class _Period:
    id: int | None
    state: PeriodState
    person_id: int | None
    new: bool = False
    dirty: bool = False
    offences_dirty: bool = False
    offences_loaded: bool = True  # False: state.offences is empty because it was not read


class _Batch:
    """The work of one transaction."""

    def __init__(self, conn: Connection, rd: RefData, now: datetime) -> None:
        self.conn = conn
        self.rd = rd
        self.now = now
        self.periods: dict[str, _Period | None] = {}
        # canonical person key ("bsn:…", or "pn:…" without a BSN) -> (id, date of death)
        self.persons: dict[str, tuple[int | None, datetime | None]] = {}
        self.alias: dict[str, str] = {}  # "pn:…" -> canonical key of a person with a BSN
        self.new_persons: dict[str, dict[str, Any]] = {}
        self.died: dict[str, datetime | None] = {}
        self.accepted: list[FeedEvent] = []
        self.accepted_ids: dict[str, FeedEvent] = {}
        self.withdrawn: dict[str, str] = {}  # target event_id -> correction event_id
        # Final outcome of each message, by id(item): what flush() writes to quarantine.
        self.outcomes: dict[int, tuple[Item, FeedError | None, str | None]] = {}
        self.victim_events: list[FeedEvent] = []
        self.reconviction_events: list[FeedEvent] = []
        # What this round created or changed ("period:REF", "person:KEY", "event:ID"):
        # parked messages waiting for one of these are tried again.
        self.touched: set[str] = set()

    # -- loading -------------------------------------------------------------------------
    def load(self, events: list[FeedEvent]) -> None:
        refs = [r for r in {e.period_ref for e in events if e.period_ref} if r not in self.periods]
        for ref, (period_id, person_id, state) in load_periods(
            self.conn, refs, with_offences=False
        ).items():
            self.periods[ref] = _Period(period_id, state, person_id, offences_loaded=False)
        for ref in refs:
            self.periods.setdefault(ref, None)

        bsns = list({e.bsn for e in events if e.bsn and f"bsn:{e.bsn}" not in self.persons})
        numbers = list(
            {
                e.prison_number
                for e in events
                if e.prison_number
                and f"pn:{e.prison_number}" not in self.persons
                and f"pn:{e.prison_number}" not in self.alias
            }
        )
        for column, values in (("bsn", bsns), ("prison_number", numbers)):
            for person_id, bsn, number, died_at in select_in(
                self.conn, "SELECT id, bsn, prison_number, died_at FROM persons", column, values
            ):
                self._know_person(bsn, number, (person_id, read_datetime(died_at)))

    def _know_person(
        self, bsn: str | None, number: str | None, value: tuple[int | None, datetime | None]
    ) -> str:
        key = f"bsn:{bsn}" if bsn else f"pn:{number}"
        self.persons[key] = value
        if bsn and number:
            self.alias[f"pn:{number}"] = key
        return key

    def _canonical(self, event: FeedEvent) -> str:
        """Fill in the BSN of an event that names a known person by prison number only."""
        key = event.person_key
        target = self.alias.get(key)
        if target is not None:
            event.bsn = target.removeprefix("bsn:")
            return target
        return key

    def known_event(self, event_id: str) -> FeedEvent | None:
        if event_id in self.accepted_ids:
            return self.accepted_ids[event_id]
        row = self.conn.execute(
            select(feed_events.c.body).where(feed_events.c.event_id == event_id)
        ).first()
        return None if row is None else _stored_event(row, self.rd)

    # -- applying ------------------------------------------------------------------------
    def apply(self, event: FeedEvent) -> None:
        """Apply one new (not duplicate) event or raise FeedError."""
        try:
            self._apply(event)
        except FeedError as error:
            # A message that does not fit its period now may fit once more of it arrives.
            if error.waits_for is None and event.period_ref:
                error.waits_for = f"period:{event.period_ref}"
            raise
        self.touched.add(f"event:{event.event_id}")
        if event.period_ref:
            self.touched.add(f"period:{event.period_ref}")

    def _apply(self, event: FeedEvent) -> None:
        kind = event.kind
        self._canonical(event)
        if kind is EventKind.INTAKE:
            self._intake(event)
        elif kind in DETENTION_KINDS:
            self._detention(event)
        elif kind is EventKind.CORRECTION:
            self._correction(event)
        elif kind is EventKind.VICTIM_REGISTERED:
            self._require_period(event)
            self.victim_events.append(event)
        elif kind is EventKind.RECONVICTION:
            if event.person_key not in self.persons and event.person_key not in self.new_persons:
                raise FeedError(
                    "unknown_person",
                    f"reconviction [{event.event_id}] is for a person with no detention on record",
                    field="person",
                    waits_for=f"person:{event.person_key}",
                )
            self.reconviction_events.append(event)
        self._accept(event)

    def _accept(self, event: FeedEvent) -> None:
        self.accepted.append(event)
        self.accepted_ids[event.event_id] = event

    def _require_period(self, event: FeedEvent) -> _Period:
        period = self.periods.get(event.period_ref or "")
        if period is None:
            raise FeedError(
                "unknown_period",
                f"event [{event.event_id}] is for period [{event.period_ref}], which has no intake yet",
                field="period",
                value=event.period_ref,
                waits_for=f"period:{event.period_ref}",
            )
        return period

    def _intake(self, event: FeedEvent) -> None:
        ref = event.period_ref or ""
        key = event.person_key
        person = self.persons.get(key)
        died_at = self.died[key] if key in self.died else (person[1] if person else None)
        if died_at is not None and event.occurred_at > died_at:
            raise FeedError(
                "dead_person",
                f"intake [{event.event_id}] is for a person whose death is on record",
                field="person",
            )
        existing = self.periods.get(ref)
        if existing is not None:
            if existing.state.status != PeriodStatus.WITHDRAWN:
                raise FeedError(
                    "sequence", f"period [{ref}] already has an intake", field="period", value=ref
                )
            self._rebuild(existing, extra=[event])
            return
        if person is None and key not in self.new_persons:
            self.new_persons[key] = {
                "bsn": event.bsn,
                "prison_number": event.prison_number,
                "birth_date": event.fields.get("birth_date"),
                "sex": event.fields["sex"].value if "sex" in event.fields else None,
            }
            self._know_person(event.bsn, event.prison_number, (None, None))
            self.touched.add(f"person:{key}")
            if event.prison_number:
                self.touched.add(f"person:pn:{event.prison_number}")
        state = apply_event(None, event)
        self.periods[ref] = _Period(
            None, state, person[0] if person else None, new=True, dirty=True, offences_dirty=True
        )

    def _detention(self, event: FeedEvent) -> None:
        period = self._require_period(event)
        state = period.state
        if state.status == PeriodStatus.WITHDRAWN:
            raise FeedError(
                "sequence",
                f"period [{state.period_ref}] was withdrawn by a correction of its intake",
                field="period",
                value=state.period_ref,
            )
        if event.occurred_at > state.last_event_at:
            period.state = apply_event(state, event)
            period.dirty = True
            self._track_death(state.status, period)
        else:
            self._rebuild(period, extra=[event])

    def _track_death(self, old_status: str, period: _Period) -> None:
        state = period.state
        if state.status == PeriodStatus.DECEASED:
            self.died[state.person_key] = state.ended_at
        elif old_status == PeriodStatus.DECEASED:
            self.died[state.person_key] = None  # the death was withdrawn

    def apply_group(self, ref: str, events: list[FeedEvent]) -> set[str]:
        """Apply the largest subset of several parked events of one period that fits with
        what is stored. Returns the event ids applied.

        Subsets are tried largest first, and among equals earliest events first, so the
        outcome depends on which events have arrived, not on the order they arrived in.
        """
        period = self.periods.get(ref)
        if period is None or not events or period.state.status == PeriodStatus.WITHDRAWN:
            return set()
        events = sorted(events, key=FeedEvent.sort_key)
        for e in events:
            self._canonical(e)
        for group in _subsets_largest_first(events):
            try:
                self._rebuild(period, extra=group)
            except FeedError:
                continue
            for e in group:
                self._accept(e)
                self.touched.add(f"event:{e.event_id}")
            self.touched.add(f"period:{ref}")
            return {e.event_id for e in group}
        return set()

    def _period_events(self, ref: str) -> list[FeedEvent]:
        """All non-withdrawn detention events of a period: stored and accepted in this batch."""
        out: dict[str, FeedEvent] = {}
        for row in self.conn.execute(
            select(feed_events.c.body).where(
                feed_events.c.period_ref == ref, feed_events.c.withdrawn_by.is_(None)
            )
        ):
            e = _stored_event(row, self.rd)
            out[e.event_id] = e
        for e in self.accepted:
            if e.period_ref == ref:
                out[e.event_id] = e
        return [
            e
            for e in out.values()
            if e.kind in DETENTION_KINDS and e.event_id not in self.withdrawn
        ]

    def _rebuild(
        self, period: _Period, extra: Sequence[FeedEvent] = (), without: str | None = None
    ) -> None:
        """Recompute a period from all its events (for late, out-of-order or withdrawn ones)."""
        old_status = period.state.status
        events = [e for e in self._period_events(period.state.period_ref) if e.event_id != without]
        events.extend(extra)
        state = fold(events)
        if state is None:  # its intake was withdrawn
            state = replace(period.state, status=PeriodStatus.WITHDRAWN.value)
        if not period.offences_loaded or state.offences != period.state.offences:
            period.offences_dirty = True
            period.offences_loaded = True
        period.state = state
        period.dirty = True
        self._track_death(old_status, period)

    def _correction(self, event: FeedEvent) -> None:
        target_id = event.fields["withdraws"]
        if target_id in self.withdrawn:
            raise FeedError(
                "sequence",
                f"event [{target_id}] was already withdrawn by [{self.withdrawn[target_id]}]",
                field="withdraws",
                value=target_id,
            )
        target = self.known_event(target_id)
        if target is None:
            raise FeedError(
                "unknown_event",
                f"correction [{event.event_id}] withdraws event [{target_id}], which is not on record",
                field="withdraws",
                value=target_id,
                waits_for=f"event:{target_id}",
            )
        stored = self.conn.execute(
            select(feed_events.c.withdrawn_by).where(feed_events.c.event_id == target_id)
        ).first()
        if stored is not None and stored.withdrawn_by is not None:
            raise FeedError(
                "sequence",
                f"event [{target_id}] was already withdrawn by [{stored.withdrawn_by}]",
                field="withdraws",
                value=target_id,
            )
        if target.kind is EventKind.CORRECTION:
            raise FeedError(
                "sequence", "a correction cannot be withdrawn", field="withdraws", value=target_id
            )
        if target.period_ref != event.period_ref:
            raise FeedError(
                "sequence",
                f"correction [{event.event_id}] names period [{event.period_ref}] but event [{target_id}] is for [{target.period_ref}]",
                field="period",
                value=event.period_ref,
            )
        if target.kind in DETENTION_KINDS:
            period = self._require_period(event)
            self._rebuild(period, without=target_id)
        self.withdrawn[target_id] = event.event_id
        if target.kind is EventKind.VICTIM_REGISTERED:
            self.victim_events = [v for v in self.victim_events if v.event_id != target_id]
        if target.kind is EventKind.RECONVICTION:
            self.reconviction_events = [
                v for v in self.reconviction_events if v.event_id != target_id
            ]

    # -- writing -------------------------------------------------------------------------
    def flush(self) -> None:
        conn = self.conn
        if self.new_persons:
            keys = list(self.new_persons)
            ids = reserve_ids(conn, persons, len(keys))
            rows = []
            for key, person_id in zip(keys, ids, strict=True):
                v = self.new_persons[key]
                self._know_person(v["bsn"], v["prison_number"], (person_id, None))
                rows.append((person_id, v["bsn"], v["prison_number"], v["birth_date"], v["sex"]))
            insert_rows(conn, persons, ("id", "bsn", "prison_number", "birth_date", "sex"), rows)
        for key, died_at in self.died.items():
            pid = self.persons[self.alias.get(key, key)][0]
            conn.execute(update(persons).where(persons.c.id == pid).values(died_at=died_at))

        new_periods = [p for p in self.periods.values() if p is not None and p.new]
        for p, period_id in zip(
            new_periods, reserve_ids(conn, detention_periods, len(new_periods)), strict=True
        ):
            p.id = period_id
        insert_rows(
            conn,
            detention_periods,
            ("id", *PERIOD_COLUMNS),
            [(p.id, *self._period_row(p)) for p in new_periods],
        )
        update_rows(
            conn,
            detention_periods,
            "id",
            PERIOD_COLUMNS,
            [
                (*self._period_row(p), p.id)
                for p in self.periods.values()
                if p is not None and p.dirty and not p.new
            ],
        )
        redo = [p for p in self.periods.values() if p is not None and p.offences_dirty]
        old = [p.id for p in redo if not p.new]
        for chunk in chunks(old):
            conn.execute(
                delete(period_offences).where(among(conn, period_offences.c.period_id, chunk))
            )
        insert_rows(
            conn,
            period_offences,
            ("period_id", "position", "category", "statutory_max_years"),
            [
                (p.id, i, o.category, o.statutory_max_years)
                for p in redo
                for i, o in enumerate(p.state.offences)
            ],
        )
        insert_rows(
            conn,
            feed_events,
            EVENT_COLUMNS,
            [
                (
                    e.event_id,
                    e.source,
                    e.kind.value,
                    e.occurred_at,
                    self.now,
                    e.period_ref,
                    e.body,
                    e.body_hash,
                    self.withdrawn.get(e.event_id),
                )
                for e in self.accepted
            ],
        )
        stored_withdrawals = [
            {"b_target": t, "b_by": c}
            for t, c in self.withdrawn.items()
            if t not in self.accepted_ids
        ]
        if stored_withdrawals:
            conn.execute(
                update(feed_events)
                .where(feed_events.c.event_id == bindparam("b_target"))
                .values(withdrawn_by=bindparam("b_by")),
                stored_withdrawals,
            )
            self._undo_withdrawn_records([w["b_target"] for w in stored_withdrawals])
        self._write_victims(self.victim_events)
        self._write_reconvictions(self.reconviction_events)
        self._write_quarantine()

    def _write_quarantine(self) -> None:
        rows: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        done: list[int] = []
        for item, error, event_id in self.outcomes.values():
            if error is None:
                if item.quarantine_id is not None:
                    done.append(item.quarantine_id)
            elif item.quarantine_id is None:
                rows.append(_quarantine_row(item, error, self.now, event_id))
            else:
                updates.append(
                    {
                        "b_id": item.quarantine_id,
                        "reason": error.reason,
                        "field": error.field,
                        "value": error.value,
                        "message": error.message,
                        "waits_for": error.waits_for,
                    }
                )
        if rows:
            self.conn.execute(insert(quarantine), rows)
        if updates:
            self.conn.execute(
                update(quarantine)
                .where(quarantine.c.id == bindparam("b_id"))
                .values(
                    reason=bindparam("reason"),
                    field=bindparam("field"),
                    value=bindparam("value"),
                    message=bindparam("message"),
                    waits_for=bindparam("waits_for"),
                    attempts=quarantine.c.attempts + 1,
                ),
                updates,
            )
        for chunk in chunks(done):
            self.conn.execute(
                update(quarantine)
                .where(among(self.conn, quarantine.c.id, chunk))
                .values(status="applied", resolved_at=self.now, attempts=quarantine.c.attempts + 1)
            )

    def _period_row(self, p: _Period) -> tuple[Any, ...]:
        """The values of PERIOD_COLUMNS for a period."""
        s = p.state
        if p.person_id is None:
            p.person_id = self.persons[s.person_key][0]
        return (
            s.period_ref,
            p.person_id,
            s.source,
            s.institution,
            s.title,
            s.sentence_days,
            s.residence_municipality,
            s.return_municipality,
            s.planned_release_date,
            s.intake_at,
            s.status,
            s.leave_municipality,
            s.release_kind,
            s.ended_at,
            s.last_event_at,
            s.last_event_id,
            s.event_count,
        )

    def _latest(self, events: Iterable[FeedEvent], key: str) -> dict[str, FeedEvent]:
        latest: dict[str, FeedEvent] = {}
        for e in events:
            ref = e.fields[key]
            if ref not in latest or e.sort_key() > latest[ref].sort_key():
                latest[ref] = e
        return latest

    def _write_victims(self, events: list[FeedEvent]) -> None:
        def values(ref: str, e: FeedEvent) -> tuple[Any, ...]:
            period = self.periods[e.period_ref or ""]
            assert period is not None  # noqa: S101 - checked in apply()
            f = e.fields
            contact = json.dumps(f["contact"], ensure_ascii=False)
            return (
                ref,
                period.id,
                f["relation"].value,
                f["spoke_in_court"],
                f["wants_information"],
                field_cipher().encrypt(contact, contact_context(ref)),
                e.occurred_at,
                e.event_id,
            )

        self._write_latest(victims, "victim_ref", VICTIM_COLUMNS, events, values)

    def _write_reconvictions(self, events: list[FeedEvent]) -> None:
        def values(ref: str, e: FeedEvent) -> tuple[Any, ...]:
            f = e.fields
            return (
                ref,
                self.persons[e.person_key][0],
                f["offence_date"],
                e.occurred_at,
                f["category"].value,
                f["statutory_max_years"],
                f["decision"].value,
                f["custodial"],
                e.event_id,
            )

        self._write_latest(reconvictions, "case_ref", RECONVICTION_COLUMNS, events, values)

    def _write_latest(
        self,
        table: Table,
        key: str,
        columns: Sequence[str],
        events: list[FeedEvent],
        values: Callable[[str, FeedEvent], tuple[Any, ...]],
    ) -> None:
        """Keep the latest registration per reference (``key``): a new reference is inserted,
        a stored one replaced by a later registration; an older one arriving late changes
        nothing. Two statements per batch, whatever its size."""
        latest = self._latest(events, key)
        if not latest:
            return
        stored = {
            ref: (row_id, read_datetime(at))
            for ref, row_id, at in select_in(
                self.conn,
                f"SELECT {key}, id, registered_at FROM {table.name}",  # noqa: S608  # nosec B608
                key,
                list(latest),
            )
        }
        inserts: list[tuple[Any, ...]] = []
        updates: list[tuple[Any, ...]] = []
        for ref, e in latest.items():
            row_id, registered_at = stored.get(ref, (None, None))
            if registered_at is not None and registered_at > e.occurred_at:
                continue
            if row_id is None:
                inserts.append(values(ref, e))
            else:
                updates.append((*values(ref, e), row_id))
        insert_rows(self.conn, table, columns, inserts)
        update_rows(self.conn, table, "id", columns, updates)

    def _undo_withdrawn_records(self, event_ids: list[str]) -> None:
        """A withdrawn victim registration or reconviction gives way to the latest earlier one."""
        for table, kind, key in (
            (victims, EventKind.VICTIM_REGISTERED, "victim_ref"),
            (reconvictions, EventKind.RECONVICTION, "case_ref"),
        ):
            refs = self.conn.execute(
                select(table.c[key], table.c.id).where(
                    among(self.conn, table.c.event_id, event_ids)
                )
            ).all()
            for ref, row_id in refs:
                self.conn.execute(delete(table).where(table.c.id == row_id))
                remaining = [
                    _stored_event(r, self.rd)
                    for r in self.conn.execute(
                        select(feed_events.c.body).where(
                            feed_events.c.kind == kind.value,
                            feed_events.c.withdrawn_by.is_(None),
                            feed_events.c.body.contains(ref),
                        )
                    )
                ]
                remaining = [e for e in remaining if e.fields[key] == ref]
                if kind is EventKind.VICTIM_REGISTERED:
                    self._write_victims(remaining)
                else:
                    self._write_reconvictions(remaining)


def _quarantine_row(
    item: Item, error: FeedError, now: datetime, event_id: str | None
) -> dict[str, Any]:
    return {
        "received_at": now,
        "origin": item.origin[:255],
        "line_no": item.line_no,
        "raw": item.raw,
        "event_id": event_id,
        "reason": error.reason,
        "field": error.field,
        "value": error.value,
        "message": error.message,
        "waits_for": error.waits_for,
        "format": item.fmt,
        "status": "open",
        "resolved_at": None,
        "attempts": 0 if item.quarantine_id is None else 1,
    }


def process_batch(
    conn: Connection,
    items: Sequence[Item],
    rd: RefData | None = None,
    hooks: Sequence[BatchHook] = (),
) -> IngestResult:
    """Apply ``items`` inside the caller's transaction ``conn``.

    Events are applied in event-time order. A message that fails while waiting for something
    (its period's intake, an earlier event of its period, its person) is retried in the same
    batch whenever that thing changes, and otherwise parked in quarantine for later batches.
    """
    rd = rd or refdata()
    batch = _Batch(conn, rd, datetime.now(UTC))
    pending: list[tuple[Item, FeedEvent]] = []
    seen: dict[str, FeedEvent] = {}
    duplicates: list[Item] = []
    admitted: set[int] = set()  # quarantine ids of parked messages taken up in this batch

    def admit(work: Iterable[Item]) -> list[tuple[Item, FeedEvent]]:
        """Parse items and set duplicates aside; return the new events."""
        fresh: list[tuple[Item, FeedEvent]] = []
        for item in work:
            if item.quarantine_id is not None:
                if item.quarantine_id in admitted:
                    continue  # a parked message already in play in this batch
                admitted.add(item.quarantine_id)
            try:
                event = parse_item(item, rd)
            except FeedError as error:
                batch.outcomes[id(item)] = (item, error, None)
                continue
            except ValueError as error:  # a stored CSV row that is not a JSON object
                batch.outcomes[id(item)] = (item, FeedError("invalid_json", str(error)), None)
                continue
            first = seen.get(event.event_id)
            if first is not None:
                if _content(first) == _content(event):
                    duplicates.append(item)
                    batch.outcomes[id(item)] = (item, None, event.event_id)
                else:
                    batch.outcomes[id(item)] = (item, _conflict(event), event.event_id)
                continue
            seen[event.event_id] = event
            fresh.append((item, event))
        stored = {
            event_id: (hash_, body)
            for event_id, hash_, body in select_in(
                conn,
                "SELECT event_id, body_hash, body FROM feed_events",
                "event_id",
                [e.event_id for _, e in fresh],
            )
        }
        new: list[tuple[Item, FeedEvent]] = []
        for item, event in fresh:
            known = stored.get(event.event_id)
            if known is None:
                new.append((item, event))
            elif known[0] == event.body_hash or _content(parse_line(known[1], rd=rd)) == _content(
                event
            ):
                duplicates.append(item)
                batch.outcomes[id(item)] = (item, None, event.event_id)
            else:
                batch.outcomes[id(item)] = (item, _conflict(event), event.event_id)
        return new

    pending.extend(admit(items))
    waiting: dict[str, list[tuple[Item, FeedEvent]]] = {}
    while pending:
        work = sorted(pending, key=lambda pair: pair[1].sort_key())
        pending.clear()
        batch.load([e for _, e in work])
        batch.touched.clear()
        for item, event in work:
            try:
                batch.apply(event)
            except FeedError as error:
                batch.outcomes[id(item)] = (item, error, event.event_id)
                if error.waits_for:
                    waiting.setdefault(error.waits_for, []).append((item, event))
                continue
            batch.outcomes[id(item)] = (item, None, event.event_id)
        # Events of one period that fail one by one may fit together (a leave, an escape
        # and a recapture arriving after a later transfer): try each such group at once.
        failed = {
            event.period_ref
            for item, event in work
            if batch.outcomes[id(item)][1] is not None and event.kind in DETENTION_KINDS
        }
        for ref in sorted(r for r in failed if r and batch.periods.get(r) is not None):
            key = f"period:{ref}"
            parked = admit(_parked(conn, [key]))
            waiting.setdefault(key, []).extend(parked)
            group = [p for p in waiting[key] if p[1].kind in DETENTION_KINDS]
            fitted = batch.apply_group(ref, [e for _, e in group])
            # What does not fit keeps its outcome: an error now, or its stored quarantine row.
            for item, event in group:
                if event.event_id in fitted:
                    batch.outcomes[id(item)] = (item, None, event.event_id)
            waiting[key] = [p for p in waiting[key] if p[1].event_id not in fitted]
        touched = sorted(batch.touched)
        for key in touched:
            pending.extend(waiting.pop(key, ()))
        pending.extend(admit(_parked(conn, touched)))
    batch.flush()
    applied = AppliedBatch(list(batch.accepted), dict(batch.withdrawn), batch.now)
    for hook in hooks:
        hook(conn, applied)

    result = IngestResult()
    dup_ids = {id(i) for i in duplicates}
    for item, outcome, _ in batch.outcomes.values():
        if item.woken:
            result.unparked += outcome is None
            continue
        result.read += 1
        if outcome is not None:
            result.quarantined += 1
            result.reasons[outcome.reason] += 1
        elif id(item) in dup_ids:
            result.duplicates += 1
        else:
            result.applied += 1
    return result


MAX_GROUP_SEARCH = 10  # exhaustive subset search up to this many parked events of a period


def _subsets_largest_first(events: list[FeedEvent]) -> Iterator[list[FeedEvent]]:
    """Non-empty subsets, largest first. Beyond MAX_GROUP_SEARCH events only the whole
    group and the groups missing one event are tried."""
    n = len(events)
    if n > MAX_GROUP_SEARCH:
        yield events
        for i in range(n):
            yield events[:i] + events[i + 1 :]
        return
    for size in range(n, 0, -1):
        for combo in itertools.combinations(range(n), size):
            yield [events[i] for i in combo]


def _conflict(event: FeedEvent) -> FeedError:
    return FeedError(
        "conflict",
        f"event_id [{event.event_id}] was received before with different content",
        field="event_id",
        value=event.event_id,
    )


def _parked(conn: Connection, keys: Iterable[str]) -> list[Item]:
    """Open quarantine rows parked on one of ``keys``."""
    items: list[Item] = []
    keys = list(keys)
    if not keys or not _any_parked(conn):
        return items
    for chunk in chunks(sorted(keys)):
        for row in conn.execute(
            select(
                quarantine.c.id,
                quarantine.c.origin,
                quarantine.c.line_no,
                quarantine.c.raw,
                quarantine.c.format,
            )
            .where(quarantine.c.status == "open", among(conn, quarantine.c.waits_for, chunk))
            .order_by(quarantine.c.id)
        ):
            items.append(
                Item(row.line_no, row.origin, row.raw, row.format, quarantine_id=row.id, woken=True)
            )
    return items


def _any_parked(conn: Connection) -> bool:
    return (
        conn.execute(
            select(quarantine.c.id)
            .where(quarantine.c.status == "open", quarantine.c.waits_for.is_not(None))
            .limit(1)
        ).first()
        is not None
    )


# -- reading files ---------------------------------------------------------------------------


def read_items(path: Path) -> Iterator[Item]:
    """The messages in a JSON Lines or CSV file (by extension), with their line numbers."""
    origin = path.name
    if path.suffix.lower() == ".csv":
        with path.open(encoding="utf-8-sig", newline="") as fh:
            reader = csv.DictReader(fh)
            for row in reader:
                yield Item(reader.line_num, origin, json.dumps(row, ensure_ascii=False), "csv")
        return
    with path.open(encoding="utf-8-sig", errors="surrogateescape") as fh:
        for n, line in enumerate(fh, start=1):
            text = line.rstrip("\r\n")
            if text.strip():
                yield Item(n, origin, _printable(text))


def _printable(text: str) -> str:
    """Undecodable bytes survive as \\udcXX escapes; store them visibly, never drop a line."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return text


def ingest_items(
    engine: Engine,
    items: Iterable[Item],
    *,
    batch_size: int = 5000,
    progress: ProgressCallback | None = None,
    hooks: Sequence[BatchHook] = (),
) -> IngestResult:
    """Apply messages in batches, one transaction per batch; ``hooks`` run inside it."""
    rd = refdata()
    total = IngestResult()
    batch: list[Item] = []

    def run() -> None:
        with engine.begin() as conn:
            total.add(process_batch(conn, batch, rd, hooks))
        if progress:
            progress(len(batch))
        batch.clear()

    for item in items:
        batch.append(item)
        if len(batch) >= batch_size:
            run()
    if batch:
        run()
    return total


def ingest_files(
    engine: Engine,
    paths: Sequence[Path],
    *,
    batch_size: int = 5000,
    progress: ProgressCallback | None = None,
    hooks: Sequence[BatchHook] = (),
) -> IngestResult:
    def items() -> Iterator[Item]:
        for path in paths:
            yield from read_items(path)

    return ingest_items(engine, items(), batch_size=batch_size, progress=progress, hooks=hooks)


def ingest_text(engine: Engine, text: str, origin: str = "<text>", **kwargs: Any) -> IngestResult:
    """Convenience for tests and tools: ingest JSON Lines given as a string."""
    items = (
        Item(n, origin, line) for n, line in enumerate(io.StringIO(text), start=1) if line.strip()
    )
    return ingest_items(
        engine, (Item(i.line_no, i.origin, i.raw.rstrip("\n")) for i in items), **kwargs
    )
