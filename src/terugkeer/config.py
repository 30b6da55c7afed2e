"""Typed settings, read from the environment (prefix ``TERUGKEER_``); bad values fail fast.

:class:`Settings` is the one place that reads ``TERUGKEER_*`` variables; the rest of the
package asks :func:`get_settings` (cached per process: a test that changes the environment
calls ``get_settings.cache_clear()``). The channels' groups are nested models whose variables
keep their flat names: ``TERUGKEER_SMTP_HOST`` is ``settings.smtp.host``,
``TERUGKEER_WEBHOOK_SECRET`` is ``settings.webhook.secret``. Every variable is listed in
``docs/operations.md`` (section "Settings").

Fail closed: ``TERUGKEER_ENVIRONMENT`` has no default. Unset, it is not development: no
development key, cookies ``Secure``; :func:`check_environment` refuses to run (the test suite
and the demo name their own). In production :func:`check_environment` also refuses an empty or
placeholder value for every secret.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_VAR_DIR = Path("var")


class SmtpSettings(BaseModel):
    """The e-mail channel (``TERUGKEER_SMTP_*``); see ``notify/delivery/channels/email.py``."""

    host: str = "localhost"
    port: int = Field(default=25, ge=1, le=65535)
    # TERUGKEER_SMTP_FROM; `sender` in code (`from` is a keyword)
    sender: str = Field(
        default="terugkeer@localhost", validation_alias=AliasChoices("from", "sender")
    )
    tls: Literal["starttls", "ssl", "none"] = "starttls"
    username: str = ""
    password: SecretStr = Field(default=SecretStr(""), repr=False)
    timeout: float = Field(default=30.0, gt=0, le=600)
    portal_url: str = "http://127.0.0.1:8000"
    # when set: write messages as .eml files into this folder instead of sending them
    maildir: str = ""


class WebhookSettings(BaseModel):
    """The webhook channel (``TERUGKEER_WEBHOOK_*``); see ``channels/webhook.py``."""

    secret: SecretStr = Field(default=SecretStr(""), repr=False)
    timeout: float = Field(default=10.0, gt=0, le=300)


# values that are not secrets (lower case, compared after stripping)
PLACEHOLDERS = frozenset(
    {
        "changeme",
        "change-me",
        "change_me",
        "secret",
        "password",
        "placeholder",
        "todo",
        "xxx",
        "test",
        "dev",
        "development",
        "example",
        "default",
        "none",
        "null",
    }
)
MIN_SECRET_LENGTH = 16
ENVIRONMENTS = ("development", "test", "production")


class ConfigError(ValueError):
    """A setting that makes it unsafe to run; the message names the variable."""


def is_placeholder(value: str) -> bool:
    """Empty, a known placeholder, or too short to be a secret."""
    v = value.strip()
    return not v or v.lower() in PLACEHOLDERS or len(v) < MIN_SECRET_LENGTH


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="TERUGKEER_",
        extra="ignore",
        # TERUGKEER_SMTP_PORTAL_URL -> smtp.portal_url: split once, after the group's name
        env_nested_delimiter="_",
        env_nested_max_split=1,
    )

    # no default: unset is not development (see check_environment)
    environment: Literal["development", "test", "production"] | None = None
    database_url: str = Field(default="", description="SQLAlchemy URL; default SQLite in var/")
    var_dir: Path = DEFAULT_VAR_DIR
    ingest_batch_size: int = Field(default=5000, ge=1, le=1_000_000)
    # the feed over HTTP: at most this many messages per request (one transaction)
    feed_api_max_messages: int = Field(default=1000, ge=1, le=100_000)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # also append every log line to this file (the test suite scans it for personal data)
    log_tee: str = ""
    # comma-separated id:base64key pairs; the last one encrypts (see security/crypto.py)
    encryption_keys: str = Field(default="", repr=False)
    # a file holding the same id:base64key list (commas or lines); when set it is used instead,
    # and a running process picks up a changed file without a restart (security/crypto.py)
    encryption_keys_file: str = ""
    # the append-only file the worker writes signed checkpoints of the audit log's head to
    # (security/audit.py); `audit verify` checks the chain against the last one
    audit_checkpoint_file: str = ""
    rules_file: str = Field(default="", description="notification rule file; default: shipped")
    # feed watch: silence of a source (in working hours, Mon-Fri) before an alert
    feed_silence_hours: float = Field(default=24.0, gt=0)
    # burst brake: releases of one source in one hour above max(multiple x usual rate, minimum)
    burst_multiple: float = Field(default=10.0, gt=1)
    burst_minimum: int = Field(default=20, ge=2)
    # who runs a command, for the audit log (else `user`, the older name, else the login)
    actor: str = ""
    user: str = ""
    # API tokens expire this many days after they are made
    token_days: int = Field(default=90, ge=1, le=3650)
    # request bodies: at most this many bytes (imports: import_body_bytes)
    max_body_bytes: int = Field(default=1_000_000, ge=1024)
    max_import_body_bytes: int = Field(default=50_000_000, ge=1024)
    # sign-in: failures of one account (any address) before each answer is delayed, doubling
    # up to signin_max_delay seconds; one address is locked after address_failures failures
    signin_free_failures: int = Field(default=3, ge=1, le=100)
    signin_max_delay: float = Field(default=8.0, ge=0, le=60)
    address_failures: int = Field(default=10, ge=1, le=1000)
    # the monitor (docs/monitor.md): published cells with fewer persons are suppressed (never
    # below 5); follow-up ends this many months before the data cut-off (registration lag);
    # research extracts key persons with HMAC-SHA256 under the last of these id:secret pairs
    monitor_min_cell: int = Field(default=10, ge=5, le=1000)
    monitor_registration_lag_months: int = Field(default=6, ge=0, le=60)
    monitor_extract_keys: SecretStr = Field(default=SecretStr(""), repr=False)
    smtp: SmtpSettings = Field(default_factory=SmtpSettings)
    webhook: WebhookSettings = Field(default_factory=WebhookSettings)

    @field_validator("database_url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        if value and not value.startswith(("sqlite", "postgresql")):
            raise ValueError(
                f"unsupported database URL scheme in [{value.split(':', 1)[0]}]: "
                "use sqlite:///PATH or postgresql+psycopg://..."
            )
        return value

    def resolved_database_url(self) -> str:
        """The configured URL, or an SQLite file under ``var_dir``."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.var_dir / 'terugkeer.db').as_posix()}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def assume_environment(name: Literal["development", "test", "production"]) -> Settings:
    """For a run that touches no real data (the demo, in its own database): ``name`` when no
    environment is set; an environment that is set is kept."""
    settings = get_settings()
    if settings.environment is None:
        settings.environment = name
    return settings


def check_environment(settings: Settings | None = None) -> None:
    """Refuse to run without an explicit environment, and in production with an empty or
    placeholder secret (the encryption keys are checked by ``security.crypto``)."""
    settings = settings or get_settings()
    if settings.environment is None:
        raise ConfigError(
            f"TERUGKEER_ENVIRONMENT is not set: say {', '.join(ENVIRONMENTS)} "
            "(unset is never taken as development)"
        )
    if settings.environment != "production":
        return
    bad = []
    if not settings.encryption_keys.strip() and not settings.encryption_keys_file.strip():
        bad.append("TERUGKEER_ENCRYPTION_KEYS")
    if is_placeholder(settings.webhook.secret.get_secret_value()):
        bad.append("TERUGKEER_WEBHOOK_SECRET")
    if settings.smtp.username and is_placeholder(settings.smtp.password.get_secret_value()):
        bad.append("TERUGKEER_SMTP_PASSWORD")
    if bad:
        raise ConfigError(
            f"production refuses an empty or placeholder value (at least {MIN_SECRET_LENGTH} "
            f"characters, not a word like changeme) in {', '.join(bad)}"
        )
