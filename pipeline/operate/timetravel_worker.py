"""The time-travel worker: rebuilds past worlds in a process of its own.

pipeline/operate/timetravel.py starts this module in one spawned process
(at nice 10) and sends it requests. Rebuilding a past tick is O(world) to
load a snapshot and O(ticks) of engine work to replay the log after it:
seconds of CPU that must never run on the server's event loop or hold its
GIL, and a log of thousands of ticks that must not flow through the
server's process. So this process has its own engine (loaded once), its own
event loop and its own database connections.

The engine replays the log as the live server ran it, minus what never
changes the world: no area-of-interest effects, no view, no per-tick hash
(only the tick asked for is hashed). The world after a tick is the engine's
canonical encoding, which is also what the hash is taken over.

A small cache makes stepping cheap: the engine still holds the last world it
rebuilt, so the next tick costs one tick of replay; worlds met every
CACHE_EVERY ticks on the way are kept (at most CACHE_BYTES of records, least
recently used first out), so stepping back replays from the nearest one at or
below. The past does not change, so nothing is invalidated by new ticks;
worlds below the covered span (pruned away) are dropped.

Every answer is plain picklable data; a failure comes back as Failed with its
message, never as an exception object whose class may not survive pickling.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Union, cast

import asyncpg
import numpy as np

from persistence.checkpoints import Checkpoints
from persistence.database import create_pool
from persistence.store import WorldStore
from pipeline.engines.engine import Rules, create_engine
from pipeline.engines.frames import COMMAND_FRAME, WORLD_FRAME, arrivals_frame
from schema._generated.layout import ENTITY_DTYPE, ENTITY_SIZE
from vocabulary.hashing import world_from_canonical, world_hash
from vocabulary.records import unpack_entity
from vocabulary.types import WorldData

log = logging.getLogger(__name__)

NICENESS = 10                 # the server's tick loop goes first on a shared machine
CACHE_EVERY = 256             # ticks between worlds kept on the way during a rebuild
CACHE_BYTES = 64 * 2**20      # records kept at most (the newest world is kept even when larger)

# The first tick with a snapshot from which the log after it is whole (pruning deletes the log up to
# and including the oldest snapshot it keeps), and the last tick logged or snapshotted.
_SPAN = ("SELECT (SELECT min(tick) FROM world_snapshot "
         "        WHERE tick >= coalesce((SELECT min(tick) FROM command_log) - 1, -1)) AS first, "
         "greatest((SELECT max(tick) FROM command_log), (SELECT max(tick) FROM world_snapshot)) AS last")
# What the database says the world hashed to after a tick: its log row's hash, or its snapshot's.
_LOGGED_HASH = ("SELECT coalesce((SELECT world_hash FROM command_log WHERE tick = $1), "
                "(SELECT world_hash FROM world_snapshot WHERE tick = $1))")


@dataclass(frozen=True)
class Rebuilt:
    world: WorldData
    hash: str
    logged_hash: str | None
    replayed: int


@dataclass(frozen=True)
class Uncovered:
    """The tick asked for is outside the span the snapshots and the log cover (None: nothing is)."""
    tick: int
    span: tuple[int, int] | None


@dataclass(frozen=True)
class Failed:
    message: str


Answer = Union[Rebuilt, Uncovered, Failed]
DiffAnswer = Union[list[dict[str, Any]], Uncovered, Failed]


class WorldCache:
    """Worlds by tick, bounded by the bytes of their records, least recently used out first."""

    def __init__(self, budget: int = CACHE_BYTES) -> None:
        self.budget = budget
        self._worlds: OrderedDict[int, WorldData] = OrderedDict()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._worlds)

    def put(self, world: WorldData) -> None:
        if world.tick in self._worlds:
            self._worlds.move_to_end(world.tick)
            return
        self._worlds[world.tick] = world
        self._bytes += _size(world)
        while self._bytes > self.budget and len(self._worlds) > 1:
            _, gone = self._worlds.popitem(last=False)
            self._bytes -= _size(gone)

    def best(self, tick: int, first: int) -> WorldData | None:
        """The newest world at or below `tick` and not below `first`, or None."""
        found = max((t for t in self._worlds if first <= t <= tick), default=None)
        if found is None:
            return None
        self._worlds.move_to_end(found)
        return self._worlds[found]

    def drop_below(self, first: int) -> None:
        for tick in [t for t in self._worlds if t < first]:
            self._bytes -= _size(self._worlds.pop(tick))


def _size(world: WorldData) -> int:
    return len(world.entities) + len(world.zones)


class Worker:
    """The process's one engine, event loop, connections and cache."""

    def __init__(self, dsn: str, engine_name: str | None) -> None:
        self.dsn = dsn
        self.engine: Rules = create_engine(engine_name)
        self.loop = asyncio.new_event_loop()
        self.cache = WorldCache()
        self.engine_tick: int | None = None     # the tick of the world the engine holds; None: unknown
        self._pool: asyncpg.Pool[asyncpg.Record] | None = None

    async def pool(self) -> asyncpg.Pool[asyncpg.Record]:
        if self._pool is None:
            self._pool = await create_pool(self.dsn, pool_max=2)
        return self._pool

    async def span(self) -> tuple[int, int] | None:
        row = await (await self.pool()).fetchrow(_SPAN)
        assert row is not None, "a SELECT of scalars returns one row"
        return None if row["first"] is None else (row["first"], row["last"])

    async def world_at(self, tick: int) -> Rebuilt | Uncovered:
        span = await self.span()
        if span is None or not span[0] <= tick <= span[1]:
            return Uncovered(tick, span)
        first = span[0]
        self.cache.drop_below(first)
        pool = await self.pool()
        world, replayed = await self._rebuild(pool, tick, first)
        logged = await pool.fetchval(_LOGGED_HASH, tick)
        return Rebuilt(world, world_hash(world), None if logged is None else bytes(logged).hex(), replayed)

    async def _rebuild(self, pool: asyncpg.Pool[asyncpg.Record], tick: int, first: int) -> tuple[WorldData, int]:
        cached = self.cache.best(tick, first)
        if cached is not None and cached.tick == tick:
            return cached, 0
        # Start from the newest world at or below the tick: the engine's own (no load at all), a
        # cached one, or the newest snapshot; on a tie the cheaper.
        snapshot_tick = await Checkpoints(pool).tick_at_or_below(tick)
        engine_tick = self.engine_tick if self.engine_tick is not None and first <= self.engine_tick <= tick else None
        start = max(t for t in (engine_tick, None if cached is None else cached.tick, snapshot_tick, -1)
                    if t is not None)
        if start < 0:
            raise LookupError(f"no world at or below tick {tick} to rebuild it from")
        if start != engine_tick:
            if cached is not None and cached.tick == start:
                base = cached
            else:
                stored = await Checkpoints(pool).newest_at_or_below(tick)
                assert stored is not None and stored[0].tick == start, "snapshots are never deleted above the span"
                base = stored[0]
                self.cache.put(base)
            self.engine_tick = None
            self.engine.project(WORLD_FRAME.encode({"seed": base.seed, "tick": base.tick, "next_id": base.next_id,
                                                    "replace": 1, "zones": base.zones, "entities": base.entities,
                                                    "transit": base.transit}))
            self.engine_tick = start
        replayed = await self._replay(pool, start, tick)
        world = world_from_canonical(self.engine.canonical())
        self.cache.put(world)
        return world, replayed

    async def _replay(self, pool: asyncpg.Pool[asyncpg.Record], start: int, tick: int) -> int:
        """Run the logged ticks start+1..tick on the engine; a tick missing from the log runs empty,
        as replay runs one missing from a batches file."""
        self.engine_tick = None                # until the last tick has run
        at = start
        async for batch in WorldStore(pool).read_log(start + 1, tick):
            while at + 1 < batch.tick:
                at += 1
                self._step(at, b"", b"")
            at = batch.tick
            if batch.arrivals is not None:      # a zone group's log: what its tick took from the mail
                self.engine.project(arrivals_frame(batch.arrivals))
            self._step(at, batch.commands, batch.text)
        while at < tick:
            at += 1
            self._step(at, b"", b"")
        self.engine_tick = tick
        return tick - start

    def _step(self, tick: int, commands: bytes, text: bytes) -> None:
        # As pipeline/stages/transform.py frames a tick, without the area-of-interest effects.
        self.engine.transform(COMMAND_FRAME.encode({"tick": tick, "commands": commands, "text": text,
                                                    "skip_area_of_interest": 1}))
        if tick % CACHE_EVERY == 0:
            self.cache.put(world_from_canonical(self.engine.canonical()))

    async def diff(self, a: int, b: int) -> DiffAnswer:
        low, high = sorted((a, b))
        worlds = {}
        for tick in (low, high):                 # the lower first: the higher is a step forward from it
            answer = await self.world_at(tick)
            if isinstance(answer, Uncovered):
                return answer
            worlds[tick] = answer.world
        return diff_worlds(worlds[a], worlds[b])


