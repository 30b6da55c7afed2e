"""What a reconciliation finds: its gaps, and the report of one run."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from terugkeer.notify.tables import alerts

ALERT_KINDS = (
    "missing_obligation",
    "overdue",
    "unacknowledged",
    "unresolved",
    "unproven_delivery",
    "wrong_timing",
    "wrong_recipient",
)
# Each kind and the report's list of it, in the order the report shows them.
KIND_LISTS = (
    ("missing_obligation", "missing"),
    ("overdue", "overdue"),
    ("unacknowledged", "unacknowledged"),
    ("unresolved", "unresolved"),
    ("unproven_delivery", "unproven"),
    ("wrong_timing", "wrong_timing"),
    ("wrong_recipient", "wrong_recipient"),
    ("extra", "extra"),
)
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
    expected_recipient: str | None = None  # wrong_recipient: what the facts give
    planned_for: datetime | None = None  # missing_obligation: the moment notified about
    note: str = ""
    late: bool | None = None  # of the stored obligation; missing: the facts' lateness
    expected_due_at: datetime | None = None  # wrong_timing: what the facts give
    expected_late: bool | None = None  # wrong_timing: what the facts give

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
            "unproven_delivery": "marked delivered without proof of delivery",
            "wrong_timing": "due time or lateness differs from what the facts give",
            "wrong_recipient": "addressed to another recipient than the facts give",
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
            "late": self.late,
            "expected_due_at": iso(self.expected_due_at),
            "expected_late": self.expected_late,
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
    unproven: list[Gap] = field(default_factory=list)  # unproven_delivery
    wrong_timing: list[Gap] = field(default_factory=list)
    wrong_recipient: list[Gap] = field(default_factory=list)
    extra: list[Gap] = field(default_factory=list)  # information
    obligations_checked: int = 0  # stored obligations, not voided
    required: int = 0  # distinct obligation keys the stored facts require
    alerts_raised: int = 0
    alerts_resolved: int = 0
    alerts_open: int = 0
    alerts_escalated: int = 0  # gaps already in the queue as the escalation's alert
    seconds: float = 0.0

    @property
    def recipient_differs(self) -> list[Gap]:
        """The former name of :attr:`wrong_recipient` (information then, a gap now)."""
        return self.wrong_recipient

    def of_kind(self, kind: str) -> list[Gap]:
        """The gaps of one kind (``missing_obligation``, …, ``extra``)."""
        return list(getattr(self, dict(KIND_LISTS)[kind]))

    @property
    def gaps(self) -> list[Gap]:
        """The findings an operator must act on (every kind but ``extra``)."""
        return [g for kind in ALERT_KINDS for g in self.of_kind(kind)]

    @property
    def ok(self) -> bool:
        return not self.gaps

    @property
    def counts(self) -> dict[str, int]:
        return {kind: len(getattr(self, name)) for kind, name in KIND_LISTS}

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
            **{kind: [g.as_json() for g in getattr(self, name)] for kind, name in KIND_LISTS},
        }


def iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()
