"""Reading detention periods back from the store, and checking them against their events."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace

from sqlalchemy import Connection, select

from terugkeer.db.bulk import among, chunks, read_date, read_datetime, select_in, select_rows
from terugkeer.detention.parse import parse_line
from terugkeer.detention.periods import Offence, PeriodState, fold
from terugkeer.detention.tables import feed_events, period_offences
from terugkeer.domain.codes import DETENTION_KINDS, PeriodStatus
from terugkeer.domain.events import FeedEvent
from terugkeer.domain.refdata import refdata
from terugkeer.security.actor import Actor
from terugkeer.security.crypto import open_body

_PERIOD_SQL = (
    "SELECT p.id, p.person_id, p.period_ref, s.bsn, s.prison_number, p.source, p.institution,"
    " p.title, p.sentence_days, p.residence_municipality, p.return_municipality,"
    " p.planned_release_date, p.intake_at, p.status, p.leave_municipality, p.release_kind,"
    " p.ended_at, p.last_event_at, p.last_event_id, p.event_count"
    " FROM detention_periods p JOIN persons s ON s.id = p.person_id"
)
# The same columns for a batch's periods: each person read by its key, so a lookup touches
# only the rows of the batch however many persons are stored (a join let PostgreSQL hash all
# persons for a batch's few thousand periods: the cost grew with the history, issue 12).
_PERIOD_BY_REF_SQL = (
    "SELECT p.id, p.person_id, p.period_ref,"
    " (SELECT s.bsn FROM persons s WHERE s.id = p.person_id),"
    " (SELECT s.prison_number FROM persons s WHERE s.id = p.person_id), p.source, p.institution,"
    " p.title, p.sentence_days, p.residence_municipality, p.return_municipality,"
    " p.planned_release_date, p.intake_at, p.status, p.leave_municipality, p.release_kind,"
    " p.ended_at, p.last_event_at, p.last_event_id, p.event_count"
    " FROM detention_periods p"
)


def load_periods(
    conn: Connection, refs: Sequence[str] | None = None, *, with_offences: bool = True
) -> dict[str, tuple[int, int, PeriodState]]:
    """Stored periods by reference: (period id, person id, state). All periods if ``refs`` is
    None. Without offences, each state's ``offences`` is empty: for callers that never read
    them (ingest's fast path). Reads through the driver: this is on the ingest hot path."""
    if refs is None:
        rows = select_rows(conn, _PERIOD_SQL, ())
    else:
        rows = select_in(conn, _PERIOD_BY_REF_SQL, "p.period_ref", refs)
    offences: dict[int, list[Offence]] = defaultdict(list)
    if with_offences:
        for chunk in chunks([r[0] for r in rows]):
            for o in conn.execute(
                select(period_offences)
                .where(among(conn, period_offences.c.period_id, chunk))
                .order_by(period_offences.c.period_id, period_offences.c.position)
            ):
                offences[o.period_id].append(Offence(o.category, o.statutory_max_years))
    out: dict[str, tuple[int, int, PeriodState]] = {}
    for r in rows:
        (pid, person_id, ref, bsn, number, source, institution, title, days, residence,
         back, planned, intake_at, status, leave, release_kind, ended, last_at, last_id,
         count) = r  # fmt: skip
        out[ref] = (
            pid,
            person_id,
            PeriodState(
                period_ref=ref,
                person_key=f"bsn:{bsn}" if bsn else f"pn:{number}",
                source=source,
                institution=institution,
                title=title,
                sentence_days=days,
                offences=tuple(offences.get(pid, ())),
                residence_municipality=residence,
                return_municipality=back,
                planned_release_date=read_date(planned),
                intake_at=read_datetime(intake_at),  # type: ignore[arg-type]
                status=status,
                leave_municipality=leave,
                release_kind=release_kind,
                ended_at=read_datetime(ended),
                last_event_at=read_datetime(last_at),  # type: ignore[arg-type]
                last_event_id=last_id,
                event_count=count,
            ),
        )
    return out


def derive_periods(conn: Connection) -> dict[str, PeriodState]:
    """Every period recomputed from its stored, non-withdrawn events alone."""
    rd = refdata()
    events: dict[str, list[FeedEvent]] = defaultdict(list)
    withdrawn_refs: set[str] = set()
    kinds = [k.value for k in DETENTION_KINDS]
    for row in conn.execute(
        select(
            feed_events.c.period_ref,
            feed_events.c.event_id,
            feed_events.c.body,
            feed_events.c.withdrawn_by,
        ).where(feed_events.c.kind.in_(kinds))
    ):
        if row.withdrawn_by is None:
            events[row.period_ref].append(parse_line(open_body(row.body, row.event_id), rd=rd))
        else:
            withdrawn_refs.add(row.period_ref)
    out: dict[str, PeriodState] = {}
    for ref, evs in events.items():
        state = fold(evs)
        if state is not None:
            out[ref] = state
    stored = None
    for ref in (withdrawn_refs | set(events)) - set(out):
        # No intake left: the period was withdrawn; keep what was stored, marked so.
        stored = stored or load_periods(conn)
        if ref in stored:
            out[ref] = replace(stored[ref][2], status=PeriodStatus.WITHDRAWN.value)
    return out


@dataclass(frozen=True, slots=True)
class PeriodProblem:
    """A stored period that differs from the rebuild from its events."""

    period_ref: str
    problem: str

    def __str__(self) -> str:
        return f"period [{self.period_ref}] {self.problem}"


def check_periods(conn: Connection, *, actor: Actor | None = None) -> list[PeriodProblem]:
    """Differences between the stored periods and a rebuild from events (empty when consistent).
    Each period that differs is a ``read`` row by ``actor``, in the caller's transaction."""
    stored = {ref: s for ref, (_, _, s) in load_periods(conn).items()}
    derived = derive_periods(conn)
    problems = []
    for ref in sorted(set(stored) | set(derived)):
        a, b = stored.get(ref), derived.get(ref)
        if a is None or b is None:
            problems.append(PeriodProblem(ref, "is missing" if a is None else "is not derivable"))
            continue
        if a.comparable() != b.comparable():
            diff = {
                k: (v, b.comparable()[k])
                for k, v in a.comparable().items()
                if v != b.comparable()[k]
            }
            problems.append(PeriodProblem(ref, f"differs from its events: {diff}"))
    who = actor or Actor.system("detention", "periods check")
    who.record(conn, "read", "detention_period", (p.period_ref for p in problems))
    return problems