def diff_worlds(before: WorldData, after: WorldData) -> list[dict[str, Any]]:
    """The entities whose records differ, ascending id: added, removed, or changed with the fields
    that changed as [before, after] (None for an entity that is not there)."""
    old, new = _by_id(before.entities), _by_id(after.entities)
    common, i, j = np.intersect1d(old[0], new[0], assume_unique=True, return_indices=True)
    changed = common[(old[1][i] != new[1][j]).any(axis=1)]
    out = []
    for entity in sorted([*changed.tolist(), *np.setdiff1d(old[0], new[0]).tolist(),
                          *np.setdiff1d(new[0], old[0]).tolist()]):
        was, now = _fields(old, entity), _fields(new, entity)
        if was is None or now is None:
            present = cast(dict[str, Any], was or now)
            fields = {k: [None, v] if was is None else [v, None] for k, v in present.items()}
            out.append({"id": entity, "change": "added" if was is None else "removed", "fields": fields})
        else:
            fields = {k: [was[k], now[k]] for k in was if was[k] != now[k]}
            out.append({"id": entity, "change": "changed", "fields": fields})
    return out


def _by_id(entities: bytes) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """(ids, records as rows of bytes), both ascending id as a world holds them."""
    ids = np.frombuffer(entities, dtype=ENTITY_DTYPE)["id"]
    return ids, np.frombuffer(entities, dtype=np.uint8).reshape(-1, ENTITY_SIZE)


