"""Reads that were refused or found nothing: each one is a row of the audit log, so that "who
tried to see this record" has an answer too (a guessed notice or case id, another
organisation's record, a role without the permission).

The web calls :func:`record_refusal` after a signed-in caller got a 403 or a 404; the row is
written in its own transaction (the refused read wrote nothing to roll back with it).
Anonymous requests (401) are not recorded: there is no one to name, and whoever floods the
service with them would fill the log; the sign-in throttle and the logs cover them.
"""

from __future__ import annotations

from sqlalchemy import Engine

from terugkeer.security.actor import Actor

DENIED = "read_denied"  # 403: the caller may not see it
NOT_FOUND = "read_not_found"  # 404: it does not exist, or not for this caller


def record_refusal(
    engine: Engine,
    actor: Actor,
    record_type: str,
    record_id: str,
    *,
    status: int,
    request: str,
) -> None:
    """One row (``read_denied`` for 403, else ``read_not_found``) naming the record asked for
    and the request (method and path: ids and references, no personal data)."""
    action = DENIED if status == 403 else NOT_FOUND
    with engine.begin() as conn:
        actor.record(conn, action, record_type, [record_id], {"status": status, "request": request})
