"""`fluxworld bench reducers`: project+transform per tick, both engines, one run.

The world: zone 1 (256x256) holds the 1,000 online players who send the
batch, with npcs, items and offline players around them; every further
10,000 entities fill another zone of the same shape with no one online.
So the same batch meets the same neighbourhood at any world size, and the
WASM time should not grow with the world (the issue's 1.3x bound). With
`crowd` N, N online players (at least 1,000 are online) start packed into
one 21x21 square in the middle of zone 1, where everybody sees everybody.

Both engines step through the same ticks in lockstep, tick by tick, so
machine noise hits them alike; the figures are medians over the ticks.
Timed per tick: encoding the CommandFrame, one project call (an empty
upsert: the working set is resident), the transform and sightings calls and
reading their results back into Python bytes, i.e. the whole boundary.
"""

from __future__ import annotations

import random
import statistics
import time
from pathlib import Path
from typing import Any, Callable

from schema._generated.layout import COMMAND_SIZE, EFFECT_SIZE, ItemType, Kind
from vocabulary.records import pack_commands, pack_entity, pack_zone
from vocabulary.types import Batch, Incoming, WorldData

from .context import TickContext
from .effects import most_sightings as most_sightings_of
from .engines.engine import create_engine
from .engines.frames import COMMAND_FRAME, WORLD_FRAME
from .formats.batches import batch_commands_json, read_batches, write_batches
from .formats.worldfile import dump_world
from .server.runner import STAGES, Pipeline
from .view import WorldView

ZONE_SIDE = 256
PER_ZONE = 10_000
ONLINE = 1_000


CROWD_SIDE = 21