def _fields(world: tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]], entity: int) -> dict[str, Any] | None:
    ids, rows = world
    at = int(np.searchsorted(ids, entity))
    if at == len(ids) or int(ids[at]) != entity:
        return None
    return unpack_entity(rows[at].tobytes())


# ---------------------------------------------------------------- what the parent calls (in this process)

_worker: Worker | None = None


def initialize(dsn: str, engine_name: str | None) -> None:
    """The pool's initializer: lower the priority, load the engine once."""
    global _worker
    os.nice(NICENESS)
    _worker = Worker(dsn, engine_name)


def _run(work: Any, what: str) -> Any:
    assert _worker is not None, "initialize runs first"
    try:
        return _worker.loop.run_until_complete(work)
    except Exception as exc:   # any failure, as data: see the module's docstring
        log.exception("time travel: %s failed", what)
        return Failed(f"{what}: {type(exc).__name__}: {exc}")


def world_at(tick: int) -> Answer:
    assert _worker is not None, "initialize runs first"
    return cast(Answer, _run(_worker.world_at(tick), f"rebuilding tick {tick}"))


def diff(a: int, b: int) -> DiffAnswer:
    assert _worker is not None, "initialize runs first"
    return cast(DiffAnswer, _run(_worker.diff(a, b), f"diffing ticks {a} and {b}"))


def span() -> tuple[int, int] | None | Failed:
    assert _worker is not None, "initialize runs first"
    return cast("tuple[int, int] | None | Failed", _run(_worker.span(), "reading the covered span"))


def pid() -> int:
    """This process's id (the parent names it; a test kills it)."""
    return os.getpid()
