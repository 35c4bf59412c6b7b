"""Checkpoints: snapshots of the whole world, and pruning the command log behind them.

A snapshot (table world_snapshot, migration 0005) is the world after a
committed tick T, as its zlib-compressed canonical encoding beside its hash.
The fragment tables are the newest world; a snapshot is an older one kept so
that the log before it can go while history stays replayable: the snapshot
at S and the log rows after S replay to every later logged hash.

- write: store a snapshot, fenced like a tick (only the world's current
  writer writes one) and only when its hash is the one logged for its tick
  (for the seeded world, which has no log row, the header's: WorldStore.seed
  writes one in its own transaction, so the whole log is replayable).
- prune: delete the log rows up to and including the newest snapshot S with
  S <= newest tick - keep_ticks, and the snapshots before S. The row of S
  itself goes too: S's snapshot holds the world after it, and its hash.
- newest_at_or_below / newest: which snapshot an export or recovery starts from.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

import asyncpg

from vocabulary.hashing import canonical_bytes, world_from_canonical
from vocabulary.types import WorldData

from .errors import DatabaseError, Fenced, NoWorld

if TYPE_CHECKING:   # asyncpg's classes are generic only to the type checker
    Connection = asyncpg.Connection[asyncpg.Record] | asyncpg.pool.PoolConnectionProxy[asyncpg.Record]
# Level 1: most of what zlib can take from packed records, at several times level 6's speed.
COMPRESSION_LEVEL = 1


class SnapshotRefused(DatabaseError):
    """A snapshot that does not belong in the database: its hash is not the logged one, or it is there."""


class NothingToPrune(DatabaseError):
    """No snapshot is old enough to prune the log behind it."""


@dataclass(frozen=True)
class Pruned:
    snapshot_tick: int                   # history replays from here
    log_rows: int                        # command log rows deleted
    log_ticks: tuple[int, int] | None    # the first and last tick deleted
    snapshots: int                       # older snapshots deleted

    def describe(self) -> str:
        ticks = f" (ticks {self.log_ticks[0]}..{self.log_ticks[1]})" if self.log_ticks else ""
        return (f"pruned {self.log_rows} command log rows{ticks} and {self.snapshots} older snapshots; "
                f"history replays from the snapshot at tick {self.snapshot_tick}")


def compress_world(world: WorldData) -> bytes:
    """What a snapshot stores: CPU work only, so a caller can run it in a thread."""
    return zlib.compress(canonical_bytes(world), COMPRESSION_LEVEL)


def decompress_world(stored: bytes) -> WorldData:
    return world_from_canonical(zlib.decompress(stored))


# Written only while the header holds the writer's fence (NULL: a tool, not a server) and only
# when the log's row for the tick carries the same hash (with no row, as for the seeded world, the
# header's at that tick); otherwise nothing, and _WHY_NOT says why.
_WRITE = ("INSERT INTO world_snapshot (tick, world, world_hash) SELECT $1, $2, $3 "
          "WHERE ($4::bigint IS NULL OR (SELECT fence FROM world) = $4) "
          "AND coalesce((SELECT world_hash FROM command_log WHERE tick = $1), "
          "(SELECT world_hash FROM world WHERE tick = $1)) = $3 "
          "ON CONFLICT (tick) DO NOTHING")
_WHY_NOT = ("SELECT (SELECT fence FROM world), (SELECT world_hash FROM command_log WHERE tick = $1), "
            "EXISTS (SELECT 1 FROM world_snapshot WHERE tick = $1)")


async def insert_snapshot(conn: Connection, tick: int, compressed: bytes, digest: bytes, *, fence: int | None) -> None:
    """Checkpoints.write on a connection the caller holds (the seed's transaction, where the
    world's header is not yet visible to anyone else). Raises as write does."""
    written = await conn.execute(_WRITE, tick, compressed, digest, fence)
    if written == "INSERT 0 1":
        return
    row = await conn.fetchrow(_WHY_NOT, tick)
    assert row is not None, "a SELECT of scalars returns one row"
    stored_fence, logged, exists = row
    if stored_fence is None:
        raise NoWorld("no world is stored: seed one with `fluxworld world load WORLD`")
    if fence is not None and stored_fence != fence:
        raise Fenced(f"snapshot of tick {tick}: another server has taken this world (fence {stored_fence}, "
                     f"ours {fence}); not written")
    if exists:
        raise SnapshotRefused(f"snapshot of tick {tick}: one is already stored")
    what = "no command log row" if logged is None else f"the logged hash {bytes(logged).hex()}"
    raise SnapshotRefused(f"snapshot of tick {tick} hashes to {digest.hex()}, but its tick has {what}; "
                          "not written")


class Checkpoints:
    def __init__(self, pool: asyncpg.Pool[asyncpg.Record]) -> None:
        self._pool = pool

    async def write(self, tick: int, compressed: bytes, digest: bytes, *, fence: int | None) -> None:
        """Store the snapshot of tick `tick`. Fenced when another server has taken the world;
        SnapshotRefused when the log's hash of `tick` is not `digest`, or the tick has one."""
        async with self._pool.acquire() as conn:
            await insert_snapshot(conn, tick, compressed, digest, fence=fence)

    async def newest(self) -> tuple[int, bytes] | None:
        """(tick, hash) of the newest snapshot, or None."""
        row = await self._pool.fetchrow("SELECT tick, world_hash FROM world_snapshot ORDER BY tick DESC LIMIT 1")
        return None if row is None else (row["tick"], row["world_hash"])

    async def count(self) -> int:
        return cast(int, await self._pool.fetchval("SELECT count(*) FROM world_snapshot"))

    async def tick_at_or_below(self, tick: int) -> int | None:
        """The tick of the newest snapshot at or below `tick` (without reading its world), or None."""
        return cast("int | None", await self._pool.fetchval("SELECT max(tick) FROM world_snapshot WHERE tick <= $1",
                                                            tick))

    async def newest_at_or_below(self, tick: int) -> tuple[WorldData, bytes] | None:
        """The world of the newest snapshot at or below `tick`, with its stored hash, or None."""
        row = await self._pool.fetchrow("SELECT world, world_hash FROM world_snapshot WHERE tick <= $1 "
                                        "ORDER BY tick DESC LIMIT 1", tick)
        return None if row is None else (decompress_world(row["world"]), row["world_hash"])

    async def first_logged(self) -> int | None:
        return cast("int | None", await self._pool.fetchval("SELECT min(tick) FROM command_log"))

    async def prune(self, keep_ticks: int, *, fence: int | None = None) -> Pruned:
        """Delete the log up to the newest snapshot S <= newest tick - keep_ticks, and the snapshots
        before S. NothingToPrune when there is no such S; Fenced when `fence` is not the header's.

        The header row is read, never locked: a tick commit updates it, and pruning
        (deletes of rows far behind the ticks being written) must never make one wait."""
        async with self._pool.acquire() as conn, conn.transaction():
            header = await conn.fetchrow("SELECT tick, fence FROM world")
            if header is None:
                raise NoWorld("no world is stored: seed one with `fluxworld world load WORLD`")
            if fence is not None and header["fence"] != fence:
                raise Fenced(f"pruning: another server has taken this world (fence {header['fence']}, ours {fence})")
            newest, horizon = header["tick"], header["tick"] - keep_ticks
            snapshot = await conn.fetchval("SELECT max(tick) FROM world_snapshot WHERE tick <= $1", horizon)
            if snapshot is None:
                oldest = await conn.fetchval("SELECT min(tick) FROM world_snapshot")
                have = f"the oldest snapshot is at tick {oldest}" if oldest is not None else "there are no snapshots"
                raise NothingToPrune(
                    f"nothing to prune: no snapshot at or below tick {horizon} (the world's tick {newest} minus "
                    f"--keep-ticks {keep_ticks}), and {have}; pruning without one would leave history "
                    "nobody can replay (snapshots come from `fluxworld serve --checkpoint-every N`)")
            gone = await conn.fetchrow("WITH gone AS (DELETE FROM command_log WHERE tick <= $1 RETURNING tick) "
                                       "SELECT count(*) AS n, min(tick) AS first, max(tick) AS last FROM gone",
                                       snapshot)
            older = await conn.execute("DELETE FROM world_snapshot WHERE tick < $1", snapshot)
        assert gone is not None, "an aggregate returns one row"
        return Pruned(snapshot, gone["n"], None if gone["first"] is None else (gone["first"], gone["last"]),
                      int(older.split()[-1]))
