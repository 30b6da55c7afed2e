"""Writing one applied batch to the store, in its transaction: persons, periods and their
offences, events and withdrawals, victims and reconvictions, and every message's outcome."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, Table, bindparam, delete, select, update

from terugkeer.db.bulk import (
    among,
    chunks,
    insert_rows,
    read_datetime,
    reserve_ids,
    select_in,
    update_rows,
)
from terugkeer.detention.batch import Batch, BatchPeriod, stored_event
from terugkeer.detention.parking import write_outcomes
from terugkeer.detention.periods import PERIOD_COLUMNS, STATE_COLUMNS, state_values
from terugkeer.detention.tables import (
    detention_periods,
    feed_events,
    period_offences,
    persons,
    reconvictions,
    victims,
)
from terugkeer.domain.codes import EventKind
from terugkeer.domain.events import FeedEvent
from terugkeer.security.crypto import contact_context, field_cipher, seal_body

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


def write_batch(batch: Batch) -> None:
    """Write what ``batch`` applied, and the outcome of each of its messages, in its transaction."""
    conn = batch.conn
    if batch.new_persons:
        keys = list(batch.new_persons)
        ids = reserve_ids(conn, persons, len(keys))
        rows = []
        for key, person_id in zip(keys, ids, strict=True):
            v = batch.new_persons[key]
            batch.know_person(v["bsn"], v["prison_number"], (person_id, None))
            rows.append((person_id, v["bsn"], v["prison_number"], v["birth_date"], v["sex"]))
        insert_rows(conn, persons, ("id", "bsn", "prison_number", "birth_date", "sex"), rows)
    for key, died_at in batch.died.items():
        pid = batch.persons[batch.alias.get(key, key)][0]
        conn.execute(update(persons).where(persons.c.id == pid).values(died_at=died_at))

    new_periods = [p for p in batch.periods.values() if p is not None and p.new]
    for p, period_id in zip(
        new_periods, reserve_ids(conn, detention_periods, len(new_periods)), strict=True
    ):
        p.id = period_id
    insert_rows(
        conn,
        detention_periods,
        ("id", *PERIOD_COLUMNS),
        [(p.id, *_period_row(batch, p)) for p in new_periods],
    )
    stored = [p for p in batch.periods.values() if p is not None and not p.new]
    # A stored period keeps its key and, but for a new intake after a withdrawn one, its
    # person: updating only its state leaves its indexes alone (and PostgreSQL's update HOT).
    update_rows(
        conn,
        detention_periods,
        "id",
        STATE_COLUMNS,
        [(*state_values(p.state), p.id) for p in stored if p.dirty],
    )
    update_rows(
        conn,
        detention_periods,
        "id",
        ("person_id",),
        [(_person_id(batch, p), p.id) for p in stored if p.person_changed],
    )
    redo = [p for p in batch.periods.values() if p is not None and p.offences_dirty]
    old = [p.id for p in redo if not p.new]
    for chunk in chunks(old):
        conn.execute(delete(period_offences).where(among(conn, period_offences.c.period_id, chunk)))
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
    cipher = field_cipher()
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
                batch.now,
                e.period_ref,
                seal_body(e.kind.value, e.event_id, e.body, cipher),
                e.body_hash,
                batch.withdrawn.get(e.event_id),
            )
            for e in batch.accepted
        ],
    )
    stored_withdrawals = [
        {"b_target": t, "b_by": c}
        for t, c in batch.withdrawn.items()
        if t not in batch.accepted_ids
    ]
    if stored_withdrawals:
        conn.execute(
            update(feed_events)
            .where(feed_events.c.event_id == bindparam("b_target"))
            .values(withdrawn_by=bindparam("b_by")),
            stored_withdrawals,
        )
        _undo_withdrawn_records(batch, [w["b_target"] for w in stored_withdrawals])
    _write_victims(batch, batch.victim_events)
    _write_reconvictions(batch, batch.reconviction_events)
    write_outcomes(batch.conn, batch.outcomes.values(), batch.now)


def _period_row(batch: Batch, p: BatchPeriod) -> tuple[Any, ...]:
    """The values of PERIOD_COLUMNS for a period."""
    return (p.state.period_ref, _person_id(batch, p), *state_values(p.state))


def _person_id(batch: Batch, p: BatchPeriod) -> int | None:
    """The id of a period's person; one new in this batch has its id once written."""
    if p.person_id is None:
        p.person_id = batch.persons[p.state.person_key][0]
    return p.person_id


