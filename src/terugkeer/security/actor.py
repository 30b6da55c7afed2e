"""Who acts, in which role, for which purpose: the context every action that shows or changes
personal data takes, and with which it writes its own audit rows.

An action writes its rows with ``Actor.record`` (or ``Actor.job`` for the one row of a bulk
job) on its own connection, inside its own transaction: the change (or the read) and its audit
rows commit together, or neither does. Faces (the command line, the web) only build the actor;
they never write audit rows themselves.

* the command line: ``Actor.cli(name, purpose, command)``: recorded as ``cli:<name>``, role
  ``cli``; the command goes into every row's details. The command line cannot check who
  someone is: it records who they say they are.
* the web: ``Actor.web(principal, purpose)``: the signed-in user (or the API token's user) in
  their role.
* terugkeer itself: ``Actor.system(part, purpose)``: ``system:<part>``, role ``system``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine

from terugkeer.security import audit
from terugkeer.security.roles import Principal

JOB = "job"  # record type of the one row a bulk job appends per run
MAX_NAME = 100

Entry = str | int | tuple[str | int, dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts (as recorded), in which role, for which purpose; ``context`` goes into the
    details of every row written in this actor's name (never personal data)."""

    name: str
    role: str
    purpose: str
    context: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if not self.name or not self.name.isprintable():
            raise ValueError(f"actor [{self.name!r}]: a printable name, not empty")
        if not self.purpose or len(self.purpose) > 200 or not self.purpose.isprintable():
            raise ValueError(f"purpose [{self.purpose!r}]: 1 to 200 printable characters")

    @classmethod
    def cli(cls, name: str, purpose: str, command: str | None = None) -> Actor:
        """Someone at the command line (``name`` without the ``cli:`` prefix, or with it)."""
        name = name.strip()
        if name.startswith(audit.CLI_PREFIX):
            name = name[len(audit.CLI_PREFIX) :].strip()
        if not name:
            raise ValueError("actor: a name, not empty")
        context = {"command": f"terugkeer {command}"} if command else {}
        return cls((audit.CLI_PREFIX + name)[:MAX_NAME], audit.CLI_ROLE, purpose.strip(), context)

    @classmethod
    def web(cls, principal: Principal, purpose: str) -> Actor:
        """A signed-in user or an API token's user, in their role."""
        return cls(principal.name[:MAX_NAME], principal.role.value, purpose)

    @classmethod
    def system(cls, part: str, purpose: str) -> Actor:
        """A part of terugkeer acting on its own, e.g. ``system:detention``."""
        return cls((audit.SYSTEM_PREFIX + part)[:MAX_NAME], audit.SYSTEM_ROLE, purpose)

    @classmethod
    def named(cls, actor: Actor | str, purpose: str, otherwise: str = audit.SYSTEM_ROLE) -> Actor:
        """An actor given by its recorded name alone (``cli:…``, ``system:…``, else in the role
        ``otherwise``), or the actor itself."""
        if isinstance(actor, Actor):
            return actor
        name = actor[:MAX_NAME]
        return cls(name, audit.role_of(name, otherwise), purpose)

    def details(self, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        return {**self.context, **(extra or {})}

    def record(
        self,
        conn: Connection,
        action: str,
        record_type: str,
        items: Iterable[Entry],
        details: dict[str, Any] | None = None,
        *,
        at: datetime | None = None,
    ) -> int:
        """One row per record (an id, or an id with its own details), in order, each record
        once, in the caller's transaction; returns the number of rows. ``details`` go into
        every row; never personal data."""
        entries: list[tuple[str, dict[str, Any]]] = []
        seen: set[str] = set()
        for item in items:
            record_id, own = item if isinstance(item, tuple) else (item, {})
            key = str(record_id)
            if key in seen:
                continue
            seen.add(key)
            entries.append((key, {**self.details(details), **own}))
        audit.record_many(
            conn, self.name, self.role, action, record_type, self.purpose, entries, at=at
        )
        return len(entries)

    def job(
        self,
        conn: Connection,
        job: str,
        action: str = "run",
        details: dict[str, Any] | None = None,
    ) -> None:
        """The one row of a bulk job (record type ``job``, the job's name as the record)."""
        self.record(conn, action, JOB, [job], details)


@contextmanager
def running(
    engine: Engine, actor: Actor, job: str, details: dict[str, Any] | None = None
) -> Iterator[dict[str, Any]]:
    """The one row of a bulk job that commits as it goes (so no single transaction holds it):
    written when the job ends, with the details the job adds to the yielded dict and the
    outcome, also when it fails halfway (what it committed until then stays changed)."""
    found: dict[str, Any] = dict(details or {})
    try:
        yield found
    except BaseException as e:
        found["outcome"] = f"failed: {type(e).__name__}"
        with engine.begin() as conn:
            actor.job(conn, job, details=found)
        raise
    found["outcome"] = "done"
    with engine.begin() as conn:
        actor.job(conn, job, details=found)
