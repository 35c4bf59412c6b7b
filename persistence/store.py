"""WorldStore: the world and its command log in PostgreSQL, over an asyncpg pool.

- seed: a whole world, COPY per table, and a world snapshot of it, in one
  transaction: the log is replayable from its first tick like any other span
  (`log export --world`, the console's time travel, pipeline/operate/timetravel.py).
- load_world / load_entities: fragment tables back into packed records, one
  round trip (every column as one array_agg), assembled with numpy.
- commit_tick: one tick's planned statement (the header, the log row and the
  fragment writes in one) after its bulk COPYs; the log's primary key
  refuses a tick applied twice.
- read_log: the committed batches, in tick order, as replay reads them.

SQL text here is built only from persistence/fragments.py and constants;
every value travels as a parameter.
"""

from __future__ import annotations

import asyncio
import re
from contextlib import asynccontextmanager
from typing import AsyncIterator, cast

import asyncpg
import numpy as np

from schema._generated.layout import ENTITY_DTYPE, ZONE_DTYPE, ZONE_FIELDS
from vocabulary.hashing import world_hash
from vocabulary.types import Batch, RecoveryState, SqlCopy, TickWrite, WorldData

from .checkpoints import compress_world, insert_snapshot
from .codec import assemble, fragment_rows
from .database import TickConnection
from .errors import DatabaseError, DatabaseUnavailable, Fenced, NoWorld, PassingFailure, TickConflict, WorldExists
from .fragments import FRAGMENTS

FRAGMENT_TABLES = frozenset(f.table for f in FRAGMENTS)
WORLD_TABLES = (*(f.table for f in FRAGMENTS), "zone", "world", "command_log", "world_snapshot", "player_registry",
                "zone_group")
BIGINT_MAX = 2**63 - 1
_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]{0,62}\Z")
# What a dead server or connection raises; any other error is a refusal or a bug, not retried.
CONNECTION_LOST = (OSError, asyncio.TimeoutError, asyncpg.PostgresConnectionError, asyncpg.AdminShutdownError,
                   asyncpg.CrashShutdownError, asyncpg.CannotConnectNowError)
# Failures of a statement that pass: it ran as a whole and wrote nothing, so running it again is safe.
PASSING = (asyncpg.DeadlockDetectedError, asyncpg.SerializationError, asyncpg.QueryCanceledError,
           asyncpg.LockNotAvailableError)


def _broken_connection(error: Exception) -> bool:
    """A connection that dies in the middle of an operation can surface from
    asyncpg's client side rather than as a connection error: an InterfaceError
    saying it is closed, or (when the transaction's exit then tries to roll
    back) an InternalClientError about the protocol's state. Both are outages:
    the caller's retry finds out whether the commit landed."""
    if isinstance(error, asyncpg.InternalClientError):
        return True
    return "connection is closed" in str(error) or "connection was closed" in str(error)


def _load_sql(where: str) -> str:
    """One row: for each fragment table, an array per column (same row order within a table)."""
    parts = []
    for f in FRAGMENTS:
        arrays = ", ".join(f'array_agg({c}) AS "{f.table}.{c}"' for c in f.columns)
        parts.append(f"(SELECT {arrays} FROM {f.table} {where}) AS {f.table}")
    return "SELECT * FROM " + " CROSS JOIN ".join(parts)


_WHY_NOT = ("SELECT (SELECT tick FROM world), EXISTS (SELECT 1 FROM command_log WHERE tick = $1), "
            "(SELECT fence FROM world)")
_LOAD_ALL = _load_sql("")
_LOAD_SOME = _load_sql("WHERE id = ANY($1::bigint[])")


