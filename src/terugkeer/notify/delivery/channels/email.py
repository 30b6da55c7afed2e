"""The e-mail channel: an SMTP message that says only that there is a notice, its reference,
the kind of event and where to read it in the portal. No personal data: no BSN, no name, no
period reference; the recipient reads the notice itself in the portal.

Settings: :class:`terugkeer.config.SmtpSettings`, ``TERUGKEER_SMTP_*`` in the environment
(``HOST``, ``PORT``, ``FROM``, ``TLS``, ``USERNAME``, ``PASSWORD``, ``TIMEOUT``, ``PORTAL_URL``,
``MAILDIR``; see ``docs/operations.md``). With ``MAILDIR`` set, messages are written as ``.eml``
files into that folder instead of being sent (for the demo and for trying things out).
"""

from __future__ import annotations

import os
import re
import smtplib
import ssl
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

from terugkeer.config import SmtpSettings, get_settings
from terugkeer.notify.delivery.channels import (
    NOTICE_NL,
    SUBJECT_NL,
    ChannelConfigError,
    DeliveryError,
    Notice,
)

KEY_HEADER = "X-Terugkeer-Idempotency-Key"  # the delivery's key, as the webhook's Idempotency-Key
_SAFE = re.compile(r"[^A-Za-z0-9._-]")


__all__ = ["NOTICE_PAGE", "EmailChannel", "SmtpSettings", "compose"]

# The portal's page of a notice (web/portal/mayor.py, INBOX); a test follows the link there.
NOTICE_PAGE = "/portaal/meldingen"


def compose(notice: Notice, sender: str, portal_url: str) -> EmailMessage:
    """The message for ``notice``: a reference and a link, nothing personal."""
    if notice.address is None or "@" not in notice.address or _has_newline(notice.address):
        raise DeliveryError(False, "e-mail: the endpoint has no valid address")
    what = NOTICE_NL.get(notice.notice, notice.notice)
    subject = SUBJECT_NL.get(notice.subject, notice.subject)
    link = f"{portal_url.rstrip('/')}{NOTICE_PAGE}/{notice.obligation_id}"
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = notice.address
    msg["Subject"] = f"terugkeer: {what} {notice.obligation_id} ({subject})"
    msg["Date"] = format_datetime(datetime.now(UTC))
    domain = sender.rpartition("@")[2] or "terugkeer.invalid"
    msg["Message-ID"] = f"<{_SAFE.sub('.', notice.idempotency_key)}@{domain}>"
    msg["X-Terugkeer-Reference"] = str(notice.obligation_id)
    msg[KEY_HEADER] = notice.idempotency_key
    lines = [
        f"Er staat een {what} voor u klaar in terugkeer.",
        "",
        f"Kenmerk:      {notice.obligation_id} (versie {notice.version})",
        f"Soort:        {subject}",
        f"Aflevering:   {notice.idempotency_key}",
    ]
    if notice.late:
        lines.append("Let op:       deze melding is te laat (zie de melding voor de reden).")
    if notice.notice == "reminder":
        lines.append("Let op:       deze melding is nog niet bevestigd.")
    lines += [
        "",
        f"Lees en bevestig de melding in het portaal: {link}",
        "",
        "Dit bericht bevat bewust geen persoonsgegevens.",
    ]
    msg.set_content("\n".join(lines) + "\n")
    return msg


def _has_newline(value: str) -> bool:
    return "\n" in value or "\r" in value


class EmailChannel:
    name = "email"

    def __init__(self, settings: SmtpSettings) -> None:
        if not settings.maildir and not settings.host:
            raise ChannelConfigError("TERUGKEER_SMTP_HOST is empty and no TERUGKEER_SMTP_MAILDIR")
        self.settings = settings

    @classmethod
    def from_env(cls) -> EmailChannel:
        """The channel as ``TERUGKEER_SMTP_*`` configures it."""
        return cls(get_settings().smtp)

    def send(self, notice: Notice) -> None:
        message = compose(notice, self.settings.sender, self.settings.portal_url)
        if self.settings.maildir:
            self._write(Path(self.settings.maildir), notice, message)
        else:
            self._smtp(notice, message)

    def _write(self, folder: Path, notice: Notice, message: EmailMessage) -> None:
        """One file per delivery; a repeated attempt overwrites it, so no duplicates."""
        try:
            folder.mkdir(parents=True, exist_ok=True)
            target = folder / f"{_SAFE.sub('_', notice.idempotency_key)}.eml"
            tmp = target.with_suffix(f".tmp{os.getpid()}")
            tmp.write_bytes(message.as_bytes())
            tmp.replace(target)
        except OSError as e:
            raise DeliveryError(True, f"e-mail: cannot write to the mail folder: {e}") from e

    def _smtp(self, notice: Notice, message: EmailMessage) -> None:
        s = self.settings
        assert notice.address is not None  # noqa: S101 - checked by compose
        try:
            client: smtplib.SMTP
            if s.tls == "ssl":
                client = smtplib.SMTP_SSL(
                    s.host, s.port, timeout=s.timeout, context=ssl.create_default_context()
                )
            else:
                client = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
            with client:
                if s.tls == "starttls":
                    client.starttls(context=ssl.create_default_context())
                if s.username:
                    client.login(s.username, s.password.get_secret_value())
                client.send_message(message, from_addr=s.sender, to_addrs=[notice.address])
        except smtplib.SMTPRecipientsRefused as e:
            codes = sorted(code for code, _text in e.recipients.values())
            raise DeliveryError(
                any(400 <= c < 500 for c in codes), f"e-mail: recipient refused with {codes}"
            ) from e
        except smtplib.SMTPNotSupportedError as e:
            raise DeliveryError(
                False, "e-mail: the server does not offer STARTTLS; see TERUGKEER_SMTP_TLS"
            ) from e
        except smtplib.SMTPResponseException as e:
            raise DeliveryError(
                400 <= e.smtp_code < 500, f"e-mail: the server answered {e.smtp_code}"
            ) from e
        except (smtplib.SMTPException, OSError) as e:  # connection refused, timeouts, TLS
            raise DeliveryError(True, f"e-mail: {type(e).__name__}: {e}") from e
