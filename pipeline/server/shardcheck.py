"""`fluxworld shards check`: a sharded world's logs, replayed in one process, give its shards' hashes.

docs/scale-out.md. Every zone group logs, with each tick, the zone hash of
its zones (docs/rules.md "Zone hash"). This check starts from the world as
it was split (the world's own database keeps it), merges the groups' logs
tick by tick into one batch (groups in zone order, each group's commands in
its order: commands of different zones never meet), runs them through one
engine, and compares every group's zone hash at every tick. Where all
groups stand at the same tick, it also compares the whole stored world,
merged from the groups, with the replayed one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import asyncpg
import numpy as np

from persistence.checkpoints import Checkpoints
from persistence.database import connect, create_pool
from persistence.shards import ZoneGroup, groups, sibling_dsn
from persistence.store import WorldStore
from schema._generated.layout import COMMAND_SIZE, ENTITY_DTYPE, TRANSIT_DTYPE, ZONE_DTYPE, TransitKind
from vocabulary.errors import CheckFailed
from vocabulary.hashing import canonical_bytes, records_where, world_from_canonical, world_hash, zone_hash
from vocabulary.types import Batch, CommandBlock, WorldData

from ..blocks import merge
from ..engines.engine import create_engine, default_engine
from ..engines.frames import COMMAND_FRAME
from ..replay import Lane
from ..view import WorldView


@dataclass
class ShardCheck:
    groups: list[str]
    ticks: int = 0                    # ticks replayed
    compared: int = 0                 # zone hashes compared
    commands: int = 0
    final_tick: int = 0
    whole_world: str = ""             # what the merged stored world showed
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class ShardLogs:
    """A sharded world's logs, merged: the world it was split from, and a batch a tick."""

    groups: list[ZoneGroup]
    origin: WorldData
    logs: list[dict[int, tuple[bytes, bytes, bytes]]]   # per group: tick -> (commands, text, zone hash)

    @property
    def last_tick(self) -> int:
        """The last tick every group has logged."""
        return min((max(log) if log else self.origin.tick) for log in self.logs)

    def batch(self, tick: int) -> tuple[Batch | None, list[str]]:
        """Tick `tick`'s merged batch (groups in zone order), or None and the groups missing it."""
        rows = [log.get(tick) for log in self.logs]
        missing = [g.name for g, row in zip(self.groups, rows) if row is None]
        if missing:
            return None, missing
        merged = merge([CommandBlock(row[0], row[1], b"", 0.0) for row in rows if row is not None])
        return Batch(tick, merged.commands, merged.text, source=f"zone groups' logs, tick {tick}"), []


async def read_shard_logs(dsn: str) -> ShardLogs:
    found = await groups(dsn)
    if not found:
        raise CheckFailed("the world is not split into zone groups (`fluxworld world split`)")
    return ShardLogs(found, await stored_world(dsn), [await _log(sibling_dsn(dsn, g.database)) for g in found])


async def check_shards(dsn: str, engine_name: str | None = None,
                       progress: Callable[[int], None] = lambda _: None) -> ShardCheck:
    logs = await read_shard_logs(dsn)
    found, origin = logs.groups, logs.origin
    report = ShardCheck([g.name for g in found])
    engine = create_engine(engine_name)
    engine.project(WorldView.from_world(origin).frame())
    for tick in range(origin.tick + 1, logs.last_tick + 1):
        batch, missing = logs.batch(tick)
        if batch is None:
            report.problems.append(f"tick {tick}: no log row in zone group(s) {', '.join(missing)}")
            break
        engine.transform(COMMAND_FRAME.encode({"tick": tick, "commands": batch.commands, "text": batch.text,
                                               "skip_area_of_interest": 1}))
        canonical = bytes(engine.canonical())
        for group, log in zip(found, logs.logs):
            logged = log[tick][2]
            report.compared += 1
            if (replayed := zone_hash(canonical, group.zones)) != logged:
                report.problems.append(f"tick {tick}: zone group {group.name} logged zone hash {logged.hex()[:16]}, "
                                       f"the replay in one process gives {replayed.hex()[:16]}")
        report.ticks += 1
        report.commands += len(batch.commands) // COMMAND_SIZE
        report.final_tick = tick
        if len(report.problems) >= 5:
            break
        progress(tick)
    if report.ok:
        report.whole_world = await _compare_whole(dsn, found, engine.canonical(), report)
    for group in found:
        report.problems += await replay_group(sibling_dsn(dsn, group.database), group.name, engine_name)
    return report