class WorldStore:
    def __init__(self, pool: asyncpg.Pool[asyncpg.Record]) -> None:
        """`pool` must come from persistence.database.create_pool (its connections
        track their temp tables)."""
        self._pool = pool
        self._unsure_tick: int | None = None   # a commit interrupted by a lost connection
        self.fence: int | None = None          # this writer's token once it took the world (take_writer)

    # ------------------------------------------------------------ seeding and loading

    async def seed(self, world: WorldData, *, replace: bool = False) -> None:
        """Store `world` (header with its hash, zones, every entity's fragments) and a snapshot of it.

        Refuses with WorldExists when a world is stored, unless `replace`, which
        first empties every table, the command log included.
        """
        records = np.frombuffer(world.entities, dtype=ENTITY_DTYPE)
        if (np.diff(records["id"].astype(np.int64)) <= 0).any():
            raise ValueError("world entities are not in strictly ascending id order")
        zones = np.frombuffer(world.zones, dtype=ZONE_DTYPE)
        zone_rows = list(zip(*(zones[f].tolist() for f in ZONE_FIELDS)))
        rows = {f.table: fragment_rows(records, f) for f in FRAGMENTS}   # CPU work before taking a connection
        digest = bytes.fromhex(world_hash(world))
        compressed = compress_world(world)
        async with self._unavailable("seeding the world"), self._pool.acquire() as conn, conn.transaction():
            # Serialises concurrent seeds, so the emptiness check below holds.
            await conn.execute("LOCK TABLE world IN ACCESS EXCLUSIVE MODE")
            if replace:
                await conn.execute(f"TRUNCATE {', '.join(WORLD_TABLES)}")
            elif (stored := await conn.fetchval("SELECT tick FROM world")) is not None:
                raise WorldExists(f"a world is already stored (at tick {stored}); replace it explicitly "
                                  "(`fluxworld world load --replace`)")
            if await conn.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = current_user"):
                # Every fragment row comes from an entity seeded alongside it, so the
                # foreign key checks (1.5 s of 2.2 s at 100k entities) can only pass:
                # skip them where allowed (superuser; the embedded server's role is).
                await conn.execute("SET LOCAL session_replication_role = replica")
            await conn.execute("INSERT INTO world (seed, tick, next_id, world_hash, transit) "
                               "VALUES ($1, $2, $3, $4, $5)", world.seed, world.tick, world.next_id, digest,
                               world.transit)
            await conn.copy_records_to_table("zone", records=zone_rows, columns=ZONE_FIELDS)
            for f in FRAGMENTS:
                await conn.copy_records_to_table(f.table, records=rows[f.table], columns=f.columns)
            # Checked against the header just written (no log row yet), so it is the seeded world's.
            await insert_snapshot(conn, world.tick, compressed, digest, fence=None)

    async def take_writer(self) -> int:
        """Become the world's only writer: take the next fence token. Waits for a tick statement
        another server has in flight (it holds the header row), which then lands or not, whole;
        after this, no earlier server's statement writes anything."""
        async with self._unavailable("taking the world"):
            token = await self._pool.fetchval("UPDATE world SET fence = fence + 1 RETURNING fence")
        if token is None:
            raise NoWorld("no world is stored: seed one with `fluxworld world load WORLD`")
        self.fence = int(token)
        return self.fence

    async def take_lease(self, holder: str, seconds: float) -> int | None:
        """Take a zone group's world for `seconds` when no live lease holds it (docs/scale-out.md):
        the next fence token, as take_writer, or None while another holder's lease runs."""
        async with self._unavailable("taking the lease"):
            token = await self._pool.fetchval(
                "UPDATE world SET fence = fence + 1, lease_holder = $1, "
                "lease_until = clock_timestamp() + make_interval(secs => $2) "
                "WHERE lease_until IS NULL OR lease_until < clock_timestamp() RETURNING fence", holder, seconds)
        if token is not None:
            self.fence = int(token)
        return None if token is None else int(token)

    async def renew_lease(self, seconds: float) -> bool:
        """Hold the lease `seconds` longer; False once another has taken the world (the fence moved)."""
        async with self._unavailable("renewing the lease"):
            return await self._pool.fetchval(
                "UPDATE world SET lease_until = clock_timestamp() + make_interval(secs => $2) "
                "WHERE fence = $1 RETURNING true", self.fence, seconds) is not None

    async def release_lease(self) -> None:
        """Let the next holder take the world at once (a clean stop)."""
        async with self._unavailable("releasing the lease"):
            await self._pool.execute("UPDATE world SET lease_until = NULL WHERE fence = $1", self.fence)

    async def lease(self) -> tuple[str | None, float | None]:
        """(holder, seconds left) of the lease, (None, None) when none was ever taken."""
        async with self._unavailable("reading the lease"):
            row = await self._pool.fetchrow("SELECT lease_holder, extract(epoch FROM lease_until - clock_timestamp()) "
                                            "AS left FROM world")
        return (None, None) if row is None else (row["lease_holder"],
                                                 None if row["left"] is None else float(row["left"]))

    async def load_world(self) -> WorldData:
        """The stored world, exactly as seeded and then moved on by committed ticks."""
        async with self._unavailable("loading the world"), self._pool.acquire() as conn, \
                conn.transaction(isolation="repeatable_read", readonly=True):   # one snapshot of every table
            return await _read_world(conn)

    async def recovery_state(self) -> RecoveryState:
        """The world, the header's, the newest log row's and the newest snapshot's (tick, hash), read
        in ONE snapshot: a dead server's tick statement that commits meanwhile is in all or in none."""
        async with self._unavailable("loading the world"), self._pool.acquire() as conn, \
                conn.transaction(isolation="repeatable_read", readonly=True):
            world = await _read_world(conn)
            header = await conn.fetchrow("SELECT tick, world_hash FROM world")
            last = await conn.fetchrow("SELECT tick, world_hash FROM command_log ORDER BY tick DESC LIMIT 1")
            snapshot = await conn.fetchrow("SELECT tick, world_hash FROM world_snapshot ORDER BY tick DESC LIMIT 1")
        assert header is not None, "_read_world found it"
        return RecoveryState(world, (header["tick"], header["world_hash"]), _tick_hash(last), _tick_hash(snapshot))

    async def load_entities(self, ids: list[int]) -> bytes:
        """Packed records, ascending id, of those of `ids` that exist."""
        # A command may name any u64; ids beyond bigint cannot exist (they stay below 2^62).
        wanted = [i for i in ids if 0 < i <= BIGINT_MAX]
        if not wanted:
            return b""
        async with self._unavailable("loading entities"):
            arrays = await self._pool.fetchrow(_LOAD_SOME, wanted)
        return assemble(_columns(arrays))

    async def stored_hash(self) -> tuple[int, bytes] | None:
        """The world header's (tick, world hash), or None before a world is seeded."""
        async with self._unavailable("reading the world header"):
            row = await self._pool.fetchrow("SELECT tick, world_hash FROM world")
        return None if row is None else (row["tick"], row["world_hash"])

    async def last_log(self) -> tuple[int, bytes] | None:
        """(tick, world hash) of the newest command log row, or None for an empty log."""
        async with self._unavailable("reading the command log"):
            row = await self._pool.fetchrow("SELECT tick, world_hash FROM command_log ORDER BY tick DESC LIMIT 1")
        return None if row is None else (row["tick"], row["world_hash"])

    async def zone_group(self) -> bool:
        """Whether this is a zone group's database (docs/scale-out.md): its log rows carry zone hashes,
        and its registry its players (split fills it; a world in one process never writes it)."""
        async with self._unavailable("reading the command log"):
            return bool(await self._pool.fetchval(
                "SELECT EXISTS (SELECT 1 FROM command_log WHERE zone_hash IS NOT NULL) "
                "OR EXISTS (SELECT 1 FROM player_registry)"))

    async def log_count(self) -> int:
        async with self._unavailable("reading the command log"):
            return cast(int, await self._pool.fetchval("SELECT count(*) FROM command_log"))

    # ------------------------------------------------------------ ticks

    async def commit_tick(self, write: TickWrite) -> None:
        """Apply `write` atomically: its COPYs into temp tables, then its one statement
        (the log row, the header and every fragment; pipeline/stages/plan.py).

        TickConflict when the tick is already logged or not after the stored
        tick; DatabaseError when the statement fails; either way nothing of the
        tick is stored. DatabaseUnavailable (a StoreUnavailable) when the
        connection dies: the commit may or may not have landed, so the runner
        retries the same write, and a retry finds a landed commit by its log
        row and returns without applying it again.
        """
        async with self._unavailable(f"tick {write.tick}: lost the database while committing", write.tick):
            if self._unsure_tick == write.tick and await self._landed(write):
                self._unsure_tick = None
                return
            async with self._pool.acquire() as conn:
                made = cast(TickConnection, conn).settings   # the pool proxies attributes to its TickConnection
                if self.fence is not None and made.get("fluxworld.fence") != str(self.fence):
                    await conn.execute("SELECT set_config('fluxworld.fence', $1, false)", str(self.fence))
                    made["fluxworld.fence"] = str(self.fence)
                await _fill_temp_tables(conn, write.tick, write.copies)
                try:
                    committed = await conn.fetchval(write.statement.sql, *write.statement.args)
                except (*CONNECTION_LOST, asyncpg.InterfaceError, asyncpg.InternalClientError):
                    raise
                except PASSING as e:   # one statement: it failed whole, so the same write may run again
                    raise PassingFailure(f"tick {write.tick}: {type(e).__name__}: {e}; nothing was written, "
                                         "retrying") from e
                except asyncpg.UniqueViolationError as e:
                    if e.table_name == "command_log":
                        raise TickConflict(write.tick, "already committed; a tick is never applied twice") from None
                    raise _failed(write.tick, e) from e
                except asyncpg.PostgresError as e:   # a statement, or a deferred foreign key check, failed
                    raise _failed(write.tick, e) from e
                if committed is None:      # the header did not move, so nothing was written: why?
                    row = await conn.fetchrow(_WHY_NOT, write.tick)
                    assert row is not None, "a SELECT of scalars returns one row"
                    stored, logged, fence = row
                    if self.fence is not None and fence != self.fence:
                        raise Fenced(f"tick {write.tick}: another server has taken this world (fence {fence}, "
                                     f"ours {self.fence}); this one writes nothing more")
                    if logged:
                        raise TickConflict(write.tick, "already committed; a tick is never applied twice")
                    if stored is None:
                        raise NoWorld("no world is stored: seed one with `fluxworld world load WORLD`")
                    raise TickConflict(write.tick, f"not after the stored world's tick {stored}")
            self._unsure_tick = None

    async def _landed(self, write: TickWrite) -> bool:
        row = await self._pool.fetchrow("SELECT commands, text, world_hash FROM command_log WHERE tick = $1",
                                        write.tick)
        return row is not None and tuple(row) == (write.commands, write.text, write.world_hash)

    @asynccontextmanager
    async def _unavailable(self, what: str, tick: int | None = None) -> AsyncIterator[None]:
        """Turn a lost server or connection into DatabaseUnavailable; remember an
        interrupted commit's tick, whose outcome the next attempt must check."""
        try:
            yield
        except (*CONNECTION_LOST, asyncpg.InterfaceError, asyncpg.InternalClientError) as e:
            if not isinstance(e, CONNECTION_LOST) and not _broken_connection(e):
                raise                      # a misuse of asyncpg: a bug, not an outage
            if tick is not None:
                self._unsure_tick = tick
            raise DatabaseUnavailable(f"{what}: {type(e).__name__}: {e}") from e

    # ------------------------------------------------------------ player accounts

    async def account(self, jid: str) -> int | None:
        """The player entity id a bare JID commands, or None when it has no account."""
        async with self._unavailable("reading player accounts"):
            return cast("int | None", await self._pool.fetchval(
                "SELECT entity_id FROM player_account WHERE jid = $1", jid))

    async def accounts(self) -> dict[str, int]:
        """Every bare JID -> its player entity id (a gateway probes their presence when it connects)."""
        async with self._unavailable("reading player accounts"):
            rows = await self._pool.fetch("SELECT jid, entity_id FROM player_account")
        return {row["jid"]: row["entity_id"] for row in rows}

    async def allocate_account(self, jid: str, at_least: int) -> int:
        """Give `jid` a new entity id, max(at_least, every allocated id + 1), committed
        at once; an existing account is re-pointed (its old id was never usable).
        `at_least` is the world's next_id, so the id is one the world has not used."""
        async with self._unavailable("allocating a player account"), self._pool.acquire() as conn, \
                conn.transaction():
            # Serialises allocations, so that two JIDs never get the same id.
            await conn.execute("LOCK TABLE player_account IN SHARE ROW EXCLUSIVE MODE")
            entity_id = cast(int, await conn.fetchval(
                "SELECT greatest($1::bigint, coalesce(max(entity_id), 0) + 1) FROM player_account", at_least))
            await conn.execute("INSERT INTO player_account (jid, entity_id) VALUES ($1, $2) "
                               "ON CONFLICT (jid) DO UPDATE SET entity_id = excluded.entity_id", jid, entity_id)
        return entity_id

    async def assign_accounts(self, accounts: dict[str, int]) -> None:
        """Bare JID -> player entity id for many accounts at once (the load test's bots), replacing
        any account of those JIDs or of those entities (an earlier run's bots, on other servers)."""
        jids, entities = list(accounts), list(accounts.values())
        async with self._unavailable("assigning player accounts"), self._pool.acquire() as conn, conn.transaction():
            await conn.execute("DELETE FROM player_account "
                               "WHERE jid = ANY($1::text[]) OR entity_id = ANY($2::bigint[])", jids, entities)
            await conn.execute("INSERT INTO player_account (jid, entity_id) "
                               "SELECT * FROM unnest($1::text[], $2::bigint[])", jids, entities)

    # ------------------------------------------------------------ the log

    async def read_log(self, from_tick: int | None = None, to_tick: int | None = None) -> AsyncIterator[Batch]:
        """The committed batches with from_tick <= tick <= to_tick (either bound optional), in tick order."""
        low = 0 if from_tick is None else min(from_tick, BIGINT_MAX)
        high = BIGINT_MAX if to_tick is None else min(to_tick, BIGINT_MAX)
        # A zone group's rows (they carry a zone hash) also say what the tick took from the mail.
        sql = ("SELECT tick, commands, text, CASE WHEN zone_hash IS NULL THEN NULL ELSE arrivals END AS arrivals "
               "FROM command_log WHERE tick BETWEEN $1 AND $2 ORDER BY tick")
        # A cursor streams the log in pages; asyncpg cursors live inside a transaction.
        async with self._unavailable("reading the command log"), self._pool.acquire() as conn, \
                conn.transaction(readonly=True):
            async for row in conn.cursor(sql, low, high, prefetch=256):
                yield Batch(tick=row["tick"], commands=row["commands"], text=row["text"],
                            source=f"command_log tick {row['tick']}", arrivals=row["arrivals"])


