"""The command line's share of the audit log: who runs a command, for what purpose, and the
rows each command appends to the hash-chained log (``security/audit.py``).

The command line runs on the server with the database's own credentials, so it cannot check
who someone is: it records who they say they are. The actor is ``--as NAME``, else
``$TERUGKEER_ACTOR``, else ``$TERUGKEER_USER`` (what ``terugkeer import`` read before), else
the operating-system login; it is recorded as ``cli:<name>`` with role ``cli``. Every command
has a default purpose, which ``--purpose`` overrides.

A command that shows or changes personal data appends one row per record it shows or changes,
in one transaction, *before* it prints anything: no audit row, no output. Bulk machine jobs
(ingest, replay, the worker, reconciliation, key rotation, the demo) append one row per run
instead of one per message they process. See the inventory in ``docs/security.md``.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated, Any

import typer
from sqlalchemy import Engine

from terugkeer.db.engine import ConnOrEngine, transaction
from terugkeer.security import audit

ROLE = audit.CLI_ROLE
PREFIX = audit.CLI_PREFIX
ACTOR_ENV = "TERUGKEER_ACTOR"
LEGACY_ACTOR_ENV = "TERUGKEER_USER"
JOB = "job"  # record type of the one row a bulk job appends per run

AsOpt = Annotated[
    str | None,
    typer.Option(
        "--as",
        help="who runs this, for the audit log (default: $TERUGKEER_ACTOR, else your login)",
        show_default=False,
    ),
]
PurposeOpt = Annotated[
    str, typer.Option("--purpose", help="why, recorded in the audit log with every row")
]

Entry = str | int | tuple[str | int, dict[str, Any]]


def login() -> str:
    """The operating-system user running the command."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name and no passwd entry (some containers)
        return f"uid-{os.getuid()}"


def actor_name(explicit: str | None = None) -> str:
    """``cli:<name>`` of whoever runs the command (see the module's docstring)."""
    name = (
        explicit or os.environ.get(ACTOR_ENV) or os.environ.get(LEGACY_ACTOR_ENV) or login() or ""
    ).strip()
    if name.startswith(PREFIX):
        name = name[len(PREFIX) :].strip()
    if not name or not name.isprintable():
        raise typer.BadParameter(
            f"name who runs the command: --as NAME or ${ACTOR_ENV} (printable, not empty)",
            param_hint="--as",
        )
    return (PREFIX + name)[:100]


@dataclass(frozen=True)
class CliAudit:
    """The audit context of one command run."""

    command: str  # as typed after `terugkeer`, e.g. "quarantine list"
    actor: str
    purpose: str

    @classmethod
    def of(cls, command: str, who: str | None, purpose: str) -> CliAudit:
        """Resolve the actor and check the purpose; a bad value is a usage error (exit 2),
        before anything is read."""
        purpose = purpose.strip()
        if not purpose or len(purpose) > 200 or not purpose.isprintable():
            raise typer.BadParameter("1 to 200 printable characters", param_hint="--purpose")
        return cls(command, actor_name(who), purpose)

    def _details(self, extra: dict[str, Any] | None) -> dict[str, Any]:
        return {"command": f"terugkeer {self.command}", **(extra or {})}

    def records(
        self,
        target: ConnOrEngine,
        action: str,
        record_type: str,
        items: Iterable[Entry],
        details: dict[str, Any] | None = None,
    ) -> int:
        """One row per record (an id, or an id with its own details), in order, each record
        once; returns the number of rows. ``details`` go into every row; never personal data.
        Given a connection, the rows go into the caller's transaction."""
        entries: list[tuple[str, dict[str, Any]]] = []
        seen: set[str] = set()
        for item in items:
            record_id, own = item if isinstance(item, tuple) else (item, {})
            key = str(record_id)
            if key in seen:
                continue
            seen.add(key)
            entries.append((key, {**self._details(details), **own}))
        if entries:
            with transaction(target) as conn:
                audit.record_many(
                    conn, self.actor, ROLE, action, record_type, self.purpose, entries
                )
        return len(entries)

    def job(
        self, engine: Engine, action: str = "run", details: dict[str, Any] | None = None
    ) -> None:
        """The one row of a bulk job: record type ``job``, the command as the record."""
        with engine.begin() as conn:
            audit.record_many(
                conn,
                self.actor,
                ROLE,
                action,
                JOB,
                self.purpose,
                [(self.command, self._details(details))],
            )

    @contextmanager
    def running(
        self, engine: Engine, details: dict[str, Any] | None = None
    ) -> Iterator[dict[str, Any]]:
        """The one row of a bulk job that commits as it goes: written when the job ends, with
        the details the caller adds to the yielded dict and the outcome, also when it fails
        halfway (what it committed until then stays changed)."""
        found: dict[str, Any] = dict(details or {})
        try:
            yield found
        except BaseException as e:
            found["outcome"] = f"failed: {type(e).__name__}"
            self.job(engine, details=found)
            raise
        found["outcome"] = "done"
        self.job(engine, details=found)
