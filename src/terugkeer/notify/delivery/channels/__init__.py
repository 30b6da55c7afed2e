"""Delivery channels: how one notice reaches its recipient.

A channel has one method, ``send(notice)``, which returns when the notice is delivered and
raises :class:`DeliveryError` when it is not, saying whether trying again may help. Channels
know nothing of the database: the dispatcher claims a delivery row, builds a :class:`Notice`
from it, calls the channel after the claim is committed, and records the outcome.

A notice carries no BSN, name or contact detail: only references (obligation id, period
reference, victim reference), the kind of event, the rule and the moments.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

# Dutch words users know, for messages a person reads (e-mail).
SUBJECT_NL: Mapping[str, str] = {
    "release": "einde detentie",
    "leave": "verlof",
    "escape": "ontvluchting",
    "recapture": "wederopname na ontvluchting",
    "death": "overlijden",
    "intake": "insluiting (start detentie)",
}
NOTICE_NL: Mapping[str, str] = {
    "notice": "melding",
    "change": "wijziging",
    "correction": "intrekking",
    "reminder": "herinnering",
}


class DeliveryError(Exception):
    """A notice was not delivered. ``retryable``: may a later attempt succeed?"""

    def __init__(self, retryable: bool, message: str) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.message = message

    def __str__(self) -> str:
        return f"{'retryable' if self.retryable else 'permanent'}: {self.message}"


class ChannelConfigError(ValueError):
    """A channel's settings are not usable; the message says which setting."""


@dataclass(frozen=True, slots=True)
class Notice:
    """One delivery of one notice, as a channel sees it."""

    delivery_id: int
    obligation_id: int
    idempotency_key: str
    notice: str  # notice, change, correction, reminder
    version: int  # the obligation's version this notice describes
    channel: str
    address: str | None  # e-mail address or URL from notify_endpoints; None for the portal
    attempt: int  # 1 for the first attempt
    subject: str  # release, leave, escape, recapture, death, intake
    rule_id: str
    rule_version: str
    recipient_kind: str
    recipient_ref: str
    period_ref: str
    due_at: datetime
    planned_for: datetime | None
    late: bool
    late_reason: str | None
    backfilled: bool

    def payload(self) -> dict[str, Any]:
        """The machine-readable form (the webhook body): references and moments only."""
        return {
            "reference": self.obligation_id,
            "idempotency_key": self.idempotency_key,
            "notice": self.notice,
            "version": self.version,
            "kind": self.subject,
            "recipient": {"kind": self.recipient_kind, "ref": self.recipient_ref},
            "period_ref": self.period_ref,
            "due_at": self.due_at.isoformat(),
            "planned_for": self.planned_for.isoformat() if self.planned_for else None,
            "late": self.late,
            "late_reason": self.late_reason,
            "backfilled": self.backfilled,
            "rule": {"id": self.rule_id, "version": self.rule_version},
        }


class Channel(Protocol):
    """Delivers one notice, or raises :class:`DeliveryError`."""

    name: str

    def send(self, notice: Notice) -> None: ...


def default_channels() -> dict[str, Channel]:
    """The three channels, configured from the environment (see docs/operations.md)."""
    from terugkeer.notify.delivery.channels.email import EmailChannel
    from terugkeer.notify.delivery.channels.portal import PortalChannel
    from terugkeer.notify.delivery.channels.webhook import WebhookChannel

    return {
        "portal": PortalChannel(),
        "email": EmailChannel.from_env(),
        "webhook": WebhookChannel.from_env(),
    }
