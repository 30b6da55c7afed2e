"""The three channels against real servers on loopback: an SMTP server (aiosmtpd) and an HTTP
receiver that checks the signature, records Idempotency-Keys and fails on demand.

The receivers are used by the dispatcher and escalation tests as well."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from terugkeer.config import get_settings
from terugkeer.notify.delivery.channels import DeliveryError, Notice
from terugkeer.notify.delivery.channels.email import EmailChannel, SmtpSettings, compose
from terugkeer.notify.delivery.channels.portal import PortalChannel
from terugkeer.notify.delivery.channels.webhook import SIGNATURE_HEADER, WebhookChannel, encode

SECRET = b"test-webhook-secret"
PERIOD = "PI-VUG-2025-000123"  # a period reference: allowed in the webhook, not in e-mail


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- an HTTP receiver ---------------------------------------------------------------------------


class Receiver:
    """A webhook receiver on 127.0.0.1. ``fail(500, "timeout", 404, ...)`` plans the answers
    to the next requests; afterwards it answers 200. ``delivered`` holds the Idempotency-Keys
    of the requests answered 2xx, in order; ``bodies`` their JSON."""

    def __init__(
        self,
        secret: bytes | None = SECRET,
        *,
        hang_seconds: float = 1.0,
        idle_timeout: float | None = None,
    ) -> None:
        self.secret = secret
        self.hang_seconds = hang_seconds
        self.plan: deque[int | str] = deque()
        self.delivered: list[str] = []
        self.bodies: list[dict[str, Any]] = []
        self.requests = 0
        self.bad_signatures = 0
        self.peers: set[tuple[str, int]] = set()
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = idle_timeout  # closes a kept-alive connection idle for this long

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver.lock:
                    receiver.requests += 1
                    receiver.peers.add(self.client_address[:2])
                    action = receiver.plan.popleft() if receiver.plan else 200
                if receiver.secret is not None:
                    expected = (
                        "sha256=" + hmac.new(receiver.secret, body, hashlib.sha256).hexdigest()
                    )
                    if not hmac.compare_digest(self.headers.get(SIGNATURE_HEADER, ""), expected):
                        with receiver.lock:
                            receiver.bad_signatures += 1
                        action = 401
                if action == "timeout":
                    time.sleep(receiver.hang_seconds)
                    self.close_connection = True
                    return
                status = int(action)
                if 200 <= status < 300:
                    with receiver.lock:
                        receiver.delivered.append(self.headers["Idempotency-Key"])
                        receiver.bodies.append(json.loads(body))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/terugkeer/meldingen"

    def fail(self, *plan: int | str) -> None:
        with self.lock:
            self.plan.extend(plan)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


# -- an SMTP server -----------------------------------------------------------------------------


class Mailbox:
    """An aiosmtpd handler: keeps the messages; ``refuse("451 ...")`` answers the next RCPT."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.plan: deque[str] = deque()

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        if self.plan:
            return self.plan.popleft()
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.original_content))
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield mailbox, port
    controller.stop()


def smtp_channel(port: int, **kw: Any) -> EmailChannel:
    return EmailChannel(
        SmtpSettings(
            host="127.0.0.1",
            port=port,
            tls="none",
            timeout=3,
            sender="meldingen@terugkeer.example",
            portal_url="https://terugkeer.example",
            **kw,
        )
    )


def make_notice(**kw: Any) -> Notice:
    base = Notice(
        delivery_id=7,
        obligation_id=42,
        idempotency_key="42:notice:1:webhook",
        notice="notice",
        version=1,
        channel="webhook",
        address="http://127.0.0.1:9/",
        attempt=1,
        subject="release",
        rule_id="mayor.release",
        rule_version="2026.1",
        recipient_kind="mayor",
        recipient_ref="GM0363",
        period_ref=PERIOD,
        due_at=datetime(2026, 2, 3, 8, tzinfo=UTC),
        planned_for=datetime(2026, 2, 10, 8, tzinfo=UTC),
        late=False,
        late_reason=None,
        backfilled=False,
    )
    return replace(base, **kw)


# -- portal -------------------------------------------------------------------------------------


def test_portal_delivers_to_a_known_organisation_only() -> None:
    PortalChannel().send(make_notice(channel="portal", address=None))
    with pytest.raises(DeliveryError) as e:
        PortalChannel().send(make_notice(channel="portal", recipient_ref=""))
    assert not e.value.retryable


# -- e-mail -------------------------------------------------------------------------------------


