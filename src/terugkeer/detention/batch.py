"""One batch of feed messages applied in memory: the periods, persons and events they change.

A :class:`Batch` loads what its events refer to, applies each event (or raises the
:class:`FeedError` that quarantines or parks it) and keeps the result until
:func:`terugkeer.detention.batch_write.write_batch` writes it in the batch's transaction.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from terugkeer.db.bulk import read_datetime, select_in
from terugkeer.detention.items import Item
from terugkeer.detention.parse import parse_line
from terugkeer.detention.periods import PeriodState, apply_event, fold
from terugkeer.detention.store import load_periods
from terugkeer.detention.tables import feed_events
from terugkeer.domain.codes import DETENTION_KINDS, EventKind, PeriodStatus
from terugkeer.domain.events import FeedError, FeedEvent
from terugkeer.domain.refdata import RefData
from terugkeer.security.crypto import open_body

WAITS_FOR_LENGTH = 80  # quarantine.waits_for


def event_key(event_id: str) -> str:
    """What a correction of ``event_id`` waits for: ``event:ID``, or for an id too long for
    ``quarantine.waits_for`` a digest of it."""
    key = f"event:{event_id}"
    if len(key) <= WAITS_FOR_LENGTH:
        return key
    return "event#" + hashlib.blake2b(event_id.encode("utf-8"), digest_size=16).hexdigest()


def stored_event(row: Any, rd: RefData) -> FeedEvent:
    """A stored event (a row with its ``event_id`` and ``body``) parsed again; an encrypted
    body is opened first (``security/crypto.py``)."""
    return parse_line(open_body(row.body, row.event_id), 0, "store", rd)


@dataclass(slots=True)
class BatchPeriod:
    """A period as the batch holds it: its state, and what of it must be written."""

    id: int | None
    state: PeriodState
    person_id: int | None
    new: bool = False
    dirty: bool = False
    offences_dirty: bool = False
    offences_loaded: bool = True  # False: state.offences is empty because it was not read
    person_changed: bool = False  # taken in again for another person after a withdrawn intake


class Batch:
    """The work of one transaction, in memory; :func:`~terugkeer.detention.batch_write.write_batch`
    writes it."""

    def __init__(self, conn: Connection, rd: RefData, now: datetime) -> None:
        self.conn = conn
        self.rd = rd
        self.now = now
        self.periods: dict[str, BatchPeriod | None] = {}
        # canonical person key ("bsn:…", or "pn:…" without a BSN) -> (id, date of death)
        self.persons: dict[str, tuple[int | None, datetime | None]] = {}
        self.alias: dict[str, str] = {}  # "pn:…" -> canonical key of a person with a BSN
        self.new_persons: dict[str, dict[str, Any]] = {}
        self.died: dict[str, datetime | None] = {}
        self.accepted: list[FeedEvent] = []
        self.accepted_ids: dict[str, FeedEvent] = {}
        self.withdrawn: dict[str, str] = {}  # target event_id -> correction event_id
        # Final outcome of each message, by id(item): what write_batch() writes to quarantine.
        self.outcomes: dict[int, tuple[Item, FeedError | None, str | None]] = {}
        # Events of this batch that did not fit, by id: a correction may withdraw one, which
        # is then stored as withdrawn without ever being applied (see _correction).
        self.unfit: dict[str, FeedEvent] = {}
        self.withdrawn_unfit: set[str] = set()  # of those, withdrawn since ingest last looked
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
            self.periods[ref] = BatchPeriod(period_id, state, person_id, offences_loaded=False)
        for ref in refs:
            self.periods.setdefault(ref, None)

        bsns = list({e.bsn for e in events if e.bsn and f"bsn:{e.bsn}" not in self.persons})
        self._load_persons("bsn", bsns)
        # Prison numbers are unique: one the BSNs' persons already have is known now.
        numbers = list(
            {
                e.prison_number
                for e in events
                if e.prison_number
                and f"pn:{e.prison_number}" not in self.persons
                and f"pn:{e.prison_number}" not in self.alias
            }
        )
        self._load_persons("prison_number", numbers)

    def _load_persons(self, column: str, values: list[str]) -> None:
        for person_id, bsn, number, died_at in select_in(
            self.conn, "SELECT id, bsn, prison_number, died_at FROM persons", column, values
        ):
            self.know_person(bsn, number, (person_id, read_datetime(died_at)))

    def know_person(
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
            select(feed_events.c.event_id, feed_events.c.body).where(
                feed_events.c.event_id == event_id
            )
        ).first()
        return None if row is None else stored_event(row, self.rd)

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
        self.touched.add(event_key(event.event_id))
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

    def _require_period(self, event: FeedEvent) -> BatchPeriod:
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
        person_id = person[0] if person else None  # None: new in this batch, id once written
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
            # Its intake was withdrawn: taken in again, perhaps for another person.
            before = existing.state.person_key
            self._rebuild(existing, extra=[event])
            if existing.state.person_key != before:
                existing.person_id = person_id
                existing.person_changed = True
        else:
            self.periods[ref] = BatchPeriod(
                None, apply_event(None, event), person_id, new=True, dirty=True, offences_dirty=True
            )
        if person is None and key not in self.new_persons:
            self.new_persons[key] = {
                "bsn": event.bsn,
                "prison_number": event.prison_number,
                "birth_date": event.fields.get("birth_date"),
                "sex": event.fields["sex"].value if "sex" in event.fields else None,
            }
            self.know_person(event.bsn, event.prison_number, (None, None))
            self.touched.add(f"person:{key}")
            if event.prison_number:
                self.touched.add(f"person:pn:{event.prison_number}")

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

    def _track_death(self, old_status: str, period: BatchPeriod) -> None:
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
                self.touched.add(event_key(e.event_id))
            self.touched.add(f"period:{ref}")
            return {e.event_id for e in group}
        return set()

    def _period_events(self, ref: str) -> list[FeedEvent]:
        """All non-withdrawn detention events of a period: stored and accepted in this batch."""
        out: dict[str, FeedEvent] = {}
        for row in self.conn.execute(
            select(feed_events.c.event_id, feed_events.c.body).where(
                feed_events.c.period_ref == ref, feed_events.c.withdrawn_by.is_(None)
            )
        ):
            e = stored_event(row, self.rd)
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
        self, period: BatchPeriod, extra: Sequence[FeedEvent] = (), without: str | None = None
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
        unfit = self.unfit.get(target_id) if target is None else None
        if unfit is not None:
            target = unfit  # an event that never fitted: withdrawn without being applied
        if target is None:
            raise FeedError(
                "unknown_event",
                f"correction [{event.event_id}] withdraws event [{target_id}], which is not on record",
                field="withdraws",
                value=target_id,
                waits_for=event_key(target_id),
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
        if event.period_ref is None and target.period_ref is not None:
            # A correction need not name the period: it is the withdrawn event's.
            event.period_ref = target.period_ref
            self.load([event])
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
        if unfit is not None:
            del self.unfit[target_id]
            self._accept(unfit)  # stored, with withdrawn_by set
            self.withdrawn_unfit.add(target_id)
            self.touched.add(event_key(target_id))
        self.withdrawn[target_id] = event.event_id
        if target.kind is EventKind.VICTIM_REGISTERED:
            self.victim_events = [v for v in self.victim_events if v.event_id != target_id]
        if target.kind is EventKind.RECONVICTION:
            self.reconviction_events = [
                v for v in self.reconviction_events if v.event_id != target_id
            ]


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
