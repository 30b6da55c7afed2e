"""Typed settings, read from the environment (prefix ``TERUGKEER_``); bad values fail fast."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_VAR_DIR = Path("var")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TERUGKEER_", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    database_url: str = Field(default="", description="SQLAlchemy URL; default SQLite in var/")
    var_dir: Path = DEFAULT_VAR_DIR
    ingest_batch_size: int = Field(default=5000, ge=1, le=1_000_000)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # comma-separated id:base64key pairs; the last one encrypts (see security/crypto.py)
    encryption_keys: str = Field(default="", repr=False)
    rules_file: str = Field(default="", description="notification rule file; default: shipped")
    # feed watch: silence of a source (in working hours, Mon-Fri) before an alert
    feed_silence_hours: float = Field(default=24.0, gt=0)
    # burst brake: releases of one source in one hour above max(multiple x usual rate, minimum)
    burst_multiple: float = Field(default=10.0, gt=1)
    burst_minimum: int = Field(default=20, ge=2)

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
