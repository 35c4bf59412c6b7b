"""A world split into zone groups, each in a database of its own (docs/scale-out.md).

A zone group is the zones one shard process ticks. Its database holds every
table an unsharded world has (the same migrations, store, recovery, snapshots),
with the entities of its zones only; the world's own database, the one split,
keeps the `zone_group` table naming the groups and their databases, and the
player accounts.

- split: the stored world into groups (nothing may be in flight).
- groups: the groups, in zone order.
- Peers: one connection to each group's database, for what a shard reads of
  the others: the barrier (has every group committed tick T?), the mail
  (what each sent at T, `command_log.sent`) and the player registry.

SQL text here names only databases made from validated identifiers; every
value travels as a parameter.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Awaitable, Callable, Iterable, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import numpy as np

from schema._generated.layout import ENTITY_DTYPE, ZONE_DTYPE, Kind
from vocabulary.errors import InputError
from vocabulary.hashing import records_where
from vocabulary.types import WorldData

from .database import connect, create_database_if_missing, create_pool, redact
from .errors import DatabaseUnavailable, NoWorld
from .migrator import migrate
from .store import CONNECTION_LOST, WorldStore

T = TypeVar("T")
_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]{0,62}\Z")
TICK_CHANNEL = "fluxworld_tick"      # what each shard's tick statement notifies (pipeline/stages/plan.py)
# What a group's tick sent; at the tick it was split at (its seeded snapshot, no log yet), nothing: split
# refuses a world with anything in flight.
_SENT = ("SELECT coalesce((SELECT sent FROM command_log WHERE tick = $1), (SELECT ''::bytea FROM world_snapshot "
         "WHERE tick = $1 AND NOT EXISTS (SELECT 1 FROM command_log WHERE tick <= $1)))")


@dataclass(frozen=True)
class ZoneGroup:
    name: str                 # "1,2": its zones, ascending
    zones: frozenset[int]
    database: str             # its database, on the same server as the world's own

    @staticmethod
    def named(zones: frozenset[int], world_database: str) -> ZoneGroup:
        """Its database is named after its zones, runs of neighbours as ranges: zones 1..25 and 30
        make `<world>_z1to25_30`. A name past PostgreSQL's 63 bytes is an InputError."""
        ordered = sorted(zones)
        runs: list[str] = []
        first = previous = ordered[0]
        for zone in [*ordered[1:], None]:
            if zone is not None and zone == previous + 1:
                previous = zone
                continue
            runs.append(str(first) if first == previous else f"{first}to{previous}")
            if zone is not None:
                first = previous = zone
        database = f"{world_database}_z{'_'.join(runs)}"
        if not _IDENTIFIER.match(database):
            raise InputError(f"zone group {','.join(map(str, ordered))}: its database name {database!r} is longer "
                             "than PostgreSQL allows; group fewer, or neighbouring, zones")
        return ZoneGroup(",".join(map(str, ordered)), zones, database)


def parse_zones(text: str) -> frozenset[int]:
    """`--zones 1,2` -> {1, 2}; an InputError naming what is wrong otherwise."""
    try:
        zones = frozenset(int(part) for part in text.split(","))
    except ValueError:
        raise InputError(f"--zones {text!r}: expected zone ids separated by commas, e.g. 1,2") from None
    if not zones or min(zones) < 0:
        raise InputError(f"--zones {text!r}: expected zone ids separated by commas, e.g. 1,2")
    return zones


def neighbours(zones: list[int], count: int) -> list[frozenset[int]]:
    """`zones` (ascending) as `count` runs of neighbouring zones, their sizes differing by one at most."""
    return [frozenset(int(z) for z in part) for part in np.array_split(np.array(zones, dtype=np.int64), count)]


def database_of(dsn: str) -> str:
    name = urlsplit(dsn).path.lstrip("/")
    if not _IDENTIFIER.match(name):
        raise InputError(f"{redact(dsn)}: a world to shard needs a database named by a plain lower-case "
                         f"identifier, got {name!r}")
    return name


def sibling_dsn(dsn: str, database: str) -> str:
    """`dsn` naming `database` instead (same server, user and options)."""
    if not _IDENTIFIER.match(database):
        raise ValueError(f"database name {database!r} is not a plain identifier")
    return urlunsplit(urlsplit(dsn)._replace(path="/" + database))


async def groups(dsn: str) -> list[ZoneGroup]:
    """The world's zone groups in zone order; [] for a world that is not split."""
    conn = await connect(dsn)
    try:
        rows = await conn.fetch("SELECT name, zones, database FROM zone_group")
    finally:
        await conn.close()
    found = [ZoneGroup(r["name"], frozenset(r["zones"]), r["database"]) for r in rows]
    return sorted(found, key=lambda g: min(g.zones))


def group_of(found: list[ZoneGroup], zones: frozenset[int]) -> ZoneGroup:
    for group in found:
        if group.zones == zones:
            return group
    named = "; ".join(g.name for g in found) or "none: split it first (`fluxworld world split`)"
    raise InputError(f"no zone group is exactly zones {','.join(map(str, sorted(zones)))}; the world's groups: "
                     f"{named}")


def group_world(world: WorldData, zones: frozenset[int]) -> WorldData:
    """The part of `world` a group holds: every zone's record, the entities of its zones."""
    return WorldData(world.seed, world.tick, world.next_id, world.zones,
                     records_where(world.entities, ENTITY_DTYPE, "zone", zones), b"")


