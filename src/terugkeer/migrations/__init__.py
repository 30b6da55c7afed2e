"""Alembic, driven from code: the migrations ship inside the package.

This package sits above the capabilities: it imports every capability's tables so that the
migrations and autogenerate see one schema (``db`` itself imports none of them).
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, MetaData

from terugkeer.db.metadata import metadata

MIGRATIONS = Path(__file__).parent


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    command.upgrade(alembic_config(engine), revision)


def downgrade(engine: Engine, revision: str = "base") -> None:
    command.downgrade(alembic_config(engine), revision)


def schema_metadata() -> MetaData:
    """The whole schema: every capability's tables registered with the shared metadata."""
    import terugkeer.detention.tables
    import terugkeer.notify.tables
    import terugkeer.reintegration.tables
    import terugkeer.security.tables  # noqa: F401

    return metadata
