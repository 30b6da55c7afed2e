"""What a reconciliation finds: its gaps, and the report of one run."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from terugkeer.notify.tables import alerts

ALERT_KINDS = ("missing_obligation", "overdue", "unacknowledged", "unresolved")
ALERT_PREFIX = "reconcile:"
# Obligation statuses that mean: not (yet) delivered.
UNDELIVERED = ("open", "sent", "unresolved", "held")
VOIDED = "voided"
DEFAULT_ACK_WINDOW = timedelta(hours=24)  # for a rule no longer in the rule file


@dataclass(slots=True)  # not frozen: a run can make a hundred thousand of these
class Gap:
    """One finding. For ``missing_obligation`` the fields describe the obligation that must
    exist (``due_at`` is the reconciliation's own estimate); otherwise the stored one."""

    kind: str
    key: str
    rule_id: str
    period_ref: str
    occurrence: str
    recipient_kind: str
    recipient_ref: str | None
    due_at: datetime | None = None
    status: str | None = None  # of the stored obligation; None when there is none
    obligation_id: int | None = None
    cause_event_id: str | None = None
    event_at: datetime | None = None  # when what requires it happened or became known
    expected_recipient: str | None = None  # recipient_differs: what the facts give
    planned_for: datetime | None = None  # missing_obligation: the moment notified about
    note: str = ""

    @property
    def alert_key(self) -> str:
        key = f"{ALERT_PREFIX}{self.kind}:{self.key}"
        if len(key) <= alerts.c.key.type.length:  # type: ignore[attr-defined]
            return key
        digest = hashlib.sha256(self.key.encode("utf-8")).hexdigest()
        return f"{ALERT_PREFIX}{self.kind}:sha256:{digest}"

    def message(self) -> str:
        who = f"{self.recipient_kind} {self.recipient_ref or '(unresolved)'}"
        due = f", due {iso(self.due_at)}" if self.due_at else ""
        text = {
            "missing_obligation": "missing obligation",
            "overdue": "past due, not delivered",
            "unacknowledged": "delivered, not acknowledged in time",
            "unresolved": "no known recipient",
            "extra": "obligation not required by the stored facts",
            "recipient_differs": "addressed to another recipient than the facts give",
        }.get(self.kind, self.kind)
        return (
            f"{text}: {self.rule_id} for period {self.period_ref} ({self.occurrence}) to "
            f"{who}{due}" + (f"; {self.note}" if self.note else "")
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "key": self.key,
            "rule_id": self.rule_id,
            "period_ref": self.period_ref,
            "occurrence": self.occurrence,
            "recipient_kind": self.recipient_kind,
            "recipient_ref": self.recipient_ref,
            "due_at": iso(self.due_at),
            "status": self.status,
            "obligation_id": self.obligation_id,
            "cause_event_id": self.cause_event_id,
            "event_at": iso(self.event_at),
            "expected_recipient": self.expected_recipient,
            "planned_for": iso(self.planned_for),
            "note": self.note,
        }


@dataclass
class ReconcileReport:
    now: datetime
    rules_version: str
    missing: list[Gap] = field(default_factory=list)
    overdue: list[Gap] = field(default_factory=list)
    unacknowledged: list[Gap] = field(default_factory=list)
    unresolved: list[Gap] = field(default_factory=list)
    extra: list[Gap] = field(default_factory=list)  # information
    recipient_differs: list[Gap] = field(default_factory=list)  # information
    obligations_checked: int = 0  # stored obligations, not voided
    required: int = 0  # distinct obligation keys the stored facts require
    alerts_raised: int = 0
    alerts_resolved: int = 0
    alerts_open: int = 0
    alerts_escalated: int = 0  # gaps already in the queue as the escalation's alert
    seconds: float = 0.0

    @property
    def gaps(self) -> list[Gap]:
        """The findings an operator must act on (kinds a–d)."""
        return [*self.missing, *self.overdue, *self.unacknowledged, *self.unresolved]

    @property
    def ok(self) -> bool:
        return not self.gaps

    @property
    def counts(self) -> dict[str, int]:
        return {
            "missing_obligation": len(self.missing),
            "overdue": len(self.overdue),
            "unacknowledged": len(self.unacknowledged),
            "unresolved": len(self.unresolved),
            "extra": len(self.extra),
            "recipient_differs": len(self.recipient_differs),
        }

    def as_json(self) -> dict[str, Any]:
        return {
            "now": iso(self.now),
            "rules_version": self.rules_version,
            "ok": self.ok,
            "counts": self.counts,
            "required": self.required,
            "obligations_checked": self.obligations_checked,
            "alerts": {
                "raised": self.alerts_raised,
                "resolved": self.alerts_resolved,
                "open": self.alerts_open,
                "escalated": self.alerts_escalated,
            },
            "seconds": round(self.seconds, 3),
            "missing_obligation": [g.as_json() for g in self.missing],
            "overdue": [g.as_json() for g in self.overdue],
            "unacknowledged": [g.as_json() for g in self.unacknowledged],
            "unresolved": [g.as_json() for g in self.unresolved],
            "extra": [g.as_json() for g in self.extra],
            "recipient_differs": [g.as_json() for g in self.recipient_differs],
        }


def iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()