async def split(dsn: str, zone_sets: list[frozenset[int]], *, replace: bool = False,
                progress: Callable[[str], None] = lambda _: None) -> list[ZoneGroup]:
    """Split the world stored at `dsn` into one database per zone set (docs/scale-out.md)."""
    world_database = database_of(dsn)
    pool = await create_pool(dsn)
    try:
        store = WorldStore(pool)
        world = await store.load_world()
        if not replace and await pool.fetchval("SELECT count(*) FROM zone_group"):
            raise InputError("the world is split already; split again from its stored world with --replace "
                             "(what the groups have run since is lost)")
        zone_ids = set(np.frombuffer(world.zones, dtype=ZONE_DTYPE)["id"].tolist())
        named = [z for zones in zone_sets for z in zones]
        if len(named) != len(set(named)) or set(named) != zone_ids:
            raise InputError(f"the zone groups must name each of the world's zones ({sorted(zone_ids)}) "
                             f"exactly once, got {[sorted(z) for z in zone_sets]}")
        if world.transit:
            raise InputError(f"the world at tick {world.tick} has something in flight between zones; "
                             "split a world with nothing in flight")
        made = [ZoneGroup.named(zones, world_database) for zones in zone_sets]
        for group in made:
            progress(f"zone group {group.name}: database {group.database}")
            group_dsn = sibling_dsn(dsn, group.database)
            await create_database_if_missing(sibling_dsn(dsn, "postgres"), group.database)
            await migrate(group_dsn)
            part = group_world(world, group.zones)
            group_pool = await create_pool(group_dsn)
            try:
                await WorldStore(group_pool).seed(part, replace=True)
                records = np.frombuffer(part.entities, dtype=ENTITY_DTYPE)
                players = records["id"][records["kind"] == Kind.player].astype(np.int64).tolist()
                await group_pool.execute("INSERT INTO player_registry (id, tick) SELECT unnest($1::bigint[]), $2",
                                         players, world.tick)
            finally:
                await group_pool.close()
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute("DELETE FROM zone_group")
            await conn.executemany("INSERT INTO zone_group (name, zones, database) VALUES ($1, $2, $3)",
                                   [(g.name, sorted(g.zones), g.database) for g in made])
        return made
    finally:
        await pool.close()


class Peers:
    """A shard's view of every group's database: the others' committed ticks and mail, and every
    group's registry (its own too). `own` is the shard's group, whose ticks and mail it knows itself.

    Connections that die are opened again on the next call; a call that
    meets a dead server raises DatabaseUnavailable, which the tick loop
    waits out like any other outage.
    """

    def __init__(self, dsn: str, found: list[ZoneGroup], own: ZoneGroup | None = None) -> None:
        self.groups = found
        self._others = [i for i, g in enumerate(found) if g != own]
        self._dsns = [sibling_dsn(dsn, g.database) for g in found]
        self._conns: list[asyncpg.Connection[asyncpg.Record] | None] = [None] * len(found)
        self._ticked = asyncio.Event()

    async def close(self) -> None:
        for conn in self._conns:
            if conn is not None and not conn.is_closed():
                await conn.close()
        self._conns = [None] * len(self._conns)

    async def wait_committed(self, tick: int, *, poll: float = 0.05) -> None:
        """Until every other group's stored world is at `tick` or later: each commit notifies,
        and the header, not the notification, is the truth (a notification can be missed)."""
        while True:
            self._ticked.clear()
            ticks = await self._each(lambda conn: conn.fetchval("SELECT tick FROM world"), self._others)
            if any(t is None for t in ticks):
                raise NoWorld("a zone group's database holds no world: split the world again")
            if min(ticks) >= tick:
                return
            try:
                await asyncio.wait_for(self._ticked.wait(), poll)
            except asyncio.TimeoutError:
                pass

    async def sent(self, tick: int) -> dict[ZoneGroup, bytes]:
        """What each other group's tick `tick` sent (packed Transit records)."""
        rows = await self._each(lambda conn: conn.fetchval(_SENT, tick), self._others)
        for i, row in zip(self._others, rows):
            if row is None:
                raise NoWorld(f"zone group {self.groups[i].name} has no log row for tick {tick}: its log was "
                              "pruned past what the others still need, or it was split again")
        return {self.groups[i]: bytes(row) for i, row in zip(self._others, rows)}

    async def players(self, ids: list[int], before_tick: int) -> set[int]:
        """Those of `ids` that some group made a player before `before_tick`."""
        wanted = [i for i in ids if 0 < i < 2**63]
        if not wanted:
            return set()
        found = await self._each(lambda conn: conn.fetch(
            "SELECT id FROM player_registry WHERE id = ANY($1::bigint[]) AND tick < $2", wanted, before_tick),
            range(len(self.groups)))
        return {r["id"] for rows in found for r in rows}

    async def _each(self, query: Callable[[asyncpg.Connection[asyncpg.Record]], Awaitable[T]],
                    which: Iterable[int]) -> list[T]:
        return list(await asyncio.gather(*(self._on(i, query) for i in which)))

    async def _on(self, i: int, query: Callable[[asyncpg.Connection[asyncpg.Record]], Awaitable[T]]) -> T:
        conn = self._conns[i]
        try:
            if conn is None or conn.is_closed():
                conn = self._conns[i] = await connect(self._dsns[i])
                await conn.add_listener(TICK_CHANNEL, self._notified)
            return await query(conn)
        except (*CONNECTION_LOST, asyncpg.InterfaceError) as e:
            self._conns[i] = None
            raise DatabaseUnavailable(f"zone group {self.groups[i].name}: {type(e).__name__}: {e}") from e

    def _notified(self, *_: object) -> None:
        self._ticked.set()
