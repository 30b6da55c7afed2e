"""The one MetaData every capability registers its tables with (naming convention included).

Each capability keeps its tables in its own ``tables.py``; ``terugkeer.migrations`` imports
them all so that Alembic sees the whole schema. ``db`` itself imports no capability.
"""

from __future__ import annotations

from sqlalchemy import MetaData

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)