def _latest(events: Iterable[FeedEvent], key: str) -> dict[str, FeedEvent]:
    latest: dict[str, FeedEvent] = {}
    for e in events:
        ref = e.fields[key]
        if ref not in latest or e.sort_key() > latest[ref].sort_key():
            latest[ref] = e
    return latest


def _write_victims(batch: Batch, events: list[FeedEvent]) -> None:
    def values(ref: str, e: FeedEvent) -> tuple[Any, ...]:
        period = batch.periods[e.period_ref or ""]
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

    _write_latest(batch, victims, "victim_ref", VICTIM_COLUMNS, events, values)


def _write_reconvictions(batch: Batch, events: list[FeedEvent]) -> None:
    def values(ref: str, e: FeedEvent) -> tuple[Any, ...]:
        f = e.fields
        return (
            ref,
            batch.persons[e.person_key][0],
            f["offence_date"],
            e.occurred_at,
            f["category"].value,
            f["statutory_max_years"],
            f["decision"].value,
            f["custodial"],
            e.event_id,
        )

    _write_latest(batch, reconvictions, "case_ref", RECONVICTION_COLUMNS, events, values)


def _write_latest(
    batch: Batch,
    table: Table,
    key: str,
    columns: Sequence[str],
    events: list[FeedEvent],
    values: Callable[[str, FeedEvent], tuple[Any, ...]],
) -> None:
    """Keep the latest registration per reference (``key``): a new reference is inserted,
    a stored one replaced by a later registration; an older one arriving late changes
    nothing. Two statements per batch, whatever its size."""
    latest = _latest(events, key)
    if not latest:
        return
    stored = {
        ref: (row_id, read_datetime(at))
        for ref, row_id, at in select_in(
            batch.conn,
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
    insert_rows(batch.conn, table, columns, inserts)
    update_rows(batch.conn, table, "id", columns, updates)


def _undo_withdrawn_records(batch: Batch, event_ids: list[str]) -> None:
    """A withdrawn victim registration or reconviction gives way to the latest earlier one."""
    for table, kind, key in (
        (victims, EventKind.VICTIM_REGISTERED, "victim_ref"),
        (reconvictions, EventKind.RECONVICTION, "case_ref"),
    ):
        refs = batch.conn.execute(
            select(table.c[key], table.c.id).where(among(batch.conn, table.c.event_id, event_ids))
        ).all()
        for ref, row_id in refs:
            where = _registrations_of(batch.conn, kind, ref)
            batch.conn.execute(delete(table).where(table.c.id == row_id))
            remaining = [
                stored_event(r, batch.rd)
                for r in batch.conn.execute(
                    select(feed_events.c.event_id, feed_events.c.body).where(
                        feed_events.c.kind == kind.value,
                        feed_events.c.withdrawn_by.is_(None),
                        where,
                    )
                )
            ]
            remaining = [e for e in remaining if e.fields[key] == ref]
            if kind is EventKind.VICTIM_REGISTERED:
                _write_victims(batch, remaining)
            else:
                _write_reconvictions(batch, remaining)


def _registrations_of(conn: Connection, kind: EventKind, ref: str) -> Any:
    """Where the stored registrations of ``ref`` can be (read before its row is deleted): a
    reconviction's body names its case (searched as text); a victim registration's body is
    encrypted (``security/crypto.py``), so its registrations are looked for among the periods
    of the person whose period the stored registration names."""
    if kind is not EventKind.VICTIM_REGISTERED:
        return feed_events.c.body.contains(ref)
    person = conn.execute(
        select(detention_periods.c.person_id)
        .join(victims, victims.c.period_id == detention_periods.c.id)
        .where(victims.c.victim_ref == ref)
    ).scalar_one()
    return feed_events.c.period_ref.in_(
        select(detention_periods.c.period_ref).where(detention_periods.c.person_id == person)
    )