def _tick_hash(row: asyncpg.Record | None) -> tuple[int, bytes] | None:
    return None if row is None else (row["tick"], row["world_hash"])


def _columns(row: asyncpg.Record | None) -> dict[str, dict[str, list[object]]]:
    """A _LOAD_* row ("table.column" -> array, NULL for no rows) by table and column."""
    assert row is not None, "an aggregate query returns one row"
    tables: dict[str, dict[str, list[object]]] = {f.table: {} for f in FRAGMENTS}
    for key, values in row.items():
        table, column = key.split(".")
        tables[table][column] = values or []
    return tables


def _failed(tick: int, error: Exception) -> DatabaseError:
    return DatabaseError(f"tick {tick}: the commit failed, nothing of the tick was stored: "
                         f"{type(error).__name__}: {error}")


async def _read_world(conn: asyncpg.pool.PoolConnectionProxy[asyncpg.Record]) -> WorldData:
    header = await conn.fetchrow("SELECT seed, tick, next_id, transit FROM world")
    if header is None:
        raise NoWorld("no world is stored: seed one with `fluxworld world load WORLD`")
    zone_rows = await conn.fetch(f"SELECT {', '.join(ZONE_FIELDS)} FROM zone ORDER BY id")
    arrays = await conn.fetchrow(_LOAD_ALL)
    zones = np.zeros(len(zone_rows), dtype=ZONE_DTYPE)     # zeroed: a Zone has padding, which the hash covers
    for field in ZONE_FIELDS:
        zones[field] = [r[field] for r in zone_rows]
    return WorldData(seed=header["seed"], tick=header["tick"], next_id=header["next_id"],
                     zones=zones.tobytes(), entities=assemble(_columns(arrays)), transit=header["transit"])


