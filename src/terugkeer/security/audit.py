"""The append-only, keyed hash chain of every read and change of personal data, anchored
outside the database.

Three layers, each against a stronger adversary:

* **Triggers** refuse UPDATE and DELETE (migration 0004), and since migration 0008 also
  ``INSERT OR REPLACE`` over an existing entry on SQLite and ``TRUNCATE`` on PostgreSQL.
  Whoever owns the database can drop them.
* **The chain.** Each row's ``hash`` is SHA-256 over the previous row's hash and the row's own
  content, so changing, removing or inserting a row breaks the chain from there on. Each row
  also carries ``mac``: ``<key id>:<HMAC-SHA256 of its hash>`` under a key derived from the
  encryption key set (``security/crypto.py``), which is not in the database: whoever rewrites
  rows and recomputes the hashes cannot recompute the marks. Rows written before migration
  0008 have no mark (``mac`` NULL, the unkeyed chain as it was): they still verify by their
  hashes, but only as a prefix (an unmarked row after a marked one is a break) and the
  checkpoints pin them.
* **Checkpoints.** The worker writes, every check cycle, a signed checkpoint of the head (the
  newest entry's id and hash, the number of entries, an HMAC under a derived key) to an
  append-only file outside the database (``TERUGKEER_AUDIT_CHECKPOINT_FILE``, see
  :func:`write_checkpoint`). ``verify`` checks the chain against the last one: a log that ends
  before it (a cut tail, every row deleted, a TRUNCATE), or whose entry at the checkpoint has
  another hash (rewritten with recomputation), fails. Entries newer than the last checkpoint
  rely on their marks: removing only those (at most one check cycle's worth) cannot be told
  from a log that had not grown yet.

The unkeyed links are kept under the marks so that history stays checkable when a key is
retired: a row marked under a retired key (or not marked, from before 0008) cannot have its
mark checked, but every newer row whose mark is checked vouches for it (that mark covers its
hash, which covers all before it), and so does a checkpoint that pins a newer entry.

Details never hold personal data: they name records, not people.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, func, select, text

from terugkeer.config import get_settings
from terugkeer.db.bulk import insert_rows
from terugkeer.db.paging import Page, fetch_page
from terugkeer.security.crypto import FieldCipher, field_cipher
from terugkeer.security.roles import Principal
from terugkeer.security.tables import audit_log

GENESIS = "0" * 64
MAC_LABEL = "audit_log.mac"  # the derived key of the rows' marks
CHECKPOINT_LABEL = "audit_log.checkpoint"  # the derived key of the checkpoints' signatures
_PG_LOCK = 0x7465_7275_6B65  # advisory lock id serialising appends on PostgreSQL


def entry_hash(
    prev: str,
    at: datetime,
    actor: str,
    role: str,
    action: str,
    record_type: str,
    record_id: str,
    purpose: str,
    details: str,
) -> str:
    """An entry's link: SHA-256 over the previous entry's hash and this entry's content."""
    content = json.dumps(
        [
            prev,
            at.astimezone(UTC).isoformat(timespec="microseconds"),
            actor,
            role,
            action,
            record_type,
            record_id,
            purpose,
            details,
        ],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(content.encode("utf-8")).hexdigest()


def _lock_and_head(conn: Connection) -> str:
    """Serialise appends (advisory lock on PostgreSQL, the write lock on SQLite) and return
    the hash of the newest entry."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK})
    else:  # any write takes SQLite's write lock for the rest of the transaction
        conn.exec_driver_sql("UPDATE audit_log SET id = id WHERE 0")
    head = conn.execute(
        select(audit_log.c.hash).order_by(audit_log.c.id.desc()).limit(1)
    ).scalar_one_or_none()
    return head or GENESIS


def record_many(
    conn: Connection,
    actor: str,
    role: str,
    action: str,
    record_type: str,
    purpose: str,
    entries: Sequence[tuple[str, dict[str, Any]]],
    *,
    at: datetime | None = None,
) -> None:
    """Append several entries (record id, details) at once, chained in order."""
    if entries:
        _append(conn, actor, role, action, record_type, purpose, entries, at)


def _append(
    conn: Connection,
    actor: str,
    role: str,
    action: str,
    record_type: str,
    purpose: str,
    entries: Sequence[tuple[str, dict[str, Any]]],
    at: datetime | None,
) -> str:
    """Chain ``entries`` (at least one) after the head and write them; the newest's hash."""
    at = (at or datetime.now(UTC)).astimezone(UTC)
    cipher = field_cipher()
    prev = _lock_and_head(conn)
    rows = []
    for record_id, details in entries:
        body = json.dumps(details, sort_keys=True, ensure_ascii=False, default=str)
        digest = entry_hash(prev, at, actor, role, action, record_type, record_id, purpose, body)
        mac = cipher.mac(digest, MAC_LABEL)
        rows.append(
            (at, actor, role, action, record_type, record_id, purpose, body, prev, digest, mac)
        )
        prev = digest
    # the bulk writer (COPY on PostgreSQL): a page of 25 notices writes 25 rows on every
    # request, and one statement per row cost more than the page's queries
    insert_rows(conn, audit_log, _COLUMNS, rows)
    return prev


_COLUMNS = (
    "at",
    "actor",
    "role",
    "action",
    "record_type",
    "record_id",
    "purpose",
    "details",
    "prev_hash",
    "hash",
    "mac",
)


CLI_ROLE = "cli"
CLI_PREFIX = "cli:"  # the command line records its actors as "cli:<name>"
SYSTEM_ROLE = "system"
SYSTEM_PREFIX = "system:"  # parts of terugkeer acting on their own, e.g. "system:detention"


def role_of(actor: str, otherwise: str = SYSTEM_ROLE) -> str:
    """The role recorded for an actor named by a string: ``cli`` for the command line's
    ``cli:<name>``, ``system`` for ``system:<part>``, else ``otherwise``."""
    if actor.startswith(CLI_PREFIX):
        return CLI_ROLE
    if actor.startswith(SYSTEM_PREFIX):
        return SYSTEM_ROLE
    return otherwise


def record(
    conn: Connection,
    who: Principal | str,
    action: str,
    record_type: str,
    record_id: str | int,
    purpose: str,
    details: dict[str, Any] | None = None,
    *,
    at: datetime | None = None,
) -> str:
    """Append one entry inside the caller's transaction; returns its hash."""
    actor, role = (who.name, who.role.value) if isinstance(who, Principal) else (who, role_of(who))
    entry = (str(record_id), details or {})
    return _append(conn, actor, role, action, record_type, purpose, [entry], at)


@dataclass(frozen=True)
class ChainReport:
    entries: int
    ok: bool
    first_bad_id: int | None = None
    problem: str | None = None
    checkpoint: int | None = None  # the entry id the last checkpoint pins, if any
    warning: str | None = None  # what could not be checked


def _rows(engine: Engine, batch: int = 5000) -> Iterator[Any]:
    last = 0
    while True:
        with engine.connect() as conn:
            rows = conn.execute(
                select(audit_log).where(audit_log.c.id > last).order_by(audit_log.c.id).limit(batch)
            ).all()
        if not rows:
            return
        yield from rows
        last = rows[-1].id


def verify(
    engine: Engine,
    cipher: FieldCipher | None = None,
    checkpoint_file: str | Path | None = None,
) -> ChainReport:
    """Walk the chain from the start; report the first entry that does not fit: a broken link,
    content that does not match its hash, a mark that does not match its hash (rewritten with
    recomputation), an unmarked entry after marked ones; then check the chain against the last
    checkpoint (from ``checkpoint_file``, default the configured one): its entry must be there
    with the hash and count it recorded."""
    cipher = cipher or field_cipher()
    if checkpoint_file is None:
        checkpoint_file = get_settings().audit_checkpoint_file or None
    cp: Checkpoint | None = None
    if checkpoint_file is not None:
        try:
            cp = last_checkpoint(engine, checkpoint_file, cipher)
        except CheckpointError as e:
            return ChainReport(0, False, None, str(e))
    prev = GENESIS
    n = 0
    marked = False
    # entries marked under a key no longer configured, newer than the last good mark
    unchecked: list[int] = []
    at_checkpoint: tuple[int, str] | None = None  # (count, hash) at the checkpoint's entry
    for row in _rows(engine):
        n += 1
        if row.prev_hash != prev:
            return ChainReport(
                n, False, row.id, "does not follow the entry before it (removed or inserted rows)"
            )
        expected = entry_hash(
            prev,
            row.at,
            row.actor,
            row.role,
            row.action,
            row.record_type,
            row.record_id,
            row.purpose,
            row.details,
        )
        if expected != row.hash:
            return ChainReport(n, False, row.id, "content does not match its hash (changed)")
        if row.mac is None:
            if marked:
                return ChainReport(
                    n, False, row.id, "has no key mark after marked entries (rewritten)"
                )
        else:
            marked = True
            good = cipher.check_mac(row.hash, MAC_LABEL, row.mac)
            if good is False:
                return ChainReport(n, False, row.id, "key mark does not match its hash (rewritten)")
            if good is None:
                unchecked.append(row.id)
            else:  # a good mark vouches for every entry before it (its hash covers them)
                unchecked.clear()
        if cp is not None and row.id == cp.last_id:
            at_checkpoint = (n, row.hash)
        prev = row.hash
    if cp is None:
        warning = "no checkpoint: a removed tail or an emptied log cannot be told from a short one"
        if unchecked:
            warning += (
                f"; the newest {len(unchecked)} entries are marked under a key no longer "
                "configured, with no newer entry to vouch for them"
            )
        return ChainReport(n, True, warning=warning)
    if cp.last_id and at_checkpoint is None:
        return ChainReport(
            n,
            False,
            cp.last_id,
            f"the log lacks entry {cp.last_id} of the checkpoint of {cp.at:%Y-%m-%d %H:%M} "
            f"({cp.entries} entries then, {n} now): entries were removed",
            cp.last_id,
        )
    if at_checkpoint is not None and at_checkpoint != (cp.entries, cp.head):
        return ChainReport(
            n,
            False,
            cp.last_id,
            f"differs from the checkpoint of {cp.at:%Y-%m-%d %H:%M} (rewritten or removed entries)",
            cp.last_id,
        )
    late = [i for i in unchecked if i > cp.last_id]
    if late:
        return ChainReport(
            n,
            False,
            late[0],
            "marked under a key no longer configured, after the checkpoint",
            cp.last_id,
        )
    return ChainReport(n, True, checkpoint=cp.last_id)


# -- checkpoints: the head, signed, outside the database -------------------------------------


class CheckpointError(RuntimeError):
    """The checkpoint file cannot be read, or its last checkpoint cannot be trusted."""


@dataclass(frozen=True)
class Checkpoint:
    database: str
    at: datetime
    last_id: int  # the newest entry's id (0: an empty log)
    entries: int  # the number of entries up to it
    head: str  # its hash
    signature: str  # <key id>:<HMAC-SHA256> of the fields above

    def signed_text(self) -> str:
        return json.dumps(
            [self.database, self.at.isoformat(), self.last_id, self.entries, self.head],
            separators=(",", ":"),
        )

    def line(self) -> str:
        return json.dumps(
            {
                "database": self.database,
                "at": self.at.isoformat(),
                "last_id": self.last_id,
                "entries": self.entries,
                "head": self.head,
                "signature": self.signature,
            },
            separators=(",", ":"),
        )


def database_name(engine: Engine) -> str:
    """The database a checkpoint belongs to, as configured (without a password)."""
    return engine.url.render_as_string(hide_password=True)


def _head(engine: Engine) -> tuple[int, int, str]:
    """(id, number of entries, hash) of the newest entry; (0, 0, GENESIS) when empty."""
    with engine.connect() as conn:
        row = conn.execute(
            select(audit_log.c.id, audit_log.c.hash).order_by(audit_log.c.id.desc()).limit(1)
        ).first()
        if row is None:
            return 0, 0, GENESIS
        count = conn.execute(select(func.count()).select_from(audit_log)).scalar_one()
    return row.id, count, row.hash


def _read_checkpoints(engine: Engine, path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    name = database_name(engine)
    out = []
    try:
        text_ = path.read_text(encoding="utf-8")
    except OSError as e:
        raise CheckpointError(f"audit checkpoint file [{path}] cannot be read: {e.strerror}") from e
    for no, line in enumerate(text_.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError as e:
            raise CheckpointError(f"audit checkpoint file [{path}] line {no} is not JSON") from e
        if isinstance(item, dict) and item.get("database") == name:
            out.append(item)
    return out


def last_checkpoint(
    engine: Engine, path: str | Path, cipher: FieldCipher | None = None
) -> Checkpoint | None:
    """The last checkpoint of this database in ``path``, its signature checked; None when
    there is none. A forged or unverifiable one raises :class:`CheckpointError`."""
    cipher = cipher or field_cipher()
    found = _read_checkpoints(engine, Path(path))
    if not found:
        return None
    item = found[-1]
    try:
        cp = Checkpoint(
            database=item["database"],
            at=datetime.fromisoformat(item["at"]),
            last_id=int(item["last_id"]),
            entries=int(item["entries"]),
            head=str(item["head"]),
            signature=str(item["signature"]),
        )
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(
            f"audit checkpoint file [{path}]: the last checkpoint is malformed"
        ) from e
    good = cipher.check_mac(cp.signed_text(), CHECKPOINT_LABEL, cp.signature)
    if good is None:
        raise CheckpointError(
            f"the last audit checkpoint in [{path}] is signed with key "
            f"[{cp.signature.partition(':')[0]}], which is not configured"
        )
    if not good:
        raise CheckpointError(f"the last audit checkpoint in [{path}] has a wrong signature")
    return cp


def write_checkpoint(
    engine: Engine,
    now: datetime | None = None,
    *,
    path: str | Path | None = None,
    cipher: FieldCipher | None = None,
) -> Checkpoint | None:
    """Append a signed checkpoint of the log's head to ``path`` (default: the configured
    ``TERUGKEER_AUDIT_CHECKPOINT_FILE``; nothing when none is configured). Skipped when the
    last one already pins this head under the active key. The worker calls it every check
    cycle. The file is opened for appending only and synced to disk; make it append-only for
    the database's owner too (``chattr +a``, another host, a write-once store)."""
    if path is None:
        path = get_settings().audit_checkpoint_file or None
        if path is None:
            return None
    path = Path(path)
    cipher = cipher or field_cipher()
    last_id, entries, head = _head(engine)
    previous = _read_checkpoints(engine, path)
    if previous:
        p = previous[-1]
        same = (p.get("last_id"), p.get("entries"), p.get("head")) == (last_id, entries, head)
        if same and str(p.get("signature", "")).startswith(cipher.active_id + ":"):
            return None
    at = (now or datetime.now(UTC)).astimezone(UTC)
    unsigned = Checkpoint(database_name(engine), at, last_id, entries, head, "")
    signature = cipher.mac(unsigned.signed_text(), CHECKPOINT_LABEL)
    assert signature is not None  # noqa: S101 - the active key is always configured
    cp = Checkpoint(unsigned.database, at, last_id, entries, head, signature)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        os.write(fd, (cp.line() + "\n").encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    return cp


def read_entries(
    conn: Connection,
    who: Principal,
    *,
    after: int = 0,
    limit: int = 100,
    actor: str | None = None,
    record_type: str | None = None,
) -> list[Any]:
    """Entries of the log after id ``after``, oldest first, for the auditor ``who``; the read
    itself is an entry (``read`` of record type ``audit_log``), in the caller's transaction."""
    stmt = select(audit_log).where(audit_log.c.id > after).order_by(audit_log.c.id).limit(limit)
    stmt = stmt.where(*_entry_filters(actor, record_type))
    rows = list(conn.execute(stmt).all())
    record(conn, who, "read", "audit_log", f"{after}+{len(rows)}", "audit")
    return rows


def _entry_filters(
    actor: str | None = None,
    record_type: str | None = None,
    record_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[ColumnElement[bool]]:
    """Who acted, on which record, in which period (``since`` inclusive, ``until`` not)."""
    found: list[ColumnElement[bool]] = []
    if actor:
        found.append(audit_log.c.actor == actor)
    if record_type:
        found.append(audit_log.c.record_type == record_type)
    if record_id:
        found.append(audit_log.c.record_id == record_id)
    if since is not None:
        found.append(audit_log.c.at >= since)
    if until is not None:
        found.append(audit_log.c.at < until)
    return found


def search_entries(
    conn: Connection,
    who: Principal,
    *,
    actor: str | None = None,
    record_type: str | None = None,
    record_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> Page[Any]:
    """A page of the entries that match, newest first, with how many match, for the auditor
    ``who`` (the portal's search); the read is an entry, as with :func:`read_entries`."""
    stmt = (
        select(audit_log)
        .where(*_entry_filters(actor, record_type, record_id, since, until))
        .order_by(audit_log.c.id.desc())
    )
    rows, total = fetch_page(conn, stmt, limit, offset)
    record(conn, who, "read", "audit_log", f"search:{offset}+{len(rows)}", "audit")
    return Page(rows, total, limit, offset)


@dataclass(frozen=True)
class CheckpointRun:
    """What one check cycle did about the checkpoint."""

    configured: bool
    written: bool = False
    last_id: int | None = None
    entries: int | None = None


def checkpoint_check(engine: Engine, now: datetime) -> CheckpointRun:
    """The worker's check (``notify/worker.py`` ``CHECKS``): a checkpoint of the head, every
    check cycle, when a checkpoint file is configured."""
    if not get_settings().audit_checkpoint_file:
        return CheckpointRun(configured=False)
    cp = write_checkpoint(engine, now)
    if cp is None:
        return CheckpointRun(configured=True)
    return CheckpointRun(True, True, cp.last_id, cp.entries)