async def replay_group(dsn: str, name: str, engine_name: str | None = None) -> list[str]:
    """A group's log replayed alone, from its first snapshot, with what each tick took from the mail:
    every tick's world hash must be the one it logged (a group recovers and replays on its own)."""
    pool = await create_pool(dsn)
    try:
        first = await Checkpoints(pool).first_logged()
        base = None if first is None else await Checkpoints(pool).newest_at_or_below(first - 1)
        if base is None:
            return [] if first is None else [f"zone group {name}: no snapshot before its first logged tick {first}"]
        lane = Lane(engine_name or default_engine(), WorldView.from_world(base[0]), sights=False)
        rows = await pool.fetch("SELECT tick, world_hash FROM command_log")
        logged = {r["tick"]: bytes(r["world_hash"]) for r in rows}
        async for batch in WorldStore(pool).read_log(first):
            ctx = await lane.step(batch)
            if ctx.world_hash is None and ctx.hashing is not None:
                ctx.world_hash, _ = await ctx.hashing
            if ctx.world_hash != logged[batch.tick]:
                return [f"zone group {name}: its log replayed alone gives another world hash at tick {batch.tick}"]
        return []
    finally:
        await pool.close()


async def _compare_whole(dsn: str, found: list[ZoneGroup], canonical: bytes | memoryview,
                         report: ShardCheck) -> str:
    stored = [await stored_world(sibling_dsn(dsn, g.database)) for g in found]
    ticks = {w.tick for w in stored}
    if ticks != {report.final_tick}:
        return f"not compared: the groups stand at ticks {sorted(ticks)}"
    merged = merge_worlds(found, stored)
    replayed = world_from_canonical(canonical)
    if canonical_bytes(merged) == canonical_bytes(replayed):
        return f"the stored groups, merged, are the replayed world at tick {merged.tick}: {world_hash(merged)}"
    report.problems.append(f"tick {merged.tick}: the stored groups, merged, hash to {world_hash(merged)}; the "
                           f"replay in one process to {world_hash(replayed)}")
    return "differs"


def merge_worlds(found: list[ZoneGroup], stored: list[WorldData]) -> WorldData:
    """One world from its groups' (all at one tick): each zone as its group has it, every entity,
    and what is in flight in the world's transit order (travellers by id, then refunds, then credits)."""
    zones = b"".join(records_where(w.zones, ZONE_DTYPE, "id", g.zones) for g, w in zip(found, stored))
    zone_ids = np.frombuffer(zones, dtype=ZONE_DTYPE)["id"]
    raw_zones = np.frombuffer(zones, dtype=np.dtype((np.void, ZONE_DTYPE.itemsize)))[np.argsort(zone_ids)]
    entities = b"".join(w.entities for w in stored)
    ids = np.frombuffer(entities, dtype=ENTITY_DTYPE)["id"]
    raw_entities = np.frombuffer(entities, dtype=np.dtype((np.void, ENTITY_DTYPE.itemsize)))[np.argsort(ids)]
    transit = b"".join(w.transit for w in stored)
    items = np.frombuffer(transit, dtype=TRANSIT_DTYPE)
    raw_items = np.frombuffer(transit, dtype=np.dtype((np.void, TRANSIT_DTYPE.itemsize)))
    travellers = np.flatnonzero(items["kind"] == TransitKind.traveller)
    traveller_ids = np.frombuffer(items["record"][travellers].tobytes(), dtype=ENTITY_DTYPE)["id"]
    order = np.concatenate([travellers[np.argsort(traveller_ids, kind="stable")],
                            np.flatnonzero(items["kind"] == TransitKind.refund),
                            np.flatnonzero(items["kind"] == TransitKind.credit)]).astype(np.intp)
    first = stored[0]
    return WorldData(first.seed, first.tick, max(w.next_id for w in stored), raw_zones.tobytes(),
                     raw_entities.tobytes(), raw_items[order].tobytes())


async def stored_world(dsn: str) -> WorldData:
    pool = await create_pool(dsn)
    try:
        return await WorldStore(pool).load_world()
    finally:
        await pool.close()


async def _log(dsn: str) -> dict[int, tuple[bytes, bytes, bytes]]:
    """tick -> (commands, text, zone hash) of a group's whole log."""
    conn: asyncpg.Connection[asyncpg.Record] = await connect(dsn)
    try:
        rows = await conn.fetch("SELECT tick, commands, text, zone_hash FROM command_log ORDER BY tick")
    finally:
        await conn.close()
    return {r["tick"]: (bytes(r["commands"]), bytes(r["text"]), bytes(r["zone_hash"] or b"")) for r in rows}