async def _fill_temp_tables(conn: asyncpg.pool.PoolConnectionProxy[asyncpg.Record], tick: int,
                            copies: tuple[SqlCopy, ...]) -> None:
    """COPY each SqlCopy's rows into its temp table (created once per connection, kept
    across transactions). A statement that failed may have left rows: empty them first."""
    if not copies:
        return
    made = cast(TickConnection, conn).temp_tables   # the pool proxies attributes to its TickConnection
    for copy in copies:
        _check_copy(copy)
        if copy.temp_table not in made:
            await conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS {copy.temp_table} (LIKE {copy.table})")
            made.add(copy.temp_table)
    await conn.execute(f"TRUNCATE {', '.join(copy.temp_table for copy in copies)}")
    for copy in copies:
        try:
            await conn.copy_records_to_table(copy.temp_table, records=copy.records, columns=copy.columns)
        except asyncpg.PostgresError as e:
            raise DatabaseError(f"tick {tick}: copying {copy.table} rows failed, nothing of the tick was stored: "
                                f"{type(e).__name__}: {e}") from e


def _check_copy(statement: SqlCopy) -> None:
    """The names a SqlCopy puts into SQL text must be ours: a fragment table, plain identifiers."""
    if statement.table not in FRAGMENT_TABLES:
        raise ValueError(f"SqlCopy into {statement.table!r}, which is not a fragment table")
    if not _IDENTIFIER.match(statement.temp_table):
        raise ValueError(f"SqlCopy temp table name {statement.temp_table!r} is not a plain identifier")