def bench_world(entities: int, seed: int, online_players: int = ONLINE,
                crowd: int = 0) -> tuple[WorldData, list[int], list[int], list[int]]:
    """(world, online player ids, npc ids in zone 1, item ids in zone 1). The first
    `crowd` online players stand in a CROWD_SIDE square at the middle of zone 1."""
    rng = random.Random(seed)
    # Zone 1 grows with the online players so they keep their neighbours:
    # four entities per player, spread at the same density as any zone.
    first = min(entities, max(PER_ZONE, 4 * online_players))
    zones = 1 + max(0, -(-(entities - first) // PER_ZONE))
    records: list[bytes] = []
    online, npcs, items = [], [], []
    next_id = 1
    sides = {}
    for zone in range(1, zones + 1):
        count = first if zone == 1 else min(PER_ZONE, entities - first - (zone - 2) * PER_ZONE)
        side = sides[zone] = min(65535, round(ZONE_SIDE * (max(count, PER_ZONE) / PER_ZONE) ** 0.5))
        for i in range(count):
            x, y = rng.randrange(side), rng.randrange(side)
            if zone == 1 and i < crowd:
                corner = side // 2 - CROWD_SIDE // 2
                x, y = corner + rng.randrange(CROWD_SIDE), corner + rng.randrange(CROWD_SIDE)
            share = i / count
            eid, next_id = next_id, next_id + 1
            if zone == 1 and i < online_players:
                online.append(eid)
                records.append(pack_entity(id=eid, kind=Kind.player, zone=zone, x=x, y=y, hp=100, max_hp=100,
                                           attack=10, defense=2, gold=rng.randrange(50), potions=rng.randrange(3),
                                           online=1, name=f"player{eid}"))
            elif share < 0.4:
                records.append(pack_entity(id=eid, kind=Kind.player, zone=zone, x=x, y=y, hp=100, max_hp=100,
                                           attack=10, defense=2, gold=rng.randrange(50), name=f"player{eid}"))
            elif share < 0.6:
                if zone == 1:
                    npcs.append(eid)
                records.append(pack_entity(id=eid, kind=Kind.npc, zone=zone, x=x, y=y, hp=30, max_hp=30, attack=6,
                                           defense=1, gold=rng.randrange(10), name=f"rat{eid}", home_x=x, home_y=y))
            else:
                if zone == 1:
                    items.append(eid)
                gold = rng.random() < 0.7
                records.append(pack_entity(id=eid, kind=Kind.item, zone=zone, x=x, y=y,
                                           item_type=ItemType.gold if gold else ItemType.potion,
                                           amount=rng.randrange(1, 20) if gold else 1))
    zone_bytes = b"".join(pack_zone(z, side, side, side // 2, side // 2) for z, side in sides.items())
    return WorldData(seed, 0, next_id, zone_bytes, b"".join(records)), online, npcs, items


def bench_batches(online: list[int], npcs: list[int], items: list[int], commands: int, ticks: int,
                  seed: int) -> list[tuple[bytes, bytes]]:
    """Per tick (packed commands, text): mostly moves, some attacks, pickups, chat, potions, transfers."""
    rng = random.Random(seed + 1)
    seq = {p: 0 for p in online}
    batches = []
    for _ in range(ticks):
        cmds: list[dict[str, Any]] = []
        for player in rng.sample(online, min(commands, len(online))) if commands <= len(online) else \
                [rng.choice(online) for _ in range(commands)]:
            seq[player] += 1
            c: dict[str, Any] = {"player": player, "seq": seq[player]}
            roll = rng.random()
            if roll < 0.70:
                c.update(op="move", dx=rng.randint(-1, 1), dy=rng.randint(-1, 1))
            elif roll < 0.78:
                c.update(op="attack", target=rng.choice(npcs))
            elif roll < 0.85:
                c.update(op="pickup", item=rng.choice(items))
            elif roll < 0.90:
                c.update(op="say", text="hello there")
            elif roll < 0.94:
                c.update(op="use")
            else:
                c.update(op="transfer", to=rng.choice(online), amount=rng.randint(1, 10))
            cmds.append(c)
        batches.append(pack_commands(cmds))
    return batches


def run_reducer_bench(*, entities: int, commands: int, ticks: int, seed: int, crowd: int = 0,
                      progress: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    world, online, npcs, items = bench_world(entities, seed, online_players=max(ONLINE, crowd), crowd=crowd)
    batches = bench_batches(online, npcs, items, commands, ticks, seed)
    engines = {name: create_engine(name) for name in ("wasm", "python")}
    load = WORLD_FRAME.encode({"seed": world.seed, "tick": 0, "next_id": world.next_id, "replace": 1,
                               "zones": world.zones, "entities": world.entities})
    empty_upsert = WORLD_FRAME.encode({"replace": 0})
    for name, engine in engines.items():
        started = time.perf_counter()
        engine.project(load)
        progress(f"{name}: loaded {entities} entities in {1000 * (time.perf_counter() - started):.0f} ms")
    times: dict[str, list[float]] = {name: [] for name in engines}
    effects = most_sightings = 0
    for tick, (packed, text) in enumerate(batches, start=1):
        for name, engine in engines.items():
            started = time.perf_counter()
            frame = COMMAND_FRAME.encode({"tick": tick, "commands": packed, "text": text})
            engine.project(empty_upsert)
            result = engine.transform(frame)
            result = result.with_sightings(engine.sightings())
            times[name].append(time.perf_counter() - started)
        effects += len(result.effects) // EFFECT_SIZE
        most_sightings = max(most_sightings, most_sightings_of(result))
        if tick % 10 == 0:
            progress(f"tick {tick}/{ticks}")
    wasm_ms = 1000 * statistics.median(times["wasm"])
    python_ms = 1000 * statistics.median(times["python"])
    return {
        "entities": entities, "commands": commands, "ticks": ticks, "crowd": crowd,
        "wasm_ms": round(wasm_ms, 3), "python_ms": round(python_ms, 3),
        "speedup": round(python_ms / wasm_ms, 1),
        "wasm_p90_ms": round(1000 * statistics.quantiles(times["wasm"], n=10)[-1], 3),
        "python_p90_ms": round(1000 * statistics.quantiles(times["python"], n=10)[-1], 3),
        "effects_per_tick": effects // max(1, ticks),
        "max_sightings_per_observer": most_sightings,
    }



def write_replay_files(directory: Path, *, players: int, ticks: int, commands: int,
                       seed: int) -> tuple[Path, Path]:
    """The world and batches `bench replay` reads: `players` online in zone 1 (256x256, 10,000
    entities), `commands` a tick of the usual mix. The dead respawn at the spawn, where a crowd forms."""
    world_path, batches_path = directory / "bench.world.json", directory / "bench.batches.jsonl"
    world, online, npcs, items = bench_world(max(PER_ZONE, 4 * players), seed, online_players=players)
    dump_world(world, world_path)
    write_batches(batches_path, (Batch(tick, packed, text) for tick, (packed, text)
                                 in enumerate(bench_batches(online, npcs, items, commands, ticks, seed), start=1)))
    return world_path, batches_path


async def run_replay_bench(world_path: Path, batches_path: Path, engine: str) -> dict[str, Any]:
    """`replay` with no effects written, timed: commands a second, and what reading the file alone costs."""
    from .replay import replay

    started = time.perf_counter()
    commands = sum(len(b.commands) // COMMAND_SIZE for b in read_batches(batches_path, after_tick=0))
    reading = time.perf_counter() - started
    started = time.perf_counter()
    report, _ = await replay(world_path, batches_path, engine)
    elapsed = time.perf_counter() - started
    return {"engine": engine, "ticks": report.ticks, "commands": report.commands,
            "seconds": round(elapsed, 3), "commands_per_s": round(report.commands / elapsed),
            "reading_seconds": round(reading, 3), "reading_us_per_command": round(1e6 * reading / commands, 2),
            "final_hash": report.final_hash}


async def run_pipeline_bench(*, db: str, commands: int, ticks: int, seed: int, engine: str = "wasm",
                             progress: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """Whole ticks, negotiate to commit, back to back against PostgreSQL.

    The world has one online player per command (and at least 10,000
    entities); every tick each player sends one command of the usual mix.
    Ticks run as fast as they commit, so the figures are the pipeline's
    ceiling: committed ticks a second and fragment rows written a second.
    """
    from persistence.database import BENCH_DATABASE, open_database
    from persistence.migrator import migrate

    world, online, npcs, items = bench_world(max(10_000, 4 * commands), seed, online_players=commands)
    batches = bench_batches(online, npcs, items, commands, ticks, seed)
    async with open_database(db, embedded_database=BENCH_DATABASE) as database:
        await migrate(database.dsn)
        store = database.store()
        await store.seed(world, replace=True)
        view = WorldView.from_world(world)
        rules = create_engine(engine)
        rules.project(view.frame())
        pipeline = Pipeline(rules, store, None)
        progress(f"seeded {len(world.entities) // 120} entities; {ticks} ticks of {commands} commands")
        rows, compute, commit = 0, 0.0, 0.0
        started = time.perf_counter()
        for tick, (packed, text) in enumerate(batches, start=1):
            commands_json = batch_commands_json(Batch(tick, packed, text))
            ctx = TickContext(tick=tick, batch=Batch(tick, b"", b""), view=view,
                              incoming=[Incoming(c, None, 0.0) for c in commands_json])
            t = time.perf_counter()
            ctx = await pipeline.compute(ctx)
            compute += time.perf_counter() - t
            assert ctx.write is not None and ctx.next_view is not None
            rows += ctx.write.rows
            t = time.perf_counter()
            await pipeline.commit(ctx)
            commit += time.perf_counter() - t
            view = ctx.next_view
        elapsed = time.perf_counter() - started
    return {"commands_per_tick": commands, "ticks": ticks, "engine": engine,
            "ticks_per_s": round(ticks / elapsed, 1), "commands_per_s": round(ticks * commands / elapsed),
            "rows_per_tick": rows // ticks, "rows_per_s": round(rows / elapsed),
            "compute_ms": round(1000 * compute / ticks, 2), "commit_ms": round(1000 * commit / ticks, 2),
            "stage_p50_ms": {stage: round(1000 * pipeline.metrics.quantile(0.5, stage), 2) for stage in STAGES}}

