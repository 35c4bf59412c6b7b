"""Opening a database: `--db embedded` or a postgresql:// DSN, as an asyncpg pool.

    async with open_database("embedded") as db:
        store = db.store()

The embedded cluster is started (and stopped on the way out) and its
`fluxworld` database created on first use; a DSN is used as given and must
name an existing database on PostgreSQL 14 or newer. Every failure to reach
or use the server becomes a DatabaseUnavailable saying which server and why.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from vocabulary.errors import InputError

from .embedded import EmbeddedServer, exit_on_termination, restore_signals
from .errors import DatabaseUnavailable

if TYPE_CHECKING:
    from .checkpoints import Checkpoints
    from .store import WorldStore

log = logging.getLogger(__name__)

EMBEDDED = "embedded"
EMBEDDED_DATABASE = "fluxworld"          # the server's world
REPLAY_DATABASE = "fluxworld_replay"     # `replay --db embedded`
BENCH_DATABASE = "fluxworld_bench"       # `bench pipeline`, the load tests
MIN_SERVER_MAJOR = 14
POOL_MIN, POOL_MAX = 1, 4       # one tick writer, a reader or two (contextualize, tools)
POOL_CLOSE_TIMEOUT = 5.0       # seconds the connections get to close at exit
CONNECT_TIMEOUT = 10.0

if TYPE_CHECKING:
    _Connection = asyncpg.Connection[asyncpg.Record]
else:
    _Connection = asyncpg.Connection


class TickConnection(_Connection):
    """The pool's connections: each remembers the temp tables it has created,
    so a tick's COPY creates its per-connection temp table only once."""

    __slots__ = ("temp_tables", "settings")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.temp_tables: set[str] = set()
        self.settings: dict[str, str] = {}     # session settings made (fluxworld.fence: the writer's token)

    def get_reset_query(self) -> str:
        """The pool's reset on release, but for RESET ALL: the session keeps the settings made
        on it (`settings`), so a writer's fence is set once per connection, not once per tick."""
        return "\n".join(q for q in super().get_reset_query().splitlines() if q.strip() != "RESET ALL;")


@dataclass(frozen=True)
class Database:
    dsn: str
    pool: asyncpg.Pool[asyncpg.Record]

    def store(self) -> WorldStore:
        from .store import WorldStore

        return WorldStore(self.pool)

    def checkpoints(self) -> Checkpoints:
        from .checkpoints import Checkpoints

        return Checkpoints(self.pool)


def check_db_option(db: str) -> str:
    """`db` if it is "embedded" or a postgresql:// DSN; else InputError (exit 2)."""
    if db == EMBEDDED or urlsplit(db).scheme in ("postgresql", "postgres"):
        return db
    raise InputError(f"--db must be 'embedded' or a postgresql:// DSN, got {redact(db)!r}")


def redact(dsn: str) -> str:
    """The DSN without its password, for messages."""
    parts = urlsplit(dsn)
    if not parts.password:
        return dsn
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


@asynccontextmanager
async def open_database(db: str, *, pool_max: int = POOL_MAX,
                        embedded_database: str = EMBEDDED_DATABASE) -> AsyncIterator[Database]:
    """Connect to `db` ("embedded" or a DSN) and yield its DSN and a small pool.

    `embedded_database` names the database inside the embedded cluster: the
    server's world lives in the default one; replay and the benchmarks keep
    theirs apart so they never replace it.
    """
    check_db_option(db)
    async with AsyncExitStack() as stack:
        if db == EMBEDDED:
            dsn = await _start_embedded(stack, embedded_database)
        else:
            dsn = db
        pool = await create_pool(dsn, pool_max=pool_max)
        stack.push_async_callback(_close, pool)
        yield Database(dsn, pool)


async def _start_embedded(stack: AsyncExitStack, database: str) -> str:
    server = EmbeddedServer()
    # Starting blocks for ~0.5 s (initdb the first time): keep it off the loop. A cluster whose
    # postmaster was just killed refuses to start until its last backends have gone: try again.
    for delay in (0.2, 0.5, 1.0, 2.0, 4.0, 0.0):
        try:
            await asyncio.to_thread(server.start)
            break
        except DatabaseUnavailable as e:
            if not delay:
                raise
            log.warning("%s; trying again in %.1f s", e, delay)
            await asyncio.sleep(delay)
    stack.callback(server.stop)
    watcher = asyncio.create_task(server.watch(), name="embedded PostgreSQL watch")
    stack.push_async_callback(_cancelled, watcher)   # before the stop: no restart can follow it
    stack.callback(restore_signals, exit_on_termination())  # signals only from the main thread
    await create_database_if_missing(server.uri("postgres"), database)
    return server.uri(database)


async def _close(pool: asyncpg.Pool[asyncpg.Record]) -> None:
    """Close the pool, but never wait long on a server that is gone: a pool restoring its floor
    of connections to a dead server would hold the exit for its connect timeout."""
    try:
        await asyncio.wait_for(pool.close(), POOL_CLOSE_TIMEOUT)
    except asyncio.TimeoutError:
        log.warning("the database did not let its connections close within %.0f s; dropped them",
                    POOL_CLOSE_TIMEOUT)
        pool.terminate()


async def _cancelled(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def connect(dsn: str) -> asyncpg.Connection[asyncpg.Record]:
    """One connection, with failures explained; checks the server version."""
    where = redact(dsn)
    try:
        conn = await asyncpg.connect(dsn, timeout=CONNECT_TIMEOUT)
    except asyncpg.InvalidCatalogNameError as e:
        raise DatabaseUnavailable(f"{where}: {e} (create it, or run `fluxworld db init` for embedded)") from e
    except asyncpg.InvalidAuthorizationSpecificationError as e:
        raise DatabaseUnavailable(f"{where}: authentication failed: {e}") from e
    except (OSError, asyncio.TimeoutError) as e:
        raise DatabaseUnavailable(f"cannot reach PostgreSQL at {where}: {e or type(e).__name__}") from e
    except (ValueError, asyncpg.ClientConfigurationError) as e:
        raise InputError(f"bad DSN {where!r}: {e}") from e
    except asyncpg.PostgresError as e:
        raise DatabaseUnavailable(f"{where}: {e}") from e
    version = conn.get_server_version()
    if version.major < MIN_SERVER_MAJOR:
        await conn.close()
        raise DatabaseUnavailable(f"{where} runs PostgreSQL {version.major}.{version.minor}; "
                                  f"fluxworld needs {MIN_SERVER_MAJOR} or newer")
    return conn


async def create_pool(dsn: str, *, pool_max: int = POOL_MAX) -> asyncpg.Pool[asyncpg.Record]:
    # One checked connection first, so that a bad server fails with a clear
    # message rather than from inside the pool.
    probe = await connect(dsn)
    await probe.close()
    try:
        return await asyncpg.create_pool(dsn, min_size=POOL_MIN, max_size=pool_max,
                                         connection_class=TickConnection, timeout=CONNECT_TIMEOUT)
    except (OSError, asyncio.TimeoutError, asyncpg.PostgresError) as e:
        raise DatabaseUnavailable(f"cannot open a pool on {redact(dsn)}: {e}") from e


async def create_database_if_missing(admin_dsn: str, name: str) -> bool:
    """Create database `name` (a trusted constant) via `admin_dsn`; True if it was created."""
    conn = await connect(admin_dsn)
    try:
        if await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            return False
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        except (asyncpg.DuplicateDatabaseError, asyncpg.UniqueViolationError):
            return False     # another process won the race (caught by the catalog's unique index)
        return True
    finally:
        await conn.close()
