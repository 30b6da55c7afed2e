"""The webhook channel: a JSON POST to the recipient's system (for example the IDV's own).

The body is :meth:`Notice.payload` (references and moments; no BSN, no names). Headers:

- ``X-Terugkeer-Signature: sha256=<hex>``: HMAC-SHA256 of the raw body with the shared secret
  ``TERUGKEER_WEBHOOK_SECRET``. Without a secret the channel refuses to send, except when
  ``TERUGKEER_ENVIRONMENT=development``.
- ``Idempotency-Key``: the delivery's key; a receiver that sees a key twice (possible only
  when a worker dies between sending and recording) should treat the second as a repeat.

2xx is delivered; 408, 429, 5xx, timeouts and connection errors may succeed later; other
answers (4xx, 3xx) will not. Connections are kept alive per thread and per host.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import threading
from typing import Literal
from urllib.parse import SplitResult, urlsplit

import structlog

from terugkeer import __version__
from terugkeer.config import get_settings
from terugkeer.notify.delivery.channels import DeliveryError, Notice

log = structlog.get_logger(__name__)

SIGNATURE_HEADER = "X-Terugkeer-Signature"
RETRYABLE_4XX = (408, 429)
_STALE = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)


def sign(secret: bytes, body: bytes) -> str:
    """The value of the signature header for ``body``."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def encode(notice: Notice) -> bytes:
    return json.dumps(notice.payload(), sort_keys=True, separators=(",", ":")).encode("utf-8")


class WebhookChannel:
    name = "webhook"

    def __init__(
        self,
        secret: str | bytes = b"",
        *,
        timeout: float = 10.0,
        environment: Literal["development", "test", "production"] = "production",
    ) -> None:
        self.secret = secret.encode("utf-8") if isinstance(secret, str) else secret
        self.timeout = timeout
        self.environment = environment
        self._local = threading.local()

    @classmethod
    def from_env(cls) -> WebhookChannel:
        """The channel as ``TERUGKEER_WEBHOOK_*`` and ``TERUGKEER_ENVIRONMENT`` configure it."""
        settings = get_settings()
        s, environment = settings.webhook, settings.environment
        if not s.secret.get_secret_value() and environment != "development":
            log.warning(
                "TERUGKEER_WEBHOOK_SECRET is not set: webhook notices will not be sent",
                environment=environment,
            )
        return cls(
            s.secret.get_secret_value(), timeout=s.timeout, environment=environment or "production"
        )

    def send(self, notice: Notice) -> None:
        if not self.secret and self.environment != "development":
            raise DeliveryError(
                True,
                "webhook: TERUGKEER_WEBHOOK_SECRET is not set; refusing to send unsigned "
                f"in environment {self.environment}",
            )
        url = _parse(notice.address)
        body = encode(notice)
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": notice.idempotency_key,
            "User-Agent": f"terugkeer/{__version__}",
            "X-Terugkeer-Attempt": str(notice.attempt),
        }
        if self.secret:
            headers[SIGNATURE_HEADER] = sign(self.secret, body)
        path = (url.path or "/") + (f"?{url.query}" if url.query else "")
        status = self._post(url, path, body, headers)
        if 200 <= status < 300:
            return
        retryable = status in RETRYABLE_4XX or status >= 500
        raise DeliveryError(retryable, f"webhook: the receiver answered {status}")

    def close(self) -> None:
        """Close this thread's kept-alive connections."""
        pool: dict[tuple[str, str, int | None], http.client.HTTPConnection] = getattr(
            self._local, "pool", {}
        )
        for conn in pool.values():
            conn.close()
        pool.clear()

    def _connection(self, url: SplitResult) -> tuple[http.client.HTTPConnection, bool]:
        pool: dict[tuple[str, str, int | None], http.client.HTTPConnection]
        pool = self._local.__dict__.setdefault("pool", {})
        key = (url.scheme, url.hostname or "", url.port)
        conn = pool.get(key)
        if conn is not None:
            return conn, True
        if url.scheme == "https":
            conn = http.client.HTTPSConnection(url.hostname or "", url.port, timeout=self.timeout)
        else:
            conn = http.client.HTTPConnection(url.hostname or "", url.port, timeout=self.timeout)
        pool[key] = conn
        return conn, False

    def _drop(self, url: SplitResult) -> None:
        pool = self._local.__dict__.get("pool", {})
        conn = pool.pop((url.scheme, url.hostname or "", url.port), None)
        if conn is not None:
            conn.close()

    def _post(self, url: SplitResult, path: str, body: bytes, headers: dict[str, str]) -> int:
        for _ in range(2):
            conn, reused = self._connection(url)
            try:
                conn.request("POST", path, body=body, headers=headers)
                response = conn.getresponse()
                response.read()
            except _STALE as e:
                self._drop(url)
                if reused:
                    continue  # a kept-alive connection the receiver had closed: once more, fresh
                raise DeliveryError(True, f"webhook: connection lost: {type(e).__name__}") from e
            except TimeoutError as e:
                self._drop(url)
                raise DeliveryError(True, f"webhook: no answer within {self.timeout}s") from e
            except (OSError, http.client.HTTPException) as e:
                self._drop(url)
                raise DeliveryError(True, f"webhook: {type(e).__name__}: {e}") from e
            if response.will_close:
                self._drop(url)
            return response.status
        raise DeliveryError(True, "webhook: connection lost twice")  # pragma: no cover


def _parse(address: str | None) -> SplitResult:
    if not address:
        raise DeliveryError(False, "webhook: the endpoint has no URL")
    url = urlsplit(address)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise DeliveryError(False, "webhook: the endpoint URL must be http(s)://host/...")
    try:
        url.port  # noqa: B018 - validates the port
    except ValueError as e:
        raise DeliveryError(False, "webhook: the endpoint URL has a bad port") from e
    return url