def test_email_says_there_is_a_notice_with_its_reference_and_link_and_nothing_personal(
    smtp: tuple[Mailbox, int],
) -> None:
    mailbox, port = smtp
    notice = make_notice(channel="email", address="oov@gemeente.example", late=True)
    smtp_channel(port).send(notice)
    (msg,) = mailbox.messages
    assert msg["To"] == "oov@gemeente.example"
    assert msg["Subject"] == "terugkeer: melding 42 (einde detentie)"
    assert msg["X-Terugkeer-Idempotency-Key"] == notice.idempotency_key
    body = msg.get_payload(decode=True).decode()  # type: ignore[union-attr]
    assert "https://terugkeer.example/portaal/meldingen/42" in body
    assert "Kenmerk:      42" in body
    assert "te laat" in body
    # no period reference, no rule facts, no person: only that there is a notice
    assert PERIOD not in msg.as_string()
    assert "GM0363" not in body


def test_email_server_refusals_4xx_retry_5xx_do_not(smtp: tuple[Mailbox, int]) -> None:
    mailbox, port = smtp
    channel = smtp_channel(port)
    notice = make_notice(channel="email", address="oov@gemeente.example")
    mailbox.plan.append("451 4.3.0 try again later")
    with pytest.raises(DeliveryError) as e:
        channel.send(notice)
    assert e.value.retryable
    assert "451" in str(e.value)
    mailbox.plan.append("550 5.1.1 no such mailbox")
    with pytest.raises(DeliveryError) as e:
        channel.send(notice)
    assert not e.value.retryable
    channel.send(notice)
    assert len(mailbox.messages) == 1


def test_email_without_a_server_is_retryable_and_a_bad_address_is_not() -> None:
    channel = smtp_channel(free_port())
    with pytest.raises(DeliveryError) as e:
        channel.send(make_notice(channel="email", address="oov@gemeente.example"))
    assert e.value.retryable
    for bad in (None, "no-at-sign", "a@b\r\nBcc: x@y"):
        with pytest.raises(DeliveryError) as e:
            channel.send(make_notice(channel="email", address=bad))
        assert not e.value.retryable


def test_maildir_mode_writes_one_file_per_delivery(tmp_path: Path) -> None:
    channel = EmailChannel(SmtpSettings(maildir=str(tmp_path / "mail")))
    notice = make_notice(channel="email", address="oov@gemeente.example")
    channel.send(notice)
    channel.send(replace(notice, attempt=2))  # a repeat overwrites, no duplicate
    channel.send(make_notice(channel="email", address="idv@om.example", obligation_id=43,
                             idempotency_key="43:notice:1:email"))  # fmt: skip
    files = sorted(p.name for p in (tmp_path / "mail").iterdir())
    assert files == ["42_notice_1_webhook.eml", "43_notice_1_email.eml"]
    msg = message_from_bytes((tmp_path / "mail" / files[0]).read_bytes())
    assert msg["Subject"].startswith("terugkeer: melding 42")


@pytest.fixture
def setenv(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str, str], None]]:
    """Sets an environment variable and has the settings read again (they are cached)."""

    def set_(name: str, value: str) -> None:
        monkeypatch.setenv(name, value)
        get_settings.cache_clear()

    yield set_
    get_settings.cache_clear()  # before monkeypatch restores the environment: read lazily


def test_email_settings_come_from_the_environment(setenv: Callable[[str, str], None]) -> None:
    setenv("TERUGKEER_SMTP_HOST", "smtp.example")
    setenv("TERUGKEER_SMTP_PORT", "2525")
    setenv("TERUGKEER_SMTP_FROM", "noreply@terugkeer.example")
    setenv("TERUGKEER_SMTP_TLS", "ssl")
    s = EmailChannel.from_env().settings
    assert (s.host, s.port, s.sender, s.tls) == (
        "smtp.example",
        2525,
        "noreply@terugkeer.example",
        "ssl",
    )
    setenv("TERUGKEER_SMTP_TLS", "sometimes")
    with pytest.raises(ValueError, match="tls"):
        EmailChannel.from_env()


def test_a_reminder_says_it_is_not_yet_acknowledged() -> None:
    msg = compose(
        make_notice(notice="reminder", address="a@b.example"), "x@terugkeer.example", "https://p"
    )
    assert msg["Subject"] == "terugkeer: herinnering 42 (einde detentie)"
    assert "nog niet bevestigd" in msg.get_content()


# -- webhook ------------------------------------------------------------------------------------


