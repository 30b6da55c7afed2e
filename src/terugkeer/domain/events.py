"""The event model shared by every layer: a valid feed message (``FeedEvent``) and the reason
one cannot be applied (``FeedError``). Pure: no database, no parsing."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from terugkeer.domain.codes import EventKind


class FeedError(Exception):
    """A message that cannot be applied. ``reason`` is a stable code (see docs/feed.md)."""

    def __init__(
        self,
        reason: str,
        message: str,
        *,
        field: str | None = None,
        value: object = None,
        waits_for: str | None = None,
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.field = field
        self.value = None if value is None else short_value(value)
        self.waits_for = waits_for


def short_value(value: object, limit: int = 200) -> str:
    """A value as text for an error message, cut at ``limit`` characters."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[:limit] + "…"


@dataclass(slots=True)
class FeedEvent:
    """A valid message. ``fields`` holds the kind's own fields, typed and normalised."""

    event_id: str
    source: str
    occurred_at: datetime
    kind: EventKind
    bsn: str | None
    prison_number: str | None
    period_ref: str | None
    fields: dict[str, Any]
    body: str
    body_hash: str
    line_no: int = 0
    origin: str = ""
    sort_rank: int = field(default=0)

    @property
    def person_key(self) -> str:
        return f"bsn:{self.bsn}" if self.bsn else f"pn:{self.prison_number}"

    def sort_key(self) -> tuple[datetime, int, str]:
        return (self.occurred_at, self.sort_rank, self.event_id)


# Within one instant, an intake comes first and a death last.
KIND_RANK: dict[EventKind, int] = {
    EventKind.INTAKE: 0,
    EventKind.RELEASE_DATE_SET: 1,
    EventKind.TITLE_CHANGE: 1,
    EventKind.TRANSFER: 1,
    EventKind.LEAVE_GRANTED: 1,
    EventKind.LEAVE_END: 2,
    EventKind.RECAPTURE: 2,
    EventKind.LEAVE_START: 3,
    EventKind.ESCAPE: 3,
    EventKind.VICTIM_REGISTERED: 4,
    EventKind.RECONVICTION: 4,
    EventKind.RELEASE: 5,
    EventKind.DEATH: 6,
    EventKind.CORRECTION: 7,
}
