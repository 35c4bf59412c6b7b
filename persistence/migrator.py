"""Schema migrations with Alembic: upgrade to head, and say where a database stands.

The revisions live in persistence/migrations/versions/; env.py runs them
through SQLAlchemy's async engine on asyncpg. There is no alembic.ini: the
configuration is built here and the DSN travels in `Config.attributes`
(a DSN may hold a '%', which an ini value would try to interpolate).

`migrate` runs Alembic's synchronous command API in a worker thread, where
env.py is free to start its own event loop; so it may be awaited from any
running loop.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, NullPool
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from .database import connect, redact
from .errors import DatabaseError, DatabaseUnavailable, SchemaNotCurrent

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


@dataclass(frozen=True)
class SchemaStatus:
    current: str | None          # the database's revision; None before the first migration
    head: str                    # the newest revision this code knows
    pending: tuple[str, ...]     # revisions an upgrade would apply, in order

    @property
    def up_to_date(self) -> bool:
        return not self.pending


def alembic_config(dsn: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["dsn"] = dsn
    return config


def async_engine(dsn: str) -> AsyncEngine:
    """SQLAlchemy's async engine on asyncpg, connecting exactly as our pool does
    (asyncpg parses the DSN itself, unix-socket `?host=` included)."""
    return create_async_engine("postgresql+asyncpg://", async_creator=lambda: asyncpg.connect(dsn),
                               poolclass=NullPool)


async def migrate(dsn: str) -> SchemaStatus:
    """Upgrade the database at `dsn` to head; returns where it then stands."""
    await (await connect(dsn)).close()  # fail early, and clearly, on an unreachable or old server
    try:
        await asyncio.to_thread(command.upgrade, alembic_config(dsn), "head")
    except (CommandError, SQLAlchemyError) as e:
        raise DatabaseError(f"migrating {redact(dsn)} failed: {e}") from e
    return await status(dsn)


async def status(dsn: str) -> SchemaStatus:
    """The database's revision, the head, and what an upgrade would apply."""
    await (await connect(dsn)).close()
    engine = async_engine(dsn)
    try:
        async with engine.connect() as conn:
            current = await conn.run_sync(_current_revision)
    except (OSError, SQLAlchemyError) as e:
        raise DatabaseUnavailable(f"cannot read the schema revision of {redact(dsn)}: {e}") from e
    finally:
        await engine.dispose()
    script = ScriptDirectory.from_config(alembic_config())
    head = script.get_current_head()
    assert head is not None, "persistence/migrations has no revisions"
    try:
        scripts = list(script.iterate_revisions(head, current or "base"))
    except CommandError as e:
        raise DatabaseError(f"{redact(dsn)} is at revision {current}, unknown to this fluxworld "
                            f"(made by a newer version?): {e}") from e
    return SchemaStatus(current, head, tuple(s.revision for s in reversed(scripts)))


async def require_current(dsn: str) -> SchemaStatus:
    """The schema status, or SchemaNotCurrent when migrations are pending."""
    state = await status(dsn)
    if not state.up_to_date:
        at = f"revision {state.current}" if state.current else "an empty schema"
        raise SchemaNotCurrent(f"{redact(dsn)} is at {at}, {len(state.pending)} migration(s) behind: "
                               "run `fluxworld db migrate` (or `fluxworld db init`)")
    return state


def _current_revision(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()
