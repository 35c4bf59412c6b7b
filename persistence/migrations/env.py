"""Alembic's environment: run the revisions through SQLAlchemy's async engine on asyncpg.

Called by persistence/migrator.py, which passes the DSN in
`config.attributes["dsn"]`. The `alembic` command works too, with
`alembic -c <any ini naming script_location> -x dsn=postgresql://... upgrade head`,
or offline (`--sql`) to print the DDL.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import Connection, text

from persistence.migrator import async_engine

# Two processes migrating one database at once take turns on this lock
# (an arbitrary constant: "fluxworld" in ASCII, truncated to a bigint).
MIGRATION_LOCK = 0x666C7578776F726C


def _dsn() -> str:
    dsn = context.config.attributes.get("dsn") or context.get_x_argument(as_dictionary=True).get("dsn")
    if not dsn:
        raise RuntimeError("no database: pass the DSN as config.attributes['dsn'] or `-x dsn=...`")
    return str(dsn)


def run_migrations_offline() -> None:
    context.configure(dialect_name="postgresql", literal_binds=True, transactional_ddl=True)
    with context.begin_transaction():
        context.run_migrations()


def do_run_migrations(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=None, transactional_ddl=True)
    with context.begin_transaction():
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        context.run_migrations()


async def run_async_migrations() -> None:
    engine = async_engine(_dsn())
    try:
        async with engine.connect() as connection:
            await connection.run_sync(do_run_migrations)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    asyncio.run(run_async_migrations())
