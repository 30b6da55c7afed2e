"""The portal channel: a notice is delivered by making it visible in the recipient
organisation's inbox (``terugkeer.notify.delivery.inbox``). Nothing leaves the system; the dispatcher's
record of the delivery (status ``delivered``) is what puts the notice in the inbox."""

from __future__ import annotations

from terugkeer.notify.delivery.channels import DeliveryError, Notice


class PortalChannel:
    name = "portal"

    def send(self, notice: Notice) -> None:
        if not notice.recipient_ref:
            raise DeliveryError(False, "portal: the notice has no recipient organisation")