def webhook(**kw: Any) -> WebhookChannel:
    return WebhookChannel(SECRET, timeout=kw.pop("timeout", 3.0), environment="test", **kw)


def test_webhook_posts_signed_json_with_the_idempotency_key(receiver: Receiver) -> None:
    channel = webhook()
    channel.send(make_notice(address=receiver.url))
    channel.send(make_notice(address=receiver.url, idempotency_key="43:notice:1:webhook",
                             obligation_id=43))  # fmt: skip
    assert receiver.bad_signatures == 0
    assert receiver.delivered == ["42:notice:1:webhook", "43:notice:1:webhook"]
    assert len(receiver.peers) == 1  # one kept-alive connection
    body = receiver.bodies[0]
    assert body == {
        "reference": 42,
        "idempotency_key": "42:notice:1:webhook",
        "notice": "notice",
        "version": 1,
        "kind": "release",
        "recipient": {"kind": "mayor", "ref": "GM0363"},
        "period_ref": PERIOD,
        "due_at": "2026-02-03T08:00:00+00:00",
        "planned_for": "2026-02-10T08:00:00+00:00",
        "late": False,
        "late_reason": None,
        "backfilled": False,
        "rule": {"id": "mayor.release", "version": "2026.1"},
    }
    assert encode(make_notice()) == encode(make_notice(attempt=5))  # same body on a retry
    channel.close()


@pytest.mark.parametrize(
    ("status", "retryable"),
    [(500, True), (503, True), (408, True), (429, True), (400, False), (404, False),
     (410, False), (301, False)],
)  # fmt: skip
def test_webhook_answers_decide_whether_to_retry(
    receiver: Receiver, status: int, retryable: bool
) -> None:
    receiver.fail(status)
    with pytest.raises(DeliveryError) as e:
        webhook().send(make_notice(address=receiver.url))
    assert e.value.retryable is retryable
    assert str(status) in str(e.value)


def test_webhook_timeouts_and_refused_connections_are_retryable() -> None:
    slow = Receiver(hang_seconds=1.0)
    try:
        slow.fail("timeout")
        with pytest.raises(DeliveryError, match=r"no answer within 0\.3s") as e:
            webhook(timeout=0.3).send(make_notice(address=slow.url))
        assert e.value.retryable
    finally:
        slow.close()
    with pytest.raises(DeliveryError) as e:
        webhook().send(make_notice(address=f"http://127.0.0.1:{free_port()}/x"))
    assert e.value.retryable


def test_webhook_reconnects_when_the_receiver_closed_a_kept_alive_connection() -> None:
    r = Receiver(idle_timeout=0.2)
    try:
        channel = webhook()
        channel.send(make_notice(address=r.url))
        time.sleep(0.5)  # the receiver closes the idle connection
        channel.send(make_notice(address=r.url, idempotency_key="43:notice:1:webhook"))
        assert r.delivered == ["42:notice:1:webhook", "43:notice:1:webhook"]
        assert len(r.peers) == 2
    finally:
        r.close()


def test_webhook_refuses_to_send_unsigned_outside_development() -> None:
    unsigned = Receiver(secret=None)
    try:
        with pytest.raises(DeliveryError, match="TERUGKEER_WEBHOOK_SECRET"):
            WebhookChannel(b"", environment="production").send(make_notice(address=unsigned.url))
        assert unsigned.requests == 0
        WebhookChannel(b"", environment="development").send(make_notice(address=unsigned.url))
        assert unsigned.delivered == ["42:notice:1:webhook"]
    finally:
        unsigned.close()


def test_webhook_bad_urls_are_permanent() -> None:
    for bad in (None, "ftp://x/y", "http:///nohost", "http://h:99999/"):
        with pytest.raises(DeliveryError) as e:
            webhook().send(make_notice(address=bad))
        assert not e.value.retryable


def test_webhook_settings_come_from_the_environment(setenv: Callable[[str, str], None]) -> None:
    setenv("TERUGKEER_WEBHOOK_SECRET", "s3cret")
    setenv("TERUGKEER_WEBHOOK_TIMEOUT", "2.5")
    channel = WebhookChannel.from_env()
    assert (channel.secret, channel.timeout) == (b"s3cret", 2.5)
    setenv("TERUGKEER_SMTP_PASSWORD", "pa55word")
    assert get_settings().smtp.password.get_secret_value() == "pa55word"
    shown = repr(get_settings()) + str(get_settings())
    assert "s3cret" not in shown
    assert "pa55word" not in shown
