"""The database side of fluxworld: PostgreSQL through asyncpg (the only package that imports it).

    fragments.py   the table contract: one table per entity fragment
    codec.py       packed records <-> fragment columns (numpy)
    embedded.py    the private PostgreSQL of `--db embedded`
    database.py    open_database(): "embedded" or a DSN -> an asyncpg pool
    migrator.py    Alembic: migrate(dsn), status(dsn); revisions in migrations/
    store.py       WorldStore: seed, load, commit_tick, read_log
    cli.py         the `db`, `world` and `log` command groups
    errors.py      DatabaseError and its kinds

Names are exported lazily, so importing persistence.fragments (the plan
stage does, every start) does not import asyncpg, SQLAlchemy and Alembic.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .database import Database, open_database
    from .migrator import SchemaStatus, migrate, status
    from .store import WorldStore

__all__ = ["Database", "SchemaStatus", "WorldStore", "migrate", "open_database", "status"]

_HOMES = {"Database": "database", "open_database": "database", "SchemaStatus": "migrator",
          "migrate": "migrator", "status": "migrator", "WorldStore": "store"}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{home}", __name__), name)
